"""The case worker: a Faust app of its own (``rtic cases``, app id ``<app_id>-cases``).

Two agents, each taking batches (``take_events``) of raw bytes:

- the **case agent** reads calls, incidents, alerts, acknowledgements, witness statements and
  evidence metadata, puts each message through ``cases.book.CaseBook`` (which
  keeps the cases in the database through ``records``) and sends the updates
  it returns to ``rtic.cases.v1`` (key: the case reference); within a batch,
  calls and incidents go before the alerts and acknowledgements about them;
- the **audit writer** reads ``rtic.audit.v1`` and appends each batch to the
  audit trail (``AuditStore.append``: a record already stored is skipped).

At-least-once: a batch's offsets are acknowledged only after its records are
committed to the database (one transaction for the batch's case changes) and its
messages acknowledged by the broker. A
batch that is delivered again (a restart, a rebalance) changes nothing: the
writers upsert by stable ids and the case book sends no update for what it
already has. If the database does not answer, the batch is held and tried
again (with a growing pause) rather than lost.

Bad input is data. On ``rtic.evidence.v1`` and ``rtic.audit.v1``, which only
this worker reads, a message that cannot be decoded or validated becomes a
dead letter (as in ``streams/pipeline.py``). Calls, incidents, alerts and
acknowledgements are the stream worker's to dead-letter (it reads them too),
so here a bad one is counted and skipped, never dead-lettered twice. A
message that makes the case book fail is dead-lettered with the reason and
the batch goes on.

``CaseWork`` does the work without Faust (the tests drive it directly);
``create_case_app`` wires it to the topics.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import faust
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError

from cases.book import AreaCodes, CaseBook
from cases.table import Source
from records.protocols import Records
from rtic.casework import AuditV1, EvidenceV1, StatementV1
from rtic.clock import Clock, as_clock, make_clock
from rtic.errors import ContractError, ServiceError, ValidationFailed
from rtic.schemas import (
    AlertAckV1,
    AlertV1,
    DeadLetterV1,
    EventKind,
    decode_json,
    dumps,
    validate_event,
)
from rtic.settings import Settings
from rtic.topics import Topics
from streams.pipeline import RawRecord
from streams.transport import RticApp

log = logging.getLogger(__name__)

Message = tuple[str, bytes | None, bytes]
RecordsOpener = Callable[[str], Awaitable[Records]]

# Failures that say "the database (or its network) does not answer now": the batch is
# held and tried again. Anything else a message causes is that message's dead letter.
TRANSIENT = (ServiceError, OperationalError, InterfaceError, OSError, TimeoutError)
SOURCE_ORDER = {
    Source.CALL: 0,
    Source.INCIDENT: 1,
    Source.EVIDENCE: 2,
    Source.STATEMENT: 2,
    Source.ALERT: 3,
    Source.ACK: 4,
}
RETRY_FIRST_S = 0.2
RETRY_MAX_S = 5.0


@dataclass
class CaseWorkStats:
    """Counters an operator reads in the log (and the benchmark)."""

    received: Counter[str] = field(default_factory=Counter)
    updates: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # bad input others dead-letter
    dead_letters: Counter[str] = field(default_factory=Counter)
    audit_new: int = 0
    audit_repeated: int = 0
    retries: int = 0


def _validation_reason(exc: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'message'}: {e['msg']}" for e in exc.errors()]
    return "; ".join(parts[:3]) + (f"; and {len(parts) - 3} more" if len(parts) > 3 else "")


def _validate(model: type[BaseModel], data: dict[str, Any]) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(_validation_reason(exc)) from exc


def decode_source(source: Source, raw: bytes | None) -> BaseModel:
    """A case source's raw message to its model, or ``ContractError`` saying why not."""
    data = decode_json(raw)
    if source is Source.CALL:
        return validate_event(EventKind.CALL, data)
    if source is Source.INCIDENT:
        return validate_event(EventKind.INCIDENT, data)
    if source is Source.ALERT:
        return _validate(AlertV1, data)
    if source is Source.ACK:
        return _validate(AlertAckV1, data)
    if source is Source.STATEMENT:
        return _validate(StatementV1, data)
    return _validate(EvidenceV1, data)


class CaseWork:
    """The case agent's and the audit writer's work, on one ``Records``.

    Args:
        settings: topics, force code, database URL.
        records: the database; None opens ``settings.database_url`` on first use (in
            the worker's own event loop, where its connections must live).
        clock: the time for what has none (default: ``RTIC_RULE_CLOCK``'s clock).
        area_codes: area codes of a point (the worker passes the ``GeoIndex``'s).
        opener: how to open the records (default ``records.open_records``).
    """

    def __init__(
        self,
        settings: Settings,
        records: Records | None = None,
        *,
        clock: Clock | Callable[[], datetime] | None = None,
        area_codes: AreaCodes | None = None,
        opener: RecordsOpener | None = None,
    ) -> None:
        self.settings = settings
        self.topics = Topics.with_prefix(settings.topic_prefix)
        self.clock = as_clock(clock) if clock is not None else make_clock(settings.rule_clock)
        self.area_codes = area_codes
        self.stats = CaseWorkStats()
        self._records = records
        self._opener = opener
        self._book: CaseBook | None = None
        t = self.topics
        self.sources: dict[str, Source] = {
            t.calls: Source.CALL,
            t.incidents: Source.INCIDENT,
            t.alerts: Source.ALERT,
            t.alert_acks: Source.ACK,
            t.evidence: Source.EVIDENCE,
            t.statements: Source.STATEMENT,
        }
        # Topics no other worker reads: their bad messages are this worker's to dead-letter.
        self.own_topics = {t.evidence, t.statements, t.audit}

    async def records(self) -> Records:
        if self._records is None:
            opener = self._opener
            if opener is None:
                from records import open_records

                opener = open_records
            self._records = await opener(self.settings.database_url)
        return self._records

    async def book(self) -> CaseBook:
        if self._book is None:
            records = await self.records()
            # resend: a batch stored before a crash but never sent is sent when it comes again.
            self._book = CaseBook(
                records.cases, self.settings.force_code, self.clock, self.area_codes, resend=True
            )
        return self._book

    async def close(self) -> None:
        if self._records is not None:
            await self._records.close()
            self._records = None
            self._book = None

    def dead_letter(self, record: RawRecord, reason: str) -> Message:
        """The dead-letter message for a record that could not be used."""
        self.stats.dead_letters[record.topic] += 1
        log.warning(
            "dead letter from %s[%d]@%d: %s", record.topic, record.partition, record.offset, reason
        )
        letter = DeadLetterV1(
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            raw=base64.b64encode(record.value or b"").decode("ascii"),
            key=base64.b64encode(record.key).decode("ascii") if record.key is not None else None,
            reason=reason,
            at=self.clock(),
        )
        return self.topics.dead_letter, record.topic.encode(), dumps(letter)

    def _bad(self, record: RawRecord, exc: Exception, out: list[Message]) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        if record.topic in self.own_topics:
            out.append(self.dead_letter(record, reason))
        else:
            self.stats.skipped[record.topic] += 1
            log.debug("skipped a bad message from %s: %s", record.topic, reason)

    async def case_batch(self, batch: Sequence[RawRecord]) -> list[Message]:
        """A batch from the case sources through the case book: the messages to send
        (updates on ``rtic.cases.v1``, dead letters). Raises a ``TRANSIENT`` error when
        the database does not answer (the caller tries the batch again).

        The batch's writes are one transaction (``CaseBook.flush``), committed before
        its messages are returned (and so before they are sent and the offsets move).
        If that transaction fails for a reason other than the database not answering,
        the batch is applied again a message at a time, so only the message at fault
        is a dead letter, as it would be had each been saved alone."""
        book = await self.book()
        if book.pending:
            # Writes of a batch that was interrupted (cancelled) before its commit: that
            # batch comes again, so they are dropped, and with them what they told the cache.
            book.discard()
        # The topics are read side by side, so one fetch may bring an alert before the
        # call it is about. Within a batch, what opens and links cases goes first (each
        # topic's own order kept): calls, incidents, evidence, then alerts, then acks.
        sources = self.sources
        ordered = sorted(batch, key=lambda r: SOURCE_ORDER[sources[r.topic]])
        decoded = [(record, self._decode(record)) for record in ordered]
        counted = (self.stats.received.copy(), self.stats.skipped.copy())
        dead = self.stats.dead_letters.copy()
        try:
            await book.prefetch(
                [(sources[r.topic], m) for r, m in decoded if isinstance(m, BaseModel)]
            )
            out = await self._apply_all(book, decoded, flush_each=False)
            await book.flush()
        except TRANSIENT:
            book.discard()
            raise
        except Exception:
            book.discard()
            log.exception("a batch of %d case messages failed: applying one at a time", len(batch))
            # Counted once: the counters as they were before the first attempt.
            self.stats.received, self.stats.skipped = counted
            self.stats.dead_letters = dead
            out = await self._apply_all(book, decoded, flush_each=True)
        self.stats.updates += sum(1 for topic, _, _ in out if topic == self.topics.cases)
        return out

    def _decode(self, record: RawRecord) -> BaseModel | ContractError:
        """The record's model, or why it has none."""
        try:
            return decode_source(self.sources[record.topic], record.value)
        except ContractError as exc:
            return exc

    async def _apply_all(
        self,
        book: CaseBook,
        decoded: Sequence[tuple[RawRecord, BaseModel | ContractError]],
        *,
        flush_each: bool,
    ) -> list[Message]:
        """The decoded records through the book, in order; with ``flush_each`` each
        message's writes are committed alone (and one whose commit fails is a dead letter)."""
        out: list[Message] = []
        for record, model in decoded:
            source = self.sources[record.topic]
            self.stats.received[source.value] += 1
            if isinstance(model, ContractError):
                self._bad(record, model, out)
                continue
            observe_times(self.clock, model)
            try:
                updates = await book.apply(source, model, flush=flush_each)
            except TRANSIENT:
                raise
            except Exception as exc:
                log.exception("the case book failed on a message from %s", record.topic)
                out.append(self.dead_letter(record, f"internal error: {type(exc).__name__}: {exc}"))
                continue
            out.extend((self.topics.cases, u.case_ref.encode(), dumps(u)) for u in updates)
        return out

    async def audit_batch(self, batch: Sequence[RawRecord]) -> list[Message]:
        """A batch of audit records appended to the trail (each once): the dead letters
        of those that are not audit records."""
        out: list[Message] = []
        good: list[AuditV1] = []
        for record in batch:
            try:
                model = _validate(AuditV1, decode_json(record.value))
            except ContractError as exc:
                self._bad(record, exc, out)
                continue
            assert isinstance(model, AuditV1)
            good.append(model)
        if good:
            records = await self.records()
            new = await records.audit.append(good)
            self.stats.audit_new += new
            self.stats.audit_repeated += len(good) - new
        return out


def _raw(events: Sequence[Any]) -> list[RawRecord]:
    return [
        RawRecord(
            e.message.topic, e.message.partition, e.message.offset, e.message.key, e.message.value
        )
        for e in events
    ]


class CaseWorker:
    """What the two agents share: the work, sending, and holding a batch while the
    database does not answer."""

    def __init__(self, app: faust.App, work: CaseWork) -> None:
        self.app = app
        self.work = work

    async def send(self, messages: list[Message]) -> None:
        """Send and wait for the broker's acknowledgements (before the offsets move)."""
        futures = [
            await self.app.producer.send(topic, key, value, None, None, None)
            for topic, key, value in messages
        ]
        if futures:
            await asyncio.gather(*futures)

    async def run(
        self, events: Sequence[Any], step: Callable[[list[RawRecord]], Awaitable[list[Message]]]
    ) -> None:
        """One batch through ``step`` until the database takes it, then its messages out."""
        records = _raw(events)
        delay = RETRY_FIRST_S
        while True:
            try:
                messages = await step(records)
                break
            except TRANSIENT as exc:
                self.work.stats.retries += 1
                log.warning(
                    "batch from %s held (database?), retrying in %.1f s: %s",
                    records[0].topic,
                    delay,
                    exc,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
        await self.send(messages)


class CaseApp(RticApp):
    """The case worker's Faust app: closes the database when the worker stops."""

    rtic_work: CaseWork | None = None

    async def on_stop(self) -> None:
        await super().on_stop()
        if self.rtic_work is not None:
            await self.rtic_work.close()


def create_case_app(
    settings: Settings,
    records: Records | None = None,
    *,
    clock: Clock | None = None,
    area_codes: AreaCodes | None = None,
) -> faust.App:
    """The case worker's Faust app for these settings (``rtic cases`` runs it).

    ``records`` is the database to keep cases and audit in; None opens
    ``settings.database_url`` when the worker starts. ``app.rtic_work`` is the
    ``CaseWork`` (its stats).
    """
    app = CaseApp(
        f"{settings.app_id}-cases",
        broker=settings.kafka_url,
        value_serializer="raw",
        key_serializer="raw",
        store="memory://",
        web_enabled=False,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        broker_rebalance_timeout=settings.broker_rebalance_timeout,
        broker_session_timeout=settings.broker_session_timeout,
        broker_heartbeat_interval=settings.broker_heartbeat_interval,
        broker_commit_interval=0.5,
        consumer_auto_offset_reset="earliest",
        producer_acks=1,
        producer_linger_ms=2,
        stream_buffer_maxsize=max(4096, settings.batch_max * 4),
    )
    work = CaseWork(settings, records, clock=clock, area_codes=area_codes)
    app.rtic_work = work
    worker = CaseWorker(app, work)
    topics = work.topics
    case_topics = app.topic(*work.sources, value_type=bytes, key_type=bytes)
    audit_topic = app.topic(topics.audit, value_type=bytes, key_type=bytes)

    @app.agent(case_topics, name="cases")
    async def case_agent(stream: Any) -> None:
        """Calls, incidents, alerts, acknowledgements and evidence into cases."""
        async for events in stream.take_events(settings.batch_max, within=settings.batch_within):
            await worker.run(events, work.case_batch)

    @app.agent(audit_topic, name="audit_writer")
    async def audit_writer(stream: Any) -> None:
        """Audit records into the trail, a batch at a time."""
        async for events in stream.take_events(settings.batch_max, within=settings.batch_within):
            await worker.run(events, work.audit_batch)

    @app.timer(60.0)
    async def report() -> None:
        s = work.stats
        log.info(
            "cases: %s in, %d updates, %d audit records (+%d repeated), skipped %s, "
            "dead letters %s, retries %d",
            dict(s.received),
            s.updates,
            s.audit_new,
            s.audit_repeated,
            dict(s.skipped),
            dict(s.dead_letters),
            s.retries,
        )

    return app


def observe_times(clock: Clock, model: BaseModel) -> None:
    """Move an event clock with the times of the messages seen (replays)."""
    at: datetime | None = getattr(model, "received_at", None) or getattr(model, "at", None)
    if at is not None:
        clock.observe(at)
