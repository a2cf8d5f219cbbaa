"""Witness statements in the case book: one entry per version, the link once, redelivery
changes nothing, and a statement of a case not written gets nothing."""

from __future__ import annotations

from datetime import timedelta

from cases.book import CaseBook
from records.memory import MemoryRecords
from rtic.casework import LinkKind, StatementV1, TimelineKind
from rtic.schemas import Role
from tests.conftest import NOW
from tests.unit.cases.messages import call


def statement(ref: str, version: int, **overrides: object) -> StatementV1:
    values: dict[str, object] = {
        "statement_id": "ST-9",
        "version": version,
        "case_ref": ref,
        "at": NOW + timedelta(minutes=version),
        "by_role": Role.CITIZEN,
    }
    return StatementV1.model_validate({**values, **overrides})


async def test_each_version_is_an_entry_and_the_statement_is_linked_once(
    book: CaseBook, records: MemoryRecords
) -> None:
    ref = (await book.apply("call", call(call_id="C-1", channel="online", grade=None)))[0].case_ref
    first = await book.apply("statement", statement(ref, 1))
    assert [u.change for u in first] == ["timeline", "link"]
    assert first[0].entry is not None and first[0].entry.kind is TimelineKind.STATEMENT_TAKEN
    assert first[0].entry.staff_note == "version 1, by a citizen"
    second = await book.apply("statement", statement(ref, 2, by_role=Role.OFFICER))
    assert [u.change for u in second] == ["timeline"]
    assert second[0].entry is not None
    assert second[0].entry.text == "A witness statement has been amended (version 2)."
    assert await book.apply("statement", statement(ref, 2)) == []  # redelivered
    view = await records.cases.view(ref)
    assert view is not None
    assert [e.kind for e in view.timeline].count(TimelineKind.STATEMENT_TAKEN) == 2
    assert [(ln.kind, ln.id) for ln in view.links].count((LinkKind.STATEMENT, "ST-9")) == 1


async def test_a_statement_of_a_case_not_written_is_nothing(book: CaseBook) -> None:
    assert await book.apply("statement", statement("WM-2026-0099999", 1)) == []
