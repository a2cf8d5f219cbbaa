"""The case worker's work without a broker (``streams.casework.CaseWork`` on the in-memory
records): updates out keyed by case, bad input dead-lettered on the worker's own topics
and skipped on the others, audit records stored once, a batch held while the database
does not answer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson
import pytest

from cli import main as cli_main
from records.memory import MemoryRecords
from rtic.casework import AuditObject, LinkKind
from rtic.errors import ServiceError
from rtic.settings import Settings
from streams.casework import CaseWork, CaseWorker, Message
from streams.pipeline import RawRecord
from tests.conftest import NOW, make_call, make_incident


@pytest.fixture
def work() -> CaseWork:
    return CaseWork(
        Settings(topic_prefix="t.", force_code="WM"),
        MemoryRecords(),
        clock=lambda: NOW,
        area_codes=lambda lat, lon: ["E08000025"],
    )


def _raw(topic: str, value: Any, offset: int = 0) -> RawRecord:
    data = value if isinstance(value, bytes) else orjson.dumps(value)
    return RawRecord(topic, 0, offset, b"k", data)


def _audit(i: int) -> dict[str, Any]:
    return {
        "audit_id": f"A-{i}",
        "at": (NOW + timedelta(seconds=i)).isoformat(),
        "actor": "sup-1",
        "role": "supervisor",
        "action": "case_viewed",
        "object_type": "case",
        "object_id": "WM-2026-0000001",
        "origin": "10.0.0.7",
    }


async def test_a_batch_of_case_sources_makes_updates_keyed_by_case(work: CaseWork) -> None:
    t = work.topics
    call = make_call(call_id="C-1", grade=2)
    batch = [
        _raw(t.calls, call),
        _raw(t.incidents, make_incident(incident_id="I-1", call_ids=["C-1"], grade=2), 1),
        _raw(t.incidents, make_incident(incident_id="I-1", event="assigned", units=["O-1"]), 2),
    ]
    out = await work.case_batch(batch)
    assert {topic for topic, _, _ in out} == {t.cases}
    assert {key for _, key, _ in out} == {b"WM-2026-0000001"}
    changes = [orjson.loads(v)["change"] for _, _, v in out]
    assert changes[0] == "opened" and "link" in changes
    assert work.stats.received == {"call": 1, "incident": 2}
    assert work.stats.updates == len(out)
    # The same batch delivered again (stored, then a crash before it was sent): nothing
    # new is stored; the entries' updates go out again as they were (same update ids).
    again = await work.case_batch(batch)

    def same(messages: list[tuple[str, bytes, bytes]]) -> set[tuple[bytes, str, str, bytes]]:
        return {
            (key, u["update_id"], u["change"], orjson.dumps(u["entry"]))
            for _, key, value in messages
            for u in [orjson.loads(value)]
        }

    assert again and same(again) <= same(out)


async def test_an_alert_fetched_before_its_call_in_one_batch_is_still_linked(
    work: CaseWork,
) -> None:
    t = work.topics
    alert = {
        "alert_id": "AL-1",
        "rule_id": "repeat_caller",
        "severity": "high",
        "title": "Repeat caller",
        "summary": "Third call",
        "created_at": NOW.isoformat(),
        "source_event_ids": ["C-1"],
        "location": None,
        "area": [],
        "audience": {"roles": ["rtic_analyst"]},
    }
    ack = {"alert_id": "AL-1", "action": "ack", "by": "a-1", "role": "rtic_analyst"}
    batch = [
        _raw(t.alert_acks, {**ack, "at": NOW.isoformat()}),
        _raw(t.alerts, alert, 1),
        _raw(t.calls, make_call(call_id="C-1"), 2),
    ]
    out = await work.case_batch(batch)
    entries = [orjson.loads(v)["entry"] for _, _, v in out]
    kinds = [e["kind"] for e in entries if e]
    assert kinds == ["received", "assessed", "alert_raised", "update"]


async def test_bad_input_is_dead_lettered_only_on_the_worker_s_own_topics(
    work: CaseWork,
) -> None:
    t = work.topics
    out = await work.case_batch(
        [
            _raw(t.calls, b"not json"),
            _raw(t.alerts, {"alert_id": "x"}, 1),
            _raw(t.evidence, {"evidence_id": "EV-1", "kind": "photo"}, 2),
        ]
    )
    assert [topic for topic, _, _ in out] == [t.dead_letter]
    letter = orjson.loads(out[0][2])
    assert letter["source_topic"] == t.evidence and letter["offset"] == 2
    assert "captured_by" in letter["reason"]
    assert work.stats.skipped == {t.calls: 1, t.alerts: 1}
    bad_audit = await work.audit_batch([_raw(t.audit, {"audit_id": "A-1"}), _raw(t.audit, b"")])
    assert [orjson.loads(v)["source_topic"] for _, _, v in bad_audit] == [t.audit, t.audit]


async def test_audit_records_sent_twice_are_stored_once(work: CaseWork) -> None:
    t = work.topics
    batch = [_raw(t.audit, _audit(i), i) for i in range(3)]
    assert await work.audit_batch(batch + batch) == []
    assert await work.audit_batch(batch) == []
    records = await work.records()
    trail = await records.audit.for_object(AuditObject.CASE, "WM-2026-0000001")
    assert [r.audit_id for r in trail] == ["A-0", "A-1", "A-2"]
    assert work.stats.audit_new == 3 and work.stats.audit_repeated == 6


async def test_a_message_the_book_fails_on_is_a_dead_letter(
    work: CaseWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = await work.book()

    async def broken(source: Any, model: Any, *, flush: bool = True) -> Any:
        raise KeyError("boom")

    monkeypatch.setattr(book, "apply", broken)
    out = await work.case_batch([_raw(work.topics.calls, make_call())])
    assert "internal error: KeyError" in orjson.loads(out[0][2])["reason"]


async def test_the_records_are_opened_on_first_use() -> None:
    opened: list[str] = []

    async def opener(url: str) -> MemoryRecords:
        opened.append(url)
        return MemoryRecords()

    settings = Settings(topic_prefix="t.")
    work = CaseWork(settings, opener=opener)  # type: ignore[arg-type]
    await work.audit_batch([_raw(work.topics.audit, _audit(1))])
    await work.audit_batch([_raw(work.topics.audit, _audit(2))])
    assert opened == [settings.database_url]
    await work.close()


class _Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes, *rest: Any) -> Any:
        self.sent.append((topic, key, value))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


class _App:
    def __init__(self) -> None:
        self.producer = _Producer()


class _Event:
    def __init__(self, record: RawRecord) -> None:
        self.message = record


async def test_a_batch_is_held_while_the_database_does_not_answer(
    work: CaseWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("streams.casework.RETRY_FIRST_S", 0.01)
    app = _App()
    worker = CaseWorker(app, work)  # type: ignore[arg-type]
    failures = [ServiceError("database down"), ConnectionRefusedError(111, "refused")]
    real: Callable[[list[RawRecord]], Any] = work.case_batch

    async def flaky(records: list[RawRecord]) -> list[Message]:
        if failures:
            raise failures.pop(0)
        result: list[Message] = await real(records)
        return result

    await worker.run([_Event(_raw(work.topics.calls, make_call()))], flaky)
    assert work.stats.retries == 2
    assert [t for t, _, _ in app.producer.sent] == [work.topics.cases] * 3


def test_the_cases_command_parses_to_its_handler() -> None:
    args = cli_main.build_parser().parse_args(["cases", "--loglevel", "info"])
    assert args.func is cli_main.cmd_cases


def _lives(work: CaseWork, n: int) -> list[RawRecord]:
    """``n`` calls, each with its incident created and assigned, interleaved."""
    t, out = work.topics, []
    for i in range(n):
        out.append(_raw(t.calls, make_call(call_id=f"C-{i}", grade=2), len(out)))
    for event, extra in (("created", {}), ("assigned", {"units": ["O-1"]})):
        for i in range(n):
            inc = make_incident(incident_id=f"I-{i}", call_ids=[f"C-{i}"], event=event, **extra)
            out.append(_raw(t.incidents, inc, len(out)))
    return out


def _counting_save_many(work: CaseWork, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the ``save_many`` calls the work makes (each one transaction)."""
    store = work._records.cases  # type: ignore[union-attr]
    real, sizes = store.save_many, []

    async def counted(writes: Any) -> Any:
        sizes.append(len(writes))
        return await real(writes)

    monkeypatch.setattr(store, "save_many", counted)
    return sizes


async def test_a_batch_is_one_transaction_and_sends_what_one_at_a_time_sends(
    work: CaseWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = _lives(work, 5)
    sizes = _counting_save_many(work, monkeypatch)
    out = await work.case_batch(batch)
    assert len(sizes) == 1 and sizes[0] == 15
    alone = CaseWork(
        Settings(topic_prefix="t.", force_code="WM"),
        MemoryRecords(),
        clock=lambda: NOW,
        area_codes=lambda lat, lon: ["E08000025"],
    )
    one_by_one = [m for record in batch for m in await alone.case_batch([record])]
    assert out == one_by_one
    store = work._records.cases  # type: ignore[union-attr]
    single_reads: list[Any] = []
    real_read = store.case_for_link

    async def read(*args: Any) -> Any:
        single_reads.append(args)
        return await real_read(*args)

    monkeypatch.setattr(store, "case_for_link", read)
    again = await work.case_batch(batch)
    # Redelivered: nothing written; the worker resends (resend=True) the entries' updates
    # with the same ids, so a change stored before a crash still reaches the topic.
    ids = {orjson.loads(value)["update_id"] for _, _, value in out}
    assert sizes == [15] and again
    assert {orjson.loads(value)["update_id"] for _, _, value in again} <= ids
    assert single_reads == []  # the batch's links came from one read (or the cache)


async def test_a_batch_the_database_refuses_is_applied_a_message_at_a_time(
    work: CaseWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = _lives(work, 3)
    store = work._records.cases  # type: ignore[union-attr]
    real = store.save_many

    async def refuses_batches(writes: Any) -> Any:
        if len(writes) > 1:
            raise ValueError("refused")
        return await real(writes)

    monkeypatch.setattr(store, "save_many", refuses_batches)
    out = await work.case_batch(batch)
    assert {topic for topic, _, _ in out} == {work.topics.cases}
    assert work.stats.received == {"call": 3, "incident": 6}  # counted once
    assert work.stats.updates == len(out)
    for i in range(3):
        assert await store.case_for_link(LinkKind.INCIDENT, f"I-{i}") is not None
    # Numbers taken by the refused attempt are gaps, never given twice.
    refs = {orjson.loads(v)["case_ref"] for _, _, v in out}
    assert len(refs) == 3


async def test_a_batch_whose_commit_fails_for_now_is_tried_again_whole(
    work: CaseWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = _lives(work, 2)
    store = work._records.cases  # type: ignore[union-attr]
    real, attempts = store.save_many, []

    async def down_once(writes: Any) -> Any:
        attempts.append(len(writes))
        if len(attempts) == 1:
            raise ServiceError("database down")
        return await real(writes)

    monkeypatch.setattr(store, "save_many", down_once)
    with pytest.raises(ServiceError):
        await work.case_batch(batch)
    assert await store.list_cases() == []
    out = await work.case_batch(batch)
    assert attempts == [6, 6]
    assert len(await store.list_cases()) == 2
    assert [orjson.loads(v)["change"] for _, _, v in out].count("opened") == 2


async def test_writes_of_an_interrupted_batch_are_not_kept(work: CaseWork) -> None:
    """A batch cancelled between applying and committing comes again: its updates are
    sent then, as if it had never been seen."""
    batch = _lives(work, 1)
    book = await work.book()
    for record in batch:  # applied, never flushed: what a cancelled batch leaves
        await book.apply(work.sources[record.topic], work._decode(record), flush=False)  # type: ignore[arg-type]
    assert book.pending == 3
    out = await work.case_batch(batch)
    assert [orjson.loads(v)["change"] for _, _, v in out].count("opened") == 1
    assert book.pending == 0
