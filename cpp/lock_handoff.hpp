// When a capturing thread should let go of the interpreter lock around its native work.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace warmrtc {

// Letting go of Python's lock lets other threads run Python while a frame is converted and
// handed on, which is how captures on two threads use two cores. For a brief delivery (a few
// microseconds of work) it only pays while the threads really run side by side: when they
// take turns (the other core is busy, or their wake-ups line up), each capture waits for a
// sleeping thread to wake before it gets the lock back, which takes far longer than its own
// work; two threads then capture at about 0.6x one thread's rate. Keeping the lock gives one
// thread's rate (less a switch every few milliseconds) but never more.
//
// So each source measures both for its brief deliveries: a window letting go, a window
// keeping the lock, and then uses the faster way for kChosenWindows windows before
// measuring again. Ties go to letting go, which lets other Python threads run. Deliveries
// that are not brief always let go: their work dwarfs a wake-up. Lock-free; any thread (the
// measurements of a source captured from several threads are approximate, never unsafe).
class LockHandoff {
 public:
  using Clock = std::chrono::steady_clock;

  // A window: at least this long (several of Python's 5 ms switch intervals, so that taking
  // turns is part of what is measured) and kCheckEvery deliveries.
  static constexpr Clock::duration kWindow = std::chrono::milliseconds(25);
  static constexpr uint32_t kCheckEvery = 64;
  static constexpr int kChosenWindows = 16;

  // Counts a delivery; true when it should keep the lock.
  bool keep_lock(bool brief) {
    if (!brief) return false;
    const uint32_t n = count_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (n % kCheckEvery == 0) check_window(n);
    return keeping_.load(std::memory_order_relaxed);
  }

 private:
  enum Phase : int { kTryLettingGo, kTryKeeping, kChosen };

  void check_window(uint32_t n) {
    const int64_t now = Clock::now().time_since_epoch().count();
    const int64_t start = window_start_.load(std::memory_order_relaxed);
    if (start == 0) {
      window_start_.store(now, std::memory_order_relaxed);
      count_.store(0, std::memory_order_relaxed);
      return;
    }
    const int64_t elapsed = now - start;
    if (elapsed < kWindow.count()) return;
    const double rate = static_cast<double>(n) / static_cast<double>(elapsed);
    switch (phase_.load(std::memory_order_relaxed)) {
      case kTryLettingGo:
        letting_go_rate_ = rate;
        set(kTryKeeping, true);
        break;
      case kTryKeeping:
        // Keep the lock only when that was clearly faster (5 %: windows are noisy).
        set(kChosen, rate > letting_go_rate_ * 1.05);
        chosen_left_ = kChosenWindows;
        break;
      default:
        if (--chosen_left_ <= 0) set(kTryLettingGo, false);
    }
    window_start_.store(now, std::memory_order_relaxed);
    count_.store(0, std::memory_order_relaxed);
  }

  void set(Phase phase, bool keeping) {
    phase_.store(phase, std::memory_order_relaxed);
    keeping_.store(keeping, std::memory_order_relaxed);
  }

  std::atomic<uint32_t> count_{0};
  std::atomic<bool> keeping_{false};
  std::atomic<int> phase_{kTryLettingGo};
  std::atomic<int64_t> window_start_{0};
  // Written only by the thread whose count ends a window.
  double letting_go_rate_ = 0;
  int chosen_left_ = 0;
};

}  // namespace warmrtc
