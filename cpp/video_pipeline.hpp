// One video source's hot path: gate -> convert/scale (libyuv) -> FFI capture.
#pragma once

#include <cstdint>
#include <memory>

#include "band_pool.hpp"
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
  // `threads`: 1 converts on the capturing thread alone; N > 1 starts a pool of N - 1 workers,
  // owned by this pipeline, that convert big frames in row bands beside the capturing thread.
  VideoPipeline(uint64_t source_handle, int width, int height, PixelFormat format, FfiFunctions ffi,
                bool fused_packed, bool stamp_frames, int threads = 1);

  Gate& gate() { return gate_; }
  int width() const { return width_; }
  int height() const { return height_; }
  PixelFormat format() const { return format_; }
  bool stamps_frames() const { return stamper_.enabled(); }
  int threads() const { return pool_ ? pool_->threads() : 1; }

  // True when delivering `frame` is a few microseconds of work, no longer than waking a
  // sleeping thread: letting go of Python's lock around it may not pay (see LockHandoff).
  bool brief(const SourceFrame& frame) const;

  // Converts (when needed) and hands the frame to the FFI. Call after gate().enter() passed.
  // Thread-safe: scratch buffers are per thread. Returns false when the FFI refused the frame.
  bool deliver(const SourceFrame& frame, int64_t timestamp_us);

  // Closes the gate and joins the worker threads, after a frame they are converting.
  // Idempotent; later deliveries convert on the capturing thread.
  void close();

 private:
  bool send_i420(const SourceFrame& frame, FfiCaptureFrame& req);
  bool send_packed(const SourceFrame& frame, FfiCaptureFrame& req);
  bool fusable(const SourceFrame& frame) const;

  uint64_t source_handle_;
  int width_, height_;
  PixelFormat format_;
  FfiFunctions ffi_;
  bool fused_packed_;
  // Written on every capture, so each in cache lines of its own (see Gate): sources captured
  // from different threads share none.
  Gate gate_;
  FrameStamper stamper_;
  std::unique_ptr<BandPool> pool_;
};

}  // namespace warmrtc
