"""Pre-warm a realtime session, then go live instantly when the user hits Start.

    DECART_API_KEY=... python examples/realtime_warmup.py

(or, offline, on the local stack: `make demo`). Enter starts; in the window, Esc pauses (the
session stays connected and warm, nothing is billed) and Enter in the terminal starts again;
q quits.
"""

import asyncio
import threading

import cv2

import warmrtc


def capture_loop(camera: cv2.VideoCapture, source: warmrtc.VideoSource, stop: threading.Event):
    # A plain thread: capture() releases the GIL and returns False at once while muted.
    while not stop.is_set():
        ok, frame = camera.read()
        if ok:
            source.capture(frame)


async def main() -> None:
    camera = cv2.VideoCapture(0)
    source = warmrtc.VideoSource(1280, 720, fmt="bgr24", fps=30)  # OpenCV frames are BGR
    stop = threading.Event()
    capture = threading.Thread(target=capture_loop, args=(camera, source, stop), daemon=True)
    capture.start()

    # Authenticate, join, publish the track muted: nothing is sent, nothing is billed.
    async with warmrtc.connect(source, "lucy-2.6", prompt="anime style", start_muted=True) as s:
        while True:
            # Waiting for the user in a thread keeps the event loop (and the session) running.
            answer = await asyncio.to_thread(input, "Warm and ready. Enter starts, q quits: ")
            if answer.strip() == "q":
                break
            s.unmute()  # live now: no connection set-up on the critical path
            async for frame in s.frames():  # generated frames, BGR numpy arrays
                cv2.imshow("generated", frame)
                if cv2.waitKey(1) == 27:  # Esc pauses: muted, still connected and warm
                    s.mute()
                    break
    stop.set()
    capture.join(2)
    camera.release()
    source.close()


asyncio.run(main())
