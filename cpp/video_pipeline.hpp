// One video source's hot path: gate -> convert/scale (libyuv) -> FFI capture.
#pragma once

#include <cstdint>

#include "ffi_capture.hpp"
#include "frame_stamp.hpp"
#include "gate.hpp"
#include "pixel_format.hpp"
#include "source_frame.hpp"

namespace warmrtc {

class VideoPipeline {
 public:
  // `fused_packed`: send RGBA-family/rgb24 frames of the source's size whose rows are packed
  // back to back to the FFI unconverted, letting livekit's libyuv write its WebRTC buffer in one
  // pass (livekit reads stride * height bytes, more than a cropped view holds).
  // `stamp_frames`: every delivered frame carries FrameMetadata (capture time, frame id).
  VideoPipeline(uint64_t source_handle, int width, int height, PixelFormat format, FfiFunctions ffi,
                bool fused_packed, bool stamp_frames);

  Gate& gate() { return gate_; }
  int width() const { return width_; }
  int height() const { return height_; }
  PixelFormat format() const { return format_; }
  bool stamps_frames() const { return stamper_.enabled(); }

  // Converts (when needed) and hands the frame to the FFI. Call after gate().enter() passed.
  // Thread-safe: scratch buffers are per thread. Returns false when the FFI refused the frame.
  bool deliver(const SourceFrame& frame, int64_t timestamp_us);

 private:
  bool send_i420(const SourceFrame& frame, FfiCaptureFrame& req);
  bool send_packed(const SourceFrame& frame, FfiCaptureFrame& req);
  bool fusable(const SourceFrame& frame) const;

  uint64_t source_handle_;
  int width_, height_;
  PixelFormat format_;
  FfiFunctions ffi_;
  bool fused_packed_;
  Gate gate_;
  FrameStamper stamper_;
};

}  // namespace warmrtc
