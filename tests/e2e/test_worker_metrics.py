"""The worker's /metrics and /healthz, scraped from the real worker process.

Events and one message that is not JSON go to the calls topic; the counters on
/metrics must move accordingly: events in, events out (enriched, dead letters),
the dead letter by kind of reason, batch latency, Redis round trips, and the
pipeline's and rules' own counters.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import make_call
from tests.engine import Engine

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def _scrape(engine: Engine) -> Samples:
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.get(f"{engine.worker_url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def _until(engine: Engine, done: Callable[[Samples], bool], timeout: float = 20) -> Samples:
    deadline = time.monotonic() + timeout
    while True:
        samples = await _scrape(engine)
        if done(samples) or time.monotonic() > deadline:
            return samples
        await asyncio.sleep(0.3)


async def test_healthz_reports_a_running_consumer_and_redis(engine: Engine) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.get(f"{engine.worker_url}/healthz")
    assert response.status_code == 200, response.text
    health = response.json()
    assert health["status"] == "ok" and health["consumer"] == "running"
    assert health["assigned_partitions"] >= 1 and health["redis"] is True
    assert isinstance(health["rebalancing"], bool)


async def test_metrics_count_events_dead_letters_batches_and_redis(engine: Engine) -> None:
    topics = engine.topics
    before = await _scrape(engine)
    calls = [make_call(received_at=datetime.now(UTC).isoformat()) for _ in range(5)]
    async with engine.producer() as producer:
        for call in calls:
            await engine.send(producer, topics.calls, call["call_id"], call)
        await engine.send(producer, topics.calls, "bad", b"\xff not json")

    def grown(name: str, by: float, **labels: str) -> Callable[[Samples], bool]:
        return lambda s: _value(s, name, **labels) - _value(before, name, **labels) >= by

    checks = [
        grown("rtic_worker_events_in_total", 6, topic=topics.calls),
        grown("rtic_worker_events_out_total", 5, topic=topics.enriched),
        grown("rtic_worker_events_out_total", 1, topic=topics.dead_letter),
        grown("rtic_worker_dead_letters_total", 1, reason="decode"),
        grown("rtic_worker_batch_seconds_count", 1, topic=topics.calls),
        grown("rtic_worker_redis_round_trips_total", 1),
        grown("rtic_pipeline_events_received_total", 6, kind="call"),
        grown("rtic_pipeline_dead_letters_total", 1, source_topic=topics.calls),
        grown("rtic_rule_evaluations_total", 5, rule="repeat_calls"),
    ]
    after = await _until(engine, lambda s: all(check(s) for check in checks))
    failed = [i for i, check in enumerate(checks) if not check(after)]
    assert not failed, (failed, {k: v for k, v in after.items() if k[0].startswith("rtic_")})
    # Latency is recorded in the histogram's buckets, and every rule with an error has 0+.
    assert _value(after, "rtic_worker_batch_seconds_bucket", topic=topics.calls, le="+Inf") >= 1
    assert all(v >= 0 for (name, _), v in after.items() if name == "rtic_rule_errors_total")
