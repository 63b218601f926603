"""ModelOutput: one reader per video track the model publishes in a LiveKit room.

The model (participants ``inference-server-*``) may publish its output before or after we
join, and publishes it again when generation restarts: a reader is attached on every
subscribe of a track not read yet, and to what was already subscribed when the join finished
(:meth:`attach_subscribed`). Used by a session's media link and by a spectator alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from livekit import rtc

from . import trace
from .models import INFERENCE_IDENTITY_PREFIX


class ModelOutput:
    """Reads the model's video tracks in ``room``; ``on_frame`` gets every frame event."""

    def __init__(
        self, room: rtc.Room, on_frame: Callable[[rtc.VideoFrameEvent], None], name: str
    ) -> None:
        self._on_frame = on_frame
        self._name = name  # of the reader tasks
        self._readers: dict[str, asyncio.Task[None]] = {}  # by track sid
        # The tracks, alive until the room is left: livekit's FFI drops a room's remote track
        # handles itself when it closes, and a track collected before that (the model left
        # first) would make it log "Attempted to drop unknown FFI handle".
        self.tracks: list[rtc.Track] = []
        self._stopped = False
        self._room = room
        room.on("track_subscribed", self._subscribed)

    def attach_subscribed(self) -> None:
        """Attaches to the model's tracks subscribed before the handler could see them."""
        for participant in self._room.remote_participants.values():
            for pub in participant.track_publications.values():
                if pub.track is not None and pub.subscribed:
                    self._subscribed(pub.track, pub, participant)  # type: ignore[arg-type]

    def stop(self) -> list[asyncio.Task[None]]:
        """Cancels every reader and attaches no more; the caller awaits the returned tasks."""
        self._stopped = True
        readers = list(self._readers.values())
        for task in readers:
            task.cancel()
        self._readers.clear()
        return readers

    def release(self) -> None:
        """Lets the tracks go: call once the room is left."""
        self.tracks.clear()

    def _subscribed(
        self, track: rtc.Track, _pub: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        if not participant.identity.startswith(INFERENCE_IDENTITY_PREFIX):
            return  # a client's camera is not the model's output
        if track.kind != rtc.TrackKind.KIND_VIDEO or track.sid in self._readers or self._stopped:
            return
        self.tracks.append(track)
        trace.mark("client.output_subscribed", muted=_pub.muted)
        self._readers[track.sid] = asyncio.get_running_loop().create_task(
            self._read(track), name=self._name
        )

    async def _read(self, track: rtc.Track) -> None:
        stream = rtc.VideoStream(track, format=rtc.VideoBufferType.I420)
        first = True
        try:
            async for event in stream:
                if first:
                    first = False
                    trace.mark("client.output_frame")
                self._on_frame(event)
        finally:
            await stream.aclose()


__all__ = ["ModelOutput"]
