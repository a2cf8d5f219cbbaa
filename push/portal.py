"""The citizen portal's HTTP side: report online, a session from reference and secret,
the citizen's view of their case (with the next-contact estimate) and witness statements.

Routes (``portal_routes``; each declares who may call it):

- ``POST /api/portal/reports`` (public, rate limited per client address): a report
  (``ReportRequest``). The case reference is taken from the case sequence
  (``CaseStore.next_case_number``, the case worker's own) and the force code; a secret
  is made (``make_secret``: four groups of four from an alphabet without look-alikes,
  80 bits) and only its scrypt hash is kept (``portal_credentials``). The report enters
  ``rtic.calls.v1`` as a call (channel ``online``, ``call_id`` ``online-<case_ref>``,
  ``case_ref``, the reporter as ``caller``), then an incident ``created`` event for it
  (``INC-<case_ref>``, graded ``online_report_grade``, the call linked) onto
  ``rtic.incidents.v1``, so the desk's queue has it; the answer (201) comes once Kafka has it:
  ``{case_ref, secret, token, call_id, notice}``, the token a ``citizen`` token naming
  that case alone.
- ``POST /api/portal/session`` (public, rate limited): ``{case_ref, secret}`` -> 200
  ``{token}``; 401 ``invalid_credentials`` alike for an unknown reference and a wrong
  secret (an unknown reference costs the same scrypt as a known one).
- ``GET /api/cases/{case_ref}`` as a citizen (``push.api.get_case`` hands citizens to
  ``citizen_case``): the case's reference, status and their timeline, newest first,
  and ``next_contact`` (``cases.contact``). Before the case worker has written the
  case, the citizen of a report made here gets a "received" view (``pending: true``).
- ``POST /api/cases/{case_ref}/statements`` (the case's citizen; staff who may see the
  case; rate limited): a witness statement (``StatementRequest``, the declaration
  required) saved as version 1, or with ``statement_id`` as the next version of that
  statement (an amendment: never an overwrite; only its author may amend it). 201
  ``{statement_id, version, at, on_timeline}``; the metadata goes to
  ``rtic.statements.v1`` and the case worker adds the timeline entry.
- ``GET /api/cases/{case_ref}/statements``: every version, oldest first: a citizen
  gets their own statements, staff every statement of the case.

Who may not see a case gets 404, the same as for a case that does not exist.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import anyio
import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cases.contact import WINDOW, NextContact, estimate_next_contact
from cases.table import CASE_CATEGORIES, CHANNEL_WORDS
from push.access import STAFF_CASE_ROLES, CaseScope, citizen_timeline, may_see_case
from push.api import NOT_FOUND, ApiError, _answering, _audit, _records
from push.ratelimit import rate_limited
from push.web import _edge, _json, client_address, public, require
from records.protocols import FIRST_CONTACT_KINDS, PortalCredential, Records, StatementRow
from rtic.casework import (
    AuditAction,
    AuditObject,
    CaseStatus,
    StatementV1,
    format_case_ref,
    is_case_ref,
)
from rtic.errors import RticError, ServiceError
from rtic.schemas import CallV1, Channel, IncidentEventV1, Lat, Lon, Role
from rtic.settings import Settings
from rtic.tokens import Principal, TokenKeys, issue_token
from rtic.topics import Topics

log = logging.getLogger(__name__)

Publish = Callable[[str, str, bytes], Awaitable[None]]  # (topic, key, value): Kafka has it

# The call categories a citizen may report: the contract's, and the crimes the case
# module knows. Emergencies are not reported here (the page and the receipt say 999).
REPORT_CATEGORIES: tuple[str, ...] = tuple(
    dict.fromkeys(
        [
            "burglary",
            "theft",
            "vehicle_crime",
            "criminal_damage",
            "assault",
            "robbery",
            "asb",
            "harassment",
            "hate_crime",
            "fraud",
            "domestic_abuse",
            "stalking",
            "sexual_offence",
            "concern_for_safety",
            "missing_person",
            "traffic",
            "suspicious_vehicle",
            "other",
            *sorted(CASE_CATEGORIES),
        ]
    )
)
EMERGENCY_NOTICE = (
    "If a crime is happening now, or someone is in danger or hurt, call 999. "
    "This service is not watched all the time."
)
SECRET_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no I, O, 0, 1: nothing to mistake
SECRET_GROUPS, SECRET_GROUP_LEN = 4, 4
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LEN = 2**14, 8, 1, 32
INVALID = ("invalid_credentials", "that reference and secret do not match a report")
NO_STATEMENT = ("not_found", "no such statement")
FUTURE_SLACK = timedelta(minutes=5)
PENDING_TEXT = "We have received your {how}. It will show here in full shortly."

# ---- the secret ---------------------------------------------------------------------------


def make_secret() -> str:
    """A new secret, easy to type on a phone: ``ABCD-EFGH-JKLM-NPQR`` (80 bits)."""
    groups = (
        "".join(secrets.choice(SECRET_ALPHABET) for _ in range(SECRET_GROUP_LEN))
        for _ in range(SECRET_GROUPS)
    )
    return "-".join(groups)


def canonical_secret(typed: str) -> str:
    """A secret as typed (any case, spaces or dashes anywhere) in its stored form."""
    return "".join(c for c in typed.upper() if c.isalnum())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$salt$hash``: the parameters and a random salt kept with the hash."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(
        canonical_secret(secret).encode(),
        salt=salt,
        n=SCRYPT_N,
        r=SCRYPT_R,
        p=SCRYPT_P,
        dklen=SCRYPT_LEN,
        maxmem=64 * 1024 * 1024,
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def secret_matches(secret: str, stored: str) -> bool:
    """Whether ``secret`` is the one ``stored`` (a ``hash_secret`` string) was made from;
    False for a stored value it cannot read."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        want = _unb64(digest)
        got = hashlib.scrypt(
            canonical_secret(secret).encode(),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(want),
            maxmem=64 * 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


# A hash no secret matches, checked when the reference is unknown (the same work).
_DUMMY_HASH = hash_secret("not a secret anyone holds", salt=b"\0" * 16)


# ---- what the routes need -------------------------------------------------------------------


class Portal:
    """The portal's part of the gateway, kept on ``app.state.portal``.

    Args:
        settings: the force code, the token lifetime, the topic prefix.
        keys: the token key ring (citizen tokens are signed with its current key).
        publish: writes one message and returns once Kafka has it (``KafkaEdge.publish``);
            None: nothing can be published (reports and statements answer 503).
    """

    def __init__(self, settings: Settings, keys: TokenKeys | str, publish: Publish | None) -> None:
        self.settings = settings
        self.keys = keys
        self.publish = publish
        self.topics = Topics.with_prefix(settings.topic_prefix)

    async def send(self, topic: str, key: str, value: BaseModel) -> None:
        if self.publish is None:
            raise ServiceError("the gateway is not connected to Kafka")
        await self.publish(
            topic, key, orjson.dumps(value.model_dump(mode="json", exclude_none=True))
        )

    def citizen_token(self, case_ref: str, now: datetime) -> str:
        return issue_token(
            self.keys,
            sub=citizen_subject(case_ref),
            role=Role.CITIZEN,
            now=now,
            ttl_seconds=self.settings.token_ttl_seconds,
            cases=[case_ref],
        )


def citizen_subject(case_ref: str) -> str:
    """The token subject of a case's citizen (the author of their statements)."""
    return f"citizen:{case_ref}"


def portal_of(conn: HTTPConnection) -> Portal:
    portal = getattr(conn.app.state, "portal", None)
    if not isinstance(portal, Portal):
        raise ApiError(503, "portal_unavailable", "the portal is not set up on this gateway")
    return portal


async def _body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError as exc:
        raise ApiError(400, "bad_request", "the body must be JSON") from exc


def _explain(exc: ValidationError) -> str:
    """The first thing wrong with a body, located by field, in one sentence."""
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"])
    if first["type"] == "value_error":
        return str(first["ctx"]["error"])
    return f"'{where}': {first['msg']}" if where else str(first["msg"])


def _parse(model: type[BaseModel], body: Any) -> Any:
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise ApiError(400, "bad_request", _explain(exc)) from exc


def _public_answering(endpoint: Any) -> Any:
    """``_answering`` for a public route (no principal)."""

    async def with_nobody(request: Request, _who: Any) -> Response:
        response: Response = await endpoint(request)
        return response

    answered = _answering(with_nobody)

    async def answer(request: Request) -> Response:
        response: Response = await answered(request, None)
        return response

    answer.__name__ = answer.__qualname__ = endpoint.__name__
    answer.__doc__ = endpoint.__doc__
    return answer


# ---- reports ----------------------------------------------------------------------------

Text = Annotated[str, Field(min_length=1, max_length=4000)]
Short = Annotated[str, Field(min_length=1, max_length=200)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ReportLocation(_Body):
    """Where: the map pin (or the device's position) gives ``lat`` and ``lon``; the
    address, as the person writes it, is optional. No geocoding: a call on
    ``rtic.calls.v1`` must have a point."""

    lat: Lat
    lon: Lon
    address: str | None = Field(None, max_length=300)


class Reporter(_Body):
    name: Short
    phone: str | None = Field(None, pattern=r"^\+?[0-9 ()-]{6,20}$")
    email: str | None = Field(None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

    @model_validator(mode="after")
    def _reachable(self) -> Reporter:
        if not self.phone and not self.email:
            raise ValueError("give a phone number or an email address, so we can contact you")
        return self


class ReportRequest(_Body):
    """An online report: what, where, when, who, and how to contact them."""

    category: Literal[REPORT_CATEGORIES]  # type: ignore[valid-type]
    description: Text
    location: ReportLocation
    occurred_at: AwareDatetime | None = None
    reporter: Reporter


@public
@rate_limited("portal_report")
@_public_answering
async def make_report(request: Request) -> Response:
    """Report a crime or a concern online (no token): 201 with the case reference, the
    secret (shown once), a citizen token for the case, and the call's id."""
    report: ReportRequest = _parse(ReportRequest, await _body(request))
    portal, records = portal_of(request), _records(request)
    now = _edge(request).core.clock()
    if report.occurred_at is not None and report.occurred_at > now + FUTURE_SLACK:
        raise ApiError(400, "bad_request", "'occurred_at' is in the future")
    number = await records.cases.next_case_number(now.year)
    case_ref = format_case_ref(portal.settings.force_code, now.year, number)
    secret = make_secret()
    secret_hash = await anyio.to_thread.run_sync(hash_secret, secret)
    call_id = f"online-{case_ref}"
    await records.portal.save_credential(
        PortalCredential(
            case_ref=case_ref, secret_hash=secret_hash, call_id=call_id, created_at=now
        )
    )
    caller: dict[str, Any] = {"name": report.reporter.name, "phone": report.reporter.phone}
    if report.reporter.email:
        caller["email"] = report.reporter.email
    call = CallV1.model_validate(
        {
            "call_id": call_id,
            "received_at": now,
            "channel": Channel.ONLINE,
            "category": report.category,
            "location": report.location.model_dump(exclude_none=True),
            "description": report.description,
            "caller": caller,
            "case_ref": case_ref,
            "occurred_at": report.occurred_at.isoformat() if report.occurred_at else None,
            "reported_via": "portal",
        }
    )
    try:
        await portal.send(portal.topics.calls, call_id, call)
    except (RticError, OSError, TimeoutError) as exc:
        log.error("an online report %s could not be sent: %r", case_ref, exc)
        raise ApiError(503, "unavailable", "your report could not be sent: try again") from exc
    await _open_incident(portal, call, now)
    log.info("online report %s (%s) from %s", case_ref, report.category, client_address(request))
    return _json(
        {
            "case_ref": case_ref,
            "secret": secret,
            "token": portal.citizen_token(case_ref, now),
            "call_id": call_id,
            "notice": EMERGENCY_NOTICE,
        },
        201,
    )


async def _open_incident(portal: Portal, call: CallV1, now: datetime) -> None:
    """Put the report on the desk's incident queue: an incident ``created`` event for it
    (``rtic.incidents.v1``, ``incident_id`` ``INC-<case_ref>``, the call linked), graded
    ``online_report_grade`` (3, a scheduled response, until the desk re-grades it), so
    that the desk can assign an officer and the citizen sees it on their timeline. The
    call is already in: a failure here is logged, and the desk can still find the
    report by its call."""
    case_ref = str(getattr(call, "case_ref", ""))
    event = IncidentEventV1.model_validate(
        {
            "incident_id": f"INC-{case_ref}",
            "event": "created",
            "at": now,
            "grade": portal.settings.online_report_grade,
            "category": call.category,
            "location": call.location.model_dump(exclude_none=True),
            "call_ids": [call.call_id],
            "case_ref": case_ref,
            "source": "portal",
        }
    )
    try:
        await portal.send(portal.topics.incidents, event.incident_id, event)
    except (RticError, OSError, TimeoutError) as exc:
        log.error("the incident of online report %s could not be sent: %r", case_ref, exc)


# ---- sessions ---------------------------------------------------------------------------


class SessionRequest(_Body):
    case_ref: Annotated[str, Field(min_length=1, max_length=40)]
    secret: Annotated[str, Field(min_length=1, max_length=100)]


@public
@rate_limited("portal_session")
@_public_answering
async def open_session(request: Request) -> Response:
    """A citizen session from a case reference and its secret: 200 ``{token}``, or 401
    (the same for an unknown reference and a wrong secret)."""
    asked: SessionRequest = _parse(SessionRequest, await _body(request))
    portal, records = portal_of(request), _records(request)
    ref = asked.case_ref.strip().upper()
    credential = await records.portal.get_credential(ref) if is_case_ref(ref) else None
    stored = credential.secret_hash if credential else _DUMMY_HASH
    matches = await anyio.to_thread.run_sync(secret_matches, asked.secret, stored)
    if credential is None or not matches:
        log.info("portal session refused for %r from %s", ref[:40], client_address(request))
        raise ApiError(401, *INVALID)
    return _json({"token": portal.citizen_token(ref, _edge(request).core.clock())})


# ---- the citizen's case -------------------------------------------------------------------


async def next_contact_of(
    records: Records,
    *,
    case_ref: str,
    grade: int | None,
    opened_at: datetime,
    now: datetime,
    first_contact_at: datetime | None,
    closed: bool,
) -> NextContact:
    """The estimate for a case, from the demand the records show now."""
    others = (
        []
        if closed or first_contact_at
        else await records.portal.contact_times(grade, now - WINDOW)
    )
    return estimate_next_contact(
        case_ref=case_ref,
        grade=grade,
        opened_at=opened_at,
        now=now,
        others=others,
        first_contact_at=first_contact_at,
        closed=closed,
    )


async def citizen_case(request: Request, who: Principal, ref: str) -> Response:
    """A citizen's view of their case (``GET /api/cases/{case_ref}``): 404 for any case
    their token does not name; a "received" view of a report made here that the case
    worker has not written yet."""
    if not is_case_ref(ref) or ref not in who.cases:
        raise ApiError(404, *NOT_FOUND)
    records = _records(request)
    now = _edge(request).core.clock()
    view = await records.cases.view(ref)
    if view is None:
        credential = await records.portal.get_credential(ref)
        if credential is None:
            raise ApiError(404, *NOT_FOUND)
        await _audit(request, who, AuditAction.CASE_VIEWED, AuditObject.CASE, ref)
        estimate = await next_contact_of(
            records,
            case_ref=ref,
            grade=None,
            opened_at=credential.created_at,
            now=now,
            first_contact_at=None,
            closed=False,
        )
        text = PENDING_TEXT.format(how=CHANNEL_WORDS[Channel.ONLINE])
        return _json(
            {
                "case_ref": ref,
                "status": CaseStatus.RECEIVED.value,
                "pending": True,
                "timeline": [
                    {"at": credential.created_at.isoformat(), "kind": "received", "text": text}
                ],
                "next_contact": estimate.as_json(),
            }
        )
    if not may_see_case(who, CaseScope.of_row(view.case)):
        raise ApiError(404, *NOT_FOUND)
    await _audit(request, who, AuditAction.CASE_VIEWED, AuditObject.CASE, ref)
    contacts = [e.at for e in view.timeline if e.kind in FIRST_CONTACT_KINDS]
    estimate = await next_contact_of(
        records,
        case_ref=ref,
        grade=view.case.grade,
        opened_at=view.case.opened_at,
        now=now,
        first_contact_at=min(contacts) if contacts else None,
        closed=view.case.status is CaseStatus.CLOSED,
    )
    timeline = [e.model_dump(mode="json") for e in view.timeline]
    return _json(
        {
            "case_ref": ref,
            "status": view.case.status.value,
            "pending": False,
            "timeline": citizen_timeline(timeline),
            "next_contact": estimate.as_json(),
        }
    )


# ---- witness statements --------------------------------------------------------------------


class WhoIAm(_Body):
    name: Short
    relation: Literal["victim", "witness", "reporting for someone else", "other"] = "witness"
    contact: str | None = Field(None, max_length=200)


class WhenItHappened(_Body):
    from_: AwareDatetime = Field(alias="from")
    to: AwareDatetime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> WhenItHappened:
        if self.to is not None and self.to < self.from_:
            raise ValueError("'when.to' is before 'when.from'")
        return self


class WhereItHappened(_Body):
    address: str | None = Field(None, max_length=300)
    lat: Lat | None = None
    lon: Lon | None = None

    @model_validator(mode="after")
    def _somewhere(self) -> WhereItHappened:
        if not self.address and (self.lat is None or self.lon is None):
            raise ValueError("say where: an address or description, or a point (lat and lon)")
        return self


class StatementRequest(_Body):
    """A witness statement as given: who I am, what I saw, when, where, anything else,
    and the declaration (required, true). ``statement_id``: the statement it amends."""

    statement_id: str | None = Field(None, min_length=1, max_length=64)
    who_i_am: WhoIAm
    what_i_saw: Annotated[str, Field(min_length=1, max_length=10000)]
    when: WhenItHappened
    where: WhereItHappened
    free_text: str | None = Field(None, max_length=10000)
    declaration: Literal[True] = Field(
        description="'This statement is true to the best of my knowledge and belief.'"
    )


def _statement_json(row: StatementRow, who: Principal) -> dict[str, Any]:
    shown = row.model_dump(mode="json", exclude={"by"})
    shown["mine"] = row.by == who.sub
    return shown


async def _statement_case(request: Request, who: Principal, ref: str) -> Records:
    """The records, if ``who`` may give and read statements of case ``ref`` (else 404):
    its citizen (even before the case worker has written it), or staff who may see it."""
    records = _records(request)
    if not is_case_ref(ref):
        raise ApiError(404, *NOT_FOUND)
    if who.role is Role.CITIZEN:
        if ref not in who.cases:
            raise ApiError(404, *NOT_FOUND)
        if await records.cases.get_case(ref) is None and not await records.portal.get_credential(
            ref
        ):
            raise ApiError(404, *NOT_FOUND)
        return records
    row = await records.cases.get_case(ref) if who.role in STAFF_CASE_ROLES else None
    if row is None or not may_see_case(who, CaseScope.of_row(row)):
        raise ApiError(404, *NOT_FOUND)
    return records


@require()
@rate_limited("statement")
@_answering
async def give_statement(request: Request, who: Principal) -> Response:
    """Save a witness statement (or an amendment of one) of a case: 201."""
    ref = request.path_params["case_ref"]
    body = await _body(request)
    records = await _statement_case(request, who, ref)
    given: StatementRequest = _parse(StatementRequest, body)
    portal = portal_of(request)
    now = _edge(request).core.clock()
    amends = given.statement_id is not None
    row = StatementRow(
        statement_id=given.statement_id or f"st-{uuid.uuid4().hex[:20]}",
        case_ref=ref,
        at=now,
        by=who.sub,
        by_role=who.role.value,
        body=given.model_dump(mode="json", by_alias=True, exclude={"statement_id"}),
    )
    saved = await records.portal.add_statement(row, amends=amends)
    if saved is None:
        raise ApiError(404, *NO_STATEMENT)
    meta = StatementV1(
        statement_id=saved.statement_id,
        version=saved.version,
        case_ref=ref,
        at=saved.at,
        by_role=who.role,
    )
    on_timeline = True
    try:
        await portal.send(portal.topics.statements, ref, meta)
    except (RticError, OSError, TimeoutError) as exc:
        # The statement is kept (the database has it); only its timeline entry waits.
        log.error("statement %s v%d: not sent: %r", saved.statement_id, saved.version, exc)
        on_timeline = False
    return _json(
        {
            "statement_id": saved.statement_id,
            "version": saved.version,
            "at": saved.at.isoformat(),
            "on_timeline": on_timeline,
        },
        201,
    )


@require()
@_answering
async def list_statements(request: Request, who: Principal) -> Response:
    """Every version of the case's statements the caller may read, oldest first."""
    ref = request.path_params["case_ref"]
    records = await _statement_case(request, who, ref)
    rows = await records.portal.statements(ref)
    if who.role is Role.CITIZEN:
        rows = [r for r in rows if r.by == who.sub]
    await _audit(
        request,
        who,
        AuditAction.CASE_VIEWED,
        AuditObject.CASE,
        ref,
        detail={"statements": len(rows)},
    )
    return _json({"case_ref": ref, "statements": [_statement_json(r, who) for r in rows]})


async def statements(request: Request) -> Response:
    """One path, two methods: each with its own guard."""
    if request.method == "POST":
        response: Response = await give_statement(request)
        return response
    response = await list_statements(request)
    return response


statements.access = frozenset(Role)  # type: ignore[attr-defined]


def portal_routes() -> list[BaseRoute]:
    """The portal's routes (``push.web.routes`` adds them)."""
    return [
        Route("/api/portal/reports", make_report, methods=["POST"]),
        Route("/api/portal/session", open_session, methods=["POST"]),
        Route("/api/cases/{case_ref}/statements", statements, methods=["GET", "POST"]),
    ]
