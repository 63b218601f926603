#include "ffi_capture.hpp"

#include <cstdint>
#include <mutex>

#include "poll.hpp"

namespace warmrtc {
namespace {

std::mutex big_frame_turn;

std::unique_lock<std::mutex> take_turn() {
  std::unique_lock<std::mutex> turn(big_frame_turn, std::defer_lock);
  if (!poll_until([&] { return turn.try_lock(); })) turn.lock();
  return turn;
}

}  // namespace

bool ffi_capture(const FfiFunctions& ffi, const FfiCaptureFrame& frame) {
  uint8_t request[kMaxCaptureRequestBytes];
  const size_t n = encode_capture_request(frame, request);
  const uint8_t* response = nullptr;
  size_t response_len = 0;
  std::unique_lock<std::mutex> turn;
  if (uint64_t{frame.width} * frame.height >= kOneAtATimePixels) turn = take_turn();
  const uint64_t handle = ffi.request(request, n, &response, &response_len);
  if (handle == 0) return false;  // livekit's INVALID_HANDLE: the request failed
  ffi.drop_handle(handle);
  return true;
}

}  // namespace warmrtc
