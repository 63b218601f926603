// A caller's frame described as planes with byte strides, after checking it fits its format.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include "pixel_format.hpp"

namespace warmrtc {

// Largest width or height we take: far above any video mode, small enough that sizes fit int.
constexpr int kMaxDimension = 16384;

enum class ElementType { U8, F32 };

// Raised for a frame of the wrong element type; the binding turns it into a Python TypeError.
// Every other bad frame is a std::invalid_argument (Python ValueError).
struct FrameTypeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// An array exactly as the caller handed it: up to 3 dimensions, byte strides, not owned.
struct ArrayView {
  const uint8_t* data = nullptr;
  int ndim = 0;
  int64_t shape[3] = {1, 1, 1};
  int64_t strides[3] = {0, 0, 0};
  ElementType type = ElementType::U8;
};

// One image plane: rows x cols pixels of `channels` elements each.
struct Plane {
  const uint8_t* data = nullptr;
  int rows = 0, cols = 0, channels = 1;
  int64_t row_stride = 0, col_stride = 0, channel_stride = 0;
  ElementType type = ElementType::U8;

  // True when libyuv can read it as is: bytes, pixels contiguous within a row, and every row
  // offset up to rows * row_stride, and libyuv's two-row step, fits an int.
  bool packed() const;
  size_t bytes() const;
};

struct SourceFrame {
  PixelFormat format = PixelFormat::I420;
  int width = 0, height = 0;
  Plane planes[3];
  int plane_count = 0;

  size_t bytes() const;
};

// Checks that `arrays` (one array, or a tuple of planes) form a frame of `format` and describes
// it. Throws with a message naming what was wrong; never reads pixel data.
SourceFrame describe_frame(PixelFormat format, const ArrayView* arrays, int count);

}  // namespace warmrtc
