"""Fuzzes strided, cropped and odd-size frames through to_i420 and VideoSource.capture.

Every plane is a view that ends right before a PROT_NONE guard page, so a read past any
view's real extent is SIGSEGV. Run it in its own interpreter (tests/test_planar_fuzz.py): a
crash ends that process, and the test reports it. ``main`` prints one JSON line of counts.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import warmrtc
from guarded_memory import guarded_plane

# Layouts: "i420" (y, u, v); "nv12"/"nv21" (y, uv (ch, cw, 2)); "...-2d" (y, uv (ch, 2 * cw));
# "...-single" one (h + ch, w) array; packed formats one (h, w[, c]) array.
PLANAR = ["i420", "nv12", "nv21", "nv12-2d", "nv21-2d", "i420-single", "nv12-single"]
PACKED = {"rgba": 4, "rgb24": 3, "bgr24": 3, "gray": 1, "yuyv": 2}
FAMILIES = {"planar": PLANAR, "packed": sorted(PACKED)}


@dataclass
class Counts:
    examples: int = 0
    conversions: int = 0
    captures: int = 0
    rejected: int = 0


@st.composite
def layouts(draw: st.DrawFn) -> tuple[int, int]:
    """(row padding in bytes, column step) of one plane view."""
    pad = draw(st.sampled_from([0, 0, 1, 3, 16, 64, 4096]) | st.integers(0, 200))
    return pad, draw(st.sampled_from([1, 1, 1, 2, 3]))


def plane(
    draw: st.DrawFn, rng: np.random.Generator, rows: int, cols: int, channels: int = 1
) -> np.ndarray:
    pad, step = draw(layouts())
    view = guarded_plane(
        rows, cols, channels, row_stride=cols * step * channels + pad, col_step=step
    )
    view[...] = rng.integers(0, 256, view.shape, dtype=np.uint8)
    return view


@st.composite
def frames(draw: st.DrawFn, layouts_of: list[str]) -> tuple[str, object, int, int]:
    """(fmt, frame, width, height) for one layout of `layouts_of`."""
    layout = draw(st.sampled_from(layouts_of))
    fmt = layout.split("-")[0]
    even = layout.endswith("single") or fmt in ("yuyv",)
    width = draw(st.integers(1, 70).map(lambda w: w + w % 2 if even else w))
    height = draw(st.integers(1, 50))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    cw, ch = (width + 1) // 2, (height + 1) // 2
    if layout in PACKED:
        return fmt, plane(draw, rng, height, width, PACKED[layout]), width, height
    if layout.endswith("single"):
        return fmt, plane(draw, rng, height + ch, width), width, height
    y = plane(draw, rng, height, width)
    if fmt == "i420":
        return fmt, (y, plane(draw, rng, ch, cw), plane(draw, rng, ch, cw)), width, height
    uv = plane(draw, rng, ch, 2 * cw) if layout.endswith("2d") else plane(draw, rng, ch, cw, 2)
    return fmt, (y, uv), width, height


def contiguous(frame: object) -> object:
    if isinstance(frame, tuple):
        return tuple(np.ascontiguousarray(p) for p in frame)
    return np.ascontiguousarray(frame)


def main(family: str, examples: int) -> None:
    counts = Counts()
    sizes = st.none() | st.tuples(st.integers(1, 80), st.integers(1, 60))

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(frames(FAMILIES[family]), sizes, st.booleans())
    def run(case: tuple[str, object, int, int], size: tuple[int, int] | None, fused: bool) -> None:
        fmt, frame, width, height = case
        counts.examples += 1
        try:
            got = warmrtc.to_i420(frame, fmt, size=size)
        except ValueError as e:  # only layouts the format cannot take (strided single i420)
            assert "C-contiguous" in str(e), e
            counts.rejected += 1
            return
        np.testing.assert_array_equal(got, warmrtc.to_i420(contiguous(frame), fmt, size=size))
        counts.conversions += 1
        out_w, out_h = size or (width, height)
        src = warmrtc.VideoSource(out_w, out_h, fmt, _fused=fused)
        try:
            assert src.capture(frame) is True
            assert src.stats["rejected"] == 0
        finally:
            src.close()
        counts.captures += 1

    run()
    print(json.dumps({"family": family, **counts.__dict__}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
