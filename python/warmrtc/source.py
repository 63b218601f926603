"""VideoSource: a LiveKit video source fed by the native pipeline (gate -> convert -> FFI).

The source owns its native pipeline (``_core.Pipeline``: the atomic mute gate, the conversion
to I420 and the hand-off to livekit's FFI) and livekit's ``VideoSource`` it feeds. While the
source is in a session, the session's mute switch is the only writer of the gate (see
:mod:`warmrtc._session.mute`): :func:`attach` and :func:`detach` are how a session takes and
gives back that role, and :func:`gate_of` is what the switch writes.
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any, Protocol

from livekit import rtc
from livekit.rtc._ffi_client import FfiClient

from ._core import Pipeline
from ._media import ffi_process

if TYPE_CHECKING:
    from ._core import PipelineStats


class MuteSwitch(Protocol):
    """What a session puts between the source and its gate (``_session.mute.MuteSwitch``)."""

    def set(self, muted: bool) -> None: ...


def _ffi_function_addresses() -> tuple[int, int]:
    """Addresses of livekit_ffi_request / livekit_ffi_drop_handle in the SDK's loaded library.

    Taken from the SDK's own ctypes handle, so there is one copy of the library and one FFI
    server in the process.
    """
    lib = FfiClient.instance._ffi_lib
    request = ctypes.cast(lib.livekit_ffi_request, ctypes.c_void_p).value
    drop = ctypes.cast(lib.livekit_ffi_drop_handle, ctypes.c_void_p).value
    if not request or not drop:
        raise RuntimeError("the livekit FFI library does not export livekit_ffi_request")
    return request, drop


class VideoSource:
    """A video source for a realtime session, safe to feed from any thread.

    ``capture(frame)`` takes frames in ``fmt`` (see :func:`warmrtc.to_i420` for the layouts),
    scales them to ``width`` x ``height`` when their size differs, and hands them to WebRTC with
    the GIL released. It returns True when the frame was handed on, and False when it was
    dropped: while muted (checked first, in microseconds, before any work) or after
    :meth:`close`. Bad frames raise ``ValueError``/``TypeError`` naming the problem.

    With ``stamp_frames`` (the default) each frame handed on carries LiveKit frame metadata:
    its capture time (unix epoch microseconds, taken as it passes the gate) and a frame
    number. A service that supports frame timing echoes the time on the frame it generates
    from it, which is how a session measures glass-to-glass latency (``session.latency``).
    It costs a clock read and 20 bytes of request; a muted capture does none of it.

    ``threads`` (default 1) is how many threads convert one frame. With 1, each ``capture()``
    converts on the thread that calls it, so several sources fed from several threads use as
    many cores. With N > 1 the source starts N - 1 worker threads of its own, once, and a big
    frame's conversion (about 256K pixels and up, e.g. 720p, 1080p, 4K) is split into row
    bands that they convert beside the capturing thread, with the same bytes as one thread
    would write; smaller frames and the FFI hand-off stay on the capturing thread. After a
    frame a worker polls for the next one for up to 200 us (yielding its core) before it
    sleeps. It is for one huge stream on a machine with cores to spare. :meth:`close` joins
    the workers.
    Captures from several threads into one such source are safe: while one frame uses the
    workers, another converts on its own thread.

    Mute state lives in the native gate. ``mute()``/``unmute()`` flip it; while the source is
    in a session they go through the session's mute switch, which makes the published track
    follow, exactly like ``session.mute()``/``session.unmute()``: the two never disagree.
    """

    def __init__(
        self,
        width: int,
        height: int,
        fmt: str = "bgr24",
        fps: float = 30,
        *,
        stamp_frames: bool = True,
        threads: int = 1,
        _fused: bool = False,
    ) -> None:
        if isinstance(fps, bool) or not isinstance(fps, int | float) or not fps > 0:
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        if isinstance(threads, bool) or not isinstance(threads, int):
            raise TypeError(f"threads must be an int >= 1, got {threads!r}")
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads!r}")
        request, drop = _ffi_function_addresses()
        ffi_process.prepare()
        rtc_source = rtc.VideoSource(width, height) if _positive_ints(width, height) else None
        handle = rtc_source._ffi_handle.handle if rtc_source is not None else 0
        try:
            self._pipeline = Pipeline(
                handle,
                width,
                height,
                fmt,
                request,
                drop,
                _fused,
                bool(stamp_frames),
                threads,
            )
        except BaseException:
            if rtc_source is not None:
                rtc_source._ffi_handle.dispose()
            raise
        assert rtc_source is not None  # the pipeline rejects sizes that made no source
        self._rtc_source = rtc_source
        self._switch: MuteSwitch | None = None  # the session's, while the source is in one
        self.fps = float(fps)
        """The frame rate the track is published for (the encoder's setting)."""
        # capture() below documents the call; calls go straight to the pipeline's own method,
        # with no Python frame in between (~800 instructions of a ~2 us small-frame capture).
        self.capture = self._pipeline.capture  # type: ignore[method-assign]

    def capture(self, frame: Any, timestamp_us: int | None = None) -> bool:
        """Hands ``frame`` on to WebRTC; True when it was, False when it was dropped (muted, or
        the source is closed). Any thread; the GIL is released for the pixel work.

        Args:
            frame: A numpy array (or buffer) in ``fmt``, any strides: ``(h, w, 3)`` for
                bgr24/rgb24, ``(h, w, 4)`` for the 32-bit formats, ``(h*3//2, w)`` for
                i420/nv12/nv21, a ``(y, u, v)`` / ``(y, uv)`` tuple of planes, float32
                ``(h, w, 3)`` in [0, 1] for rgb24/bgr24 (values outside it are clamped, NaN
                counts as 0). A frame of another size is scaled to ``width`` x ``height``.
            timestamp_us: The capture time to stamp (unix epoch microseconds; default now).

        Returns:
            True when the frame was handed on; False when it was dropped.

        Raises:
            ValueError: A frame ``fmt`` cannot take (its shape, strides or size).
            TypeError: A frame of the wrong dtype, or not an array at all.
        """
        return self._pipeline.capture(frame, timestamp_us)

    def mute(self) -> None:
        """Drops every frame from now on (in a session: the session is muted)."""
        switch = self._switch
        if switch is not None:
            switch.set(True)
        else:
            self._pipeline.mute()

    def unmute(self) -> None:
        """Lets frames through again (in a session: the session goes live)."""
        switch = self._switch
        if switch is not None:
            switch.set(False)
        else:
            self._pipeline.unmute()

    @property
    def muted(self) -> bool:
        """True while the gate drops every frame."""
        return self._pipeline.muted

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._pipeline.closed

    @property
    def stats(self) -> PipelineStats:
        """The native gate's counters: ``captured``, ``dropped_while_muted``,
        ``dropped_closed``, ``converted`` (handed to WebRTC), ``rejected`` (bad frames),
        ``bytes_in``, ``banded`` (converted in row bands)."""
        return self._pipeline.stats

    @property
    def width(self) -> int:
        """The width frames are sent at."""
        return self._pipeline.width

    @property
    def height(self) -> int:
        """The height frames are sent at."""
        return self._pipeline.height

    @property
    def fmt(self) -> str:
        """The pixel format :meth:`capture` takes."""
        return self._pipeline.fmt

    @property
    def stamp_frames(self) -> bool:
        """True when frames carry LiveKit frame metadata (capture time, frame number)."""
        return self._pipeline.stamp_frames

    @property
    def threads(self) -> int:
        """Threads that share one frame's conversion (1: the capturing one)."""
        return self._pipeline.threads

    @property
    def rtc_source(self) -> rtc.VideoSource:
        """The underlying ``livekit.rtc.VideoSource``, for publishing a track."""
        return self._rtc_source

    def close(self) -> None:
        """Stops the source: later ``capture()`` calls return False, and the worker threads
        (``threads`` > 1) are joined. Idempotent."""
        if self.closed:
            return
        self._pipeline._close_gate()
        self._rtc_source._ffi_handle.dispose()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "muted" if self.muted else "live"
        threads = f", threads={self.threads}" if self.threads > 1 else ""
        return f"VideoSource({self.width}x{self.height}, fmt={self.fmt!r}{threads}, {state})"


# ---- for the session that holds the source ----------------------------------------------------


def gate_of(source: VideoSource) -> Pipeline:
    """The source's native gate, which a session's mute switch writes."""
    return source._pipeline


def in_session(source: VideoSource) -> bool:
    return source._switch is not None


def attach(source: VideoSource, switch: MuteSwitch) -> None:
    """A session takes the source: its mute() and unmute() go through ``switch`` from now on."""
    if source._switch is not None and source._switch is not switch:
        raise ValueError("source is already used by a live session; make one source per session")
    source._switch = switch


def detach(source: VideoSource, switch: MuteSwitch) -> None:
    """The session gives the source back (its mute() flips the gate alone again)."""
    if source._switch is switch:
        source._switch = None


def _positive_ints(*values: object) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values)


__all__ = ["VideoSource"]
