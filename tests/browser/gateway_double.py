"""A TEST DOUBLE of the gateway for the pages' browser tests: not the gateway.

It serves the real pages and static files (``dashboards/static``, with the real
security headers of ``push.web``, so a page that breaks the Content-Security-Policy
fails its test) and answers the people's-side endpoints the pages call, as the
lead's design states them, over fixed fixtures built from the contract's own
models (``CaseView``, ``TimelineEntryV1``, ``EvidenceV1``, ``AuditV1``, ``AlertV1``):

- ``GET /api/cases``, ``GET /api/cases/{ref}`` (404 for a case the token may not
  see), ``GET /api/evidence/{id}``, ``GET /api/audit?object_type=alert&object_id=``
  (supervisors and analysts), ``POST /api/search`` (analysts, supervisors; 400 without a reason
  of 10 characters and a reference of 3);
- ``POST /api/session/ticket``: a ticket of ``ticket(role, sub)`` exchanged once for
  a token (401 ``invalid_ticket`` after), as ``push/tickets.py`` does;
- ``/ws``: authenticated by the real ``push.web.authenticate`` (the pages send the
  token as the subprotocol ``rtic.bearer.<token>``; ``socket_queries`` records each
  socket's query string, which must hold no token); ``hello``, ``subscribe`` -> ``subscribed`` (then the fixture alerts to
  analysts and supervisors), ``open`` (recorded, and added to the alert's audit
  history as the real audit writer would), ``ack``, ``ping``; ``push`` sends a frame
  to the clients allowed to see it (``case_update`` by the design's case rule).

What it records (``opened``, ``searches``, ``requests``) lets a test check what a
page really sent. The browser tests against the real engine live beside it
(``test_pages_live.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

import dashboards
from cli.services import free_port
from enrichers.boundaries import boundaries_geojson, reference_version
from push.web import (
    ATTRIBUTION,
    SUBPROTOCOL,
    DashboardFiles,
    SecurityHeaders,
    authenticate,
    offered_subprotocols,
)
from records.protocols import CaseRow, CaseView, ReporterV1, jsonable
from rtic.casework import (
    AuditAction,
    AuditObject,
    AuditV1,
    CaseLinkV1,
    CaseStatus,
    EvidenceKind,
    EvidenceV1,
    LinkKind,
    TimelineEntryV1,
    TimelineKind,
    stable_id,
)
from rtic.errors import AuthError
from rtic.schemas import AlertV1, AudienceV1, LocationV1, Role, Severity
from rtic.tokens import Principal, issue_token, verify_token

SECRET = "pages-test-double-secret-0123456789abcdef"
CASE_OFFICER = "co-ahmed"
OTHER_CASE_OFFICER = "co-jones"
COVENTRY = ["E08000026", "E05001221"]  # Coventry, Earlsdon ward
BIRMINGHAM = ["E08000025", "E05001179"]  # Birmingham, Aston ward
HOTLIST_ALERT = "alert-anpr-7f3c2a"
STAFF_ROLES = frozenset({Role.OFFICER, Role.CASE_OFFICER, Role.SUPERVISOR})
SEARCH_ROLES = frozenset({Role.RTIC_ANALYST, Role.SUPERVISOR})


def _error(status: int, code: str, message: str) -> Response:
    return Response(
        orjson.dumps({"error": {"code": code, "message": message}}),
        status,
        media_type="application/json",
    )


def _json(data: Any) -> Response:
    return Response(orjson.dumps(data), media_type="application/json")


@dataclass
class Connected:
    who: Principal
    frames: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)


@dataclass
class GatewayDouble:
    """The fixtures, what the pages sent, and the ASGI app that answers them."""

    data_dir: Path
    now: datetime
    cases: dict[str, CaseView] = field(default_factory=dict)
    audit: dict[str, list[AuditV1]] = field(default_factory=dict)  # alert id -> records
    alerts: list[AlertV1] = field(default_factory=list)
    opened: list[tuple[str, str]] = field(default_factory=list)  # (sub, alert id)
    searches: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, sub)
    clients: list[Connected] = field(default_factory=list)
    tickets: dict[str, tuple[str, str]] = field(default_factory=dict)  # ticket -> (role, sub)
    socket_queries: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.cases:
            self.cases = {v.case.case_ref: v for v in fixture_cases(self.now)}
        if not self.alerts:
            self.alerts = fixture_alerts(self.now)
        if not self.audit:
            self.audit = {HOTLIST_ALERT: fixture_audit(self.now)}

    def token(self, role: str, sub: str) -> str:
        return issue_token(SECRET, sub=sub, role=role, now=datetime.now(UTC), ttl_seconds=3600)

    def ticket(self, role: str, sub: str) -> str:
        ticket = secrets.token_urlsafe(32)
        self.tickets[ticket] = (role, sub)
        return ticket

    async def exchange_ticket(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        held = self.tickets.pop(body.get("ticket", ""), None) if isinstance(body, dict) else None
        if held is None:
            return _error(401, "invalid_ticket", "unknown, used or expired ticket")
        role, sub = held
        return _json({"token": self.token(role, sub), "sub": sub, "role": role})

    # ---- who may see a case: the design's rule (push/access.py in the real gateway) ----

    @staticmethod
    def may_see(who: Principal, case: CaseRow) -> bool:
        if who.role in (Role.OFFICER, Role.CASE_OFFICER):
            return who.sub == case.officer_in_charge or who.sub in case.attending
        return who.role is Role.SUPERVISOR

    # ---- HTTP ---------------------------------------------------------------------------

    def _who(self, request: Request) -> Principal | None:
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        try:
            who = verify_token(SECRET, token, now=datetime.now(UTC))
        except AuthError:
            return None
        self.requests.append((request.method, request.url.path, who.sub))
        return who

    async def list_cases(self, request: Request) -> Response:
        who = self._who(request)
        if who is None:
            return _error(401, "invalid_token", "invalid token")
        if who.role not in STAFF_ROLES:
            return _error(403, "forbidden", f"a {who.role.value} may not list cases")
        rows = [v.case for v in self.cases.values() if self.may_see(who, v.case)]
        rows.sort(key=lambda c: c.updated_at, reverse=True)
        return _json(
            {"cases": [jsonable(r.model_copy(update={"secret_hash": None})) for r in rows]}
        )

    async def one_case(self, request: Request) -> Response:
        who = self._who(request)
        if who is None:
            return _error(401, "invalid_token", "invalid token")
        view = self.cases.get(request.path_params["case_ref"])
        if view is None or who.role not in STAFF_ROLES or not self.may_see(who, view.case):
            return _error(404, "not_found", "no such case")
        staff_view = view.model_copy(
            update={"case": view.case.model_copy(update={"secret_hash": None})}
        )
        return _json(jsonable(staff_view))

    async def evidence(self, request: Request) -> Response:
        who = self._who(request)
        if who is None:
            return _error(401, "invalid_token", "invalid token")
        for view in self.cases.values():
            for item in view.evidence:
                if item.evidence_id == request.path_params["evidence_id"] and self.may_see(
                    who, view.case
                ):
                    return _json({"evidence": jsonable(item), "case_ref": view.case.case_ref})
        return _error(404, "not_found", "no such evidence")

    async def audit_history(self, request: Request) -> Response:
        who = self._who(request)
        if who is None:
            return _error(401, "invalid_token", "invalid token")
        if who.role not in SEARCH_ROLES:  # analysts: an alert's audit only (below)
            return _error(403, "forbidden", f"a {who.role.value} may not read the audit trail")
        if request.query_params.get("object_type") != "alert":
            return _error(400, "bad_request", "object_type must be alert or case")
        records = self.audit.get(request.query_params.get("object_id", ""), [])
        return _json({"records": [jsonable(r) for r in sorted(records, key=lambda r: r.at)]})

    async def search(self, request: Request) -> Response:
        who = self._who(request)
        if who is None:
            return _error(401, "invalid_token", "invalid token")
        if who.role not in SEARCH_ROLES:
            return _error(403, "forbidden", f"a {who.role.value} may not search history")
        body = orjson.loads(await request.body())
        if (
            len(str(body.get("reason") or "").strip()) < 10
            or len(str(body.get("reference") or "").strip()) < 3
        ):
            return _error(400, "bad_request", "a search needs a reason and a reference")
        self.searches.append({"sub": who.sub, **body})
        return _json(search_result(body, self.now))

    async def page(self, request: Request) -> Response:
        name = "cases.html" if request.url.path == "/cases" else dashboards.INDEX
        return FileResponse(dashboards.STATIC_DIR / name, media_type=dashboards.content_type(name))

    async def boundaries(self, request: Request) -> Response:
        level = request.query_params.get("level", "ward")
        return _json(boundaries_geojson(self.data_dir, level))

    async def config(self, request: Request) -> Response:
        return _json(
            {
                "version": "test",
                "reference_version": reference_version(self.data_dir),
                "attribution": ATTRIBUTION,
            }
        )

    # ---- the websocket ------------------------------------------------------------------

    async def socket(self, ws: WebSocket) -> None:
        self.socket_queries.append(ws.url.query)
        try:
            who = authenticate(ws, SECRET, lambda: datetime.now(UTC))
        except AuthError:
            await ws.close(1008, "invalid token")
            return
        await ws.accept(
            subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered_subprotocols(ws) else None
        )
        client = Connected(who)
        self.clients.append(client)
        await ws.send_text(
            orjson.dumps({"type": "hello", "role": who.role.value, "sub": who.sub}).decode()
        )
        try:
            async with anyio.create_task_group() as tasks:

                async def pump() -> None:
                    with contextlib.suppress(Exception):  # the socket went away mid-send
                        while True:
                            await ws.send_text((await client.frames.get()).decode())
                    tasks.cancel_scope.cancel()

                async def read() -> None:
                    with contextlib.suppress(WebSocketDisconnect):
                        while True:
                            self._on_message(client, await ws.receive_json())
                    tasks.cancel_scope.cancel()

                tasks.start_soon(pump)
                tasks.start_soon(read)
        finally:
            self.clients.remove(client)

    def _on_message(self, client: Connected, msg: dict[str, Any]) -> None:
        who = client.who
        reply: dict[str, Any]
        match msg.get("type"):
            case "subscribe":
                reply = {"type": "subscribed", "filters": {}}
                client.frames.put_nowait(orjson.dumps(reply))
                if who.role in SEARCH_ROLES:
                    for alert in self.alerts:
                        frame = {"type": "alert", **alert.model_dump(mode="json")}
                        client.frames.put_nowait(orjson.dumps(frame))
                return
            case "open":
                alert_id = str(msg.get("alert_id"))
                self.opened.append((who.sub, alert_id))
                record = audit_record(
                    datetime.now(UTC),
                    who.sub,
                    who.role,
                    AuditAction.ALERT_OPENED,
                    alert_id,
                    origin="127.0.0.1",
                )
                self.audit.setdefault(alert_id, []).append(record)
                reply = {"type": "opened", "alert_id": alert_id}
            case "ack":
                reply = {
                    "type": "acked",
                    "alert_id": msg.get("alert_id"),
                    "action": msg.get("action"),
                }
            case "ping":
                reply = {"type": "pong", "at": datetime.now(UTC).isoformat()}
            case other:
                reply = {
                    "type": "error",
                    "code": "unknown_type",
                    "message": f"unknown type {other!r}",
                }
        client.frames.put_nowait(orjson.dumps(reply))

    def push_case_update(self, view: CaseView, frame: dict[str, Any]) -> int:
        """Send a ``case_update`` frame to the clients allowed to see that case; how many."""
        sent = 0
        for client in self.clients:
            if client.who.role in STAFF_ROLES and self.may_see(client.who, view.case):
                client.frames.put_nowait(orjson.dumps({"type": "case_update", **frame}))
                sent += 1
        return sent

    def app(self) -> Starlette:
        app = Starlette(
            routes=[
                Route("/", self.page),
                Route("/cases", self.page),
                Route("/api/boundaries", self.boundaries),
                Route("/api/config", self.config),
                Route("/api/cases", self.list_cases),
                Route("/api/cases/{case_ref}", self.one_case),
                Route("/api/evidence/{evidence_id}", self.evidence),
                Route("/api/audit", self.audit_history),
                Route("/api/search", self.search, methods=["POST"]),
                Route("/api/session/ticket", self.exchange_ticket, methods=["POST"]),
                WebSocketRoute("/ws", self.socket),
                Mount("/static", app=DashboardFiles(directory=dashboards.STATIC_DIR)),
            ]
        )
        app.add_middleware(SecurityHeaders)
        return app


@contextlib.asynccontextmanager
async def serving(double: GatewayDouble) -> AsyncIterator[str]:
    """Serve the double with uvicorn on a free port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            double.app(),
            host="127.0.0.1",
            port=port,
            ws="websockets-sansio",
            lifespan="off",
            log_config=None,
            access_log=False,
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


# ---- fixtures: built from the contract's models, so their shapes are the real ones -------


def timeline_entry(
    ref: str,
    kind: TimelineKind,
    at: datetime,
    text: str,
    source: str | None = None,
    citizen_visible: bool = True,
    staff_note: str | None = None,
) -> TimelineEntryV1:
    return TimelineEntryV1(
        entry_id=stable_id("entry", ref, kind, source, at),
        case_ref=ref,
        kind=kind,
        at=at,
        text=text,
        source=source,
        citizen_visible=citizen_visible,
        staff_note=staff_note,
    )


def fixture_cases(now: datetime) -> list[CaseView]:
    """Four cases: three of ``co-ahmed`` in Coventry (one closed), one of ``co-jones``."""
    t0 = now - timedelta(days=3, hours=2)
    burglary = "WM-2026-0000412"
    bwv = EvidenceV1(
        evidence_id="EV-2026-00981",
        kind=EvidenceKind.BODY_WORN_VIDEO,
        captured_by="PC-2211",
        captured_at=t0 + timedelta(hours=5, minutes=12),
        sha256="3f" * 32,
        storage_uri="evidence://bwv/2026/11/EV-2026-00981.mp4",
        case_ref=burglary,
        bytes=184_320_000,
        content_type="video/mp4",
        filename="PC-2211 body-worn video, 14 Elm Grove.mp4",
        description="Walk-through of the rear door and kitchen",
    )
    photo = EvidenceV1(
        evidence_id="EV-2026-00990",
        kind=EvidenceKind.PHOTO,
        captured_by="citizen",
        captured_at=t0 + timedelta(days=1, hours=3),
        sha256="a1" * 32,
        storage_uri="evidence://portal/2026/11/EV-2026-00990.jpg",
        case_ref=burglary,
        bytes=2_480_112,
        content_type="image/jpeg",
        filename="Doorbell camera still.jpg",
    )
    timeline = [
        timeline_entry(
            burglary,
            TimelineKind.RECEIVED,
            t0,
            "We received your report of a burglary.",
            "call:CALL-2026-118204",
        ),
        timeline_entry(
            burglary,
            TimelineKind.ASSESSED,
            t0 + timedelta(minutes=9),
            "Your report has been assessed: an officer will visit.",
            "call:CALL-2026-118204",
        ),
        timeline_entry(
            burglary,
            TimelineKind.OFFICER_ASSIGNED,
            t0 + timedelta(hours=4),
            "An officer has been assigned to your case.",
            "incident:INC-2026-40811",
        ),
        timeline_entry(
            burglary,
            TimelineKind.OFFICER_ATTENDED,
            t0 + timedelta(hours=5),
            "An officer visited you.",
            "incident:INC-2026-40811",
        ),
        timeline_entry(
            burglary,
            TimelineKind.STATEMENT_TAKEN,
            t0 + timedelta(hours=5, minutes=40),
            "The officer took your statement.",
            "incident:INC-2026-40811",
        ),
        timeline_entry(
            burglary,
            TimelineKind.EVIDENCE_RECEIVED,
            t0 + timedelta(hours=5, minutes=50),
            "We received evidence for your case.",
            "evidence:EV-2026-00981",
        ),
        timeline_entry(
            burglary,
            TimelineKind.ALERT_RAISED,
            t0 + timedelta(days=1, hours=1),
            "An alert was raised about this case.",
            f"alert:{HOTLIST_ALERT}",
            citizen_visible=False,
            staff_note="Hotlist hit: the van seen at the address passed CAM-COV-07",
        ),
        timeline_entry(
            burglary,
            TimelineKind.EVIDENCE_RECEIVED,
            t0 + timedelta(days=1, hours=3),
            "We received evidence for your case.",
            "evidence:EV-2026-00990",
        ),
    ]
    views = [
        CaseView(
            case=CaseRow(
                case_ref=burglary,
                status=CaseStatus.UNDER_INVESTIGATION,
                category="burglary_dwelling",
                grade=2,
                officer_in_charge=CASE_OFFICER,
                attending=["PC-2211"],
                area=COVENTRY,
                opened_at=t0,
                updated_at=t0 + timedelta(days=1, hours=3),
                address="14 Elm Grove, Earlsdon, Coventry CV5 6AA",
                reporter=ReporterV1(
                    name="Sam Patel", phone="07700 900123", email="sam.patel@example.org"
                ),
                secret_hash="scrypt$never-sent",
                version=9,
            ),
            timeline=timeline,
            links=[
                CaseLinkV1(kind=LinkKind.CALL, id="CALL-2026-118204"),
                CaseLinkV1(kind=LinkKind.INCIDENT, id="INC-2026-40811"),
                CaseLinkV1(kind=LinkKind.ALERT, id=HOTLIST_ALERT),
                CaseLinkV1(kind=LinkKind.EVIDENCE, id=bwv.evidence_id),
                CaseLinkV1(kind=LinkKind.EVIDENCE, id=photo.evidence_id),
            ],
            evidence=[bwv, photo],
        ),
        _short_case(
            "WM-2026-0000431",
            "criminal_damage",
            CaseStatus.ASSESSED,
            CASE_OFFICER,
            now - timedelta(hours=6),
            "3 Albany Road, Coventry CV5 6JQ",
            COVENTRY,
        ),
        _short_case(
            "WM-2026-0000377",
            "theft_from_vehicle",
            CaseStatus.CLOSED,
            CASE_OFFICER,
            now - timedelta(days=12),
            "Car park, Spon End, Coventry",
            COVENTRY,
        ),
        _short_case(
            "WM-2026-0000420",
            "assault",
            CaseStatus.UNDER_INVESTIGATION,
            OTHER_CASE_OFFICER,
            now - timedelta(days=1),
            "Aston Road, Birmingham B6",
            BIRMINGHAM,
        ),
    ]
    return views


def _short_case(
    ref: str,
    category: str,
    status: CaseStatus,
    officer: str,
    opened: datetime,
    address: str,
    area: list[str],
) -> CaseView:
    entries = [
        timeline_entry(
            ref, TimelineKind.RECEIVED, opened, "We received your report.", f"call:CALL-{ref[-4:]}"
        ),
        timeline_entry(
            ref,
            TimelineKind.ASSESSED,
            opened + timedelta(minutes=20),
            "Your report has been assessed.",
            f"call:CALL-{ref[-4:]}",
        ),
    ]
    closed_at = None
    if status is CaseStatus.CLOSED:
        closed_at = opened + timedelta(days=2)
        entries += [
            timeline_entry(
                ref,
                TimelineKind.OUTCOME,
                closed_at,
                "No suspect could be identified.",
                f"incident:INC-{ref[-4:]}",
            ),
            timeline_entry(
                ref,
                TimelineKind.CLOSED,
                closed_at,
                "Your case is closed.",
                f"incident:INC-{ref[-4:]}",
            ),
        ]
    row = CaseRow(
        case_ref=ref,
        status=status,
        category=category,
        grade=3,
        officer_in_charge=officer,
        area=area,
        opened_at=opened,
        updated_at=entries[-1].at,
        closed_at=closed_at,
        address=address,
    )
    return CaseView(
        case=row,
        timeline=entries,
        links=[CaseLinkV1(kind=LinkKind.CALL, id=f"CALL-{ref[-4:]}")],
        evidence=[],
    )


def fixture_alerts(now: datetime) -> list[AlertV1]:
    """Three alerts for the desk: a hotlist hit (critical), a repeat caller, a geofence."""

    def alert(
        alert_id: str,
        rule: str,
        severity: Severity,
        title: str,
        summary: str,
        minutes_ago: int,
        lat: float,
        lon: float,
        address: str,
        area: list[str],
        details: dict[str, Any],
    ) -> AlertV1:
        return AlertV1(
            alert_id=alert_id,
            rule_id=rule,
            severity=severity,
            title=title,
            summary=summary,
            created_at=now - timedelta(minutes=minutes_ago),
            source_event_ids=[f"READ-{alert_id[-4:]}"],
            location=LocationV1(lat=lat, lon=lon, address=address),
            area=area,
            audience=AudienceV1(roles=[Role.RTIC_ANALYST, Role.SUPERVISOR]),
            details=details,
        )

    return [
        alert(
            "alert-repeat-19ab",
            "repeat_caller",
            Severity.HIGH,
            "Third call from the same address in 24 h",
            "Domestic abuse reported again at 12 Example Street",
            14,
            52.4862,
            -1.8904,
            "12 Example Street, Birmingham B7 4AA",
            ["E08000025", "E05001197"],
            {"why": "Three calls about this address since yesterday evening.", "count": 3},
        ),
        alert(
            "alert-geo-51c0",
            "geofence_entry",
            Severity.MEDIUM,
            "Tagged vehicle entered Walsall town centre zone",
            "Plate read inside a watched zone",
            9,
            52.5855,
            -1.9822,
            "Park Street, Walsall",
            ["E08000030", "E05001316"],
            {"why": "Zone watched until 23:00 (operation Larch)."},
        ),
        alert(
            HOTLIST_ALERT,
            "anpr_hotlist_hit",
            Severity.CRITICAL,
            "Hotlist plate BR0W 5ER seen (misread match)",
            "Firearms marker: plate read BROW5ER at CAM-COV-07",
            3,
            52.4081,
            -1.5106,
            "Earlsdon Avenue, Coventry",
            COVENTRY,
            {
                "why": "The plate read differs from the listed plate by one misread (0/O).",
                "vrm_read": "BROW5ER",
                "vrm_listed": "BR0W 5ER",
                "match": "misread",
                "reason": "firearms",
                "camera_id": "CAM-COV-07",
                "confidence": 0.91,
            },
        ),
    ]


def audit_record(
    at: datetime,
    actor: str,
    role: Role,
    action: AuditAction,
    alert_id: str,
    origin: str | None = None,
) -> AuditV1:
    return AuditV1(
        audit_id=stable_id("audit", at, actor, action, alert_id),
        at=at,
        actor=actor,
        role=role,
        action=action,
        object_type=AuditObject.ALERT,
        object_id=alert_id,
        origin=origin,
    )


def delivery_record(at: datetime, alert_id: str, *recipients: tuple[str, Role, str]) -> AuditV1:
    """A delivery as ``push/audit.py`` records it: one record per alert version, by the
    gateway, naming every client it reached."""
    return AuditV1(
        audit_id=stable_id("audit", "alert_delivered", alert_id, 1, *[r[0] for r in recipients]),
        at=at,
        actor="gateway",
        role="system",
        action=AuditAction.ALERT_DELIVERED,
        object_type=AuditObject.ALERT,
        object_id=alert_id,
        origin="gateway-1",
        detail={
            "version": 1,
            "count": len(recipients),
            "recipients": [
                {"sub": sub, "role": role.value, "origin": origin, "connection": f"c-{sub}"}
                for sub, role, origin in recipients
            ],
        },
    )


def fixture_audit(now: datetime) -> list[AuditV1]:
    """The hotlist alert's history so far: delivered to two desks, opened, acknowledged."""
    at = now - timedelta(minutes=3)
    return [
        delivery_record(
            at,
            HOTLIST_ALERT,
            ("analyst-1", Role.RTIC_ANALYST, "10.20.4.17"),
            ("sup-khan", Role.SUPERVISOR, "10.20.4.9"),
        ),
        audit_record(
            at + timedelta(seconds=41),
            "analyst-1",
            Role.RTIC_ANALYST,
            AuditAction.ALERT_OPENED,
            HOTLIST_ALERT,
            "10.20.4.17",
        ),
        audit_record(
            at + timedelta(seconds=75),
            "analyst-1",
            Role.RTIC_ANALYST,
            AuditAction.ALERT_ACK,
            HOTLIST_ALERT,
            "10.20.4.17",
        ),
    ]


def search_result(body: dict[str, Any], now: datetime) -> dict[str, Any]:
    """What a history search answers, in the shape ``push/api.py`` gives it (the lists
    as ``enrichers/search.py`` finds them): a plate finds a hotlist entry, two reads and
    a case; an address or a person finds nothing here."""
    results: dict[str, Any]
    cases: list[dict[str, Any]] = []
    if body.get("subject") == "plate":
        results = {
            "plate": "BR0W5ER",
            "hotlist": [
                {
                    "id": "HL-PNC-5521",
                    "vrm": "BR0W 5ER",
                    "reason": "firearms",
                    "source": "PNC",
                    "match": "exact",
                }
            ],
            "linked_incidents": [],
            "trail": [
                {
                    "read_id": "READ-7f3c",
                    "vrm": "BROW5ER",
                    "camera_id": "CAM-COV-07",
                    "read_at": (now - timedelta(minutes=3)).isoformat(),
                    "lat": 52.4081,
                    "lon": -1.5106,
                    "confidence": 0.91,
                },
                {
                    "read_id": "READ-6a01",
                    "vrm": "BR0W5ER",
                    "camera_id": "CAM-COV-02",
                    "read_at": (now - timedelta(hours=2)).isoformat(),
                    "lat": 52.4101,
                    "lon": -1.5302,
                    "confidence": 0.97,
                },
            ],
        }
        cases = [
            {
                "case_ref": "WM-2026-0000412",
                "status": "under_investigation",
                "category": "burglary_dwelling",
            }
        ]
    elif body.get("subject") == "person":
        results = {"person_id": body.get("value"), "markers": [], "calls": []}
    else:
        results = {
            "address_key": str(body.get("value")).lower(),
            "markers": [],
            "calls": [],
            "incidents": [],
        }
    return {
        **body,
        "results": results,
        "cases": cases,
        "audit_id": stable_id("audit", "search", body.get("value"), now),
    }
