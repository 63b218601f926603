"""python -m warmrtc.emulator: run the local realtime service until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal

from .._media import exit_hook
from .._protocol.limits import CRASH_RELEASE_DELAY, LIMIT_MESSAGE, RELEASE_DELAY
from .._protocol.refusals import LIMIT_CLOSE_CODE
from ..local.stack import raise_open_files_limit
from .server import EmulatorConfig, serve


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m warmrtc.emulator",
        description="Emulated Decart realtime service backed by a real LiveKit server.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8788, help="port to listen on (0: any free)")
    p.add_argument(
        "--livekit-url",
        default=os.environ.get("WARMRTC_LIVEKIT_URL"),
        help="LiveKit server URL (default: $WARMRTC_LIVEKIT_URL)",
    )
    p.add_argument(
        "--client-livekit-url",
        default=None,
        help="the LiveKit URL handed to clients, when they reach the server by another "
        "address than the emulator (default: --livekit-url)",
    )
    p.add_argument("--livekit-key", default=os.environ.get("WARMRTC_LIVEKIT_KEY", "devkey"))
    p.add_argument("--livekit-secret", default=os.environ.get("WARMRTC_LIVEKIT_SECRET", "secret"))
    p.add_argument(
        "--api-key",
        action="append",
        default=[],
        dest="api_keys",
        help="an accepted API key (repeatable)",
    )
    p.add_argument(
        "--queue-positions",
        type=int,
        default=0,
        help="queue_position messages to send before the room info",
    )
    p.add_argument(
        "--model-delay-ms",
        type=int,
        default=0,
        help="artificial model latency: each generated frame is published this many ms after "
        "the input frame it is made from (default 0)",
    )
    p.add_argument(
        "--no-frame-timing",
        action="store_false",
        dest="frame_timing",
        help="never echo input frames' capture stamps (by default they are echoed on the "
        "generated frames for clients whose join announces client_capabilities.frame_timing)",
    )
    p.add_argument(
        "--max-sessions",
        type=int,
        default=0,
        help="the concurrency limit per API key, as the service has one per organisation: a "
        f"new session over it is refused (error {LIMIT_MESSAGE!r}, close code "
        f"{LIMIT_CLOSE_CODE:d}); 0: no limit (default)",
    )
    p.add_argument(
        "--release-delay",
        type=float,
        default=RELEASE_DELAY,
        help="seconds before an ended session's slot is free again after a clean disconnect "
        f"(default {RELEASE_DELAY:g}, as the service)",
    )
    p.add_argument(
        "--crash-release-delay",
        type=float,
        default=CRASH_RELEASE_DELAY,
        help="seconds before the slot of a session whose websocket dropped without a close is "
        f"free again (default {CRASH_RELEASE_DELAY:g}, as the service)",
    )
    p.add_argument(
        "--fault-injection",
        action="store_true",
        help="serve POST /sessions/{id}/drop and /end, which drop or end a session (tests); off "
        "by default",
    )
    p.add_argument(
        "--parent-pid",
        type=int,
        default=None,
        help="exit when this process is gone (so a crashed app leaves no emulator behind)",
    )
    p.add_argument("--log-level", default="WARNING")
    args = p.parse_args(argv)
    if not args.livekit_url:
        p.error("--livekit-url is required (or set WARMRTC_LIVEKIT_URL)")
    if not args.api_keys:
        p.error("give at least one --api-key")
    if args.max_sessions < 0:
        p.error(f"--max-sessions must be >= 0, got {args.max_sessions}")
    for flag in ("release_delay", "crash_release_delay"):
        value = getattr(args, flag)
        if not 0 <= value <= 3600:
            p.error(f"--{flag.replace('_', '-')} must be 0..3600 seconds, got {value}")
    if not 0 <= args.model_delay_ms <= 10_000:
        p.error(f"--model-delay-ms must be 0..10000, got {args.model_delay_ms}")
    return args


async def run(args: argparse.Namespace) -> None:
    config = EmulatorConfig(
        livekit_url=args.livekit_url,
        livekit_key=args.livekit_key,
        livekit_secret=args.livekit_secret,
        api_keys=frozenset(args.api_keys),
        queue_positions=args.queue_positions,
        client_livekit_url=args.client_livekit_url,
        model_delay_ms=args.model_delay_ms,
        frame_timing=args.frame_timing,
        max_sessions=args.max_sessions,
        release_delay=args.release_delay,
        crash_release_delay=args.crash_release_delay,
        fault_injection=args.fault_injection,
    )
    _emulator, runner = await serve(config, args.host, args.port)
    port = runner.addresses[0][1]
    print(f"emulator ready ws://{args.host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    watcher = None
    if args.parent_pid is not None:
        watcher = loop.create_task(_watch_parent(args.parent_pid, stop))
    await stop.wait()
    if watcher is not None:
        watcher.cancel()
    await runner.cleanup()


async def _watch_parent(pid: int, stop: asyncio.Event) -> None:
    # Polling works on every OS, and catches a parent killed with SIGKILL too.
    while os.getppid() == pid:
        await asyncio.sleep(0.5)
    logging.getLogger("warmrtc.emulator").warning("parent %d is gone; stopping", pid)
    stop.set()


def main(argv: list[str] | None = None) -> None:
    raise_open_files_limit()  # many sessions, each a socket and a worker's pipe
    args = parse_args(argv)
    exit_hook.install()  # livekit (if a worker brought it into this process) closes quietly
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
