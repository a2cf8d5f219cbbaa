"""Bearer tokens: issued, verified, and refused when forged, malformed, expired, not yet
valid, for another issuer or audience, or signed with an unknown key; rotation by key id."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from rtic.errors import AuthError
from rtic.schemas import Role
from rtic.settings import Settings
from rtic.tokens import AUDIENCE, ISSUER, TokenKeys, issue_token, verify_token
from tests.conftest import NOW

SECRET = "unit-test-secret-of-thirty-two-bytes"


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
    # A fixed token id keeps the token the same on every run (the reversed payload of
    # this one still decodes as base64, so it is its signature that fails).
    token = issue_token(SECRET, sub="a", role="rtic_analyst", now=NOW, ttl_seconds=60, jti="t-1")
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


def _signed(
    claims: dict[str, Any], header: dict[str, Any] | None = None, secret: str = SECRET
) -> str:
    """A token signed with the right secret (key id k1) but carrying whatever claims a test
    needs; iss, aud, iat and nbf are filled in unless the claims say otherwise."""
    base = {"iss": ISSUER, "aud": AUDIENCE, "iat": int(NOW.timestamp()), "nbf": 0}
    head = {"kid": "k1", **(header or {})}
    algorithm = head.pop("alg", "HS256")
    body = {k: v for k, v in {**base, **claims}.items() if v is not None}
    key = {"none": None, "HS512": secret * 2}.get(algorithm, secret)  # long enough for HS512
    return jwt.encode(body, key, algorithm=algorithm, headers=head)


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
        ({"sub": "a", "role": "officer", "exp": 2**40}, {"alg": "HS512"}, "algorithm"),
        ({"sub": "a", "role": "superuser", "exp": 2**40}, None, "claims"),
        ({"sub": "a", "exp": 2**40}, None, "claims"),
        ({"sub": "a", "role": "officer"}, None, "claims"),
        ({"sub": "a", "role": "officer", "exp": "soon"}, None, "claims"),
        ({"sub": "a", "role": "officer", "exp": 2**40, "cases": 5}, None, "claims"),
        ({"sub": "a", "role": "officer", "exp": 2**40, "nbf": None}, None, "claims"),
        ({"sub": "a", "role": "officer", "exp": 2**40, "iat": None}, None, "claims"),
        ({"sub": "a", "role": "officer", "exp": 2**40, "iss": None}, None, "claims"),
        ({"sub": "a", "role": "officer", "exp": 2**40, "aud": None}, None, "claims"),
        ({"sub": 5, "role": "officer", "exp": 2**40}, None, "claims"),
        ({"sub": "a", "role": "officer", "exp": 2**40, "nbf": "now"}, None, "claims"),
        ({"sub": "a", "role": "officer", "exp": 2**40, "areas": "E08000025"}, None, "claims"),
        ({"sub": "a", "role": "officer", "exp": 2**40, "jti": 7}, None, "claims"),
        ({"sub": "a", "role": "officer", "exp": 2**40, "jti": ""}, None, "claims"),
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


def test_a_token_carries_the_registered_claims_and_its_key_id() -> None:
    token = issue_token(SECRET, sub="a", role="officer", now=NOW, ttl_seconds=60)
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    iat = int(NOW.timestamp())
    assert header == {"alg": "HS256", "typ": "JWT", "kid": "k1"}
    jti = claims.pop("jti")
    assert isinstance(jti, str) and len(jti) == 32 and int(jti, 16) >= 0  # uuid4 hex
    assert claims == {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "a",
        "role": "officer",
        "iat": iat,
        "nbf": iat,
        "exp": iat + 60,
    }


def test_another_audience_or_issuer_is_refused() -> None:
    mine = TokenKeys.single(SECRET)
    theirs_aud = TokenKeys(current_kid="k1", secrets={"k1": SECRET}, audience="portal")
    theirs_iss = TokenKeys(current_kid="k1", secrets={"k1": SECRET}, issuer="someone-else")
    for other, reason in ((theirs_aud, "audience"), (theirs_iss, "issuer")):
        token = issue_token(other, sub="a", role="officer", now=NOW, ttl_seconds=60)
        with pytest.raises(AuthError, match=reason):
            verify_token(mine, token, now=NOW)
    with pytest.raises(AuthError, match="audience"):
        verify_token(
            mine, _signed({"sub": "a", "role": "officer", "exp": 2**40, "aud": 7}), now=NOW
        )


def test_a_token_is_refused_before_it_is_valid() -> None:
    token = issue_token(SECRET, sub="a", role="officer", now=NOW, ttl_seconds=60)
    with pytest.raises(AuthError, match="not valid yet"):
        verify_token(SECRET, token, now=NOW - timedelta(seconds=1))
    assert verify_token(SECRET, token, now=NOW).sub == "a"
    later = _signed({"sub": "a", "role": "officer", "exp": 2**40, "nbf": 2**39})
    with pytest.raises(AuthError, match="not valid yet"):
        verify_token(SECRET, later, now=NOW)


def test_an_unknown_or_missing_key_id_is_refused() -> None:
    claims = {"sub": "a", "role": "officer", "exp": 2**40}
    with pytest.raises(AuthError, match="key id"):
        verify_token(SECRET, _signed(claims, {"kid": "k9"}), now=NOW)
    no_kid = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "iat": 0, "nbf": 0, **claims}, SECRET, algorithm="HS256"
    )
    with pytest.raises(AuthError, match="key id"):
        verify_token(SECRET, no_kid, now=NOW)


def test_rotation_keeps_old_tokens_valid_and_signs_new_ones_with_the_new_key() -> None:
    old = Settings(token_secret=SecretStr(SECRET), token_key_id="2026-11")
    old_token = issue_token(
        TokenKeys.from_settings(old), sub="a", role="officer", now=NOW, ttl_seconds=600
    )
    rotated = Settings(
        token_secret=SecretStr("a-brand-new-secret-of-32-bytes-or-more"),
        token_key_id="2026-12",
        token_previous_secrets={"2026-11": SecretStr(SECRET)},
    )
    keys = TokenKeys.from_settings(rotated)
    assert verify_token(keys, old_token, now=NOW).sub == "a"  # nobody is logged out
    new_token = issue_token(keys, sub="b", role="supervisor", now=NOW, ttl_seconds=600)
    assert jwt.get_unverified_header(new_token)["kid"] == "2026-12"
    assert verify_token(keys, new_token, now=NOW).sub == "b"
    # Once the old key is dropped, its tokens are refused; the new ones still verify.
    retired = TokenKeys.from_settings(rotated.model_copy(update={"token_previous_secrets": {}}))
    with pytest.raises(AuthError, match="key id"):
        verify_token(retired, old_token, now=NOW)
    assert verify_token(retired, new_token, now=NOW).sub == "b"
    # A token that names the old id but is signed with another secret is forged.
    forged = _signed({"sub": "a", "role": "officer", "exp": 2**40}, {"kid": "2026-11"}, "x" * 32)
    with pytest.raises(AuthError, match="signature"):
        verify_token(keys, forged, now=NOW)


def test_a_key_ring_needs_its_current_key() -> None:
    with pytest.raises(AuthError, match="current key"):
        TokenKeys(current_kid="k2", secrets={"k1": SECRET})


def test_secrets_are_not_shown_by_settings_or_the_key_ring_repr() -> None:
    rotated = Settings(
        token_secret=SecretStr("current-secret-value-32-bytes-long!"),
        token_previous_secrets={"k0": SecretStr("previous-secret-value-32-bytes-long")},
    )
    text = repr(rotated) + str(rotated.model_dump()) + repr(TokenKeys.from_settings(rotated))
    assert "current-secret-value" not in text and "previous-secret-value" not in text


def test_a_short_secret_still_works_and_is_reported_once_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    short = TokenKeys.single("short", kid="short-key-for-this-test")
    with caplog.at_level("WARNING", logger="rtic.tokens"):
        for _ in range(3):
            token = issue_token(short, sub="a", role="officer", now=NOW, ttl_seconds=60)
            assert verify_token(short, token, now=NOW).sub == "a"
    warned = [r for r in caplog.records if "shorter than 32 bytes" in r.getMessage()]
    assert len(warned) == 1 and "short" not in warned[0].getMessage().split("'")[0]


def test_previous_secrets_come_from_the_environment_as_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RTIC_TOKEN_KEY_ID", "2026-12")
    monkeypatch.setenv("RTIC_TOKEN_PREVIOUS_SECRETS", '{"2026-11": "' + SECRET + '"}')
    keys = TokenKeys.from_settings(Settings())
    assert keys.current_kid == "2026-12" and set(keys.secrets) == {"2026-11", "2026-12"}
    old = issue_token(
        TokenKeys.single(SECRET, "2026-11"), sub="a", role="officer", now=NOW, ttl_seconds=60
    )
    assert verify_token(keys, old, now=NOW).sub == "a"


# ---- token ids, issue times and areas (revocation, case visibility) -----------------------


def test_every_token_has_its_own_id_and_issue_time() -> None:
    first = issue_token(SECRET, sub="a", role="officer", now=NOW, ttl_seconds=60)
    second = issue_token(SECRET, sub="a", role="officer", now=NOW, ttl_seconds=60)
    one, two = verify_token(SECRET, first, now=NOW), verify_token(SECRET, second, now=NOW)
    assert one.jti and two.jti and one.jti != two.jti
    assert one.issued_at == NOW.replace(microsecond=0) and one.issued_at.tzinfo is not None
    named = issue_token(SECRET, sub="a", role="officer", now=NOW, ttl_seconds=60, jti="tok-1")
    assert verify_token(SECRET, named, now=NOW).jti == "tok-1"


def test_areas_are_carried_for_supervisors_and_officers() -> None:
    token = issue_token(
        SECRET,
        sub="sup-1",
        role="supervisor",
        now=NOW,
        ttl_seconds=60,
        areas=["E08000025", "E08000026"],
    )
    assert verify_token(SECRET, token, now=NOW).areas == ("E08000025", "E08000026")
    plain = issue_token(SECRET, sub="sup-2", role="supervisor", now=NOW, ttl_seconds=60)
    assert "areas" not in jwt.decode(plain, options={"verify_signature": False})
    assert verify_token(SECRET, plain, now=NOW).areas == ()


def test_a_token_from_before_token_ids_still_verifies_without_one() -> None:
    old = _signed({"sub": "a", "role": "officer", "exp": 2**40})
    who = verify_token(SECRET, old, now=NOW)
    assert who.jti is None and who.sub == "a"
