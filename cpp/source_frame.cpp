#include "source_frame.hpp"

#include <string>

namespace warmrtc {
namespace {

std::string shape_text(const ArrayView& a) {
  std::string s = "(";
  for (int i = 0; i < a.ndim; ++i) {
    s += std::to_string(a.shape[i]);
    if (i + 1 < a.ndim || a.ndim == 1) s += ", ";
  }
  if (a.ndim == 1) s.resize(s.size() - 1);
  return s + ")";
}

std::string fail_prefix(PixelFormat format, const char* what, const ArrayView& a) {
  return std::string(what) + " has shape " + shape_text(a) + "; " + pixel_format_name(format);
}

void check_dimensions(int width, int height, PixelFormat format) {
  if (width <= 0 || height <= 0) {
    throw std::invalid_argument(std::string(pixel_format_name(format)) + " frame is empty (" +
                                std::to_string(width) + "x" + std::to_string(height) + ")");
  }
  if (width > kMaxDimension || height > kMaxDimension) {
    throw std::invalid_argument(std::string(pixel_format_name(format)) + " frame is " +
                                std::to_string(width) + "x" + std::to_string(height) +
                                "; the largest side we take is " + std::to_string(kMaxDimension));
  }
}

// How flat bytes of a frame in `format` become an array of its shape.
std::string reshaped(PixelFormat format) {
  const std::string from = "numpy.frombuffer(data, numpy.uint8).reshape(";
  if (is_planar_yuv(format)) return from + "h * 3 // 2, w)";
  const int channels = packed_channels(format);
  if (channels == 1) return from + "h, w)";
  return from + "h, w, " + std::to_string(channels) + ")";
}

void check_common(PixelFormat format, const ArrayView& a, const char* what) {
  if (a.ndim == 1) {  // flat bytes (frame.tobytes(), a bytearray): the shape is what is missing
    throw std::invalid_argument(std::string(what) + " has shape " + shape_text(a) +
                                ", one-dimensional as flat bytes are; " +
                                pixel_format_name(format) +
                                " needs a numpy array in the frame's shape: " + reshaped(format));
  }
  if (a.type == ElementType::F32 && !accepts_float(format)) {
    throw FrameTypeError(std::string(what) + " has dtype float32; " + pixel_format_name(format) +
                         " needs uint8 (float32 in [0, 1] is taken for rgb24 and bgr24 only)");
  }
  for (int i = 0; i < a.ndim; ++i) {
    if (a.strides[i] < 0) {
      throw std::invalid_argument(std::string(what) + " has negative strides; pass a copy " +
                                  "(numpy.ascontiguousarray) of flipped views");
    }
    if (a.shape[i] > kMaxDimension * 4) {
      throw std::invalid_argument(fail_prefix(format, what, a) + " is larger than " +
                                  std::to_string(kMaxDimension) + " per side");
    }
  }
}

// A plane of `channels` elements per pixel from a 2-d array (channels == 1) or a 3-d array.
Plane plane_of(PixelFormat format, const ArrayView& a, int channels, const char* what,
               const char* expected) {
  check_common(format, a, what);
  const bool fits = (a.ndim == 3 && a.shape[2] == channels) || (a.ndim == 2 && channels == 1);
  if (!fits) {
    throw std::invalid_argument(fail_prefix(format, what, a) + " needs " + expected);
  }
  Plane p;
  p.data = a.data;
  p.rows = static_cast<int>(a.shape[0]);
  p.cols = static_cast<int>(a.shape[1]);
  p.channels = channels;
  p.row_stride = a.strides[0];
  p.col_stride = a.strides[1];
  p.channel_stride = a.ndim == 3 ? a.strides[2] : 1;
  p.type = a.type;
  return p;
}

void expect_plane_size(PixelFormat format, const Plane& p, const ArrayView& a, const char* what,
                       int rows, int cols) {
  if (p.rows != rows || p.cols != cols) {
    throw std::invalid_argument(fail_prefix(format, what, a) + " needs (" + std::to_string(rows) +
                                ", " + std::to_string(cols) + ") for a " + std::to_string(cols) +
                                "-wide chroma plane of a " + "frame of that luma size");
  }
}

// Height of a 4:2:0 frame stored as one array of `rows` rows (luma rows + chroma rows).
int planar_height(int64_t rows) {
  if (rows % 3 == 0) return static_cast<int>(rows / 3 * 2);
  if (rows % 3 == 2) return static_cast<int>((rows * 2 - 1) / 3);
  return -1;
}

SourceFrame describe_packed(PixelFormat format, const ArrayView* arrays, int count) {
  if (count != 1) {
    throw std::invalid_argument(std::string(pixel_format_name(format)) +
                                " takes one array, got a tuple of " + std::to_string(count));
  }
  const int channels = packed_channels(format);
  const std::string expected =
      channels == 1 ? "(h, w) or (h, w, 1)" : "(h, w, " + std::to_string(channels) + ")";
  SourceFrame f;
  f.format = format;
  const ArrayView& a = arrays[0];
  if (format == PixelFormat::GRAY && a.ndim == 3 && a.shape[2] == 1) {
    f.planes[0] = plane_of(format, a, 1, "frame", expected.c_str());
    f.planes[0].channel_stride = 1;
  } else {
    f.planes[0] = plane_of(format, a, channels, "frame", expected.c_str());
  }
  f.plane_count = 1;
  f.width = f.planes[0].cols;
  f.height = f.planes[0].rows;
  check_dimensions(f.width, f.height, format);
  if ((format == PixelFormat::YUYV || format == PixelFormat::UYVY) && f.width % 2 != 0) {
    throw std::invalid_argument(fail_prefix(format, "frame", a) +
                                " needs an even width (two pixels share one chroma pair)");
  }
  return f;
}

SourceFrame describe_planar_single(PixelFormat format, const ArrayView& a) {
  check_common(format, a, "frame");
  const char* name = pixel_format_name(format);
  if (a.ndim != 2) {
    throw std::invalid_argument(fail_prefix(format, "frame", a) +
                                " needs (h * 3 // 2, w), or a tuple of planes");
  }
  const int height = planar_height(a.shape[0]);
  const int width = static_cast<int>(a.shape[1]);
  if (height <= 0 || width % 2 != 0) {
    throw std::invalid_argument(fail_prefix(format, "frame", a) +
                                " needs (h + (h + 1) // 2, w) with an even w; pass a tuple of "
                                "planes for odd widths");
  }
  check_dimensions(width, height, format);
  const int ch = chroma_size(height), cw = chroma_size(width);
  SourceFrame f;
  f.format = format;
  f.width = width;
  f.height = height;
  Plane y;
  y.data = a.data;
  y.rows = height;
  y.cols = width;
  y.row_stride = a.strides[0];
  y.col_stride = a.strides[1];
  y.channel_stride = 1;
  f.planes[0] = y;
  const uint8_t* chroma = a.data + a.strides[0] * height;
  if (format == PixelFormat::I420) {
    // U and V rows are half a row wide, so they only line up in a C-contiguous array.
    if (a.strides[1] != 1 || a.strides[0] != width) {
      throw std::invalid_argument(std::string("a single-array ") + name +
                                  " frame must be C-contiguous; pass (y, u, v) planes for "
                                  "strided data");
    }
    Plane u = y;
    u.data = chroma;
    u.rows = ch;
    u.cols = cw;
    u.row_stride = cw;
    Plane v = u;
    v.data = chroma + static_cast<int64_t>(ch) * cw;
    f.planes[1] = u;
    f.planes[2] = v;
    f.plane_count = 3;
  } else {
    Plane uv = y;
    uv.data = chroma;
    uv.rows = ch;
    uv.cols = cw;
    uv.channels = 2;
    uv.col_stride = a.strides[1] * 2;
    uv.channel_stride = a.strides[1];
    f.planes[1] = uv;
    f.plane_count = 2;
  }
  return f;
}

SourceFrame describe_planar_tuple(PixelFormat format, const ArrayView* arrays, int count) {
  const bool i420 = format == PixelFormat::I420;
  const int expected_count = i420 ? 3 : 2;
  if (count != expected_count) {
    throw std::invalid_argument(std::string(pixel_format_name(format)) + " takes " +
                                (i420 ? "(y, u, v)" : "(y, uv)") + " planes, got a tuple of " +
                                std::to_string(count));
  }
  SourceFrame f;
  f.format = format;
  f.planes[0] = plane_of(format, arrays[0], 1, "y plane", "(h, w)");
  f.width = f.planes[0].cols;
  f.height = f.planes[0].rows;
  check_dimensions(f.width, f.height, format);
  const int ch = chroma_size(f.height), cw = chroma_size(f.width);
  if (i420) {
    f.planes[1] = plane_of(format, arrays[1], 1, "u plane", "(h / 2, w / 2), rounded up");
    f.planes[2] = plane_of(format, arrays[2], 1, "v plane", "(h / 2, w / 2), rounded up");
    expect_plane_size(format, f.planes[1], arrays[1], "u plane", ch, cw);
    expect_plane_size(format, f.planes[2], arrays[2], "v plane", ch, cw);
    f.plane_count = 3;
    return f;
  }
  const ArrayView& uv = arrays[1];
  if (uv.ndim == 2) {
    // (ch, 2 * cw): interleaved pairs in one row of bytes.
    Plane p = plane_of(format, uv, 1, "uv plane", "(h / 2, w / 2, 2) or (h / 2, w)");
    if (p.cols != 2 * cw || p.rows != ch) {
      expect_plane_size(format, p, uv, "uv plane", ch, 2 * cw);
    }
    p.cols = cw;
    p.channels = 2;
    p.channel_stride = p.col_stride;
    p.col_stride *= 2;
    f.planes[1] = p;
  } else {
    f.planes[1] = plane_of(format, uv, 2, "uv plane", "(h / 2, w / 2, 2) or (h / 2, w)");
    expect_plane_size(format, f.planes[1], uv, "uv plane", ch, cw);
  }
  f.plane_count = 2;
  return f;
}

}  // namespace

bool Plane::packed() const {
  // libyuv steps through rows with int strides, two rows at a time: every such step must fit.
  const int64_t steps = rows > 2 ? rows : 2;
  return type == ElementType::U8 && channel_stride == 1 && col_stride == channels &&
         row_stride >= static_cast<int64_t>(cols) * channels && row_stride * steps <= INT32_MAX;
}

size_t Plane::bytes() const {
  const size_t element = type == ElementType::F32 ? 4 : 1;
  return static_cast<size_t>(rows) * cols * channels * element;
}

size_t SourceFrame::bytes() const {
  size_t total = 0;
  for (int i = 0; i < plane_count; ++i) total += planes[i].bytes();
  return total;
}

SourceFrame describe_frame(PixelFormat format, const ArrayView* arrays, int count) {
  if (count <= 0) {
    throw std::invalid_argument(std::string(pixel_format_name(format)) +
                                " frame is an empty tuple of planes");
  }
  if (!is_planar_yuv(format)) return describe_packed(format, arrays, count);
  if (count == 1) return describe_planar_single(format, arrays[0]);
  return describe_planar_tuple(format, arrays, count);
}

}  // namespace warmrtc
