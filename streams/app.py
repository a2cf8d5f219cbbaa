"""The Faust app: one agent per input topic, each moving batches through the pipeline.

Agents take up to ``batch_max`` events or whatever arrived within
``batch_within`` seconds (``stream.take_events``), hand the raw bytes to
``streams.pipeline.Pipeline`` and send what it returns. A batch's offsets
are acknowledged only after its output is delivered (at-least-once; the
ids downstream are stable, so a redelivery is recognisable): each input
message holds the worker's own reference until then (``streams/transport.py``),
so a batch cancelled by a stop, or skipped by a stream while the flow is
suspended, is read again by the next worker.

Topics are read as raw bytes: decoding is the pipeline's, so a bad message
becomes a dead letter instead of crashing the agent (Faust's default).

The worker also serves ``/metrics`` and ``/healthz`` (``streams/health.py``)
on ``RTIC_WORKER_WEB_HOST:RTIC_WORKER_WEB_PORT``, with the metrics of
``streams/metrics.py``: the agents here record events in and out, dead
letters, batch latency and Redis round trips; the pipeline's own counters are
read when Prometheus scrapes.

``create_app`` puts the parts together: ``Worker`` (what the agents share:
the pipeline, the deadline book, sending, metrics, health), the input agents,
the deadline agents and timer, the task that keeps the pipeline's copy of the
hotlists and markers (``streams/reference_copy.py``), and the web endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import faust
from pydantic import ValidationError

from enrichers.geo import GeoIndex
from enrichers.reference_copy import ReferenceCopy
from enrichers.stores import RedisStores
from rtic.clock import Clock, make_clock
from rtic.errors import ContractError, ServiceError
from rtic.schemas import (
    AlertAckV1,
    AlertV1,
    EventKind,
    IncidentEventV1,
    decode_json,
    dumps,
)
from rtic.settings import Settings
from rtic.topics import Topics
from rules.catalogue import default_rules
from streams.deadlines import DeadlineBook
from streams.health import WorkerHealth, WorkerWebServer, worker_web_app
from streams.metrics import PipelineCollector, WorkerMetrics, count_redis_round_trips
from streams.pipeline import Output, Pipeline, RawRecord, Record
from streams.produce import OutputSender
from streams.reference_copy import add_reference_copy_task
from streams.transport import FetchedBatch, RticApp, hold, release
from streams.trends import add_trend_agents
from streams.verifications import add_verification_agent

log = logging.getLogger(__name__)
# Events an input agent's channel holds: fetched batches (up to ``batch_max`` messages
# each) where the agent takes them whole, else single messages.
BATCHES_BUFFERED = 8
# What an input event also feeds (``Worker.observe``): called with the input partition
# and the validated event.
Observer = Callable[[int, Any], None]


def build_pipeline(
    settings: Settings, clock: Clock | None = None, metrics: WorkerMetrics | None = None
) -> Pipeline:
    """The pipeline for these settings: geography, Redis history, the rule catalogue."""
    topics = Topics.with_prefix(settings.topic_prefix)
    geo = GeoIndex.load(settings.data_dir)
    stores = RedisStores.from_url(
        settings.redis_url,
        prefix=settings.topic_prefix,
        history_days=settings.history_days,
        timeout=settings.redis_timeout,
    )
    if metrics is not None:
        count_redis_round_trips(stores.redis, metrics.redis_round_trips)
    return Pipeline(
        topics,
        geo,
        stores,
        default_rules(settings),
        clock=clock or make_clock(settings.rule_clock),
        rules_file=settings.rules_file,
        # Filled from the whole reference topic (streams/reference_copy.py); not ready
        # until it has read it to the end.
        reference_copy=ReferenceCopy(max_entries=settings.reference_copy_max, ready=False),
    )


def _faust_app(settings: Settings) -> RticApp:
    """The Faust app with the engine's broker, serialisation and consumer tuning."""
    return RticApp(
        settings.app_id,
        broker=settings.kafka_url,
        value_serializer="raw",
        key_serializer="raw",
        store="memory://",
        # The web server is ours (streams/health.py), registered with app.web_server.
        web_enabled=True,
        web_host=settings.worker_web_host,
        web_bind=settings.worker_web_host,
        web_port=settings.worker_web_port,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        broker_rebalance_timeout=settings.broker_rebalance_timeout,
        broker_session_timeout=settings.broker_session_timeout,
        broker_heartbeat_interval=settings.broker_heartbeat_interval,
        broker_commit_interval=0.5,
        consumer_auto_offset_reset="earliest",
        producer_acks=1,
        producer_linger_ms=2,
        producer_max_batch_size=1_048_576,
        stream_buffer_maxsize=max(4096, settings.batch_max * 4),
    )


class Worker:
    """What the agents of one app share: the pipeline (built on first use), the
    deadline book over the app's tables, sending, metrics and health."""

    def __init__(self, settings: Settings, app: RticApp, pipeline: Pipeline | None) -> None:
        self.settings = settings
        self.app = app
        self.topics = Topics.with_prefix(settings.topic_prefix)
        self.clock = pipeline.clock if pipeline is not None else make_clock(settings.rule_clock)
        self.metrics = WorkerMetrics()
        self.metrics.registry.register(
            PipelineCollector(lambda: self._pipeline.stats if self._pipeline else None)
        )
        self._pipeline = pipeline
        self.sender = OutputSender(app)
        self._book: DeadlineBook | None = None
        # Time-based rules keep their state in tables (changelog topics), by the key of
        # their topic.
        self.promises = self._state_table(
            "response-promises", "Open response promises by incident id."
        )
        self.critical = self._state_table(
            "critical-alerts", "Critical alerts waiting for an answer, by alert id."
        )
        # What else an input topic's events feed, by topic (``observe``): the deadline
        # book and the trend tables read calls and incidents here, in the input agent,
        # instead of a second agent on the topic (see ``observe``).
        self.observers: dict[str, list[Observer]] = {}

    def _state_table(self, name: str, help: str) -> Any:
        """A table of JSON states by key, co-partitioned with the topics that feed it."""
        return self.app.Table(
            name,
            default=None,
            partitions=self.settings.topic_partitions,
            key_type=bytes,
            value_type=bytes,
            help=help,
        )

    def observe(self, kind: EventKind, observer: Observer) -> None:
        """``observer(partition, event)`` is called with each valid event of ``kind``'s
        input topic, in the input agent, before the batch's offsets can be committed.

        The deadline book and the trend tables are fed this way rather than by agents
        of their own on the topic: a topic with a second reader goes through Faust's
        per-message delivery, where streams skip and acknowledge events on their own
        and skipped messages must be read again (``streams/transport.py``), and each
        event was decoded and validated once per reader. The input agent takes the
        topic's fetched batches whole, the observers get the events the pipeline
        validated (``Output.events``), and their table writes go to the changelog
        partition of the batch being processed (Faust's current event), the input
        message's partition, as before."""
        self.observers.setdefault(self.topics.for_kind(kind.value), []).append(observer)

    def _notify(self, topic: str, outs: Sequence[Output]) -> None:
        """The valid events of a batch of ``topic`` (as the pipeline validated them) to
        the topic's observers. Bad events are not among them (the pipeline dead-letters
        them); an observer that fails is logged and the batch goes on (its output is
        what must not be held up)."""
        observers = self.observers.get(topic)
        if not observers:
            return
        for out in outs:
            for partition, event in out.events:
                for observer in observers:
                    try:
                        observer(partition, event)
                    except Exception:
                        self.metrics.batch_errors.labels("observer_failed").inc()
                        log.exception("an observer failed on an event of %s[%d]", topic, partition)

    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            self._pipeline = build_pipeline(self.settings, self.clock, self.metrics)
        return self._pipeline

    def book(self) -> DeadlineBook:
        if self._book is None:
            self._book = DeadlineBook(self.promises, self.critical, self.pipeline().geo.codes_at)
        return self._book

    async def send(self, out: Output) -> None:
        """Deliver a batch's output and wait for the broker's acknowledgements
        (``streams/produce.py``: a producer batch per partition, one wait)."""
        await self.sender.send(out.messages)
        self.metrics.sent(out.messages, self.topics.dead_letter)

    async def run_events(self, events: Sequence[Any]) -> None:
        """What an input agent took: single messages (Faust's events) or fetched batches
        whole (``FetchedBatch``), through the pipeline in batches of at most
        ``batch_max``. The worker's reference on every message is given back once the
        output is delivered (``streams/transport.py``): the stream's own acknowledgement
        (``take_events`` acknowledges a batch even when it was cancelled) does not let
        an offset be committed before that."""
        consumer = self.app.consumer
        messages: list[Any] = []
        fetched: list[FetchedBatch] = []
        single: list[Any] = []
        for e in events:
            value = e.value
            if isinstance(value, FetchedBatch):
                value.track(consumer)
                fetched.append(value)
                messages.extend(value.messages)
            else:
                messages.append(e.message)
                single.append(e.message)
        hold(consumer, single)
        size = self.settings.batch_max
        for i in range(0, len(messages), size):
            await self.run_batch(messages[i : i + size])
        for batch in fetched:
            batch.ack(consumer)
        release(consumer, single)

    async def run_fetched(self, stream: Any) -> None:
        """An input agent's loop over fetched batches (``FetchedBatch`` events): each
        batch goes through the pipeline while the output of the one before is still
        on its way to the broker (one delivery in flight, in order). A batch's
        messages, and its event, are acknowledged once its output is delivered, so
        its offsets are committed after that (at-least-once)."""
        stream.enable_acks = False  # acknowledged by _deliver, after the output is out
        consumer = self.app.consumer
        size = self.settings.batch_max
        delivering: asyncio.Task[None] | None = None
        try:
            async for event in stream.events():
                value = event.value
                fetched = value if isinstance(value, FetchedBatch) else None
                if fetched is not None:
                    fetched.track(consumer)
                messages = fetched.messages if fetched is not None else [event.message]
                hold(consumer, messages)
                started = time.perf_counter()
                outs = [
                    await self._prepare(messages[i : i + size])
                    for i in range(0, len(messages), size)
                ]
                self._notify(messages[0].topic, outs)  # one partition's: the current event's
                if delivering is not None:
                    await delivering  # its error, if any, stops this agent as before
                delivering = asyncio.create_task(
                    self._deliver(stream, event, fetched, outs, messages[0].topic, started)
                )
        finally:
            if delivering is not None and not delivering.done():
                await asyncio.wait([delivering], timeout=10)

    async def _deliver(
        self,
        stream: Any,
        event: Any,
        fetched: FetchedBatch | None,
        outs: list[Output],
        topic: str,
        started: float,
    ) -> None:
        for out in outs:
            await self.send(out)
        if fetched is not None:
            fetched.ack(self.app.consumer)
        else:
            release(self.app.consumer, [event.message])
        await stream.ack(event)
        self.metrics.batch_seconds.labels(topic).observe(time.perf_counter() - started)

    async def _prepare(self, messages: Sequence[Any]) -> Output:
        records: Sequence[Record] = messages  # Faust's messages have what the pipeline reads
        self.metrics.events_in.labels(records[0].topic).inc(len(records))
        return await self._process(records)

    async def run_batch(self, messages: Sequence[Any]) -> None:
        """Messages of one input topic through the pipeline, and their output out."""
        started = time.perf_counter()
        out = await self._prepare(messages)
        await self.send(out)
        self.metrics.batch_seconds.labels(messages[0].topic).observe(time.perf_counter() - started)

    async def _process(self, records: Sequence[Record]) -> Output:
        pipe = self.pipeline()
        delay = 0.2
        while True:
            try:
                return await pipe.process(records)
            except ServiceError as exc:
                # Only reference changes raise this: they must not be lost; retry.
                self.metrics.batch_errors.labels("retried").inc()
                log.warning(
                    "batch from %s held, retrying in %.1fs: %s", records[0].topic, delay, exc
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            except Exception as exc:
                log.exception("pipeline failed on a batch from %s", records[0].topic)
                self.metrics.batch_errors.labels("dead_lettered").inc()
                now = pipe.clock()
                reason = f"internal error: {type(exc).__name__}: {exc}"
                return Output(messages=[pipe.dead_letter(r, reason, now) for r in records])

    async def dead_letter(self, event: Any, reason: str) -> None:
        m = event.message
        pipe = self.pipeline()
        record = RawRecord(m.topic, m.partition, m.offset, m.key, m.value)
        await self.send(Output(messages=[pipe.dead_letter(record, reason, pipe.clock())]))

    async def health(self) -> WorkerHealth:
        """The consumer's state and assignment, and whether Redis answers a PING."""
        consumer = self.app.consumer
        stores = self._pipeline.stores if self._pipeline is not None else None
        redis = getattr(stores, "redis", None)
        redis_ok = False
        if redis is not None:
            try:
                async with asyncio.timeout(self.settings.redis_timeout):
                    redis_ok = bool(await redis.ping())
            except Exception:  # any failure means "does not answer"
                redis_ok = False
        return WorkerHealth(
            consumer=consumer.state,
            assigned_partitions=len(consumer.assignment()),
            rebalancing=bool(self.app.rebalancing),
            redis=redis_ok,
        )


def _add_input_agents(worker: Worker) -> dict[str, Any]:
    """One agent per input topic, each taking batches through the pipeline: fetched
    batches whole where it is the topic's only reader (``streams/transport.py``),
    else Faust's events in ``take_events`` batches. The agents' topics, by name."""
    settings = worker.settings

    def make_agent(topic_name: str) -> None:
        topic = worker.app.topic(topic_name, value_type=bytes, key_type=bytes)
        topics[topic_name] = topic

        async def agent(stream: Any) -> None:
            if topic_name in worker.app.batch_topics:
                await worker.run_fetched(stream)
            else:
                async for events in stream.take_events(
                    settings.batch_max, within=settings.batch_within
                ):
                    await worker.run_events(events)

        agent.__name__ = agent.__qualname__ = "agent_" + topic_name.replace(".", "_").replace(
            "-", "_"
        )
        worker.app.agent(topic, name=agent.__name__)(agent)

    topics: dict[str, Any] = {}
    for name in worker.topics.inputs():
        make_agent(name)
    return topics


def _batch_topics(app: faust.App, inputs: Sequence[str]) -> list[str]:
    """The input topics no other agent reads: their agent takes fetched batches whole."""
    readers: Counter[str] = Counter()
    for agent in app.agents.values():
        readers.update(getattr(agent.channel, "topics", ()))
    return [name for name in inputs if readers[name] == 1]


def _add_deadline_agents(worker: Worker) -> None:
    """Incidents (observed in their input agent), alerts and acknowledgements into the
    deadline book; a timer fires it."""
    app, topics, clock = worker.app, worker.topics, worker.clock

    def on_incident(partition: int, model: IncidentEventV1) -> None:
        """Incidents into their response promises (in the incidents' input agent: the
        table's changelog partition is the message's)."""
        clock.observe(model.at)
        worker.book().on_incident(model)

    worker.observe(EventKind.INCIDENT, on_incident)

    @app.agent(
        app.topic(topics.alerts, topics.alert_acks, value_type=bytes, key_type=bytes),
        name="deadlines_alerts",
    )
    async def track_alerts(stream: Any) -> None:
        """Critical alerts start waiting for an answer; acknowledgements end the wait."""
        async for event in stream.events():
            try:
                data = decode_json(event.value)
                if event.message.topic == topics.alerts:
                    alert = AlertV1.model_validate(data)
                    clock.observe(alert.created_at)
                    worker.book().on_alert(alert)
                else:
                    worker.book().on_ack(AlertAckV1.model_validate(data))
            except (ContractError, ValidationError) as exc:
                await worker.dead_letter(event, f"{type(exc).__name__}: {exc}")

    @app.timer(worker.settings.timer_interval)
    async def fire_deadlines() -> None:
        """Deadlines passed on the rule clock become alerts (each sent once)."""
        pipe = worker.pipeline()
        now = clock()
        alerts = pipe.drop_snoozed(worker.book().due(pipe.rules, now, pipe.stats.rules), now)
        if alerts:
            pipe.stats.alerts += len(alerts)
            await worker.send(
                Output(
                    messages=[(topics.alerts, a.alert_id.encode(), dumps(a)) for a in alerts],
                    alerts=alerts,
                )
            )


def create_app(settings: Settings, pipeline: Pipeline | None = None) -> RticApp:
    """The Faust app for these settings (the worker runs it).

    ``app.rtic_pipeline()`` builds (once) and returns the pipeline, so a caller can
    load reference data before the worker joins its group; ``app.rtic_worker`` is
    the shared ``Worker`` (metrics registry, health).
    """
    app = _faust_app(settings)
    worker = Worker(settings, app, pipeline)
    app.rtic_pipeline = worker.pipeline  # type: ignore[attr-defined]
    app.rtic_worker = worker  # type: ignore[attr-defined]
    inputs = _add_input_agents(worker)
    _add_deadline_agents(worker)
    add_verification_agent(worker)  # plate checks answered (rtic.verifications.v1)
    add_trend_agents(worker)  # hourly trend tables, their snapshots, anomalies (streams/trends.py)
    add_reference_copy_task(worker)  # hotlists and markers in memory, for Redis outages
    # After every agent: a topic another agent also reads keeps per-message delivery.
    batch_topics = _batch_topics(app, worker.topics.inputs())
    for name in batch_topics:
        inputs[name].maxsize = BATCHES_BUFFERED  # fetched batches waiting, not messages
    app.set_batch_topics(batch_topics, settings.batch_max)
    unbatched = sorted(set(worker.observers) - set(batch_topics))
    if unbatched:  # observers need the fetched batches of one partition (Worker.observe)
        raise RuntimeError(f"observed input topics read by another agent too: {unbatched}")
    # Every input agent gives back the worker's reference on a message once its output
    # is out: no offset is committed before (streams/transport.py).
    app.set_held_topics(worker.topics.inputs(), settings.worker_drain_s)
    app.web_server(
        WorkerWebServer(
            worker_web_app(worker.metrics.registry, worker.health),
            settings.worker_web_host,
            settings.worker_web_port,
        )
    )
    return app
