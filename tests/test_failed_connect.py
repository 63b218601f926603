"""A connect that fails gives the source back at once: the failed session's clean-up may go on
in the background (past the connect's timeout, on the blocking API's loop), and a connect right
after it, from any thread, may take the same source."""

from __future__ import annotations

import asyncio
import socket

import numpy as np
import pytest

import warmrtc
from warmrtc.source import in_session

FRAME = np.zeros((48, 64, 3), np.uint8)


@pytest.fixture
def silent_url() -> object:
    """A server that accepts connections and never answers: a connect times out there."""
    server = socket.create_server(("127.0.0.1", 0))
    yield f"ws://127.0.0.1:{server.getsockname()[1]}"
    server.close()


def test_a_timed_out_connect_gives_the_source_back_at_once(silent_url: str) -> None:
    source = warmrtc.VideoSource(64, 48)

    async def attempt() -> None:
        with pytest.raises(warmrtc.ConnectTimeoutError):
            await warmrtc.connect(source, api_key="k", base_url=silent_url, timeout=0.5)
        assert not in_session(source)  # before the clean-up has had a turn
        source.unmute()  # the app's own gate again
        assert source.capture(FRAME)
        await asyncio.sleep(0.5)  # the failed session's clean-up ends: it leaves the gate be
        assert not source.muted

    for _ in range(2):
        asyncio.run(attempt())
        with pytest.raises(warmrtc.ConnectTimeoutError):
            warmrtc.connect_blocking(source, api_key="k", base_url=silent_url, timeout=0.5)
        assert not in_session(source)
    source.close()
