"""The case book on the in-memory records: a case's life from its call to its close,
references, redelivery and replays (nothing new, nothing doubled), and the links that
bring incidents, alerts, acknowledgements and evidence into a case."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cases.book import CaseBook
from records.memory import MemoryRecords
from rtic.casework import CaseStatus, LinkKind, TimelineKind, is_case_ref
from tests.conftest import NOW
from tests.unit.cases.messages import AREA, Clock, ack, alert, call, evidence, incident, kinds


def _life(call_id: str = "C-1", incident_id: str = "I-1") -> list[tuple[str, Any]]:
    """A 999 call, its incident created, assigned, en route, arrived and closed."""

    def at(minutes: float) -> str:
        return (NOW + timedelta(minutes=minutes)).isoformat()

    def event(name: str, minutes: float, **extra: Any) -> Any:
        return incident(incident_id=incident_id, event=name, at=at(minutes), grade=2, **extra)

    return [
        ("call", call(call_id=call_id, grade=2)),
        ("incident", event("created", 1, call_ids=[call_id])),
        ("incident", event("assigned", 2, units=["OFF-7", "OFF-8"])),
        ("incident", event("updated", 3, units=["OFF-7"], status="en_route")),
        ("incident", event("arrived", 9, units=["OFF-7"])),
        ("incident", event("closed", 50, units=["OFF-7"], result="advice_given")),
    ]


async def _apply_all(book: CaseBook, messages: list[tuple[str, Any]]) -> list[Any]:
    updates = []
    for source, model in messages:
        updates.extend(await book.apply(source, model))
    return updates


async def test_a_case_from_call_to_close(book: CaseBook, records: MemoryRecords) -> None:
    updates = await _apply_all(book, _life())
    ref = updates[0].case_ref
    assert ref == "WM-2026-0000001"
    assert updates[0].change == "opened"
    assert {u.case_ref for u in updates} == {ref}
    assert kinds(updates) == [
        "received",
        "assessed",
        "officer_assigned",
        "officer_en_route",
        "officer_attended",
        "outcome",
        "closed",
    ]
    assert [u.link.id for u in updates if u.link] == ["C-1", "I-1"]
    assert len({u.update_id for u in updates}) == len(updates)
    view = await records.cases.view(ref)
    assert view is not None
    case = view.case
    assert case.status is CaseStatus.CLOSED
    assert case.officer_in_charge == "OFF-7"
    assert case.attending == ["OFF-7", "OFF-8"]
    assert case.grade == 2 and case.area == AREA
    assert case.address == "12 Example Street, Birmingham B7 4AA"
    assert case.reporter is not None and case.reporter.name == "A Caller"
    assert case.closed_at == NOW + timedelta(minutes=50)
    assert [e.kind.value for e in view.timeline] == kinds(updates)
    assert [e.text for e in view.timeline][-2:] == [
        "Outcome: advice was given.",
        "Your case has been closed.",
    ]
    assert {(ln.kind, ln.id) for ln in view.links} == {
        (LinkKind.CALL, "C-1"),
        (LinkKind.INCIDENT, "I-1"),
    }
    # One version per change: opening, the incident's link, assigned, en route, arrived, closed.
    assert case.version == 6


async def test_redelivery_gives_no_new_entry_and_no_update(
    book: CaseBook, records: MemoryRecords
) -> None:
    life = _life()
    for source, model in life:
        first = await book.apply(source, model)
        assert first
        assert await book.apply(source, model) == []  # the same message again
    ref = "WM-2026-0000001"
    view = await records.cases.view(ref)
    assert view is not None
    # A whole stretch of the stream replayed (a restart before the offsets were committed).
    assert await _apply_all(book, life) == []
    again = await records.cases.view(ref)
    assert again == view
    assert await records.cases.next_case_number(2026) == 2  # no number spent on replays


async def test_a_resending_book_gives_a_redelivered_message_its_updates_again(
    records: MemoryRecords, clock: Clock
) -> None:
    """A worker that stored a change and died before it sent its updates: the message
    comes again and the same updates (same ids, same entries) go out; nothing is stored
    twice."""
    book = CaseBook(records.cases, "WM", clock, area_codes=lambda lat, lon: list(AREA), resend=True)
    for source, model in _life():
        first = await book.apply(source, model)
        entries = [u for u in first if u.entry is not None]
        again = await book.apply(source, model)  # the same message again
        # Each entry the message makes again, as it was first sent (a call's grading is
        # not made again: the case has its grade; see the report of issue 11).
        assert bool(again) == bool(entries)
        assert {(u.update_id, u.change, u.model_dump_json(include={"entry"})) for u in again} <= {
            (u.update_id, u.change, u.model_dump_json(include={"entry"})) for u in entries
        }
    ref = "WM-2026-0000001"
    view = await records.cases.view(ref)
    assert view is not None
    assert len({e.entry_id for e in view.timeline}) == len(view.timeline)
    assert await records.cases.next_case_number(2026) == 2


async def test_a_replayed_old_grading_does_not_put_the_old_grade_back(
    book: CaseBook, records: MemoryRecords
) -> None:
    messages: list[tuple[str, Any]] = [
        ("call", call(call_id="C-1", grade=3)),
        ("incident", incident(incident_id="I-1", call_ids=["C-1"], grade=1)),
        (
            "incident",
            incident(
                incident_id="I-1",
                event="updated",
                grade=2,
                at=(NOW + timedelta(minutes=5)).isoformat(),
            ),
        ),
    ]
    updates = await _apply_all(book, messages)
    assert kinds(updates) == ["received", "assessed", "assessed", "assessed"]
    assert [u.grade for u in updates if u.entry] == [3, 3, 1, 2]
    assert await _apply_all(book, messages) == []
    case = await records.cases.get_case(updates[0].case_ref)
    assert case is not None and case.grade == 2


async def test_gradings_at_the_same_time_replayed_keep_the_last(
    book: CaseBook, records: MemoryRecords
) -> None:
    """A call and its incident's events all stamped with one time: the incident's last
    grading stands, and reading them again changes nothing."""
    messages: list[tuple[str, Any]] = [
        ("call", call(call_id="C-1", grade=2)),
        ("incident", incident(incident_id="I-1", call_ids=["C-1"], grade=2)),
        ("incident", incident(incident_id="I-1", event="assigned", grade=1, units=["O-1"])),
    ]
    first = await _apply_all(book, messages)
    assert kinds(first) == ["received", "assessed", "assessed", "officer_assigned"]
    assert await _apply_all(book, messages) == []
    case = await records.cases.get_case(first[0].case_ref)
    assert case is not None and case.grade == 1


async def test_a_call_with_a_case_ref_keeps_it(book: CaseBook, records: MemoryRecords) -> None:
    updates = await book.apply(
        "call", call(channel="online", category="burglary", case_ref="WM-2026-0004321", grade=None)
    )
    assert {u.case_ref for u in updates} == {"WM-2026-0004321"}
    assert kinds(updates) == ["received"]
    assert updates[0].entry is not None
    assert updates[0].entry.text == "We have received your report made online."
    assert await records.cases.next_case_number(2026) == 1  # none taken from the sequence


async def test_references_count_up_per_year(book: CaseBook) -> None:
    first = await book.apply("call", call())
    second = await book.apply("call", call())
    next_year = await book.apply("call", call(received_at="2027-01-01T00:00:05+00:00"))
    refs = [first[0].case_ref, second[0].case_ref, next_year[0].case_ref]
    assert refs == ["WM-2026-0000001", "WM-2026-0000002", "WM-2027-0000001"]
    assert all(is_case_ref(r) for r in refs)


async def test_force_code_prefixes_the_reference(records: MemoryRecords) -> None:
    book = CaseBook(records.cases, "NWP", Clock())
    (u, *_) = await book.apply("call", call())
    assert u.case_ref == "NWP-2026-0000001"
    assert u.area == []  # no area look-up given


async def test_calls_that_open_no_case(book: CaseBook, records: MemoryRecords) -> None:
    assert await book.apply("call", call(category="traffic")) == []
    assert await book.apply("call", call(channel="101", category="other")) == []
    assert await book.apply("incident", incident(category="traffic")) == []
    assert await records.cases.list_cases() == []


async def test_an_incident_before_its_call_opens_the_case_the_call_then_joins(
    book: CaseBook, records: MemoryRecords
) -> None:
    opened = await book.apply(
        "incident", incident(incident_id="I-1", call_ids=["C-1"], category="robbery")
    )
    ref = opened[0].case_ref
    assert kinds(opened) == ["received", "assessed"]
    late = await book.apply("call", call(call_id="C-1", category="robbery", grade=1))
    assert late == []  # the case was received and graded already: nothing to tell
    case = await records.cases.get_case(ref)
    assert case is not None and case.reporter is not None and case.grade == 1
    assert len(await records.cases.list_cases()) == 1


async def test_alerts_and_acks_are_staff_entries_of_the_case(
    book: CaseBook, records: MemoryRecords
) -> None:
    await _apply_all(book, _life()[:2])
    raised = await book.apply("alert", alert(["C-1"]))
    assert kinds(raised) == ["alert_raised"]
    assert all(u.entry is None or not u.entry.citizen_visible for u in raised)
    assert [u.link.id for u in raised if u.link] == ["repeat_caller-abc"]
    # The same alert sent again with more hits (a higher version) adds nothing.
    assert await book.apply("alert", alert(["C-1"], version=2)) == []
    acked = await book.apply("ack", ack("repeat_caller-abc"))
    assert kinds(acked) == ["update"]
    entry = acked[0].entry
    assert entry is not None and not entry.citizen_visible
    assert entry.staff_note == "seen, caller known"
    # Alerts on plate reads, or on calls that are in no case, belong to no case.
    assert await book.apply("alert", alert(["READ-1"], alert_id="anpr-1")) == []
    assert await book.apply("ack", ack("anpr-1")) == []


async def test_an_alert_on_an_incident_of_the_case(book: CaseBook) -> None:
    await _apply_all(book, _life()[:2])
    updates = await book.apply("alert", alert(["I-1"], alert_id="officer_safety-1"))
    assert kinds(updates) == ["alert_raised"]


async def test_evidence_joins_its_incident_s_case_and_is_kept_without_one(
    book: CaseBook, records: MemoryRecords, clock: Clock
) -> None:
    await _apply_all(book, _life()[:2])
    updates = await book.apply("evidence", evidence(incident_id="I-1"))
    assert kinds(updates) == ["evidence_received"]
    assert updates[0].entry is not None and updates[0].entry.at == clock.now
    assert [u.link.id for u in updates if u.link] == ["EV-1"]
    assert await book.apply("evidence", evidence(incident_id="I-1")) == []
    stored = await records.cases.get_evidence("EV-1")
    assert stored is not None and stored[1] == updates[0].case_ref
    view = await records.cases.view(updates[0].case_ref)
    assert view is not None and [e.evidence_id for e in view.evidence] == ["EV-1"]

    assert await book.apply("evidence", evidence(evidence_id="EV-2", incident_id="I-X")) == []
    orphan = await records.cases.get_evidence("EV-2")
    assert orphan is not None and orphan[1] is None


async def test_job_updates_with_the_same_time_are_told_apart_by_their_update_id(
    book: CaseBook,
) -> None:
    await _apply_all(book, _life()[:2])
    same = {"incident_id": "I-1", "event": "updated", "at": NOW.isoformat(), "grade": 2}
    first = await book.apply("incident", incident(**same, note="first", update_id="U-1"))
    second = await book.apply("incident", incident(**same, note="second", update_id="U-2"))
    assert kinds(first) == kinds(second) == ["update"]
    assert first[0].entry is not None and second[0].entry is not None
    assert first[0].entry.entry_id != second[0].entry.entry_id


async def test_a_visit_booked_with_no_time_zone_is_not_told(book: CaseBook) -> None:
    await _apply_all(book, _life()[:2])
    updates = await book.apply(
        "incident",
        incident(incident_id="I-1", event="updated", grade=2, visit_booked_for="tomorrow"),
    )
    assert updates == []
    assert TimelineKind.VISIT_BOOKED.value not in kinds(updates)


async def test_an_alert_before_its_call_waits_and_joins_the_case_the_call_opens(
    book: CaseBook, records: MemoryRecords
) -> None:
    assert await book.apply("alert", alert(["C-9"], alert_id="near_repeat-9")) == []
    assert book.waiting == 1
    updates = await book.apply("call", call(call_id="C-9", grade=2))
    assert "alert_raised" in kinds(updates) and book.waiting == 0
    view = await records.cases.view(updates[0].case_ref)
    assert view is not None
    assert {(ln.kind, ln.id) for ln in view.links} >= {(LinkKind.ALERT, "near_repeat-9")}


async def test_a_waiting_alert_taken_by_a_batch_that_is_discarded_waits_again(
    book: CaseBook, records: MemoryRecords
) -> None:
    await book.apply("alert", alert(["C-8"], alert_id="near_repeat-8"))
    await book.apply("call", call(call_id="C-8", grade=2), flush=False)
    assert book.waiting == 0
    book.discard()  # the batch will come again: the alert must still be waiting then
    assert book.waiting == 1
    updates = await book.apply("call", call(call_id="C-8", grade=2))
    assert "alert_raised" in kinds(updates)


async def test_an_officers_update_read_twice_makes_its_entries_once(
    book: CaseBook, records: MemoryRecords
) -> None:
    """The gateway may write one job update twice (a claim that lapsed after the write):
    the same ``update_id``, even at another time, adds nothing the second time."""
    updates = await _apply_all(book, _life()[:3])
    ref = updates[0].case_ref
    steps = [
        {"event": "updated", "status": "en_route", "update_id": "U-en"},
        {"event": "arrived", "update_id": "U-ar"},
        {"event": "updated", "note": "Door forced", "update_id": "U-log"},
        {"event": "closed", "result": "advice_given", "note": "All calm", "update_id": "U-cl"},
    ]
    made: list[str] = []
    for i, step in enumerate(steps):
        at = (NOW + timedelta(minutes=10 + i)).isoformat()
        event = incident(incident_id="I-1", at=at, grade=2, units=["OFF-7"], by="OFF-7", **step)
        made += kinds(await book.apply("incident", event))
        later = (NOW + timedelta(minutes=10 + i, seconds=30)).isoformat()
        again = incident(incident_id="I-1", at=later, grade=2, units=["OFF-7"], **step)
        assert await book.apply("incident", again) == []
    assert made == [
        "officer_en_route",
        "officer_attended",
        "update",
        "outcome",
        "closed",
        "update",
    ]
    view = await records.cases.view(ref)
    assert view is not None
    timeline = [e.kind.value for e in view.timeline]
    counts = {k: timeline.count(k) for k in ("officer_en_route", "officer_attended", "update")}
    assert counts == {"officer_en_route": 1, "officer_attended": 1, "update": 2}
