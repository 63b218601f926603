"""What the app applied to the model (a prompt, an image, passthrough) is what a reconnect
applies again, and a prompt the service would refuse for its length is refused at the call,
before anything is sent."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import warmrtc
from warmrtc._protocol.limits import MAX_PROMPT_CHARS
from warmrtc.config import SessionConfig
from warmrtc.session import Session


class Control:
    """A control channel that acknowledges everything, and keeps what it was sent."""

    closed = False

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    async def set_prompt(self, *args: Any) -> None:
        self.sent.append(("prompt", *args))

    async def set_image(self, *args: Any) -> None:
        self.sent.append(("set_image", *args))


def with_session(body: Any, **options: Any) -> None:
    async def run() -> None:
        source = warmrtc.VideoSource(64, 48)
        session = Session(
            source, SessionConfig.of("lucy-2.6", api_key="k", **options), start_muted=True
        )
        control = Control()
        session._link._control = control  # type: ignore[assignment]
        try:
            await body(session, control)
        finally:
            session._link._control = None
            await session.disconnect()
            source.close()

    asyncio.run(asyncio.wait_for(run(), 20))


def test_passthrough_stays_passthrough_across_a_reconnect() -> None:
    async def body(session: Session, control: Control) -> None:
        await session.set_prompt("anime", enhance=False)
        request = session._link.applied.initial_state()
        assert request is not None and request.message["prompt"] == "anime"
        assert request.message["enhance_prompt"] is False  # as the app set it
        await session.set_image(None)  # passthrough: the model works on the input as it is
        assert session._link.applied.initial_state() is None  # a reconnect joins passthrough
        await session.set_image(b"\x89PNG...", prompt="oil painting")
        request = session._link.applied.initial_state()
        assert request is not None and request.message["type"] == "set_image"
        assert request.message["prompt"] == "oil painting"

    with_session(body, prompt="first")


def test_a_prompt_over_the_services_limit_is_refused_before_it_is_sent() -> None:
    too_long = "x" * (MAX_PROMPT_CHARS + 1)

    async def body(session: Session, control: Control) -> None:
        with pytest.raises(ValueError, match=f"over the limit of {MAX_PROMPT_CHARS}"):
            await session.set_prompt(too_long)
        with pytest.raises(ValueError, match="over the limit"):
            await session.set_image(b"\x89PNG...", prompt=too_long)
        assert control.sent == []

    with_session(body)
    with pytest.raises(ValueError, match="over the limit"):
        SessionConfig.of("lucy-2.6", api_key="k", prompt=too_long)
