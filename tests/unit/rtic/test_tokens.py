"""Bearer tokens: issued, verified, and refused when forged, malformed or expired."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rtic.errors import AuthError
from rtic.schemas import Role
from rtic.tokens import issue_token, verify_token
from tests.conftest import NOW

SECRET = "unit-test-secret"


def test_round_trip_carries_role_subject_and_cases() -> None:
    token = issue_token(
        SECRET, sub="citizen-9", role="citizen", now=NOW, ttl_seconds=60, cases=["CASE-1"]
    )
    who = verify_token(SECRET, token, now=NOW)
    assert (who.sub, who.role, who.cases) == ("citizen-9", Role.CITIZEN, ("CASE-1",))
    assert who.officer_id is None
    officer = verify_token(
        SECRET, issue_token(SECRET, sub="OFF-1", role="officer", now=NOW, ttl_seconds=60), now=NOW
    )
    assert officer.officer_id == "OFF-1"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda t: t + "x", "signature"),
        (lambda t: "a.b", "malformed"),
        (lambda t: "", "malformed"),
        (
            lambda t: t.split(".")[0] + "." + t.split(".")[1][::-1] + "." + t.split(".")[2],
            "signature",
        ),
    ],
)
def test_tampered_tokens_are_refused(mutate, reason: str) -> None:  # type: ignore[no-untyped-def]
    token = issue_token(SECRET, sub="a", role="rtic_analyst", now=NOW, ttl_seconds=60)
    with pytest.raises(AuthError, match=reason):
        verify_token(SECRET, mutate(token), now=NOW)


def test_other_secret_and_expiry_are_refused() -> None:
    token = issue_token(SECRET, sub="a", role="supervisor", now=NOW, ttl_seconds=60)
    with pytest.raises(AuthError, match="signature"):
        verify_token("another-secret", token, now=NOW)
    with pytest.raises(AuthError, match="expired"):
        verify_token(SECRET, token, now=NOW + timedelta(seconds=61))


def test_unknown_role_cannot_be_issued() -> None:
    with pytest.raises(ValueError):
        issue_token(SECRET, sub="a", role="superuser", now=NOW, ttl_seconds=60)
