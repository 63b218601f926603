"""VideoSource: a LiveKit video source fed by the native pipeline (gate -> convert -> FFI)."""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING

from livekit import rtc
from livekit.rtc._ffi_client import FfiClient

from ._core import Pipeline
from ._media import exit_hook, native_logs

if TYPE_CHECKING:
    from ._session.mute import MuteSwitch


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


class VideoSource(Pipeline):
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
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps!r}")
        if isinstance(threads, bool) or not isinstance(threads, int):
            raise TypeError(f"threads must be an int >= 1, got {threads!r}")
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads!r}")
        request, drop = _ffi_function_addresses()
        exit_hook.install()  # every session has a source: its rooms are closed before exit
        native_logs.configure()  # and livekit's native logs stay native
        rtc_source = rtc.VideoSource(width, height) if 0 < width and 0 < height else None
        handle = rtc_source._ffi_handle.handle if rtc_source is not None else 0
        try:
            Pipeline.__init__(
                self,
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

    def mute(self) -> None:
        """Drops every frame from now on (in a session: the session is muted)."""
        self._set_muted(True)

    def unmute(self) -> None:
        """Lets frames through again (in a session: the session goes live)."""
        self._set_muted(False)

    def _set_muted(self, muted: bool) -> None:
        switch = self._switch
        if switch is not None:
            switch.set(muted)
        else:
            self._set_gate(muted)

    def _set_gate(self, muted: bool) -> None:
        """The native gate alone: for the mute switch, its only writer in a session."""
        if muted:
            Pipeline.mute(self)
        else:
            Pipeline.unmute(self)

    @property
    def _in_session(self) -> bool:
        return self._switch is not None

    def _attach(self, switch: MuteSwitch) -> None:
        self._switch = switch

    def _detach(self, switch: MuteSwitch) -> None:
        if self._switch is switch:
            self._switch = None

    @property
    def rtc_source(self) -> rtc.VideoSource:
        """The underlying ``livekit.rtc.VideoSource``, for publishing a track."""
        return self._rtc_source

    def close(self) -> None:
        """Stops the source: later ``capture()`` calls return False, and the worker threads
        (``threads`` > 1) are joined. Idempotent."""
        if self.closed:
            return
        self._close_gate()
        self._rtc_source._ffi_handle.dispose()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "muted" if self.muted else "live"
        threads = f", threads={self.threads}" if self.threads > 1 else ""
        return f"VideoSource({self.width}x{self.height}, fmt={self.fmt!r}{threads}, {state})"
