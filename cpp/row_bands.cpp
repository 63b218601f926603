#include "row_bands.hpp"

#include <algorithm>
#include <cstdint>

namespace warmrtc {

int band_count(int width, int height, int threads) {
  if (threads < 2) return 1;
  const int64_t pixels = static_cast<int64_t>(width) * height;
  const int64_t by_size = std::min<int64_t>(pixels / kMinBandPixels, height / 2);
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(by_size, 4 * threads)));
}

RowRange row_band(int height, int bands, int band) {
  const int64_t pairs = height / 2;
  const int first = static_cast<int>(2 * (pairs * band / bands));
  const int end = band + 1 == bands ? height : static_cast<int>(2 * (pairs * (band + 1) / bands));
  return {first, end - first};
}

SourceFrame frame_rows(const SourceFrame& frame, RowRange rows) {
  SourceFrame band = frame;
  band.height = rows.count;
  for (int i = 0; i < frame.plane_count; ++i) {
    Plane& p = band.planes[i];
    const bool chroma = i > 0 && is_planar_yuv(frame.format);
    const int first = chroma ? rows.first / 2 : rows.first;
    p.rows = chroma ? chroma_size(rows.count) : rows.count;
    p.data += p.row_stride * first;
  }
  return band;
}

I420Planes planes_rows(const I420Planes& planes, RowRange rows) {
  I420Planes band = planes;
  band.height = rows.count;
  band.y += static_cast<size_t>(planes.stride_y) * rows.first;
  band.u += static_cast<size_t>(planes.stride_u) * (rows.first / 2);
  band.v += static_cast<size_t>(planes.stride_v) * (rows.first / 2);
  return band;
}

}  // namespace warmrtc
