"""Rate limits: the token bucket under a fake clock, and the 429 answer of a limited
route (Starlette's ``TestClient``; one address per ``X-Forwarded-For``-free client)."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from push.ratelimit import DEFAULT_RATES, RateLimiter, TokenBucket, rate_limited
from push.web import public, require
from rtic.schemas import Role
from rtic.settings import RateLimit, Settings
from tests.unit.push.test_web import make_app, token

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_one_per_refill() -> None:
    bucket = TokenBucket(RateLimit(burst=3, per_minute=6), tokens=3.0, at=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(10.0)  # 6 a minute: one every 10 s
    assert bucket.take(4.0) == pytest.approx(6.0)
    assert bucket.take(10.0) == 0.0
    assert bucket.take(10.0) == pytest.approx(10.0)
    assert bucket.full(1000.0)  # refills to its burst, never beyond
    assert bucket.tokens == 3.0


def test_a_clock_going_backwards_gives_nothing_back() -> None:
    bucket = TokenBucket(RateLimit(burst=1, per_minute=1), tokens=1.0, at=100.0)
    assert bucket.take(100.0) == 0.0
    assert bucket.take(50.0) == pytest.approx(60.0)
    assert bucket.take(100.0) == pytest.approx(60.0)


def test_limits_are_per_address_and_per_endpoint() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"portal_report": RateLimit(burst=2, per_minute=1)}, clock=clock)
    assert limiter.take("portal_report", "10.0.0.1") == 0.0
    assert limiter.take("portal_report", "10.0.0.1") == 0.0
    assert limiter.take("portal_report", "10.0.0.1") == pytest.approx(60.0)
    assert limiter.take("portal_report", "10.0.0.2") == 0.0  # another address
    assert limiter.take("portal_session", "10.0.0.1") == 0.0  # another endpoint
    assert limiter.refused == 1
    clock.now += 60
    assert limiter.take("portal_report", "10.0.0.1") == 0.0
    assert limiter.take("portal_report", None) == 0.0  # no address: one shared bucket


def test_settings_override_the_defaults_by_name() -> None:
    settings = Settings(rate_limits={"portal_session": {"burst": 1, "per_minute": 0.5}})
    limiter = RateLimiter.from_settings(settings)
    assert limiter.rate("portal_session") == RateLimit(burst=1, per_minute=0.5)
    assert limiter.rate("portal_report") == DEFAULT_RATES["portal_report"]
    with pytest.raises(KeyError, match="no rate limit"):
        limiter.take("nowhere", "10.0.0.1")


def test_the_buckets_are_bounded_full_ones_first() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"x": RateLimit(burst=1, per_minute=1)}, clock=clock, max_keys=3)
    limiter.take("x", "a")
    clock.now += 120  # a's bucket is full again: the same as no bucket
    limiter.take("x", "b")
    limiter.take("x", "c")
    limiter.take("x", "d")
    assert [k[1] for k in limiter.buckets] == ["b", "c", "d"]
    limiter.take("x", "e")  # none full: the least recently used goes
    assert len(limiter.buckets) == 3 and ("x", "b") not in limiter.buckets
    assert limiter.take("x", "c") > 0  # still remembered, still refused


@public
@rate_limited("portal_report")
async def report(request: Request) -> Response:
    return JSONResponse({"ok": True}, status_code=201)


@require(Role.CITIZEN)
@rate_limited("statement")
async def statement(request: Request, who: Any) -> Response:
    return JSONResponse({"sub": who.sub})


def test_a_limited_route_answers_429_with_retry_after() -> None:
    clock = FakeClock()
    app = Starlette(routes=[Route("/r", report, methods=["POST"])])
    app.state.rate_limiter = RateLimiter(
        {"portal_report": RateLimit(burst=2, per_minute=2)}, clock=clock
    )
    with TestClient(app) as http:
        assert [http.post("/r").status_code for _ in range(2)] == [201, 201]
        refused = http.post("/r")
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "30"
        body = refused.json()
        assert body["error"]["code"] == "rate_limited"
        assert "30 seconds" in body["error"]["message"]
        clock.now += 29.5
        assert http.post("/r").headers["retry-after"] == "1"  # rounded up, never 0
        clock.now += 1
        assert http.post("/r").status_code == 201
    assert report.access == "public"  # type: ignore[attr-defined]


def test_a_guarded_route_keeps_its_access_and_limits_after_authentication() -> None:
    _core, http = make_app()
    app: Any = http.app
    app.router.routes.append(Route("/s", statement, methods=["POST"]))
    app.state.rate_limiter = RateLimiter(
        {"statement": RateLimit(burst=1, per_minute=1)}, clock=FakeClock()
    )
    with http:
        citizen = {"Authorization": f"Bearer {token('citizen', sub='c1')}"}
        assert http.post("/s", headers=citizen).json() == {"sub": "c1"}
        assert http.post("/s", headers=citizen).status_code == 429
        assert http.post("/s").status_code == 401  # no token: refused before the limit
    assert statement.access == frozenset({Role.CITIZEN})  # type: ignore[attr-defined]


def test_an_app_without_a_limiter_gets_the_defaults() -> None:
    app = Starlette(routes=[Route("/r", report, methods=["POST"])])
    with TestClient(app) as http:
        codes = [http.post("/r").status_code for _ in range(DEFAULT_RATES["portal_report"].burst)]
        assert codes == [201] * DEFAULT_RATES["portal_report"].burst
        assert http.post("/r").status_code == 429
    assert isinstance(app.state.rate_limiter, RateLimiter)
