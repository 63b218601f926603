// Pixel formats a caller can hand us, named as FFmpeg/OpenCV name them (memory byte order).
#pragma once

#include <string>

namespace warmrtc {

enum class PixelFormat { RGB24, BGR24, RGBA, BGRA, ARGB, ABGR, NV12, NV21, YUYV, UYVY, GRAY, I420 };

// Parses "bgr24", "rgba", ...; throws std::invalid_argument listing the known names.
PixelFormat parse_pixel_format(const std::string& name);
const char* pixel_format_name(PixelFormat format);

// Bytes per pixel of a packed format (1 for gray, 2 for yuyv/uyvy); 0 for planar formats.
int packed_channels(PixelFormat format);
bool is_planar_yuv(PixelFormat format);  // i420, nv12, nv21
bool accepts_float(PixelFormat format);  // rgb24 / bgr24 from float32 in [0, 1]

// Chroma plane size of a 4:2:0 frame: odd sizes round up, as libyuv does.
inline int chroma_size(int luma_size) { return (luma_size + 1) / 2; }

}  // namespace warmrtc
