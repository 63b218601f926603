// The mute gate: one atomic flag checked before any work, and the counters that prove it.
#pragma once

#include <atomic>
#include <cstdint>

namespace warmrtc {

struct GateStats {
  uint64_t captured, dropped_while_muted, dropped_closed, converted, rejected, bytes_in;
  uint64_t banded;  // of the converted: split into row bands across threads
};

// Aligned to a cache line (and so a whole number of them in size): the counters are written
// on every capture, and two sources fed from two threads must not write the same line.
class alignas(64) Gate {
 public:
  enum class Verdict { Pass, Muted, Closed };

  // Counts the call and says whether the frame may go on; a Pass is in flight until leave()
  // (hold a Passage). Lock-free; any thread. In flight is counted before closed is read, and
  // close() sets closed before it waits: no capture gets past a closing gate unseen.
  Verdict enter() {
    captured_.fetch_add(1, std::memory_order_relaxed);
    in_flight_.fetch_add(1, std::memory_order_seq_cst);
    if (closed_.load(std::memory_order_seq_cst)) {
      leave();
      dropped_closed_.fetch_add(1, std::memory_order_relaxed);
      return Verdict::Closed;
    }
    if (muted_.load(std::memory_order_acquire)) {
      leave();
      dropped_while_muted_.fetch_add(1, std::memory_order_relaxed);
      return Verdict::Muted;
    }
    return Verdict::Pass;
  }
  void leave() { in_flight_.fetch_sub(1, std::memory_order_release); }

  // A capture let through, until it is done with the source (scope).
  class Passage {
   public:
    explicit Passage(Gate& gate) : gate_(gate) {}
    ~Passage() { gate_.leave(); }
    Passage(const Passage&) = delete;
    Passage& operator=(const Passage&) = delete;

   private:
    Gate& gate_;
  };
  void delivered(uint64_t bytes) {
    converted_.fetch_add(1, std::memory_order_relaxed);
    bytes_in_.fetch_add(bytes, std::memory_order_relaxed);
  }
  void rejected() { rejected_.fetch_add(1, std::memory_order_relaxed); }
  void banded() { banded_.fetch_add(1, std::memory_order_relaxed); }

  void set_muted(bool muted) { muted_.store(muted, std::memory_order_release); }
  bool muted() const { return muted_.load(std::memory_order_acquire); }
  void close() { closed_.store(true, std::memory_order_seq_cst); }
  bool closed() const { return closed_.load(std::memory_order_acquire); }
  // No capture between enter() and leave(): after close(), none will be again.
  bool idle() const { return in_flight_.load(std::memory_order_acquire) == 0; }

  GateStats stats() const {
    return {captured_.load(),       dropped_while_muted_.load(),
            dropped_closed_.load(), converted_.load(),
            rejected_.load(),       bytes_in_.load(),
            banded_.load()};
  }

 private:
  std::atomic<bool> muted_{false};
  std::atomic<bool> closed_{false};
  std::atomic<int64_t> in_flight_{0};
  std::atomic<uint64_t> captured_{0}, dropped_while_muted_{0}, dropped_closed_{0}, converted_{0},
      rejected_{0}, bytes_in_{0}, banded_{0};
};

}  // namespace warmrtc
