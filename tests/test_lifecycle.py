"""The session's state machine, reconnects and shutdown, driven by a small fake link.

No network, no root: the Lifecycle is plain logic; the end-to-end suite proves it on the real
livekit-server and the emulator.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from warmrtc._session.lifecycle import TRANSITIONS, InvalidTransition, Lifecycle
from warmrtc.errors import (
    AuthenticationError,
    ConnectionLostError,
    ConnectTimeoutError,
    SessionClosedError,
    SessionEndedError,
    WarmrtcError,
)
from warmrtc.state import State


class FakeLink:
    """Establishes by running the next scripted outcome: None (success), an exception, or a
    callable run half-way (e.g. a loss reported while establishing)."""

    session_id = "fake"

    def __init__(self, *outcomes: Any, hang: bool = False, teardown_takes: float = 0) -> None:
        self.outcomes = list(outcomes)
        self.hang = hang
        self.teardown_takes = teardown_takes
        self.established = 0
        self.torn_down: list[bool] = []

    async def establish(self, timeout: float) -> None:
        if self.hang:
            await asyncio.sleep(3600)
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if callable(outcome):
            outcome()
        elif outcome is not None:
            raise outcome
        self.established += 1

    async def teardown(self, *, wait_native: bool) -> None:
        await asyncio.sleep(self.teardown_takes)  # a real teardown awaits the network
        self.torn_down.append(wait_native)


class Gate:
    def __init__(self, muted: bool) -> None:
        self.muted = muted


class Bound(Lifecycle):
    """A lifecycle whose connect() connects the fake link it was made for, as a session's
    connects the session's link."""

    def __init__(self, link: FakeLink, **options: Any) -> None:
        super().__init__(**options)
        self.fake_link = link

    async def connect(self, link: Any = None) -> None:
        await super().connect(link or self.fake_link)


def make(link: FakeLink, *, attempts: int = 3, muted: bool = False) -> tuple[Lifecycle, list]:
    states: list[State] = []
    life = Bound(
        link, timeout=5, reconnect_attempts=attempts, gate=Gate(muted), on_state=states.append
    )
    return life, states


def run(body: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), 20))


async def until(predicate: Callable[[], bool], timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


@pytest.fixture(autouse=True)
def fast_reconnects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("warmrtc._session.backoff.DELAYS", (0.01,))


def test_every_transition_outside_the_table_is_refused() -> None:
    async def body() -> None:
        for old, new in itertools.product(State, State):
            life, _ = make(FakeLink())
            life._state = old
            if new == old or new in TRANSITIONS[old]:
                life._set_state(new, "test")
                assert life.state == new
            else:
                with pytest.raises(InvalidTransition, match=f"{old} -> {new}"):
                    life._set_state(new, "test")
        assert TRANSITIONS[State.DISCONNECTED] == frozenset()

    run(body)


def test_connect_then_close(caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        link = FakeLink()
        life, states = make(link)
        with caplog.at_level(logging.INFO, "warmrtc"):
            await life.connect()
            assert life.state == "connected"
            await life.close()
            await life.close()  # idempotent
        assert states == [State.CONNECTED, State.DISCONNECTED]
        assert link.torn_down == [True]
        assert "connecting -> connected" in caplog.text
        with pytest.raises(SessionClosedError):
            life.check_open()

    run(body)


def test_a_failed_connect_ends_disconnected_with_the_error() -> None:
    async def body() -> None:
        link = FakeLink(AuthenticationError("bad key"))
        life, _ = make(link)
        with pytest.raises(AuthenticationError):
            await life.connect()
        assert life.state == "disconnected" and isinstance(life.last_error, AuthenticationError)
        assert link.torn_down == [False]  # within the caller's timeout: nothing waited for

    run(body)


def test_a_cancelled_connect_releases_everything() -> None:
    async def body() -> None:
        link = FakeLink(hang=True)
        life, _ = make(link)
        task = asyncio.create_task(life.connect())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert life.state == "disconnected" and link.torn_down == [False]

    run(body)


def test_a_lost_connection_reconnects_and_is_connected_not_generating() -> None:
    async def body() -> None:
        link = FakeLink(None, ConnectionLostError("refused"), None)
        life, states = make(link)
        await life.connect()
        life.generation_started()
        assert life.state == "generating"
        life.lost(ConnectionLostError("socket closed"))
        assert life.state == "reconnecting"
        life.lost(ConnectionLostError("again"))  # a second loss joins the same reconnect
        await until(lambda: life.state == "connected")
        assert link.established == 2
        assert states == [
            State.CONNECTED,
            State.GENERATING,
            State.RECONNECTING,
            State.CONNECTED,
        ]
        await life.close()

    run(body)


def test_reconnect_attempts_zero_ends_disconnected_with_the_reason() -> None:
    async def body() -> None:
        life, _ = make(FakeLink(), attempts=0)
        await life.connect()
        life.lost(ConnectionLostError("the service closed the control channel"))
        await until(lambda: life.state == "disconnected")
        assert isinstance(life.last_error, ConnectionLostError)
        assert "reconnect_attempts is 0" in str(life.last_error)
        assert "the service closed the control channel" in str(life.last_error)

    run(body)


def test_reconnecting_gives_up_after_its_attempts() -> None:
    async def body() -> None:
        errors = [ConnectTimeoutError(f"try {i}") for i in range(3)]
        link = FakeLink(None, *errors)
        life, _ = make(link, attempts=3)
        await life.connect()
        life.lost(ConnectionLostError("gone"))
        await until(lambda: life.state == "disconnected")
        assert "after 3 attempts" in str(life.last_error) and "try 2" in str(life.last_error)

    run(body)


def test_a_refusal_stops_reconnecting_at_once() -> None:
    async def body() -> None:
        link = FakeLink(None, AuthenticationError("key revoked"), None)
        life, _ = make(link, attempts=5)
        await life.connect()
        life.lost(ConnectionLostError("gone"))
        await until(lambda: life.state == "disconnected")
        assert link.established == 1 and "key revoked" in str(life.last_error)

    run(body)


def test_an_unexpected_error_in_a_reconnect_still_ends_the_session() -> None:
    async def body() -> None:
        link = FakeLink(None, KeyError("a bug"))
        life, _ = make(link)
        await life.connect()
        life.lost(ConnectionLostError("gone"))
        await until(lambda: life.state == "disconnected")
        assert isinstance(life.last_error, WarmrtcError) and "a bug" in str(life.last_error)

    run(body)


def test_losses_during_and_after_shutdown_change_nothing() -> None:
    async def body() -> None:
        life, states = make(FakeLink())
        await life.connect()
        life.lost(ConnectionLostError("the first"))
        first = life.last_error
        await life.close()
        life.lost(ConnectionLostError("the session was disconnected"))
        assert life.last_error is first and life.state == "disconnected"
        assert states[-1] == State.DISCONNECTED and states.count(State.DISCONNECTED) == 1

    run(body)


def test_muted_sessions_do_not_count_as_generating() -> None:
    async def body() -> None:
        gate = Gate(muted=True)
        life = Bound(FakeLink(), timeout=5, reconnect_attempts=1, gate=gate)
        await life.connect()
        life.frame_received()  # a frame still in flight after mute()
        assert life.state == "connected"
        gate.muted = False
        life.frame_received()
        assert life.state == "generating"
        life.generation_stopped("muted")
        assert life.state == "connected"
        life.generation_started()
        life.generation_stopped("the service ended generation")
        assert life.state == "connected"
        await life.close()

    run(body)


def test_media_resume_goes_through_reconnecting() -> None:
    async def body() -> None:
        life, states = make(FakeLink())
        await life.connect()
        life.media_reconnecting()
        life.media_reconnected()
        assert states == [State.CONNECTED, State.RECONNECTING, State.CONNECTED]
        await life.close()

    run(body)


def test_a_cancelled_close_caller_does_not_cut_the_shutdown_short() -> None:
    async def body() -> None:
        link = FakeLink()
        life, _ = make(link)
        await life.connect()
        closing = asyncio.create_task(life.close())
        await asyncio.sleep(0)
        closing.cancel()
        await life.close()
        assert life.state == "disconnected" and link.torn_down == [True]

    run(body)


def test_an_app_that_returns_without_disconnecting_is_closed_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    link = FakeLink(teardown_takes=0.05)
    lives: list[Lifecycle] = []

    async def body() -> None:
        life, _ = make(link)
        await life.connect()
        lives.append(life)  # and returns: asyncio.run() cancels what is left

    with caplog.at_level(logging.INFO, "warmrtc"):
        asyncio.run(body())
    # Waited for in full: a background clean-up would never run once the loop is gone.
    assert lives[0].state == "disconnected" and link.torn_down == [True]
    assert "reconnecting" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_loss_while_connecting_fails_the_connect() -> None:
    async def body() -> None:
        link = FakeLink()
        life, _ = make(link)
        link.outcomes = [lambda: life.lost(ConnectionLostError("closed after the ack"))]
        with pytest.raises(ConnectionLostError, match="closed after the ack"):
            await life.connect()
        assert life.state == "disconnected"

    run(body)


def test_a_loss_while_reconnecting_fails_that_attempt_and_the_next_one_runs() -> None:
    async def body() -> None:
        link = FakeLink()
        life, _ = make(link, attempts=3)
        link.outcomes = [None, lambda: life.lost(ConnectionLostError("the new room dropped"))]
        await life.connect()
        life.lost(ConnectionLostError("gone"))
        await until(lambda: life.state == "connected" and link.established == 3)
        assert "the new room dropped" in str(life.last_error)
        await life.close()

    run(body)


def test_a_shutdown_goes_from_generating_straight_to_disconnected() -> None:
    async def body() -> None:
        states: list[State] = []
        life = Bound(
            FakeLink(),
            timeout=5,
            reconnect_attempts=1,
            gate=Gate(muted=False),
            on_state=states.append,
            # the session's shutdown mutes first, which reports generation stopped
            before_shutdown=lambda: life.generation_stopped("muted"),
        )
        await life.connect()
        life.generation_started()
        await life.close()
        assert states == [State.CONNECTED, State.GENERATING, State.DISCONNECTED]

    run(body)


def test_a_session_the_service_ended_on_purpose_disconnects_without_reconnecting() -> None:
    async def body() -> None:
        link = FakeLink(None)
        life, states = make(link)
        await life.connect()
        life.generation_started()
        life.lost(SessionEndedError("the service ended the session: timeout", "timeout"))
        await until(lambda: life.state == "disconnected")
        assert link.established == 1  # no reconnect attempt
        assert isinstance(life.last_error, SessionEndedError)
        assert life.last_error.reason == "timeout" and not life.last_error.retryable
        assert states == [State.CONNECTED, State.GENERATING, State.DISCONNECTED]

    run(body)


def test_an_attempt_that_timed_out_is_followed_at_once_and_others_wait_their_delay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A timed-out attempt already waited its whole timeout (most often for a network that is
    down): the next one goes at once, to be there when the network is back. Any other failure
    waits its backoff delay."""
    monkeypatch.setattr("warmrtc._session.backoff.DELAYS", (3.0,))

    async def body() -> None:
        timeouts = [ConnectTimeoutError("dark"), ConnectTimeoutError("still dark")]
        link = FakeLink(None, *timeouts, None)
        life, _ = make(link, attempts=5)
        await life.connect()
        started = asyncio.get_running_loop().time()
        life.lost(ConnectionLostError("gone"))
        await until(lambda: life.state == "connected" and link.established == 2, timeout=2)
        assert asyncio.get_running_loop().time() - started < 1.0

        link.outcomes = [ConnectionLostError("refused"), None]
        life.lost(ConnectionLostError("gone again"))
        await asyncio.sleep(1.0)
        assert link.established == 2 and life.state == "reconnecting"  # waiting its 3 s
        await until(lambda: life.state == "connected", timeout=4)
        await life.close()

    run(body)
