"""The fault suite's tools on real sockets and a real redis-server (the proxy it cuts, the
Redis it freezes), and ``rtic faults --quick`` on one fault: a smoke check that the
suite starts the engine, hurts it, counts and writes its results (the figures
themselves are measurements, not tests: docs/reliability.md)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from benchmarks.fault_stack import PrivateRedis, TcpProxy

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


async def _round_trip(port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(len(payload)), 5)
    finally:
        writer.close()


async def test_the_proxy_forwards_drops_refuses_and_comes_back() -> None:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    target = server.sockets[0].getsockname()[:2]
    proxy = TcpProxy(target)
    await proxy.start()
    try:
        assert await _round_trip(proxy.port, b"hello") == b"hello"
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"x")
        await writer.drain()
        assert await reader.readexactly(1) == b"x"
        await proxy.cut()
        assert await asyncio.wait_for(reader.read(1), 5) == b""  # the open connection dropped
        writer.close()
        with pytest.raises(OSError):
            await _round_trip(proxy.port, b"again")  # a new one refused
        await proxy.restore()
        assert await _round_trip(proxy.port, b"back") == b"back"
        assert proxy.connections == 3
    finally:
        await proxy.stop()
        server.close()
        await server.wait_closed()


def test_a_frozen_redis_does_not_answer_and_a_thawed_one_does(tmp_path: Path) -> None:
    server = PrivateRedis.start(tmp_path)
    client = redis.Redis.from_url(server.url, socket_timeout=0.5)
    try:
        client.set("k", "v")
        server.freeze()
        with pytest.raises(redis.TimeoutError):
            client.get("k")
        server.thaw()
        client = redis.Redis.from_url(server.url, socket_timeout=2)
        assert client.get("k") == b"v"  # frozen, not restarted: the data is kept
    finally:
        client.close()
        server.stop()
    assert server.popen.poll() is not None


def test_quick_worker_kill_run_counts_every_hotlisted_read(tmp_path: Path) -> None:
    args = ["--quick", "--only", "worker_kill", "--no-docs", "--out-dir", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "faults", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = tmp_path.glob("faults-*.json")
    results = json.loads(path.read_text())
    (fault,) = results["faults"]
    assert "error" not in fault, fault
    assert fault["fault"] == "worker_kill" and fault["restarts"] == ["worker1 ×1"]
    assert fault["alerts_expected"] > 10 and fault["events_in"] > fault["alerts_expected"]
    assert fault["alerts_delivered"] + fault["lost"] == fault["alerts_expected"]
    assert fault["alerts_delivered"] > 0 and fault["recovery_s"] is not None
    assert fault["records"]["records_expected"] > 0
