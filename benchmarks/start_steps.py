"""Where a start's time goes, step by step, in milliseconds and in round trips of the link:
warmrtc's cold start and Decart's official client's side by side, and warmrtc's warm start.

Each start runs in a process of its own (start_client.py) with ``WARMRTC_TRACE`` set, so that the
client, the emulator and its model workers write their marks to one file, and with livekit's
native debug log on (``RUST_LOG``), whose lines this reads from the client's stderr and stamps as
they arrive (livekit's own stamps are whole seconds): the steps of livekit's room join
(signalling socket, ICE and DTLS, the publish's AddTrack and its negotiation, the subscription
to the model's output) for both clients alike. Starts take turns, ours and the official
client's, run after run; each step is the median over the runs of the time from the start.

Run behind a link: python -m warmrtc stack --link broadband -- python benchmarks/start_steps.py
(or ``make bench BENCH_ARGS="--link broadband broadband,rtt=100 --only start_steps"``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from figures import Figure, publish
from warmrtc import _trace as trace
from warmrtc.local.link import Link, LinkError
from warmrtc.local.service import LocalService

HERE = Path(__file__).resolve().parent
DEFAULT_OFFICIAL = HERE.parent / ".cache" / "decart-venv" / "bin" / "python"
CHILD_TIMEOUT = 60.0
RUST_LOG = "livekit=debug,livekit_api=debug,livekit_signaling=debug"

# livekit's native log lines that mark a step (the first line matching each, after the start).
RUST_STEPS = [
    ("LkRuntime::new()", "livekit: WebRTC runtime created"),
    ("connecting to ws://", "livekit: signalling socket opens"),
    ("signal connection successful", "livekit: signalling open (TCP, upgrade; offer inside)"),
    ("received JoinResponse", "livekit: join response"),
    ("received publisher answer", "livekit: answer to the join's offer"),
    ("connection change, Connected Publisher", "livekit: ICE + DTLS connected"),
    ("connection setup took", "livekit: room joined"),
    ("local track published", "livekit: track published (AddTrack answered)"),
    ("negotiation completed", "livekit: a negotiation completed"),
    ("resolved track_id from mid", "livekit: the model's output track arrives"),
]
# livekit-server's debug log lines that mark a step: (message, whose, a "state" it must have
# or None, label). "client" is the client's participant, "model" the emulated model's.
SERVER_STEPS = [
    ("new client WS connected", "client", None, "media server: client's signalling accepted"),
    ("ice connection state change", "client", "connected", "media server: client's ICE connected"),
    ("peer connection state change", "client", "connected", "media server: client's DTLS done"),
    ("mediaTrack published", "client", None, "media server: client's track receiving"),
    ("downtrack created", "model", None, "media server: model's downtrack for the input"),
    ("send pli", "client", None, "media server: PLI to the client"),
    ("forwarded key frame", "model", None, "media server: keyframe forwarded to the model"),
    ("downtrack created", "client", None, "media server: client's downtrack for the output"),
    ("send pli", "model", None, "media server: PLI to the model"),
    ("forwarded key frame", "client", None, "media server: keyframe forwarded to the client"),
]
SERVER_LINE = re.compile(r"^(\S+Z)\t\w+\t\S+\t\S+\t([^\t{]+?)\t(\{.*\})\s*$")
# Trace marks that make a step, and how they are shown.
TRACE_STEPS = {
    "service.stream_opened": "service: websocket open",
    "service.join": "service: join received",
    "service.room_info": "service: room info sent",
    "service.set_image_ack": "service: passthrough acked",
    "service.prompt_ack": "service: prompt acked",
    "model.joined": "model: in the room",
    "model.published": "model: output published",
    "model.output_opened": "model: output opened ahead",
    "model.input_subscribed": "model: client's track subscribed",
    "model.input_unmuted": "model: client's track unmuted",
    "client.published": "client: track published",
    "client.unmute": "client: unmute()",
    "client.track_unmute": "client: track unmuted (signal sent)",
    "client.capture": "client: first frame captured",
    "client.in.key_frames_encoded": "client: keyframe encoded",
    "client.in.pli_count": "client: keyframe request (PLI) received",
    "model.in.pli_count": "model: keyframe request (PLI) sent",
    "model.in.key_frames_decoded": "model: input keyframe decoded",
    "model.out.pli_count": "model: keyframe request (PLI) received",
    "client.out.key_frames_decoded": "client: output keyframe decoded",
    "client.out.pli_count": "client: keyframe request (PLI) sent",
    "model.input_frame": "model: first input frame",
    "model.output_captured": "model: first output frame",
    "model.out.key_frames_encoded": "model: output keyframe encoded",
    "client.output_subscribed": "client: model's output subscribed",
    "client.output_frame": "client: first generated frame (receive thread)",
    "bench.first_frame": "first generated frame in the app",
}


@dataclass
class Start:
    """One start's steps: ms from its start, first of each kind."""

    steps: dict[str, float]
    total_ms: float


def server_log() -> str | None:
    """livekit-server's log in the local stack (next to its pid file), if there is one."""
    pidfile = os.environ.get("WARMRTC_LIVEKIT_PIDFILE")
    path = os.path.join(os.path.dirname(pidfile), "server.log") if pidfile else None
    return path if path and os.path.exists(path) else None


def size(path: str | None) -> int:
    return os.path.getsize(path) if path and os.path.exists(path) else 0


def server_events(path: str | None, offset: int) -> list[tuple[float, str]]:
    """The server's steps logged from ``offset`` on, on the monotonic clock."""
    if path is None:
        return []
    wall_to_mono = time.monotonic() - time.time()
    with open(path, encoding="utf-8", errors="replace") as f:
        f.seek(offset)
        text = f.read()
    found: list[tuple[float, str]] = []
    for line in text.splitlines():
        m = SERVER_LINE.match(line)
        if m is None:
            continue
        stamp, message, fields = m.groups()
        for pattern, whose, state, label in SERVER_STEPS:
            if message.strip() != pattern:
                continue
            who = re.search(r'"participant": "([^"]*)"', fields)
            role = "model" if who and who.group(1).startswith("inference-server") else "client"
            if role != whose or (state is not None and f'"state": "{state}"' not in fields):
                continue
            wall = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
            found.append((wall + wall_to_mono, label))
    return found


def run_child(python: str, which: str, base_url: str, api_key: str, trace_path: str) -> Start:
    """One start in a child process; its steps from the trace, livekit's log and the media
    server's log."""
    offset = os.path.getsize(trace_path) if os.path.exists(trace_path) else 0
    log_path = server_log()
    log_offset = size(log_path)
    env = {**os.environ, "RUST_LOG": RUST_LOG, trace.TRACE_ENV: trace_path}
    child = subprocess.Popen(
        [python, str(HERE / "start_client.py"), which, base_url, api_key],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    lines: list[tuple[float, str]] = []

    def read() -> None:
        assert child.stderr is not None
        for line in child.stderr:
            lines.append((time.monotonic(), line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        child.wait(CHILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    reader.join(5)
    with open(trace_path, encoding="utf-8") as f:
        f.seek(offset)
        events = [json.loads(line) for line in f if line.strip()]
    if child.returncode != 0:
        tail = "".join(line for _, line in lines[-15:])
        if not any(e.get("event") == "bench.first_frame" for e in events):
            raise RuntimeError(f"{which} start failed ({child.returncode}):\n{tail}")
        # livekit 1.2.1's native runtime can panic while a process exits (seen with the
        # official client): the start itself was complete, and counts.
        print(f"({which}: its process died at exit, code {child.returncode}; the start counts)")
    time.sleep(0.2)  # the server's last lines of the start
    return steps_of(events, lines, server_events(log_path, log_offset))


def steps_of(
    events: list[dict[str, object]],
    lines: list[tuple[float, str]],
    server: list[tuple[float, str]],
) -> Start:
    t0 = next(float(e["t"]) for e in events if e["event"] == "bench.start")  # type: ignore[arg-type]
    t1 = next(float(e["t"]) for e in events if e["event"] == "bench.first_frame")  # type: ignore[arg-type]
    steps: dict[str, float] = {}
    for e in events:
        t, name = float(e["t"]), str(e["event"])  # type: ignore[arg-type]
        label = TRACE_STEPS.get(name)
        if label is not None and t0 <= t <= t1 and label not in steps:
            steps[label] = (t - t0) * 1000
    for t, line in lines:
        if not t0 <= t <= t1:
            continue
        for pattern, label in RUST_STEPS:
            if pattern in line and label not in steps:
                steps[label] = (t - t0) * 1000
    for t, label in server:
        if t0 <= t <= t1 and label not in steps:
            steps[label] = (t - t0) * 1000
    return Start(steps, (t1 - t0) * 1000)


def medians(starts: list[Start]) -> dict[str, float]:
    by_step: dict[str, list[float]] = defaultdict(list)
    for start in starts:
        for label, ms in start.steps.items():
            by_step[label].append(ms)
    return {label: statistics.median(values) for label, values in by_step.items()}


def rtt_ms() -> float:
    """The link's round trip (0 without a link)."""
    try:
        spec = Link.from_env().spec()
    except LinkError:
        return 0.0
    return spec.up.delay_ms + spec.down.delay_ms


def show(ms: float | None, rtt: float) -> str:
    if ms is None:
        return "-"
    return f"{ms:6.0f} ms {ms / rtt:5.1f} RTT" if rtt else f"{ms:6.0f} ms"


def table(columns: dict[str, dict[str, float]], rtt: float) -> str:
    """Steps in the order of the first column's times, each column's time from the start."""
    labels = sorted(
        {label for column in columns.values() for label in column},
        key=lambda label: min(c.get(label, 1e9) for c in columns.values()),
    )
    width = max(len(label) for label in labels)
    head = f"{'step':{width}}  " + "  ".join(f"{name:>19}" for name in columns)
    rows = [head, "-" * len(head)]
    for label in labels:
        cells = "  ".join(f"{show(column.get(label), rtt):>19}" for column in columns.values())
        rows.append(f"{label:{width}}  {cells}")
    return "\n".join(rows)


def main(runs: int, official_python: str) -> None:
    have_official = Path(official_python).exists()
    path = os.path.join(tempfile.mkdtemp(prefix="warmrtc-steps-"), "trace.jsonl")
    os.environ[trace.TRACE_ENV] = path  # before the emulator starts: its workers write too
    rtt = rtt_ms()
    kinds = ["ours", "official"] if have_official else ["ours"]
    starts: dict[str, list[Start]] = {kind: [] for kind in [*kinds, "warm"]}
    with LocalService() as (base_url, api_key):
        python = {"ours": sys.executable, "official": official_python, "warm": sys.executable}
        for kind in kinds:  # one unreported start each: one-time costs are no start's
            run_child(python[kind], kind, base_url, api_key, path)
        for i in range(runs):
            for kind in kinds if i % 2 == 0 else kinds[::-1]:
                starts[kind].append(run_child(python[kind], kind, base_url, api_key, path))
            starts["warm"].append(run_child(python["warm"], "warm", base_url, api_key, path))
    where = f"RTT {rtt:g} ms" if rtt else "no link"
    print(f"cold start, connect -> first generated frame, 1280x720, {where}, n = {runs} each")
    cold = {"warmrtc": medians(starts["ours"])}
    if have_official:
        cold["decart 0.2.4"] = medians(starts["official"])
    print(table(cold, rtt))
    print(f"\nwarm start, unmute() -> first generated frame, {where}, n = {runs}")
    print(table({"warmrtc": medians(starts["warm"])}, rtt))
    totals = {kind: statistics.median(s.total_ms for s in runs_) for kind, runs_ in starts.items()}
    for kind, values in starts.items():
        print(f"{kind:8} ms: " + " ".join(f"{s.total_ms:.0f}" for s in values))
    # Figures of the runs themselves, with tracing on (it costs our client most: it also
    # watches its tracks' counters); cold_start.py and warm_start.py time them without.
    unit = (lambda ms: f"{ms:.0f} ms = {ms / rtt:.1f} RTT") if rtt else (lambda ms: f"{ms:.0f} ms")
    figures = [Figure("start_steps", "cold start p50 traced, warmrtc", unit(totals["ours"]))]
    if have_official:
        figures.append(
            Figure("start_steps", "cold start p50 traced, official", unit(totals["official"]))
        )
    figures.append(Figure("start_steps", "warm start p50 traced, warmrtc", unit(totals["warm"])))
    publish(figures)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--official-python",
        default=os.environ.get("WARMRTC_OFFICIAL_PYTHON", str(DEFAULT_OFFICIAL)),
        help="the interpreter of the environment with the official client",
    )
    args = parser.parse_args()
    main(max(args.runs, 1), args.official_python)
