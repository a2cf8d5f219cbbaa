"""THE table of the case module: which messages open a case and which timeline entry each makes.

Data, not code paths: ``ROWS`` lists every rule of the table (the source message,
what in it triggers the row, the timeline entry it makes, the words a citizen
reads, whether a citizen sees it, the status the case moves to). ``cases.book``
looks rows up by their key and docs/cases.md shows the same rows (made by
``markdown_rows``; a unit test keeps the two in step). Which calls and incidents
open a case is data too: ``ALWAYS_OPEN_CHANNELS`` and ``CASE_CATEGORIES``.

Texts are plain words for the person who reported (templates filled by
``Row.say``); staff detail goes into an entry's ``staff_note``, never into its
text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rtic.casework import CaseStatus, EvidenceKind, TimelineKind
from rtic.schemas import Channel


class Source(StrEnum):
    """The messages the case agent reads (one topic each)."""

    CALL = "call"  # rtic.calls.v1
    INCIDENT = "incident"  # rtic.incidents.v1
    ALERT = "alert"  # rtic.alerts.v1
    ACK = "ack"  # rtic.alert-acks.v1
    EVIDENCE = "evidence"  # rtic.evidence.v1
    STATEMENT = "statement"  # rtic.statements.v1


# A report made online or by web chat is always a person reporting a crime or a concern.
ALWAYS_OPEN_CHANNELS: frozenset[Channel] = frozenset({Channel.ONLINE, Channel.WEBCHAT})

# 999 and 101 calls (and incidents no call brought in) open a case when their category is
# a crime or a concern someone reports for themselves or another person. Not: ``traffic``
# (road incidents: a collision report is the insurers' and the traffic unit's),
# ``suspicious_vehicle`` (intelligence with no victim: it feeds ANPR and the hotlists),
# ``other`` (lost property, enquiries, calls for another agency), nor a category the
# engine does not know.
CASE_CATEGORIES: frozenset[str] = frozenset(
    {
        "domestic_abuse",
        "burglary",
        "assault",
        "robbery",
        "asb",
        "concern_for_safety",
        "missing_person",
        "theft",
        "vehicle_crime",
        "criminal_damage",
        "sexual_offence",
        "hate_crime",
        "harassment",
        "stalking",
        "fraud",
    }
)

# Times a citizen reads are in the force's local time.
try:
    LOCAL_TZ: ZoneInfo | None = ZoneInfo("Europe/London")
except ZoneInfoNotFoundError:  # a container without tz data: UTC, said as such
    LOCAL_TZ = None


def opens_case(channel: Channel | None, category: str) -> bool:
    """Whether a call on ``channel`` (an incident: ``None``) of ``category`` opens a case."""
    return channel in ALWAYS_OPEN_CHANNELS or category in CASE_CATEGORIES


CHANNEL_WORDS: dict[Channel | None, str] = {
    Channel.EMERGENCY: "999 call",
    Channel.NON_EMERGENCY: "101 call",
    Channel.ONLINE: "report made online",
    Channel.WEBCHAT: "report made by web chat",
    None: "report",
}

GRADE_WORDS: dict[int, str] = {
    1: "an emergency response",
    2: "a priority response",
    3: "a scheduled response: we will arrange a time to see you",
    4: "a response by phone or online, without a visit",
}

EVIDENCE_WORDS: dict[EvidenceKind, str] = {
    EvidenceKind.BODY_WORN_VIDEO: "body-worn video",
    EvidenceKind.PHOTO: "a photo",
    EvidenceKind.VIDEO: "a video",
    EvidenceKind.CCTV: "CCTV footage",
    EvidenceKind.DOCUMENT: "a document",
    EvidenceKind.AUDIO: "an audio recording",
    EvidenceKind.OTHER: "an item of evidence",
}

# The ``result`` (or ``outcome``) of a closing incident, in words; any other value is
# recorded for staff and the citizen reads "An outcome has been recorded."
OUTCOME_WORDS: dict[str, str] = {
    "no_further_action": "no further action will be taken",
    "advice_given": "advice was given",
    "resolved": "the matter was resolved",
    "arrested": "a person has been arrested",
    "charged": "a person has been charged",
    "summonsed": "a person has been summonsed to court",
    "cautioned": "a person has been cautioned",
    "community_resolution": "a community resolution was agreed",
    "referred": "the matter has been passed to a partner agency",
    "no_crime": "no crime was found to have happened",
    "unresolved": "no suspect could be identified",
}

ACK_WORDS: dict[str, str] = {"ack": "acknowledged", "assign": "assigned", "dismiss": "dismissed"}


def when_words(at: datetime) -> str:
    """A time as a citizen reads it: 'Tuesday 24 November 2026 at 21:30' (local time)."""
    if LOCAL_TZ is None:
        at = at.astimezone(UTC)
        return f"{at:%A} {at.day} {at:%B %Y} at {at:%H:%M} UTC"
    local = at.astimezone(LOCAL_TZ)
    return f"{local:%A} {local.day} {local:%B %Y} at {local:%H:%M}"


@dataclass(frozen=True)
class Row:
    """One rule of the table.

    Attributes:
        key: how ``cases.book`` names the row (``<source>.<trigger>``).
        source: the message it reads.
        trigger: what in that message makes the row apply, in words (for the doc).
        entry: the timeline entry it makes (None: it only links or opens).
        text: the entry's text, a template over the fields ``Row.say`` is given.
        citizen_visible: whether the citizen of the case sees the entry.
        status: the status the case moves forward to (never back), if any.
        effect: what else it does to the case (links, officers), in words.
    """

    key: str
    source: Source
    trigger: str
    entry: TimelineKind | None
    text: str
    citizen_visible: bool = True
    status: CaseStatus | None = None
    effect: str = ""

    def say(self, **fields: object) -> str:
        """The entry's text with its fields filled in."""
        return self.text.format(**fields)


ROWS: tuple[Row, ...] = (
    Row(
        "call.received",
        Source.CALL,
        "a call that opens a case (online or web chat: always; 999/101: a case category) "
        "or carries a `case_ref`",
        TimelineKind.RECEIVED,
        "We have received your {how}.",
        status=CaseStatus.RECEIVED,
        effect="opens the case (a new reference, or the call's `case_ref`); links the call; "
        "reporter, address and area from the call",
    ),
    Row(
        "call.assessed",
        Source.CALL,
        "that call has a `grade` and the case has none yet",
        TimelineKind.ASSESSED,
        "Your report has been assessed as needing {grade_words}.",
        status=CaseStatus.ASSESSED,
        effect="sets the case's grade",
    ),
    Row(
        "incident.opened",
        Source.INCIDENT,
        "any event of an incident in no case yet, none of whose `call_ids` is in a case, "
        "with a case category",
        TimelineKind.RECEIVED,
        "A report has been recorded.",
        status=CaseStatus.RECEIVED,
        effect="opens the case; links the incident and its calls",
    ),
    Row(
        "incident.linked",
        Source.INCIDENT,
        "an event of an incident not linked yet, one of whose `call_ids` is in a case",
        None,
        "",
        citizen_visible=False,
        effect="links the incident (and its calls in no case yet) to that case",
    ),
    Row(
        "incident.assessed",
        Source.INCIDENT,
        "any event whose `grade` differs from the case's grade (the first grading, or a "
        "re-grading)",
        TimelineKind.ASSESSED,
        "Your report has been assessed as needing {grade_words}.",
        status=CaseStatus.ASSESSED,
        effect="sets the case's grade; only from an event not older than the case's last "
        "grading, so an old event read again never puts an old grade back",
    ),
    Row(
        "incident.assigned",
        Source.INCIDENT,
        "`event: assigned`",
        TimelineKind.OFFICER_ASSIGNED,
        "An officer has been assigned to your case.",
        status=CaseStatus.UNDER_INVESTIGATION,
        effect="officer in charge: the first unit, if the case has none; attending: + units",
    ),
    Row(
        "incident.visit_booked",
        Source.INCIDENT,
        "`event: updated` with `visit_booked_for` (a time)",
        TimelineKind.VISIT_BOOKED,
        "An officer will visit you on {when}.",
        status=CaseStatus.UNDER_INVESTIGATION,
    ),
    Row(
        "incident.en_route",
        Source.INCIDENT,
        "`event: updated` with `status: en_route` (an officer's `job_update` en_route)",
        TimelineKind.OFFICER_EN_ROUTE,
        "An officer is on the way to you.",
        status=CaseStatus.UNDER_INVESTIGATION,
        effect="attending: + units",
    ),
    Row(
        "incident.arrived",
        Source.INCIDENT,
        "`event: arrived`",
        TimelineKind.OFFICER_ATTENDED,
        "An officer has attended.",
        status=CaseStatus.UNDER_INVESTIGATION,
        effect="attending: + units",
    ),
    Row(
        "incident.statement_taken",
        Source.INCIDENT,
        "`event: updated` with `statement_taken` (true, or the statement's id)",
        TimelineKind.STATEMENT_TAKEN,
        "A statement has been taken.",
        status=CaseStatus.UNDER_INVESTIGATION,
        effect="links the statement when an id is given",
    ),
    Row(
        "incident.suspect_identified",
        Source.INCIDENT,
        "`event: updated` with `suspect_identified` true",
        TimelineKind.SUSPECT_IDENTIFIED,
        "A suspect has been identified.",
        status=CaseStatus.UNDER_INVESTIGATION,
    ),
    Row(
        "incident.note",
        Source.INCIDENT,
        "any event with a `note` (an officer's job update)",
        TimelineKind.UPDATE,
        "Officer's note added.",
        citizen_visible=False,
        effect="the note is the entry's staff note",
    ),
    Row(
        "incident.outcome",
        Source.INCIDENT,
        "`event: closed` with a `result` (or `outcome`)",
        TimelineKind.OUTCOME,
        "Outcome: {outcome_words}.",
        effect="a result not in the outcome list reads 'An outcome has been recorded.'; "
        "the raw result is the staff note",
    ),
    Row(
        "incident.closed",
        Source.INCIDENT,
        "`event: closed`",
        TimelineKind.CLOSED,
        "Your case has been closed.",
        status=CaseStatus.CLOSED,
        effect="closed_at: the event's time",
    ),
    Row(
        "alert.raised",
        Source.ALERT,
        "an alert whose `source_event_ids` include a call or incident linked to a case",
        TimelineKind.ALERT_RAISED,
        "Alert raised: {title}",
        citizen_visible=False,
        effect="links the alert to the first such case; an updated alert (higher "
        "`version`) adds nothing",
    ),
    Row(
        "ack.update",
        Source.ACK,
        "an acknowledgement of an alert linked to a case",
        TimelineKind.UPDATE,
        "Alert {action_words} by {by}.",
        citizen_visible=False,
    ),
    Row(
        "evidence.received",
        Source.EVIDENCE,
        "evidence metadata with a `case_ref`, or an `incident_id` linked to a case",
        TimelineKind.EVIDENCE_RECEIVED,
        "We have received evidence for your case: {what}.",
        effect="stores the metadata (always, even with no case) and links it",
    ),
    Row(
        "statement.received",
        Source.STATEMENT,
        "a witness statement's first version (`version` 1) for a case",
        TimelineKind.STATEMENT_TAKEN,
        "A witness statement has been received.",
        effect="links the statement; the statement stays in the database (`statements`), "
        "the entry's staff note says who gave it",
    ),
    Row(
        "statement.amended",
        Source.STATEMENT,
        "a later version of a witness statement (an amendment)",
        TimelineKind.STATEMENT_TAKEN,
        "A witness statement has been amended (version {version}).",
        effect="a new version is kept beside the earlier ones, never over them",
    ),
)

ROW: dict[str, Row] = {row.key: row for row in ROWS}

# Rows whose entry a case has only once, whichever makes it first: the call and the
# incident that brought the case in share one "received" entry.
ONCE_PER_CASE: frozenset[str] = frozenset({"call.received", "incident.opened"})

# ``rtic.incidents.v1`` ``updated`` extras that make an entry, and the row each makes.
UPDATED_EXTRAS: tuple[tuple[str, str], ...] = (
    ("visit_booked_for", "incident.visit_booked"),
    ("statement_taken", "incident.statement_taken"),
    ("suspect_identified", "incident.suspect_identified"),
    ("note", "incident.note"),
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or "—"


def markdown_rows() -> str:
    """The table as the Markdown table docs/cases.md shows (one line per row)."""
    lines = [
        "| key | source | when | entry | text | citizen sees | status | also |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in ROWS:
        cells = (
            f"`{r.key}`",
            r.source.value,
            r.trigger,
            f"`{r.entry.value}`" if r.entry else "",
            r.text,
            "yes" if r.citizen_visible and r.entry else "no",
            f"`{r.status.value}`" if r.status else "",
            r.effect,
        )
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def markdown_opening() -> str:
    """Which calls open a case, as docs/cases.md lists it."""
    channels = ", ".join(f"`{c.value}`" for c in sorted(ALWAYS_OPEN_CHANNELS))
    categories = ", ".join(f"`{c}`" for c in sorted(CASE_CATEGORIES))
    return (
        f"- Channels that always open a case: {channels}.\n"
        f"- Categories that open a case from any channel (and from an incident no call "
        f"brought in): {categories}."
    )
