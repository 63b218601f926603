"""generated_frames(): a remote video track's frames, taken from livekit's FFI and converted
on the loop that iterates it (the receive thread's).

This is livekit's ``VideoStream`` without its copy: the SDK copies every frame out of the FFI
buffer into a ``bytearray`` (1.4 MB at 720p) before anyone sees it; here the native core
converts straight from the FFI's buffer into the output array, and the buffer goes back to the
FFI at once. The FFI delivers events to the loop that subscribed, so whichever loop iterates
this is the one that does the work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from livekit import rtc
from livekit.rtc._ffi_client import FfiClient, FfiHandle
from livekit.rtc._proto import ffi_pb2 as proto_ffi
from livekit.rtc._proto import video_frame_pb2 as proto_video

from .rtc_frame import GeneratedFrame, release, take_generated

log = logging.getLogger("warmrtc")

BACKLOG = 4  # frames waiting behind the one at hand past which it is dropped, not converted


async def generated_frames(
    track: rtc.Track, fmt: str, *, backlog: int = BACKLOG
) -> AsyncIterator[GeneratedFrame]:
    """``track``'s frames as :class:`GeneratedFrame` in ``fmt``, in order, until the stream
    ends. A reader more than ``backlog`` frames behind skips the oldest (their buffers go back
    unread), so the FFI's frames pile up nowhere. Closing or cancelling it ends the stream and
    hands back every buffer it still held."""
    ffi = FfiClient.instance
    stream_id: int | None = None

    def ours(event: proto_ffi.FfiEvent) -> bool:  # runs on livekit's callback thread
        if event.WhichOneof("message") != "video_stream_event":
            return False
        # Before the stream's id is known, every stream's events pass: the loop sorts them.
        return stream_id is None or event.video_stream_event.stream_handle == stream_id

    # Subscribed before the stream exists, so that not one of its events is missed.
    events = ffi.queue.subscribe(asyncio.get_running_loop(), filter_fn=ours)
    stream: FfiHandle | None = None
    dropped = 0
    try:
        request = proto_ffi.FfiRequest()
        new = request.new_video_stream
        new.track_handle = track._ffi_handle.handle
        new.type = proto_video.VideoStreamType.VIDEO_STREAM_NATIVE
        new.format = proto_video.VideoBufferType.I420
        new.normalize_stride = True
        owned = ffi.request(request).new_video_stream.stream
        stream = FfiHandle(owned.handle.id)
        stream_id = owned.handle.id
        while True:
            event = (await events.get()).video_stream_event
            if event.stream_handle != stream_id:
                continue  # another stream's, seen before our id was known: not ours to free
            if event.HasField("eos"):
                return
            if not event.HasField("frame_received"):
                continue
            if events.qsize() >= backlog:
                release(event.frame_received)
                dropped += 1
                if dropped % 100 == 1:
                    log.warning(
                        "the model's output is read %d frames behind: %d dropped so far "
                        "(the oldest go first)",
                        events.qsize(),
                        dropped,
                    )
                continue
            yield take_generated(event.frame_received, fmt)
    finally:
        ffi.queue.unsubscribe(events)
        if stream is not None:
            stream.dispose()  # ends the native stream
        # Events already on their way to this loop land once it runs again: let them, then
        # hand back the buffers of every frame that was never read.
        await asyncio.sleep(0)
        while not events.empty():
            video = events.get_nowait().video_stream_event
            if video.stream_handle == stream_id and video.HasField("frame_received"):
                release(video.frame_received)


__all__ = ["BACKLOG", "generated_frames"]
