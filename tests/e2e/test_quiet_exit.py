"""A process whose connects fail at the websocket handshake (refused, dark address, a server
that never answers, HTTP 401), asynchronously and from the blocking API, exits with nothing on
stderr: no task destroyed while pending, no coroutine that ignored its close. The blocking API's
loop ends only once every task on it has (its drain), so nothing is left for the exit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import asyncio, socket, sys, threading, time
    from aiohttp import web
    import warmrtc

    host = sys.argv[1]
    silent = socket.create_server((host, 0))  # accepts, never answers
    refused = socket.create_server((host, 0))
    refused_port = refused.getsockname()[1]
    refused.close()
    ports = {}

    def serve():
        async def main():
            async def handle(request):
                return web.Response(status=401, text="Invalid API key")
            app = web.Application()
            app.router.add_get("/v1/stream", handle)
            runner = web.AppRunner(app, shutdown_timeout=0.1)
            await runner.setup()
            site = web.TCPSite(runner, host, 0)
            await site.start()
            ports["401"] = runner.addresses[0][1]
            await asyncio.sleep(60)
        asyncio.run(main())

    threading.Thread(target=serve, daemon=True).start()
    while "401" not in ports:
        time.sleep(0.01)
    urls = [
        f"ws://{host}:{refused_port}",
        "ws://10.77.0.9:8788",  # no such host in the namespace: the SYN goes unanswered
        f"ws://{host}:{silent.getsockname()[1]}",
        f"ws://{host}:{ports['401']}",
    ]
    source = warmrtc.VideoSource(64, 48)

    async def attempt(url):
        try:
            await warmrtc.connect(source, api_key="k", base_url=url, timeout=1)
        except warmrtc.WarmrtcError as e:
            return type(e).__name__

    for url in urls:
        print("async", asyncio.run(attempt(url)), flush=True)
        try:
            warmrtc.connect_blocking(source, api_key="k", base_url=url, timeout=1)
        except warmrtc.WarmrtcError as e:
            print("blocking", type(e).__name__, flush=True)
    print("done", flush=True)
    """
)


def test_failed_handshakes_leave_nothing_for_the_exit_to_print() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-c", CHILD, os.environ["WARMRTC_NETNS_HOST"]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "done" in done.stdout, done.stderr[-3000:]
    assert done.stdout.count("Error") == 8, done.stdout  # each attempt failed, typed
    assert done.stderr.strip() == "", done.stderr[-3000:]
