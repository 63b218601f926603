#include "convert.hpp"

#include <libyuv/convert.h>
#include <libyuv/convert_argb.h>
#include <libyuv/planar_functions.h>
#include <libyuv/scale.h>

#include <cstring>
#include <stdexcept>

#include "frame_buffer.hpp"
#include "row_bands.hpp"

namespace warmrtc {
namespace {

using PackedToI420 = int (*)(const uint8_t*, int, uint8_t*, int, uint8_t*, int, uint8_t*, int, int,
                             int);

// libyuv names formats by their little-endian word, FFmpeg by memory order: "bgra" in memory is
// libyuv's ARGB, and "bgr24" is libyuv's RGB24.
PackedToI420 packed_converter(PixelFormat format) {
  switch (format) {
    case PixelFormat::RGB24: return libyuv::RAWToI420;
    case PixelFormat::BGR24: return libyuv::RGB24ToI420;
    case PixelFormat::RGBA: return libyuv::ABGRToI420;
    case PixelFormat::BGRA: return libyuv::ARGBToI420;
    case PixelFormat::ARGB: return libyuv::BGRAToI420;
    case PixelFormat::ABGR: return libyuv::RGBAToI420;
    case PixelFormat::YUYV: return libyuv::YUY2ToI420;
    case PixelFormat::UYVY: return libyuv::UYVYToI420;
    case PixelFormat::GRAY: return libyuv::I400ToI420;
    default: return nullptr;
  }
}

using I420ToPacked = int (*)(const uint8_t*, int, const uint8_t*, int, const uint8_t*, int,
                             uint8_t*, int, int, int);

// The inverse table, in the same naming: "bgr24" out is libyuv's RGB24, "argb" is its BGRA.
I420ToPacked packed_writer(PixelFormat format) {
  switch (format) {
    case PixelFormat::RGB24: return libyuv::I420ToRAW;
    case PixelFormat::BGR24: return libyuv::I420ToRGB24;
    case PixelFormat::RGBA: return libyuv::I420ToABGR;
    case PixelFormat::BGRA: return libyuv::I420ToARGB;
    case PixelFormat::ARGB: return libyuv::I420ToBGRA;
    case PixelFormat::ABGR: return libyuv::I420ToRGBA;
    default: return nullptr;
  }
}

uint8_t to_byte(float x) {
  float scaled = x * 255.0f + 0.5f;
  scaled = scaled > 0.0f ? scaled : 0.0f;  // also maps NaN to 0
  scaled = scaled < 255.0f ? scaled : 255.0f;
  return static_cast<uint8_t>(scaled);
}

// Copies an arbitrarily strided (or float32) plane into contiguous bytes.
Plane gather(const Plane& p, FrameBuffer& scratch) {
  const size_t row_bytes = static_cast<size_t>(p.cols) * p.channels;
  uint8_t* const gathered = scratch.get(row_bytes * p.rows);
  for (int r = 0; r < p.rows; ++r) {
    const uint8_t* row = p.data + p.row_stride * r;
    uint8_t* out = gathered + row_bytes * r;
    if (p.type == ElementType::F32) {
      for (int c = 0; c < p.cols; ++c) {
        for (int k = 0; k < p.channels; ++k) {
          float value;
          const uint8_t* at = row + p.col_stride * c + p.channel_stride * k;
          std::memcpy(&value, at, sizeof value);
          *out++ = to_byte(value);
        }
      }
    } else {
      for (int c = 0; c < p.cols; ++c) {
        for (int k = 0; k < p.channels; ++k) {
          *out++ = row[p.col_stride * c + p.channel_stride * k];
        }
      }
    }
  }
  Plane packed = p;
  packed.data = gathered;
  packed.row_stride = static_cast<int64_t>(row_bytes);
  packed.col_stride = p.channels;
  packed.channel_stride = 1;
  packed.type = ElementType::U8;
  return packed;
}

int stride_of(const Plane& p) { return static_cast<int>(p.row_stride); }

void convert_same_size(const SourceFrame& f, const I420Planes& d) {
  const Plane* p = f.planes;
  int rc = 0;
  switch (f.format) {
    case PixelFormat::I420:
      rc = libyuv::I420Copy(p[0].data, stride_of(p[0]), p[1].data, stride_of(p[1]), p[2].data,
                            stride_of(p[2]), d.y, d.stride_y, d.u, d.stride_u, d.v, d.stride_v,
                            f.width, f.height);
      break;
    case PixelFormat::NV12:
      rc = libyuv::NV12ToI420(p[0].data, stride_of(p[0]), p[1].data, stride_of(p[1]), d.y,
                              d.stride_y, d.u, d.stride_u, d.v, d.stride_v, f.width, f.height);
      break;
    case PixelFormat::NV21:
      rc = libyuv::NV21ToI420(p[0].data, stride_of(p[0]), p[1].data, stride_of(p[1]), d.y,
                              d.stride_y, d.u, d.stride_u, d.v, d.stride_v, f.width, f.height);
      break;
    default:
      rc = packed_converter(f.format)(p[0].data, stride_of(p[0]), d.y, d.stride_y, d.u, d.stride_u,
                                      d.v, d.stride_v, f.width, f.height);
  }
  if (rc != 0) {
    throw std::invalid_argument(std::string("libyuv rejected the ") + pixel_format_name(f.format) +
                                " frame");
  }
}

// Converts a frame of dst's size, gathering strided or float32 planes first.
void convert_whole(const SourceFrame& src, const I420Planes& dst) {
  convert_same_size(packed_frame(src), dst);
  fill_luma_padding(dst);
}

// convert_whole in row bands on `pool`'s threads when the frame is big enough to pay; the
// output is byte for byte the same, since libyuv converts each pair of rows on its own.
// Returns the number of bands it used (1: the calling thread converted the whole frame).
int convert_banded(const SourceFrame& src, const I420Planes& dst, BandPool* pool) {
  const int bands = pool ? band_count(src.width, src.height, pool->threads()) : 1;
  const auto band = [&](int i) {
    const RowRange rows = row_band(src.height, bands, i);
    convert_whole(frame_rows(src, rows), planes_rows(dst, rows));
  };
  if (bands > 1 && pool->try_run(bands, band)) return bands;
  convert_whole(src, dst);
  return 1;
}

// Scales `src` into dst, through an unscaled I420 copy (converted in bands) unless src is
// I420. The scaling itself runs on the calling thread.
int scale_to_i420(const SourceFrame& src, const I420Planes& dst, BandPool* pool) {
  int bands = 1;
  SourceFrame f = src;
  I420Planes from;
  if (src.format == PixelFormat::I420) {
    f = packed_frame(src);
    from.y = const_cast<uint8_t*>(f.planes[0].data);
    from.u = const_cast<uint8_t*>(f.planes[1].data);
    from.v = const_cast<uint8_t*>(f.planes[2].data);
    from.stride_y = stride_of(f.planes[0]);
    from.stride_u = stride_of(f.planes[1]);
    from.stride_v = stride_of(f.planes[2]);
  } else {
    thread_local FrameBuffer unscaled;
    from = i420_layout(unscaled.get(i420_size(f.width, f.height)), f.width, f.height);
    bands = convert_banded(src, from, pool);
  }
  const int rc =
      libyuv::I420Scale(from.y, from.stride_y, from.u, from.stride_u, from.v, from.stride_v,
                        f.width, f.height, dst.y, dst.stride_y, dst.u, dst.stride_u, dst.v,
                        dst.stride_v, dst.width, dst.height, libyuv::kFilterBilinear);
  if (rc != 0) throw std::invalid_argument("libyuv could not scale the frame");
  fill_luma_padding(dst);
  return bands;
}

}  // namespace

SourceFrame packed_frame(const SourceFrame& src) {
  thread_local FrameBuffer scratch[3];
  SourceFrame out = src;
  for (int i = 0; i < src.plane_count; ++i) {
    if (!src.planes[i].packed()) out.planes[i] = gather(src.planes[i], scratch[i]);
  }
  return out;
}

int convert_to_i420(const SourceFrame& src, const I420Planes& dst, BandPool* pool) {
  if (dst.width == src.width && dst.height == src.height) return convert_banded(src, dst, pool);
  return scale_to_i420(src, dst, pool);
}

void convert_from_i420(const SourceFrame& src, PixelFormat format, uint8_t* dst, int dst_stride) {
  if (src.format != PixelFormat::I420) {
    throw std::invalid_argument("convert_from_i420 takes an i420 frame");
  }
  const SourceFrame f = packed_frame(src);
  const Plane* p = f.planes;
  int rc = 0;
  if (format == PixelFormat::GRAY) {
    libyuv::CopyPlane(p[0].data, stride_of(p[0]), dst, dst_stride, f.width, f.height);
  } else if (I420ToPacked writer = packed_writer(format)) {
    rc = writer(p[0].data, stride_of(p[0]), p[1].data, stride_of(p[1]), p[2].data, stride_of(p[2]),
                dst, dst_stride, f.width, f.height);
  } else {
    throw std::invalid_argument(std::string("frames can be written as rgb24, bgr24, rgba, bgra, ") +
                                "argb, abgr or gray, not " + pixel_format_name(format));
  }
  if (rc != 0) throw std::invalid_argument("libyuv could not convert the i420 frame");
}

}  // namespace warmrtc
