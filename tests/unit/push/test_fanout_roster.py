"""The fan-out's roster sends each alert to exactly the clients ``admits_alert`` admits.

The roster (``push.fanout.Roster``) narrows thousands of officers down with one numpy
pass before ``admits`` decides; these tests compare whom an alert reached with
``admits_alert`` asked about every client, through subscriptions changing, clients
leaving and officers placed by their pings moving.
"""

from __future__ import annotations

import random
from typing import Any

import orjson

from push.access import admits_alert
from push.fanout import Client, Fanout
from rtic.schemas import Role
from rtic.tokens import Principal
from tests.unit.push.test_fanout import make_core, reply

AREAS = ["E08000025", "E08000026", "E05001197", "E05001198"]
ROLES = [Role.OFFICER] * 5 + [Role.RTIC_ANALYST, Role.SUPERVISOR, Role.CASE_OFFICER, Role.CITIZEN]


def place(rng: random.Random) -> dict[str, float]:
    return {"lat": rng.uniform(52.38, 52.60), "lon": rng.uniform(-2.10, -1.60)}


def subscription(rng: random.Random) -> dict[str, Any]:
    sub: dict[str, Any] = {"type": "subscribe"}
    if rng.random() < 0.3:
        sub["areas"] = rng.sample(AREAS, rng.randint(1, 2))
    if rng.random() < 0.3:
        sub["severities"] = rng.sample(["critical", "high", "medium", "low"], 2)
    if rng.random() < 0.7:
        sub["radius_m"] = rng.choice([500, 2000, 5000, 20_000])
        if rng.random() < 0.7:
            sub["position"] = place(rng)
    return sub


def random_alert(i: int, rng: random.Random, officers: list[str]) -> dict[str, Any]:
    return {
        "alert_id": f"A{i}",
        "severity": rng.choice(["critical", "high", "medium", "low"]),
        "area": rng.sample(AREAS, rng.randint(0, 2)),
        "location": place(rng) if rng.random() < 0.9 else None,
        "audience": {
            "roles": rng.sample(["officer", "rtic_analyst", "case_officer"], rng.randint(0, 3)),
            "areas": rng.sample(AREAS, rng.randint(0, 1)),
            "officers": rng.sample(officers, min(len(officers), rng.randint(0, 2))),
        },
        "created_at": "2026-11-24T21:30:00Z",
    }


def reached(core: Fanout, alert: dict[str, Any]) -> set[Client]:
    got = set()
    for c in core.clients:
        while not c.queue.empty():
            if orjson.loads(c.queue.get_nowait()).get("alert_id") == alert["alert_id"]:
                got.add(c)
    return got


def expected(core: Fanout, alert: dict[str, Any]) -> set[Client]:
    return {
        c
        for c in core.clients
        if c.subscription is not None
        and admits_alert(
            c.principal, c.subscription, alert, core.officer_positions.get(c.principal.sub)
        )
    }


def test_each_alert_reaches_exactly_whom_admits_alert_admits() -> None:
    rng = random.Random(7)
    core = make_core(queue_size=10_000)
    officers = [f"OFF-{i}" for i in range(40)]
    for i in range(300):
        role = rng.choice(ROLES)
        sub = rng.choice(officers) if role is Role.OFFICER else f"{role.value}-{i}"
        client = core.connect(Principal(sub, role))
        if rng.random() < 0.95:
            reply(core, client, subscription(rng))
    for i in range(200):
        step = rng.random()
        clients = sorted(core.clients, key=lambda c: c.connection)
        if step < 0.1:  # a client subscribes again
            reply(core, rng.choice(clients), subscription(rng))
        elif step < 0.15:  # a client leaves
            core.disconnect(rng.choice(clients))
        elif step < 0.3:  # an officer's ping moves them
            core.publish_enriched(
                {
                    "officer_id": rng.choice(officers),
                    **place(rng),
                    "enrichment": {"kind": "officer_location", "area_codes": []},
                }
            )
        alert = random_alert(i, rng, officers)
        want = expected(core, alert)
        core.publish_alert(alert)
        assert reached(core, alert) == want, i


def test_clients_added_to_the_set_directly_are_not_missed() -> None:
    core = make_core()
    here = {"lat": 52.48, "lon": -1.89}
    officer = Client(Principal("OFF-1", Role.OFFICER), 10)
    reply(core, officer, {"type": "subscribe", "radius_m": 1000, "position": here})
    core.publish_alert(random_alert(0, random.Random(2), []))  # the roster is built without it
    core.clients.add(officer)
    alert = {**random_alert(1, random.Random(3), []), "location": here, "severity": "high"}
    alert["audience"] = {"roles": ["officer"]}
    core.publish_alert(alert)
    assert reached(core, alert) == {officer}
