"""The Faust app: one agent per input topic, each moving batches through the pipeline.

Agents take up to ``batch_max`` events or whatever arrived within
``batch_within`` seconds (``stream.take_events``), hand the raw bytes to
``streams.pipeline.Pipeline`` and send what it returns. A batch's offsets
are acknowledged only after its output is delivered (at-least-once; the
ids downstream are stable, so a redelivery is recognisable).

Topics are read as raw bytes: decoding is the pipeline's, so a bad message
becomes a dead letter instead of crashing the agent (Faust's default).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import faust
from pydantic import ValidationError

from enrichers.geo import GeoIndex
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
    validate_event,
)
from rtic.settings import Settings
from rtic.topics import Topics
from rules.catalogue import default_rules
from streams.deadlines import DeadlineBook
from streams.pipeline import Output, Pipeline, RawRecord
from streams.transport import RticApp

log = logging.getLogger(__name__)


def build_pipeline(settings: Settings, clock: Clock | None = None) -> Pipeline:
    topics = Topics.with_prefix(settings.topic_prefix)
    geo = GeoIndex.load(settings.data_dir)
    stores = RedisStores.from_url(
        settings.redis_url,
        prefix=settings.topic_prefix,
        history_days=settings.history_days,
        timeout=settings.redis_timeout,
    )
    return Pipeline(
        topics,
        geo,
        stores,
        default_rules(settings),
        clock=clock or make_clock(settings.rule_clock),
        rules_file=settings.rules_file,
    )


def create_app(settings: Settings, pipeline: Pipeline | None = None) -> faust.App:
    """The Faust app for these settings (the worker runs it)."""
    topics = Topics.with_prefix(settings.topic_prefix)
    app = RticApp(
        settings.app_id,
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
        producer_max_batch_size=1_048_576,
        stream_buffer_maxsize=max(4096, settings.batch_max * 4),
    )
    clock = pipeline.clock if pipeline is not None else make_clock(settings.rule_clock)
    state: dict[str, Pipeline] = {}

    def get_pipeline() -> Pipeline:
        if "p" not in state:
            state["p"] = pipeline or build_pipeline(settings, clock)
        return state["p"]

    def state_table(name: str, help: str) -> Any:
        """A table of JSON states by key, co-partitioned with the topics that feed it."""
        return app.Table(
            name,
            default=None,
            partitions=settings.topic_partitions,
            key_type=bytes,
            value_type=bytes,
            help=help,
        )

    # Time-based rules keep their state in tables (changelog topics), by the key of their topic.
    promises = state_table("response-promises", "Open response promises by incident id.")
    critical = state_table("critical-alerts", "Critical alerts waiting for an answer, by alert id.")
    books: dict[str, DeadlineBook] = {}

    def get_book() -> DeadlineBook:
        if "b" not in books:
            geo = get_pipeline().geo
            books["b"] = DeadlineBook(promises, critical, geo.codes_at)
        return books["b"]

    app.rtic_pipeline = get_pipeline  # type: ignore[attr-defined]

    async def send(out: Output) -> None:
        futures = [
            await app.producer.send(topic, key, value, None, None, None)
            for topic, key, value in out.messages
        ]
        if futures:
            await asyncio.gather(*futures)

    async def run_batch(events: Sequence[Any]) -> None:
        records = [
            RawRecord(
                e.message.topic,
                e.message.partition,
                e.message.offset,
                e.message.key,
                e.message.value,
            )
            for e in events
        ]
        pipe = get_pipeline()
        delay = 0.2
        while True:
            try:
                out = await pipe.process(records)
                break
            except ServiceError as exc:
                # Only reference changes raise this: they must not be lost; retry.
                log.warning(
                    "batch from %s held, retrying in %.1fs: %s", records[0].topic, delay, exc
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            except Exception as exc:
                log.exception("pipeline failed on a batch from %s", records[0].topic)
                now = pipe.clock()
                reason = f"internal error: {type(exc).__name__}: {exc}"
                out = Output(messages=[pipe.dead_letter(r, reason, now) for r in records])
                break
        await send(out)

    def make_agent(topic_name: str) -> None:
        topic = app.topic(topic_name, value_type=bytes, key_type=bytes)

        async def agent(stream: Any) -> None:
            async for events in stream.take_events(
                settings.batch_max, within=settings.batch_within
            ):
                await run_batch(events)

        agent.__name__ = agent.__qualname__ = "agent_" + topic_name.replace(".", "_").replace(
            "-", "_"
        )
        app.agent(topic, name=agent.__name__)(agent)

    for name in topics.inputs():
        make_agent(name)

    async def dead_letter(event: Any, reason: str) -> None:
        m = event.message
        pipe = get_pipeline()
        record = RawRecord(m.topic, m.partition, m.offset, m.key, m.value)
        await send(Output(messages=[pipe.dead_letter(record, reason, pipe.clock())]))

    @app.agent(
        app.topic(topics.incidents, value_type=bytes, key_type=bytes), name="deadlines_incidents"
    )
    async def track_incidents(stream: Any) -> None:
        """Incidents into their response promises (one message at a time: the table's
        changelog partition is the message's)."""
        async for event in stream.events():
            try:
                model = validate_event(EventKind.INCIDENT, decode_json(event.value))
            except ContractError:
                continue  # the pipeline's agent for this topic dead-letters it
            assert isinstance(model, IncidentEventV1)
            clock.observe(model.at)
            get_book().on_incident(model)

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
                    get_book().on_alert(alert)
                else:
                    get_book().on_ack(AlertAckV1.model_validate(data))
            except (ContractError, ValidationError) as exc:
                await dead_letter(event, f"{type(exc).__name__}: {exc}")

    @app.timer(settings.timer_interval)
    async def fire_deadlines() -> None:
        """Deadlines passed on the rule clock become alerts (each sent once)."""
        pipe = get_pipeline()
        now = clock()
        alerts = pipe.drop_snoozed(get_book().due(pipe.rules, now, pipe.stats.rules), now)
        if alerts:
            pipe.stats.alerts += len(alerts)
            await send(
                Output(
                    messages=[(topics.alerts, a.alert_id.encode(), dumps(a)) for a in alerts],
                    alerts=alerts,
                )
            )

    return app
