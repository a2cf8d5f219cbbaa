"""The web edge verifies tokens with the deployment's key ring: a rotated secret does not
log out holders of tokens signed with the previous one, and issuer and audience count."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from starlette.requests import HTTPConnection

from push.web import authenticate
from rtic.errors import AuthError
from rtic.settings import Settings
from rtic.tokens import TokenKeys, issue_token

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
OLD = "an-old-secret-that-is-long-enough-32b"
NEW = "the-new-secret-that-is-long-enough-32b"


def _bearer(token: str) -> HTTPConnection:
    headers = [(b"authorization", f"Bearer {token}".encode())]
    return HTTPConnection({"type": "http", "path": "/ws", "headers": headers, "query_string": b""})


@pytest.fixture
def rotated() -> TokenKeys:
    """After rotation: k2 signs, k1 (the old secret) is still accepted."""
    settings = Settings(
        token_secret=NEW,
        token_key_id="k2",
        token_previous_secrets={"k1": OLD},  # type: ignore[dict-item]
    )
    return TokenKeys.from_settings(settings)


def test_tokens_of_the_previous_key_still_work_after_rotation(rotated: TokenKeys) -> None:
    before = TokenKeys.from_settings(Settings(token_secret=OLD, token_key_id="k1"))
    old_token = issue_token(before, sub="an", role="rtic_analyst", now=NOW, ttl_seconds=600)
    new_token = issue_token(rotated, sub="an", role="rtic_analyst", now=NOW, ttl_seconds=600)
    assert authenticate(_bearer(old_token), rotated, lambda: NOW).sub == "an"
    assert authenticate(_bearer(new_token), rotated, lambda: NOW).sub == "an"


def test_a_dropped_key_and_a_foreign_issuer_are_refused(rotated: TokenKeys) -> None:
    unknown = TokenKeys.from_settings(Settings(token_secret=OLD, token_key_id="k0"))
    stale = issue_token(unknown, sub="an", role="rtic_analyst", now=NOW, ttl_seconds=600)
    with pytest.raises(AuthError):
        authenticate(_bearer(stale), rotated, lambda: NOW)
    foreign = TokenKeys(current_kid="k2", secrets={"k2": NEW}, issuer="someone-else")
    forged = issue_token(foreign, sub="an", role="rtic_analyst", now=NOW, ttl_seconds=600)
    with pytest.raises(AuthError):
        authenticate(_bearer(forged), rotated, lambda: NOW)
