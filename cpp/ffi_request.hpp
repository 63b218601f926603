// The livekit FFI capture request, encoded by hand: a few protobuf fields, no protobuf runtime.
#pragma once

#include <cstddef>
#include <cstdint>

namespace warmrtc {

// livekit.proto.VideoBufferType values.
enum class FfiBufferType : uint32_t { RGBA = 0, ABGR = 1, ARGB = 2, BGRA = 3, RGB24 = 4, I420 = 5 };

struct FfiComponent {
  uint64_t data_ptr;
  uint32_t stride;
  uint32_t size;
};

struct FfiCaptureFrame {
  uint64_t source_handle = 0;
  FfiBufferType type = FfiBufferType::I420;
  uint32_t width = 0, height = 0;
  uint64_t data_ptr = 0;
  uint32_t stride = 0;  // packed formats only
  FfiComponent components[3] = {};
  int component_count = 0;
  int64_t timestamp_us = 0;
  uint32_t rotation = 0;
  // FrameMetadata, sent only when has_metadata: the capture time (unix epoch µs, the clock
  // Decart's JS SDK stamps with) and the source's frame counter.
  bool has_metadata = false;
  uint64_t user_timestamp = 0;
  uint32_t frame_id = 0;
};

// Largest encoding of a request: every varint at its widest, three components and the
// metadata come to 165 bytes.
constexpr size_t kMaxCaptureRequestBytes = 192;

// FfiRequest{capture_video_frame = 22 {source_handle = 1, buffer = 2 {type = 1, width = 2,
// height = 3, data_ptr = 4, stride = 6, components = 7 {data_ptr = 1, stride = 2, size = 3}},
// timestamp_us = 3, rotation = 4, metadata = 5 {user_timestamp = 1, frame_id = 2}}}.
// Returns the number of bytes written to `out`.
size_t encode_capture_request(const FfiCaptureFrame& frame, uint8_t* out);

}  // namespace warmrtc
