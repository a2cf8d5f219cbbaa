"""The case book: messages in, cases kept in a ``CaseStore``, ``rtic.cases.v1`` updates out.

``CaseBook.apply(source, model)`` finds the case a message belongs to (by the
links the store keeps: a call, an incident, an alert, an evidence item), opens
one where the table says so (``cases.table``), adds the message's timeline
entries and links, moves the status forward and returns one ``CaseUpdateV1``
per change that is new: the opening, each new entry, each new link, a status
or officer change with no entry of its own.

Redelivery changes nothing. Entry ids, link keys and update ids are stable
(``rtic.casework.stable_id`` over the case and the source event); the case's
fields only move one way (status forward, officers and links added, reporter,
address and area set once); the one field that may go back, the grade, is set
only by an incident event not older than the case's last grading. So a message
applied twice, or a whole stretch of a stream replayed after a restart, leaves
the same rows and sends no update. The case's ``version`` rises with each real
change, in the same write as the change.

Pure apart from the store protocol: no Kafka, no wall clock (the clock is
injected; event times are used wherever a message has one), no environment.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from cases.session import DEFAULT_CACHE_SIZE, CaseSession
from cases.table import (
    ACK_WORDS,
    CASE_CATEGORIES,
    CHANNEL_WORDS,
    EVIDENCE_WORDS,
    GRADE_WORDS,
    ONCE_PER_CASE,
    OUTCOME_WORDS,
    ROW,
    UPDATED_EXTRAS,
    Source,
    opens_case,
    when_words,
)
from records.protocols import CaseRow, CaseStore, ReporterV1
from rtic.casework import (
    CaseLinkV1,
    CaseStatus,
    CaseUpdateV1,
    EvidenceV1,
    LinkKind,
    StatementV1,
    TimelineEntryV1,
    TimelineKind,
    format_case_ref,
    is_case_ref,
    stable_id,
)
from rtic.clock import Clock, as_clock, utc_now
from rtic.schemas import AlertAckV1, AlertV1, CallV1, IncidentEventV1, LocationV1

AreaCodes = Callable[[float, float], list[str]]

# How many alerts may wait for their call or incident's case (the oldest go first).
WAITING_MAX = 10_000
STATUS_RANK = {
    CaseStatus.RECEIVED: 0,
    CaseStatus.ASSESSED: 1,
    CaseStatus.UNDER_INVESTIGATION: 2,
    CaseStatus.CLOSED: 3,
}


def _forward(status: CaseStatus, to: CaseStatus | None) -> CaseStatus:
    """The later of two statuses: a case never goes back."""
    return to if to is not None and STATUS_RANK[to] > STATUS_RANK[status] else status


def _fields(case: CaseRow) -> dict[str, Any]:
    """What a change is judged by (the bookkeeping fields left out)."""
    return case.model_dump(exclude={"version", "updated_at"})


@dataclass
class _Change:
    """What one message does to one case, before it is saved."""

    before: CaseRow | None  # None: the message opens the case
    case: CaseRow  # the case as it will stand
    at: datetime  # the message's time
    source: str  # '<link kind>:<id>' of the message
    event_key: str  # what tells this message from another of the same source
    entries: list[TimelineEntryV1] = field(default_factory=list)
    links: list[CaseLinkV1] = field(default_factory=list)  # links the case does not have yet
    maybe_links: list[CaseLinkV1] = field(default_factory=list)  # added if in no case yet


class CaseBook:
    """Cases kept from the streams, in any ``CaseStore``.

    Args:
        store: where cases, entries, links and evidence are kept.
        force_code: the prefix of new case references (``WM`` in ``WM-2026-0001234``).
        clock: the time for what has none of its own (when evidence metadata arrived).
        area_codes: the area codes of a point (the ``GeoIndex``), for who supervises a
            case; None leaves a case's area empty.
        resend: a redelivered message gives again the updates of its entries (the same
            ``update_id``s) instead of none: a worker that stored a change and died before
            it sent the change's updates sends them when the message comes again (at least
            once on ``rtic.cases.v1``; consumers drop a repeat by its ``update_id``).
        cache_size: how many cases and links the book keeps in memory
            (``cases.session.CaseSession``: right only with one case worker per
            deployment, as docs/cases.md requires).

    ``apply`` saves each message in its own transaction; ``apply(..., flush=False)``
    holds the writes until ``flush`` (one transaction for a batch; ``discard`` drops
    them when the batch is to be tried again).
    """

    def __init__(
        self,
        store: CaseStore,
        force_code: str = "WM",
        clock: Clock | Callable[[], datetime] = utc_now,
        area_codes: AreaCodes | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
        *,
        resend: bool = False,
    ) -> None:
        self.session = CaseSession(store, cache_size)
        self.force_code = force_code
        self.clock = as_clock(clock)
        self.area_codes = area_codes
        self.resend = resend
        # Alerts that came before the call or incident they are about (the topics are read
        # side by side): held here, newest last, and applied when that call or incident
        # gets its case. In memory and bounded: see docs/cases.md, "Limits".
        self._waiting: OrderedDict[str, AlertV1] = OrderedDict()
        self._taken: list[AlertV1] = []  # taken from waiting by writes not committed yet

    async def apply(
        self, source: Source | str, model: BaseModel, *, flush: bool = True
    ) -> list[CaseUpdateV1]:
        """Apply one message; the updates it makes (none for a redelivery or a message
        that belongs to no case). With ``flush`` (the default) its writes are committed
        before it returns; without, they wait for ``flush()``, and the updates must not
        be sent before that."""
        if not flush:
            return await self._apply(Source(source), model)
        try:
            updates = await self._apply(Source(source), model)
            await self.flush()
        except BaseException:
            self.discard()
            raise
        return updates

    async def flush(self) -> None:
        """Commit the writes of the messages applied with ``flush=False`` (one
        transaction). On failure nothing of them is stored and the error is raised."""
        await self.session.flush()
        self._taken.clear()

    @property
    def pending(self) -> int:
        """How many writes wait for ``flush``."""
        return self.session.pending

    def discard(self) -> None:
        """Drop the writes not flushed yet (their batch will be applied again)."""
        self.session.discard()
        for alert in self._taken:  # their links were not committed: they wait again
            self._wait(alert)
        self._taken.clear()

    @property
    def waiting(self) -> int:
        """How many alerts wait for the call or incident they are about to get a case."""
        return len(self._waiting)

    def _wait(self, alert: AlertV1) -> None:
        self._waiting[alert.alert_id] = alert
        self._waiting.move_to_end(alert.alert_id)
        while len(self._waiting) > WAITING_MAX:
            self._waiting.popitem(last=False)

    async def _take_waiting(self, event_ids: set[str]) -> list[CaseUpdateV1]:
        """Apply the waiting alerts about any of ``event_ids`` (which now have a case)."""
        if not self._waiting:
            return []
        ready = [a for a in self._waiting.values() if event_ids & set(a.source_event_ids)]
        updates: list[CaseUpdateV1] = []
        for alert in ready:
            del self._waiting[alert.alert_id]
            self._taken.append(alert)
            updates.extend(await self._on_alert(alert))
        return updates

    async def prefetch(self, messages: Sequence[tuple[Source, BaseModel]]) -> None:
        """Read the links a batch of messages will look up in one query (optional: only
        fewer reads; ``apply`` looks up whatever is not known)."""
        await self.session.prefetch_links([k for s, m in messages for k in link_keys(s, m)])

    async def _apply(self, source: Source, model: BaseModel) -> list[CaseUpdateV1]:
        if source is Source.CALL and isinstance(model, CallV1):
            updates = await self._on_call(model)
            return updates + await self._take_waiting({model.call_id})
        if source is Source.INCIDENT and isinstance(model, IncidentEventV1):
            updates = await self._on_incident(model)
            ids = {model.incident_id, *(model.call_ids or ())}
            return updates + await self._take_waiting(ids)
        if source is Source.ALERT and isinstance(model, AlertV1):
            return await self._on_alert(model)
        if source is Source.ACK and isinstance(model, AlertAckV1):
            return await self._on_ack(model)
        if source is Source.EVIDENCE and isinstance(model, EvidenceV1):
            return await self._on_evidence(model)
        if source is Source.STATEMENT and isinstance(model, StatementV1):
            return await self._on_statement(model)
        raise TypeError(f"a {source.value} message cannot be a {type(model).__name__}")

    # ---- opening and filling a case --------------------------------------------------

    async def _new_case(self, case_ref: str | None, category: str, at: datetime) -> CaseRow:
        if case_ref is None:
            year = at.astimezone(UTC).year
            number = await self.session.next_case_number(year)
            case_ref = format_case_ref(self.force_code, year, number)
        self.session.opening(case_ref)
        return CaseRow(
            case_ref=case_ref,
            status=CaseStatus.RECEIVED,
            category=category,
            opened_at=at,
            updated_at=at,
            version=1,
        )

    def _place(self, case: CaseRow, location: LocationV1 | None) -> None:
        """Address and area from the first message that has them."""
        if location is None:
            return
        if case.address is None and location.address:
            case.address = location.address
        if not case.area and self.area_codes is not None:
            case.area = list(self.area_codes(location.lat, location.lon))

    def _entry(
        self,
        ch: _Change,
        row_key: str,
        *,
        at: datetime | None = None,
        staff_note: str | None = None,
        text: str | None = None,
        **fields: object,
    ) -> TimelineEntryV1:
        """Add the entry of a table row to the change (and move the status forward)."""
        row = ROW[row_key]
        assert row.entry is not None, row_key
        case_ref = ch.case.case_ref
        if row_key in ONCE_PER_CASE:
            entry_id = stable_id("ent", case_ref, row.entry.value)
        else:
            entry_id = stable_id("ent", case_ref, row_key, ch.source, ch.event_key)
        entry = TimelineEntryV1(
            entry_id=entry_id,
            case_ref=case_ref,
            kind=row.entry,
            at=at or ch.at,
            text=text if text is not None else row.say(**fields),
            citizen_visible=row.citizen_visible,
            source=ch.source,
            staff_note=staff_note,
        )
        ch.entries.append(entry)
        ch.case.status = _forward(ch.case.status, row.status)
        return entry

    async def _change(
        self, case_ref: str | None, opens: tuple[str, datetime] | None, source: str, at: datetime
    ) -> _Change | None:
        """The change of the case ``case_ref`` (opened if it does not exist and ``opens``
        gives its category and time); None when there is no case to change."""
        before = await self.session.get_case(case_ref) if case_ref is not None else None
        if before is None and opens is None:
            return None
        if before is None:
            assert opens is not None
            case = await self._new_case(case_ref, opens[0], opens[1])
        else:
            case = before.model_copy(deep=True)
        return _Change(before, case, at, source, event_key="")

    # ---- the sources ---------------------------------------------------------------------

    async def _on_call(self, call: CallV1) -> list[CaseUpdateV1]:
        given = (call.model_extra or {}).get("case_ref")
        given = given if isinstance(given, str) and is_case_ref(given) else None
        linked = await self.session.case_for_link(LinkKind.CALL, call.call_id)
        opens = (call.category, call.received_at)
        if given is None and linked is None and not opens_case(call.channel, call.category):
            return []
        ch = await self._change(given or linked, opens, f"call:{call.call_id}", call.received_at)
        assert ch is not None
        case = ch.case
        if linked is None:
            ch.links.append(CaseLinkV1(kind=LinkKind.CALL, id=call.call_id))
        self._place(case, call.location)
        if case.reporter is None and call.caller is not None:
            email = (call.caller.model_extra or {}).get("email")
            case.reporter = ReporterV1(
                person_id=call.caller.person_id,
                name=call.caller.name,
                phone=call.caller.phone,
                email=email if isinstance(email, str) else None,
            )
        self._entry(ch, "call.received", how=CHANNEL_WORDS[call.channel])
        if call.grade is not None and case.grade is None:
            case.grade = call.grade
            self._entry(ch, "call.assessed", grade_words=GRADE_WORDS[call.grade])
        return await self._commit(ch)

    async def _on_incident(self, inc: IncidentEventV1) -> list[CaseUpdateV1]:
        store = self.session
        linked = await store.case_for_link(LinkKind.INCIDENT, inc.incident_id)
        calls: dict[str, str | None] = {}
        for call_id in inc.call_ids or ():
            calls[call_id] = await store.case_for_link(LinkKind.CALL, call_id)
        case_ref = linked or next((ref for ref in calls.values() if ref), None)
        opens = (inc.category, inc.at) if inc.category in CASE_CATEGORIES else None
        ch = await self._change(case_ref, opens, f"incident:{inc.incident_id}", inc.at)
        if ch is None:
            return []
        extra = inc.model_extra or {}
        update_id = extra.get("update_id")
        ch.event_key = str(update_id) if update_id else f"{inc.event}@{inc.at.isoformat()}"
        case = ch.case
        if linked is None:
            ch.links.append(CaseLinkV1(kind=LinkKind.INCIDENT, id=inc.incident_id))
        ch.links.extend(CaseLinkV1(kind=LinkKind.CALL, id=c) for c, ref in calls.items() if not ref)
        self._place(case, inc.location)
        if ch.before is None:
            self._entry(ch, "incident.opened")
            case.grade = inc.grade
            self._entry(ch, "incident.assessed", grade_words=GRADE_WORDS[inc.grade])
        elif inc.grade != case.grade and await self._latest_grading(
            case.case_ref, inc.at, ch.source
        ):
            case.grade = inc.grade
            self._entry(ch, "incident.assessed", grade_words=GRADE_WORDS[inc.grade])
        self._incident_rows(ch, inc, extra)
        return await self._commit(ch)

    async def _latest_grading(self, case_ref: str, at: datetime, source: str) -> bool:
        """Whether an incident event's grading at ``at`` is the case's latest: a grade may
        go down, so an old event read again must not put its grade back. An incident's
        events come in order, so one at the same time as the last grading *of the same
        incident* is that event or an earlier one."""
        timeline = await self.session.timeline(case_ref)
        graded = [e for e in timeline if e.kind is TimelineKind.ASSESSED]
        if not graded:
            return True
        last = max(e.at for e in graded)
        return at > last or (at == last and all(e.source != source for e in graded if e.at == last))

    def _incident_rows(self, ch: _Change, inc: IncidentEventV1, extra: dict[str, Any]) -> None:
        """The entries of the incident event itself (the table's incident rows)."""
        case, units = ch.case, list(inc.units or ())
        if inc.event == "assigned":
            if case.officer_in_charge is None and units:
                case.officer_in_charge = units[0]
            self._entry(ch, "incident.assigned", staff_note=_units_note(units))
        elif inc.event == "arrived":
            self._entry(ch, "incident.arrived", staff_note=_units_note(units))
        elif inc.event == "updated":
            if extra.get("status") == "en_route":
                self._entry(ch, "incident.en_route", staff_note=_units_note(units))
            for name, row_key in UPDATED_EXTRAS:
                if name != "note" and extra.get(name):
                    self._updated_extra(ch, row_key, extra[name])
        elif inc.event == "closed":
            result = extra.get("result") or extra.get("outcome")
            if result:
                words = OUTCOME_WORDS.get(str(result))
                text = None if words else "An outcome has been recorded."
                self._entry(
                    ch, "incident.outcome", staff_note=str(result), text=text, outcome_words=words
                )
            self._entry(ch, "incident.closed")
            if case.closed_at is None:
                case.closed_at = inc.at
        if inc.event in ("assigned", "arrived", "updated"):
            case.attending = case.attending + [u for u in units if u not in case.attending]
        if extra.get("note"):
            self._entry(ch, "incident.note", staff_note=str(extra["note"]))

    def _updated_extra(self, ch: _Change, row_key: str, value: Any) -> None:
        if row_key == "incident.visit_booked":
            try:
                when = datetime.fromisoformat(str(value))
            except ValueError:
                return  # not a time: nothing a citizen could be told
            if when.tzinfo is None:
                return
            self._entry(ch, row_key, when=when_words(when), staff_note=when.isoformat())
        elif row_key == "incident.statement_taken":
            self._entry(ch, row_key)
            if isinstance(value, str):
                ch.maybe_links.append(CaseLinkV1(kind=LinkKind.STATEMENT, id=value))
        else:
            self._entry(ch, row_key)

    async def _on_alert(self, alert: AlertV1) -> list[CaseUpdateV1]:
        store, refs = self.session, []
        for event_id in alert.source_event_ids:
            ref = await store.case_for_link(LinkKind.CALL, event_id) or await store.case_for_link(
                LinkKind.INCIDENT, event_id
            )
            if ref is not None and ref not in refs:
                refs.append(ref)
        if not refs:
            self._wait(alert)  # its call or incident has no case yet (or never will)
            return []
        holder = await store.case_for_link(LinkKind.ALERT, alert.alert_id)
        updates: list[CaseUpdateV1] = []
        for i, ref in enumerate(refs):
            ch = await self._change(ref, None, f"alert:{alert.alert_id}", alert.created_at)
            if ch is None:
                continue
            if i == 0 and holder is None:
                ch.links.append(CaseLinkV1(kind=LinkKind.ALERT, id=alert.alert_id))
            self._entry(ch, "alert.raised", staff_note=alert.summary, title=alert.title)
            updates.extend(await self._commit(ch))
        return updates

    async def _on_ack(self, ack: AlertAckV1) -> list[CaseUpdateV1]:
        ref = await self.session.case_for_link(LinkKind.ALERT, ack.alert_id)
        ch = await self._change(ref, None, f"alert:{ack.alert_id}", ack.at)
        if ch is None:
            return []
        ch.event_key = f"{ack.action}:{ack.by}:{ack.at.isoformat()}"
        self._entry(
            ch, "ack.update", staff_note=ack.note, action_words=ACK_WORDS[ack.action], by=ack.by
        )
        return await self._commit(ch)

    async def _on_evidence(self, item: EvidenceV1) -> list[CaseUpdateV1]:
        store = self.session
        ref = item.case_ref
        if ref is None and item.incident_id:
            ref = await store.case_for_link(LinkKind.INCIDENT, item.incident_id)
        received = _time((item.model_extra or {}).get("received_at")) or self.clock()
        ch = await self._change(ref, None, f"evidence:{item.evidence_id}", received)
        # The metadata is kept whether or not a case has it yet (never lost).
        await store.save_evidence(item, ch.case.case_ref if ch else None)
        if ch is None:
            return []
        if await store.case_for_link(LinkKind.EVIDENCE, item.evidence_id) is None:
            ch.links.append(CaseLinkV1(kind=LinkKind.EVIDENCE, id=item.evidence_id))
        note = f"{item.kind.value} captured by {item.captured_by} at {item.captured_at.isoformat()}"
        if item.filename:
            note += f": {item.filename}"
        self._entry(ch, "evidence.received", staff_note=note, what=EVIDENCE_WORDS[item.kind])
        return await self._commit(ch)

    async def _on_statement(self, statement: StatementV1) -> list[CaseUpdateV1]:
        """A version of a witness statement: an entry of its own (received or amended)
        and, once, the statement's link. A case not written yet gets nothing (docs/cases.md,
        "Limits")."""
        source = f"statement:{statement.statement_id}"
        ch = await self._change(statement.case_ref, None, source, statement.at)
        if ch is None:
            return []
        ch.event_key = str(statement.version)
        ch.maybe_links.append(CaseLinkV1(kind=LinkKind.STATEMENT, id=statement.statement_id))
        note = f"version {statement.version}, by a {statement.by_role.value}"
        key = "statement.received" if statement.version == 1 else "statement.amended"
        self._entry(ch, key, staff_note=note, version=statement.version)
        return await self._commit(ch)

    # ---- saving and telling ------------------------------------------------------------

    async def _commit(self, ch: _Change) -> list[CaseUpdateV1]:
        """Save what is new of the change (one write, with the case's next version); the
        updates it makes.

        A change whose fields or links differ is new. One that only adds entries may be
        a redelivery: the case's timeline is read first (from the session's cache,
        mostly), and if every entry is there already nothing is written.
        """
        store, before, case = self.session, ch.before, ch.case
        for link in ch.maybe_links:
            if await store.case_for_link(link.kind, link.id) is None:
                ch.links.append(link)
        if before is not None:
            if not ch.links and _fields(case) == _fields(before):
                timeline = await store.timeline(case.case_ref) if ch.entries else []
                stored = {e.entry_id for e in timeline}
                if all(e.entry_id in stored for e in ch.entries):
                    # A redelivery: nothing changed (its updates again, if resending).
                    return self._resent(ch, timeline) if self.resend and timeline else []
            case.updated_at = max(before.updated_at, ch.at)
            case.version = before.version + 1
        new = await store.save(case, ch.entries, ch.links)
        new_ids = {e.entry_id for e in new}
        return self._updates(ch, [e for e in ch.entries if e.entry_id in new_ids])

    def _resent(self, ch: _Change, timeline: Sequence[TimelineEntryV1]) -> list[CaseUpdateV1]:
        """The entry updates a redelivered change made when it was first saved, with the
        same ids and the entries as stored (a message sent again may say it otherwise: a
        re-raised alert): 'opened' for the first entry when the change opened the case
        (its source is that of the case's first entry), 'timeline' for the others."""
        if not ch.entries:
            return []
        stored = {e.entry_id: e for e in timeline}
        entries = [stored[e.entry_id] for e in ch.entries]
        opened = bool(timeline) and timeline[0].source == ch.source
        first = replace(ch, before=None) if opened else ch
        return [u for u in self._updates(first, entries) if u.entry is not None]

    def _updates(self, ch: _Change, new: list[TimelineEntryV1]) -> list[CaseUpdateV1]:
        case, before = ch.case, ch.before
        ref = case.case_ref

        def update(change: str, key: str, at: datetime, **what: Any) -> CaseUpdateV1:
            return CaseUpdateV1(
                update_id=stable_id("upd", ref, change, key),
                case_ref=ref,
                at=at,
                change=change,
                status=case.status,
                category=case.category,
                grade=case.grade,
                officer_in_charge=case.officer_in_charge,
                area=case.area,
                **what,
            )

        out: list[CaseUpdateV1] = []
        for i, entry in enumerate(new):
            opened = before is None and i == 0
            change = "opened" if opened else "timeline"
            out.append(update(change, entry.entry_id, entry.at, entry=entry))
        if before is None and not new:
            out.append(update("opened", "opened", ch.at))
        out.extend(update("link", f"{ln.kind.value}:{ln.id}", ch.at, link=ln) for ln in ch.links)
        if before is not None and not new and not ch.links:
            # No entry tells it: say what changed that people see (officers, status).
            officers = (case.officer_in_charge, case.attending)
            if officers != (before.officer_in_charge, before.attending):
                key = f"{case.officer_in_charge}:{','.join(case.attending)}"
                out.append(update("officer", key, ch.at))
            elif case.status != before.status:
                out.append(update("status", f"{case.status.value}", ch.at))
        return out


def link_keys(source: Source, model: BaseModel) -> list[tuple[LinkKind, str]]:
    """The links ``CaseBook.apply`` looks up for a message (to read them in advance)."""
    if isinstance(model, CallV1):
        return [(LinkKind.CALL, model.call_id)]
    if isinstance(model, IncidentEventV1):
        calls = [(LinkKind.CALL, c) for c in model.call_ids or ()]
        return [(LinkKind.INCIDENT, model.incident_id), *calls]
    if isinstance(model, AlertV1):
        keys = [(LinkKind.ALERT, model.alert_id)]
        for event_id in model.source_event_ids:
            keys += [(LinkKind.CALL, event_id), (LinkKind.INCIDENT, event_id)]
        return keys
    if isinstance(model, AlertAckV1):
        return [(LinkKind.ALERT, model.alert_id)]
    if isinstance(model, EvidenceV1):
        keys = [(LinkKind.EVIDENCE, model.evidence_id)]
        return keys + ([(LinkKind.INCIDENT, model.incident_id)] if model.incident_id else [])
    if isinstance(model, StatementV1):
        return [(LinkKind.STATEMENT, model.statement_id)]
    return []


def _units_note(units: list[str]) -> str | None:
    return "Units: " + ", ".join(units) if units else None


def _time(value: Any) -> datetime | None:
    """An ISO 8601 time with a zone from an extra field, or None."""
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None
