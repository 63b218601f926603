// One video source's hot path: gate -> convert/scale (libyuv) -> FFI capture.
#pragma once

#include <cstdint>

#include "ffi_capture.hpp"
#include "gate.hpp"
#include "pixel_format.hpp"
#include "source_frame.hpp"

namespace warmrtc {

class VideoPipeline {
 public:
  // `fused_packed`: send RGBA-family/rgb24 frames of the source's size whose rows are packed
  // back to back to the FFI unconverted, letting livekit's libyuv write its WebRTC buffer in one
  // pass (livekit reads stride * height bytes, more than a cropped view holds).
  VideoPipeline(uint64_t source_handle, int width, int height, PixelFormat format, FfiFunctions ffi,
                bool fused_packed);

  Gate& gate() { return gate_; }
  int width() const { return width_; }
  int height() const { return height_; }
  PixelFormat format() const { return format_; }

  // Converts (when needed) and hands the frame to the FFI. Call after gate().enter() passed.
  // Thread-safe: scratch buffers are per thread. Returns false when the FFI refused the frame.
  bool deliver(const SourceFrame& frame, int64_t timestamp_us);

 private:
  bool send_i420(const SourceFrame& frame, int64_t timestamp_us);
  bool send_packed(const SourceFrame& frame, int64_t timestamp_us);
  bool fusable(const SourceFrame& frame) const;

  uint64_t source_handle_;
  int width_, height_;
  PixelFormat format_;
  FfiFunctions ffi_;
  bool fused_packed_;
  Gate gate_;
};

}  // namespace warmrtc
