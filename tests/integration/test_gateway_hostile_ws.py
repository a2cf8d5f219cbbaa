"""The real gateway (``Gateway.run``: uvicorn, the websockets protocol, its Kafka edge on
the session's Tansu broker, Redis, records in SQLite) under hostile websocket clients,
all at once: malformed and huge messages, fragmented messages (small, and adding up
past the limit), invalid frames written on a raw socket (bad UTF-8, unmasked, a
handshake never finished), a flood of nonsense, a flood of pings (answered up to the rate limit, then closed
with 1008), and a subscriber
that never reads while alerts pour in. Meanwhile and afterwards an ordinary client
gets every alert written to ``rtic.alerts.v1``, in order, and its pongs; the gateway
never stops serving. The in-process property tests of the same protocol are
tests/fuzz/test_client_protocol.py."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import struct
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from cli.services import free_port
from push.fanout import MAX_CLIENT_ERRORS
from push.gateway import Gateway
from push.web import MAX_WS_MESSAGE_BYTES
from records import open_records
from rtic.kafka import bootstrap_servers
from rtic.settings import Settings
from rtic.tokens import TokenKeys, issue_token
from rtic.topics import Topics
from tests.force_area import use_force_area_codes
from tests.fuzz.seeds import hotlist_alert

pytestmark = pytest.mark.integration
RESULTS: dict[str, Any] = {}  # for the report: what the floods got

# Alerts written in chunks (one Kafka fetch never brings the ordinary reader more than its
# queue holds), adding up to more than a client that never reads can be sent before the
# gateway's queue for it fills: its queue (100 frames), the transport's 64 kB and the
# kernel's send buffer, which grows to 4 MB on Linux (400 alerts of 20 kB: 8 MB). Measured
# here the kernel's buffers took it all (the reader was not closed, and caught up).
ALERTS, CHUNK, PAD = 400, 50, 20_000
QUEUE = 100  # frames queued per client before the gateway closes it as too slow


def token(settings: Settings, role: str = "rtic_analyst", sub: str = "an-1") -> str:
    return issue_token(
        TokenKeys.from_settings(settings),
        sub=sub,
        role=role,
        now=datetime.now(UTC),
        ttl_seconds=600,
    )


@pytest.fixture
async def gateway(settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[Gateway, str]]:
    settings = settings.model_copy(
        update={"gateway_port": free_port(), "gateway_client_queue": QUEUE}
    )
    records = await open_records(f"sqlite+aiosqlite:///{tmp_path / 'records.sqlite3'}")
    gw = use_force_area_codes(Gateway(settings, records=records))
    serving = asyncio.create_task(gw.run())
    try:
        while gw.serving is None or not gw.serving.started or not gw.kafka.consuming:
            assert not serving.done(), serving
            await asyncio.sleep(0.05)
        yield gw, f"127.0.0.1:{settings.gateway_port}"
        assert not serving.done()  # still serving after everything the test did
    finally:
        if gw.serving is not None:
            gw.serving.should_exit = True
        await asyncio.wait_for(serving, 30)
        await records.close()


async def frames(ws: ClientConnection, until: str, limit: int = 500) -> list[dict[str, Any]]:
    """Frames received up to and including the first of type ``until``."""
    got: list[dict[str, Any]] = []
    for _ in range(limit):
        frame = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        got.append(frame)
        if frame["type"] == until:
            return got
    raise AssertionError(f"no {until} in {len(got)} frames")


async def closed_with(ws: ClientConnection) -> int | None:
    """Read until the gateway closes the socket; the close code it sent."""
    try:
        async with asyncio.timeout(15):
            while True:
                await ws.recv()
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd is not None else None
    raise AssertionError("unreachable")


# ---- the attackers -----------------------------------------------------------------------


async def malformed(url: str) -> dict[str, int]:
    """Nonsense of every kind, but fewer than the error limit: each answered with an error."""
    async with connect(url, max_size=None) as ws:
        await frames(ws, "hello")
        bad = [
            "not json",
            "[]",
            '{"type": 1}',
            '{"type": "nope"}',
            '{"type": "' + "t" * 60_000 + '"}',
            '{"type": "subscribe", "radius_m": "far"}',
            '{"type": "ack"}',
            "[" * 2000 + "]" * 2000,
            b"\x00\xff binary".decode("latin-1"),
        ]
        for text in bad:
            await ws.send(text)
        await ws.send(b"\x00\x01\x02")  # a binary frame
        answers = [orjson.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(len(bad) + 1)]
        assert all(a["type"] == "error" for a in answers), answers
        assert all(len(orjson.dumps(a)) < 4096 for a in answers)
        await ws.send('{"type": "ping"}')
        assert (await frames(ws, "pong"))[-1]["type"] == "pong"  # still served
        return {"errors": len(answers)}


async def huge(url: str) -> int | None:
    """One message over the limit: closed with 1009 (message too big)."""
    async with connect(url, max_size=None) as ws:
        await frames(ws, "hello")
        await ws.send("x" * (MAX_WS_MESSAGE_BYTES + 1))
        return await closed_with(ws)


async def fragmented(url: str) -> int | None:
    """A message in small fragments is one message; fragments adding up past the limit
    close the socket with 1009."""
    async with connect(url, max_size=None) as ws:
        await frames(ws, "hello")
        await ws.send(['{"type":', ' "pi', 'ng"}'])
        assert (await frames(ws, "pong"))[-1]["type"] == "pong"
        await ws.send("y" * 8192 for _ in range(MAX_WS_MESSAGE_BYTES // 8192 + 2))
        return await closed_with(ws)


async def nonsense_flood(url: str) -> int | None:
    """Bad messages past the limit: closed with 1008."""
    async with connect(url, max_size=None) as ws:
        await frames(ws, "hello")
        for _ in range(MAX_CLIENT_ERRORS * 5):
            try:
                await ws.send("nonsense")
            except ConnectionClosed:
                break
        return await closed_with(ws)


async def ping_flood(url: str) -> tuple[int, int, int | None]:
    """A thousand pings without pause, read as they come. The burst is answered with
    pongs; past the per-connection rate (push/wslimits.py) each ping is refused with an
    error frame ``rate_limited``, and a client that goes on flooding is closed with
    1008. Returns (pongs, rate_limited errors, close code)."""
    async with connect(url, max_size=None) as ws:
        await frames(ws, "hello")
        pongs = limited = 0

        async def read() -> None:
            nonlocal pongs, limited
            while True:
                frame = orjson.loads(await ws.recv())
                pongs += frame["type"] == "pong"
                limited += frame["type"] == "error" and frame.get("code") == "rate_limited"

        reading = asyncio.create_task(read())
        for _ in range(1000):
            try:
                await ws.send('{"type":"ping"}')
            except ConnectionClosed:
                break
        await asyncio.gather(reading, return_exceptions=True)
        return pongs, limited, ws.close_code


async def slow_reader(
    url: str, subscribed: asyncio.Event, poured: asyncio.Event, expected: int
) -> tuple[str, int]:
    """Subscribes, then reads nothing while the alerts pour in (a 4 kB receive buffer, a
    client queue of one frame) until ``poured`` (the ordinary client has had every alert,
    so the gateway has sent them all; at most ten seconds), then reads again. The gateway either
    closed it (1013, too slow: it resumes) or, if the socket buffers took it all, it gets
    every alert, in order: ("closed", code) or ("caught_up", alerts)."""
    host, port = url.removeprefix("ws://").split("/")[0].split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.setblocking(False)
    async with connect(url, max_size=None, max_queue=1, sock=sock) as ws:
        await frames(ws, "hello")
        await ws.send('{"type": "subscribe"}')
        await frames(ws, "subscribed")
        subscribed.set()
        with contextlib.suppress(TimeoutError):  # the alerts arrive; nothing is read
            await asyncio.wait_for(poured.wait(), 10)
        alerts = 0
        try:
            while alerts < expected:
                frame = orjson.loads(await asyncio.wait_for(ws.recv(), 15))
                alerts += frame["type"] == "alert"
        except ConnectionClosed as exc:
            assert exc.rcvd is not None
            return "closed", exc.rcvd.code
        return "caught_up", alerts


def _frame(opcode: int, payload: bytes, masked: bool = True) -> bytes:
    head = bytes([0x80 | opcode])
    length = len(payload)
    mask_bit = 0x80 if masked else 0
    if length < 126:
        head += bytes([mask_bit | length])
    else:
        head += bytes([mask_bit | 126]) + struct.pack("!H", length)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


async def raw_frames(host: str, port: int, settings: Settings) -> list[int | None]:
    """Frames the websockets client would never send, on a raw socket: invalid UTF-8 in a
    text frame, an unmasked frame, a reserved opcode. Each is closed with a protocol
    error code (1007 or 1002); and a handshake never finished is let go."""
    codes: list[int | None] = []
    for bad in (
        _frame(0x1, b'{"type": "\xff\xfe"}'),
        _frame(0x1, b'{"type": "ping"}', masked=False),
        _frame(0x3, b"reserved"),
    ):
        reader, writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /ws?token={token(settings)} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert response.startswith(b"HTTP/1.1 101"), response
        writer.write(bad)
        await writer.drain()
        rest = await asyncio.wait_for(reader.read(), 10)  # until the gateway closes
        # The last frame the gateway sent is its close frame: code in its payload.
        close_at = rest.rfind(b"\x88")
        code = struct.unpack("!H", rest[close_at + 2 : close_at + 4])[0] if close_at >= 0 else None
        codes.append(code)
        writer.close()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET /ws HTTP/1.1\r\nHost: x\r\n")  # and never the end of the request
    await writer.drain()
    await asyncio.sleep(0.5)
    writer.close()
    return codes


async def write_alerts(settings: Settings, ids: list[str]) -> None:
    topics = Topics.with_prefix(settings.topic_prefix)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(settings.kafka_url))
    await producer.start()
    try:
        base = hotlist_alert()
        now = datetime.now(UTC).isoformat()
        for i in range(0, len(ids), CHUNK):
            for alert_id in ids[i : i + CHUNK]:
                alert = {**base, "alert_id": alert_id, "created_at": now}
                alert["details"] = {**base["details"], "pad": "x" * PAD}
                await producer.send(topics.alerts, orjson.dumps(alert), key=alert_id.encode())
            await producer.flush()
            await asyncio.sleep(0.2)
    finally:
        await producer.stop()


async def test_hostile_clients_do_not_stop_the_gateway_serving_an_ordinary_one(
    gateway: tuple[Gateway, str], settings: Settings, unique: Any
) -> None:
    gw, base = gateway
    url = f"ws://{base}/ws?token={token(gw.settings)}"
    host, port = base.split(":")
    ids = [unique("fuzz-alert") for _ in range(ALERTS)]
    async with connect(url, max_size=None) as ordinary:
        await frames(ordinary, "hello")
        await ordinary.send('{"type": "subscribe"}')
        await frames(ordinary, "subscribed")
        subscribed, poured = asyncio.Event(), asyncio.Event()
        slow = asyncio.create_task(slow_reader(url, subscribed, poured, ALERTS))
        await subscribed.wait()
        results = await asyncio.gather(
            malformed(url),
            huge(url),
            fragmented(url),
            nonsense_flood(url),
            ping_flood(url),
            raw_frames(host, int(port), gw.settings),
            write_alerts(gw.settings, ids),
        )
        malformed_result, huge_code, fragmented_code, flood_code, pinged, raw_codes, _ = results
        pongs, limited, ping_close = pinged
        received: list[str] = []
        while len(received) < ALERTS:
            frame = orjson.loads(await asyncio.wait_for(ordinary.recv(), 20))
            if frame["type"] == "alert":
                received.append(frame["alert_id"])
        poured.set()
        await ordinary.send('{"type": "ping"}')
        assert (await frames(ordinary, "pong"))[-1]["type"] == "pong"
        slow_code = await slow
    assert received == ids  # every alert, in order, once
    assert malformed_result == {"errors": 10}
    assert huge_code == 1009 and fragmented_code == 1009 and flood_code == 1008
    assert 0 < pongs < 1000 and limited > 0 and ping_close == 1008, pinged
    assert raw_codes[0] == 1007 and raw_codes[1] == 1002 and raw_codes[2] == 1002, raw_codes
    assert slow_code in (("closed", 1013), ("caught_up", ALERTS)), slow_code
    # A new client after it all: served as the first was.
    async with connect(url) as late:
        assert (await frames(late, "hello"))[-1]["type"] == "hello"
        await late.send('{"type": "ping"}')
        assert (await frames(late, "pong"))[-1]["type"] == "pong"
    RESULTS.update(
        {
            "ping_flood_pongs": pongs,
            "ping_flood_rate_limited": limited,
            "raw_close_codes": raw_codes,
            "slow_reader": slow_code,
        }
    )
    print(f"hostile websocket clients: {RESULTS}")
