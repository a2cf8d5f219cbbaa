"""The web edge: routes, authentication, limits, security headers, metrics, health and the
websocket, through Starlette's ``TestClient`` (no network) and once through uvicorn."""

from __future__ import annotations

import asyncio
import logging
import re
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocketDisconnect
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

import dashboards
from cli.services import free_port
from enrichers.boundaries import reference_version
from push.fanout import CLOSE_TOO_MANY_ERRORS, MAX_CLIENT_ERRORS, Fanout
from push.gateway import Gateway
from push.web import (
    MAX_WS_MESSAGE_BYTES,
    authenticate,
    content_security_policy,
    create_app,
    require,
)
from rtic.errors import AuthError
from rtic.schemas import Role
from rtic.settings import PROJECT_ROOT, Settings
from rtic.tokens import Principal, issue_token
from tests.conftest import NOW
from tests.unit.push.test_fanout import RecordingSink, alert

with warnings.catch_warnings():
    # Starlette 1.x asks for httpx2 under its TestClient; httpx (a test dependency)
    # still drives it correctly.
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient, WebSocketDenialResponse

SECRET = "web-unit-secret"
DATA_DIR = PROJECT_ROOT / "data"
PUBLIC_PATHS = ["/", "/rtic", "/index.html", "/api/config", "/healthz", "/metrics"]


def token(role: str = "rtic_analyst", sub: str = "an", ttl: int = 600, **kw: Any) -> str:
    return issue_token(SECRET, sub=sub, role=role, now=NOW, ttl_seconds=ttl, **kw)


def make_app(consuming: bool = True, **overrides: Any) -> tuple[Fanout, TestClient]:
    core = Fanout(
        sink=RecordingSink(), queue_size=overrides.pop("queue_size", 10), clock=lambda: NOW
    )
    app = create_app(
        core, secret=SECRET, data_dir=DATA_DIR, consuming=lambda: consuming, **overrides
    )
    return core, TestClient(app)


@pytest.fixture
def web() -> Iterator[tuple[Fanout, TestClient]]:
    core, client = make_app()
    with client:
        yield core, client


@pytest.fixture
def http(web: tuple[Fanout, TestClient]) -> TestClient:
    return web[1]


# ---- routes --------------------------------------------------------------------------------


def test_the_page_its_files_and_the_json_api(http: TestClient) -> None:
    for path in ("/", "/rtic", "/index.html"):
        page = http.get(path)
        assert page.status_code == 200 and b"RTIC live" in page.content
        assert page.headers["content-type"] == "text/html; charset=utf-8"
    js = http.get("/static/rtic.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert http.get("/static/rtic.css").headers["content-type"].startswith("text/css")
    for bad in ("/static/../rtic/settings.py", "/static/%2e%2e/rtic/settings.py", "/static/"):
        assert http.get(bad).status_code == 404
    assert http.get("/nothing").status_code == 404
    config = http.get("/api/config").json()
    assert config["reference_version"] == reference_version(DATA_DIR)
    assert "Crown copyright" in config["attribution"] and config["version"]


def test_boundaries_by_level(http: TestClient) -> None:
    wards = http.get("/api/boundaries")
    assert wards.status_code == 200 and wards.headers["cache-control"] == "max-age=3600"
    assert wards.json()["type"] == "FeatureCollection"
    districts = http.get("/api/boundaries?level=district").json()
    assert {f["properties"]["name"] for f in districts["features"]} >= {"Birmingham", "Coventry"}
    refused = http.get("/api/boundaries?level=planet")
    assert refused.status_code == 400 and refused.json() == {"error": "unknown level"}


def test_every_route_says_who_may_call_it(http: TestClient) -> None:
    for route in http.app.router.routes:  # type: ignore[attr-defined]
        if isinstance(route, Route | WebSocketRoute):
            assert hasattr(route.endpoint, "access"), route.path
    ws = next(r for r in http.app.router.routes if getattr(r, "path", "") == "/ws")  # type: ignore[attr-defined]
    assert ws.endpoint.access == frozenset(Role)


# ---- authentication ------------------------------------------------------------------------


def request(path: str, headers: dict[str, str] | None = None) -> Request:
    raw_path, _, query = path.partition("?")
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": raw_path,
            "query_string": query.encode(),
            "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        }
    )


def test_authentication_by_header_or_query() -> None:
    good = token()
    header = request("/ws", {"Authorization": f"Bearer {good}"})
    assert authenticate(header, SECRET, lambda: NOW).sub == "an"
    assert authenticate(request(f"/ws?token={good}"), SECRET, lambda: NOW).role is Role.RTIC_ANALYST
    for bad in (
        request("/ws"),
        request("/ws?token=abc"),
        request("/ws", {"Authorization": "Bearer x.y.z"}),
    ):
        with pytest.raises(AuthError):
            authenticate(bad, SECRET, lambda: NOW)


def test_expired_forged_and_odd_tokens_are_refused() -> None:
    expired = issue_token(
        SECRET, sub="an", role="rtic_analyst", now=NOW - timedelta(hours=2), ttl_seconds=60
    )
    forged = issue_token("not-the-secret", sub="an", role="rtic_analyst", now=NOW, ttl_seconds=60)
    cases = [
        (request("/ws", {"Authorization": f"Bearer {expired}"}), "expired"),
        (request(f"/ws?token={expired}"), "expired"),
        (request("/ws", {"Authorization": f"Bearer {forged}"}), "signature"),
        (request(f"/ws?token={forged}"), "signature"),
        (request("/ws", {"Authorization": "Basic dXNlcjpwYXNz"}), "missing"),
        (request("/ws", {"Authorization": "Bearer "}), "missing"),
        (request("/ws?token="), "missing"),
        (request("/ws?token=%C3%A9.a.b"), "malformed"),
    ]
    for req, words in cases:
        with pytest.raises(AuthError, match=words):
            authenticate(req, SECRET, lambda: NOW)


def test_the_header_wins_over_the_query_and_the_scheme_is_case_blind() -> None:
    good = issue_token(SECRET, sub="hdr", role="supervisor", now=NOW, ttl_seconds=60)
    other = issue_token(SECRET, sub="qry", role="citizen", now=NOW, ttl_seconds=60)
    both = request(f"/ws?token={other}", {"Authorization": f"bearer {good}"})
    assert authenticate(both, SECRET, lambda: NOW).sub == "hdr"
    who = authenticate(request("/ws", {"Authorization": f"BEARER {good}"}), SECRET, lambda: NOW)
    assert (who.sub, who.role) == ("hdr", Role.SUPERVISOR)


def test_the_websocket_needs_a_valid_token_of_any_role(http: TestClient) -> None:
    expired = issue_token(SECRET, sub="an", role="officer", now=NOW, ttl_seconds=0)
    for path, code, words in (
        ("/ws", "missing_token", "missing bearer token"),
        # Why a token is invalid (malformed, forged...) is never said: only "invalid".
        ("/ws?token=forged.token.value", "invalid_token", "invalid token"),
        (
            f"/ws?token={issue_token('other', sub='an', role='officer', now=NOW, ttl_seconds=60)}",
            "invalid_token",
            "invalid token",
        ),
        (f"/ws?token={expired}", "token_expired", "token expired"),
    ):
        with pytest.raises(WebSocketDenialResponse) as refused:
            with http.websocket_connect(path):
                pass
        assert refused.value.status_code == 401
        assert refused.value.json() == {"error": {"code": code, "message": words}}
    for role in Role:
        with http.websocket_connect(f"/ws?token={token(role.value, sub=role.value)}") as ws:
            assert ws.receive_json() == {"type": "hello", "role": role.value, "sub": role.value}
    with http.websocket_connect("/ws", headers={"Authorization": f"Bearer {token()}"}) as ws:
        assert ws.receive_json()["type"] == "hello"


def test_a_websocket_elsewhere_is_a_404(http: TestClient) -> None:
    with pytest.raises(WebSocketDenialResponse) as refused:
        with http.websocket_connect(f"/socket?token={token()}"):
            pass
    assert refused.value.status_code == 404


def test_require_refuses_no_token_401_and_another_role_403() -> None:
    @require(Role.SUPERVISOR, Role.RTIC_ANALYST)
    async def desk(request: Request, who: Principal) -> Response:
        return JSONResponse({"sub": who.sub})

    _, client = make_app()
    client.app.router.routes.insert(0, Route("/desk", desk))  # type: ignore[attr-defined]
    none = client.get("/desk")
    assert none.status_code == 401 and none.headers["www-authenticate"] == "Bearer"
    assert client.get("/desk?token=x.y.z").status_code == 401
    for role in (Role.OFFICER, Role.CASE_OFFICER, Role.CITIZEN):
        wrong = client.get("/desk", headers={"Authorization": f"Bearer {token(role.value)}"})
        assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "forbidden"
        assert role.value in wrong.json()["error"]["message"]
    for role in (Role.SUPERVISOR, Role.RTIC_ANALYST):
        right = client.get(f"/desk?token={token(role.value, sub='me')}")
        assert right.status_code == 200 and right.json() == {"sub": "me"}


def test_public_routes_answer_without_a_token(http: TestClient) -> None:
    for path in [*PUBLIC_PATHS, "/api/boundaries", "/static/rtic.js"]:
        assert http.get(path).status_code == 200, path


# ---- security headers and limits -----------------------------------------------------------


def _directives(csp: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in csp.split(";")) if d}


def test_every_answer_carries_the_security_headers(http: TestClient) -> None:
    for path in [*PUBLIC_PATHS, "/static/rtic.js", "/nothing", "/api/boundaries?level=planet"]:
        headers = http.get(path).headers
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["referrer-policy"] == "no-referrer", path
        csp = _directives(headers["content-security-policy"])
        assert csp["default-src"] == ["'self'"] and csp["frame-ancestors"] == ["'none'"]
        assert csp["img-src"] == ["'self'", "data:"]
        assert csp["connect-src"] == ["'self'", "ws://testserver", "wss://testserver"]
        origins = [v for values in csp.values() for v in values if "://" in v]
        assert all(v.split("://")[1] == "testserver" for v in origins)  # no third party
        assert "'unsafe-inline'" not in headers["content-security-policy"]
    assert http.get("/").headers["cache-control"] == "no-store"


def test_a_forged_host_header_cannot_widen_the_policy() -> None:
    for host in ("evil.example ws://x", "a;script-src *", "x'"):
        csp = _directives(content_security_policy(host))
        assert csp["connect-src"] == ["'self'"] and "script-src" not in csp
    assert _directives(content_security_policy("[::1]:8765"))["connect-src"][1] == "ws://[::1]:8765"


def test_the_dashboard_has_nothing_inline_the_policy_would_block() -> None:
    html = (dashboards.STATIC_DIR / dashboards.INDEX).read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)  # every script from a file
    assert not re.search(r"<style|\sstyle=|\son[a-z]+=|javascript:", html, re.IGNORECASE)
    js = (dashboards.STATIC_DIR / "rtic.js").read_text()
    js = js.replace('"http://www.w3.org/2000/svg"', "SVG")  # a namespace name, never fetched
    assert not re.search(r"https?://|setAttribute\(\s*[\"']style|\beval\(|new Function", js)


def test_request_bodies_are_limited_declared_or_streamed() -> None:
    async def echo(request: Request) -> Response:
        return JSONResponse({"bytes": len(await request.body())})

    _, client = make_app(max_body_bytes=1000)
    client.app.router.routes.insert(0, Route("/echo", echo, methods=["POST"]))  # type: ignore[attr-defined]
    assert client.post("/echo", content=b"x" * 1000).json() == {"bytes": 1000}
    declared = client.post("/echo", content=b"x" * 1001)
    assert declared.status_code == 413 and declared.headers["x-content-type-options"] == "nosniff"
    streamed = client.post("/echo", content=iter([b"x" * 600, b"x" * 600]))
    assert streamed.status_code == 413


# ---- health and metrics --------------------------------------------------------------------


def test_health_says_whether_kafka_is_being_read() -> None:
    staff = {"Authorization": f"Bearer {token('supervisor', 'sup')}"}
    _, up = make_app(consuming=True)
    ok = up.get("/healthz", headers=staff)
    assert ok.status_code == 200 and ok.json()["status"] == "ok"
    assert ok.json()["kafka"] == {"consuming": True} and ok.json()["clients"] == 0
    assert ok.json()["audit"] == {"buffered": 0, "dropped": 0} and ok.json()["records"] is False
    _, down = make_app(consuming=False)
    degraded = down.get("/healthz", headers=staff)
    assert degraded.status_code == 503 and degraded.json()["kafka"] == {"consuming": False}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": f"Bearer {token('officer', 'off')}"},
        {"Authorization": f"Bearer {token('citizen', 'cit', cases=['WM-2026-0000001'])}"},
        {"Authorization": "Bearer forged.token.here"},
        {"Authorization": f"Bearer {token(ttl=60)}x"},
    ],
    ids=["anonymous", "officer", "citizen", "malformed", "bad-signature"],
)
def test_health_gives_only_the_status_without_an_analyst_or_supervisor(
    headers: dict[str, str],
) -> None:
    _, up = make_app(consuming=True)
    ok = up.get("/healthz", headers=headers)
    assert (ok.status_code, ok.json()) == (200, {"status": "ok"})
    _, down = make_app(consuming=False)
    degraded = down.get("/healthz", headers=headers)
    assert (degraded.status_code, degraded.json()) == (503, {"status": "degraded"})
    analyst = up.get("/healthz", headers={"Authorization": f"Bearer {token()}"}).json()
    assert analyst["clients"] == 0 and "alerts_buffered" in analyst


def test_metrics_count_clients_by_role_and_frames_per_gateway(
    web: tuple[Fanout, TestClient],
) -> None:
    core, http = web
    _, other = make_app()  # another gateway in the same process: its own registry
    with http.websocket_connect(f"/ws?token={token('officer', sub='OFF-1')}") as ws:
        ws.receive_json()
        ws.send_json({"type": "ping"})
        ws.receive_json()
        text = http.get("/metrics").text
        assert 'rtic_gateway_clients{role="officer"} 1.0' in text
        assert 'rtic_gateway_clients{role="citizen"} 0.0' in text
        assert 'rtic_gateway_client_messages_total{result="ok",type="ping"} 1.0' in text
    assert core.metrics.value("rtic_gateway_frames_sent_total") == 2
    assert core.metrics.value("rtic_gateway_clients", role="officer") == 0
    assert 'rtic_gateway_clients{role="officer"} 0.0' in other.get("/metrics").text
    assert http.get("/metrics").headers["content-type"].startswith("text/plain")


# ---- the websocket through the edge -------------------------------------------------------


def test_alerts_flow_to_a_subscribed_socket_and_acks_to_the_sink(
    web: tuple[Fanout, TestClient],
) -> None:
    core, http = web
    with http.websocket_connect(f"/ws?token={token(sub='an-9')}") as ws:
        ws.receive_json()
        ws.send_json({"type": "subscribe"})
        assert ws.receive_json()["type"] == "subscribed"
        ws.portal.call(core.publish_alert, alert("w1"))
        assert ws.receive_json()["alert_id"] == "w1"
        ws.send_bytes(orjson.dumps({"type": "ack", "alert_id": "w1", "action": "assign"}))
        assert ws.receive_json() == {"type": "acked", "alert_id": "w1", "action": "assign"}
    assert isinstance(core.sink, RecordingSink)
    assert [(a.alert_id, a.by) for a in core.sink.acks] == [("w1", "an-9")]
    assert not core.clients


def test_a_slow_socket_is_closed_1013_after_what_fitted(web: tuple[Fanout, TestClient]) -> None:
    core, http = web
    with http.websocket_connect(f"/ws?token={token()}") as ws:
        ws.receive_json()
        ws.send_json({"type": "subscribe"})
        ws.receive_json()

        def burst() -> None:  # in one go: the socket has no chance to drain
            for i in range(15):
                core.publish_alert(alert(f"b{i}"))

        ws.portal.call(burst)
        got = []
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                got.append(ws.receive_json()["alert_id"])
        assert closed.value.code == 1013
        assert got == [f"b{i}" for i in range(len(got))] and len(got) <= 10


def test_a_socket_sending_nonsense_is_closed_1008(web: tuple[Fanout, TestClient]) -> None:
    _, http = web
    with http.websocket_connect(f"/ws?token={token()}") as ws:
        ws.receive_json()
        for _ in range(MAX_CLIENT_ERRORS):
            ws.send_text("{nope")
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                assert ws.receive_json()["code"] == "bad_json"
        assert (closed.value.code, closed.value.reason) == CLOSE_TOO_MANY_ERRORS


def test_a_socket_is_closed_when_its_token_expires() -> None:
    _, client = make_app()
    with client, client.websocket_connect(f"/ws?token={token(ttl=1)}") as ws:
        ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert (closed.value.code, closed.value.reason) == (1008, "token expired")


# ---- once through uvicorn and the websockets package ---------------------------------------


async def test_served_by_uvicorn_with_websockets(tmp_path: Path) -> None:
    settings = Settings(token_secret=SECRET, gateway_port=free_port(), data_dir=DATA_DIR)
    gateway = Gateway(settings, clock=lambda: NOW)
    gateway.kafka._consuming = asyncio.get_running_loop().create_future()  # "consuming"
    server = gateway.server()
    serving = asyncio.create_task(server.serve())
    url = f"ws://127.0.0.1:{settings.gateway_port}/ws"
    try:
        while not server.started:  # noqa: ASYNC110 (uvicorn only offers this flag)
            await asyncio.sleep(0.02)
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url):
                pass
        assert refused.value.response.status_code == 401
        assert b"missing bearer token" in refused.value.response.body
        async with connect(f"{url}?token={token()}", max_size=None) as ws:
            assert orjson.loads(await ws.recv())["type"] == "hello"
            await ws.send(orjson.dumps({"type": "ping"}).decode())
            assert orjson.loads(await ws.recv()) == {"type": "pong", "at": NOW.isoformat()}
            await ws.send("x" * (MAX_WS_MESSAGE_BYTES + 1))
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        assert not gateway.core.clients
    finally:
        server.should_exit = True
        await serving
        gateway.kafka._consuming.cancel()
        await asyncio.sleep(0)


def test_the_gateways_parts_share_one_audit_buffer_and_revocation_list() -> None:
    gateway = Gateway(Settings(token_secret=SECRET, data_dir=DATA_DIR))
    assert gateway.core.audit is gateway.audit is gateway.kafka.audit
    assert gateway.edge.revocations is gateway.revocations
    assert gateway.edge.write_audit == gateway.kafka.write_audit
    assert gateway.revocations.on_change == gateway.core.revoke


def test_the_gateway_knows_the_rules_a_snooze_may_name() -> None:
    gateway = Gateway(Settings(token_secret=SECRET, data_dir=DATA_DIR))
    assert "anpr_hotlist_hit" in gateway.core.rule_ids
    assert gateway.server().config.ws == "websockets-sansio"


def test_tokens_never_reach_the_log(caplog: pytest.LogCaptureFixture) -> None:
    Gateway(Settings(token_secret=SECRET, data_dir=DATA_DIR)).server()
    secret_token = token()
    logger = logging.getLogger("uvicorn.error")
    with caplog.at_level(logging.INFO, logger="uvicorn.error"):
        logger.info('%s - "WebSocket %s" [accepted]', "1.2.3.4:5", f"/ws?token={secret_token}&x=1")
    (line,) = [r.getMessage() for r in caplog.records]
    assert secret_token not in line and "/ws?token=[redacted]&x=1" in line


# ---- /static names that no file has ---------------------------------------------------------


@pytest.mark.parametrize(
    "raised",
    [OSError(36, "File name too long"), ValueError("embedded null byte"), OSError(40, "loop")],
    ids=["ENAMETOOLONG", "NUL", "ELOOP"],
)
def test_a_file_system_error_looking_up_a_static_name_is_a_404(
    raised: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Older Starlette releases let ENAMETOOLONG through as a 500 with a traceback; the
    # dashboard's files answer 404 whatever the Starlette version and the error.
    from starlette.staticfiles import StaticFiles

    def failing(self: StaticFiles, path: str) -> Any:
        raise raised

    monkeypatch.setattr(StaticFiles, "lookup_path", failing)
    _, client = make_app()
    answer = client.get("/static/rtic.js")
    assert answer.status_code == 404 and "Traceback" not in answer.text


@pytest.mark.parametrize(
    "path",
    [
        "/static/" + "a" * 256,
        "/static/a%00b.js",
        "/static/rtic.js%0a",
        "/static/..%2f..%2fpyproject.toml",
        "/static/a%5c..%5crtic.js",
    ],
    ids=["long", "nul", "newline", "dotdot", "backslash"],
)
def test_names_no_file_can_have_are_refused_before_the_file_system(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from starlette.staticfiles import StaticFiles

    asked: list[str] = []
    monkeypatch.setattr(StaticFiles, "lookup_path", lambda self, p: asked.append(p) or ("", None))
    _, client = make_app()
    assert client.get(path).status_code == 404
    assert asked == []
