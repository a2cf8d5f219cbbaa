"""Scripted situations, each with the alerts it must raise.

A scenario is a short list of contract messages with event times relative to a
start, and the alerts the engine must raise for them (by rule, how many, and
about what). ``rtic simulate --scenario NAME`` sends one; the end-to-end tests
send each through the real engine and compare the alerts that reach a
websocket client with the expectation, exactly.

Scenarios whose rules are not in the catalogue yet (the rules issue adds
them) say so in ``needs_rules``; they can be sent, and are checked once the
catalogue has those rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rtic.schemas import EventKind

# Real places in the force area, for readable scenarios.
CAMERAS_ACROSS_BIRMINGHAM = [  # west to east along the A38 / A45 corridor
    ("CAM-A38-SELLY-OAK", 52.4414, -1.9362),
    ("CAM-A38-BRISTOL-RD", 52.4611, -1.9184),
    ("CAM-CITY-CENTRE", 52.4790, -1.8990),
    ("CAM-A45-SMALL-HEATH", 52.4690, -1.8500),
    ("CAM-A45-SHELDON", 52.4520, -1.7760),
]
BROAD_STREET = (52.4770, -1.9120)  # Birmingham's club strip
COVENTRY_ADDRESS = ("14 Far Gosford Street, Coventry CV1 5DZ", 52.4070, -1.4960)


@dataclass(frozen=True)
class ScenarioEvent:
    offset: timedelta
    kind: EventKind
    key: str
    value: dict[str, Any]


@dataclass(frozen=True)
class ExpectedAlerts:
    """``count`` distinct alerts (alert ids) of ``rule_id``; with ``about``, their source
    event ids end with one of these. Updates of an alert (higher versions) count once."""

    rule_id: str
    count: int
    about: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    build: Callable[[datetime, str], list[ScenarioEvent]]
    expected: tuple[ExpectedAlerts, ...]
    needs_rules: tuple[str, ...] = field(default_factory=tuple)

    def events(self, start: datetime, tag: str) -> list[tuple[datetime, ScenarioEvent]]:
        """The scenario's messages with absolute times; ``tag`` makes its ids unique."""
        return [(start + e.offset, e) for e in self.build(start, tag)]


def _stolen_car(start: datetime, tag: str) -> list[ScenarioEvent]:
    plate = f"SC{tag[-2:]} TLN"
    out = [
        ScenarioEvent(
            timedelta(0),
            EventKind.REFERENCE,
            f"HL-{tag}",
            {
                "kind": "hotlist",
                "op": "upsert",
                "id": f"HL-{tag}",
                "entry": {"vrm": plate, "reason": "stolen", "source": "scenario stolen-car"},
            },
        )
    ]
    for i, (camera, lat, lon) in enumerate(CAMERAS_ACROSS_BIRMINGHAM):
        at = start + timedelta(minutes=2 + 3 * i)
        vrm = plate if i != 2 else plate.replace("S", "5")  # one camera misreads S as 5
        out.append(
            ScenarioEvent(
                at - start,
                EventKind.ANPR,
                camera,
                {
                    "read_id": f"R-{tag}-{i}",
                    "vrm": vrm,
                    "camera_id": camera,
                    "read_at": at.isoformat(),
                    "lat": lat,
                    "lon": lon,
                    "confidence": 0.9,
                    "direction": "E",
                },
            )
        )
    return out


def _repeat_domestic_abuse(start: datetime, tag: str) -> list[ScenarioEvent]:
    address, lat, lon = COVENTRY_ADDRESS
    out = []
    for i, days in enumerate((0, 9, 20)):
        at = start + timedelta(days=days)
        out.append(
            ScenarioEvent(
                at - start,
                EventKind.CALL,
                f"CALL-{tag}-{i}",
                {
                    "call_id": f"CALL-{tag}-{i}",
                    "received_at": at.isoformat(),
                    "channel": "999",
                    "category": "domestic_abuse",
                    "grade": 1,
                    "location": {"lat": lat, "lon": lon, "address": f"{address} ({tag})"},
                    "caller": {"person_id": f"P-{tag}", "name": "Scenario Victim"},
                    "description": "Partner shouting and throwing things",
                },
            )
        )
    return out


def _club_fight(start: datetime, tag: str) -> list[ScenarioEvent]:
    lat, lon = BROAD_STREET
    return [
        ScenarioEvent(
            timedelta(minutes=i * 2),
            EventKind.CALL,
            f"CALL-{tag}-{i}",
            {
                "call_id": f"CALL-{tag}-{i}",
                "received_at": (start + timedelta(minutes=i * 2)).isoformat(),
                "channel": "999",
                "category": "assault",
                "grade": 1,
                "location": {
                    "lat": lat + i * 0.0004,
                    "lon": lon - i * 0.0003,
                    "address": f"Broad Street, Birmingham ({tag})",
                },
                "caller": {"person_id": f"P-{tag}-{i}"},
                "description": "Fight outside a club, several involved",
            },
        )
        for i in range(5)
    ]


def _unassigned_grade_1(start: datetime, tag: str) -> list[ScenarioEvent]:
    lat, lon = 52.5860, -1.9820  # Walsall town centre
    return [
        ScenarioEvent(
            timedelta(0),
            EventKind.INCIDENT,
            f"INC-{tag}",
            {
                "incident_id": f"INC-{tag}",
                "event": "created",
                "at": start.isoformat(),
                "grade": 1,
                "category": "concern_for_safety",
                "location": {"lat": lat, "lon": lon, "address": f"Park Street, Walsall ({tag})"},
                "units": [],
            },
        )
    ]


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "stolen-car",
            "A stolen car crosses Birmingham west to east past five cameras, one of which misreads the plate.",
            _stolen_car,
            # Repeated hits fold into one open alert: one alert, updated to its fifth version.
            (ExpectedAlerts("anpr_hotlist_hit", 1),),
        ),
        Scenario(
            "repeat-domestic-abuse",
            "A domestic abuse victim calls from the same address for the third time in three weeks.",
            _repeat_domestic_abuse,
            # Domestic abuse counts from the second call: one alert on the second and one on the
            # third today; the rules issue's deduplication makes that one alert that grows.
            (ExpectedAlerts("repeat_calls", 2, about=("-1", "-2")),),
        ),
        Scenario(
            "club-fight",
            "Five calls within ten minutes about a fight outside a club on Broad Street.",
            _club_fight,
            (ExpectedAlerts("emerging_incident", 1),),
            needs_rules=("emerging_incident",),
        ),
        Scenario(
            "unassigned-grade-1",
            "A grade 1 incident in Walsall that nobody is free to take.",
            _unassigned_grade_1,
            (ExpectedAlerts("response_promise", 1),),
            needs_rules=("response_promise",),
        ),
    )
}


async def send_scenario(settings: Any, name: str, tag: str, start: datetime) -> list[str]:
    """Send a scenario's messages (reference data first, then the rest in time order).

    Returns the ids of the source events sent, so a caller can match alerts to them.
    """
    import asyncio

    from rtic.kafka import ensure_topics, make_producer
    from rtic.schemas import dumps
    from rtic.topics import Topics
    from simulators.replay import topic_of

    scenario = SCENARIOS[name]
    topics = Topics.with_prefix(settings.topic_prefix)
    await ensure_topics(settings.kafka_url, topics.all(), settings.topic_partitions)
    events = sorted(
        scenario.events(start, tag), key=lambda te: (te[1].kind is not EventKind.REFERENCE, te[0])
    )
    producer = make_producer(settings.kafka_url)
    await producer.start()
    try:
        sent_reference = False
        for _, ev in events:
            if ev.kind is not EventKind.REFERENCE and sent_reference:
                await producer.flush()
                await asyncio.sleep(1.0)  # reference changes go through their own agent first
                sent_reference = False
            await producer.send(topic_of(topics, ev.kind), dumps(ev.value), key=ev.key.encode())
            sent_reference = sent_reference or ev.kind is EventKind.REFERENCE
        await producer.flush()
    finally:
        await producer.stop()
    return [ev.key for _, ev in events if ev.kind is not EventKind.REFERENCE]
