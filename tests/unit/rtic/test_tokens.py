"""Bearer tokens: issued, verified, and refused when forged, malformed or expired."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtic.errors import AuthError
from rtic.schemas import Role
from rtic.tokens import _b64e, issue_token, verify_token
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


def _signed(claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    """A token signed with the right secret but carrying whatever claims a test needs."""
    head = _b64e(orjson.dumps(header or {"alg": "HS256", "typ": "JWT"}))
    body = _b64e(orjson.dumps(claims))
    sig = hmac.new(SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64e(sig)}"


def test_a_token_is_refused_from_the_second_it_expires() -> None:
    token = issue_token(SECRET, sub="a", role="officer", now=NOW, ttl_seconds=60)
    assert (
        verify_token(SECRET, token, now=NOW + timedelta(seconds=59)).expires_at
        == int(NOW.timestamp()) + 60
    )
    with pytest.raises(AuthError, match="expired"):
        verify_token(SECRET, token, now=NOW + timedelta(seconds=60))


def test_surrounding_whitespace_is_tolerated() -> None:
    token = issue_token(SECRET, sub="a", role="officer", now=NOW, ttl_seconds=60)
    assert verify_token(SECRET, f"  {token}\n", now=NOW).sub == "a"


def test_a_token_needs_a_subject() -> None:
    with pytest.raises(AuthError, match="subject"):
        issue_token(SECRET, sub="", role="officer", now=NOW, ttl_seconds=60)


@pytest.mark.parametrize(
    ("claims", "header", "reason"),
    [
        ({"sub": "a", "role": "officer", "exp": 2**40}, {"alg": "none"}, "algorithm"),
        ({"sub": "a", "role": "superuser", "exp": 2**40}, None, "claims"),
        ({"sub": "a", "exp": 2**40}, None, "claims"),
        ({"sub": "a", "role": "officer"}, None, "claims"),
        ({"sub": "a", "role": "officer", "exp": "soon"}, None, "claims"),
        ({"sub": "a", "role": "officer", "exp": 2**40, "cases": 5}, None, "claims"),
    ],
)
def test_signed_but_malformed_claims_are_refused(
    claims: dict[str, Any], header: dict[str, Any] | None, reason: str
) -> None:
    with pytest.raises(AuthError, match=reason):
        verify_token(SECRET, _signed(claims, header), now=NOW)


def test_a_citizen_token_carries_only_its_cases_and_no_officer_id() -> None:
    token = issue_token(
        SECRET, sub="c", role=Role.CITIZEN, now=NOW, ttl_seconds=60, cases=("A", "B")
    )
    who = verify_token(SECRET, token, now=NOW)
    assert who.cases == ("A", "B") and who.officer_id is None
    supervisor = verify_token(
        SECRET, issue_token(SECRET, sub="S-1", role="supervisor", now=NOW, ttl_seconds=60), now=NOW
    )
    assert supervisor.officer_id == "S-1" and supervisor.cases == ()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80) | st.lists(st.text(max_size=20), min_size=3, max_size=3).map(".".join))
def test_arbitrary_text_is_refused_with_an_auth_error_only(token: str) -> None:
    # A token comes from a query string or header: whatever it is, the gateway must
    # answer 401 (AuthError), never fail the handshake with another exception.
    with pytest.raises(AuthError):
        verify_token(SECRET, token, now=NOW)


@pytest.mark.parametrize("token", ["é.a.b", "a.é.b", "a.b.é", "\u00e9\u00e9.x.y"])
def test_non_ascii_tokens_are_refused_with_an_auth_error(token: str) -> None:
    with pytest.raises(AuthError, match="malformed"):
        verify_token(SECRET, token, now=NOW)


@settings(max_examples=50, deadline=None)
@given(
    sub=st.text(min_size=1, max_size=30),
    role=st.sampled_from(list(Role)),
    cases=st.lists(st.text(max_size=10), max_size=3),
    ttl=st.integers(1, 10**6),
)
def test_whatever_is_issued_verifies_to_the_same_principal(
    sub: str, role: Role, cases: list[str], ttl: int
) -> None:
    token = issue_token(SECRET, sub=sub, role=role, now=NOW, ttl_seconds=ttl, cases=cases)
    who = verify_token(SECRET, token, now=NOW)
    assert (who.sub, who.role, who.cases) == (sub, role, tuple(cases))
    assert who.expires_at == int(NOW.timestamp()) + ttl
