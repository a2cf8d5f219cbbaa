"""A gateway killed under a stream of alerts, clients reconnecting at once and resuming:
nothing missed, nothing shown twice, and none of the old alerts the new gateway reads
again at start (issue 14: before, clients got ``complete: false``, 801 old alerts and
30 they had already seen).

The alerts topic holds ``OLD`` alerts before the clients connect, so the new gateway
has a buffer to fill when they come back. Alerts are written straight to
``rtic.alerts.v1`` (the worker is not what is tested) at ``RATE`` a second, before,
during and after the restart. Half the clients resume as the pages do
(``last_alert_id``, ``since`` and ``seen``), half with ``last_alert_id`` only (an
older page): both must see every alert once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect

from rtic.schemas import AlertV1, AudienceV1, LocationV1, Role, Severity
from tests.engine import Engine

pytestmark = pytest.mark.e2e

OLD = 3000
RATE = 50  # alerts a second
CLIENTS = 6
BIRMINGHAM = (52.4862, -1.8904)


def an_alert(alert_id: str) -> dict[str, Any]:
    return AlertV1(
        alert_id=alert_id,
        rule_id="anpr_hotlist",
        severity=Severity.LOW,
        title=f"restart test {alert_id}",
        summary="an alert of the gateway restart test",
        created_at=datetime.now(UTC),
        source_event_ids=[f"SRC-{alert_id}"],
        location=LocationV1(lat=BIRMINGHAM[0], lon=BIRMINGHAM[1]),
        area=["E08000025"],
        audience=AudienceV1(roles=[Role.RTIC_ANALYST]),
    ).model_dump(mode="json")


@dataclass
class Screen:
    """One analyst's screen: what it was shown, and how its resumes went."""

    name: str
    with_seen: bool
    tag: str
    shown: Counter[tuple[str, int]] = field(default_factory=Counter)
    held: dict[str, dict[str, Any]] = field(default_factory=dict)  # alert id -> newest
    last: str | None = None
    connections: int = 0
    resumes: list[dict[str, Any]] = field(default_factory=list)
    not_ready: int = 0
    resume_sent_at: float = 0.0
    resume_waits: list[float] = field(default_factory=list)  # resume -> resumed, seconds

    def resume(self) -> dict[str, Any]:
        msg: dict[str, Any] = {"type": "resume", "last_alert_id": self.last}
        if self.with_seen:
            msg["seen"] = {k: a.get("version") or 1 for k, a in list(self.held.items())[-1000:]}
            created = self.held[self.last]["created_at"] if self.last in self.held else None
            if created:
                since = datetime.fromisoformat(created) - timedelta(minutes=5)
                msg["since"] = since.isoformat()
        return msg

    def ours(self) -> set[str]:
        return {a for a, _ in self.shown if a.startswith(self.tag)}


async def watch(engine: Engine, screen: Screen, ready: asyncio.Event, stop: asyncio.Event) -> None:
    """Connect, subscribe, resume on every reconnection; reconnect at once when the
    socket goes (as fast as the gateway accepts)."""
    token = engine.token("rtic_analyst", screen.name)
    while not stop.is_set():
        try:
            async with connect(
                engine.ws_url, additional_headers={"Authorization": f"Bearer {token}"}
            ) as ws:
                screen.connections += 1
                await ws.send(orjson.dumps({"type": "subscribe"}).decode())
                if screen.last is not None:
                    screen.resume_sent_at = time.monotonic()
                    await ws.send(orjson.dumps(screen.resume()).decode())
                async for raw in ws:
                    m = orjson.loads(raw)
                    if m["type"] == "subscribed":
                        ready.set()
                    elif m["type"] == "alert":
                        key = (m["alert_id"], int(m.get("version") or 1))
                        screen.shown[key] += 1
                        screen.held[m["alert_id"]] = m
                        screen.last = m["alert_id"]
                    elif m["type"] == "resumed":
                        screen.resumes.append(m)
                        screen.resume_waits.append(time.monotonic() - screen.resume_sent_at)
                    elif m["type"] == "error" and m.get("code") == "not_ready":
                        screen.not_ready += 1
                        await asyncio.sleep(m.get("retry_after_s", 1))
                        await ws.send(orjson.dumps(screen.resume()).decode())
                    if stop.is_set():
                        return
        except Exception:  # refused while the gateway is down: again, at once
            await asyncio.sleep(0.05)


async def test_clients_resuming_through_a_gateway_kill_miss_nothing_and_see_nothing_twice(
    engine: Engine,
) -> None:
    tag = f"rr{int(time.time() * 1000) % 10**9}-"
    async with engine.producer() as producer:
        for i in range(OLD):  # what the new gateway reads again at start
            await producer.send(
                engine.topics.alerts, orjson.dumps(an_alert(f"old-{tag}{i}")), key=b"old"
            )
        await producer.flush()
    await asyncio.sleep(1.0)  # the running gateway has read them: the screens never see them
    stop = asyncio.Event()
    screens = [Screen(f"an-rr-{i}", with_seen=i % 2 == 0, tag=tag) for i in range(CLIENTS)]
    readies = [asyncio.Event() for _ in screens]
    tasks = [
        asyncio.create_task(watch(engine, s, r, stop))
        for s, r in zip(screens, readies, strict=True)
    ]
    sent: list[str] = []
    try:
        async with asyncio.timeout(15):
            await asyncio.gather(*(r.wait() for r in readies))
        async with engine.producer() as producer:

            async def produce(seconds: float) -> None:
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    alert_id = f"{tag}{len(sent)}"
                    await engine.send(producer, engine.topics.alerts, alert_id, an_alert(alert_id))
                    sent.append(alert_id)
                    await asyncio.sleep(1 / RATE)

            await produce(2.0)
            killed_at = time.monotonic()
            restart = asyncio.create_task(engine.restart_gateway(kill=True))
            while not restart.done():
                await produce(0.2)
            back_in = time.monotonic() - killed_at
            await produce(2.0)
        for _ in range(150):  # up to 30 s for every screen to have every alert
            if all(s.ours() == set(sent) for s in screens):
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # anything shown twice has arrived
    finally:
        stop.set()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
    missed = {s.name: len(set(sent) - s.ours()) for s in screens}
    twice = {s.name: sum(n - 1 for n in s.shown.values() if n > 1) for s in screens}
    old = {s.name: sum(1 for a, _ in s.shown if a.startswith("old-" + tag)) for s in screens}
    incomplete = {s.name: sum(1 for r in s.resumes if not r["complete"]) for s in screens}
    print(
        f"\nRESTART-RESUME alerts={len(sent)} clients={CLIENTS} old_on_topic={OLD} "
        f"gateway_back_in_s={back_in:.1f} missed={sum(missed.values())} "
        f"shown_twice={sum(twice.values())} old_shown={sum(old.values())} "
        f"resumes={sum(len(s.resumes) for s in screens)} incomplete={sum(incomplete.values())} "
        f"not_ready={sum(s.not_ready for s in screens)} "
        f"longest_resume_wait_s={max(w for s in screens for w in s.resume_waits):.2f} "
        f"connections={[s.connections for s in screens]}"
    )
    assert all(s.connections >= 2 for s in screens), "the gateway was not restarted under them"
    assert missed == dict.fromkeys(missed, 0), missed
    assert twice == dict.fromkeys(twice, 0), twice
    assert old == dict.fromkeys(old, 0), old
    assert incomplete == dict.fromkeys(incomplete, 0), incomplete
