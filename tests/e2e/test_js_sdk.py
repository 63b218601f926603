"""Decart's JS SDK in headless Chromium, against the emulator: its glass-to-glass latency and
time to first frame come from the capture stamps the emulator echoes.

With ``debugQuality: true`` the SDK (0.1.20, on livekit-client 2.20.2) puts each camera frame's
capture time (unix microseconds) in LiveKit's packet trailer, announces
``client_capabilities: {frame_timing: true}`` in its join, and reads the time back from the
trailer of the model's frames. livekit-client strips and keeps that trailer only for a track
whose publication lists packet-trailer features (Chromium: through insertable streams, set up
because the room has a frame-metadata worker; no encryption involved; the trailer follows the
encoded frame whatever the codec: here H.264 from the browser, VP8 from the model). At each
frame shown, the SDK looks the stamp up by the frame's RTP timestamp, and its ``stats`` event
reports ``glassToGlass.ttffMs`` (from the start of connect) and ``medianMs`` (from 2 s after
the first frame on).

The page corrects one thing in the SDK (see ``browser/page.js``): it adds
``performance.timeOrigin`` to the receiver's synchronization-source timestamp, which Chromium
reports in wall-clock time already, so on its own it drops every sample (the test checks that
too) with any service that echoes the client's capture time.

The page (``browser/page.js``, bundled with the SDK pinned by ``browser/package-lock.json``;
``make browser`` installs it) is served over http from the network namespace, and Chromium's
fake camera feeds it. Chromium (Debian's ``chromium``) and Node.js must be installed;
``.ci/run`` installs both.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from conftest import API_KEY, Emulator

BROWSER_DIR = Path(__file__).parent / "browser"
SDK = "@decartai/sdk"
SDK_VERSION = "0.1.20"
MODEL = "lucy-2.5"
MEASURE_STATS = 4  # stats events (about one a second) with both figures before the page stops
FIGURES_WAIT = 25.0  # seconds of generated frames for the figures to show at the most
CONTROL_SECONDS = 6.0  # seconds of generated frames that show no figure without echoed stamps
RUN_DEADLINE = 90.0  # seconds for a whole browser session at the most
DONE_WAIT = 10.0  # seconds for the page to disconnect once asked to stop
BUNDLE_TIMEOUT = 60.0


def chromium() -> str:
    path = os.environ.get("WARMRTC_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(path, os.X_OK):
        pytest.fail(
            "the JS SDK test needs Chromium: apt-get install chromium (Debian; .ci/run installs "
            "it), or set WARMRTC_CHROMIUM to a Chromium binary"
        )
    return path


def bundle(out: Path) -> None:
    """The page's script with the SDK in one module, next to the SDK's frame-metadata worker
    (which the SDK loads relative to its own module)."""
    if shutil.which("node") is None:
        pytest.fail("the JS SDK test needs Node.js: apt-get install nodejs npm (.ci/run does)")
    package = BROWSER_DIR / "node_modules" / SDK / "package.json"
    try:
        version = json.loads(package.read_text())["version"]
    except (OSError, ValueError, KeyError):
        version = None
    if version != SDK_VERSION:
        pytest.fail(
            f"{SDK} {SDK_VERSION} is not installed in {BROWSER_DIR} (found {version}): run "
            "`make browser` (npm ci there; `make test` does it)"
        )
    esbuild = BROWSER_DIR / "node_modules" / ".bin" / "esbuild"
    args = [str(esbuild), str(BROWSER_DIR / "page.js"), "--bundle", "--format=esm"]
    args += [f"--outfile={out / 'page.js'}", "--log-level=warning"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=BUNDLE_TIMEOUT)
    if done.returncode != 0:
        pytest.fail(f"bundling the page failed:\n{done.stdout}{done.stderr}")
    worker = BROWSER_DIR / "node_modules" / SDK / "dist/realtime/browser/frame-metadata-worker.js"
    shutil.copy(worker, out / worker.name)
    shutil.copy(BROWSER_DIR / "index.html", out / "index.html")


@dataclass
class PageReport:
    """What the page told its server."""

    stats: list[dict[str, Any]] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    first_frame_at: float | None = None  # monotonic time of the first stats with a frame shown
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def figures(self) -> list[dict[str, Any]]:
        """The glassToGlass of every stats event that has a figure (TTFF or median)."""
        found = [s.get("glassToGlass") or {} for s in self.stats]
        return [g for g in found if g.get("medianMs") is not None or g.get("ttffMs") is not None]

    def framed_for(self) -> float:
        """Seconds since the first generated frame was shown (0 before)."""
        return 0.0 if self.first_frame_at is None else time.monotonic() - self.first_frame_at

    def tail(self) -> str:
        last = self.stats[-1] if self.stats else None
        lines = [f"stats events: {len(self.stats)}, last: {last}", *self.errors, *self.logs[-30:]]
        return "\n".join(lines)


def page_app(
    root: Path, report: PageReport, enough: Callable[[PageReport], bool]
) -> web.Application:
    async def stats(request: web.Request) -> web.Response:
        body = await request.json()
        report.stats.append(body)
        if report.first_frame_at is None and body.get("framesDecoded", 0) > 0:
            report.first_frame_at = time.monotonic()
        if enough(report):
            report.stop.set()
        return web.json_response({"stop": report.stop.is_set()})

    async def log(request: web.Request) -> web.Response:
        body = await request.json()
        report.logs.append(f"[page {body.get('level')}] {body.get('text')}")
        return web.json_response({})

    async def error(request: web.Request) -> web.Response:
        report.errors.append(f"[page error] {(await request.json()).get('error')}")
        return web.json_response({})

    async def done(_request: web.Request) -> web.Response:
        report.done.set()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/stats", stats)
    app.router.add_post("/log", log)
    app.router.add_post("/error", error)
    app.router.add_post("/done", done)
    app.router.add_static("/", root)
    return app


def run_page(emulator_url: str, tmp_path: Path, enough: Callable[[PageReport], bool]) -> PageReport:
    """One SDK session in Chromium until ``enough`` (checked at each stats event), a page error
    or RUN_DEADLINE; the page disconnects before Chromium is stopped."""
    root = tmp_path / "www"
    root.mkdir()
    bundle(root)
    log_path = tmp_path / "chromium.log"
    report = asyncio.run(_run_page(emulator_url, root, tmp_path / "profile", log_path, enough))
    chromium_log = "".join(log_path.read_text(errors="replace").splitlines(True)[-15:])
    report.logs.append(f"--- chromium ---\n{chromium_log}")
    return report


async def _run_page(
    emulator_url: str,
    root: Path,
    profile: Path,
    log_path: Path,
    enough: Callable[[PageReport], bool],
) -> PageReport:
    host = os.environ["WARMRTC_NETNS_HOST"]
    report = PageReport()
    runner = web.AppRunner(page_app(root, report, enough), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, 0).start()
    origin = f"http://{host}:{runner.addresses[0][1]}"
    query = f"emulator={emulator_url}&key={API_KEY}&model={MODEL}"
    args = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        "--autoplay-policy=no-user-gesture-required",
        # getUserMedia needs a secure context; the page's origin is plain http in the namespace.
        f"--unsafely-treat-insecure-origin-as-secure={origin}",
        # Host candidates with the veth's address, not mDNS names.
        "--disable-features=WebRtcHideLocalIpsWithMdns",
        "--enable-logging=stderr",
        f"{origin}/index.html?{query}",
    ]
    with open(log_path, "wb") as log:
        # A process group of its own: Chromium's helpers go with it.
        browser = subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RUN_DEADLINE
    try:
        while not report.stop.is_set() and not report.errors and loop.time() < deadline:
            if browser.poll() is not None:
                report.errors.append(f"Chromium exited with status {browser.returncode}")
                break
            await asyncio.sleep(0.2)
        if report.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(report.done.wait(), DONE_WAIT)
    finally:
        _stop_browser(browser)
        await runner.cleanup()
    return report


def _stop_browser(browser: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(browser.pid, signal.SIGTERM)
    try:
        browser.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(browser.pid, signal.SIGKILL)
        browser.wait(10)


def test_js_sdk_reports_glass_to_glass_and_ttff(emulator_url: str, tmp_path: Path) -> None:
    def enough(report: PageReport) -> bool:
        complete = [g for g in report.figures() if g.get("medianMs") is not None]
        return len(complete) >= MEASURE_STATS or report.framed_for() > FIGURES_WAIT

    started = time.monotonic()
    report = run_page(emulator_url, tmp_path, enough)
    took = time.monotonic() - started
    context = report.tail()
    assert not report.errors, context
    assert report.stop.is_set(), f"the page did not finish in {RUN_DEADLINE:g} s\n{context}"
    assert report.first_frame_at is not None, f"no generated frame was shown\n{context}"
    complete = [g for g in report.figures() if g.get("medianMs") is not None]
    assert len(complete) >= MEASURE_STATS, f"no glass-to-glass figures from the SDK\n{context}"
    last = complete[-1]
    clock = report.stats[-1]["clock"]
    print(f"\nJS SDK {SDK_VERSION}, Chromium, against the emulator ({took:.1f} s): {last}")
    print(f"sync-source timestamps corrected for the SDK: {clock}")
    assert report.stats[-1]["subscribeToken"], context
    # Plausible: a round trip through the emulated model on this machine.
    assert last["ttffMs"] is not None and 0 < last["ttffMs"] < 5000, context
    assert 0 < last["medianMs"] <= last["p90Ms"] < 2000, context
    assert last["sampleCount"] >= 10, context
    # Why the page corrects the SDK's clock: Chromium's sync-source timestamps are wall-clock,
    # and the SDK alone would have dropped every echoed stamp.
    assert clock["corrected"] > 0 and clock["stockDropped"] > 0, clock
    assert clock["stockKept"] == 0, clock


def test_js_sdk_has_no_figure_without_echoed_stamps(tmp_path: Path) -> None:
    """The control: a service without frame timing; frames flow, the SDK reports nothing."""

    def enough(report: PageReport) -> bool:
        return bool(report.figures()) or report.framed_for() > CONTROL_SECONDS

    emulator = Emulator("--no-frame-timing")
    try:
        report = run_page(emulator.url, tmp_path, enough)
    finally:
        emulator.stop()
    context = report.tail()
    assert not report.errors, context
    assert report.stop.is_set(), f"the page did not finish in {RUN_DEADLINE:g} s\n{context}"
    assert report.first_frame_at is not None, f"no generated frame was shown\n{context}"
    assert report.figures() == [], context
    assert report.stats[-1]["framesDecoded"] >= 30, context
