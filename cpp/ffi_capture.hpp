// Hands a frame to livekit's FFI through the C functions of the SDK's own loaded library.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ffi_request.hpp"

namespace warmrtc {

using FfiRequestFn = uint64_t (*)(const uint8_t* data, size_t len, const uint8_t** res_ptr,
                                  size_t* res_len);
using FfiDropHandleFn = bool (*)(uint64_t handle);

struct FfiFunctions {
  FfiRequestFn request = nullptr;
  FfiDropHandleFn drop_handle = nullptr;
};

// Sends one capture request; false when the FFI refused it (for example, a closed source).
// The FFI copies the pixels before it returns, so the caller's buffers may be reused at once.
bool ffi_capture(const FfiFunctions& ffi, const FfiCaptureFrame& frame);

}  // namespace warmrtc
