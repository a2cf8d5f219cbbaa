"""Login tickets: a printed link's ``?ticket=`` exchanged once for a bearer token.

A link that carries a bearer token leaves it for hours in browser history, proxy
logs and terminal scrollback. ``rtic up`` and ``rtic token --link`` print a link
with a ticket instead (``rtic.tokens.login_ticket``): 256 random bits, good
once and for ``login_ticket_ttl_seconds`` (5 minutes). The page posts it to
``POST /api/session/ticket``, keeps the bearer token it gets in
``sessionStorage`` and takes the ticket out of the address bar.

Where the tickets live: **Redis**, under the SHA-256 of the ticket
(``rtic.tokens.login_ticket_key``), with the ticket's lifetime as the key's
expiry. Not the gateway's memory: the process that prints the link (``rtic up``,
``rtic token --link``) is not the gateway (``rtic up`` runs the gateway as a
child process, restarted on its own), and a force runs several gateways behind
one address. The exchange is ``GETDEL``: of two requests with one ticket exactly
one gets the token. What Redis holds is a grant (a JWT for the audience
``<aud>:login-ticket``), not a bearer token: reading Redis gives nobody a
session, and writing to it cannot make one without the token secret.

Answers of ``POST /api/session/ticket`` (body ``{"ticket"}``): 200 ``{"token",
"sub", "role", "expires_at"}``; 401 ``invalid_ticket`` the same for an unknown,
used and expired ticket; 400 ``bad_request``; 503 ``unavailable`` when Redis does
not answer; 429 past the rate limit ``session_ticket`` (per address).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Protocol

import orjson
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from push.ratelimit import rate_limited
from push.web import client_address, error_body, public
from rtic.errors import AuthError, ServiceError
from rtic.settings import Settings
from rtic.tokens import TokenKeys, login_ticket_key, redeem_grant, verify_token

log = logging.getLogger(__name__)

MAX_TICKET_CHARS = 200
INVALID_TICKET = ("invalid_ticket", "unknown, used or expired ticket: ask for a new link")


class GrantStore(Protocol):
    """Where grants wait for their ticket: put once, taken once."""

    async def put(self, key: str, grant: str, ttl_seconds: int) -> None: ...

    async def take(self, key: str) -> str | None: ...


class RedisGrants:
    """``GrantStore`` in Redis: ``SET key grant EX ttl``, taken with ``GETDEL``."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 1.0) -> RedisGrants:
        from enrichers.redis_io import connect

        return cls(connect(url, timeout))

    async def put(self, key: str, grant: str, ttl_seconds: int) -> None:
        try:
            await self.redis.set(key, grant.encode(), ex=ttl_seconds)
        except (RedisError, OSError) as exc:
            raise ServiceError(f"redis: {exc!r}") from exc

    async def take(self, key: str) -> str | None:
        try:
            raw = await self.redis.getdel(key)
        except (RedisError, OSError) as exc:
            raise ServiceError(f"redis: {exc!r}") from exc
        return raw.decode() if raw is not None else None

    async def close(self) -> None:
        await self.redis.aclose()


class MemoryGrants:
    """``GrantStore`` in a dict, with no expiry of its own (unit tests and the pages'
    test double; the grant's own ``exp`` still refuses an old ticket)."""

    def __init__(self) -> None:
        self.grants: dict[str, str] = {}
        self.fail = False

    async def put(self, key: str, grant: str, ttl_seconds: int) -> None:
        self.grants[key] = grant

    async def take(self, key: str) -> str | None:
        if self.fail:
            raise ServiceError("grant store away")
        return self.grants.pop(key, None)


class LoginTickets:
    """The gateway's side: the store, the keys, and the bearer tokens' lifetime."""

    def __init__(
        self, keys: TokenKeys | str, store: GrantStore | None, *, prefix: str, token_ttl: int
    ) -> None:
        self.keys = keys
        self.store = store
        self.prefix = prefix
        self.token_ttl = token_ttl

    @classmethod
    def from_settings(cls, settings: Settings, store: GrantStore | None = None) -> LoginTickets:
        return cls(
            TokenKeys.from_settings(settings),
            store,
            prefix=settings.topic_prefix,
            token_ttl=settings.token_ttl_seconds,
        )

    async def redeem(self, ticket: str, now: datetime) -> str:
        """The bearer token for a ticket, once. ``AuthError``: unknown, used or expired;
        ``ServiceError``: the store did not answer (the ticket is then still good)."""
        if self.store is None:
            raise ServiceError("no ticket store")
        grant = await self.store.take(login_ticket_key(self.prefix, ticket))
        if grant is None:
            raise AuthError("unknown or used ticket")
        return redeem_grant(self.keys, grant, now=now, token_ttl_seconds=self.token_ttl)


def _answer(status: int, code: str, message: str) -> Response:
    return JSONResponse(error_body(code, message), status_code=status)


def _ticket_of(body: bytes) -> str | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    ticket = data.get("ticket") if isinstance(data, dict) else None
    if not isinstance(ticket, str) or not 0 < len(ticket) <= MAX_TICKET_CHARS:
        return None
    return ticket if ticket.isascii() and ticket.isprintable() else None


@public
@rate_limited("session_ticket")
async def exchange_ticket(request: Request) -> Response:
    """``POST /api/session/ticket`` ``{"ticket"}``: the bearer token, once (module doc)."""
    tickets: LoginTickets | None = getattr(request.app.state, "login_tickets", None)
    ticket = _ticket_of(await request.body())
    if ticket is None:
        return _answer(400, "bad_request", 'body must be {"ticket": "..."}')
    if tickets is None:
        return _answer(503, "unavailable", "login tickets are not served here")
    now = request.app.state.edge.core.clock()
    try:
        token = await tickets.redeem(ticket, now)
    except ServiceError as exc:
        log.warning("login ticket not redeemed (store away): %s", exc)
        return _answer(503, "unavailable", "try again in a moment")
    except AuthError as exc:
        log.info("login ticket refused from %s: %s", client_address(request), exc)
        return _answer(401, *INVALID_TICKET)
    who = verify_token(tickets.keys, token, now=now)
    log.info(
        "login ticket redeemed: %s (%s), jti %s, from %s",
        who.sub,
        who.role.value,
        who.jti,
        client_address(request),
    )
    body = {"token": token, "sub": who.sub, "role": who.role.value, "expires_at": who.expires_at}
    return JSONResponse(body)


def ticket_routes() -> list[BaseRoute]:
    """The ticket exchange (``push.web.routes`` adds it)."""
    return [Route("/api/session/ticket", exchange_ticket, methods=["POST"])]
