"""The behaviour every ``Records`` must have: one set of tests, run against each.

``RecordsContract`` is subclassed where a ``records`` fixture is given:
``tests/unit/records/test_contract.py`` (in memory and SQLite in a temporary
file) and ``tests/integration/test_records_sql.py`` (SQLite and PostgreSQL). What
passes here passes on every store, so unit tests of the case module can trust
``MemoryRecords``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from records.protocols import (
    CaseRow,
    CaseWrite,
    PortalCredential,
    Records,
    ReporterV1,
    StatementRow,
)
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
    format_case_ref,
    stable_id,
)

T0 = datetime(2026, 11, 24, 21, 30, tzinfo=UTC)
SHA = "ab" * 32


def make_case(number: int = 1, **overrides: Any) -> CaseRow:
    values: dict[str, Any] = {
        "case_ref": format_case_ref("WM", 2026, number),
        "status": CaseStatus.RECEIVED,
        "category": "burglary",
        "grade": 3,
        "opened_at": T0 + timedelta(minutes=number),
        "updated_at": T0 + timedelta(minutes=number),
        "area": ["BE"],
        "address": "12 Example Street, Birmingham B7 4AA",
        "reporter": ReporterV1(person_id="P-1", name="A Caller", phone="07700900000"),
        "secret_hash": "scrypt$abc",
    }
    values.update(overrides)
    return CaseRow(**values)


def make_entry(case: CaseRow, n: int, **overrides: Any) -> TimelineEntryV1:
    values: dict[str, Any] = {
        "entry_id": stable_id("ent", case.case_ref, n),
        "case_ref": case.case_ref,
        "kind": TimelineKind.RECEIVED,
        "at": T0 + timedelta(minutes=n),
        "text": f"Entry {n}",
        "source": f"call:C-{n}",
    }
    values.update(overrides)
    return TimelineEntryV1(**values)


def make_evidence(n: int = 1, **overrides: Any) -> EvidenceV1:
    values: dict[str, Any] = {
        "evidence_id": f"EV-{n}",
        "kind": EvidenceKind.BODY_WORN_VIDEO,
        "captured_by": "OFF-1",
        "captured_at": T0 + timedelta(minutes=n),
        "sha256": SHA,
        "storage_uri": f"s3://bwv/{n}.mp4",
        "incident_id": "INC-1",
    }
    values.update(overrides)
    return EvidenceV1(**values)


def make_audit(n: int = 1, **overrides: Any) -> AuditV1:
    values: dict[str, Any] = {
        "audit_id": f"AUD-{n:05d}",
        "at": T0 + timedelta(seconds=n),
        "actor": "analyst-1",
        "role": "rtic_analyst",
        "action": AuditAction.ALERT_DELIVERED,
        "object_type": AuditObject.ALERT,
        "object_id": "AL-1",
        "origin": "10.0.0.7",
        "detail": {"version": n, "nested": {"a": [1, 2]}},
    }
    values.update(overrides)
    return AuditV1(**values)


def make_statement(case_ref: str, n: int = 1, **overrides: Any) -> StatementRow:
    values: dict[str, Any] = {
        "statement_id": f"ST-{n}",
        "case_ref": case_ref,
        "at": T0 + timedelta(minutes=n),
        "by": f"citizen:{case_ref}",
        "by_role": "citizen",
        "body": {"what_i_saw": f"Saw it, take {n}", "declaration": True},
    }
    values.update(overrides)
    return StatementRow(**values)


class RecordsContract:
    """Tests any ``Records`` passes; a subclass provides the ``records`` fixture."""

    # ---- case numbers -------------------------------------------------------------------

    async def test_case_numbers_count_up_per_year(self, records: Records) -> None:
        got = [await records.cases.next_case_number(2026) for _ in range(3)]
        assert got == [1, 2, 3]
        assert await records.cases.next_case_number(2027) == 1
        assert await records.cases.next_case_number(2026) == 4

    async def test_concurrent_callers_get_distinct_consecutive_numbers(
        self, records: Records
    ) -> None:
        got = await asyncio.gather(*(records.cases.next_case_number(2030) for _ in range(20)))
        assert sorted(got) == list(range(1, 21))

    # ---- cases, timelines, links --------------------------------------------------------

    async def test_a_saved_case_reads_back_the_same(self, records: Records) -> None:
        case = make_case(attending=["OFF-2"], officer_in_charge="OFF-1", grade=2)
        assert await records.cases.get_case(case.case_ref) is None
        await records.cases.save(case)
        assert await records.cases.get_case(case.case_ref) == case

    async def test_times_come_back_aware_utc_and_the_same_instant(self, records: Records) -> None:
        local = timezone(timedelta(hours=1))
        at = datetime(2026, 6, 1, 12, 0, 0, 123456, tzinfo=local)
        case = make_case(opened_at=at, updated_at=at)
        entry = make_entry(case, 1, at=at)
        await records.cases.save(case, [entry])
        await records.cases.save_evidence(make_evidence(1, captured_at=at), case.case_ref)
        await records.audit.append([make_audit(1, at=at)])
        await records.revocations.revoke(jti=None, sub="OFF-1", by="a", reason="r", at=at)
        view = await records.cases.view(case.case_ref)
        assert view is not None
        audit = await records.audit.for_object(AuditObject.ALERT, "AL-1")
        revoked = (await records.revocations.revocations()).subjects_before["OFF-1"]
        for got in (view.case.opened_at, view.timeline[0].at, view.evidence[0].captured_at):
            assert got == at and got.utcoffset() == timedelta(0)
        for got in (audit[0].at, revoked):
            assert got == at and got.utcoffset() == timedelta(0)

    async def test_saving_the_same_case_twice_changes_nothing(self, records: Records) -> None:
        case = make_case()
        entries = [make_entry(case, 1), make_entry(case, 2, kind=TimelineKind.ASSESSED)]
        links = [CaseLinkV1(kind=LinkKind.CALL, id="C-1")]
        first = await records.cases.save(case, entries, links)
        view_once = await records.cases.view(case.case_ref)
        again = await records.cases.save(case, entries, links)
        assert first == entries
        assert again == []
        assert await records.cases.view(case.case_ref) == view_once

    async def test_only_new_entries_are_returned(self, records: Records) -> None:
        case = make_case()
        e1, e2, e3 = (make_entry(case, n) for n in (1, 2, 3))
        await records.cases.save(case, [e1, e2])
        assert await records.cases.save(case, [e2, e3, e3]) == [e3]

    async def test_timeline_is_oldest_first_and_keeps_order_within_an_instant(
        self, records: Records
    ) -> None:
        case = make_case()
        late = make_entry(case, 9)
        same_a = make_entry(case, 2, text="received")
        same_b = make_entry(case, 3, at=same_a.at, text="assessed", kind=TimelineKind.ASSESSED)
        await records.cases.save(case, [late])
        await records.cases.save(case, [same_a, same_b])
        view = await records.cases.view(case.case_ref)
        assert view is not None
        assert [e.text for e in view.timeline] == ["received", "assessed", "Entry 9"]

    async def test_entries_of_another_case_are_refused(self, records: Records) -> None:
        case, other = make_case(1), make_case(2)
        with pytest.raises(ValueError):
            await records.cases.save(case, [make_entry(other, 1)])

    async def test_an_older_version_never_overwrites_a_newer_one(self, records: Records) -> None:
        v2 = make_case(status=CaseStatus.ASSESSED, version=2, officer_in_charge="OFF-9")
        v1 = make_case(version=1)
        await records.cases.save(v2)
        await records.cases.save(v1)
        assert await records.cases.get_case(v2.case_ref) == v2
        assert [c.case_ref for c in await records.cases.list_cases(officer="OFF-9")] == [
            v2.case_ref
        ]

    async def test_a_newer_version_replaces_the_case(self, records: Records) -> None:
        case = make_case(officer_in_charge="OFF-1")
        await records.cases.save(case)
        moved = case.model_copy(update={"officer_in_charge": "OFF-2", "version": 2})
        await records.cases.save(moved)
        assert await records.cases.get_case(case.case_ref) == moved
        assert await records.cases.list_cases(officer="OFF-1") == []
        assert await records.cases.list_cases(officer="OFF-2") == [moved]

    async def test_cases_for_links_reads_many_links_at_once(self, records: Records) -> None:
        first, second = make_case(1), make_case(2)
        await records.cases.save(first, links=[CaseLinkV1(kind=LinkKind.CALL, id="X-1")])
        await records.cases.save(second, links=[CaseLinkV1(kind=LinkKind.INCIDENT, id="X-2")])
        keys = [
            (LinkKind.CALL, "X-1"),
            (LinkKind.INCIDENT, "X-1"),  # the same id, another kind: in no case
            (LinkKind.INCIDENT, "X-2"),
            (LinkKind.ALERT, "X-3"),
        ]
        assert await records.cases.cases_for_links(keys) == {
            (LinkKind.CALL, "X-1"): first.case_ref,
            (LinkKind.INCIDENT, "X-2"): second.case_ref,
        }
        assert await records.cases.cases_for_links([]) == {}

    # ---- a batch of writes in one transaction ------------------------------------------

    async def test_save_many_leaves_what_saving_each_in_turn_leaves(self, records: Records) -> None:
        one, two = make_case(1), make_case(2)
        one_v2 = one.model_copy(update={"status": CaseStatus.ASSESSED, "version": 2})
        one_v3 = one_v2.model_copy(update={"officer_in_charge": "OFF-1", "version": 3})
        e1, e2, e3 = (make_entry(one, n) for n in (1, 2, 3))
        f1 = make_entry(two, 4)
        call = CaseLinkV1(kind=LinkKind.CALL, id="C-1")
        writes = [
            CaseWrite(one, [e1], [call]),
            CaseWrite(two, [f1], [call, CaseLinkV1(kind=LinkKind.CALL, id="C-2")]),
            CaseWrite(one_v2, [e1, e2, e2]),
            CaseWrite(one_v3, [e2, e3]),
        ]
        assert await records.cases.save_many(writes) == [[e1], [f1], [e2], [e3]]
        assert await records.cases.get_case(one.case_ref) == one_v3
        assert await records.cases.get_case(two.case_ref) == two
        assert [c.case_ref for c in await records.cases.list_cases(officer="OFF-1")] == [
            one.case_ref
        ]
        assert await records.cases.case_for_link(LinkKind.CALL, "C-1") == one.case_ref
        assert await records.cases.case_for_link(LinkKind.CALL, "C-2") == two.case_ref
        view = await records.cases.view(one.case_ref)
        assert view is not None and [e.entry_id for e in view.timeline] == [
            e.entry_id for e in (e1, e2, e3)
        ]

    async def test_save_many_twice_changes_nothing(self, records: Records) -> None:
        one, two = make_case(1), make_case(2)
        writes = [
            CaseWrite(one, [make_entry(one, 1)], [CaseLinkV1(kind=LinkKind.CALL, id="C-1")]),
            CaseWrite(two, [make_entry(two, 2)], [CaseLinkV1(kind=LinkKind.INCIDENT, id="I-2")]),
        ]
        await records.cases.save_many(writes)
        views = [await records.cases.view(c.case_ref) for c in (one, two)]
        assert await records.cases.save_many(writes) == [[], []]
        assert [await records.cases.view(c.case_ref) for c in (one, two)] == views

    async def test_save_many_keeps_the_newest_version_whatever_the_order(
        self, records: Records
    ) -> None:
        v2 = make_case(status=CaseStatus.ASSESSED, version=2)
        await records.cases.save_many([CaseWrite(v2), CaseWrite(make_case(version=1))])
        assert await records.cases.get_case(v2.case_ref) == v2

    async def test_a_failing_save_many_writes_nothing(self, records: Records) -> None:
        one, two = make_case(1), make_case(2)
        good = CaseWrite(one, [make_entry(one, 1)], [CaseLinkV1(kind=LinkKind.CALL, id="C-1")])
        bad = CaseWrite(two, [make_entry(one, 2)])  # an entry of another case
        with pytest.raises(ValueError):
            await records.cases.save_many([good, bad])
        assert await records.cases.get_case(one.case_ref) is None
        assert await records.cases.case_for_link(LinkKind.CALL, "C-1") is None
        assert await records.cases.list_cases() == []

    async def test_save_many_of_nothing_is_nothing(self, records: Records) -> None:
        assert await records.cases.save_many([]) == []

    async def test_links_find_their_case_and_stay_with_the_first(self, records: Records) -> None:
        first, second = make_case(1), make_case(2)
        call = CaseLinkV1(kind=LinkKind.CALL, id="C-1")
        await records.cases.save(first, links=[call, CaseLinkV1(kind=LinkKind.INCIDENT, id="I-1")])
        await records.cases.save(second, links=[call])
        assert await records.cases.case_for_link(LinkKind.CALL, "C-1") == first.case_ref
        assert await records.cases.case_for_link(LinkKind.INCIDENT, "I-1") == first.case_ref
        assert await records.cases.case_for_link(LinkKind.ALERT, "C-1") is None
        assert await records.cases.case_for_link(LinkKind.CALL, "C-2") is None
        view = await records.cases.view(second.case_ref)
        assert view is not None and view.links == []

    async def test_view_holds_timeline_links_and_evidence(self, records: Records) -> None:
        case = make_case()
        entry = make_entry(case, 1)
        links = [
            CaseLinkV1(kind=LinkKind.CALL, id="C-1"),
            CaseLinkV1(kind=LinkKind.INCIDENT, id="I-1"),
        ]
        await records.cases.save(case, [entry], links)
        later, earlier = make_evidence(5), make_evidence(2)
        await records.cases.save_evidence(later, case.case_ref)
        await records.cases.save_evidence(earlier, case.case_ref)
        await records.cases.save_evidence(make_evidence(3), None)
        view = await records.cases.view(case.case_ref)
        assert view is not None
        assert view.case == case and view.timeline == [entry] and view.links == links
        assert view.evidence == [earlier, later]
        assert await records.cases.view("WM-2026-0999999") is None

    async def test_list_cases_filters_and_orders_newest_first(self, records: Records) -> None:
        mine = make_case(1, officer_in_charge="OFF-1", area=["BE"])
        attending = make_case(2, attending=["OFF-1", "OFF-2"], area=["CV"])
        other = make_case(3, officer_in_charge="OFF-3", area=["CV"])
        closed = make_case(
            4, area=["WO"], status=CaseStatus.CLOSED, closed_at=T0 + timedelta(hours=1)
        )
        for case in (mine, attending, other, closed):
            await records.cases.save(case)
        refs = lambda cases: [c.case_ref for c in cases]  # noqa: E731
        newest_first = [closed, other, attending, mine]
        assert refs(await records.cases.list_cases()) == refs(newest_first)
        assert refs(await records.cases.list_cases(officer="OFF-1")) == refs([attending, mine])
        assert refs(await records.cases.list_cases(areas=["CV"])) == refs([other, attending])
        assert refs(await records.cases.list_cases(officer="OFF-1", areas=["WO"])) == refs(
            [closed, attending, mine]
        )
        assert refs(await records.cases.list_cases(areas=[])) == []
        assert refs(await records.cases.list_cases(status=[CaseStatus.CLOSED])) == refs([closed])
        assert refs(await records.cases.list_cases(limit=2)) == refs([closed, other])

    # ---- evidence ------------------------------------------------------------------------

    async def test_evidence_is_stored_once_and_keeps_its_extra_fields(
        self, records: Records
    ) -> None:
        item = make_evidence(1, camera_serial="BWV-77")  # extra fields are allowed
        assert await records.cases.save_evidence(item, None) is True
        assert await records.cases.save_evidence(item, None) is False
        got = await records.cases.get_evidence(item.evidence_id)
        assert got == (item, None)
        assert got is not None and got[0].model_extra == {"camera_serial": "BWV-77"}
        assert await records.cases.get_evidence("EV-none") is None

    async def test_evidence_is_linked_once_its_case_is_known(self, records: Records) -> None:
        case = make_case()
        await records.cases.save(case)
        item = make_evidence(1)
        await records.cases.save_evidence(item, None)
        assert await records.cases.save_evidence(item, case.case_ref) is False
        assert await records.cases.get_evidence(item.evidence_id) == (item, case.case_ref)
        await records.cases.save_evidence(item, "WM-2026-0000777")  # never moved
        assert await records.cases.get_evidence(item.evidence_id) == (item, case.case_ref)

    # ---- audit ---------------------------------------------------------------------------

    async def test_audit_appends_each_record_once(self, records: Records) -> None:
        batch = [make_audit(n) for n in range(1, 6)]
        assert await records.audit.append(batch) == 5
        assert await records.audit.append([*batch[3:], batch[3], make_audit(6)]) == 1
        assert await records.audit.append([]) == 0
        assert len(await records.audit.for_object(AuditObject.ALERT, "AL-1")) == 6

    async def test_audit_history_is_oldest_first_and_limited(self, records: Records) -> None:
        late = make_audit(1, at=T0 + timedelta(hours=1))
        early = make_audit(2, at=T0)
        other = make_audit(3, object_id="AL-2")
        search = make_audit(
            4,
            action=AuditAction.HISTORY_SEARCH,
            object_type=AuditObject.PLATE,
            object_id="AB12CDE",
            reason="stolen vehicle enquiry",
            reference="OP-123",
        )
        await records.audit.append([late, early, other, search])
        assert await records.audit.for_object(AuditObject.ALERT, "AL-1") == [early, late]
        assert await records.audit.for_object(AuditObject.ALERT, "AL-1", limit=1) == [early]
        assert await records.audit.for_object(AuditObject.PLATE, "AB12CDE") == [search]
        assert await records.audit.for_object(AuditObject.CASE, "AL-1") == []

    async def test_audit_since_streams_everything_from_a_time_in_order(
        self, records: Records
    ) -> None:
        batch = [make_audit(n, at=T0 + timedelta(seconds=n // 3)) for n in range(30)]
        await records.audit.append(list(reversed(batch)))
        got = [r async for r in records.audit.since(T0 + timedelta(seconds=4))]
        expected = sorted(
            (r for r in batch if r.at >= T0 + timedelta(seconds=4)),
            key=lambda r: (r.at, r.audit_id),
        )
        assert got == expected

    async def test_audit_has_no_update_or_delete_path(self, records: Records) -> None:
        names = {n for n in dir(records.audit) if not n.startswith("_")}
        assert not {
            n for n in names if any(w in n for w in ("update", "delete", "remove", "purge"))
        }

    # ---- revocations ---------------------------------------------------------------------

    async def test_revoking_a_token_or_a_subject(self, records: Records) -> None:
        store = records.revocations
        assert await store.revocations() == type(await store.revocations())()
        await store.revoke(jti="J-1", sub=None, by="admin", reason="lost phone", at=T0)
        await store.revoke(jti="J-1", sub=None, by="admin", reason="lost phone", at=T0)
        await store.revoke(jti=None, sub="OFF-1", by="admin", reason="left", at=T0)
        await store.revoke(jti=None, sub="OFF-1", by="admin", reason="again", at=T0 + timedelta(1))
        got = await store.revocations()
        assert got.token_ids == frozenset({"J-1"})
        assert got.subjects_before == {"OFF-1": T0 + timedelta(1)}
        assert got.refuses("J-1", "anyone", T0 + timedelta(days=9))
        assert got.refuses(None, "OFF-1", T0)
        assert not got.refuses("J-2", "OFF-1", T0 + timedelta(days=2))

    async def test_revoke_needs_exactly_one_of_jti_and_sub(self, records: Records) -> None:
        for jti, sub in ((None, None), ("J", "S")):
            with pytest.raises(ValueError):
                await records.revocations.revoke(jti=jti, sub=sub, by="a", reason="r", at=T0)

    # ---- the portal: credentials and statements -----------------------------------------

    async def test_a_credential_is_stored_once_and_never_replaced(self, records: Records) -> None:
        ref = format_case_ref("WM", 2026, 7)
        first = PortalCredential(
            case_ref=ref,
            secret_hash="scrypt$16384$8$1$c2FsdA$aGFzaA",
            call_id="WEB-1",
            created_at=T0.astimezone(timezone(timedelta(hours=1))),
        )
        assert await records.portal.save_credential(first)
        again = first.model_copy(update={"secret_hash": "scrypt$other"})
        assert not await records.portal.save_credential(again)
        stored = await records.portal.get_credential(ref)
        assert stored is not None and stored.secret_hash == first.secret_hash
        assert stored.created_at == T0 and stored.created_at.tzinfo == UTC
        assert await records.portal.get_credential(format_case_ref("WM", 2026, 8)) is None

    async def test_a_statement_is_amended_by_new_versions_never_overwritten(
        self, records: Records
    ) -> None:
        ref = format_case_ref("WM", 2026, 1)
        first = await records.portal.add_statement(make_statement(ref, 1), amends=False)
        assert first is not None and first.version == 1
        amended = make_statement(ref, 2, statement_id="ST-1", body={"what_i_saw": "Better"})
        second = await records.portal.add_statement(amended, amends=True)
        assert second is not None and second.version == 2
        other = await records.portal.add_statement(make_statement(ref, 3), amends=False)
        assert other is not None and other.version == 1
        listed = await records.portal.statements(ref)
        assert [(s.statement_id, s.version) for s in listed] == [
            ("ST-1", 1),
            ("ST-1", 2),
            ("ST-3", 1),
        ]
        assert listed[0].body == {"what_i_saw": "Saw it, take 1", "declaration": True}
        assert listed[1].body == {"what_i_saw": "Better"}
        assert listed[0].at.tzinfo == UTC
        assert await records.portal.statements(format_case_ref("WM", 2026, 2)) == []

    async def test_a_statement_id_is_its_case_and_authors_alone(self, records: Records) -> None:
        ref, other_ref = format_case_ref("WM", 2026, 1), format_case_ref("WM", 2026, 2)
        assert await records.portal.add_statement(make_statement(ref), amends=False)
        # Taken: a new statement may not reuse the id.
        assert await records.portal.add_statement(make_statement(ref), amends=False) is None
        # Another case, or another author, may not amend it.
        theirs = make_statement(other_ref, 1, by=f"citizen:{other_ref}")
        assert await records.portal.add_statement(theirs, amends=True) is None
        stranger = make_statement(ref, 1, by="OFF-9", by_role="officer")
        assert await records.portal.add_statement(stranger, amends=True) is None
        # An amendment of nothing is nothing.
        ghost = make_statement(ref, 5, statement_id="ST-none")
        assert await records.portal.add_statement(ghost, amends=True) is None
        assert len(await records.portal.statements(ref)) == 1
        assert await records.portal.statements(other_ref) == []

    async def test_amendments_at_once_get_consecutive_versions(self, records: Records) -> None:
        ref = format_case_ref("WM", 2026, 1)
        await records.portal.add_statement(make_statement(ref), amends=False)
        done = await asyncio.gather(
            *(
                records.portal.add_statement(make_statement(ref, 1, body={"n": n}), amends=True)
                for n in range(4)
            )
        )
        assert sorted(d.version for d in done if d is not None) == [2, 3, 4, 5]

    async def test_contact_times_are_the_first_officer_entry_of_each_case(
        self, records: Records
    ) -> None:
        contacted = make_case(1, grade=3)
        waiting = make_case(2, grade=3)
        closed_old = make_case(3, grade=3, status=CaseStatus.CLOSED, closed_at=T0)
        closed_new = make_case(
            4,
            grade=3,
            status=CaseStatus.CLOSED,
            opened_at=T0 + timedelta(days=20),
            updated_at=T0 + timedelta(days=20),
        )
        other_grade = make_case(5, grade=2)
        ungraded = make_case(6, grade=None)
        at = T0.astimezone(timezone(timedelta(hours=-5)))
        await records.cases.save(
            contacted,
            [
                make_entry(contacted, 1),
                make_entry(contacted, 90, kind=TimelineKind.OFFICER_ATTENDED),
                make_entry(
                    contacted, 60, kind=TimelineKind.OFFICER_ASSIGNED, at=at + timedelta(hours=1)
                ),
                make_entry(contacted, 70, kind=TimelineKind.UPDATE),
            ],
        )
        await records.cases.save(waiting, [make_entry(waiting, 2)])
        await records.cases.save(closed_old)
        await records.cases.save(
            closed_new,
            [
                make_entry(
                    closed_new, 3, kind=TimelineKind.OFFICER_EN_ROUTE, at=T0 + timedelta(days=21)
                )
            ],
        )
        await records.cases.save(other_grade)
        await records.cases.save(ungraded)
        since = T0 + timedelta(days=10)
        found = {c.case_ref: c for c in await records.portal.contact_times(3, since)}
        assert set(found) == {contacted.case_ref, waiting.case_ref, closed_new.case_ref}
        assert found[contacted.case_ref].first_contact_at == T0 + timedelta(hours=1)
        assert found[contacted.case_ref].first_contact_at.tzinfo == UTC  # type: ignore[union-attr]
        assert found[contacted.case_ref].opened_at == contacted.opened_at
        assert found[waiting.case_ref].first_contact_at is None
        assert found[closed_new.case_ref].closed
        assert found[closed_new.case_ref].first_contact_at == T0 + timedelta(days=21)
        assert [c.case_ref for c in await records.portal.contact_times(None, since)] == [
            ungraded.case_ref
        ]
        assert len(await records.portal.contact_times(3, since, limit=1)) == 1

    # ---- purge ---------------------------------------------------------------------------

    async def _seed_for_purge(self, records: Records) -> dict[str, Any]:
        old = make_case(1, status=CaseStatus.CLOSED, closed_at=T0)
        recent = make_case(2, status=CaseStatus.CLOSED, closed_at=T0 + timedelta(days=30))
        still_open = make_case(3, opened_at=T0 - timedelta(days=900))
        for n, case in enumerate((old, recent, still_open)):
            await records.cases.save(
                case,
                [make_entry(case, 1), make_entry(case, 2)],
                [CaseLinkV1(kind=LinkKind.CALL, id=f"C-{n}")],
            )
            await records.cases.save_evidence(make_evidence(10 + n), case.case_ref)
        await records.cases.save_evidence(make_evidence(20, captured_at=T0), None)
        await records.cases.save_evidence(make_evidence(21, captured_at=T0 + timedelta(40)), None)
        await records.revocations.revoke(jti="J-old", sub=None, by="a", reason="r", at=T0)
        await records.revocations.revoke(
            jti="J-new", sub=None, by="a", reason="r", at=T0 + timedelta(days=40)
        )
        await records.audit.append([make_audit(1, at=T0 - timedelta(days=5000))])
        await records.portal.add_statement(make_statement(old.case_ref), amends=False)
        await records.portal.add_statement(make_statement(recent.case_ref, 2), amends=False)
        await records.portal.save_credential(
            PortalCredential(
                case_ref=old.case_ref, secret_hash="scrypt$x", call_id="WEB-0", created_at=T0
            )
        )
        return {"old": old, "recent": recent, "open": still_open}

    async def test_purge_deletes_what_is_past_retention_and_nothing_else(
        self, records: Records
    ) -> None:
        seeded = await self._seed_for_purge(records)
        cutoff = T0 + timedelta(days=1)
        report = await records.purge(cutoff)
        assert report.deleted == {
            "cases": 1,
            "timeline_entries": 2,
            "case_links": 1,
            "statements": 1,
            "evidence": 2,
            "revocations": 1,
        }
        assert await records.portal.statements(seeded["old"].case_ref) == []
        assert await records.portal.get_credential(seeded["old"].case_ref) is None
        assert len(await records.portal.statements(seeded["recent"].case_ref)) == 1
        assert await records.cases.get_case(seeded["old"].case_ref) is None
        assert await records.cases.view(seeded["old"].case_ref) is None
        assert await records.cases.case_for_link(LinkKind.CALL, "C-0") is None
        assert await records.cases.get_evidence("EV-10") is None
        assert await records.cases.get_evidence("EV-20") is None
        for kept in ("recent", "open"):
            view = await records.cases.view(seeded[kept].case_ref)
            assert view is not None and len(view.timeline) == 2 and len(view.evidence) == 1
        assert await records.cases.get_evidence("EV-21") is not None
        assert (await records.revocations.revocations()).token_ids == frozenset({"J-new"})
        assert len(await records.audit.for_object(AuditObject.ALERT, "AL-1")) == 1
        assert (await records.purge(cutoff)).deleted == dict.fromkeys(report.deleted, 0)

    async def test_purge_of_chosen_kinds_only(self, records: Records) -> None:
        await self._seed_for_purge(records)
        report = await records.purge(T0 + timedelta(days=1), ["revocations"])
        assert report.deleted == {"revocations": 1}
        assert await records.cases.get_evidence("EV-20") is not None
        report = await records.purge(T0 + timedelta(days=1), ["evidence"])
        assert report.deleted == {"evidence": 1}

    async def test_purge_never_touches_the_audit_trail(self, records: Records) -> None:
        with pytest.raises(ValueError, match="never purged"):
            await records.purge(T0, ["audit"])
        with pytest.raises(ValueError, match="unknown"):
            await records.purge(T0, ["calls"])

    async def test_a_dry_run_counts_and_keeps_everything(self, records: Records) -> None:
        seeded = await self._seed_for_purge(records)
        cutoff = T0 + timedelta(days=1)
        purge: Any = records.purge  # dry_run: an option of both implementations
        report = await purge(cutoff, dry_run=True)
        assert report.deleted["cases"] == 1 and report.deleted["evidence"] == 2
        assert await records.cases.get_case(seeded["old"].case_ref) is not None
        assert await records.cases.get_evidence("EV-20") is not None
        assert (await records.purge(cutoff)).deleted == report.deleted
