"""The table, row by row: each row's message makes that row's entry (kind, words, who sees
it, the status it moves to); which calls open a case; docs/cases.md shows the same table."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from cases.book import CaseBook
from cases.table import (
    ALWAYS_OPEN_CHANNELS,
    CASE_CATEGORIES,
    ROW,
    ROWS,
    markdown_opening,
    markdown_rows,
    opens_case,
    when_words,
)
from rtic.casework import CaseStatus, CaseUpdateV1, StatementV1
from rtic.schemas import Channel, Role
from rtic.settings import PROJECT_ROOT
from tests.conftest import NOW
from tests.unit.cases.messages import ack, alert, call, evidence, incident

Scenario = Callable[[CaseBook], Awaitable[list[CaseUpdateV1]]]


async def _opened(book: CaseBook, grade: int | None = 2) -> tuple[str, str]:
    """A 999 call and its incident: (call id, incident id), the case open and assessed."""
    c = call(call_id="C-1", grade=grade)
    await book.apply("call", c)
    await book.apply("incident", incident(incident_id="I-1", call_ids=["C-1"], grade=grade or 2))
    return "C-1", "I-1"


async def _call_received(book: CaseBook) -> list[CaseUpdateV1]:
    return await book.apply("call", call(grade=None))


async def _call_assessed(book: CaseBook) -> list[CaseUpdateV1]:
    return await book.apply("call", call(grade=2))


async def _incident_opened(book: CaseBook) -> list[CaseUpdateV1]:
    return await book.apply("incident", incident(category="burglary", grade=3))


async def _incident_linked(book: CaseBook) -> list[CaseUpdateV1]:
    await book.apply("call", call(call_id="C-1", grade=2))
    return await book.apply("incident", incident(call_ids=["C-1"], grade=2))


async def _incident_assessed(book: CaseBook) -> list[CaseUpdateV1]:
    await book.apply("call", call(call_id="C-1", grade=3))
    return await book.apply("incident", incident(call_ids=["C-1"], grade=1))


def _event(event: str, **extra: object) -> Scenario:
    async def scenario(book: CaseBook) -> list[CaseUpdateV1]:
        _, inc = await _opened(book)
        at = (NOW + timedelta(minutes=5)).isoformat()
        return await book.apply(
            "incident",
            incident(incident_id=inc, event=event, at=at, grade=2, units=["OFF-7"], **extra),
        )

    return scenario


async def _alert_raised(book: CaseBook) -> list[CaseUpdateV1]:
    call_id, _ = await _opened(book)
    return await book.apply("alert", alert([call_id]))


async def _ack_update(book: CaseBook) -> list[CaseUpdateV1]:
    call_id, _ = await _opened(book)
    await book.apply("alert", alert([call_id]))
    return await book.apply("ack", ack("repeat_caller-abc"))


async def _evidence_received(book: CaseBook) -> list[CaseUpdateV1]:
    _, inc = await _opened(book)
    return await book.apply("evidence", evidence(incident_id=inc))


def _statement(version: int) -> Scenario:
    async def scenario(book: CaseBook) -> list[CaseUpdateV1]:
        updates = await book.apply("call", call(call_id="C-1", grade=None))
        ref = updates[0].case_ref
        out = []
        for v in range(1, version + 1):
            at = NOW + timedelta(minutes=v)
            out = await book.apply(
                "statement",
                StatementV1(
                    statement_id="ST-1", version=v, case_ref=ref, at=at, by_role=Role.CITIZEN
                ),
            )
        return out

    return scenario


VISIT = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
SCENARIOS: dict[str, Scenario] = {
    "call.received": _call_received,
    "call.assessed": _call_assessed,
    "incident.opened": _incident_opened,
    "incident.linked": _incident_linked,
    "incident.assessed": _incident_assessed,
    "incident.assigned": _event("assigned"),
    "incident.visit_booked": _event("updated", visit_booked_for=VISIT.isoformat()),
    "incident.en_route": _event("updated", status="en_route"),
    "incident.arrived": _event("arrived"),
    "incident.statement_taken": _event("updated", statement_taken="ST-1"),
    "incident.suspect_identified": _event("updated", suspect_identified=True),
    "incident.note": _event("updated", note="Neighbour saw a white van"),
    "incident.outcome": _event("closed", result="arrested"),
    "incident.closed": _event("closed"),
    "alert.raised": _alert_raised,
    "ack.update": _ack_update,
    "evidence.received": _evidence_received,
    "statement.received": _statement(1),
    "statement.amended": _statement(2),
}
TEXTS = {
    "call.received": "We have received your 999 call.",
    "call.assessed": "Your report has been assessed as needing a priority response.",
    "incident.opened": "A report has been recorded.",
    "incident.assessed": "Your report has been assessed as needing an emergency response.",
    "incident.visit_booked": "An officer will visit you on Thursday 26 November 2026 at 14:00.",
    "incident.outcome": "Outcome: a person has been arrested.",
    "alert.raised": "Alert raised: Repeat caller at this address",
    "ack.update": "Alert acknowledged by analyst-1.",
    "evidence.received": "We have received evidence for your case: body-worn video.",
    "statement.amended": "A witness statement has been amended (version 2).",
}


def test_every_row_has_a_scenario() -> None:
    assert set(SCENARIOS) == set(ROW)
    assert len(ROW) == len(ROWS)


@pytest.mark.parametrize("key", [r.key for r in ROWS])
async def test_row(key: str, book: CaseBook) -> None:
    row = ROW[key]
    updates = await SCENARIOS[key](book)
    assert updates, f"{key}: no update"
    if row.entry is None:
        # A row that only links: the incident's link, and no entry of its own.
        assert [u.change for u in updates] == ["link"]
        assert updates[0].link is not None and updates[0].link.kind.value == "incident"
        return
    entries = [u.entry for u in updates if u.entry is not None and u.entry.kind is row.entry]
    assert entries, f"{key}: no {row.entry.value} entry in {[u.change for u in updates]}"
    entry = entries[-1]
    assert entry.citizen_visible is row.citizen_visible
    if key in TEXTS:
        assert entry.text == TEXTS[key]
    else:
        assert entry.text == row.text
    if row.status is not None:
        # The message's last update carries the case as it now stands. An incident that
        # opens a case also grades it, so that case is already assessed.
        expected = CaseStatus.ASSESSED if key == "incident.opened" else row.status
        assert updates[-1].status is expected


async def test_each_row_moves_the_status_it_names(book: CaseBook) -> None:
    """Statuses move forward only: received -> assessed -> under investigation -> closed."""
    updates = await book.apply("call", call(call_id="C-9", grade=None))
    assert updates[-1].status is CaseStatus.RECEIVED
    updates = await book.apply("incident", incident(incident_id="I-9", call_ids=["C-9"]))
    assert updates[-1].status is CaseStatus.ASSESSED
    later = NOW + timedelta(minutes=3)
    updates = await book.apply(
        "incident", incident(incident_id="I-9", event="assigned", at=later.isoformat())
    )
    assert updates[-1].status is CaseStatus.UNDER_INVESTIGATION
    regraded = await book.apply(
        "incident",
        incident(
            incident_id="I-9",
            event="updated",
            grade=3,
            at=(later + timedelta(minutes=1)).isoformat(),
        ),
    )
    assert [u.status for u in regraded] == [CaseStatus.UNDER_INVESTIGATION]  # never back
    closed = await book.apply(
        "incident",
        incident(incident_id="I-9", event="closed", at=(later + timedelta(minutes=2)).isoformat()),
    )
    assert closed[-1].status is CaseStatus.CLOSED


async def test_an_unknown_result_is_recorded_for_staff_in_plain_words(book: CaseBook) -> None:
    _, inc = await _opened(book)
    updates = await book.apply(
        "incident", incident(incident_id=inc, event="closed", result="code_77_filed")
    )
    (outcome,) = [u.entry for u in updates if u.entry and u.entry.kind.value == "outcome"]
    assert outcome.text == "An outcome has been recorded."
    assert outcome.staff_note == "code_77_filed"


@pytest.mark.parametrize(
    ("channel", "category", "opens"),
    [
        (Channel.EMERGENCY, "domestic_abuse", True),
        (Channel.EMERGENCY, "burglary", True),
        (Channel.NON_EMERGENCY, "asb", True),
        (Channel.EMERGENCY, "traffic", False),
        (Channel.NON_EMERGENCY, "other", False),
        (Channel.EMERGENCY, "suspicious_vehicle", False),
        (Channel.EMERGENCY, "something_new", False),
        (Channel.ONLINE, "other", True),
        (Channel.WEBCHAT, "traffic", True),
        (None, "assault", True),
        (None, "traffic", False),
    ],
)
def test_which_calls_open_a_case(channel: Channel | None, category: str, opens: bool) -> None:
    assert opens_case(channel, category) is opens


def test_every_channel_and_category_of_the_simulator_is_decided() -> None:
    from simulators.demand import CATEGORIES

    decided = {c for c, _ in CATEGORIES if c in CASE_CATEGORIES}
    assert decided == {
        "domestic_abuse",
        "burglary",
        "assault",
        "robbery",
        "asb",
        "concern_for_safety",
        "missing_person",
    }
    assert ALWAYS_OPEN_CHANNELS == {Channel.ONLINE, Channel.WEBCHAT}


def test_times_are_told_in_local_time() -> None:
    summer = datetime(2026, 7, 1, 8, 30, tzinfo=UTC)
    assert when_words(summer) == "Wednesday 1 July 2026 at 09:30"
    assert when_words(VISIT) == "Thursday 26 November 2026 at 14:00"


def test_docs_show_the_table_as_it_is() -> None:
    """docs/cases.md carries the table and the opening rules exactly as the code has them
    (regenerate with ``python -c 'from cases.table import markdown_rows; print(markdown_rows())'``)."""
    doc = (PROJECT_ROOT / "docs" / "cases.md").read_text()
    assert markdown_rows() in doc
    assert markdown_opening() in doc
    for row in ROWS:
        assert f"`{row.key}`" in doc
