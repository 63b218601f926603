"""warmrtc check's steps follow connect's order: room, publish, then the initial state's ack."""

from __future__ import annotations

from warmrtc._session.link import STEP_NAMES
from warmrtc.check import STEPS, CheckReport, connect_steps
from warmrtc.errors import AuthenticationError, ConnectTimeoutError, ProtocolError
from warmrtc.stats import ConnectStep

LINK = (
    ConnectStep("control", 0.01),
    ConnectStep("room_info", 0.02),
    ConnectStep("room_join", 0.10),
    ConnectStep("publish", 0.05),
    ConnectStep("initial_state", 0.30),
)


def failed_at(steps: tuple[ConnectStep, ...]) -> tuple[ConnectStep, ...]:
    """``steps`` with the last one the step a connect failed in."""
    last = steps[-1]
    return (*steps[:-1], ConnectStep(last.name, last.seconds, ok=False))


def test_every_link_step_has_a_check_step_in_connect_order() -> None:
    assert list(STEP_NAMES) == [step.name for step in LINK]
    assert STEPS == ("control", "auth", "room", "publish", "initial_state", "round_trip")
    steps = connect_steps(LINK, None)
    assert [(s.name, s.ok, s.seconds) for s in steps] == [
        ("control", True, 0.01),
        ("auth", True, 0.02),
        ("room", True, 0.10),
        ("publish", True, 0.05),
        ("initial_state", True, 0.30),
    ]


def test_a_refused_initial_state_fails_its_own_step_after_publish() -> None:
    error = ProtocolError("the service refused the prompt: too long")
    steps = connect_steps(failed_at(LINK), error)
    assert [(s.name, s.ok) for s in steps] == [
        ("control", True),
        ("auth", True),
        ("room", True),
        ("publish", True),
        ("initial_state", False),
    ]
    assert steps[-1].seconds == 0.30 and "too long" in steps[-1].detail


def test_a_room_join_timeout_is_the_room_step() -> None:
    steps = connect_steps(failed_at(LINK[:3]), ConnectTimeoutError("the media room join"))
    assert [(s.name, s.ok) for s in steps] == [("control", True), ("auth", True), ("room", False)]
    assert steps[-1].seconds == 0.10


def test_a_refused_key_at_the_handshake_is_the_auth_step() -> None:
    refused = (ConnectStep("control", 0.04, ok=False),)
    steps = connect_steps(refused, AuthenticationError("Invalid API key"))
    assert [(s.name, s.ok, s.seconds) for s in steps] == [
        ("control", True, 0.04),
        ("auth", False, 0.0),
    ]


def test_the_report_counts_each_step_in_round_trips_to_the_service() -> None:
    timed = tuple(ConnectStep(s.name, s.seconds, rtt_s=0.05) for s in LINK)
    assert timed[2].round_trips == 2.0 and LINK[2].round_trips is None
    report = CheckReport(tuple(connect_steps(timed, None)), rtt_s=0.05)
    text = str(report)
    assert "round trip to the service: 50 ms" in text
    assert "100 ms   2.0 RTT" in text  # the room join: 0.10 s at 50 ms a round trip
