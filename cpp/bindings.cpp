// The native/Python boundary: translates Python objects to the core's types and back, and
// releases the GIL around pixel work and FFI calls. No logic of its own lives here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <optional>
#include <string>
#include <tuple>

#include "convert.hpp"
#include "ffi_request.hpp"
#include "i420_buffer.hpp"
#include "lock_handoff.hpp"
#include "source_frame.hpp"
#include "video_pipeline.hpp"

namespace py = pybind11;
using namespace warmrtc;

namespace {

constexpr int kMaxPlanes = 3;

// Keeps the Python buffers alive (and pinned) while the core reads them without the GIL.
struct HeldArrays {
  std::array<py::buffer_info, kMaxPlanes> buffers;
  std::array<py::object, kMaxPlanes> owners;
  ArrayView views[kMaxPlanes];
  int count = 0;
};

std::string type_name(py::handle obj) { return py::str(py::type::handle_of(obj).attr("__name__")); }

// DLPack producers (torch, jax on CPU) and __array_interface__ objects get a zero-copy numpy view.
py::object numpy_view(py::handle obj, const char* what) {
  if (py::hasattr(obj, "__dlpack__")) {
    return py::module_::import("numpy").attr("from_dlpack")(obj);
  }
  if (py::hasattr(obj, "__array_interface__") || py::hasattr(obj, "__array_struct__")) {
    return py::module_::import("numpy").attr("asarray")(obj);
  }
  throw py::type_error(std::string(what) + " must be a numpy array or support the buffer " +
                       "protocol, __array_interface__ or DLPack; got " + type_name(obj));
}

ElementType element_type(const py::buffer_info& info, const char* what) {
  const std::string& f = info.format;
  if (info.itemsize == 1 && (f == "B" || f == "c")) return ElementType::U8;
  if (info.itemsize == 4 && (f == "f" || f == "<f" || f == "=f")) return ElementType::F32;
  throw py::type_error(std::string(what) + " has element format '" + f + "' (" +
                       std::to_string(info.itemsize) + " bytes); expected uint8 " +
                       "(or float32 in [0, 1] for rgb24/bgr24)");
}

// Views `obj` as the next held array.
void hold(py::handle obj, const char* what, bool writable, HeldArrays& held) {
  const int i = held.count;
  py::object owner = py::reinterpret_borrow<py::object>(obj);
  if (!PyObject_CheckBuffer(obj.ptr())) owner = numpy_view(obj, what);
  try {
    held.buffers[i] = py::reinterpret_borrow<py::buffer>(owner).request(writable);
  } catch (py::error_already_set& e) {
    if (!e.matches(PyExc_BufferError)) throw;
    throw py::value_error(std::string(what) +
                          (writable ? " is read-only or not writable: " : ": ") +
                          py::str(e.value()).cast<std::string>());
  }
  held.owners[i] = owner;
  const py::buffer_info& info = held.buffers[i];
  ArrayView v;
  v.type = element_type(info, what);
  if (info.ndim < 1 || info.ndim > 3) {
    throw py::value_error(std::string(what) + " has " + std::to_string(info.ndim) +
                          " dimensions; frames have 2 or 3");
  }
  v.data = static_cast<const uint8_t*>(info.ptr);
  v.ndim = static_cast<int>(info.ndim);
  for (int d = 0; d < v.ndim; ++d) {
    v.shape[d] = info.shape[d];
    v.strides[d] = info.strides[d];
  }
  held.views[i] = v;
  held.count = i + 1;
}

// One array, or a tuple/list of planes.
void collect_frame(py::handle frame, HeldArrays& held) {
  if (py::isinstance<py::tuple>(frame) || py::isinstance<py::list>(frame)) {
    auto planes = py::reinterpret_borrow<py::sequence>(frame);
    if (planes.size() > kMaxPlanes || planes.size() == 0) {
      throw py::value_error("frame is a sequence of " + std::to_string(planes.size()) +
                            " planes; expected (y, u, v) or (y, uv)");
    }
    for (auto plane : planes) hold(plane, "plane", false, held);
    return;
  }
  hold(frame, "frame", false, held);
}

std::pair<int, int> parse_size(py::handle size) {
  auto wh = py::reinterpret_borrow<py::sequence>(size);
  if (!py::isinstance<py::sequence>(size) || wh.size() != 2) {
    throw py::value_error("size must be a (width, height) pair, got " +
                          py::repr(size).cast<std::string>());
  }
  const int w = wh[0].cast<int>(), h = wh[1].cast<int>();
  if (w <= 0 || h <= 0 || w > kMaxDimension || h > kMaxDimension) {
    throw py::value_error("size (" + std::to_string(w) + ", " + std::to_string(h) +
                          ") is out of range; each side must be 1.." +
                          std::to_string(kMaxDimension));
  }
  return {w, h};
}

py::array to_i420(py::object frame, const std::string& fmt, py::object size, py::object out) {
  const PixelFormat format = parse_pixel_format(fmt);
  HeldArrays held;
  collect_frame(frame, held);
  const SourceFrame src = describe_frame(format, held.views, held.count);
  auto [width, height] = size.is_none() ? std::pair{src.width, src.height} : parse_size(size);
  const int rows = i420_rows(height), cols = i420_cols(width);

  py::array result;
  if (out.is_none()) {
    result = py::array_t<uint8_t>({rows, cols});
  } else {
    result = py::reinterpret_borrow<py::array>(out);
    if (!py::isinstance<py::array>(out)) {
      throw py::type_error("out must be a numpy uint8 array, got " + type_name(out));
    }
    if (!result.dtype().is(py::dtype::of<uint8_t>())) {
      throw py::type_error("out has dtype " + py::str(result.dtype()).cast<std::string>() +
                           "; expected uint8");
    }
    if (!result.writeable()) throw py::value_error("out is read-only");
    if (result.ndim() != 2 || result.shape(0) != rows || result.shape(1) != cols) {
      throw py::value_error("out has shape " + py::str(result.attr("shape")).cast<std::string>() +
                            "; a " + std::to_string(width) + "x" + std::to_string(height) +
                            " I420 frame needs (" + std::to_string(rows) + ", " +
                            std::to_string(cols) + ")");
    }
    if (!(result.flags() & py::array::c_style)) throw py::value_error("out must be C-contiguous");
  }
  const I420Planes dst = i420_layout(static_cast<uint8_t*>(result.mutable_data()), width, height);
  {
    py::gil_scoped_release release;
    convert_to_i420(src, dst);
  }
  return result;
}

py::array from_i420(py::object frame, const std::string& fmt) {
  const PixelFormat format = parse_pixel_format(fmt);
  HeldArrays held;
  collect_frame(frame, held);
  const SourceFrame src = describe_frame(PixelFormat::I420, held.views, held.count);
  const int channels = packed_channels(format);
  if (channels < 1 || format == PixelFormat::YUYV || format == PixelFormat::UYVY) {
    throw py::value_error(std::string("frames can be written as rgb24, bgr24, rgba, bgra, argb, ") +
                          "abgr or gray, not " + fmt);
  }
  py::array result = format == PixelFormat::GRAY
                         ? py::array_t<uint8_t>({src.height, src.width})
                         : py::array_t<uint8_t>({src.height, src.width, channels});
  auto* dst = static_cast<uint8_t*>(result.mutable_data());
  {
    py::gil_scoped_release release;
    convert_from_i420(src, format, dst, src.width * channels);
  }
  return result;
}

py::dict stats_dict(const GateStats& s) {
  py::dict d;
  d["captured"] = s.captured;
  d["dropped_while_muted"] = s.dropped_while_muted;
  d["dropped_closed"] = s.dropped_closed;
  d["converted"] = s.converted;
  d["rejected"] = s.rejected;
  d["bytes_in"] = s.bytes_in;
  d["banded"] = s.banded;
  return d;
}

int64_t timestamp_of(py::handle timestamp_us) {
  if (timestamp_us.is_none()) return 0;  // livekit's default: the FFI stamps the frame itself
  if (!PyLong_Check(timestamp_us.ptr())) {
    throw py::type_error("timestamp_us must be an int (microseconds) or None, got " +
                         type_name(timestamp_us));
  }
  return timestamp_us.cast<int64_t>();
}

class Pipeline {
 public:
  Pipeline(uint64_t source_handle, int width, int height, const std::string& fmt,
           uintptr_t ffi_request, uintptr_t ffi_drop_handle, bool fused_packed, bool stamp_frames,
           int threads)
      : pipeline_(source_handle, checked_side(width, "width"), checked_side(height, "height"),
                  parse_pixel_format(fmt),
                  FfiFunctions{reinterpret_cast<FfiRequestFn>(ffi_request),
                               reinterpret_cast<FfiDropHandleFn>(ffi_drop_handle)},
                  fused_packed, stamp_frames, threads) {
    if (ffi_request == 0 || ffi_drop_handle == 0) {
      throw py::value_error("livekit FFI function addresses are missing");
    }
  }

  bool capture(py::handle frame, py::handle timestamp_us) {
    Gate& gate = pipeline_.gate();
    if (gate.enter() != Gate::Verdict::Pass) return false;  // muted: no work at all
    const Gate::Passage passage(gate);                      // close() waits for it
    try {
      const int64_t ts = timestamp_of(timestamp_us);
      HeldArrays held;
      collect_frame(frame, held);
      const SourceFrame src = describe_frame(pipeline_.format(), held.views, held.count);
      if (handoff_.keep_lock(pipeline_.brief(src))) return pipeline_.deliver(src, ts);
      py::gil_scoped_release release;
      return pipeline_.deliver(src, ts);
    } catch (...) {
      gate.rejected();
      throw;
    }
  }

  void mute() { pipeline_.gate().set_muted(true); }
  void unmute() { pipeline_.gate().set_muted(false); }
  bool muted() { return pipeline_.gate().muted(); }
  void close() {
    py::gil_scoped_release release;  // joining the workers may wait for a frame in flight
    pipeline_.close();
  }
  bool closed() { return pipeline_.gate().closed(); }
  py::dict stats() { return stats_dict(pipeline_.gate().stats()); }
  int width() const { return pipeline_.width(); }
  int height() const { return pipeline_.height(); }
  std::string format() const { return pixel_format_name(pipeline_.format()); }
  bool stamp_frames() const { return pipeline_.stamps_frames(); }
  int threads() const { return pipeline_.threads(); }

 private:
  static int checked_side(int side, const char* name) {
    if (side <= 0 || side > kMaxDimension) {
      throw py::value_error(std::string(name) + " " + std::to_string(side) +
                            " is out of range 1.." + std::to_string(kMaxDimension));
    }
    return side;
  }
  VideoPipeline pipeline_;
  LockHandoff handoff_;
};

py::bytes encode_capture_request_py(
    uint64_t source_handle, uint32_t type, uint32_t width, uint32_t height, uint64_t data_ptr,
    uint32_t stride, const std::vector<std::tuple<uint64_t, uint32_t, uint32_t>>& components,
    int64_t timestamp_us, uint32_t rotation,
    const std::optional<std::pair<uint64_t, uint32_t>>& metadata) {
  if (components.size() > 3) throw py::value_error("at most 3 components");
  FfiCaptureFrame f;
  f.source_handle = source_handle;
  f.type = static_cast<FfiBufferType>(type);
  f.width = width;
  f.height = height;
  f.data_ptr = data_ptr;
  f.stride = stride;
  for (const auto& [ptr, s, size] : components) f.components[f.component_count++] = {ptr, s, size};
  f.timestamp_us = timestamp_us;
  f.rotation = rotation;
  if (metadata) {
    f.has_metadata = true;
    std::tie(f.user_timestamp, f.frame_id) = *metadata;
  }
  uint8_t out[kMaxCaptureRequestBytes];
  const size_t n = encode_capture_request(f, out);
  return py::bytes(reinterpret_cast<const char*>(out), n);
}

// Docstrings: what Python callers see in help(); pybind11 puts the signature line first. The
// public functions' docstrings are written again in _core.pyi, where the documentation site
// reads them (tests/test_docstrings.py keeps the two the same). Google style, identifiers in
// backticks: the site renders them as Markdown.
constexpr const char* kToI420Doc =
    R"doc(Converts a frame to one contiguous I420 array (Y rows, then U, then V).

The GIL is released while pixels are converted; safe to call from many threads. The frame is
read without a copy: a numpy array, a buffer-protocol object, or an `__array_interface__` or
DLPack (CPU) producer, laid out for `fmt` as follows.

- `rgb24` `bgr24` `rgba` `bgra` `argb` `abgr`: an `(h, w, 3 or 4)` uint8 array with any
  positive strides; float32 in [0, 1] is taken for rgb24/bgr24 (values outside it are
  clamped, NaN counts as 0 and +inf as 1).
- `gray`: `(h, w)` or `(h, w, 1)`.
- `yuyv`/`uyvy`: `(h, w, 2)` with an even w.
- `i420`: a `(y, u, v)` tuple of `(h, w)`, `(ceil(h/2), ceil(w/2))` planes, or one
  C-contiguous `(h + ceil(h/2), w)` array with an even w.
- `nv12`/`nv21`: a `(y, uv)` tuple with uv `(ceil(h/2), ceil(w/2), 2)` or
  `(ceil(h/2), 2*ceil(w/2))`, or one `(h + ceil(h/2), w)` array with an even w.

Args:
    frame: The frame, laid out as above.
    fmt: One of the format names above.
    size: `(width, height)` to scale to (bilinear); None keeps the frame's size.
    out: A C-contiguous uint8 array of `i420_shape(width, height)` to write into and return.

Returns:
    An `(h + ceil(h/2), 2*ceil(w/2))` uint8 array. Y is h rows of w pixels, U and V follow,
    each `ceil(h/2) x ceil(w/2)`, packed back to back. For an odd w each Y row has one padding
    byte after its pixels, written as a copy of the row's last pixel, so the result is
    deterministic.

Raises:
    ValueError: An unknown `fmt`, a shape, stride or size the format cannot take, or a
        read-only or mis-shaped `out`.
    TypeError: A wrong dtype, or an object that is not an array.
)doc";

constexpr const char* kFromI420Doc = R"doc(Converts an I420 frame to packed pixels.

The GIL is released during the conversion.

Args:
    frame: An I420 frame as `to_i420` takes it (`(y, u, v)` planes or one
        `(h + ceil(h/2), w)` array).
    fmt: `rgb24` `bgr24` `rgba` `bgra` `argb` `abgr`, or `gray` (the Y plane).

Returns:
    An `(h, w, 3 or 4)` uint8 array, or `(h, w)` for `gray`.

Raises:
    ValueError: Any other `fmt`, or a frame that is not I420.
    TypeError: A wrong dtype.
)doc";

constexpr const char* kI420ShapeDoc = R"doc(The `(rows, cols)` of `to_i420`'s output for a frame.

Args:
    width: The frame's width.
    height: The frame's height.

Returns:
    `(height + ceil(height/2), 2*ceil(width/2))`.
)doc";

constexpr const char* kPipelineDoc =
    R"doc(One video source's native hot path: the mute gate, conversion/scaling to width x height I420,
and the capture request to livekit's FFI. Use warmrtc.VideoSource, which builds it from a
livekit.rtc.VideoSource; every method is thread-safe.
)doc";

constexpr const char* kPipelineInitDoc =
    R"doc(source_handle: the FFI handle of a livekit video source; width, height: 1..16384, the size
frames are sent at; fmt: the pixel format capture() takes (see to_i420); ffi_request,
ffi_drop_handle: addresses of livekit_ffi_request and livekit_ffi_drop_handle in the SDK's
loaded library; fused_packed: send RGBA-family/rgb24 frames of this size, with rows packed
back to back, unconverted so livekit converts them in one pass; stamp_frames: every frame
handed on carries LiveKit FrameMetadata: user_timestamp, the unix time in microseconds when
capture() let it through the gate, and frame_id, a per-source counter from 1; threads: 1
converts on the capturing thread; N > 1 starts N - 1 worker threads, owned by the pipeline
and joined by _close_gate(), that convert big frames in row bands beside it (same bytes).

Raises ValueError for a size out of range, an unknown fmt, threads < 1 or a missing function
address.
)doc";

constexpr const char* kCaptureDoc =
    R"doc(Sends one frame (in fmt, any size: it is scaled to width x height) to the FFI.

timestamp_us: an int in microseconds, or None to let livekit stamp the frame.

Returns True when the FFI took the frame; False when it was dropped: while muted (checked
first, before the frame is looked at), after the source was closed, or when the FFI refused
it. Raises ValueError/TypeError for a frame fmt cannot take (as to_i420 does) or a
timestamp_us that is not an int. Safe from any thread; the GIL is released for conversion
and the FFI call, and the frame's memory may be reused as soon as capture returns.
)doc";

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "warmrtc native core: conversion to I420, the mute gate, and the livekit FFI hand-off";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const FrameTypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    }
  });

  m.def("to_i420", &to_i420, py::arg("frame"), py::arg("fmt"), py::kw_only(),
        py::arg("size") = py::none(), py::arg("out") = py::none(), kToI420Doc);
  m.def("from_i420", &from_i420, py::arg("frame"), py::arg("fmt"), kFromI420Doc);
  m.def(
      "i420_shape",
      [](int w, int h) {
        return std::pair{i420_rows(h), i420_cols(w)};
      },
      py::arg("width"), py::arg("height"), kI420ShapeDoc);
  m.def("_encode_capture_request", &encode_capture_request_py, py::arg("source_handle"),
        py::arg("type"), py::arg("width"), py::arg("height"), py::arg("data_ptr"),
        py::arg("stride"), py::arg("components"), py::arg("timestamp_us"), py::arg("rotation"),
        py::arg("metadata") = py::none());

  py::class_<Pipeline>(m, "Pipeline", kPipelineDoc)
      .def(
          py::init<uint64_t, int, int, const std::string&, uintptr_t, uintptr_t, bool, bool, int>(),
          py::arg("source_handle"), py::arg("width"), py::arg("height"), py::arg("fmt"),
          py::arg("ffi_request"), py::arg("ffi_drop_handle"), py::arg("fused_packed") = false,
          py::arg("stamp_frames") = true, py::arg("threads") = 1, kPipelineInitDoc)
      .def("capture", &Pipeline::capture, py::arg("frame"), py::arg("timestamp_us") = py::none(),
           kCaptureDoc)
      .def("mute", &Pipeline::mute,
           "Drops every later capture() in microseconds, before any work. Idempotent.")
      .def("unmute", &Pipeline::unmute, "Lets later capture() calls through again. Idempotent.")
      .def_property_readonly("muted", &Pipeline::muted, "True while captures are dropped.")
      .def("_close_gate", &Pipeline::close,
           "Closes the gate for good: later capture() calls return False, and the worker "
           "threads are joined. Idempotent.")
      .def_property_readonly("closed", &Pipeline::closed, "True after _close_gate().")
      .def_property_readonly("stats", &Pipeline::stats,
                             "A new dict of the gate's counters: captured, dropped_while_muted, "
                             "dropped_closed, converted, rejected, bytes_in, and banded (of the "
                             "converted, those split into row bands across threads).")
      .def_property_readonly("width", &Pipeline::width, "Width frames are sent at.")
      .def_property_readonly("height", &Pipeline::height, "Height frames are sent at.")
      .def_property_readonly("fmt", &Pipeline::format, "The pixel format capture() takes.")
      .def_property_readonly("stamp_frames", &Pipeline::stamp_frames,
                             "True when frames carry FrameMetadata (capture time, frame id).")
      .def_property_readonly("threads", &Pipeline::threads,
                             "Threads that share one frame's conversion (1: the capturing one).");
}
