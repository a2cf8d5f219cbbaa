"""The development secret refused outside development; login tickets and their grants."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from pydantic import SecretStr

from cli.links import development_banner, refuse_insecure_secrets
from rtic.errors import AuthError, ConfigError
from rtic.schemas import Role
from rtic.settings import DEV_TOKEN_SECRET, Settings
from rtic.tokens import (
    TokenKeys,
    check_secrets,
    issue_token,
    login_ticket,
    login_ticket_key,
    redeem_grant,
    verify_token,
)
from tests.conftest import NOW

GOOD = "a-production-secret-of-more-than-32-bytes-0123456789"


def test_development_takes_the_development_secret_and_says_so_loudly() -> None:
    settings = Settings()
    assert settings.environment == "development"
    assert check_secrets(settings) == []
    TokenKeys.from_settings(settings)  # no refusal
    banner = "\n".join(development_banner(settings))
    assert "DEVELOPMENT SECRET" in banner and DEV_TOKEN_SECRET not in banner
    assert development_banner(Settings(token_secret=GOOD)) == []


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({}, "RTIC_TOKEN_SECRET (key k1) is the development secret"),
        ({"token_secret": "tiny-secret"}, "RTIC_TOKEN_SECRET (key k1) is shorter than 32 bytes"),
        (
            {"token_secret": GOOD, "token_previous_secrets": {"k0": "old-secret"}},
            "RTIC_TOKEN_PREVIOUS_SECRETS[k0] is shorter than 32 bytes",
        ),
        (
            {"token_secret": GOOD, "token_previous_secrets": {"k0": DEV_TOKEN_SECRET}},
            "RTIC_TOKEN_PREVIOUS_SECRETS[k0] is the development secret",
        ),
    ],
)
def test_production_refuses_a_development_or_short_secret(
    overrides: dict[str, object], why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(environment="production", **overrides)  # type: ignore[arg-type]
    assert any(why in problem for problem in check_secrets(settings))
    with pytest.raises(ConfigError, match="refusing to sign or check tokens") as refused:
        TokenKeys.from_settings(settings)
    assert why in str(refused.value)
    assert refuse_insecure_secrets(settings, "gateway") == 2
    said = capsys.readouterr().err
    assert said.startswith("gateway: refusing to start:") and why in said
    for value in (DEV_TOKEN_SECRET, "tiny-secret", "old-secret"):  # named, never shown
        assert value not in said


def test_production_with_a_long_secret_starts() -> None:
    settings = Settings(environment="production", token_secret=SecretStr(GOOD))
    assert check_secrets(settings) == []
    assert refuse_insecure_secrets(settings, "gateway") is None
    assert TokenKeys.from_settings(settings).secrets["k1"] == GOOD


def test_settings_and_keys_never_show_a_secret() -> None:
    settings = Settings(token_secret=GOOD, token_previous_secrets={"k0": GOOD + "-old"})
    for shown in (repr(settings), str(settings), repr(TokenKeys.from_settings(settings))):
        assert GOOD not in shown


# ---- login tickets ------------------------------------------------------------------------


def test_a_ticket_is_opaque_and_its_grant_becomes_a_bearer_token() -> None:
    made = login_ticket(
        GOOD, sub="sup-1", role=Role.SUPERVISOR, now=NOW, ttl_seconds=300, areas=["E05001221"]
    )
    assert len(made.ticket) >= 43 and "." not in made.ticket  # 256 random bits, not a JWT
    assert made.ticket not in repr(made) and made.grant not in repr(made)
    token = redeem_grant(GOOD, made.grant, now=NOW + timedelta(seconds=60), token_ttl_seconds=3600)
    who = verify_token(GOOD, token, now=NOW + timedelta(seconds=61))
    assert (who.sub, who.role, who.areas, who.jti) == (
        "sup-1",
        Role.SUPERVISOR,
        ("E05001221",),
        made.jti,
    )
    assert who.expires_at == int((NOW + timedelta(seconds=60 + 3600)).timestamp())


def test_a_grant_is_not_a_bearer_token_nor_a_token_a_grant() -> None:
    made = login_ticket(GOOD, sub="an", role="rtic_analyst", now=NOW, ttl_seconds=300)
    with pytest.raises(AuthError, match="another audience"):
        verify_token(GOOD, made.grant, now=NOW)
    bearer = issue_token(GOOD, sub="an", role="rtic_analyst", now=NOW, ttl_seconds=300)
    with pytest.raises(AuthError, match="another audience"):
        redeem_grant(GOOD, bearer, now=NOW, token_ttl_seconds=60)


def test_an_expired_or_forged_grant_is_refused() -> None:
    made = login_ticket(GOOD, sub="an", role="rtic_analyst", now=NOW, ttl_seconds=300)
    with pytest.raises(AuthError, match="expired"):
        redeem_grant(GOOD, made.grant, now=NOW + timedelta(seconds=300), token_ttl_seconds=60)
    forged = login_ticket(GOOD + "x", sub="an", role="supervisor", now=NOW, ttl_seconds=300)
    with pytest.raises(AuthError, match="signature"):
        redeem_grant(GOOD, forged.grant, now=NOW, token_ttl_seconds=60)


def test_tickets_are_kept_under_their_hash() -> None:
    made = login_ticket(GOOD, sub="an", role="rtic_analyst", now=NOW, ttl_seconds=300)
    key = login_ticket_key("p.", made.ticket)
    assert key.startswith("p.rtic:login-ticket:") and made.ticket not in key
    assert key == login_ticket_key("p.", made.ticket) != login_ticket_key("q.", made.ticket)


def test_a_short_development_secret_is_reported_once_by_key_not_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        made = login_ticket("tiny", sub="an", role="rtic_analyst", now=NOW, ttl_seconds=60)
        redeem_grant("tiny", made.grant, now=NOW, token_ttl_seconds=60)
    assert "tiny" not in caplog.text
