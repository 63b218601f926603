#include "video_pipeline.hpp"

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>

#include "convert.hpp"
#include "frame_buffer.hpp"
#include "i420_buffer.hpp"

namespace warmrtc {
namespace {

// The FFI types whose memory order matches ours exactly (livekit's RGB24 is R,G,B in memory).
bool ffi_packed_type(PixelFormat format, FfiBufferType* type) {
  switch (format) {
    case PixelFormat::RGBA: *type = FfiBufferType::RGBA; return true;
    case PixelFormat::BGRA: *type = FfiBufferType::BGRA; return true;
    case PixelFormat::ARGB: *type = FfiBufferType::ARGB; return true;
    case PixelFormat::ABGR: *type = FfiBufferType::ABGR; return true;
    case PixelFormat::RGB24: *type = FfiBufferType::RGB24; return true;
    default: return false;
  }
}

// livekit-ffi reads a buffer as one block: an I420 component is `size` bytes from its data_ptr
// (copied into a WebRTC buffer of stride * rows, so size must equal that), and a packed buffer
// is stride * height bytes from data_ptr. Both are counted in uint32.
int64_t ffi_block_bytes(int64_t stride, int rows) { return stride * rows; }

// Bytes read and written by a delivery (the frame, and the I420 frame the FFI copies) up to
// which it is brief(): 160x120 bgr24 is 86 KB, 640x360 i420 691 KB. Measured on a 2-core
// machine: above this size two threads letting go of Python's lock always beat one thread
// (1.1x at 640x360 i420, 1.8x at 640x360 bgr24); below it, letting go could fall to 0.6x.
constexpr size_t kBriefDeliveryBytes = 512 * 1024;
// A brief delivery may keep Python's lock, so it must never be a frame that waits its turn.
static_assert(kBriefDeliveryBytes < kOneAtATimePixels * 3 / 2, "brief frames must be small");
// How long close() waits for captures already past the gate.
constexpr std::chrono::seconds kCloseWait{5};

bool fits_u32(int64_t bytes) { return bytes >= 0 && bytes <= UINT32_MAX; }

// True when the FFI may read `p` in place: libyuv-readable, and the block it reads lies inside
// the view. A view's last row ends after its pixels, not a stride later, so a crop (row stride
// longer than the row) must be copied; so must a plane whose block does not fit uint32.
bool ffi_readable(const Plane& p) {
  if (!p.packed()) return false;
  const int64_t row_bytes = static_cast<int64_t>(p.cols) * p.channels;
  const int64_t extent = (p.rows - 1) * p.row_stride + row_bytes;
  const int64_t block = ffi_block_bytes(p.row_stride, p.rows);
  return block <= extent && fits_u32(block);
}

// Callers pass planes that passed ffi_readable or our own layout (a block of at most
// kMaxDimension^2 bytes), so the block fits its uint32.
FfiComponent component(const uint8_t* data, int64_t stride, int rows) {
  return {reinterpret_cast<uint64_t>(data), static_cast<uint32_t>(stride),
          static_cast<uint32_t>(ffi_block_bytes(stride, rows))};
}

}  // namespace

VideoPipeline::VideoPipeline(uint64_t source_handle, int width, int height, PixelFormat format,
                             FfiFunctions ffi, bool fused_packed, bool stamp_frames, int threads)
    : source_handle_(source_handle),
      width_(width),
      height_(height),
      format_(format),
      ffi_(ffi),
      fused_packed_(fused_packed),
      stamper_(stamp_frames) {
  if (threads < 1)
    throw std::invalid_argument("threads must be >= 1, got " + std::to_string(threads));
  if (threads > 1) pool_ = std::make_unique<BandPool>(threads);
}

void VideoPipeline::close() {
  gate_.close();
  // Captures already past the gate finish first: the caller lets the FFI source go next, and
  // a frame sent to it after that is refused ("handle not found"). Bounded, should the FFI
  // hang; a capture takes milliseconds.
  const auto deadline = std::chrono::steady_clock::now() + kCloseWait;
  while (!gate_.idle() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  if (pool_) pool_->close();
}

bool VideoPipeline::brief(const SourceFrame& frame) const {
  return frame.bytes() + i420_size(width_, height_) <= kBriefDeliveryBytes;
}

bool VideoPipeline::fusable(const SourceFrame& f) const {
  FfiBufferType type;
  return fused_packed_ && f.width == width_ && f.height == height_ &&
         ffi_packed_type(f.format, &type) && ffi_readable(f.planes[0]);
}

bool VideoPipeline::deliver(const SourceFrame& frame, int64_t timestamp_us) {
  FfiCaptureFrame req;
  req.source_handle = source_handle_;
  req.timestamp_us = timestamp_us;
  stamper_.stamp(req);  // the capture time: taken before conversion
  const bool ok = fusable(frame) ? send_packed(frame, req) : send_i420(frame, req);
  if (ok) {
    gate_.delivered(frame.bytes());
  } else {
    gate_.rejected();
  }
  return ok;
}

bool VideoPipeline::send_packed(const SourceFrame& f, FfiCaptureFrame& req) {
  ffi_packed_type(f.format, &req.type);
  req.width = static_cast<uint32_t>(f.width);
  req.height = static_cast<uint32_t>(f.height);
  req.data_ptr = reinterpret_cast<uint64_t>(f.planes[0].data);
  req.stride = static_cast<uint32_t>(f.planes[0].row_stride);
  req.components[0] = component(f.planes[0].data, f.planes[0].row_stride, f.height);
  req.component_count = 1;
  return ffi_capture(ffi_, req);
}

bool VideoPipeline::send_i420(const SourceFrame& frame, FfiCaptureFrame& req) {
  I420Planes planes;
  const bool zero_copy = frame.format == PixelFormat::I420 && frame.width == width_ &&
                         frame.height == height_ && ffi_readable(frame.planes[0]) &&
                         ffi_readable(frame.planes[1]) && ffi_readable(frame.planes[2]);
  if (zero_copy) {
    // The FFI copies these planes into WebRTC's buffer: the one copy of the I420 path.
    planes.y = const_cast<uint8_t*>(frame.planes[0].data);
    planes.u = const_cast<uint8_t*>(frame.planes[1].data);
    planes.v = const_cast<uint8_t*>(frame.planes[2].data);
    planes.stride_y = static_cast<int>(frame.planes[0].row_stride);
    planes.stride_u = static_cast<int>(frame.planes[1].row_stride);
    planes.stride_v = static_cast<int>(frame.planes[2].row_stride);
  } else {
    // Reused per thread: the FFI is done with the pixels when ffi_capture returns.
    thread_local FrameBuffer pooled;
    planes = i420_layout(pooled.get(i420_size(width_, height_)), width_, height_);
    if (convert_to_i420(frame, planes, pool_.get()) > 1) {
      gate_.banded();
    }
  }
  const int ch = chroma_size(height_);
  req.type = FfiBufferType::I420;
  req.width = static_cast<uint32_t>(width_);
  req.height = static_cast<uint32_t>(height_);
  req.data_ptr = reinterpret_cast<uint64_t>(planes.y);
  req.components[0] = component(planes.y, planes.stride_y, height_);
  req.components[1] = component(planes.u, planes.stride_u, ch);
  req.components[2] = component(planes.v, planes.stride_v, ch);
  req.component_count = 3;
  return ffi_capture(ffi_, req);
}

}  // namespace warmrtc
