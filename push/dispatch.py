"""The gateway's jobs: the boards fed from Kafka, the officers' and the desk's messages
about jobs, their frames, and the ``/api/incidents`` and ``/api/officers`` routes.

Where it sits::

    rtic.incidents.v1, rtic.officer-locations.v1, rtic.enriched.v1
        --> KafkaEdge --> Dispatch.read --> boards (push/jobs.py) --> frames to clients
    job_update, assign, position (Fanout.handle) --> Dispatch --> once (Redis)
        --> rtic.incidents.v1 / rtic.officer-locations.v1 --> read back as above

The boards are the gateway's memory of jobs (``push/jobs.py``). They change only
from what the gateway reads, its own writes included: an officer's update or an
assignment is written to ``rtic.incidents.v1`` and shows on the boards (and on
every gateway's) when it is read back, a few tens of milliseconds later.

**Rebuilt at start.** The Kafka edge reads ``rtic.incidents.v1`` and
``rtic.officer-locations.v1`` again from ``gateway_jobs_replay`` messages before
their end (per partition), then on live, so a restarted gateway still knows the
open jobs and where the officers were. Until that replay is read
(``replayed``), job updates and assignments are answered with the error
``unavailable`` (the device keeps the update and sends it again), never with
``not_found``. Area codes of a replayed incident or officer come from the
gateway's own boundaries (``area_codes``, the worker's ``GeoIndex``); markers and
the history summary come from ``rtic.enriched.v1``, read from its end: after a
restart an incident shows them again from its next enriched event (partial).

**Applied once.** Each ``update_id`` (and ``assign_id``) is claimed in Redis
(``SET NX``, the key ``<prefix>rtic:jobs:once:...``): ``pending`` for
``PENDING_S`` while the event is written, then ``done`` for
``job_update_ttl_days``. A repeated id that is done is answered
``duplicate: true`` and nothing is written; one still pending is answered with
the error ``in_progress`` (send it again in a moment); a write that fails
releases the claim and is answered ``unavailable``. A gateway that dies between
the write and ``done`` lets the claim lapse and may write the event a second
time: readers drop it by its ``update_id`` (the boards, the case book's entry
ids), so it still shows once.

Frames (docs/contract.md): after ``subscribe`` an officer gets ``jobs`` (their
open jobs) and an analyst or supervisor ``incidents`` and ``officers``
(a supervisor's narrowed by the areas of their token); then ``job``,
``incident`` and ``officer`` on every change. ``job`` and ``incident`` frames
are never dropped silently (a client whose queue is full is closed and
subscribes again); ``officer`` frames are best-effort, like map events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal, Protocol

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from push.audit import act_record
from push.fanout import Client, Fanout, frame
from push.jobs import (
    TRAVEL_BASIS,
    AreaCodes,
    BoardChange,
    Incident,
    IncidentBoard,
    Officer,
    OfficerBoard,
    assign_event,
    candidates,
    job_update_event,
    may_see_incident,
    may_see_officer,
    officer_view,
    position_ping,
    workload,
)
from push.web import _json, error_body, require
from rtic.casework import AuditAction, AuditObject
from rtic.client_messages import Assign, BadClientMessage, JobUpdate, PositionPing
from rtic.schemas import IncidentEventV1, OfficerLocationV1, Role
from rtic.tokens import Principal

log = logging.getLogger(__name__)

PENDING_S = 30  # how long a claimed id waits for its write before another may try
DESK_ROLES = frozenset({Role.RTIC_ANALYST, Role.SUPERVISOR})
MAX_CANDIDATES = 50
ReadKind = Literal["incident", "officer_location", "enriched"]
Claim = Literal["new", "pending", "done"]


class OnceStore(Protocol):
    """Where update and assignment ids are claimed, so each is applied once."""

    async def claim(self, key: str, pending_s: int) -> Claim:
        """``new`` (claimed now, pending), ``pending`` (claimed by someone else, not
        done yet) or ``done``; raises when the store does not answer."""
        ...

    async def done(self, key: str, ttl_s: int) -> None:
        """Mark a claimed id done, for ``ttl_s``."""
        ...

    async def release(self, key: str) -> None:
        """Give a claim up (its write failed): the id may be sent again."""
        ...


class RedisOnce:
    """``OnceStore`` in Redis: ``SET key pending NX EX``, then ``SET key done EX``."""

    def __init__(self, redis: Any, prefix: str = "") -> None:
        self.redis = redis
        self.base = f"{prefix}rtic:jobs:once:"

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "", timeout: float = 1.0) -> RedisOnce:
        from enrichers.redis_io import connect

        return cls(connect(url, timeout), prefix)

    async def claim(self, key: str, pending_s: int) -> Claim:
        if await self.redis.set(self.base + key, b"pending", nx=True, ex=pending_s):
            return "new"
        state = await self.redis.get(self.base + key)
        if state is None:  # lapsed between the two calls: try once more
            ok = await self.redis.set(self.base + key, b"pending", nx=True, ex=pending_s)
            return "new" if ok else "pending"
        return "done" if state == b"done" else "pending"

    async def done(self, key: str, ttl_s: int) -> None:
        await self.redis.set(self.base + key, b"done", ex=ttl_s)

    async def release(self, key: str) -> None:
        await self.redis.delete(self.base + key)

    async def close(self) -> None:
        await self.redis.aclose()


class MemoryOnce:
    """``OnceStore`` in a dict (unit tests; it forgets at restart). ``fail``: raise."""

    def __init__(self) -> None:
        self.states: dict[str, str] = {}
        self.fail = False

    async def claim(self, key: str, pending_s: int) -> Claim:
        if self.fail:
            raise ConnectionError("once store away")
        state = self.states.get(key)
        if state is None:
            self.states[key] = "pending"
            return "new"
        return "done" if state == "done" else "pending"

    async def done(self, key: str, ttl_s: int) -> None:
        self.states[key] = "done"

    async def release(self, key: str) -> None:
        self.states.pop(key, None)


class JobSink(Protocol):
    """Where job updates, assignments and positions are written (the Kafka edge)."""

    async def write_incident(self, event: dict[str, Any]) -> None:
        """Write an incident event to ``rtic.incidents.v1``; return once the broker has
        it; raise if it does not."""
        ...

    def write_position(self, ping: dict[str, Any]) -> None:
        """Write a ping to ``rtic.officer-locations.v1`` in the background (the core's
        sink ``settled`` waits for it before the reply goes)."""
        ...


def _error(code: str, message: str, **ids: Any) -> bytes:
    return frame("error", {"code": code, "message": message, **ids})


class Dispatch:
    """The boards and the jobs' part of the gateway, plugged into the fan-out core.

    Args:
        core: the fan-out core (its clients, clock and handlers).
        sink: where updates are written (the Kafka edge).
        once: where update ids are claimed (Redis).
        targets: attendance targets in minutes by grade.
        area_codes: the area codes of a point (None: from enriched events only).
        ttl_days: how long an applied id is remembered.
    """

    def __init__(
        self,
        core: Fanout,
        sink: JobSink,
        once: OnceStore | None,
        targets: Mapping[int, int],
        area_codes: AreaCodes | None = None,
        ttl_days: int = 7,
    ) -> None:
        self.core = core
        self.sink = sink
        self.once = once
        self.incidents = IncidentBoard(targets, area_codes)
        self.officers = OfficerBoard(area_codes)
        self.ttl_s = int(timedelta(days=ttl_days).total_seconds())
        self.ready = False  # the replay at start is read (``replayed``)
        self._tasks: set[asyncio.Task[None]] = set()
        core.handle("job_update", self.on_job_update)
        core.handle("assign", self.on_assign)
        core.handle("position", self.on_position)
        core.on_subscribe(self.snapshots)

    def use_area_codes(self, area_codes: AreaCodes | None) -> None:
        """Compute area codes with this (the gateway loads its boundaries at start)."""
        self.incidents.area_codes = area_codes
        self.officers.area_codes = area_codes

    def replayed(self) -> None:
        """The Kafka edge has read the boards' topics up to where they ended at start."""
        if not self.ready:
            self.ready = True
            log.info(
                "jobs: %d incidents and %d officers on the boards",
                len(self.incidents),
                len(self.officers),
            )

    async def close(self) -> None:
        """Let the writes under way finish (bounded)."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)

    # ---- Kafka -> boards -> clients ------------------------------------------------------

    def read(self, kind: ReadKind, message: dict[str, Any]) -> None:
        """One message the Kafka edge read: an incident event, a ping, or an enriched
        event (only its enrichment is taken: the raw topics carry the lifecycle)."""
        if kind == "incident":
            self._read_incident(message)
        elif kind == "officer_location":
            self._read_ping(message, None)
        else:
            self._read_enriched(message)

    def _read_incident(self, message: dict[str, Any]) -> None:
        try:
            event = IncidentEventV1.model_validate(message)
        except ValidationError:
            return  # the worker dead-letters it; nothing for the board
        self._expire()
        change = self.incidents.apply(event)
        if change is not None:
            self._changed(change)

    def _read_ping(self, message: dict[str, Any], areas: list[str] | None) -> None:
        try:
            ping = OfficerLocationV1.model_validate(message)
        except ValidationError:
            return
        officer = self.officers.apply(ping, areas)
        if officer is not None:
            self._push_officer(officer)

    def _read_enriched(self, message: dict[str, Any]) -> None:
        enrichment = message.get("enrichment")
        if not isinstance(enrichment, dict):
            return
        kind = enrichment.get("kind")
        if kind == "incident" and isinstance(message.get("incident_id"), str):
            incident = self.incidents.enrich(message["incident_id"], enrichment)
            if incident is not None:
                self._push_incident(incident, frozenset(incident.units))
        elif kind == "officer_location" and isinstance(message.get("officer_id"), str):
            officer = self.officers.get(message["officer_id"])
            codes = enrichment.get("area_codes")
            if officer is not None and isinstance(codes, list) and officer.area != codes:
                if message.get("at") == officer.at.isoformat() or not officer.area:
                    officer.area = [str(c) for c in codes]

    def _expire(self) -> None:
        for gone in self.incidents.expire(self.core.clock()):
            log.debug("jobs: %s closed an hour ago, off the board", gone.incident_id)

    def _changed(self, change: BoardChange) -> None:
        incident = change.incident
        self._push_incident(incident, change.units_before)
        # The officers whose jobs changed: their ``jobs`` list on the desk.
        touched = set(change.added_units)
        if incident.status == "closed":
            touched |= set(incident.units)
        for officer_id in sorted(touched):
            officer = self.officers.get(officer_id)
            if officer is not None:
                self._push_officer(officer)

    def _push_incident(self, incident: Incident, units_before: frozenset[str]) -> None:
        view = self.incidents.view(incident)
        desk: bytes | None = None
        for client in list(self.core.clients):
            if client.subscription is None:
                continue
            who = client.principal
            if who.role in DESK_ROLES:
                if may_see_incident(who, incident):
                    desk = desk or frame("incident", {"incident": view})
                    client.offer_case(desk)
            elif who.role is Role.OFFICER and who.sub in incident.units:
                if who.sub not in units_before:
                    change = "assigned"
                elif incident.status == "closed":
                    change = "closed"
                else:
                    change = "updated"
                client.offer_case(frame("job", {"job": view, "change": change}))

    def _push_officer(self, officer: Officer) -> None:
        data: bytes | None = None
        for client in list(self.core.clients):
            if client.subscription is None or client.principal.role not in DESK_ROLES:
                continue
            if may_see_officer(client.principal, officer):
                data = data or frame("officer", {"officer": officer_view(officer, self.incidents)})
                client.offer_event(data)

    def snapshots(self, client: Client) -> list[bytes]:
        """The frames a client gets after ``subscribe``: an officer's open jobs; the
        desk's incidents and officers."""
        who = client.principal
        self._expire()
        if who.role is Role.OFFICER:
            jobs = [self.incidents.view(i) for i in self.incidents.jobs_of(who.sub)]
            return [frame("jobs", {"jobs": jobs})]
        if who.role in DESK_ROLES:
            incidents = [self.incidents.view(i) for i in self.incidents.visible_to(who)]
            officers = [officer_view(o, self.incidents) for o in self.officers.visible_to(who)]
            return [
                frame("incidents", {"incidents": incidents}),
                frame("officers", {"officers": officers}),
            ]
        return []

    # ---- client messages -------------------------------------------------------------------

    def _not_ready(self, **ids: Any) -> bytes | None:
        if self.ready:
            return None
        return _error(
            "unavailable", "the gateway is still reading the jobs: send it again in a moment", **ids
        )

    def on_job_update(self, client: Client, msg: JobUpdate) -> bytes | None:
        """``job_update``: an officer's update of one of their jobs, applied once."""
        who = client.principal
        if who.role is not Role.OFFICER:
            raise BadClientMessage("forbidden", "only an officer updates their jobs", "job_update")
        ids = {"update_id": msg.update_id, "incident_id": msg.incident_id}
        waiting = self._not_ready(**ids)
        if waiting is not None:
            return waiting
        incident = self.incidents.get(msg.incident_id)
        if incident is None or who.sub not in incident.units:
            client.errors += 1
            return _error("not_found", "no such job of yours", **ids)
        event = job_update_event(incident, msg, who, self.core.clock())
        ack = frame("job_update_ack", {"update_id": msg.update_id, "duplicate": False})
        again = frame("job_update_ack", {"update_id": msg.update_id, "duplicate": True})
        self._spawn(self._once(client, f"job:{who.sub}:{msg.update_id}", event, ack, again, ids))
        return None  # answered when written

    def on_assign(self, client: Client, msg: Assign) -> bytes | None:
        """``assign``: the desk gives an incident to an officer (analysts; supervisors
        within the areas of their token)."""
        who = client.principal
        if who.role not in DESK_ROLES:
            raise BadClientMessage("forbidden", f"a {who.role.value} cannot assign", "assign")
        ids = {"assign_id": msg.assign_id, "incident_id": msg.incident_id}
        waiting = self._not_ready(**ids)
        if waiting is not None:
            return waiting
        incident = self.incidents.get(msg.incident_id)
        if incident is None or not may_see_incident(who, incident):
            client.errors += 1
            return _error("not_found", "no such incident", **ids)
        if msg.alert_id and not self.core.may_see(client, msg.alert_id):
            client.errors += 1  # an alert named must be one they may see (as for ``ack``)
            return _error("not_found", "no such alert", alert_id=msg.alert_id, **ids)
        if incident.status == "closed":
            client.errors += 1
            return _error("closed", "the incident is closed", **ids)
        if self.officers.get(msg.officer_id) is None and not self._connected(msg.officer_id):
            client.errors += 1
            return _error("not_found", "no such officer", officer_id=msg.officer_id, **ids)
        assigned = {**ids, "officer_id": msg.officer_id}
        if msg.officer_id in incident.units:
            return frame("assigned", {**assigned, "duplicate": True})
        event = assign_event(incident, msg, who, self.core.clock())
        ok = frame("assigned", {**assigned, "duplicate": False})
        again = frame("assigned", {**assigned, "duplicate": True})
        self._spawn(self._once(client, f"assign:{msg.assign_id}", event, ok, again, ids))
        return None

    def _connected(self, officer_id: str) -> bool:
        return any(
            c.principal.role is Role.OFFICER and c.principal.sub == officer_id
            for c in self.core.clients
        )

    def on_position(self, client: Client, msg: PositionPing) -> bytes:
        """``position``: the device's position and status, for the token's own officer."""
        who = client.principal
        if who.role is not Role.OFFICER:
            raise BadClientMessage(
                "forbidden", "only an officer's device sends positions", "position"
            )
        known = self.officers.get(who.sub)
        ping = position_ping(
            who,
            msg.lat,
            msg.lon,
            msg.at,
            self.core.clock(),
            msg.status,
            known.callsign if known else None,
            msg.accuracy_m,
        )
        self.sink.write_position(ping)
        return frame("position_ack", {"at": ping["at"]})

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _once(
        self,
        client: Client,
        key: str,
        event: dict[str, Any],
        ok: bytes,
        again: bytes,
        ids: dict[str, Any],
    ) -> None:
        """Claim the id, write the event, mark it done, answer the client."""
        if self.once is None:
            client.send_now(_error("unavailable", "the gateway has no Redis", **ids))
            return
        try:
            claim = await self.once.claim(key, PENDING_S)
        except Exception as exc:
            log.error("jobs: could not claim %s: %r", key, exc)
            client.send_now(_error("unavailable", "cannot record updates now: try again", **ids))
            return
        if claim == "done":
            client.send_now(again)
            return
        if claim == "pending":
            client.send_now(
                _error("in_progress", "this update is being recorded: send it again", **ids)
            )
            return
        try:
            await self.sink.write_incident(event)
        except Exception as exc:
            log.error("jobs: could not write %s: %r", key, exc)
            with contextlib.suppress(Exception):
                await self.once.release(key)
            client.send_now(_error("unavailable", "cannot record updates now: try again", **ids))
            return
        try:
            await self.once.done(key, self.ttl_s)
        except Exception as exc:  # the claim lapses; a resend is dropped by readers
            log.warning("jobs: %s written, but not marked done: %r", key, exc)
        self._audit(client, event)
        client.send_now(ok)

    def _audit(self, client: Client, event: dict[str, Any]) -> None:
        """Record a written job update or assignment in the audit trail (once: only the
        write that claimed the id gets here)."""
        assigning = "assign_id" in event
        detail = {
            k: event[k]
            for k in ("update_id", "assign_id", "event", "status", "result", "alert_id")
            if event.get(k) is not None
        }
        if assigning:
            detail["officer"] = (event.get("units") or [None])[0]
        self.core.audit.act(
            act_record(
                client.principal,
                AuditAction.JOB_ASSIGN if assigning else AuditAction.JOB_UPDATE,
                AuditObject.INCIDENT,
                str(event["incident_id"]),
                self.core.clock(),
                origin=client.origin,
                reason=event.get("assign_note") or event.get("note"),
                detail=detail,
            )
        )


# ---- HTTP ------------------------------------------------------------------------------


def _dispatch(request: Request) -> Dispatch | None:
    found: Dispatch | None = getattr(request.app.state, "dispatch", None)
    return found


def _unavailable() -> Response:
    return _json(error_body("unavailable", "the gateway keeps no job boards"), 503)


@require(*DESK_ROLES)
async def list_incidents(request: Request, who: Principal) -> Response:
    """The incident board as this caller may see it (a supervisor: their areas)."""
    jobs = _dispatch(request)
    if jobs is None:
        return _unavailable()
    jobs._expire()
    shown = [jobs.incidents.view(i) for i in jobs.incidents.visible_to(who)]
    return _json({"incidents": shown, "complete": jobs.ready})


@require(*DESK_ROLES)
async def incident_candidates(request: Request, who: Principal) -> Response:
    """The nearest available officers to an incident, with rough travel times."""
    jobs = _dispatch(request)
    if jobs is None:
        return _unavailable()
    raw = request.query_params.get("limit", "5")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_CANDIDATES:
        message = f"limit must be a whole number from 1 to {MAX_CANDIDATES}"
        return _json(error_body("bad_request", message), 400)
    incident = jobs.incidents.get(request.path_params["incident_id"])
    if incident is None or not may_see_incident(who, incident):
        return _json(error_body("not_found", "no such incident"), 404)
    found = candidates(incident, jobs.officers, jobs.core.clock(), int(raw), who)
    return _json(
        {"incident_id": incident.incident_id, "candidates": found, "travel_basis": TRAVEL_BASIS}
    )


@require(*DESK_ROLES)
async def officers_workload(request: Request, who: Principal) -> Response:
    """Per officer (a supervisor: those last seen in their areas; an analyst: all): open
    jobs, jobs given today, status and last ping."""
    jobs = _dispatch(request)
    if jobs is None:
        return _unavailable()
    rows = workload(who, jobs.officers, jobs.incidents, jobs.core.clock())
    return _json({"officers": rows})


def dispatch_routes() -> list[BaseRoute]:
    """The jobs' routes (``push.web.routes`` adds them)."""
    return [
        Route("/api/incidents", list_incidents),
        Route("/api/incidents/{incident_id}/candidates", incident_candidates),
        Route("/api/officers/workload", officers_workload),
    ]


def attendance_targets_from(settings: Any) -> dict[int, int]:
    """The attendance targets of the deployment's ``response_promise`` rule: the rule
    file's (``RTIC_RULES_FILE``) if it sets them, else the catalogue's defaults."""
    from push.jobs import attendance_targets
    from rules.catalogue import default_rules
    from rules.config import load_rule_file
    from rules.deadlines import ResponsePromiseParams

    rules = default_rules(settings)
    if settings.rules_file is not None:
        try:
            rules = load_rule_file(settings.rules_file.read_text(), rules, str(settings.rules_file))
        except Exception as exc:  # the worker reports the file's problems; defaults here
            log.error("jobs: rule file not read (%s): default attendance targets", exc)
    params = next(r.spec.params for r in rules if r.spec.rule_id == "response_promise")
    assert isinstance(params, ResponsePromiseParams)
    return attendance_targets(params.attend_within_s, params.grade2_attend_within_s)


__all__ = [
    "Dispatch",
    "JobSink",
    "MemoryOnce",
    "OnceStore",
    "RedisOnce",
    "attendance_targets_from",
    "dispatch_routes",
]
