"""Rate limits of the public and citizen endpoints: a token bucket per client address
and endpoint.

Each endpoint has a name (``portal_report``, ``portal_session``...) and a rate
(``rtic.settings.RateLimit``: ``burst`` requests at once, then ``per_minute``). A
client address gets its own bucket of each endpoint: full at first, one token taken
per request, refilled continuously. A request that finds no token is refused with
429 ``{"error": {"code": "rate_limited", "message"}}`` and a ``Retry-After`` header
(whole seconds until a token is back); nothing else is done for it.

The client address is the connection's (``client_address``). Behind a reverse
proxy, uvicorn puts the ``X-Forwarded-For`` address there when the proxy is one it
trusts (its ``forwarded_allow_ips``, by default 127.0.0.1 only), so put the proxy on
the same host or list it there; otherwise every client shares the proxy's bucket.

The buckets live in the gateway's memory: each gateway limits on its own (with N
gateways behind a balancer a client gets up to N times the rate), and a restart
forgets them. They are bounded (``max_keys``): a full bucket is the same as none and
is dropped first; past that, the least recently used go, which can only give a
client a fresh bucket, never refuse anyone.

Rates come from ``DEFAULT_RATES`` and the ``rate_limits`` setting (per name, over the
defaults); ``RateLimiter.from_settings`` builds the gateway's limiter, which it keeps
on ``app.state.rate_limiter``. The decorator ``rate_limited(name)`` limits a route;
put it inside ``public`` or ``require`` (either order works: the route keeps its
declared ``access``).
"""

from __future__ import annotations

import functools
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket

from push.web import client_address, error_body
from rtic.settings import RateLimit, Settings

DEFAULT_RATES: dict[str, RateLimit] = {
    # A person reports a few things at once, then rarely: 5, then one every 10 minutes.
    "portal_report": RateLimit(burst=5, per_minute=0.1),
    # Typing the reference and secret wrongly a few times is normal; guessing is not.
    "portal_session": RateLimit(burst=10, per_minute=1.0),
    "statement": RateLimit(burst=10, per_minute=2.0),
    "evidence_upload": RateLimit(burst=20, per_minute=2.0),
    # A link's login ticket is opened once; guessing one (256 random bits) is hopeless,
    # but each guess costs a Redis round trip.
    "session_ticket": RateLimit(burst=20, per_minute=10.0),
}
MAX_KEYS = 100_000
UNKNOWN_ADDRESS = "unknown"
Handler = TypeVar("Handler", bound=Callable[..., Awaitable[Any]])


@dataclass
class TokenBucket:
    """One client's bucket for one endpoint: ``tokens`` left at ``at`` (monotonic s)."""

    rate: RateLimit
    tokens: float
    at: float

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.at)
        self.tokens = min(float(self.rate.burst), self.tokens + elapsed * self.rate.per_minute / 60)
        self.at = max(self.at, now)

    def take(self, now: float) -> float:
        """Take a token: 0.0 if there was one, else the seconds until there is one."""
        self.refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) * 60 / self.rate.per_minute

    def full(self, now: float) -> bool:
        self.refill(now)
        return self.tokens >= self.rate.burst


class RateLimiter:
    """The buckets of every client address and endpoint, under one clock."""

    def __init__(
        self,
        rates: Mapping[str, RateLimit] | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.rates = {**DEFAULT_RATES, **(rates or {})}
        self.clock = clock
        self.max_keys = max_keys
        self.buckets: OrderedDict[tuple[str, str], TokenBucket] = OrderedDict()
        self.refused = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter:
        return cls(settings.rate_limits)

    def rate(self, endpoint: str) -> RateLimit:
        try:
            return self.rates[endpoint]
        except KeyError:
            raise KeyError(f"no rate limit for endpoint {endpoint!r}") from None

    def take(self, endpoint: str, address: str | None) -> float:
        """Take a token of ``address``'s bucket for ``endpoint``: 0.0 if allowed, else
        the seconds to wait."""
        rate = self.rate(endpoint)
        key = (endpoint, address or UNKNOWN_ADDRESS)
        now = self.clock()
        bucket = self.buckets.get(key)
        if bucket is None:
            self._make_room(now)
            bucket = self.buckets[key] = TokenBucket(rate, float(rate.burst), now)
        else:
            self.buckets.move_to_end(key)
        wait = bucket.take(now)
        if wait:
            self.refused += 1
        return wait

    def _make_room(self, now: float) -> None:
        """Room for one more bucket: drop full ones, then the least recently used."""
        if len(self.buckets) < self.max_keys:
            return
        for key in [k for k, b in self.buckets.items() if b.full(now)]:
            del self.buckets[key]
        while len(self.buckets) >= self.max_keys:
            self.buckets.popitem(last=False)


def limiter_of(conn: HTTPConnection) -> RateLimiter:
    """The app's limiter (``app.state.rate_limiter``; one with the defaults if the app
    was built without one, as unit tests do)."""
    state = conn.app.state
    limiter = getattr(state, "rate_limiter", None)
    if limiter is None:
        limiter = state.rate_limiter = RateLimiter()
    assert isinstance(limiter, RateLimiter)
    return limiter


def too_many(wait: float) -> Response:
    """The 429 answer: how long to wait, in the header and in words."""
    seconds = max(1, math.ceil(wait))
    return JSONResponse(
        error_body("rate_limited", f"too many requests: try again in {seconds} seconds"),
        status_code=429,
        headers={"Retry-After": str(seconds)},
    )


def rate_limited(endpoint: str) -> Callable[[Handler], Handler]:
    """Route decorator: at most the rate of ``endpoint`` per client address; 429 past it.
    Works on public endpoints ``(conn)`` and guarded ones ``(conn, who)``. A name not in
    ``DEFAULT_RATES`` needs its rate in the ``rate_limits`` setting (else a ``KeyError``
    on the first request)."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def limited(conn: HTTPConnection, *args: Any) -> Any:
            wait = limiter_of(conn).take(endpoint, client_address(conn))
            if wait:
                response = too_many(wait)
                if isinstance(conn, WebSocket):
                    await conn.send_denial_response(response)
                return response
            return await handler(conn, *args)

        limited.rate_limit = endpoint  # type: ignore[attr-defined]
        return cast(Handler, limited)

    return wrap
