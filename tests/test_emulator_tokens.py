"""The emulator's client tokens (as the service's token API mints them) and its slot ledger."""

from __future__ import annotations

import asyncio
import time

import pytest

from warmrtc.emulator.auth import Authenticator, Caller
from warmrtc.emulator.slots import SlotLedger
from warmrtc.emulator.tokens import TokenIssuer, TokenRequestError


def test_a_token_has_the_service_fields_and_names_its_owner() -> None:
    issuer = TokenIssuer()
    token, response = issuer.mint(
        "org-key",
        {
            "expiresIn": 300,
            "allowedModels": ["lucy-2.6"],
            "allowedOrigins": ["https://example.com"],
            "constraints": {"realtime": {"maxSessionDuration": 120}},
        },
    )
    assert response["apiKey"].startswith("ek_") and response["token"].count(".") == 2
    assert response["expiresAt"].endswith("Z")
    assert response["permissions"] == {
        "models": ["lucy-2.6"],
        "origins": ["https://example.com"],
    }
    assert response["constraints"] == {"realtime": {"maxSessionDuration": 120}}
    assert token.max_session_duration == 120 and token.owner == "org-key"
    assert issuer.find(response["apiKey"]) is token and issuer.find(response["token"]) is token
    assert token.key not in repr(token) and token.jwt not in repr(token)
    assert "org-key" not in repr(token)
    _plain, bare = issuer.mint("org-key", {})
    assert "permissions" not in bare and "constraints" not in bare


@pytest.mark.parametrize(
    "body",
    [
        {"expiresIn": 0},
        {"expiresIn": 3601},
        {"expiresIn": "60"},
        {"allowedModels": "lucy-2.6"},
        {"allowedOrigins": ["https://a"] * 21},
        {"constraints": {"realtime": {"maxSessionDuration": 0}}},
        {"constraints": "x"},
        [],
    ],
)
def test_a_bad_token_request_is_refused(body: object) -> None:
    with pytest.raises(TokenRequestError):
        TokenIssuer().mint("k", body)


def test_an_expired_token_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    issuer = TokenIssuer()
    _token, response = issuer.mint("k", {"expiresIn": 1})
    auth = Authenticator(frozenset({"k"}), issuer)
    assert auth.resolve(response["apiKey"]) is not None
    later = time.time() + 2
    monkeypatch.setattr(time, "time", lambda: later)
    assert auth.resolve(response["apiKey"]) is None
    assert auth.resolve("") is None and auth.resolve(None) is None and auth.resolve("x") is None


def test_a_token_sees_only_its_own_sessions() -> None:
    issuer = TokenIssuer()
    token, _ = issuer.mint("k", {})
    key, mine = Caller("k"), Caller("k", token)
    assert key.owns("k", None) and key.owns("k", token.key) and not key.owns("other", None)
    assert mine.owns("k", token.key) and not mine.owns("k", None)
    assert "secret-key" not in repr(Caller("secret-key"))


def test_slots_are_counted_per_key_and_freed_after_their_delay() -> None:
    async def body() -> None:
        ledger = SlotLedger(2, release_delay=0.05, crash_release_delay=0.2)
        assert ledger.take("a") and ledger.take("a") and not ledger.take("a")
        assert ledger.take("b")  # another key, another bucket
        assert (ledger.quota("a").active, ledger.quota("a").remaining) == (2, 0)
        freed: list[str] = []
        ledger.release("a", crashed=False, then=lambda: freed.append("clean"))
        ledger.release("a", crashed=True, then=lambda: freed.append("crash"))
        assert not ledger.take("a")  # not free yet
        await asyncio.sleep(0.1)
        assert freed == ["clean"] and ledger.take("a")
        await asyncio.sleep(0.15)
        assert freed == ["clean", "crash"] and ledger.quota("a").active == 1
        ledger.close()
        unlimited = SlotLedger(0, 5, 45)
        assert all(unlimited.take("a") for _ in range(100))
        assert unlimited.quota("a").limit is None and unlimited.quota("a").remaining is None

    asyncio.run(asyncio.wait_for(body(), 5))
    with pytest.raises(ValueError):
        SlotLedger(-1, 5, 45)
