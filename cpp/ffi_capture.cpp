#include "ffi_capture.hpp"

namespace warmrtc {

bool ffi_capture(const FfiFunctions& ffi, const FfiCaptureFrame& frame) {
  uint8_t request[kMaxCaptureRequestBytes];
  const size_t n = encode_capture_request(frame, request);
  const uint8_t* response = nullptr;
  size_t response_len = 0;
  const uint64_t handle = ffi.request(request, n, &response, &response_len);
  if (handle == 0) return false;  // livekit's INVALID_HANDLE: the request failed
  ffi.drop_handle(handle);
  return true;
}

}  // namespace warmrtc
