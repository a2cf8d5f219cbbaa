"""First-cut demand simulator: calls, incidents, plate reads and officer pings.

Two halves, as everywhere in the engine:

- ``DemandModel`` is pure and deterministic: given a seed, a start time and a
  rate it yields contract messages in time order. Places are sampled inside
  the real ward polygons of the force area (weighted by ward area), never
  uniformly over a box. It seeds the things that make rules fire: hotlisted
  plates (some read with a typical misread) and a pool of repeat callers and
  addresses, plus a few warning markers.
- ``run_simulator`` is the Kafka edge: it paces the model on the wall clock
  and produces to the input topics.

Rate counts events: a camera batch of k reads (1 to 5) counts k. Of the draws,
about 60 % are camera batches, 15 % calls (with incidents that follow them through their
lifecycle) and 25 % officer pings. A later issue replaces the flat rate with
a daily and weekly rhythm; the model's interface stays.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import shapely

from enrichers.geo import GeoIndex
from rtic.kafka import ensure_topics, make_producer
from rtic.schemas import dumps
from rtic.settings import Settings
from rtic.topics import Topics

log = logging.getLogger(__name__)

LETTERS = "ABCDEFGHJKLMNOPRSTUVWXYZ"
STREETS = (
    "High Street",
    "Church Road",
    "Station Road",
    "Park Road",
    "Victoria Road",
    "Green Lane",
    "Manor Road",
    "Church Lane",
    "Mill Lane",
    "Queens Road",
    "New Road",
    "Grange Road",
    "Alcester Road",
    "Soho Road",
    "Coventry Road",
    "Stratford Road",
    "Hagley Road",
    "Bristol Road",
)
FIRST = ("Sam", "Alex", "Jordan", "Priya", "Mohammed", "Chloe", "Daniel", "Aisha", "Liam", "Grace")
LAST = ("Smith", "Khan", "Jones", "Patel", "Williams", "Ali", "Brown", "Taylor", "Begum", "Evans")
CATEGORIES = (
    ("domestic_abuse", 14),
    ("burglary", 8),
    ("assault", 10),
    ("robbery", 3),
    ("asb", 16),
    ("concern_for_safety", 14),
    ("missing_person", 4),
    ("traffic", 9),
    ("suspicious_vehicle", 5),
    ("other", 17),
)
CHANNELS = (("999", 45), ("101", 35), ("online", 15), ("webchat", 5))
GRADES = ((1, 15), (2, 40), (3, 35), (4, 10))
HOTLIST_REASONS = (
    "stolen",
    "stolen",
    "stolen",
    "firearms",
    "wanted_driver",
    "no_insurance",
    "missing_person",
)
# A quarter of calls come from four repeat callers, so that at the demo rate (5 events/s)
# the repeat-calls rule fires within a few minutes. A later demand model uses real rates.
REPEAT_SHARE = 0.25
MISREADS = {"0": "O", "O": "0", "1": "I", "I": "1", "5": "S", "S": "5", "8": "B", "B": "8"}


def _weighted(rng: random.Random, table: tuple[tuple[Any, int], ...]) -> Any:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


@dataclass(order=True)
class SimEvent:
    """One message to produce: when, to which input, with which key."""

    at: datetime
    seq: int
    kind: str = field(compare=False)  # call | incident | anpr | officer_location | reference
    key: str = field(compare=False)
    value: dict[str, Any] = field(compare=False)

    @property
    def weight(self) -> int:
        """How many events it counts for against the rate (reads in a batch)."""
        return len(self.value["reads"]) if "reads" in self.value else 1


@dataclass
class Place:
    lat: float
    lon: float
    address: str
    ward: str


@dataclass
class RepeatCaller:
    """Someone who calls again and again from one address (repeat victim or location)."""

    person_id: str
    name: str
    phone: str
    place: Place

    def caller(self) -> dict[str, str]:
        return {"person_id": self.person_id, "name": self.name, "phone": self.phone}


@dataclass
class Officer:
    officer_id: str
    callsign: str
    place: Place
    status: str = "available"


class DemandModel:
    """Deterministic demand for one seed (pure: no I/O, no wall clock)."""

    def __init__(self, geo: GeoIndex, *, seed: int, start: datetime, rate: float) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rng = random.Random(seed)
        self.np_rng = np.random.default_rng(seed)
        self.seed = seed
        self.start = start
        self.rate = rate
        self._seq = itertools.count()
        self._ids = Counter[str]()
        self._wards = geo.levels["ward"]
        self._districts = geo.levels["district"]
        areas = shapely.area(self._wards.geoms)
        self._ward_weights = areas / areas.sum()
        self.places = [self._sample_place() for _ in range(600)]
        self.cameras = [(f"CAM-{i:03d}", self._sample_place()) for i in range(40)]
        self.plates = [self._plate() for _ in range(3000)]
        self.hotlist = [
            {
                "id": f"HL-{seed}-{i:03d}",
                "vrm": self._plate(),
                "reason": HOTLIST_REASONS[i % len(HOTLIST_REASONS)],
            }
            for i in range(12)
        ]
        self.repeat_people = [
            RepeatCaller(
                person_id=f"P-{seed}-R{i:02d}",
                name=f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}",
                phone=f"07700 9{self.rng.randrange(10**5):05d}",
                place=self.rng.choice(self.places),
            )
            for i in range(4)
        ]
        self.officers = [
            Officer(
                officer_id=f"OFF-{i:03d}",
                callsign=f"{self.rng.choice(['BW', 'CV', 'DY', 'SW', 'SH', 'WS', 'WV'])}-{10 + i}",
                place=self._sample_place(),
            )
            for i in range(30)
        ]

    # ---- sampling --------------------------------------------------------------------

    def _sample_place(self) -> Place:
        idx = int(self.np_rng.choice(len(self._wards.geoms), p=self._ward_weights))
        poly = self._wards.geoms[idx]
        minx, miny, maxx, maxy = poly.bounds
        for _ in range(200):
            lon = self.rng.uniform(minx, maxx)
            lat = self.rng.uniform(miny, maxy)
            if poly.contains(shapely.Point(lon, lat)):
                break
        else:  # a sliver of a ward: its representative point is inside by construction
            pt = poly.representative_point()
            lon, lat = pt.x, pt.y
        ward = str(self._wards.names[idx])
        address = f"{self.rng.randint(1, 240)} {self.rng.choice(STREETS)}, {ward}"
        return Place(round(lat, 6), round(lon, 6), address, ward)

    def _plate(self) -> str:
        r = self.rng
        return f"{r.choice(LETTERS)}{r.choice(LETTERS)}{r.randint(10, 74):02d} {''.join(r.choices(LETTERS, k=3))}"

    def _misread(self, plate: str) -> str:
        chars = list(plate)
        spots = [i for i, c in enumerate(chars) if c in MISREADS]
        if spots:
            i = self.rng.choice(spots)
            chars[i] = MISREADS[chars[i]]
        return "".join(chars)

    def _id(self, prefix: str) -> str:
        self._ids[prefix] += 1
        return f"{prefix}-{self.seed}-{self._ids[prefix]:07d}"

    def _event(self, at: datetime, kind: str, key: str, value: dict[str, Any]) -> SimEvent:
        return SimEvent(at, next(self._seq), kind, key, value)

    # ---- the stream ------------------------------------------------------------------

    def reference_data(self) -> list[SimEvent]:
        """Hotlist entries and warning markers, sent before the demand starts."""
        out = [
            self._event(
                self.start,
                "reference",
                h["id"],
                {
                    "kind": "hotlist",
                    "op": "upsert",
                    "id": h["id"],
                    "entry": {"vrm": h["vrm"], "reason": h["reason"], "source": "simulator"},
                },
            )
            for h in self.hotlist
        ]
        for i, person in enumerate(self.repeat_people[:2]):
            mid = f"PM-{self.seed}-{i}"
            out.append(
                self._event(
                    self.start,
                    "reference",
                    mid,
                    {
                        "kind": "person_marker",
                        "op": "upsert",
                        "id": mid,
                        "entry": {
                            "person_id": person.person_id,
                            "marker": "violence_to_officers",
                            "note": "simulated",
                        },
                    },
                )
            )
            aid = f"AM-{self.seed}-{i}"
            out.append(
                self._event(
                    self.start,
                    "reference",
                    aid,
                    {
                        "kind": "address_marker",
                        "op": "upsert",
                        "id": aid,
                        "entry": {
                            "address": person.place.address,
                            "marker": "weapons",
                            "note": "simulated",
                            "lat": person.place.lat,
                            "lon": person.place.lon,
                        },
                    },
                )
            )
        return out

    def events(self) -> Iterator[SimEvent]:
        """Reference data, then demand in time order, for ever (the caller stops it)."""
        yield from self.reference_data()
        pending: list[SimEvent] = []  # incident lifecycle events due later
        t = 0.0
        while True:
            drawn = self._draw(self.start + timedelta(seconds=t))
            for ev in drawn:
                heapq.heappush(pending, ev)
            while pending and pending[0].at <= self.start + timedelta(seconds=t):
                yield heapq.heappop(pending)
            weight = sum(ev.weight for ev in drawn if ev.kind != "incident") or 1
            t += self.rng.expovariate(self.rate / weight)

    def _draw(self, at: datetime) -> list[SimEvent]:
        roll = self.rng.random()
        if roll < 0.60:
            return [self._camera_batch(at)]
        if roll < 0.75:
            return self._call(at)
        return [self._officer_ping(at)]

    def _camera_batch(self, at: datetime) -> SimEvent:
        camera_id, cam = self.rng.choice(self.cameras)
        reads = []
        for _ in range(self.rng.randint(1, 5)):
            roll = self.rng.random()
            if roll < 0.02:
                plate = self.rng.choice(self.hotlist)["vrm"]
                if self.rng.random() < 0.5:
                    plate = self._misread(plate)
            else:
                plate = self.rng.choice(self.plates)
            reads.append(
                {
                    "read_id": self._id("READ"),
                    "vrm": plate,
                    "camera_id": camera_id,
                    "read_at": at.isoformat(),
                    "lat": cam.lat,
                    "lon": cam.lon,
                    "confidence": round(self.rng.uniform(0.7, 0.99), 2),
                    "direction": self.rng.choice("NESW"),
                }
            )
        return self._event(at, "anpr", camera_id, {"reads": reads})

    def _call(self, at: datetime) -> list[SimEvent]:
        r = self.rng
        if r.random() < REPEAT_SHARE:
            person = r.choice(self.repeat_people)
            place = person.place
            caller = person.caller()
            category = "domestic_abuse"
        else:
            place = r.choice(self.places) if r.random() < 0.5 else self._sample_place()
            caller = {
                "person_id": self._id("P"),
                "name": f"{r.choice(FIRST)} {r.choice(LAST)}",
                "phone": f"07700 9{r.randrange(10**5):05d}",
            }
            category = _weighted(r, CATEGORIES)
        grade = _weighted(r, GRADES)
        call_id = self._id("CALL")
        call = {
            "call_id": call_id,
            "received_at": at.isoformat(),
            "channel": _weighted(r, CHANNELS),
            "category": category,
            "grade": grade,
            "location": {"lat": place.lat, "lon": place.lon, "address": place.address},
            "caller": caller,
            "description": f"Simulated {category.replace('_', ' ')} call",
        }
        out = [self._event(at, "call", call_id, call)]
        if grade <= 2:
            out.extend(self._incident(at, call, grade))
        return out

    def _incident(self, at: datetime, call: dict[str, Any], grade: int) -> list[SimEvent]:
        r = self.rng
        inc_id = self._id("INC")
        officer = r.choice(self.officers)
        base = {
            "incident_id": inc_id,
            "grade": grade,
            "category": call["category"],
            "location": call["location"],
            "call_ids": [call["call_id"]],
        }
        if call["caller"].get("person_id"):
            base["persons"] = [{"person_id": call["caller"]["person_id"], "role": "caller"}]
        created = at + timedelta(seconds=r.uniform(5, 40))
        assigned = created + timedelta(seconds=r.uniform(20, 120 if grade == 1 else 600))
        arrived = assigned + timedelta(seconds=r.uniform(180, 900 if grade == 1 else 2400))
        closed = arrived + timedelta(seconds=r.uniform(900, 5400))
        steps = [
            ("created", created, []),
            ("assigned", assigned, [officer.officer_id]),
            ("arrived", arrived, [officer.officer_id]),
            ("closed", closed, [officer.officer_id]),
        ]
        return [
            self._event(
                when,
                "incident",
                inc_id,
                {**base, "event": name, "at": when.isoformat(), "units": units},
            )
            for name, when, units in steps
        ]

    def _officer_ping(self, at: datetime) -> SimEvent:
        officer = self.rng.choice(self.officers)
        place = officer.place
        # A short walk or drive from the last fix (about 0-300 m), never out of the force area.
        moved = Place(
            round(place.lat + self.rng.uniform(-0.002, 0.002), 6),
            round(place.lon + self.rng.uniform(-0.003, 0.003), 6),
            place.address,
            place.ward,
        )
        if len(self._districts.tree.query(shapely.Point(moved.lon, moved.lat), predicate="within")):
            place = officer.place = moved
        if self.rng.random() < 0.1:
            officer.status = "committed" if officer.status == "available" else "available"
        return self._event(
            at,
            "officer_location",
            officer.officer_id,
            {
                "officer_id": officer.officer_id,
                "callsign": officer.callsign,
                "at": at.isoformat(),
                "lat": place.lat,
                "lon": place.lon,
                "status": officer.status,
            },
        )


def topic_for(topics: Topics, kind: str) -> str:
    return {
        "call": topics.calls,
        "incident": topics.incidents,
        "anpr": topics.anpr,
        "officer_location": topics.officer_locations,
        "reference": topics.reference,
    }[kind]


async def run_simulator(
    settings: Settings, *, rate: float, seed: int, duration: float | None, count: int | None
) -> int:
    """Produce the model's demand on the wall clock until ``duration`` or ``count`` (or Ctrl-C)."""
    topics = Topics.with_prefix(settings.topic_prefix)
    await ensure_topics(settings.kafka_url, topics.all(), settings.topic_partitions)
    geo = GeoIndex.load(settings.data_dir)
    start = datetime.now(UTC)
    model = DemandModel(geo, seed=seed, start=start, rate=rate)
    producer = make_producer(settings.kafka_url)
    await producer.start()
    sent = Counter[str]()
    t0 = time.monotonic()
    last_report = t0
    produced = 0
    try:
        for ev in model.events():
            due = (ev.at - start).total_seconds()
            wait = due - (time.monotonic() - t0)
            if wait > 0:
                await asyncio.sleep(wait)
            await producer.send(topic_for(topics, ev.kind), dumps(ev.value), key=ev.key.encode())
            sent[ev.kind] += ev.weight
            produced += ev.weight if ev.kind != "reference" else 0
            now = time.monotonic()
            if now - last_report >= 10:
                log.info("simulator: %s", dict(sent))
                last_report = now
            if count is not None and produced >= count:
                break
            if duration is not None and now - t0 >= duration:
                break
        await producer.flush()
    finally:
        await producer.stop()
        log.info("simulator sent %s in %.1f s", dict(sent), time.monotonic() - t0)
    return 0
