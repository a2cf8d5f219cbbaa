"""What the commands that print links share: the secret check and login-ticket links.

``rtic up`` and ``rtic token --link`` print a page's address with a login ticket
(``?ticket=``, one use, ``login_ticket_ttl_seconds``), never a bearer token: the
ticket's grant goes to Redis (``push/tickets.py`` says why there) and the page
exchanges it for the token. Before any of that, ``refuse_insecure_secrets`` stops
a command outside development when the token secret is the development one or short.
"""

from __future__ import annotations

import sys
from datetime import datetime

from rtic.errors import ConfigError
from rtic.schemas import Role
from rtic.settings import Settings
from rtic.tokens import (
    TokenKeys,
    login_ticket,
    login_ticket_key,
    require_usable_secrets,
    uses_development_secret,
)

# The page each role's link opens (a citizen has the portal's own session instead).
PAGES = {
    Role.RTIC_ANALYST: "/",
    Role.SUPERVISOR: "/",
    Role.OFFICER: "/officer",
    Role.CASE_OFFICER: "/cases",
    Role.CONTACT_HANDLER: "/handler",
}
DEVELOPMENT_WARNING = (
    "DEVELOPMENT SECRET: tokens are signed with the development secret published in "
    "this source (RTIC_ENVIRONMENT=development). Anyone can forge a token for this "
    "gateway. Outside development set RTIC_ENVIRONMENT=production and RTIC_TOKEN_SECRET "
    "(32 bytes or more): the gateway then refuses to start without them."
)


def refuse_insecure_secrets(settings: Settings, command: str) -> int | None:
    """Exit code 2 (and why, on stderr) if the secrets may not be used here, else None."""
    try:
        require_usable_secrets(settings)
    except ConfigError as exc:
        print(f"{command}: refusing to start: {exc}", file=sys.stderr)
        return 2
    return None


def development_banner(settings: Settings) -> list[str]:
    """The loud lines ``rtic up`` prints while the development secret signs (else none)."""
    if not uses_development_secret(settings):
        return []
    bar = "!" * 78
    return [bar, DEVELOPMENT_WARNING, bar]


def store_grant(redis_url: str, key: str, grant: str, ttl_seconds: int) -> None:
    """Put a ticket's grant in Redis (synchronous: the commands are)."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        client.set(key, grant.encode(), ex=ttl_seconds)
    finally:
        client.close()


def ticket_link(
    settings: Settings,
    *,
    base: str,
    sub: str,
    role: Role | str,
    now: datetime,
    redis_url: str | None = None,
    cases: tuple[str, ...] | list[str] = (),
    areas: tuple[str, ...] | list[str] = (),
) -> str:
    """A page's address for ``role`` with a new login ticket (its grant stored in Redis)."""
    role = Role(role)
    if role not in PAGES:
        raise ConfigError(f"no page takes a {role.value} link (citizens use the portal)")
    made = login_ticket(
        TokenKeys.from_settings(settings),
        sub=sub,
        role=role,
        now=now,
        ttl_seconds=settings.login_ticket_ttl_seconds,
        cases=cases,
        areas=areas,
    )
    key = login_ticket_key(settings.topic_prefix, made.ticket)
    store_grant(redis_url or settings.redis_url, key, made.grant, made.ttl_seconds)
    return f"{base}{PAGES[role]}?ticket={made.ticket}"
