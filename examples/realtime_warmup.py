"""Pre-warm a realtime session, then go live instantly when the user hits Start.

    DECART_API_KEY=... python examples/realtime_warmup.py

(or, offline, inside the local stack: scripts/livekit-server run -- warmrtc demo)
"""

import asyncio

import cv2

import warmrtc


async def main() -> None:
    camera = cv2.VideoCapture(0)
    source = warmrtc.VideoSource(1280, 720, fmt="bgr24", fps=30)  # OpenCV frames are BGR

    # Authenticate, join, publish the track muted: nothing is sent, nothing is billed.
    async with warmrtc.connect(source, "lucy-2.6", prompt="anime style", start_muted=True) as s:
        loop = asyncio.get_running_loop()

        def capture_loop() -> None:  # a plain thread; capture() releases the GIL
            while s.state != "disconnected":
                ok, frame = camera.read()
                if ok:
                    source.capture(frame)  # returns False at once while muted

        loop.run_in_executor(None, capture_loop)
        input("Warm and ready. Press Enter to start...")
        s.unmute()  # live now: no connection set-up on the critical path
        async for frame in s.frames():  # generated frames, BGR numpy arrays
            cv2.imshow("generated", frame)
            if cv2.waitKey(1) == 27:  # Esc pauses by muting; the session stays warm
                s.mute()
                break


asyncio.run(main())
