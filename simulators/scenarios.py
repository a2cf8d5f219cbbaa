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
CLUB_FIGHT_SPOTS = (
    "Outside the nightclub",
    "By the tram stop",
    "Opposite the casino",
    "Near the canal bridge",
    "Corner of Gas Street",
)
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
    # Sent as if it began this long ago, so that a deadline it is about has passed on the
    # wall clock when it arrives (a live demo or test need not wait for it).
    starts_ago: timedelta = timedelta(0)

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
                    # Each caller describes the spot in their own words.
                    "address": f"{CLUB_FIGHT_SPOTS[i]}, Broad Street, Birmingham ({tag})",
                },
                "caller": {"person_id": f"P-{tag}-{i}"},
                "description": "Fight outside a club, several involved",
            },
        )
        for i in range(5)
    ]


def _incident(
    start: datetime, offset: timedelta, ident: str, event: str, **fields: Any
) -> ScenarioEvent:
    return ScenarioEvent(
        offset,
        EventKind.INCIDENT,
        ident,
        {"incident_id": ident, "event": event, "at": (start + offset).isoformat(), **fields},
    )


def _call(start: datetime, offset: timedelta, ident: str, **fields: Any) -> ScenarioEvent:
    return ScenarioEvent(
        offset,
        EventKind.CALL,
        ident,
        {"call_id": ident, "received_at": (start + offset).isoformat(), "channel": "999", **fields},
    )


def _reference(ident: str, kind: str, entry: dict[str, Any]) -> ScenarioEvent:
    return ScenarioEvent(
        timedelta(0),
        EventKind.REFERENCE,
        ident,
        {"kind": kind, "op": "upsert", "id": ident, "entry": entry},
    )


def _unassigned_grade_1(start: datetime, tag: str) -> list[ScenarioEvent]:
    lat, lon = 52.5860, -1.9820  # Walsall town centre
    where = {
        "grade": 1,
        "category": "concern_for_safety",
        "location": {"lat": lat, "lon": lon, "address": f"Park Street, Walsall ({tag})"},
        "units": [],
    }
    return [
        _incident(start, timedelta(0), f"INC-{tag}", "created", **where),
        # Three minutes on, the controller adds a note: still nobody assigned.
        _incident(start, timedelta(minutes=3), f"INC-{tag}", "updated", **where),
    ]


def _robbery_getaway(start: datetime, tag: str) -> list[ScenarioEvent]:
    plate = f"RB{tag[-2:]} GET"
    camera, lat, lon = CAMERAS_ACROSS_BIRMINGHAM[3]
    return [
        _incident(
            start,
            timedelta(0),
            f"INC-{tag}",
            "created",
            grade=1,
            category="robbery",
            location={"lat": 52.4836, "lon": -1.8930, "address": f"Corporation Street ({tag})"},
            call_ids=[f"CALL-{tag}"],
            vehicles=[{"vrm": plate, "role": "suspect"}],
            units=[f"OFF-{tag}"],
        ),
        ScenarioEvent(
            timedelta(minutes=10),
            EventKind.ANPR,
            camera,
            {
                "read_id": f"R-{tag}",
                "vrm": plate,
                "camera_id": camera,
                "read_at": (start + timedelta(minutes=10)).isoformat(),
                "lat": lat,
                "lon": lon,
                "confidence": 0.95,
                "direction": "E",
            },
        ),
    ]


def _firearms_at_address(start: datetime, tag: str) -> list[ScenarioEvent]:
    address = f"7 Marsh Lane, Erdington ({tag})"
    where = {
        "grade": 1,
        "category": "concern_for_safety",
        "location": {"lat": 52.5270, "lon": -1.8310, "address": address},
        "call_ids": [f"CALL-{tag}"],
        "units": [f"OFF-{tag}"],
    }
    return [
        _reference(f"AM-{tag}", "address_marker", {"address": address, "marker": "firearms"}),
        _incident(start, timedelta(0), f"INC-{tag}", "created", **where),
        # Two minutes on, still nobody has answered the critical alert.
        _incident(start, timedelta(minutes=2), f"INC-{tag}", "updated", **where),
    ]


def _assault_near_school(start: datetime, tag: str) -> list[ScenarioEvent]:
    lat, lon = 52.4782, -1.8135  # about 60 m from Bordesley Green East Nursery School
    return [
        _call(
            start,
            timedelta(0),
            f"CALL-{tag}",
            category="assault",
            grade=2,
            location={"lat": lat, "lon": lon, "address": f"Bordesley Green East ({tag})"},
            description="Two men fighting at the school gates",
        )
    ]


def _burglary(start: datetime, tag: str) -> list[ScenarioEvent]:
    return [
        _call(
            start,
            timedelta(0),
            f"CALL-{tag}",
            category="burglary",
            grade=2,
            location={"lat": 52.4130, "lon": -1.7780, "address": f"22 Blossomfield Road ({tag})"},
            description="Came home to find the back door forced",
        )
    ]


def _missing_person_seen(start: datetime, tag: str) -> list[ScenarioEvent]:
    person = f"P-MISPER-{tag}"
    return [
        _reference(
            f"PM-{tag}",
            "person_marker",
            {"person_id": person, "marker": "missing_person", "note": "Missing since Monday"},
        ),
        _call(
            start,
            timedelta(0),
            f"CALL-{tag}",
            category="concern_for_safety",
            grade=2,
            location={"lat": 52.5862, "lon": -2.1286, "address": f"Queen Square ({tag})"},
            caller={"person_id": person},
            description="Caller is confused and does not know where she is",
        ),
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
            # Domestic abuse counts from the second call: one alert on the second, updated (a
            # new version, same id) on the third.
            (ExpectedAlerts("repeat_calls", 1, about=("-1", "-2")),),
        ),
        Scenario(
            "club-fight",
            "Five calls within ten minutes about a fight outside a club on Broad Street.",
            _club_fight,
            # One alert on the fourth call, updated on the fifth.
            (ExpectedAlerts("emerging_incident", 1),),
        ),
        Scenario(
            "unassigned-grade-1",
            "A grade 1 incident in Walsall that nobody is free to take.",
            _unassigned_grade_1,
            # Not assigned within 2 minutes (the 15-minute attendance promise is later).
            (ExpectedAlerts("response_promise", 1),),
            starts_ago=timedelta(minutes=3),
        ),
        Scenario(
            "robbery-getaway",
            "A robbery in the city centre with a suspect car; ten minutes later a camera on the "
            "A45 reads its plate.",
            _robbery_getaway,
            (ExpectedAlerts("vehicle_linked_to_incident", 1),),
        ),
        Scenario(
            "firearms-at-address",
            "A grade 1 job at an address with a firearms marker; nobody acknowledges the alert.",
            _firearms_at_address,
            # Critical, so it escalates when nobody answers within ack_within_s.
            (ExpectedAlerts("officer_safety", 1), ExpectedAlerts("unacknowledged_critical", 1)),
        ),
        Scenario(
            "assault-near-school",
            "An assault reported at the gates of a nursery school in Bordesley Green.",
            _assault_near_school,
            (ExpectedAlerts("vulnerable_place", 1),),
        ),
        Scenario(
            "burglary",
            "A house burglary in Solihull: the streets around it become a patrol priority.",
            _burglary,
            (ExpectedAlerts("near_repeat_burglary", 1),),
        ),
        Scenario(
            "missing-person-seen",
            "A woman reported missing calls 999 from Wolverhampton, confused.",
            _missing_person_seen,
            (ExpectedAlerts("missing_person", 1),),
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

    scenario = SCENARIOS[name]
    topics = Topics.with_prefix(settings.topic_prefix)
    await ensure_topics(settings.kafka_url, topics.all(), settings.topic_partitions)
    events = sorted(
        scenario.events(start - scenario.starts_ago, tag),
        key=lambda te: (te[1].kind is not EventKind.REFERENCE, te[0]),
    )
    producer = make_producer(settings.kafka_url)
    await producer.start()
    try:
        last_kind: EventKind | None = None
        for _, ev in events:
            if last_kind is not None and ev.kind is not last_kind:
                # Each topic has its own agent: let what came before (reference data, an
                # incident's vehicles) be applied before what depends on it arrives.
                await producer.flush()
                await asyncio.sleep(1.0)
            await producer.send(topics.for_kind(ev.kind), dumps(ev.value), key=ev.key.encode())
            last_kind = ev.kind
        await producer.flush()
    finally:
        await producer.stop()
    return [ev.key for _, ev in events if ev.kind is not EventKind.REFERENCE]
