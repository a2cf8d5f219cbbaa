"""The web edge against a real running gateway (uvicorn, the websockets protocol, Redis):
login tickets, the socket's bearer subprotocol, the websocket limits and their close
codes, ``/static`` names that are not files, ``/healthz`` for anonymous callers, and no
secret, token or ticket in any log line."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from cli.links import store_grant
from cli.services import free_port
from push.gateway import Gateway
from push.tickets import RedisGrants
from rtic.settings import PROJECT_ROOT, Settings
from rtic.tokens import TokenKeys, issue_token, login_ticket, login_ticket_key
from tests.engine import store_ticket

pytestmark = pytest.mark.integration

SECRET = "integration-edge-secret-0123456789abcdefghij"
MAX_BYTES = 4096


@dataclass
class Served:
    settings: Settings
    gateway: Gateway
    base: str
    ws: str
    logs: pytest.LogCaptureFixture

    def token(self, role: str = "rtic_analyst", sub: str = "an-1", **kw: Any) -> str:
        now = datetime.now(UTC)
        return issue_token(SECRET, sub=sub, role=role, now=now, ttl_seconds=600, **kw)

    def socket(self, token: str | None = None, **kw: Any) -> Any:
        """A socket as a page opens it: the token as a subprotocol, nothing in the URL."""
        bearer = token or self.token()
        return connect(self.ws, subprotocols=["rtic", f"rtic.bearer.{bearer}"], **kw)  # type: ignore[list-item]


@pytest.fixture
async def served(
    redis_url: str, unique: Callable[[str], str], caplog: pytest.LogCaptureFixture
) -> AsyncIterator[Served]:
    caplog.set_level(logging.DEBUG)
    settings = Settings(
        redis_url=redis_url,
        topic_prefix=f"{unique('edge').lower()}.",
        gateway_port=free_port(),
        token_secret=SECRET,
        data_dir=PROJECT_ROOT / "data",
        ws_max_message_bytes=MAX_BYTES,
        ws_messages_per_second=5,
        ws_message_burst=10,
        ws_flood_limit=15,
        ws_max_connections_per_address=3,
    )
    gateway = Gateway(settings)
    grants = RedisGrants.from_url(redis_url)
    gateway.app.state.login_tickets.store = grants
    gateway.kafka._consuming = asyncio.get_running_loop().create_future()  # "consuming"
    server = gateway.server()
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:  # noqa: ASYNC110 (uvicorn only offers this flag)
            await asyncio.sleep(0.02)
        port = settings.gateway_port
        yield Served(
            settings, gateway, f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws", caplog
        )
    finally:
        server.should_exit = True
        await serving
        gateway.kafka._consuming.cancel()
        await grants.close()
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{settings.topic_prefix}rtic:*"))
        if keys:
            client.unlink(*keys)
        client.close()
        await asyncio.sleep(0)


async def hello(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = orjson.loads(await ws.recv())
    assert message["type"] == "hello", message
    return message


async def close_of(ws: ClientConnection, timeout: float = 5.0) -> tuple[int, str]:
    """Read until the server closes; its close code and reason."""
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None, "closed without a close frame from the server"
    return closed.value.rcvd.code, closed.value.rcvd.reason


# ---- login tickets ------------------------------------------------------------------------


async def test_a_ticket_opens_one_session_and_the_socket_takes_its_token_as_a_header(
    served: Served,
) -> None:
    ticket = store_ticket(served.settings, "supervisor", "sup-edge", areas=["E05001221"])
    async with httpx.AsyncClient(base_url=served.base) as http:
        first = await http.post("/api/session/ticket", json={"ticket": ticket})
        assert first.status_code == 200, first.text
        body = first.json()
        assert (body["sub"], body["role"]) == ("sup-edge", "supervisor")
        again = await http.post("/api/session/ticket", json={"ticket": ticket})
        assert again.status_code == 401
        assert again.json()["error"]["code"] == "invalid_ticket"
    async with served.socket(body["token"]) as ws:
        assert ws.subprotocol == "rtic"  # the bearer one is never echoed back
        assert (await hello(ws))["sub"] == "sup-edge"
    # The contract's ?token= is still accepted (no page sends it).
    async with connect(f"{served.ws}?token={body['token']}") as ws:
        assert (await hello(ws))["role"] == "supervisor"


async def test_two_exchanges_of_one_ticket_at_once_give_one_token(served: Served) -> None:
    ticket = store_ticket(served.settings, "rtic_analyst", "an-race")
    async with httpx.AsyncClient(base_url=served.base) as http:
        answers = await asyncio.gather(
            *(http.post("/api/session/ticket", json={"ticket": ticket}) for _ in range(8))
        )
    assert sorted(a.status_code for a in answers) == [200] + [401] * 7


async def test_what_redis_keeps_is_no_bearer_token_and_an_old_grant_is_refused(
    served: Served,
) -> None:
    keys = TokenKeys.from_settings(served.settings)
    old = login_ticket(
        keys,
        sub="an",
        role="rtic_analyst",
        now=datetime.now(UTC) - timedelta(hours=1),
        ttl_seconds=300,
    )
    key = login_ticket_key(served.settings.topic_prefix, old.ticket)
    store_grant(served.settings.redis_url, key, old.grant, 300)
    with pytest.raises(InvalidStatus) as refused:  # the grant as a bearer token: refused
        async with served.socket(old.grant):
            pass
    assert refused.value.response.status_code == 401
    async with httpx.AsyncClient(base_url=served.base) as http:
        expired = await http.post("/api/session/ticket", json={"ticket": old.ticket})
    assert expired.status_code == 401 and expired.json()["error"]["code"] == "invalid_ticket"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b"{}",
        b'{"ticket": 7}',
        b'{"ticket": ""}',
        orjson.dumps({"ticket": "x" * 201}),
        orjson.dumps({"ticket": "caf\u00e9"}),
        orjson.dumps({"ticket": "a\u0000b"}),
    ],
)
async def test_a_malformed_exchange_is_a_400(served: Served, body: bytes) -> None:
    async with httpx.AsyncClient(base_url=served.base) as http:
        answer = await http.post("/api/session/ticket", content=body)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "bad_request"


async def test_the_exchange_says_unavailable_when_redis_does_not_answer(served: Served) -> None:
    ticket = store_ticket(served.settings, "rtic_analyst", "an-away")
    tickets = served.gateway.app.state.login_tickets
    working, tickets.store = (
        tickets.store,
        RedisGrants.from_url(f"redis://127.0.0.1:{free_port()}/0"),
    )
    try:
        async with httpx.AsyncClient(base_url=served.base) as http:
            away = await http.post("/api/session/ticket", json={"ticket": ticket})
            assert away.status_code == 503 and away.json()["error"]["code"] == "unavailable"
            await tickets.store.close()
            tickets.store = working
            back = await http.post("/api/session/ticket", json={"ticket": ticket})
        assert back.status_code == 200  # not spent by the failed try
    finally:
        tickets.store = working


# ---- the websocket's limits ---------------------------------------------------------------


async def test_a_message_over_the_size_limit_closes_with_1009(served: Served) -> None:
    async with served.socket() as ws:
        await hello(ws)
        await ws.send(orjson.dumps({"type": "ping", "pad": "x" * (MAX_BYTES - 40)}).decode())
        assert orjson.loads(await ws.recv())["type"] == "pong"  # under the limit: handled
        await ws.send("x" * (MAX_BYTES + 1))
        code, reason = await close_of(ws)
    assert code == 1009 and f"exceeds limit of {MAX_BYTES} bytes" in reason


async def test_fragments_are_counted_together(served: Served) -> None:
    async with served.socket() as ws:
        await hello(ws)
        await ws.send(["x" * 1024 for _ in range(5)])  # one message in five frames of 1 KiB
        code, reason = await close_of(ws)
    assert code == 1009 and "exceeds limit" in reason


async def test_over_the_rate_an_error_frame_then_flooding_closes_with_1008(
    served: Served,
) -> None:
    ping = orjson.dumps({"type": "ping"}).decode()
    async with served.socket() as ws:
        await hello(ws)
        for _ in range(11):  # the burst of 10, and one over
            await ws.send(ping)
        replies = [orjson.loads(await ws.recv()) for _ in range(11)]
        assert [r["type"] for r in replies[:10]] == ["pong"] * 10
        assert replies[10]["type"] == "error" and replies[10]["code"] == "rate_limited"
        assert "at most 5 a second" in replies[10]["message"]
        for _ in range(40):  # going on
            await ws.send(ping)
        code, reason = await close_of(ws)
    assert (code, reason) == (1008, "message rate limit exceeded")
    metrics = served.gateway.metrics
    assert metrics.value("rtic_gateway_ws_limited_total", limit="flood_closes") == 1
    assert metrics.value("rtic_gateway_ws_limited_total", limit="rate_refused") >= 14
    assert not served.gateway.core.clients


async def test_a_client_within_the_rate_is_never_limited(served: Served) -> None:
    ping = orjson.dumps({"type": "ping"}).decode()
    async with served.socket() as ws:
        await hello(ws)
        for _ in range(20):  # at most 20 in 3 s: the rate gives 15, the burst the rest
            await ws.send(ping)
            assert orjson.loads(await ws.recv())["type"] == "pong"
            await asyncio.sleep(0.15)


async def test_a_fourth_socket_from_one_address_is_refused_with_429(served: Served) -> None:
    async with contextlib.AsyncExitStack() as stack:
        open_ = [await stack.enter_async_context(served.socket()) for _ in range(3)]
        for ws in open_:
            await hello(ws)
        with pytest.raises(InvalidStatus) as refused:
            async with served.socket():
                pass
        assert refused.value.response.status_code == 429
        assert b"too_many_connections" in refused.value.response.body
        await open_[0].close()
        await asyncio.sleep(0.2)
        async with served.socket() as again:  # a slot freed is a slot again
            await hello(again)
    # Without a valid token no slot is taken: 401, not 429.
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(3):
            await hello(await stack.enter_async_context(served.socket()))
        with pytest.raises(InvalidStatus) as unauthenticated:
            async with connect(served.ws):
                pass
        assert unauthenticated.value.response.status_code == 401


# ---- HTTP: /static names, /healthz ----------------------------------------------------------

NASTY = [
    "/static/" + "a" * 5000,
    "/static/" + "a/" * 2500,
    "/static/" + "%C3%A9" * 2000,
    "/static/%00",
    "/static/rtic.js%00.png",
    "/static/../pyproject.toml",
    "/static/%2e%2e/pyproject.toml",
    "/static/..%2f..%2fpyproject.toml",
    "/static/%2e%2e%5c%2e%2e%5cpyproject.toml",
    "/static/a%5c..%5crtic.js",
    "/static/%ff%fe",
    "/static//etc/passwd",
    "/static/%0d%0aX-Injected:%201",
    "/" + "b" * 8000,
]


@pytest.mark.parametrize("path", NASTY, ids=range(len(NASTY)))
async def test_static_names_that_are_no_file_are_never_a_500(served: Served, path: str) -> None:
    async with httpx.AsyncClient(base_url=served.base) as http:
        answer = await http.get(path)
    assert answer.status_code in (400, 404, 414, 431), (answer.status_code, answer.text[:200])
    assert b"Traceback" not in answer.content and b"[project]" not in answer.content


async def test_healthz_tells_anonymous_callers_only_whether_it_is_up(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.base) as http:
        anonymous = await http.get("/healthz")
        officer = await http.get(
            "/healthz", headers={"Authorization": f"Bearer {served.token('officer', 'PC-1')}"}
        )
        analyst = await http.get("/healthz", headers={"Authorization": f"Bearer {served.token()}"})
    assert (anonymous.status_code, anonymous.json()) == (200, {"status": "ok"})
    assert officer.json() == {"status": "ok"}
    assert analyst.status_code == 200 and analyst.json()["clients"] == 0


# ---- logs --------------------------------------------------------------------------------


async def test_no_secret_token_or_ticket_in_the_logs(served: Served) -> None:
    ticket = store_ticket(served.settings, "rtic_analyst", "an-logged")
    async with httpx.AsyncClient(base_url=served.base) as http:
        token = (await http.post("/api/session/ticket", json={"ticket": ticket})).json()["token"]
        await http.post("/api/session/ticket", json={"ticket": ticket})  # refused: logged
        await http.get(f"/?ticket={ticket}&token={token}")
        await http.get("/api/cases", headers={"Authorization": f"Bearer {token}x"})  # refused
    async with connect(f"{served.ws}?token={token}") as ws:  # the contract's old form
        await hello(ws)
    async with served.socket(token) as ws:
        await hello(ws)
        for _ in range(60):
            await ws.send("{}")
        await close_of(ws)
    client_side = ("httpx", "httpcore", "websockets.client")  # the test's own clients
    text = "\n".join(
        r.getMessage() for r in served.logs.records if not r.name.startswith(client_side)
    )
    assert "[redacted]" in text  # the old form's ?token= was logged, and redacted
    assert "login ticket redeemed: an-logged" in text  # the log was captured
    for secret in (SECRET, ticket, token, token.split(".")[2]):
        assert secret not in text


# ---- rtic token --link ---------------------------------------------------------------------


async def test_rtic_token_link_prints_a_page_whose_ticket_opens_once(
    served: Served, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli import main as cli_main
    from rtic.settings import get_settings

    s = served.settings
    monkeypatch.setenv("RTIC_REDIS_URL", s.redis_url)
    monkeypatch.setenv("RTIC_TOPIC_PREFIX", s.topic_prefix)
    monkeypatch.setenv("RTIC_TOKEN_SECRET", SECRET)
    monkeypatch.setenv("RTIC_GATEWAY_PORT", str(s.gateway_port))
    get_settings.cache_clear()
    try:
        argv = ["token", "--link", "--role", "officer", "--sub", "PC-9", "--area", "E05001221"]
        assert await asyncio.to_thread(cli_main.main, argv) == 0
        out = capsys.readouterr().out
        citizen = [
            "token",
            "--link",
            "--role",
            "citizen",
            "--sub",
            "c",
            "--case",
            "WM-2026-0000001",
        ]
        assert await asyncio.to_thread(cli_main.main, citizen) == 2
        assert "citizens use the portal" in capsys.readouterr().err
        monkeypatch.setenv("RTIC_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
        get_settings.cache_clear()
        assert await asyncio.to_thread(cli_main.main, argv) == 1
        assert "did not answer" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()
    link = out.splitlines()[-1]
    assert link.startswith(f"{served.base}/officer?ticket=") and "eyJ" not in out
    ticket = link.split("?ticket=")[1]
    async with httpx.AsyncClient(base_url=served.base) as http:
        opened = await http.post("/api/session/ticket", json={"ticket": ticket})
        again = await http.post("/api/session/ticket", json={"ticket": ticket})
    assert opened.status_code == 200 and again.status_code == 401
    assert (opened.json()["role"], opened.json()["sub"]) == ("officer", "PC-9")
