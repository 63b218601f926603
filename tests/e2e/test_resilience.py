"""The resilience targets behind a link of the test's own (client_link, broadband: RTT 50 ms):
a 3 s blackout is ridden out in the same service session; after a 20 s one the session is back
soon after the link returns, in the same service session when the service kept it, in a new one
when the service ended it, and a muted session comes back muted with nothing sent to the model;
the model's input comes back soon after a burst of heavy upstream loss; a mobile uplink keeps
the picture moving. The emulator and livekit-server run on the stack's
side. The bounds here are generous (the machine is shared); benchmarks/resilience.py measures
the figures against the targets (1 s, 3 s, 1 s)."""

from __future__ import annotations

import dataclasses
import time

import pytest
from conftest import API_KEY

from warmrtc.local.driven import (
    DrivenSession,
    drop_service_session,
    frames_between,
    longest_gap,
    service_sessions,
    short_blackout,
)
from warmrtc.local.link import ClientLink

SHORT, LONG = 3.0, 20.0
BURSTS, BURST_S, BURST_LOSS = 3, 2.0, 0.6  # heavy upstream loss, a few times
BURST_BACK_S = 1.5  # generated frames again within this long after each burst ends (target 1 s)
BACK_BOUND = 6.0  # seconds after the link returned: generating (or connected) again


def timeline(report: dict, origin: float) -> str:
    states = [(round(t - origin, 2), new, why) for t, new, why, _ in report["states"]]
    tries = [(round(t - origin, 2), n, e) for t, n, e in report["reconnects"]]
    said = [
        (round(t - origin, 2), text)
        for t, level, text in report["log"]
        if level != "INFO" or "track refreshed" in text
    ]
    return f"states {states}; reconnect attempts {tries}; warnings {said}"


@pytest.mark.link("broadband")
def test_a_3_s_blackout_is_ridden_out_in_the_same_service_session(
    emulator_url: str, client_link: ClientLink
) -> None:
    before = set(service_sessions(emulator_url, API_KEY))
    with DrivenSession(client_link, emulator_url, API_KEY) as s:
        assert s.ask("unmute")["first"] is not None, s.tail()
        run = short_blackout(s, client_link, emulator_url, API_KEY, SHORT)
        s.quit()
    report, back, billed = run["report"], run["back"], run["billed"]
    live, end = run["live"], run["end"]
    after = frames_between(report["frames"], back, end)
    resumed = after[0] - back if after else None
    mine = set(service_sessions(emulator_url, API_KEY)) - before
    print(
        f"{SHORT:g} s blackout: frames back {resumed} s after the link, billed {billed} s of "
        f"{end - live:.1f} s live; {timeline(report, back)}"
    )
    # In place: no reconnect, no other service session, billed but for the blackout.
    assert mine == {s.session_id} and report["session_id"] == s.session_id
    # The client saw its path come back and refreshed its track (the media server would wait
    # for two seconds of packets, and the model for its next keyframe request, otherwise).
    refreshed = [t for t, _, text in report["log"] if "track refreshed" in text]
    assert refreshed and 0 <= refreshed[0] - back < 2.0, timeline(report, back)
    assert not report["reconnects"], report["reconnects"]
    assert billed >= (end - live) - SHORT - 2, billed
    assert resumed is not None and resumed < BACK_BOUND, resumed


@pytest.mark.link("broadband")
def test_a_20_s_blackout_the_service_rode_out_resumes_in_the_same_session(
    emulator_url: str, client_link: ClientLink
) -> None:
    # Live: the service's ticks keep the client's side of the channel from pinging, and the
    # service's own ping comes 20 s after the client last wrote (its join): late in the
    # blackout, answered once the link is back. The service keeps the session.
    with DrivenSession(client_link, emulator_url, API_KEY) as s:
        assert s.ask("unmute")["first"] is not None, s.tail()
        time.sleep(2)
        client_link.control.blackout(LONG)
        back = time.monotonic() + LONG
        time.sleep(LONG)
        report = s.wait_for("generated frames after the link", lambda r: r["frames"][-1] > back, 30)
        s.quit()
    resumed = frames_between(report["frames"], back, report["frames"][-1] + 1)[0] - back
    print(
        f"{LONG:g} s blackout: frames back {resumed:.2f} s after the link; {timeline(report, back)}"
    )
    assert report["session_id"] == s.session_id and not report["reconnects"]
    assert resumed < BACK_BOUND, resumed


@pytest.mark.link("broadband")
def test_a_20_s_blackout_the_service_did_not_ride_out_reconnects_muted_at_once(
    emulator_url: str, client_link: ClientLink
) -> None:
    """Muted and idle, both ends ping after 20 s of silence: the blackout starts just before
    they do, so neither ping is answered in time. The service ends its session in the dark
    (here also dropped by fault injection, to be sure); the client must not give up in the dark
    (a reconnect started there waits out TCP's backoff after the link returns), and once the
    link is back it must learn of the end and reconnect at once, still muted."""
    before = set(service_sessions(emulator_url, API_KEY))
    with DrivenSession(client_link, emulator_url, API_KEY) as s:
        ready = time.monotonic()
        assert s.ask("unmute")["first"] is not None, s.tail()
        time.sleep(2)
        s.ask("mute")
        time.sleep(1.5)
        at_mute = service_sessions(emulator_url, API_KEY)[s.session_id]["frames_received"]
        # The service pings ~20 s after the client's last message (at connect), the client
        # answers; both then ping again ~20 s later: 38 s after connecting is just before.
        time.sleep(max(0.0, ready + 38 - time.monotonic()))
        client_link.control.blackout(LONG)
        back = time.monotonic() + LONG
        time.sleep(3)
        drop_service_session(emulator_url, API_KEY, s.session_id)
        time.sleep(LONG - 3)
        report = s.wait_for(
            "connected in a new service session after the link",
            lambda r: r["session_id"] != s.session_id and r["state"] == "connected",
            30,
        )
        connected = next(t for t, new, _, _ in report["states"] if t > back and new == "connected")
        time.sleep(3)  # muted: nothing may reach the model
        seen = service_sessions(emulator_url, API_KEY)
        first = s.ask("unmute")["first"]
        s.quit()
    mine = {k: v for k, v in seen.items() if k not in before}
    new = report["session_id"]
    shown = [
        (k[:6], v["frames_received"], v["billed_seconds"], v["muted"]) for k, v in mine.items()
    ]
    print(
        f"{LONG:g} s blackout, muted, the service ended the session: connected "
        f"{connected - back:.2f} s after the link; {timeline(report, back)}; sessions "
        f"{shown}"
    )
    # The session was not given up in the dark (a reconnect started there waits out TCP's
    # backoff once the link is back), and was given up soon after the link returned.
    gave_up = [t for t, level, text in report["log"] if text.endswith("; reconnecting")]
    assert gave_up and min(gave_up) >= back - 0.2, timeline(report, back)
    assert min(gave_up) - back < 3.0, timeline(report, back)
    assert connected - back < BACK_BOUND, connected - back
    assert report["muted"] and first is not None
    assert mine[s.session_id]["frames_received"] == at_mute  # nothing while muted
    assert mine[new]["frames_received"] == 0 and mine[new]["billed_seconds"] == 0, mine[new]
    assert set(mine) == {s.session_id, new}


@pytest.mark.link("broadband")
def test_a_20_s_blackout_keeps_a_muted_session_muted(
    emulator_url: str, client_link: ClientLink
) -> None:
    """The service rides it out; livekit rejoins the room in full and republishes the muted
    track, and the media server flushes the model's decoder with blank frames of its own: none
    of it is the client's video, and nothing is billed."""
    with DrivenSession(client_link, emulator_url, API_KEY) as s:
        assert s.ask("unmute")["first"] is not None, s.tail()
        time.sleep(2)
        s.ask("mute")
        time.sleep(1.5)
        at_mute = service_sessions(emulator_url, API_KEY)[s.session_id]
        client_link.control.blackout(LONG)
        back = time.monotonic() + LONG
        time.sleep(LONG)
        report = s.wait_for(
            "connected after the link",
            lambda r: r["states"][-1][0] > back and r["states"][-1][1] == "connected",
            30,
        )
        time.sleep(3)
        now = service_sessions(emulator_url, API_KEY)[s.session_id]
        first = s.ask("unmute")["first"]
        s.quit()
    print(
        f"{LONG:g} s blackout, muted: {timeline(report, back)}; model frames "
        f"{at_mute['frames_received']} -> {now['frames_received']}, billed "
        f"{at_mute['billed_seconds']} -> {now['billed_seconds']}"
    )
    assert report["muted"] and report["session_id"] == s.session_id
    assert now["frames_received"] == at_mute["frames_received"]
    assert now["billed_seconds"] == at_mute["billed_seconds"]
    assert first is not None


@pytest.mark.link("broadband")
def test_the_models_input_comes_back_soon_after_a_burst_of_heavy_upstream_loss(
    emulator_url: str, client_link: ClientLink
) -> None:
    # Half the client's packets lost for 2 s: some frames cannot be completed, their
    # retransmissions lost too, and the model decodes nothing until a keyframe, which its
    # receiver asks for after 3 s without a decodable frame. The client sees its output stop
    # while its path is alive and refreshes its track: the media server asks for a keyframe.
    base = client_link.control.spec()
    lossy = dataclasses.replace(base, up=dataclasses.replace(base.up, loss=BURST_LOSS))
    with DrivenSession(client_link, emulator_url, API_KEY, size="640x360") as s:
        assert s.ask("unmute")["first"] is not None, s.tail()
        ends = []
        for _ in range(BURSTS):
            time.sleep(2)
            client_link.control.set(lossy)
            time.sleep(BURST_S)
            client_link.control.set(base)
            ends.append(time.monotonic())
        time.sleep(3)
        report = s.ask("report")
        s.quit()
    back = [
        after[0] - end if (after := frames_between(report["frames"], end, end + 3)) else None
        for end in ends
    ]
    print(f"frames back after each loss burst: {back}; {timeline(report, ends[0])}")
    # The output froze (some burst always freezes it for a while) and the client saw it.
    frozen = [t for t, _, text in report["log"] if text.startswith("no generated frame")]
    assert frozen, timeline(report, ends[0])
    assert all(b is not None and b < BURST_BACK_S for b in back), back


@pytest.mark.link("mobile")
def test_60_s_live_on_a_mobile_link(emulator_url: str, client_link: ClientLink) -> None:
    with DrivenSession(client_link, emulator_url, API_KEY, size="1280x720") as s:
        assert s.ask("unmute")["first"] is not None, s.tail()
        start = time.monotonic()
        stats = []
        for _ in range(6):
            time.sleep(10)
            stats.append(s.ask("stats")["stats"])
        end = time.monotonic()
        report = s.ask("report")
        s.quit()
    frames = report["frames"]
    fps = len(frames_between(frames, start, end)) / (end - start)
    gap = longest_gap(frames, start, end)
    sent = [st for st in stats if st]
    print(
        f"mobile 60 s at 720p: {fps:.1f} generated frames/s, longest gap {gap:.2f} s; "
        + "; ".join(
            f"encode {st['encode_fps']} fps, send {st['send_bitrate_bps']}, "
            f"target {st['target_bitrate_bps']}"
            for st in sent
        )
    )
    assert len(sent) == len(stats) and all(st["encode_fps"] for st in sent)
    # The encoder keeps under the 2 Mbit/s uplink (its own target, from congestion control).
    assert all(st["target_bitrate_bps"] <= 2_000_000 for st in sent[1:]), sent
    assert fps > 5 and gap < 3.0, (fps, gap)
