"""generated_frames(): a remote video track's frames, taken from livekit's FFI and converted
on the loop that iterates it (the receive thread's).

This is livekit's ``VideoStream`` without its copies: the SDK copies every frame out of the FFI
buffer into a ``bytearray`` (1.4 MB at 720p) before anyone sees it; here the native core
converts straight from the FFI's buffer into the output array, and the buffer goes back to the
FFI at once. The frames' events are taken on livekit's callback thread as they arrive, into a
:class:`~warmrtc._media.latest_queue.LatestQueue` of this stream's own (livekit's subscriber
filter is where they are seen first: it hands each one over and tells livekit it needs no
queue of its own), so a reader that falls behind skips the oldest frames and hands their
buffers back unread: they pile up nowhere.

The FFI ends a native stream when its handle is dropped, and then sends the stream's end
(eos); frames it sent just before can still be on their way, each holding a buffer only a
reader of the stream can hand back (one left unread stays in the FFI's handle table for the
life of the process: 1.4 MB at 720p). So a stream is closed in that order: its handle dropped,
its frames taken and handed back until the eos (``EOS_TIMEOUT`` at most), and only then its
subscription ended, as livekit's own ``VideoStream`` does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from livekit import rtc
from livekit.rtc._ffi_client import FfiClient, FfiHandle
from livekit.rtc._proto import ffi_pb2 as proto_ffi
from livekit.rtc._proto import video_frame_pb2 as proto_video

from .latest_queue import FRAME_DEPTH, Ended, LatestQueue
from .rtc_frame import GeneratedFrame, release, take_generated

log = logging.getLogger("warmrtc")

EOS_TIMEOUT = 1.0  # seconds a closing stream waits for the FFI's eos, handing frames back


async def generated_frames(
    track: rtc.Track,
    fmt: str,
    *,
    backlog: int = FRAME_DEPTH,
    on_dropped: Callable[[], None] = lambda: None,
) -> AsyncIterator[GeneratedFrame]:
    """``track``'s frames as :class:`GeneratedFrame` in ``fmt``, in order, until the stream
    ends. A reader more than ``backlog`` frames behind skips the oldest (their buffers go back
    unread; ``on_dropped()`` for each, on livekit's callback thread). Closing or cancelling it
    ends the stream and hands back every buffer it held."""
    ffi = FfiClient.instance
    stream_id: int | None = None
    closing = False  # from here on, frames are handed back unread, not dropped for speed

    def release_if_ours(event: proto_ffi.FfiEvent) -> None:
        video = event.video_stream_event
        # Before the stream's id is known, another stream's frames pass too: never ours to free.
        if video.stream_handle == stream_id and video.HasField("frame_received"):
            release(video.frame_received)
            if not closing:
                on_dropped()

    events: LatestQueue[proto_ffi.FfiEvent] = LatestQueue(
        backlog, name="the model's output reader", on_drop=release_if_ours, warn=True
    )

    def take(event: proto_ffi.FfiEvent) -> bool:
        # On livekit's callback thread, for every FFI event. It must never raise: livekit would
        # then queue the event for a loop that never reads it.
        try:
            if event.WhichOneof("message") == "video_stream_event" and (
                stream_id is None or event.video_stream_event.stream_handle == stream_id
            ):
                events.put(event)
        except Exception:  # one lost frame, not a broken callback thread
            log.exception("the model's output: a frame event could not be taken")
        return False  # livekit queues nothing for this subscriber: the event is ours already

    # Subscribed before the stream exists, so that not one of its events is missed.
    subscription = ffi.queue.subscribe(asyncio.get_running_loop(), filter_fn=take)
    stream: FfiHandle | None = None
    ended = False  # the FFI's eos came: nothing of the stream is on its way any more
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
            try:
                video = (await events.get()).video_stream_event
            except Ended:
                return
            if video.stream_handle != stream_id:
                continue  # another stream's, seen before our id was known: not ours to free
            if video.HasField("eos"):
                ended = True
                return
            if video.HasField("frame_received"):
                yield take_generated(video.frame_received, fmt)
    finally:
        closing = True
        try:
            if stream is not None:
                stream.dispose()  # ends the native stream (after its eos: lets its handle go)
                if not ended and not FfiClient._ffi_disposed:
                    await _hand_back_until_eos(events, stream_id)
        finally:  # cancelled again while handing back: the rest goes back all the same
            # From here on livekit hands this stream nothing more (unsubscribing waits for a
            # hand-over in progress); what is still held goes back unread.
            ffi.queue.unsubscribe(subscription)
            events.close(discard=True)


async def _hand_back_until_eos(
    events: LatestQueue[proto_ffi.FfiEvent], stream_id: int | None
) -> None:
    """Hands back the frames of a stream whose handle was dropped, until its eos comes
    (``EOS_TIMEOUT`` at most; it comes within milliseconds)."""
    try:
        async with asyncio.timeout(EOS_TIMEOUT):
            while True:
                video = (await events.get()).video_stream_event
                if video.stream_handle != stream_id:
                    continue
                if video.HasField("eos"):
                    return
                if video.HasField("frame_received"):
                    release(video.frame_received)
    except TimeoutError:
        log.debug("the model's output: no end of stream %s within %g s", stream_id, EOS_TIMEOUT)
    except Ended:  # closed under us: nothing more comes
        pass


__all__ = ["generated_frames"]
