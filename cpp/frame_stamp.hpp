// Frame stamps for glass-to-glass latency: capture time and frame number, sent to LiveKit as
// FrameMetadata so that the service can echo the time back on the frame it generates.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "ffi_request.hpp"

namespace warmrtc {

// Microseconds since the unix epoch: the clock Decart's JS SDK stamps with (Date.now() * 1000)
// and compares against at playout, so a receiver in any process on a synced host can use it.
inline uint64_t unix_time_us() {
  using namespace std::chrono;
  return static_cast<uint64_t>(
      duration_cast<microseconds>(system_clock::now().time_since_epoch()).count());
}

// Aligned for the same reason as Gate: next_id_ is written on every stamped capture.
class alignas(64) FrameStamper {
 public:
  explicit FrameStamper(bool enabled) : enabled_(enabled) {}

  bool enabled() const { return enabled_; }

  // Adds the metadata to a request when stamping is on. Lock-free; any thread. Frame ids start
  // at 1 and skip 0 when they wrap (0 reads as "no id"), as LiveKit's JS packet trailer does.
  void stamp(FfiCaptureFrame& request) {
    if (!enabled_) return;
    uint32_t id = next_id_.fetch_add(1, std::memory_order_relaxed);
    if (id == 0) id = next_id_.fetch_add(1, std::memory_order_relaxed);
    request.has_metadata = true;
    request.user_timestamp = unix_time_us();
    request.frame_id = id;
  }

 private:
  const bool enabled_;
  std::atomic<uint32_t> next_id_{1};
};

}  // namespace warmrtc
