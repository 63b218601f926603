// Row bands: one frame cut into horizontal slices that threads convert independently.
#pragma once

#include "i420_buffer.hpp"
#include "source_frame.hpp"

namespace warmrtc {

// Rows [first, first + count) of a frame.
struct RowRange {
  int first = 0, count = 0;
};

// Smallest band worth handing to another thread, in pixels: waking a parked worker and
// joining it costs tens of microseconds, about what converting this many pixels takes.
constexpr int kMinBandPixels = 128 * 1024;

// How many bands a width x height conversion is split into on `threads` threads: 1 (no
// split) for frames too small to pay, else up to 4 per thread so that a thread the OS
// delays holds up less of the frame; never a band under kMinBandPixels.
int band_count(int width, int height, int threads);

// Band `band` of `bands` over `height` rows: about equal parts, each starting on an even row
// (4:2:0 chroma rows pair with two luma rows); the last band takes the odd row, if any.
RowRange row_band(int height, int bands, int band);

// The rows `rows` of a frame, as a frame of its own: luma rows of every plane of packed
// formats, and the matching chroma rows (ceil(count / 2) from first / 2) of i420/nv12/nv21's
// chroma planes. `rows.first` must be even.
SourceFrame frame_rows(const SourceFrame& frame, RowRange rows);
I420Planes planes_rows(const I420Planes& planes, RowRange rows);

}  // namespace warmrtc
