"""Options are checked once, at the call that passed them: connect, connect_blocking, WarmPool."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import warmrtc
from warmrtc._session.link import Billing
from warmrtc.config import SessionConfig

BAD_OPTIONS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"output_format": "bogus"}, ValueError, "output_format 'bogus'"),
    ({"prompt": "  "}, ValueError, "prompt"),
    ({"prompt": 3}, ValueError, "prompt"),
    ({"image": b""}, ValueError, "image is empty"),
    ({"image": "/no/such/file.png"}, ValueError, "is not a file"),
    ({"image": 12}, TypeError, "image must be"),
    ({"timeout": 0}, ValueError, "timeout"),
    ({"timeout": float("inf")}, ValueError, "timeout"),
    ({"timeout": "5"}, TypeError, "timeout"),
    ({"reconnect_attempts": -1}, ValueError, "reconnect_attempts"),
    ({"reconnect_attempts": 1.5}, ValueError, "reconnect_attempts"),
    ({"on_frame": "print"}, TypeError, "on_frame"),
    ({"on_state": 1}, TypeError, "on_state"),
    ({"on_event": "log"}, TypeError, "on_event"),
    ({"stats_interval": 0}, ValueError, "stats_interval"),
    ({"stats_interval": float("nan")}, ValueError, "stats_interval"),
    ({"stats_interval": "1"}, TypeError, "stats_interval"),
    ({"stats_interval": True}, TypeError, "stats_interval"),
    ({"base_url": "ftp://x"}, ValueError, "base_url"),
    ({"api_key": ""}, ValueError, "no API key"),
]


@pytest.mark.parametrize(("options", "error", "match"), BAD_OPTIONS)
def test_bad_options_fail_at_every_entry(
    options: dict[str, Any], error: type[Exception], match: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DECART_API_KEY", raising=False)
    options = {"api_key": "k", **options}
    source = warmrtc.VideoSource(64, 48)
    with pytest.raises(error, match=match):
        warmrtc.connect(source, **options)
    with pytest.raises(error, match=match):
        warmrtc.connect_blocking(source, **options)
    with pytest.raises(error, match=match):
        warmrtc.WarmPool(1, width=64, height=48, **options)
    with pytest.raises(error, match=match):
        warmrtc.BlockingWarmPool(1, width=64, height=48, **options)
    source.close()


def test_a_pool_with_a_bogus_output_format_fails_at_construction_not_in_wait_warm() -> None:
    async def body() -> None:
        with pytest.raises(ValueError, match="output_format 'bogus'"):
            warmrtc.WarmPool(1, api_key="k", output_format="bogus")  # type: ignore[typeddict-item]

    asyncio.run(asyncio.wait_for(body(), 10))


def test_the_key_comes_from_the_environment_and_never_shows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DECART_API_KEY", "sk-secret-123")
    config = SessionConfig.of("lucy-2.6", image=b"\x89PNG")
    assert config.api_key.reveal() == "sk-secret-123" and "sk-secret" not in repr(config.api_key)
    assert "sk-secret" not in repr(config) and "iVBO" not in repr(config)
    assert config.model.width == 1280 and config.image_base64 == "iVBORw=="


def test_billing_carries_the_seconds_of_earlier_service_sessions() -> None:
    billing = Billing()
    billing.new_service_session()
    billing.tick(3)
    billing.tick(2)  # out of order: never backwards
    assert billing.seconds == 3
    billing.new_service_session()  # a reconnect: the service counts from 0 again
    assert billing.seconds == 3
    billing.tick(1)
    assert billing.seconds == 4


def test_resolution_and_speed_go_into_the_stream_url_as_the_official_client_sends_them() -> None:
    from warmrtc._protocol.endpoints import Secret, stream_url

    plain = stream_url("wss://x", "lucy-2.6", Secret("k"), "ua")
    asked = stream_url("wss://x", "lucy-2.6", Secret("k"), "ua", resolution="1080p", speed="fast")
    assert "resolution" not in plain and "speed" not in plain
    assert "&resolution=1080p&speed=fast&" in asked and asked.startswith("wss://x/v1/stream?")
    config = SessionConfig.of("lucy-2.6", api_key="k", resolution="1080p", speed="fast")
    assert (config.resolution, config.speed) == ("1080p", "fast")


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"resolution": "4k"}, "resolution must be one of 720p, 1080p"),
        ({"speed": "turbo"}, "speed"),
    ],
)
def test_bad_resolution_or_speed_is_named(options: dict[str, str], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        SessionConfig.of("lucy-2.6", api_key="k", **options)  # type: ignore[arg-type]


def test_fast_on_a_model_without_the_tier_warns_and_is_still_asked_for() -> None:
    with pytest.warns(UserWarning, match="no 'fast' tier"):
        config = SessionConfig.of("lucy-restyle-2", api_key="k", speed="fast")
    assert config.speed == "fast"
