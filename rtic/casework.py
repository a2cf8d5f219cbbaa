"""The people's side of the wire: cases, their timelines, evidence metadata and audit.

Topics (``rtic.topics.Topics``): ``rtic.cases.v1`` (key ``case_ref``) carries
``CaseUpdateV1``, a change to a case with the case as it now stands;
``rtic.evidence.v1`` (key ``evidence_id``) carries ``EvidenceV1``, metadata of
an item of evidence (body-worn video, a photo, a document: never the bytes);
``rtic.audit.v1`` (key: the subject's id) carries ``AuditV1``, one record of who
did what to what, when, from where and why; ``rtic.statements.v1`` (key
``case_ref``) carries ``StatementV1``, that a version of a witness statement was
saved (its body stays in the database). All are ``v1``; a breaking change
adds ``V2`` classes and ``.v2`` topics beside these (see ``rtic/schemas.py``).

Every message has a stable id (``update_id``, ``entry_id``, ``evidence_id``,
``audit_id``) made from the facts it records, so a redelivery is recognisable
and the writers can upsert by it.
"""

from __future__ import annotations

import hashlib
import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rtic.schemas import EventTime, LocationV1, NonEmpty, Role

CASE_REF_PATTERN = r"^[A-Z]{2,4}-\d{4}-\d{7}$"
CaseRef = Annotated[str, Field(pattern=CASE_REF_PATTERN, description="e.g. WM-2026-0001234")]
_CASE_REF = re.compile(CASE_REF_PATTERN)


def is_case_ref(value: str) -> bool:
    """Whether ``value`` has the shape of a case reference (``WM-2026-0001234``)."""
    return bool(_CASE_REF.match(value))


def format_case_ref(force_code: str, year: int, number: int) -> str:
    """The human-readable reference of the ``number``-th case of ``year``."""
    return f"{force_code}-{year:04d}-{number:07d}"


def stable_id(prefix: str, *facts: object) -> str:
    """An id that the same facts always give (so redeliveries upsert, never double)."""
    digest = hashlib.sha256("\x1f".join(str(f) for f in facts).encode()).hexdigest()[:20]
    return f"{prefix}-{digest}"


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CaseStatus(StrEnum):
    """Where a case stands, in words a citizen reads on the portal."""

    RECEIVED = "received"  # reported; not yet assessed
    ASSESSED = "assessed"  # graded; waiting for an officer
    UNDER_INVESTIGATION = "under_investigation"  # an officer in charge is working it
    CLOSED = "closed"


class TimelineKind(StrEnum):
    """The entries of a case's timeline (the table in docs/cases.md says what makes each)."""

    RECEIVED = "received"
    ASSESSED = "assessed"
    OFFICER_ASSIGNED = "officer_assigned"
    VISIT_BOOKED = "visit_booked"
    OFFICER_EN_ROUTE = "officer_en_route"
    OFFICER_ATTENDED = "officer_attended"
    STATEMENT_TAKEN = "statement_taken"
    EVIDENCE_RECEIVED = "evidence_received"
    SUSPECT_IDENTIFIED = "suspect_identified"
    UPDATE = "update"
    ALERT_RAISED = "alert_raised"
    OUTCOME = "outcome"
    CLOSED = "closed"


class LinkKind(StrEnum):
    CALL = "call"
    INCIDENT = "incident"
    ALERT = "alert"
    EVIDENCE = "evidence"
    STATEMENT = "statement"


class TimelineEntryV1(_Closed):
    """One entry of a case's timeline."""

    entry_id: NonEmpty = Field(description="stable: the same source event gives the same id")
    case_ref: CaseRef
    kind: TimelineKind
    at: EventTime
    text: str = Field(description="what happened, in words the citizen understands")
    citizen_visible: bool = Field(
        True, description="false for staff-only entries (alerts, internal notes)"
    )
    source: str | None = Field(None, description="the source event: '<link kind>:<id>'")
    staff_note: str | None = Field(None, description="detail for staff only; never to a citizen")


class CaseLinkV1(_Closed):
    kind: LinkKind
    id: NonEmpty


class CaseUpdateV1(_Closed):
    """A change to a case (``rtic.cases.v1``, key ``case_ref``), with the case as it now stands."""

    update_id: NonEmpty = Field(description="stable: the same change gives the same id")
    case_ref: CaseRef
    at: EventTime
    change: Literal["opened", "status", "timeline", "officer", "link"]
    status: CaseStatus
    category: str
    grade: Literal[1, 2, 3, 4] | None = None
    officer_in_charge: str | None = None
    area: list[str] = Field(default_factory=list, description="area codes: who supervises it")
    entry: TimelineEntryV1 | None = Field(None, description="the new entry, for 'timeline'")
    link: CaseLinkV1 | None = Field(None, description="the new link, for 'link'")


class EvidenceKind(StrEnum):
    BODY_WORN_VIDEO = "body_worn_video"
    PHOTO = "photo"
    VIDEO = "video"  # a video someone other than the police recorded (a phone's, say)
    CCTV = "cctv"
    DOCUMENT = "document"
    AUDIO = "audio"
    OTHER = "other"


class EvidenceV1(BaseModel):
    """Metadata of an item of evidence (``rtic.evidence.v1``, key ``evidence_id``).

    The bytes stay in their store (``storage_uri``); the engine keeps who, when,
    where and the checksum, and links the item to the incident's case.
    """

    model_config = ConfigDict(extra="allow")

    evidence_id: NonEmpty
    kind: EvidenceKind
    captured_by: NonEmpty = Field(description="officer id, 'citizen', or the system that made it")
    captured_at: EventTime
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    storage_uri: NonEmpty
    incident_id: str | None = None
    case_ref: CaseRef | None = None
    location: LocationV1 | None = None
    bytes: int | None = Field(None, ge=0)
    content_type: str | None = None
    filename: str | None = None
    description: str | None = None
    uploaded_by: str | None = Field(
        None,
        description="the token subject that uploaded it through the gateway "
        "(POST /api/cases/{case_ref}/evidence); captured_by is then 'citizen' for a "
        "citizen, else the same subject",
    )


class StatementV1(_Closed):
    """A version of a witness statement was saved (``rtic.statements.v1``, key
    ``case_ref``): metadata only, the statement itself stays in the records database.
    Version 1 is the statement; each later version an amendment of it."""

    statement_id: NonEmpty
    version: int = Field(ge=1)
    case_ref: CaseRef
    at: EventTime
    by_role: Role


class AuditAction(StrEnum):
    """What an audit record records."""

    ALERT_DELIVERED = "alert_delivered"
    ALERT_OPENED = "alert_opened"
    ALERT_ACK = "alert_ack"
    ALERT_ASSIGN = "alert_assign"
    ALERT_DISMISS = "alert_dismiss"
    ALERT_VERIFIED = "alert_verified"  # a plate check answered: the read is the listed vehicle
    ALERT_NOT_A_MATCH = "alert_not_a_match"  # a plate check answered: a misread
    SNOOZE = "snooze"
    UNSNOOZE = "unsnooze"
    CASE_VIEWED = "case_viewed"
    CASE_LISTED = "case_listed"
    EVIDENCE_DOWNLOADED = "evidence_downloaded"
    HISTORY_SEARCH = "history_search"
    AUDIT_VIEWED = "audit_viewed"
    AUDIT_EXPORTED = "audit_exported"
    TOKEN_REVOKED = "token_revoked"
    CHAT_TAKEN = "chat_taken"  # a contact handler took a webchat (object: the case)
    CHAT_TO_CALL = "chat_to_call"  # ... turned it into a call (detail: call_id)
    CHAT_CLOSED = "chat_closed"
    CHAT_ESCALATED = "chat_escalated"  # nobody replied in time (actor: the gateway)
    JOB_UPDATE = "job_update"  # an officer's update of a job (object: the incident)
    JOB_ASSIGN = "job_assign"  # the desk gave an incident to an officer


class AuditObject(StrEnum):
    ALERT = "alert"
    CASE = "case"
    EVIDENCE = "evidence"
    PERSON = "person"
    ADDRESS = "address"
    PLATE = "plate"
    TOKEN = "token"
    AUDIT = "audit"
    INCIDENT = "incident"


class AuditV1(_Closed):
    """One audit record (``rtic.audit.v1``, key ``object_id``): append-only, never changed."""

    audit_id: NonEmpty = Field(description="stable: the same act gives the same id")
    at: EventTime
    actor: NonEmpty = Field(description="the token's subject")
    role: Role | Literal["system"]
    action: AuditAction
    object_type: AuditObject
    object_id: NonEmpty
    origin: str | None = Field(None, description="where from: client address, or the process")
    reason: str | None = Field(None, description="why, in the actor's words (searches must say)")
    reference: str | None = Field(None, description="the job, case or operation it was for")
    detail: dict[str, Any] = Field(default_factory=dict)
