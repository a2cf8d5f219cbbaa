"""``rtic rules test``: run a rule file over recorded events on the event clock.

Analysts tune thresholds on past data before turning a rule on. The events go
through the same pipeline as live ones (validation, place and history
enrichment, rules), with history kept in Redis under a throwaway prefix that
is removed afterwards, and each batch's ``now`` set to its events' own time,
so windows and expiries behave as they did when the events happened.
Time-based rules (response promises, unacknowledged critical alerts) are
checked after each event on that event clock: a deadline that passes after
the last event of the file is not reported. Nothing is produced to Kafka;
nobody acknowledges anything, so every critical alert is escalated.
"""

from __future__ import annotations

import contextlib
import secrets
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import orjson

from enrichers.geo import GeoIndex
from enrichers.stores import RedisStores
from rtic.errors import ContractError
from rtic.schemas import AlertV1, EventKind, IncidentEventV1, validate_event
from rtic.topics import Topics
from rules.base import Rule
from simulators.replay import AdapterReport, ReplayEvent, read_file
from streams.deadlines import DeadlineBook
from streams.pipeline import Pipeline, RawRecord


async def run_rules_over(
    events: Sequence[ReplayEvent], rules: Sequence[Rule], geo: GeoIndex, redis_url: str
) -> list[AlertV1]:
    """The alerts the rules raise over the events, in event-time order."""
    prefix = f"rulestest-{secrets.token_hex(4)}."
    topics = Topics.with_prefix(prefix)
    history = RedisStores.from_url(redis_url, prefix=prefix, timeout=5.0)
    clock = {"now": events[0].at if events else datetime.now().astimezone()}
    pipeline = Pipeline(topics, geo, history, rules, clock=lambda: clock["now"])
    # Time-based rules: their states in plain dicts (Faust tables in the worker), their
    # deadlines checked after each event, on the event clock.
    book = DeadlineBook({}, {}, geo.codes_at)
    alerts: list[AlertV1] = []
    try:
        for offset, event in enumerate(events):
            clock["now"] = event.at
            record = RawRecord(
                topics.for_kind(event.kind),
                0,
                offset,
                event.key.encode(),
                orjson.dumps(event.value),
            )
            out = await pipeline.process([record])
            if event.kind is EventKind.INCIDENT:
                with contextlib.suppress(ContractError):
                    model = validate_event(EventKind.INCIDENT, event.value)
                    assert isinstance(model, IncidentEventV1)
                    book.on_incident(model)
            for alert in out.alerts:
                book.on_alert(alert)
            alerts.extend(out.alerts)
            due = book.due(pipeline.rules, event.at)
            for alert in due:
                book.on_alert(alert)
            alerts.extend(due)
    finally:
        keys = [k async for k in history.redis.scan_iter(match=f"{prefix}rtic:*", count=10_000)]
        if keys:
            await history.redis.unlink(*keys)
        await history.close()
    return alerts


def report(alerts: Sequence[AlertV1], rules: Sequence[Rule]) -> str:
    """What would have fired: per rule counts, then each alert with its explanation."""
    counts = Counter(a.rule_id for a in alerts)
    lines = [f"{len(alerts)} alerts would have fired:"]
    for r in rules:
        state = "" if r.spec.enabled else " (disabled)"
        lines.append(f"  {r.spec.rule_id}{state}: {counts.get(r.spec.rule_id, 0)}")
    for a in alerts:
        lines.append(f"\n[{a.severity.value}] {a.created_at:%Y-%m-%d %H:%M:%S} {a.title}")
        lines.append(f"  {a.summary}")
        lines.append(f"  why: {a.details.get('why', '')}")
    return "\n".join(lines)


def load_events(path: Path, report_: AdapterReport) -> list[ReplayEvent]:
    """Recorded events (any format ``rtic replay`` reads), reference changes first."""
    events = read_file(path, None, report_)
    return sorted(events, key=lambda e: (e.kind is not EventKind.REFERENCE, e.at))
