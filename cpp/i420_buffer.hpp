// Where converted frames go: three I420 planes with their strides.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "pixel_format.hpp"

namespace warmrtc {

struct I420Planes {
  uint8_t* y = nullptr;
  uint8_t* u = nullptr;
  uint8_t* v = nullptr;
  int stride_y = 0, stride_u = 0, stride_v = 0;
  int width = 0, height = 0;
  // Bytes after each Y row's pixels that belong to the layout and must be written (0 or 1).
  int luma_padding = 0;
};

// The contiguous layout of one I420 frame, as to_i420 returns it: (h + ceil(h/2)) rows of
// 2 * ceil(w/2) bytes; Y rows first (one padding byte per row when w is odd, holding a copy of
// the row's last pixel), then U, then V.
inline int i420_rows(int height) { return height + chroma_size(height); }
inline int i420_cols(int width) { return 2 * chroma_size(width); }
inline size_t i420_size(int width, int height) {
  return static_cast<size_t>(i420_rows(height)) * i420_cols(width);
}

inline I420Planes i420_layout(uint8_t* base, int width, int height) {
  I420Planes p;
  p.width = width;
  p.height = height;
  p.stride_y = i420_cols(width);
  p.luma_padding = p.stride_y - width;
  p.stride_u = p.stride_v = chroma_size(width);
  p.y = base;
  p.u = base + static_cast<size_t>(p.stride_y) * height;
  p.v = p.u + static_cast<size_t>(p.stride_u) * chroma_size(height);
  return p;
}

// Writes each Y row's padding as a copy of the row's last pixel, so the whole layout is defined.
inline void fill_luma_padding(const I420Planes& p) {
  if (p.luma_padding == 0) return;
  for (int r = 0; r < p.height; ++r) {
    uint8_t* row = p.y + static_cast<size_t>(p.stride_y) * r;
    std::memset(row + p.width, row[p.width - 1], static_cast<size_t>(p.luma_padding));
  }
}

}  // namespace warmrtc
