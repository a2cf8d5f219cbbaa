"""The gateway's HTTP and websocket edge: a Starlette app (served by uvicorn).

Routes (each declares who may call it, with ``require`` or ``public``):

- ``/``, ``/rtic``, ``/index.html``: the dashboard page; ``/cases``: the cases page;
  ``/officer``: an officer's phone page, ``/officer-sw.js`` its service worker;
  ``/static/...``: their files.
- ``/api/boundaries?level=ward|district|lsoa``: the map's boundaries (GeoJSON).
- ``/api/config``: versions, the data's attribution, and the map tile URL template
  (``map_tile_url``, null unless the operator set one).
- ``/healthz``: 200 ``{"status": "ok"}`` while the Kafka edge is consuming, else 503
  ``{"status": "degraded"}``; the counts (clients, buffers, audit) only for an
  ``rtic_analyst`` or ``supervisor`` token (anyone may ask whether it is up; how many
  are connected is for staff who run it).
- ``/metrics``: Prometheus metrics of this gateway.
- ``/ws``: the websocket, for any role with a valid bearer token; it only moves
  frames between the socket and the fan-out core (``push/fanout.py``), within the
  limits of ``push/wslimits.py`` (size 1009, rate 1008, connections per address 429).
- ``/api/session/ticket``: a link's login ticket exchanged once for a bearer token
  (``push/tickets.py``).
- ``/api/cases``, ``/api/cases/{case_ref}``, ``/api/evidence/{evidence_id}``,
  ``/api/search``, ``/api/audit``: cases, evidence, the audited history search
  and audit histories (``push/api.py``).
- ``/api/incidents``, ``/api/incidents/{incident_id}/candidates``,
  ``/api/officers/workload``: the job boards (``push/dispatch.py``).
- ``/api/desk/stats``: the desk's charts (``push/deskstats.py``).
- ``/api/desk/priorities``: the patrol priorities (``push/priorities.py``).
- ``/api/cases/{case_ref}/evidence`` (upload, list), ``/api/evidence/{id}/content``,
  ``/api/portal/evidence-rules``, ``/api/portal/outcomes``: evidence from the public
  and what happens next (``push/evidence.py``, ``push/outcomes.py``).

The page and its data are public: the map is drawn from public boundary data and
the page asks for a token before it shows anything (it opens ``/ws`` with it).
A bearer token comes in the ``Authorization`` header or, for browsers opening a
websocket (which cannot set headers), as the offered subprotocol
``rtic.bearer.<token>`` beside ``rtic`` (the one the gateway accepts, so the token
is never echoed); the ``token`` query parameter is still accepted, as the contract
promises, but no page sends it any more (a URL ends up in logs and history). A refused token gets 401 with
``{"error": {"code", "message"}}`` saying only ``missing_token``,
``token_expired`` or ``invalid_token`` (forged, malformed, another issuer,
revoked...: the caller learns nothing more); a role a route does not serve gets
403 ``forbidden``. Revoked tokens are refused from the gateway's copy of the
revocation list (``push/revocations.py``), and an open websocket whose token is
revoked is closed with 1008 "invalid token" within its refresh period.

Every HTTP response carries security headers (a Content-Security-Policy that allows
nothing from another origin, ``nosniff``, no referrer) and ``no-store`` unless the
route says how to cache it. Request bodies are limited to ``MAX_BODY_BYTES`` (but
evidence uploads, which stream to disk under their own limits) and
websocket messages to ``ws_max_message_bytes`` (uvicorn's ``ws_max_size``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

import dashboards
from enrichers.boundaries import boundaries_geojson, boundary_levels, reference_version
from enrichers.search import HistorySearch
from push.fanout import Client, Fanout
from push.metrics import CONTENT_TYPE_LATEST
from push.revocations import RevocationCache
from push.wslimits import CLOSE_FLOODING, AddressSlots, MessageRate, WsLimits
from records.protocols import Records
from rtic import __version__
from rtic.casework import AuditV1
from rtic.errors import AuthError
from rtic.schemas import Role
from rtic.tokens import Principal, TokenKeys, verify_token

log = logging.getLogger(__name__)

ATTRIBUTION = (
    "Boundaries: contains OS data © Crown copyright and database right 2014; contains ONS data "
    "© Crown copyright and database right 2016 (OGL v3). Places: DfE GIAS, NHS.UK (OGL v3)."
)
MAX_BODY_BYTES = 1024 * 1024
MAX_WS_MESSAGE_BYTES = WsLimits().max_message_bytes  # the default of ws_max_message_bytes
# Routes that stream their body to disk and enforce their own limits (evidence uploads,
# push/evidence.py): the BodyLimit does not apply to them.
STREAMED_BODIES = (re.compile(r"^/api/cases/[^/]+/evidence$"),)
CLOSE_TOKEN_EXPIRED = (1008, "token expired")
SUBPROTOCOL = "rtic"  # what a page offers beside its bearer subprotocol, and is accepted
BEARER_SUBPROTOCOL = "rtic.bearer."  # + the token: a browser's way to send it in a header
MAX_STATIC_PATH_CHARS = 255  # the longest file name here is far shorter
DETAIL_ROLES = frozenset({Role.RTIC_ANALYST, Role.SUPERVISOR})  # /healthz counts

Endpoint = Callable[[Any], Awaitable[Any]]  # what Starlette calls: (request or websocket)
Guarded = Callable[[Any, Principal], Awaitable[Any]]  # an endpoint told who is calling
AuditWriter = Callable[[list[AuditV1]], Awaitable[None]]  # write now, raise if not written


@dataclass
class WebEdge:
    """What the routes need, kept on ``app.state.edge``.

    ``records``: the database (cases, audit); ``search``: history in Redis;
    ``write_audit``: writes audit records and returns once they are written (the
    Kafka edge), None to queue them in the core's audit buffer instead."""

    core: Fanout
    secret: TokenKeys | str
    data_dir: Path
    consuming: Callable[[], bool]
    boundaries: dict[str, bytes] = field(default_factory=dict)  # level -> GeoJSON bytes
    records: Records | None = None
    search: HistorySearch | None = None
    write_audit: AuditWriter | None = None
    revocations: RevocationCache = field(default_factory=lambda: RevocationCache(None))
    map_tile_url: str | None = None  # the desk's optional tiles (Settings.map_tile_url)
    ws_limits: WsLimits = field(default_factory=WsLimits)
    ws_slots: AddressSlots = field(default_factory=lambda: AddressSlots(0))

    def __post_init__(self) -> None:
        self.ws_slots = AddressSlots(self.ws_limits.max_per_address)


def _edge(conn: HTTPConnection) -> WebEdge:
    edge: WebEdge = conn.app.state.edge
    return edge


# ---- authentication: a dependency of each route -----------------------------------------


def offered_subprotocols(conn: HTTPConnection) -> list[str]:
    """The subprotocols a websocket handshake offers (``Sec-WebSocket-Protocol``)."""
    offered = conn.headers.get("sec-websocket-protocol", "")
    return [p.strip() for p in offered.split(",") if p.strip()]


def authenticate(
    conn: HTTPConnection, secret: TokenKeys | str, now: Callable[[], datetime]
) -> Principal:
    """The principal of the bearer token (``Authorization`` header, else a websocket's
    ``rtic.bearer.<token>`` subprotocol, else the ``token`` query parameter, kept for
    the contract); ``AuthError`` if there is none or it is not valid now."""
    auth = conn.headers.get("authorization", "")
    token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
    if not token and conn.scope["type"] == "websocket":
        bearer = [p for p in offered_subprotocols(conn) if p.startswith(BEARER_SUBPROTOCOL)]
        token = bearer[0][len(BEARER_SUBPROTOCOL) :] if bearer else ""
    if not token:
        token = conn.query_params.get("token", "")
    if not token:
        raise AuthError("missing bearer token")
    return verify_token(secret, token, now=now())


def refusal(exc: AuthError) -> tuple[str, str]:
    """What a refused token is told (code, message): missing, expired or invalid, no
    more (why a token is invalid stays in the gateway's log)."""
    reason = str(exc)
    if reason.startswith("missing"):
        return "missing_token", "missing bearer token"
    if reason == "token expired":
        return "token_expired", "token expired"
    return "invalid_token", "invalid token"


def error_body(code: str, message: str) -> dict[str, Any]:
    """The body of every error the people's side API answers."""
    return {"error": {"code": code, "message": message}}


async def _refuse(conn: HTTPConnection, status: int, code: str, message: str) -> Response:
    response = JSONResponse(error_body(code, message), status_code=status)
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    if isinstance(conn, WebSocket):
        await conn.send_denial_response(response)  # an HTTP answer to the handshake
    return response


def require(*roles: Role) -> Callable[[Guarded], Endpoint]:
    """Route decorator: the caller must hold a valid token for one of ``roles`` (any role
    if none is named); the endpoint is called with the connection and the principal.
    Refused: 401 without a valid token (or a revoked one), 403 for another role (for a
    websocket, as the HTTP answer to its handshake)."""
    allowed = frozenset(roles or Role)

    def wrap(endpoint: Guarded) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(conn: HTTPConnection) -> Any:
            edge = _edge(conn)
            try:
                who = authenticate(conn, edge.secret, edge.core.clock)
                if edge.revocations.refuses(who):
                    raise AuthError("token revoked")
            except AuthError as exc:
                log.info("token refused on %s: %s", conn.url.path, exc)
                return await _refuse(conn, 401, *refusal(exc))
            if who.role not in allowed:
                return await _refuse(conn, 403, "forbidden", f"a {who.role.value} may not use this")
            return await endpoint(conn, who)

        guarded.access = allowed  # type: ignore[attr-defined]
        return guarded

    return wrap


def public(endpoint: Endpoint) -> Endpoint:
    """Route decorator: anyone may call this endpoint (said so, not forgotten)."""
    endpoint.access = "public"  # type: ignore[attr-defined]
    return endpoint


# ---- HTTP routes ----------------------------------------------------------------------


def client_address(conn: HTTPConnection) -> str | None:
    """Where a request or socket comes from (the audit trail's ``origin``)."""
    return conn.client.host if conn.client else None


def _json(data: Any, status: int = 200, cache: bool = False) -> Response:
    headers = {"Cache-Control": "max-age=3600"} if cache else None
    return Response(orjson.dumps(data), status, headers, media_type="application/json")


@public
async def index(request: Request) -> Response:
    """The dashboard page."""
    page = dashboards.STATIC_DIR / dashboards.INDEX
    return HTMLResponse(await run_in_threadpool(page.read_bytes))


@public
async def cases_page(request: Request) -> Response:
    """The cases page (case officers, officers, supervisors; it opens from a link's login
    ticket or the desk's session, as the desk does, and asks the API for everything)."""
    page = dashboards.STATIC_DIR / "cases.html"
    return HTMLResponse(await run_in_threadpool(page.read_bytes))


def _page(name: str) -> Endpoint:
    """A public page: the HTML file ``name`` of the dashboards' static files (a page shows
    nothing without a token or a session; it asks the API for everything)."""

    @public
    async def page(request: Request) -> Response:
        return HTMLResponse(await run_in_threadpool((dashboards.STATIC_DIR / name).read_bytes))

    page.__name__ = page.__qualname__ = name.replace(".", "_")
    return page


officer_page = _page("officer.html")  # an officer's phone page (token as for the desk)
portal_page = _page("portal.html")  # the citizen portal (no token: report, or a session)
handler_page = _page("handler.html")  # a contact handler's webchat queue


@public
async def officer_worker(request: Request) -> Response:
    """The officer page's service worker, served from the site root so that its scope can
    be ``/officer`` (it keeps the page and its files for use with no network)."""
    body = await run_in_threadpool((dashboards.STATIC_DIR / "officer-sw.js").read_bytes)
    headers = {"Cache-Control": "no-cache", "Service-Worker-Allowed": "/officer"}
    return Response(body, headers=headers, media_type=dashboards.content_type("officer-sw.js"))


@public
async def boundaries(request: Request) -> Response:
    """Simplified boundaries of one level (``?level=``, default ``ward``) as GeoJSON."""
    edge = _edge(request)
    level = request.query_params.get("level", "ward")
    if level not in edge.boundaries:
        if level not in boundary_levels(edge.data_dir):
            return _json({"error": "unknown level"}, 400)
        geojson = await run_in_threadpool(boundaries_geojson, edge.data_dir, level)
        edge.boundaries[level] = orjson.dumps(geojson)
    return Response(
        edge.boundaries[level],
        headers={"Cache-Control": "max-age=3600"},
        media_type="application/json",
    )


@public
async def config(request: Request) -> Response:
    """The gateway's version, the reference data's version, and the attribution."""
    data_dir = _edge(request).data_dir
    return _json(
        {
            "version": __version__,
            "reference_version": reference_version(data_dir),
            "attribution": ATTRIBUTION,
            "map_tile_url": _edge(request).map_tile_url,
        }
    )


def _may_see_counts(request: Request, edge: WebEdge) -> bool:
    """Whether ``/healthz`` shows its counts: an analyst's or supervisor's valid token."""
    if "authorization" not in request.headers:
        return False
    try:
        who = authenticate(request, edge.secret, edge.core.clock)
    except AuthError:
        return False
    return who.role in DETAIL_ROLES and not edge.revocations.refuses(who)


@public
async def health(request: Request) -> Response:
    """Up, and consuming: 200 when the Kafka edge is reading, else 503. The counts only
    for an analyst or supervisor (``Authorization: Bearer``); anyone else gets the status."""
    edge = _edge(request)
    consuming = edge.consuming()
    status = "ok" if consuming else "degraded"
    if not _may_see_counts(request, edge):
        return _json({"status": status}, 200 if consuming else 503)
    return _json(
        {
            "status": status,
            "kafka": {"consuming": consuming},
            "clients": len(edge.core.clients),
            "alerts_buffered": len(edge.core.recent),
            "audit": {"buffered": len(edge.core.audit), "dropped": edge.core.audit.dropped},
            "records": edge.records is not None,
            **edge.core.stats,
        },
        200 if consuming else 503,
    )


@public
async def metrics(request: Request) -> Response:
    """Prometheus metrics (counts only: nothing about any person or alert)."""
    return Response(_edge(request).core.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


class DashboardFiles(StaticFiles):
    """The dashboard's static files, with the content types the dashboards name
    (``mimetypes`` varies with the Python version and the host).

    A name no file can have is a 404 before the file system is asked: too long
    (``ENAMETOOLONG`` was a 500 with a traceback), a NUL or another control
    character (``ValueError`` from ``os.stat``), ``..`` or a backslash; so is any
    other error of the file system looking it up. Never a 500."""

    def get_path(self, scope: Scope) -> str:
        path = super().get_path(scope)
        if (
            len(path) > MAX_STATIC_PATH_CHARS
            or not path.isprintable()
            or "\\" in path
            or ".." in path.split("/")
        ):
            raise HTTPException(status_code=404)
        return path

    def lookup_path(self, path: str) -> tuple[str, Any]:
        try:
            return super().lookup_path(path)
        except (OSError, ValueError):
            return "", None

    def file_response(self, full_path: Any, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(full_path, *args, **kwargs)
        if response.status_code == 200:
            response.headers["content-type"] = dashboards.content_type(str(full_path))
        return response


# ---- the websocket ----------------------------------------------------------------------


@require()
async def live(ws: WebSocket, who: Principal) -> None:
    """One client's socket, within the per-address cap (else 429 before the upgrade)."""
    edge = _edge(ws)
    address = client_address(ws) or "unknown"
    if not edge.ws_slots.claim(address):
        edge.core.metrics.ws_limited.labels("address_refused").inc()
        log.warning("websocket refused: %s already has %d open", address, edge.ws_slots.limit)
        cap = edge.ws_slots.limit
        await _refuse(ws, 429, "too_many_connections", f"at most {cap} websockets per address")
        return
    try:
        await _serve(ws, who, edge)
    finally:
        edge.ws_slots.release(address)


async def _serve(ws: WebSocket, who: Principal, edge: WebEdge) -> None:
    """Frames from the core's queue out, client messages in, until either side closes or
    the core asks to close (too slow, too many bad messages, flooding, token expired)."""
    core = edge.core
    closing = anyio.Event()
    close_with: list[tuple[int, str]] = []

    def close(code: int, reason: str) -> None:
        close_with.append((code, reason))
        closing.set()

    await ws.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered_subprotocols(ws) else None)
    client = core.connect(who, on_close=close, origin=client_address(ws))
    expiry = asyncio.get_running_loop().call_later(
        max(0.0, who.expires_at - core.clock().timestamp()),
        lambda: client.request_close(*CLOSE_TOKEN_EXPIRED),
    )
    try:
        async with anyio.create_task_group() as tasks:

            async def until_done(part: Callable[[], Awaitable[None]]) -> None:
                try:
                    await part()
                except Exception as exc:  # the socket went away mid-send: this client only
                    log.debug("client %s: %r", who.sub, exc)
                tasks.cancel_scope.cancel()

            async def closer() -> None:
                await closing.wait()
                # Shielded: the pump, failing on the closed socket, cancels the group,
                # and the close frame must still go out.
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await ws.close(*close_with[0])

            tasks.start_soon(until_done, lambda: _pump(ws, client, core))
            tasks.start_soon(until_done, lambda: _read(ws, client, core, edge.ws_limits))
            tasks.start_soon(until_done, closer)
    finally:
        expiry.cancel()
        core.disconnect(client)


async def _pump(ws: WebSocket, client: Client, core: Fanout) -> None:
    """Send queued frames in order; a slow socket only ever holds up its own queue."""
    sent = core.metrics.frames_sent
    while True:
        data = await client.queue.get()
        await ws.send_text(data.decode())
        sent.inc()


async def _read(ws: WebSocket, client: Client, core: Fanout, limits: WsLimits) -> None:
    """Hand each client message to the core and queue its reply, until the client leaves;
    past the message rate an ``error`` frame instead, and a close if it goes on."""
    rate = MessageRate(limits, time.monotonic())
    limited = core.metrics.ws_limited
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        verdict = rate.take(time.monotonic())
        if verdict != "ok":
            if client.close_request is not None:
                continue  # closing already: the rest is not read
            if verdict == "close":
                limited.labels("flood_closes").inc()
                log.warning("client %s flooding: closing with 1008", who_of(client))
                client.request_close(*CLOSE_FLOODING)
                continue
            limited.labels("rate_refused").inc()
            client.send_now(_rate_limited_frame(limits, rate.retry_after()))
            continue
        raw = message.get("text")
        reply = core.on_client_message(client, raw if raw is not None else message["bytes"])
        if reply is not None:
            await core.sink.settled()  # an ``acked`` promises the act is kept: not before
            client.send_now(reply)
            for data in client.take_follow_ups():  # snapshots after ``subscribed``
                client.offer_case(data)


def who_of(client: Client) -> str:
    return f"{client.principal.sub} ({client.principal.role.value})"


def _rate_limited_frame(limits: WsLimits, wait: float) -> bytes:
    message = (
        f"too many messages: at most {limits.per_second:g} a second (bursts of "
        f"{limits.burst}); this one was not handled, try again in {wait:.1f} s"
    )
    return orjson.dumps({"type": "error", "code": "rate_limited", "message": message})


@public
async def no_such_socket(ws: WebSocket) -> None:
    """A websocket anywhere but ``/ws``: a plain 404 to the handshake."""
    await ws.send_denial_response(PlainTextResponse("websocket endpoint is /ws\n", 404))


# ---- middleware -------------------------------------------------------------------------

_HOST = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def tile_origin(template: str | None) -> str | None:
    """The origin (``https://host[:port]``) of a map tile URL template, or None."""
    if not template:
        return None
    match = re.match(r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(?=/)", template)
    return match.group(0) if match else None


def content_security_policy(host: str | None, img_origin: str | None = None) -> str:
    """Nothing from another origin: scripts, styles, fonts, frames, forms; sockets only
    back to this host; images also as ``data:`` URLs (and from the map tile server's
    origin when one is set); the page never framed."""
    connect = "'self'"
    if host and _HOST.match(host):  # the Host header is the client's: only a host[:port]
        connect += f" ws://{host} wss://{host}"
    img = f"'self' data: {img_origin}" if img_origin else "'self' data:"
    return (
        "default-src 'self'; "
        f"connect-src {connect}; "
        f"img-src {img}; "
        "object-src 'none'; "
        "base-uri 'none'; "
        "form-action 'self'; "
        "frame-ancestors 'none'"
    )


class SecurityHeaders:
    """Adds the security headers (and ``no-store`` by default) to every HTTP response."""

    def __init__(self, app: ASGIApp, img_origin: str | None = None) -> None:
        self.app = app
        self.img_origin = img_origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = HTTPConnection(scope).headers.get("host")
        csp = content_security_policy(host, self.img_origin)
        extra = [
            (b"content-security-policy", csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
        ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in extra if k not in present]
                if b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Refuses request bodies over ``max_bytes`` with 413, declared or streamed (except
    a POST to a path of ``STREAMED_BODIES``: that route limits its own body)."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (
            scope["method"] == "POST" and any(p.match(scope["path"]) for p in STREAMED_BODIES)
        ):
            await self.app(scope, receive, send)
            return
        declared = HTTPConnection(scope).headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if started:
                raise
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = {"error": f"request body over {self.max_bytes} bytes"}
        await JSONResponse(body, status_code=413)(scope, receive, send)


# ---- the app ----------------------------------------------------------------------------


def routes() -> list[BaseRoute]:
    """Every route of the gateway (the static files are public, as the page is)."""
    from push.api import api_routes  # push.api builds on this module's require()
    from push.deskstats import desk_routes
    from push.dispatch import dispatch_routes
    from push.evidence import evidence_routes
    from push.portal import portal_routes
    from push.priorities import priorities_routes
    from push.tickets import ticket_routes
    from push.trends import trends_routes

    return [
        *api_routes(),
        *desk_routes(),
        *dispatch_routes(),
        *evidence_routes(),
        *portal_routes(),
        *priorities_routes(),
        *trends_routes(),
        *ticket_routes(),
        Route("/", index),
        Route("/rtic", index),
        Route("/index.html", index),
        Route("/cases", cases_page),
        Route("/officer", officer_page),
        Route("/officer-sw.js", officer_worker),
        Route("/portal", portal_page),
        Route("/handler", handler_page),
        Route("/api/boundaries", boundaries),
        Route("/api/config", config),
        Route("/healthz", health),
        Route("/metrics", metrics),
        WebSocketRoute("/ws", live),
        Mount("/static", app=DashboardFiles(directory=dashboards.STATIC_DIR), name="static"),
        WebSocketRoute("/{path:path}", no_such_socket),
    ]


def create_app(
    core: Fanout,
    *,
    secret: TokenKeys | str,
    data_dir: Path,
    consuming: Callable[[], bool],
    max_body_bytes: int = MAX_BODY_BYTES,
    records: Records | None = None,
    search: HistorySearch | None = None,
    write_audit: AuditWriter | None = None,
    revocations: RevocationCache | None = None,
    map_tile_url: str | None = None,
    ws_limits: WsLimits | None = None,
) -> Starlette:
    """The gateway's ASGI app around a fan-out core. ``consuming`` says whether the
    Kafka edge is reading (for ``/healthz``); ``records``, ``search``, ``write_audit``
    and ``revocations``: see ``WebEdge`` (the API answers 503 without records);
    ``map_tile_url``: the desk's tiles, whose origin the CSP then allows images from;
    ``ws_limits``: the sockets' limits (``push/wslimits.py``; the defaults if None; the
    size limit is uvicorn's, ``Gateway.server``)."""
    app = Starlette(routes=routes())
    app.state.edge = WebEdge(
        core=core,
        secret=secret,
        data_dir=data_dir,
        consuming=consuming,
        records=records,
        search=search,
        write_audit=write_audit,
        revocations=revocations if revocations is not None else RevocationCache(None, core.metrics),
        map_tile_url=map_tile_url if tile_origin(map_tile_url) else None,
        ws_limits=ws_limits or WsLimits(),
    )
    if app.state.edge.revocations.on_change is None:
        app.state.edge.revocations.on_change = core.revoke  # close revoked sockets
    # Outermost first: every answer (a 413 too) gets the security headers.
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(SecurityHeaders, img_origin=tile_origin(map_tile_url))
    return app
