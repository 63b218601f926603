"""A live session against a link that fails under it: blackouts and a mobile uplink.

Each run is a session behind a link of its own (warmrtc.local.link.ClientLink, broadband: RTT
50 ms), driven from here (warmrtc.local.driven); the emulator and livekit-server on the stack's
side. The scenarios, as the resilience targets name them:

- ``short``: live, a 3 s blackout; when generated frames come back after the link returns,
  whether the service session is the same one, and the seconds billed against those live;
- ``long``: live, a 20 s blackout; when frames come back, and whether in a new service session;
- ``muted``: live, muted, a 20 s blackout; when the session is connected again, the frames that
  reached the model while muted (the service's report), then unmute -> first frame;
- ``ended``: muted and idle, a 20 s blackout that starts just before both ends' heartbeat pings
  (38 s after connecting), the service ending the session 3 s into it: when the client gave the
  session up (before or after the link returned) and when it was connected again, muted;
- ``mobile``: 60 s live at 1280x720, 30 fps, on the ``mobile`` profile (RTT 80 ± 20 ms, 1 % loss,
  2 Mbit/s up): generated frames/s at the app, the longest time without one, and the client's
  encode frame rate, send and target bitrate from session.stats() every 10 s; with the test
  pattern (cheap to encode: ~0.2 Mbit/s) and with camera-like bits (``busy``: the encoder wants
  more than the uplink carries).

Run inside the stack: python -m warmrtc stack -- python benchmarks/resilience.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from figures import Figure, publish
from warmrtc.local.driven import (
    DrivenSession,
    drop_service_session,
    frames_between,
    longest_gap,
    service_sessions,
    short_blackout,
)
from warmrtc.local.link import ClientLink
from warmrtc.local.service import LocalService

SHORT, LONG = 3.0, 20.0
SHORT_BACK_S, LONG_BACK_S = 1.0, 3.0  # the targets: generating again after the link returned
MOBILE_S = 60.0
MAX_FREEZE_S = 1.0


def _ms(values: list[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)
    return f"p50 {statistics.median(ordered) * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms"


def short_run(url: str, key: str) -> dict[str, Any]:
    with ClientLink("broadband") as link, DrivenSession(link, url, key) as s:
        assert s.ask("unmute")["first"] is not None, s.tail()
        run = short_blackout(s, link, url, key, SHORT)
        s.quit()
    report, back = run["report"], run["back"]
    after = frames_between(report["frames"], back, run["end"])
    return {
        "back": after[0] - back if after else None,
        "same": report["session_id"] == s.session_id and not report["reconnects"],
        # seconds live but not billed (the blackout's)
        "unbilled": (run["end"] - run["live"]) - run["billed"],
    }


def long_run(url: str, key: str, muted: bool) -> dict[str, Any]:
    with ClientLink("broadband") as link, DrivenSession(link, url, key) as s:
        assert s.ask("unmute")["first"] is not None, s.tail()
        time.sleep(2)
        if muted:
            s.ask("mute")
            time.sleep(1.5)
        at_mute = {k: v["frames_received"] for k, v in service_sessions(url, key).items()}
        link.control.blackout(LONG)
        back = time.monotonic() + LONG
        time.sleep(LONG)
        if muted:
            report = s.wait_for(
                "connected after the link returned",
                lambda r: r["states"][-1][0] > back and r["states"][-1][1] == "connected",
                60,
            )
            connected = report["states"][-1][0] - back
            still_muted = report["muted"]
            time.sleep(3)
            seen = service_sessions(url, key)
            leaked = sum(v["frames_received"] - at_mute.get(k, 0) for k, v in seen.items())
            billed_new = sum(v["billed_seconds"] for k, v in seen.items() if k not in at_mute)
            unmuted_at = time.monotonic()
            first = s.ask("unmute")["first"]
            report = s.ask("report")
            s.quit()
            return {
                "back": connected,
                "new": report["session_id"] != s.session_id,
                "leaked": leaked,
                "billed_new": billed_new,
                "unmute": None if first is None else first - unmuted_at,
                "still_muted": still_muted,
            }
        report = s.wait_for("frames after the link returned", lambda r: r["frames"][-1] > back, 60)
        s.quit()
    after = frames_between(report["frames"], back, report["frames"][-1] + 1)
    return {"back": after[0] - back, "new": report["session_id"] != s.session_id}


def ended_run(url: str, key: str) -> dict[str, Any]:
    with ClientLink("broadband") as link, DrivenSession(link, url, key) as s:
        ready = time.monotonic()
        assert s.ask("unmute")["first"] is not None, s.tail()
        time.sleep(2)
        s.ask("mute")
        time.sleep(max(0.0, ready + 38 - time.monotonic()))
        link.control.blackout(LONG)
        back = time.monotonic() + LONG
        time.sleep(3)
        drop_service_session(url, key, s.session_id)
        time.sleep(LONG - 3)
        report = s.wait_for(
            "connected in a new service session",
            lambda r: r["session_id"] != s.session_id and r["state"] == "connected",
            60,
        )
        s.quit()
    gave_up = min(t for t, _, text in report["log"] if text.endswith("; reconnecting"))
    connected = next(t for t, new, _, _ in report["states"] if t > back and new == "connected")
    return {"gave_up": gave_up - back, "back": connected - back, "muted": report["muted"]}


def mobile_run(url: str, key: str, busy: bool) -> dict[str, Any]:
    with (
        ClientLink("mobile") as link,
        DrivenSession(link, url, key, size="1280x720", busy=busy) as s,
    ):
        assert s.ask("unmute")["first"] is not None, s.tail()
        start = time.monotonic()
        stats = []
        for _ in range(int(MOBILE_S // 10)):
            time.sleep(10)
            stats.append(s.ask("stats")["stats"])
        end = time.monotonic()
        report = s.ask("report")
        s.quit()
    frames = report["frames"]
    return {
        "fps": len(frames_between(frames, start, end)) / (end - start),
        "freeze": longest_gap(frames, start, end),
        "stats": [st for st in stats if st],
    }


def _figures_of(name: str, runs: list[dict[str, Any]]) -> list[Figure]:
    b = "resilience"
    if name == "short":
        back = [r["back"] for r in runs if r["back"] is not None]
        return [
            Figure(
                b,
                f"{SHORT:g} s blackout: frames back after the link",
                _ms(back),
                f"< {SHORT_BACK_S:g} s",
                met=len(back) == len(runs) and max(back) < SHORT_BACK_S,
            ),
            Figure(
                b,
                f"{SHORT:g} s blackout: same service session",
                f"{sum(r['same'] for r in runs)}/{len(runs)}",
                "all",
                met=all(r["same"] for r in runs),
            ),
            Figure(
                b,
                f"{SHORT:g} s blackout: seconds live but not billed",
                f"max {max(r['unbilled'] for r in runs):.1f} s",
                f"<= {SHORT + 1:g} s",
                met=max(r["unbilled"] for r in runs) <= SHORT + 1,
            ),
        ]
    if name == "long":
        back = [r["back"] for r in runs]
        return [
            Figure(
                b,
                f"{LONG:g} s blackout: frames back after the link",
                _ms(back),
                f"< {LONG_BACK_S:g} s",
                met=max(back) < LONG_BACK_S,
            ),
            Figure(
                b,
                f"{LONG:g} s blackout: in a new service session",
                f"{sum(r['new'] for r in runs)}/{len(runs)}",
            ),
        ]
    if name == "muted":
        back = [r["back"] for r in runs]
        unmute = [r["unmute"] for r in runs if r["unmute"] is not None]
        return [
            Figure(
                b,
                f"{LONG:g} s blackout, muted: connected after the link",
                _ms(back),
                f"< {LONG_BACK_S:g} s",
                met=max(back) < LONG_BACK_S,
            ),
            Figure(
                b,
                f"{LONG:g} s blackout, muted: frames to the model while muted",
                f"{sum(r['leaked'] for r in runs)} ({sum(r['billed_new'] for r in runs)} s "
                "billed in new sessions)",
                "0",
                met=sum(r["leaked"] for r in runs) == 0 and sum(r["billed_new"] for r in runs) == 0,
            ),
            Figure(
                b,
                f"{LONG:g} s blackout, muted: in a new service session",
                f"{sum(r['new'] for r in runs)}/{len(runs)}",
            ),
            Figure(b, "then unmute -> first generated frame", _ms(unmute)),
        ]
    if name == "ended":
        gave_up = [r["gave_up"] for r in runs]
        back = [r["back"] for r in runs]
        return [
            Figure(
                b,
                f"{LONG:g} s blackout, the service ended it: session given up, after the link",
                f"{min(gave_up):+.2f} to {max(gave_up):+.2f} s",
                "0 to 1 s (not in the dark)",
                met=min(gave_up) >= 0 and max(gave_up) < 1.0,
            ),
            Figure(
                b,
                f"{LONG:g} s blackout, the service ended it: connected anew, muted",
                _ms(back),
                f"< {LONG_BACK_S:g} s",
                met=max(back) < LONG_BACK_S and all(r["muted"] for r in runs),
            ),
        ]
    content = "camera-like" if name == "mobile_busy" else "test pattern"
    stats = [st for r in runs for st in r["stats"]]

    def spread(key: str, scale: float, unit: str) -> str:
        values = sorted(st[key] * scale for st in stats if st.get(key) is not None)
        if not values:
            return "none"
        return f"p50 {statistics.median(values):.1f}, min {values[0]:.1f} {unit}"

    freeze = max(r["freeze"] for r in runs)
    return [
        Figure(
            b,
            f"mobile 60 s 720p, {content}: generated frames/s at the app",
            f"p50 {statistics.median(r['fps'] for r in runs):.1f}",
        ),
        Figure(
            b,
            f"mobile 60 s 720p, {content}: longest time without a frame",
            f"{freeze * 1000:.0f} ms",
            f"<= {MAX_FREEZE_S:g} s",
            met=freeze <= MAX_FREEZE_S,
        ),
        Figure(b, f"mobile, {content}: encode frames/s", spread("encode_fps", 1, "")),
        Figure(b, f"mobile, {content}: send bitrate", spread("send_bitrate_bps", 1e-6, "Mbit/s")),
        Figure(
            b, f"mobile, {content}: target bitrate", spread("target_bitrate_bps", 1e-6, "Mbit/s")
        ),
    ]


SCENARIOS = ("short", "long", "muted", "ended", "mobile", "mobile_busy")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="runs of each scenario (default 3)")
    p.add_argument("--only", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    args = p.parse_args()
    figures: list[Figure] = []
    with LocalService("--fault-injection") as (url, key):
        for name in args.only:
            runs = []
            many = args.runs if not name.startswith("mobile") else max(1, args.runs // 3)
            for i in range(many):
                if name == "short":
                    run = short_run(url, key)
                elif name == "long":
                    run = long_run(url, key, muted=False)
                elif name == "muted":
                    run = long_run(url, key, muted=True)
                elif name == "ended":
                    run = ended_run(url, key)
                else:
                    run = mobile_run(url, key, busy=name == "mobile_busy")
                shown = {k: v for k, v in run.items() if k != "stats"}
                print(f"{name} {i + 1}: {shown}", flush=True)
                for st in run.get("stats", []):
                    keys = (
                        "encode_fps",
                        "send_bitrate_bps",
                        "target_bitrate_bps",
                        "rtt_s",
                        "upload_fraction_lost",
                        "freeze_count",
                        "total_freeze_duration_s",
                    )
                    print("   ", {k: st.get(k) for k in keys}, flush=True)
                runs.append(run)
            figures += _figures_of(name, runs)
    publish(figures)


if __name__ == "__main__":
    main()
