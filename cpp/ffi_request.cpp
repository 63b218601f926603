#include "ffi_request.hpp"

namespace warmrtc {
namespace {

// Field numbers from livekit's ffi.proto / video_frame.proto.
constexpr uint32_t kFfiRequestCaptureVideoFrame = 22;
constexpr uint32_t kCaptureSourceHandle = 1, kCaptureBuffer = 2, kCaptureTimestampUs = 3,
                   kCaptureRotation = 4, kCaptureMetadata = 5;
constexpr uint32_t kBufferType = 1, kBufferWidth = 2, kBufferHeight = 3, kBufferDataPtr = 4,
                   kBufferStride = 6, kBufferComponents = 7;
constexpr uint32_t kComponentDataPtr = 1, kComponentStride = 2, kComponentSize = 3;
constexpr uint32_t kMetadataUserTimestamp = 1, kMetadataFrameId = 2;

constexpr uint32_t kVarint = 0, kLengthDelimited = 2;

class Writer {
 public:
  explicit Writer(uint8_t* out) : start_(out), at_(out) {}

  void varint(uint64_t value) {
    while (value >= 0x80) {
      *at_++ = static_cast<uint8_t>(value | 0x80);
      value >>= 7;
    }
    *at_++ = static_cast<uint8_t>(value);
  }
  void varint_field(uint32_t field, uint64_t value) {
    varint(field << 3 | kVarint);
    varint(value);
  }
  // Writes a nested message: the body goes to scratch first so its length can lead it.
  template <typename Body>
  void message_field(uint32_t field, Body body) {
    uint8_t scratch[kMaxCaptureRequestBytes];
    Writer inner(scratch);
    body(inner);
    const size_t n = inner.size();
    varint(field << 3 | kLengthDelimited);
    varint(n);
    for (size_t i = 0; i < n; ++i) *at_++ = scratch[i];
  }
  size_t size() const { return static_cast<size_t>(at_ - start_); }

 private:
  uint8_t* start_;
  uint8_t* at_;
};

}  // namespace

size_t encode_capture_request(const FfiCaptureFrame& f, uint8_t* out) {
  Writer w(out);
  w.message_field(kFfiRequestCaptureVideoFrame, [&](Writer& capture) {
    capture.varint_field(kCaptureSourceHandle, f.source_handle);
    capture.message_field(kCaptureBuffer, [&](Writer& buffer) {
      buffer.varint_field(kBufferType, static_cast<uint32_t>(f.type));
      buffer.varint_field(kBufferWidth, f.width);
      buffer.varint_field(kBufferHeight, f.height);
      buffer.varint_field(kBufferDataPtr, f.data_ptr);
      buffer.varint_field(kBufferStride, f.stride);
      for (int i = 0; i < f.component_count; ++i) {
        const FfiComponent& c = f.components[i];
        buffer.message_field(kBufferComponents, [&](Writer& component) {
          component.varint_field(kComponentDataPtr, c.data_ptr);
          component.varint_field(kComponentStride, c.stride);
          component.varint_field(kComponentSize, c.size);
        });
      }
    });
    // int64 is encoded as its two's-complement uint64, as protobuf does.
    capture.varint_field(kCaptureTimestampUs, static_cast<uint64_t>(f.timestamp_us));
    capture.varint_field(kCaptureRotation, f.rotation);
    if (f.has_metadata) {
      capture.message_field(kCaptureMetadata, [&](Writer& metadata) {
        metadata.varint_field(kMetadataUserTimestamp, f.user_timestamp);
        metadata.varint_field(kMetadataFrameId, f.frame_id);
      });
    }
  });
  return w.size();
}

}  // namespace warmrtc
