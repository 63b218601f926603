"""ModelOutput: one reader per video track the model publishes in a LiveKit room.

The model (participants ``inference-server-*``) may publish its output before or after we
join, and publishes it again when generation restarts: a reader is attached on every
subscribe of a track not read yet, and to what was already subscribed when the join finished
(:meth:`attach_subscribed`). When the model publishes, livekit is asked for an offer at once,
so the server starts the subscription without its own wait (:mod:`.early_offer`). A track
whose decoded frames never reach its reader is subscribed anew (:mod:`.stalled_track`), and the
new track gets a reader of its own. Used by a session's media link and by a spectator alike.

The readers run on a :class:`ReceiveThread` of this output's own: each frame is taken from the
FFI and converted to the output format there, with the GIL released for the pixels, and the
finished :class:`GeneratedFrame` is handed to the owner's loop in order (the newest few wait
while that loop is busy; older ones are dropped). The owner's loop does no pixel work at all.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable

from livekit import rtc

from .. import _trace
from .._protocol.models import INFERENCE_IDENTITY_PREFIX
from .early_offer import offer_now
from .ffi_video_stream import generated_frames
from .latest_queue import FRAME_DEPTH, LoopDelivery
from .receive_thread import ReceiveThread
from .rtc_frame import GeneratedFrame
from .stalled_track import resubscribe_when_stalled

log = logging.getLogger("warmrtc")


class ModelOutput:
    """Reads the model's video tracks in ``room``; ``on_frame`` gets every converted frame,
    on the loop that made this object. Built, used and stopped on that loop. ``expecting()``
    says when generated frames should come (a live session), so a track that stalls is found.
    ``on_dropped()`` is called, from any thread, for each frame dropped because its reader (the
    receive thread, or ``on_frame`` on the owner's loop) was not keeping up."""

    def __init__(
        self,
        room: rtc.Room,
        on_frame: Callable[[GeneratedFrame], None],
        name: str,
        output_format: str,
        expecting: Callable[[], bool] = lambda: True,
        on_dropped: Callable[[], None] = lambda: None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._on_dropped = on_dropped
        self._expecting = expecting
        self._watches: set[asyncio.Task[None]] = set()  # for stalled tracks, until a first frame
        self._format = output_format
        self._name = name  # of the receive thread
        self._handoff: LoopDelivery[GeneratedFrame] = LoopDelivery(
            self._loop, on_frame, FRAME_DEPTH, name="the model's output", on_drop=self._dropped
        )
        self._thread: ReceiveThread | None = None  # started with the first track
        # Every track read, in order, alive until the room is left: livekit's FFI drops a room's
        # remote track handles itself when it closes, and a track collected before that (the
        # model left first) would make it log "Attempted to drop unknown FFI handle". A track
        # subscribed anew comes back as a new object with the same sid, and is read in turn.
        self.tracks: list[rtc.Track] = []
        self._stopped = False
        self._last_frame_at: float | None = None  # time.monotonic(), on the receive thread
        self._stopping: list[asyncio.Task[None]] = []  # the end of the receive thread, awaited
        self._room = room
        room.on("track_subscribed", self._subscribed)
        room.on("track_published", self._published)

    @property
    def last_frame_at(self) -> float | None:
        """When a generated frame last reached the receive thread (``time.monotonic()``),
        whether or not the app's reader kept it; None before the first."""
        return self._last_frame_at

    @property
    def current_tracks(self) -> list[rtc.Track]:
        """The tracks read now, one per output track (not the stalled ones they replaced)."""
        return list({track.sid: track for track in self.tracks}.values())

    def attach_subscribed(self) -> None:
        """Attaches to the model's tracks subscribed before the handler could see them."""
        for participant in self._room.remote_participants.values():
            for pub in participant.track_publications.values():
                if pub.track is not None and pub.subscribed:
                    self._subscribed(pub.track, pub, participant)  # type: ignore[arg-type]

    def stop(self) -> list[asyncio.Task[None]]:
        """Stops every reader (each hands its FFI buffers back) and ends the receive thread;
        delivers nothing more and attaches no more. The caller awaits the returned tasks, which
        end once the thread has, within a bound. Idempotent: later calls return the same."""
        self._stopped = True
        self._handoff.close()
        for watch in self._watches:
            watch.cancel()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.stop()  # from here, even if nobody awaits the end, the thread goes
            name = f"{self._name}-stop"
            self._stopping.append(self._loop.create_task(thread.wait_stopped(), name=name))
        return list(self._stopping)

    def release(self) -> None:
        """Lets the tracks go: call once the room is left."""
        self.tracks.clear()

    def _published(
        self, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        # The server starts our subscription to a new output track at our next offer.
        if not participant.identity.startswith(INFERENCE_IDENTITY_PREFIX) or self._stopped:
            return
        if publication.kind == rtc.TrackKind.KIND_VIDEO:
            offer_now(self._room.local_participant, "client.offer_now")

    def _subscribed(
        self, track: rtc.Track, pub: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        if not participant.identity.startswith(INFERENCE_IDENTITY_PREFIX):
            return  # a client's camera is not the model's output
        if track.kind != rtc.TrackKind.KIND_VIDEO or self._stopped:
            return
        if any(read is track for read in self.tracks):
            return  # read already, or stalled and replaced: never read again
        self.tracks.append(track)
        _trace.mark("client.output_subscribed", muted=getattr(pub, "muted", None))
        if _trace.enabled() and isinstance(track, rtc.RemoteVideoTrack):
            # Tracing only: frames and keyframes received and decoded, keyframe requests sent.
            watching = self._loop.create_task(_trace.watch_stats(track.get_stats, "client.out"))
            self._watches.add(watching)
            watching.add_done_callback(self._watches.discard)
        first = threading.Event()  # set on the receive thread
        reader = self._start_reader(track, first)
        watch = self._loop.create_task(
            resubscribe_when_stalled(track, pub, first.is_set, reader.cancel, self._expecting)
        )
        self._watches.add(watch)
        watch.add_done_callback(self._watches.discard)

    def _start_reader(
        self, track: rtc.Track, first: threading.Event
    ) -> concurrent.futures.Future[None]:
        if self._thread is None:
            self._thread = ReceiveThread(self._name)
        reader = self._thread.submit(self._read(track, first))
        reader.add_done_callback(lambda done: self._reader_ended(track.sid, done))
        return reader

    async def _read(self, track: rtc.Track, first: threading.Event) -> None:
        # On the receive thread.
        async for frame in generated_frames(track, self._format, on_dropped=self._on_dropped):
            self._last_frame_at = time.monotonic()
            if not first.is_set():
                first.set()
                _trace.mark("client.output_frame")
            self._handoff.put(frame)

    def _dropped(self, _frame: GeneratedFrame) -> None:
        if not self._stopped:  # frames let go at the stop were not dropped for speed
            self._on_dropped()

    def _reader_ended(self, sid: str, reader: concurrent.futures.Future[None]) -> None:
        # On the receive thread: a reader that failed says so on the owner's loop, with its error.
        if reader.cancelled() or reader.exception() is None:
            return
        try:
            self._loop.call_soon_threadsafe(self._failed, sid, reader.exception())
        except RuntimeError:  # the owner's loop is gone: say it here
            self._failed(sid, reader.exception())

    def _failed(self, sid: str, error: BaseException | None) -> None:
        log.error(
            "%s: reading the model's output track %s failed; its frames stop",
            self._name,
            sid,
            exc_info=error,
        )


__all__ = ["ModelOutput"]
