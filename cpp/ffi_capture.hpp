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

// livekit's FFI holds a read lock on a part of its handle table while it copies a captured
// frame, and every request stores (then drop_handle removes) a response handle, which takes
// a write lock on some part: a request that needs the part a copy on another thread holds
// sleeps until that copy is done. With big frames that happened on most captures: two threads
// capturing 720p I420 back to back managed 0.8x one thread's frames. So frames of this many
// pixels and more enter the FFI one at a time (0.9-1.0x); smaller copies are short enough to
// overlap (640x360: 1.4x).
constexpr uint64_t kOneAtATimePixels = 640 * 1024;  // 720p is 900K pixels, 640x360 230K

// Sends one capture request; false when the FFI refused it (for example, a closed source).
// The FFI copies the pixels before it returns, so the caller's buffers may be reused at once.
// A big frame may wait for another thread's: call it without Python's lock.
bool ffi_capture(const FfiFunctions& ffi, const FfiCaptureFrame& frame);

}  // namespace warmrtc
