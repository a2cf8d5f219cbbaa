"""The people's side HTTP API: cases, evidence, the audited history search, audit.

Routes (each with its role dependency, ``push.web.require``; errors are
``{"error": {"code", "message"}}``):

- ``GET /api/cases`` (officer, case officer, supervisor): the caller's cases,
  newest first (``?status=received,assessed`` narrows).
- ``GET /api/cases/{case_ref}`` (any role): the case, to whoever may see it
  (``push.access.may_see_case``): staff get the case, its timeline, links and
  evidence; a citizen gets the reference, status and their timeline, newest
  first. Anyone else, and a case that does not exist, get the same 404.
- ``GET /api/evidence/{evidence_id}`` (officer, case officer, supervisor, for
  the cases they may see): an item's metadata, with where it is stored.
- ``POST /api/search`` (analyst, supervisor): what history holds about a plate,
  a person or an address, and the cases linked to it; a ``reason`` and a
  ``reference`` are required.
- ``GET /api/audit?object_type=&object_id=`` (supervisor): an object's audit
  history; an RTIC analyst may read an alert's (who saw and acted on it), and
  nothing else's (403). A supervisor whose token names areas reads the history
  of a case, an item of evidence or an incident only if they may see it (its
  case, or the incident on the job board, in their areas); else 404, as for the
  case itself.

Every answer that shows a case, evidence, history or audit is itself audited
(``case_listed``, ``case_viewed``, ``evidence_downloaded``,
``history_search``, ``audit_viewed``), and the record is written before the
answer leaves: if it cannot be written, the caller gets 503 and nothing else.
So no search or view goes unrecorded.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Literal

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from push.access import (
    AUDIT_ROLES,
    CASE_LIST_ROLES,
    SEARCH_ROLES,
    STAFF_CASE_ROLES,
    CaseScope,
    may_see_case,
)
from push.audit import act_record
from push.jobs import may_see_incident
from push.verify import anpr_cameras
from push.web import _edge, _json, client_address, error_body, require
from records.protocols import CaseRow, Records
from rtic.casework import (
    AuditAction,
    AuditObject,
    CaseStatus,
    LinkKind,
    is_case_ref,
)
from rtic.errors import RticError
from rtic.plates import normalise_vrm
from rtic.schemas import Role
from rtic.tokens import Principal

log = logging.getLogger(__name__)

NOT_FOUND = ("not_found", "no such case")  # the same for a case that is not yours
MIN_REASON = 10
MIN_REFERENCE = 3
MAX_TEXT = 500
MAX_VALUE = 200
MAX_LINKED = 100  # calls and incidents whose cases a search looks up


class ApiError(Exception):
    """An answer other than 200: its status, code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> Response:
        return _json(error_body(self.code, self.message), self.status)


def _records(request: Request) -> Records:
    records = _edge(request).records
    if records is None:
        raise ApiError(503, "records_unavailable", "the gateway has no database")
    return records


async def _audit(
    request: Request,
    who: Principal,
    action: AuditAction,
    object_type: AuditObject,
    object_id: str,
    **kw: Any,
) -> str:
    """Record an act before answering; 503 (``ApiError``) if it cannot be recorded.
    Returns the record's id."""
    edge = _edge(request)
    record = act_record(
        who,
        action,
        object_type,
        object_id,
        edge.core.clock(),
        origin=client_address(request),
        **kw,
    )
    if edge.write_audit is None:
        edge.core.audit.act(record)  # no Kafka edge (tests, a tryout): the buffer
        return record.audit_id
    try:
        await edge.write_audit([record])
    except Exception as exc:
        log.error("could not write the audit record of a %s: %r", action.value, exc)
        raise ApiError(503, "audit_unavailable", "the audit trail cannot be written") from exc
    return record.audit_id


def _answering(endpoint: Any) -> Any:
    """Turn ``ApiError`` (and a store that does not answer) into the error answer."""

    @functools.wraps(endpoint)
    async def answer(request: Request, who: Principal) -> Response:
        try:
            response: Response = await endpoint(request, who)
        except ApiError as exc:
            return exc.response()
        except RticError as exc:  # a ServiceError of the database or Redis
            log.error("%s %s failed: %r", request.method, request.url.path, exc)
            return ApiError(503, "unavailable", "a store did not answer").response()
        return response

    return answer


def _case_row(row: CaseRow) -> dict[str, Any]:
    """A case as staff see it (never the citizen's secret)."""
    return row.model_dump(mode="json", exclude={"secret_hash"}, exclude_none=True)


# ---- cases ---------------------------------------------------------------------------


def _statuses(request: Request) -> list[CaseStatus] | None:
    raw = request.query_params.get("status")
    if not raw:
        return None
    try:
        return [CaseStatus(s.strip()) for s in raw.split(",") if s.strip()]
    except ValueError as exc:
        known = ", ".join(s.value for s in CaseStatus)
        raise ApiError(400, "bad_request", f"status must be one or more of {known}") from exc


@require(*CASE_LIST_ROLES)
@_answering
async def list_cases(request: Request, who: Principal) -> Response:
    """The caller's cases, newest first: a supervisor's areas (all if the token names
    none); an officer's cases they are in charge of or attending, and any their token
    names."""
    records, status = _records(request), _statuses(request)
    if who.role is Role.SUPERVISOR:
        rows = await records.cases.list_cases(areas=who.areas or None, status=status)
    else:
        rows = await records.cases.list_cases(officer=who.sub, status=status)
        known = {r.case_ref for r in rows}
        for ref in who.cases:
            row = None if ref in known else await records.cases.get_case(ref)
            if row is not None and (status is None or row.status in status):
                rows.append(row)
        rows.sort(key=lambda r: r.opened_at, reverse=True)
    rows = [r for r in rows if may_see_case(who, CaseScope.of_row(r))]
    await _audit(
        request,
        who,
        AuditAction.CASE_LISTED,
        AuditObject.CASE,
        "list",
        detail={"count": len(rows), "case_refs": [r.case_ref for r in rows]},
    )
    return _json({"cases": [_case_row(r) for r in rows]})


@require()
@_answering
async def get_case(request: Request, who: Principal) -> Response:
    """One case, to whoever may see it; 404 (the same) to anyone else."""
    ref = request.path_params["case_ref"]
    if who.role is Role.CITIZEN:
        from push.portal import citizen_case  # the portal's view (it builds on this module)

        return await citizen_case(request, who, ref)
    view = await _records(request).cases.view(ref) if is_case_ref(ref) else None
    if view is None or not may_see_case(who, CaseScope.of_row(view.case)):
        raise ApiError(404, *NOT_FOUND)
    await _audit(request, who, AuditAction.CASE_VIEWED, AuditObject.CASE, ref)
    return _json(
        {
            "case": _case_row(view.case),
            "timeline": [e.model_dump(mode="json", exclude_none=True) for e in view.timeline],
            "links": [link.model_dump(mode="json") for link in view.links],
            "evidence": [e.model_dump(mode="json", exclude_none=True) for e in view.evidence],
        }
    )


@require()
@_answering
async def get_evidence(request: Request, who: Principal) -> Response:
    """An item of evidence's metadata, to staff who may see its case; 404 to anyone else
    (citizens too: the force's storage locations are not theirs to see)."""
    evidence_id = request.path_params["evidence_id"]
    records = _records(request)
    found = await records.cases.get_evidence(evidence_id)
    if found is None or who.role not in STAFF_CASE_ROLES:
        raise ApiError(404, "not_found", "no such evidence")
    item, case_ref = found
    row = await records.cases.get_case(case_ref) if case_ref else None
    if row is None:
        visible = who.role is Role.SUPERVISOR and not who.areas  # not linked to a case yet
    else:
        visible = may_see_case(who, CaseScope.of_row(row))
    if not visible:
        raise ApiError(404, "not_found", "no such evidence")
    await _audit(
        request,
        who,
        AuditAction.EVIDENCE_DOWNLOADED,
        AuditObject.EVIDENCE,
        evidence_id,
        reference=case_ref,
        detail={"case_ref": case_ref, "storage_uri": item.storage_uri},
    )
    return _json(
        {"evidence": item.model_dump(mode="json", exclude_none=True), "case_ref": case_ref}
    )


# ---- the history search ----------------------------------------------------------------

Subject = Literal["plate", "person", "address"]
SUBJECT_OBJECTS = {
    "plate": AuditObject.PLATE,
    "person": AuditObject.PERSON,
    "address": AuditObject.ADDRESS,
}


class SearchRequest(BaseModel):
    """A valid search: what about, and why."""

    subject: Subject
    value: str
    reason: str
    reference: str


def _text_field(body: dict[str, Any], name: str, minimum: int, maximum: int, why: str) -> str:
    value = body.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ApiError(400, "bad_request", f"'{name}' is required: {why}")
    if not isinstance(value, str):
        raise ApiError(400, "bad_request", f"'{name}' must be text")
    value = value.strip()
    if len(value) < minimum:
        raise ApiError(400, "bad_request", f"'{name}' must be at least {minimum} characters: {why}")
    if len(value) > maximum:
        raise ApiError(400, "bad_request", f"'{name}' must be at most {maximum} characters")
    return value


def parse_search(body: Any) -> SearchRequest:
    """A search request's body, or ``ApiError`` 400 naming the field that is wrong."""
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    subject = body.get("subject")
    if subject not in SUBJECT_OBJECTS:
        raise ApiError(400, "bad_request", "'subject' is required: plate, person or address")
    value = _text_field(body, "value", 1, MAX_VALUE, f"the {subject} to search for")
    reason = _text_field(
        body, "reason", MIN_REASON, MAX_TEXT, "say why you search (it goes in the audit trail)"
    )
    reference = _text_field(
        body,
        "reference",
        MIN_REFERENCE,
        MAX_VALUE,
        "give the job, case or operation the search is for",
    )
    return SearchRequest(subject=subject, value=value, reason=reason, reference=reference)


def _search_object_id(search: SearchRequest) -> str:
    """The searched subject as the audit trail names it (plates normalised, so every
    search of one plate is found together)."""
    if search.subject == "plate":
        return normalise_vrm(search.value) or search.value
    return search.value


async def _linked_cases(records: Records, results: dict[str, Any]) -> list[dict[str, Any]]:
    """The cases the calls and incidents found are linked to."""
    wanted: list[tuple[LinkKind, str]] = []
    for call in results.get("calls", []):
        wanted.append((LinkKind.CALL, call["id"]))
    for incident in results.get("incidents", []):
        wanted.append((LinkKind.INCIDENT, incident["id"]))
    for vehicle in results.get("linked_incidents", []):
        if vehicle.get("incident_id"):
            wanted.append((LinkKind.INCIDENT, vehicle["incident_id"]))
    refs: list[str] = []
    for kind, source_id in wanted[:MAX_LINKED]:
        ref = await records.cases.case_for_link(kind, source_id)
        if ref is not None and ref not in refs:
            refs.append(ref)
    out = []
    for ref in refs:
        row = await records.cases.get_case(ref)
        if row is not None:
            out.append({"case_ref": ref, "status": row.status.value, "category": row.category})
    return out


def _counts(results: dict[str, Any]) -> dict[str, int]:
    return {k: len(v) for k, v in results.items() if isinstance(v, list)}


@require(*SEARCH_ROLES)
@_answering
async def search_history(request: Request, who: Principal) -> Response:
    """Search the history of a plate, a person or an address, for a stated reason."""
    try:
        body = await request.json()
    except ValueError as exc:
        raise ApiError(400, "bad_request", "the body must be JSON") from exc
    search = parse_search(body)
    edge = _edge(request)
    if edge.search is None:
        raise ApiError(503, "history_unavailable", "the gateway cannot read history")
    records = _records(request)
    results = await edge.search.search(search.subject, search.value, edge.core.clock())
    cases = await _linked_cases(records, results)
    audit_id = await _audit(
        request,
        who,
        AuditAction.HISTORY_SEARCH,
        SUBJECT_OBJECTS[search.subject],
        _search_object_id(search),
        reason=search.reason,
        reference=search.reference,
        detail={
            "subject": search.subject,
            "value": search.value,
            "found": _counts(results),
            "cases": [c["case_ref"] for c in cases],
        },
    )
    return _json({**search.model_dump(), "results": results, "cases": cases, "audit_id": audit_id})


# ---- audit histories ------------------------------------------------------------------


async def _may_read_history(
    request: Request, records: Records, who: Principal, object_type: AuditObject, object_id: str
) -> bool:
    """Whether ``who`` may read this object's audit history: a case only if they may
    see it; a supervisor whose token names areas, an item of evidence or an incident
    only if they may see its case or the incident (what the history names is theirs
    to see, no more)."""
    if object_type is AuditObject.CASE:
        row = await records.cases.get_case(object_id) if is_case_ref(object_id) else None
        return row is not None and may_see_case(who, CaseScope.of_row(row))
    if who.role is not Role.SUPERVISOR or not who.areas:
        return True
    if object_type is AuditObject.EVIDENCE:
        found = await records.cases.get_evidence(object_id)
        row = await records.cases.get_case(found[1]) if found and found[1] else None
        return row is not None and may_see_case(who, CaseScope.of_row(row))
    if object_type is AuditObject.INCIDENT:
        board = getattr(getattr(request.app.state, "dispatch", None), "incidents", None)
        incident = board.get(object_id) if board is not None else None
        return incident is not None and may_see_incident(who, incident)
    return True


@require(*AUDIT_ROLES, Role.RTIC_ANALYST)
@_answering
async def audit_history(request: Request, who: Principal) -> Response:
    """An object's audit history, oldest first (a case: only one the supervisor may see;
    an analyst: alerts only, the desk's alert detail)."""
    params = request.query_params
    try:
        object_type = AuditObject(params.get("object_type", ""))
    except ValueError as exc:
        known = ", ".join(o.value for o in AuditObject)
        raise ApiError(400, "bad_request", f"'object_type' must be one of {known}") from exc
    if who.role not in AUDIT_ROLES and object_type is not AuditObject.ALERT:
        raise ApiError(403, "forbidden", f"a {who.role.value} may read an alert's audit only")
    object_id = params.get("object_id", "").strip()
    if not object_id:
        raise ApiError(400, "bad_request", "'object_id' is required")
    records = _records(request)
    if not await _may_read_history(request, records, who, object_type, object_id):
        raise ApiError(404, *NOT_FOUND)
    found = await records.audit.for_object(object_type, object_id)
    await _audit(
        request,
        who,
        AuditAction.AUDIT_VIEWED,
        AuditObject.AUDIT,
        f"{object_type.value}:{object_id}",
        detail={"object_type": object_type.value, "object_id": object_id, "count": len(found)},
    )
    return _json({"records": [r.model_dump(mode="json", exclude_none=True) for r in found]})


def api_routes() -> list[BaseRoute]:
    """The API's routes (``push.web.routes`` adds them to the app)."""
    return [
        Route("/api/cases", list_cases),
        Route("/api/cases/{case_ref}", get_case),
        Route("/api/evidence/{evidence_id}", get_evidence),
        Route("/api/search", search_history, methods=["POST"]),
        Route("/api/audit", audit_history),
        Route("/api/anpr/cameras", anpr_cameras),  # push/verify.py
    ]
