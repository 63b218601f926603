// Conversion of any source frame to I420 with libyuv, scaling when the sizes differ.
#pragma once

#include "band_pool.hpp"
#include "i420_buffer.hpp"
#include "source_frame.hpp"

namespace warmrtc {

// Writes `src` into `dst`, scaling (bilinear) when dst is another size, and fills dst's luma
// padding (see i420_layout). Safe to call from many threads at once: intermediate buffers are
// per thread and reused, so steady state allocates nothing. With a `pool`, a big frame's
// conversion is split into row bands run on its threads (the scaling step is not), giving
// the same bytes; a pool busy with another caller's frame is not waited for. Returns the
// number of bands the conversion was split into (1: none).
int convert_to_i420(const SourceFrame& src, const I420Planes& dst, BandPool* pool = nullptr);

// Writes the I420 frame `src` as packed `format` pixels (rgb24 ... abgr, gray) into `dst`,
// whose rows are `dst_stride` bytes apart. Throws std::invalid_argument for planar formats.
void convert_from_i420(const SourceFrame& src, PixelFormat format, uint8_t* dst, int dst_stride);

// A frame whose planes libyuv can read directly: bytes with contiguous pixels. Strided views
// and float32 frames are gathered into per-thread scratch; packed frames come back unchanged.
SourceFrame packed_frame(const SourceFrame& src);

}  // namespace warmrtc
