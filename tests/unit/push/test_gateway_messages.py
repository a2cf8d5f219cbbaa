"""The gateway's handling of client messages and of alerts, without sockets or Kafka.

``Client`` is driven with a stand-in socket: ``on_client_message`` and the fan-out
only use the client's queue. The socket path itself is covered end to end in tests/e2e.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from websockets.datastructures import Headers
from websockets.http11 import Request

from enrichers.geo import GeoIndex
from push.gateway import Client, Gateway
from rtic.errors import AuthError
from rtic.schemas import AlertAckV1, Role
from rtic.settings import Settings
from rtic.tokens import Principal, issue_token
from tests.conftest import NOW

SECRET = "gateway-unit-secret"


class FakeSocket:
    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)


@pytest.fixture
def gateway(geo: GeoIndex) -> Iterator[Gateway]:
    gw = Gateway(Settings(token_secret=SECRET, gateway_client_queue=10), geo=geo, clock=lambda: NOW)  # type: ignore[arg-type]
    yield gw


def client(role: Role = Role.RTIC_ANALYST, sub: str = "an", cases: tuple[str, ...] = ()) -> Client:
    return Client(FakeSocket(), Principal(sub, role, cases), queue_size=10)  # type: ignore[arg-type]


def reply(gw: Gateway, c: Client, msg: Any) -> dict[str, Any]:
    raw = msg if isinstance(msg, (str, bytes)) else orjson.dumps(msg)
    out = gw.on_client_message(c, raw)
    assert out is not None
    return orjson.loads(out)


def drain(c: Client) -> list[dict[str, Any]]:
    out = []
    while not c.queue.empty():
        out.append(orjson.loads(c.queue.get_nowait()))
    return out


def test_nonsense_gets_clear_error_frames(gateway: Gateway) -> None:
    c = client()
    assert reply(gateway, c, b"{nope")["code"] == "bad_json"
    assert reply(gateway, c, b"[1]")["code"] == "bad_message"
    assert reply(gateway, c, {"no": "type"})["code"] == "bad_message"
    assert reply(gateway, c, {"type": "teleport"})["code"] == "unknown_type"
    assert (
        reply(gateway, c, {"type": "subscribe", "severities": ["urgent"]})["code"]
        == "bad_subscribe"
    )
    assert reply(gateway, c, {"type": "resume", "last_alert_id": "x"})["code"] == "bad_resume"
    assert c.errors == 6


def test_ping_subscribe_and_ack(gateway: Gateway) -> None:
    c = client()
    assert reply(gateway, c, {"type": "ping"})["type"] == "pong"
    sub = reply(gateway, c, {"type": "subscribe", "severities": ["critical"], "events": True})
    assert sub["type"] == "subscribed" and sub["filters"]["severities"] == ["critical"]
    assert (
        reply(gateway, c, {"type": "ack", "alert_id": "a1", "action": "teleport"})["code"]
        == "bad_ack"
    )
    assert (
        reply(gateway, client(Role.CITIZEN, "cit"), {"type": "ack", "alert_id": "a1"})["code"]
        == "bad_ack"
    )


async def test_ack_is_recorded_through_the_producer(gateway: Gateway) -> None:
    recorded: list[AlertAckV1] = []

    async def record_ack(ack: AlertAckV1) -> None:
        recorded.append(ack)

    gateway.record_ack = record_ack  # type: ignore[method-assign]
    out = reply(
        gateway,
        client(sub="an-1"),
        {"type": "ack", "alert_id": "a1", "action": "assign", "note": "BW-21"},
    )
    assert out == {"type": "acked", "alert_id": "a1", "action": "assign"}
    await asyncio.sleep(0)
    ((ack),) = recorded
    assert (ack.alert_id, ack.by, ack.role, ack.action, ack.note) == (
        "a1",
        "an-1",
        "rtic_analyst",
        "assign",
        "BW-21",
    )


def alert(alert_id: str, severity: str = "high") -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "severity": severity,
        "created_at": NOW.isoformat(),
        "area": ["E08000025"],
        "location": {"lat": 52.48, "lon": -1.89},
        "audience": {"roles": ["rtic_analyst", "officer"], "areas": ["E08000025"], "officers": []},
    }


async def test_alerts_fan_out_once_per_id_and_by_access(gateway: Gateway) -> None:
    analyst, officer, unsubscribed = client(), client(Role.OFFICER, "OFF-1"), client()
    reply(gateway, analyst, {"type": "subscribe"})
    reply(gateway, officer, {"type": "subscribe"})  # no area, no radius: nothing for them
    gateway.clients.update({analyst, officer, unsubscribed})
    gateway.publish_alert(alert("a1"))
    gateway.publish_alert(alert("a1"))  # redelivery
    gateway.publish_alert(alert("a2", "low"))
    assert [m["alert_id"] for m in drain(analyst)] == ["a1", "a2"]
    assert drain(officer) == [] and drain(unsubscribed) == []


async def test_resume_sends_what_was_missed(gateway: Gateway) -> None:
    for i in range(5):
        gateway.publish_alert(alert(f"a{i}"))
    c = client()
    reply(gateway, c, {"type": "subscribe"})
    done = reply(gateway, c, {"type": "resume", "last_alert_id": "a2"})
    assert [m["alert_id"] for m in drain(c)] == ["a3", "a4"]
    assert done == {"type": "resumed", "count": 2, "complete": True}
    c2 = client()
    reply(gateway, c2, {"type": "subscribe"})
    assert reply(gateway, c2, {"type": "resume", "last_alert_id": "older"})["complete"] is False
    assert len(drain(c2)) == 5


async def test_a_slow_client_is_closed_not_silently_dropped(gateway: Gateway) -> None:
    c = client()
    reply(gateway, c, {"type": "subscribe", "events": True})
    gateway.clients.add(c)
    for i in range(10):
        gateway.publish_enriched(
            {
                "officer_id": f"O{i}",
                "lat": 52.48,
                "lon": -1.89,
                "enrichment": {"kind": "officer_location", "area_codes": []},
            }
        )
    assert c.dropped_events == 5  # events stop at half the queue
    for i in range(10):
        gateway.publish_alert(alert(f"s{i}"))
    await asyncio.sleep(0)
    assert c.overflowed and c.ws.closed[0] == 1013  # type: ignore[attr-defined]


def request(path: str, headers: dict[str, str] | None = None) -> Request:
    return Request(path, Headers(headers or {}))


def test_authentication_by_header_or_query(gateway: Gateway) -> None:
    token = issue_token(SECRET, sub="an", role="rtic_analyst", now=NOW, ttl_seconds=60)
    assert gateway.authenticate(request("/ws", {"Authorization": f"Bearer {token}"})).sub == "an"
    assert gateway.authenticate(request(f"/ws?token={token}")).role is Role.RTIC_ANALYST
    for bad in (
        request("/ws"),
        request("/ws?token=abc"),
        request("/ws", {"Authorization": "Bearer x.y.z"}),
    ):
        with pytest.raises(AuthError):
            gateway.authenticate(bad)


def test_http_routes(gateway: Gateway) -> None:
    assert gateway.http(request("/")).status_code == 200
    assert b"RTIC live" in gateway.http(request("/")).body
    assert (
        gateway.http(request("/static/rtic.js"))
        .headers["Content-Type"]
        .startswith("text/javascript")
    )
    assert gateway.http(request("/static/../rtic/settings.py")).status_code == 404
    assert gateway.http(request("/api/boundaries?level=district")).status_code == 200
    assert gateway.http(request("/api/boundaries?level=planet")).status_code == 400
    assert orjson.loads(gateway.http(request("/healthz")).body)["status"] == "ok"
    assert gateway.http(request("/nothing")).status_code == 404
