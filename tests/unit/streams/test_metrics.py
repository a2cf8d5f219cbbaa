"""Worker metrics and health, without a broker: counters, the collector, the endpoint."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import Counter, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streams.health import WorkerHealth, WorkerWebServer, worker_web_app
from streams.metrics import (
    PipelineCollector,
    WorkerMetrics,
    count_redis_round_trips,
    reason_kind,
)
from streams.pipeline import PipelineStats


def _samples(metrics: WorkerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("DecodeError: not JSON", "decode"),
        ("ValidationFailed: reads[0]: vrm missing", "validation"),
        ("ValidationError: 1 validation error for AlertV1", "validation"),
        ("ContractError: bad", "contract"),
        ("internal error: KeyError: 'x'", "internal"),
        ("something new", "other"),
    ],
)
def test_dead_letter_reasons_fall_into_a_few_kinds(reason: str, kind: str) -> None:
    assert reason_kind(reason) == kind


def test_a_batch_output_is_counted_per_topic_and_dead_letters_by_reason() -> None:
    metrics = WorkerMetrics()
    letter = orjson.dumps({"reason": "DecodeError: not JSON"})
    metrics.sent([("enriched", b"k", b"{}"), ("enriched", b"k", b"{}"), ("dl", b"k", letter)], "dl")
    metrics.sent([("dl", None, b"not json")], "dl")
    s = _samples(metrics)
    assert s[("rtic_worker_events_out_total", (("topic", "enriched"),))] == 2
    assert s[("rtic_worker_events_out_total", (("topic", "dl"),))] == 2
    assert s[("rtic_worker_dead_letters_total", (("reason", "decode"),))] == 1
    assert s[("rtic_worker_dead_letters_total", (("reason", "other"),))] == 1


def test_the_pipeline_counters_are_read_at_scrape_time() -> None:
    metrics = WorkerMetrics()
    holder: dict[str, PipelineStats] = {}
    metrics.registry.register(PipelineCollector(lambda: holder.get("stats")))
    assert not any(name.startswith("rtic_rule") for name, _ in _samples(metrics))
    stats = holder["stats"] = PipelineStats()
    stats.received["call"] += 7
    stats.dead_letters["rtic.calls.v1"] += 1
    stats.alerts += 2
    stats.partial_batches += 1
    stats.rules.evaluated["repeat_calls"] += 7
    stats.rules.fired["repeat_calls"] += 2
    stats.rules.errors["missing_person"] += 1
    stats.suppressed["repeat_calls"] += 1
    s = _samples(metrics)
    assert s[("rtic_pipeline_events_received_total", (("kind", "call"),))] == 7
    assert s[("rtic_pipeline_dead_letters_total", (("source_topic", "rtic.calls.v1"),))] == 1
    assert s[("rtic_rule_evaluations_total", (("rule", "repeat_calls"),))] == 7
    assert s[("rtic_rule_alerts_total", (("rule", "repeat_calls"),))] == 2
    assert s[("rtic_rule_errors_total", (("rule", "missing_person"),))] == 1
    assert s[("rtic_rule_alerts_snoozed_total", (("rule", "repeat_calls"),))] == 1
    assert s[("rtic_pipeline_alerts_total", ())] == 2
    assert s[("rtic_pipeline_partial_batches_total", ())] == 1
    stats.received["call"] += 1  # live: the next scrape sees it
    assert _samples(metrics)[("rtic_pipeline_events_received_total", (("kind", "call"),))] == 8


async def test_redis_round_trips_are_counted_at_the_connection() -> None:
    sent: list[Any] = []

    class Connection:
        async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            sent.append(command)

    class Pool:
        connection_class = Connection

    class Client:
        connection_pool = Pool()

    client = Client()
    counter = WorkerMetrics().redis_round_trips
    count_redis_round_trips(client, counter)
    conn = client.connection_pool.connection_class()
    assert isinstance(conn, Connection)
    await conn.send_packed_command([b"*1\r\n$4\r\nPING\r\n"])
    await conn.send_packed_command([b"pipelined", b"batch"])
    assert sent == [[b"*1\r\n$4\r\nPING\r\n"], [b"pipelined", b"batch"]]
    assert counter._value.get() == 2  # type: ignore[attr-defined]
    assert isinstance(counter, Counter)


@pytest.mark.parametrize(
    ("health", "code", "status"),
    [
        (WorkerHealth("running", 5, False, True), 200, "ok"),
        (WorkerHealth("running", 5, False, False), 200, "degraded"),
        (WorkerHealth("init", 0, True, True), 503, "down"),
        (WorkerHealth("crashed", 0, False, True), 503, "down"),
    ],
)
async def test_healthz_and_metrics_endpoints(health: WorkerHealth, code: int, status: str) -> None:
    metrics = WorkerMetrics()
    metrics.events_in.labels("rtic.calls.v1").inc(3)

    async def current() -> WorkerHealth:
        return health

    transport = httpx.ASGITransport(app=worker_web_app(metrics.registry, current))
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as http:
        reply = await http.get("/healthz")
        assert reply.status_code == code
        assert reply.json() == {
            "status": status,
            "consumer": health.consumer,
            "assigned_partitions": health.assigned_partitions,
            "rebalancing": health.rebalancing,
            "redis": health.redis,
        }
        scraped = await http.get("/metrics")
        assert scraped.status_code == 200
        assert 'rtic_worker_events_in_total{topic="rtic.calls.v1"} 3.0' in scraped.text
        assert (await http.get("/table/anything")).status_code == 404  # no Faust pages


async def test_a_taken_port_is_logged_and_the_worker_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        server = WorkerWebServer(worker_web_app(WorkerMetrics().registry, None), "127.0.0.1", port)  # type: ignore[arg-type]
        await server.on_start()
        await server.on_stop()
    assert "cannot listen on 127.0.0.1" in caplog.text
