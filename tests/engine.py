"""The whole engine as subprocesses for end-to-end and browser tests.

``Engine`` starts ``rtic worker``, ``rtic cases`` and ``rtic gateway`` (the real
commands) on the test session's Tansu and Redis and a database of its own, with
a prefix of its own, and waits until an event produced at the input really
comes out of the gateway's websocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from websockets.asyncio.client import ClientConnection, connect

from rtic.kafka import bootstrap_servers, ensure_topics, make_producer
from rtic.settings import Settings
from rtic.tokens import issue_token
from rtic.topics import Topics


@dataclass
class Engine:
    settings: Settings
    log_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    log_files: list[IO[bytes]] = field(default_factory=list)

    @property
    def topics(self) -> Topics:
        return Topics.with_prefix(self.settings.topic_prefix)

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.gateway_host}:{self.settings.gateway_port}"

    @property
    def worker_url(self) -> str:
        return f"http://{self.settings.worker_web_host}:{self.settings.worker_web_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.settings.gateway_host}:{self.settings.gateway_port}/ws"

    def env(self) -> dict[str, str]:
        s = self.settings
        return {
            **os.environ,
            "RTIC_KAFKA_URL": s.kafka_url,
            "RTIC_REDIS_URL": s.redis_url,
            "RTIC_TOPIC_PREFIX": s.topic_prefix,
            "RTIC_GATEWAY_PORT": str(s.gateway_port),
            "RTIC_WORKER_WEB_PORT": str(s.worker_web_port),
            "RTIC_TOKEN_SECRET": s.token_secret.get_secret_value(),
            "RTIC_APP_ID": f"{s.topic_prefix}rtic-engine",
            "RTIC_DATABASE_URL": s.database_url,
            "RTIC_CHAT_ESCALATE_AFTER_S": str(s.chat_escalate_after_s),
            "RTIC_PRIORITIES_INTERVAL_S": str(s.priorities_interval_s),
            "RTIC_EVIDENCE_DIR": str(s.evidence_dir),
            "RTIC_TRENDS_PUBLISH_S": str(s.trends_publish_s),
            "RTIC_ANOMALY_CHECK_S": str(s.anomaly_check_s),
            # Test clients act as fast as they can (a person does not): the message rate
            # limit itself is tested in tests/integration/test_web_edge.py.
            "RTIC_WS_MESSAGES_PER_SECOND": str(max(s.ws_messages_per_second, 1000.0)),
            "RTIC_WS_MESSAGE_BURST": str(max(s.ws_message_burst, 1000)),
            **({"RTIC_RULES_FILE": str(s.rules_file)} if s.rules_file else {}),
        }

    def token(self, role: str = "rtic_analyst", sub: str = "analyst-1", **kw: Any) -> str:
        return issue_token(
            self.settings.token_secret.get_secret_value(),
            sub=sub,
            role=role,
            now=datetime.now(UTC),
            ttl_seconds=3600,
            **kw,
        )

    def ticket(self, role: str = "rtic_analyst", sub: str = "analyst-1", **kw: Any) -> str:
        """A login ticket for a page's ``?ticket=``, kept in this engine's Redis."""
        return store_ticket(self.settings, role, sub, **kw)

    def start(self) -> None:
        from records.migrate import upgrade

        asyncio.run(ensure_topics(self.settings.kafka_url, self.topics.all()))
        upgrade(self.settings.database_url)  # once, before the parts that apply it on start
        for part in ("worker", "cases", "gateway"):
            self._spawn(part)
        asyncio.run(self._wait_ready(90))

    def _spawn(self, part: str, suffix: str = "") -> None:
        log = open(self.log_dir / f"{part}{suffix}.log", "wb")
        self.log_files.append(log)
        self.processes[part] = subprocess.Popen(
            [sys.executable, "-m", "cli.main", part],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    async def restart_worker(self, *, kill: bool = False) -> None:
        """Stop the worker (``kill``: SIGKILL, a crash; else SIGTERM, as an operator
        would) and start a new one; back when a probe goes through again."""
        await self._restart("worker", kill)

    async def restart_gateway(self, *, kill: bool = False) -> None:
        """Stop the gateway (``kill``: SIGKILL, a crash; else SIGTERM) and start a new
        one; back when a probe goes through again."""
        await self._restart("gateway", kill)

    async def _restart(self, part: str, kill: bool) -> None:
        old = self.processes[part]
        if kill:
            old.kill()
        else:
            old.terminate()
        await asyncio.to_thread(old.wait, 30)
        self._spawn(part, f"-{len(self.log_files)}")
        await self._wait_ready(90)

    async def restart_cases(self, *, kill: bool = False) -> None:
        """Stop the case worker (``kill``: SIGKILL, a crash; else SIGTERM) and start a new
        one (it has no endpoint to wait for: the test waits for its records)."""
        old = self.processes["cases"]
        if kill:
            old.kill()
        else:
            old.terminate()
        await asyncio.to_thread(old.wait, 30)
        self._spawn("cases", f"-{len(self.log_files)}")

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in self.log_files:
            log.close()
        self._drop_redis_keys()

    def _drop_redis_keys(self) -> None:
        """Leave the shared Redis as it was: unlink every key under this engine's prefix."""
        import redis

        client = redis.Redis.from_url(self.settings.redis_url)
        try:
            keys = list(client.scan_iter(match=f"{self.settings.topic_prefix}rtic:*", count=10_000))
            for i in range(0, len(keys), 5_000):
                client.unlink(*keys[i : i + 5_000])
        finally:
            client.close()

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name} ---\n{p.read_text(errors='replace')[-4000:]}"
            for p in self.log_dir.glob("*.log")
        )

    @contextlib.asynccontextmanager
    async def producer(self) -> AsyncIterator[AIOKafkaProducer]:
        producer = make_producer(self.settings.kafka_url)
        await producer.start()
        try:
            yield producer
        finally:
            await producer.stop()

    async def send(self, producer: AIOKafkaProducer, topic: str, key: str, value: Any) -> None:
        raw = value if isinstance(value, bytes) else orjson.dumps(value)
        await producer.send_and_wait(topic, raw, key=key.encode())

    async def until_listed(self, *change_ids: str, timeout: float = 15.0) -> None:
        """Until the worker has applied these hotlist changes: their ids are in its Redis
        index, written in one script with the entry the enricher looks plates up in, so a
        read sent now meets them. (Reference changes and plate reads are separate agents:
        a test waits for this rather than for a fixed pause.)"""
        import redis.asyncio as aioredis

        from enrichers.keys import Keys

        index = Keys(self.settings.topic_prefix).hotlist_index
        client = aioredis.Redis.from_url(self.settings.redis_url)
        try:
            async with asyncio.timeout(timeout):
                while None in await client.hmget(index, list(change_ids)):  # noqa: ASYNC110 (polling Redis)
                    await asyncio.sleep(0.05)
        finally:
            await client.aclose()

    async def read_all(self, topic: str, idle_s: float = 2.0) -> list[ConsumerRecord[Any, Any]]:
        """Every message on ``topic`` now, read from the start by a new consumer until
        nothing more comes for ``idle_s``."""
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap_servers(self.settings.kafka_url),
            group_id=None,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        records: list[ConsumerRecord[Any, Any]] = []
        try:
            while batch := await consumer.getmany(timeout_ms=int(idle_s * 1000)):
                for part in batch.values():
                    records.extend(part)
        finally:
            await consumer.stop()
        return records

    @contextlib.asynccontextmanager
    async def tail(self, topic: str) -> AsyncIterator[AIOKafkaConsumer]:
        """A consumer of ``topic`` that sees only what is produced from now on."""
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap_servers(self.settings.kafka_url),
            group_id=None,
            auto_offset_reset="latest",
        )
        await consumer.start()
        try:
            await consumer.seek_to_end()
            await consumer.position(next(iter(consumer.assignment())))
            yield consumer
        finally:
            await consumer.stop()

    @contextlib.asynccontextmanager
    async def client(
        self, role: str = "rtic_analyst", sub: str = "analyst-1", **subscribe: Any
    ) -> AsyncIterator[ClientConnection]:
        async with connect(
            self.ws_url, additional_headers={"Authorization": f"Bearer {self.token(role, sub)}"}
        ) as ws:
            hello = orjson.loads(await ws.recv())
            assert hello["type"] == "hello", hello
            await ws.send(orjson.dumps({"type": "subscribe", **subscribe}).decode())
            reply = orjson.loads(await ws.recv())
            assert reply["type"] == "subscribed", reply
            yield ws

    async def _wait_ready(self, timeout: float) -> None:
        """Until a probe event goes all the way through worker and gateway."""
        deadline = time.monotonic() + timeout
        while True:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}\n{self.logs()}")
            try:
                async with self.client(events=True) as ws, self.producer() as producer:
                    while time.monotonic() < deadline:
                        probe = {
                            "officer_id": "PROBE",
                            "at": datetime.now(UTC).isoformat(),
                            "lat": 52.4862,
                            "lon": -1.8904,
                            "status": "off_duty",
                        }
                        await self.send(producer, self.topics.officer_locations, "PROBE", probe)
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(1.0):
                                while True:
                                    msg = orjson.loads(await ws.recv())
                                    if (
                                        msg.get("type") == "event"
                                        and msg["event"].get("officer_id") == "PROBE"
                                    ):
                                        return
                    raise RuntimeError(f"engine not ready within {timeout} s\n{self.logs()}")
            except (TimeoutError, OSError) as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gateway not reachable: {exc}\n{self.logs()}") from exc
                await asyncio.sleep(0.3)


def store_ticket(settings: Settings, role: str, sub: str, **kw: Any) -> str:
    """A login ticket (what ``rtic up`` prints in a link), its grant put in Redis."""
    from cli.links import store_grant
    from rtic.tokens import TokenKeys, login_ticket, login_ticket_key

    made = login_ticket(
        TokenKeys.from_settings(settings),
        sub=sub,
        role=role,
        now=datetime.now(UTC),
        ttl_seconds=settings.login_ticket_ttl_seconds,
        **kw,
    )
    key = login_ticket_key(settings.topic_prefix, made.ticket)
    store_grant(settings.redis_url, key, made.grant, made.ttl_seconds)
    return made.ticket


async def next_message(
    ws: ClientConnection, msg_type: str, timeout: float = 10.0, **match: Any
) -> dict[str, Any]:
    """The next message of a type (and matching fields) from a socket, or TimeoutError."""
    async with asyncio.timeout(timeout):
        while True:
            msg = orjson.loads(await ws.recv())
            if msg.get("type") == msg_type and all(msg.get(k) == v for k, v in match.items()):
                return msg
