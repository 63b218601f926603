#include "pixel_format.hpp"

#include <stdexcept>

namespace warmrtc {
namespace {

struct FormatInfo {
  PixelFormat format;
  const char* name;
  int channels;  // bytes per pixel for packed formats, 0 for planar YUV
};

// The one table of formats: name, and how many bytes a packed pixel takes.
constexpr FormatInfo kFormats[] = {
    {PixelFormat::RGB24, "rgb24", 3}, {PixelFormat::BGR24, "bgr24", 3},
    {PixelFormat::RGBA, "rgba", 4},   {PixelFormat::BGRA, "bgra", 4},
    {PixelFormat::ARGB, "argb", 4},   {PixelFormat::ABGR, "abgr", 4},
    {PixelFormat::NV12, "nv12", 0},   {PixelFormat::NV21, "nv21", 0},
    {PixelFormat::YUYV, "yuyv", 2},   {PixelFormat::UYVY, "uyvy", 2},
    {PixelFormat::GRAY, "gray", 1},   {PixelFormat::I420, "i420", 0},
};

const FormatInfo& info(PixelFormat format) { return kFormats[static_cast<int>(format)]; }

}  // namespace

PixelFormat parse_pixel_format(const std::string& name) {
  std::string known;
  for (const auto& f : kFormats) {
    if (name == f.name) return f.format;
    known += known.empty() ? "" : ", ";
    known += f.name;
  }
  throw std::invalid_argument("unknown pixel format '" + name + "'; expected one of " + known);
}

const char* pixel_format_name(PixelFormat format) { return info(format).name; }

int packed_channels(PixelFormat format) { return info(format).channels; }

bool is_planar_yuv(PixelFormat format) { return info(format).channels == 0; }

bool accepts_float(PixelFormat format) {
  return format == PixelFormat::RGB24 || format == PixelFormat::BGR24;
}

}  // namespace warmrtc
