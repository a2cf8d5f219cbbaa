"""Demand simulator: calls, incidents, plate reads and officer pings.

Two halves, as everywhere in the engine:

- ``DemandModel`` is pure and deterministic: given a seed, a start time and
  volumes it yields contract messages in time order. Calls follow a daily and
  weekly rhythm (quiet early morning, evening peak, busier Friday and Saturday
  nights) and plate reads the commuting peaks, by thinning three Poisson
  streams. Places are sampled inside the real LSOA polygons of the force area
  with weights a deployment can set (default: the same for every LSOA, which
  follows population), never uniformly over a box. It seeds what makes rules
  fire: hotlisted plates (some read with a typical misread), a pool of repeat
  callers and a few warning markers.
- ``run_simulator`` is the Kafka edge: it paces the model on the wall clock
  and produces to the input topics.

Volumes: ``--rate`` sets a demo mix (70 % plate reads, 10 % calls, 20 %
officer pings, a camera batch of k reads counting k); ``--preset`` sets real
volumes (``west-midlands``, ``national-anpr``). Assumptions and sources:
docs/simulators.md.
"""

from __future__ import annotations

import asyncio
import csv
import heapq
import io
import itertools
import logging
import random
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import shapely

from enrichers.geo import GeoIndex
from rtic.kafka import ensure_topics, make_producer
from rtic.schemas import dumps
from rtic.settings import Settings
from rtic.topics import Topics
from simulators.progress import progress_bar

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
MISREADS = {"0": "O", "O": "0", "1": "I", "I": "1", "5": "S", "S": "5", "8": "B", "B": "8"}


# Daily rhythm by local hour (Europe/London), relative: calls for service are lowest
# in the early morning and peak in the late afternoon and evening; road traffic (ANPR
# reads) has the two commuting peaks. Illustrative shapes in line with published
# police demand and road traffic profiles; normalised so a week averages 1.
CALL_HOURLY = (0.9, 0.75, 0.6, 0.5, 0.45, 0.45, 0.55, 0.7, 0.85, 0.95, 1.0, 1.05,
               1.1, 1.1, 1.15, 1.2, 1.25, 1.3, 1.3, 1.3, 1.25, 1.2, 1.1, 1.0)  # fmt: skip
TRAFFIC_HOURLY = (0.25, 0.15, 0.1, 0.1, 0.15, 0.35, 0.8, 1.5, 1.7, 1.3, 1.1, 1.1,
                  1.15, 1.15, 1.2, 1.4, 1.7, 1.8, 1.4, 1.0, 0.8, 0.6, 0.5, 0.35)  # fmt: skip
NIGHT_OUT_BOOST = 1.4  # Friday and Saturday nights, 20:00 to 03:00, for calls
LOCAL = ZoneInfo("Europe/London")


def call_profile(at: datetime) -> float:
    """Relative call demand at a moment (weekly mean about 1)."""
    local = at.astimezone(LOCAL)
    h, dow = local.hour, local.weekday()  # Monday 0
    night_out = (dow == 4 and h >= 20) or (dow == 5 and (h >= 20 or h < 3)) or (dow == 6 and h < 3)
    return CALL_HOURLY[h] * (NIGHT_OUT_BOOST if night_out else 1.0) / _CALL_MEAN


def traffic_profile(at: datetime) -> float:
    """Relative road traffic (plate reads) at a moment (weekly mean about 1)."""
    local = at.astimezone(LOCAL)
    weekend = 0.8 if local.weekday() >= 5 else 1.0
    return TRAFFIC_HOURLY[local.hour] * weekend / _TRAFFIC_MEAN


def _weekly_mean(hourly: tuple[float, ...], factor: Any) -> float:
    total = 0.0
    for dow in range(7):
        for h in range(24):
            total += hourly[h] * factor(dow, h)
    return total / (7 * 24)


_CALL_MEAN = _weekly_mean(
    CALL_HOURLY,
    lambda dow, h: (
        NIGHT_OUT_BOOST
        if (dow == 4 and h >= 20) or (dow == 5 and (h >= 20 or h < 3)) or (dow == 6 and h < 3)
        else 1.0
    ),
)
_TRAFFIC_MEAN = _weekly_mean(TRAFFIC_HOURLY, lambda dow, h: 0.8 if dow >= 5 else 1.0)
_CALL_PEAK = max(CALL_HOURLY) * NIGHT_OUT_BOOST / _CALL_MEAN
_TRAFFIC_PEAK = max(TRAFFIC_HOURLY) / _TRAFFIC_MEAN


@dataclass(frozen=True)
class Volumes:
    """Mean rates over a week, per stream (the rhythm moves around them)."""

    calls_per_s: float
    reads_per_s: float
    pings_per_s: float
    cameras: int = 40
    officers: int = 30
    repeat_share: float = 0.25  # calls from the repeat callers' pool
    repeat_callers: int = 4

    @classmethod
    def from_rate(cls, rate: float) -> Volumes:
        """The demo mix for a total rate: 70 % plate reads, 10 % calls, 20 % officer pings."""
        return cls(calls_per_s=0.10 * rate, reads_per_s=0.70 * rate, pings_per_s=0.20 * rate)


# Volume presets. West Midlands: about 5,000 calls for service a day (999, 101 and
# online), some 10 million ANPR reads a day, about 900 officers on duty pinging every
# 30 s. National ANPR: around 80 million reads a day across the UK network.
PRESETS = {
    "west-midlands": Volumes(
        calls_per_s=0.06, reads_per_s=115.0, pings_per_s=30.0, cameras=600, officers=900
    ),
    "national-anpr": Volumes(
        calls_per_s=1.0, reads_per_s=925.0, pings_per_s=30.0, cameras=3000, officers=900
    ),
}
MEAN_BATCH_READS = 3  # camera batches hold 1 to 5 reads


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
    """An officer on duty: where they are, and the job they are on (if any)."""

    officer_id: str
    callsign: str
    place: Place
    status: str = "available"
    # Jobs taken, in time order, none overlapping: (assigned, arrived, closed, where).
    jobs: list[tuple[datetime, datetime, datetime, Place]] = field(default_factory=list)

    def busy(self, at: datetime) -> bool:
        """Whether a job taken earlier is still open at ``at``."""
        return bool(self.jobs) and at < self.jobs[-1][2]

    def job_at(self, at: datetime) -> tuple[datetime, datetime, datetime, Place] | None:
        """The job that is not closed yet at ``at`` (past jobs are dropped)."""
        while self.jobs and self.jobs[0][2] <= at:
            self.jobs.pop(0)
        return self.jobs[0] if self.jobs else None


class DemandModel:
    """Deterministic demand for one seed (pure: no I/O, no wall clock)."""

    def __init__(
        self,
        geo: GeoIndex,
        *,
        seed: int,
        start: datetime,
        rate: float | None = None,
        volumes: Volumes | None = None,
        lsoa_weights: Mapping[str, float] | None = None,
        rhythm: bool = True,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if volumes is None:
            if rate is None or rate <= 0:
                raise ValueError("rate must be positive")
            volumes = Volumes.from_rate(rate)
        self.volumes = volumes
        self.rhythm = rhythm
        self.rng = random.Random(seed)
        self.np_rng = np.random.default_rng(seed)
        self.seed = seed
        self.start = start
        self._seq = itertools.count()
        self._ids = Counter[str]()
        self.geo = geo
        self._districts = geo.levels["district"]
        self._lsoas = geo.levels["lsoa"]
        self.lsoa_weights = self._lsoa_weights(lsoa_weights)
        self.places = [self._sample_place() for _ in range(600)]
        self.cameras = [(f"CAM-{i:03d}", self._sample_place()) for i in range(volumes.cameras)]
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
            for i in range(volumes.repeat_callers)
        ]
        self.officers = [
            Officer(
                officer_id=f"OFF-{i:03d}",
                callsign=f"{self.rng.choice(['BW', 'CV', 'DY', 'SW', 'SH', 'WS', 'WV'])}-{10 + i}",
                place=self._sample_place(),
            )
            for i in range(volumes.officers)
        ]

    # ---- sampling --------------------------------------------------------------------

    def _lsoa_weights(self, weights: Mapping[str, float] | None) -> np.ndarray:
        """Where demand falls: by LSOA. Default: the same for every LSOA, and LSOAs are
        drawn to hold similar populations, so demand follows where people live. A
        deployment passes its own (for example open-data crime counts per LSOA)."""
        codes = self._lsoas.codes
        if weights is None:
            w = np.ones(len(codes))
        else:
            w = np.array([max(float(weights.get(str(c), 0.0)), 0.0) for c in codes])
            if w.sum() <= 0:
                raise ValueError("the LSOA weights give no weight to any LSOA of the force area")
        return w / w.sum()

    def _sample_place(self) -> Place:
        idx = int(self.np_rng.choice(len(self._lsoas.geoms), p=self.lsoa_weights))
        poly = self._lsoas.geoms[idx]
        minx, miny, maxx, maxy = poly.bounds
        for _ in range(200):
            lon = self.rng.uniform(minx, maxx)
            lat = self.rng.uniform(miny, maxy)
            if poly.contains(shapely.Point(lon, lat)):
                break
        else:  # a sliver of a ward: its representative point is inside by construction
            pt = poly.representative_point()
            lon, lat = pt.x, pt.y
        ward = (
            self.geo.areas([lat], [lon])[0].get("ward", {}).get("name", str(self._lsoas.names[idx]))
        )
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

    # ---- expected counts (what the anomaly tests draw from) ---------------------------

    def call_shares(self, level: str) -> dict[str, float]:
        """The share of this model's calls that falls in each area of ``level``
        (``district`` or ``ward``), as ``_call`` draws places: repeat callers at their
        addresses, half of the rest from the pool of recurring addresses, half fresh
        places by LSOA weight (an LSOA counted in the area of its representative
        point). Calls outside every area of the level are left out."""
        lsoas = self._lsoas
        points = [poly.representative_point() for poly in lsoas.geoms]
        fresh = self._area_codes(level, [p.y for p in points], [p.x for p in points])
        pool = self._area_codes(level, [p.lat for p in self.places], [p.lon for p in self.places])
        people = self.repeat_people
        repeat = self.volumes.repeat_share if people else 0.0
        mine = self._area_codes(level, [p.place.lat for p in people], [p.place.lon for p in people])
        shares: dict[str, float] = {}

        def add(code: str | None, share: float) -> None:
            if code is not None and share > 0:
                shares[code] = shares.get(code, 0.0) + share

        for code, weight in zip(fresh, self.lsoa_weights, strict=True):
            add(code, (1 - repeat) * 0.5 * float(weight))
        for code in pool:
            add(code, (1 - repeat) * 0.5 / len(self.places))
        for code in mine:
            add(code, repeat / len(people))
        return shares

    def _area_codes(self, level: str, lats: list[float], lons: list[float]) -> list[str | None]:
        if not lats:
            return []
        found = self.geo.areas(lats, lons)
        return [(a.get(level) or {}).get("code") for a in found]

    def call_rates(self, level: str, start: datetime, hours: int) -> tuple[list[str], np.ndarray]:
        """Expected calls per area of ``level`` in each of ``hours`` hours from ``start``
        (``rates[t, a]``): the volume, the rhythm and ``call_shares``. The calls the
        model yields are a thinned Poisson process, so an hour's count in an area is
        Poisson with this mean."""
        shares = self.call_shares(level)
        codes = sorted(shares)
        share = np.array([shares[c] for c in codes])
        per_hour = np.array(
            [
                self.volumes.calls_per_s
                * 3600
                * (call_profile(start + timedelta(hours=t, minutes=30)) if self.rhythm else 1.0)
                for t in range(hours)
            ]
        )
        return codes, np.outer(per_hour, share)

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
        """Reference data, then demand in time order, for ever (the caller stops it).

        Three Poisson streams (calls, camera batches, officer pings) whose rates follow
        the daily and weekly rhythm (by thinning), merged in time order with the
        incident lifecycle events they schedule.
        """
        yield from self.reference_data()
        v = self.volumes
        streams = [
            ("call", v.calls_per_s, call_profile, _CALL_PEAK),
            ("anpr", v.reads_per_s / MEAN_BATCH_READS, traffic_profile, _TRAFFIC_PEAK),
            ("officer_location", v.pings_per_s, None, 1.0),
        ]
        pending: list[SimEvent] = []  # scheduled: incident lifecycle events
        upcoming: list[tuple[float, int]] = []
        for i, (_, rate, _, peak) in enumerate(streams):
            if rate > 0:
                heapq.heappush(
                    upcoming, (self.rng.expovariate(rate * (peak if self.rhythm else 1.0)), i)
                )
        while upcoming:
            t, i = heapq.heappop(upcoming)
            kind, rate, profile, peak = streams[i]
            top = peak if self.rhythm else 1.0
            heapq.heappush(upcoming, (t + self.rng.expovariate(rate * top), i))
            at = self.start + timedelta(seconds=t)
            while pending and pending[0].at <= at:
                yield heapq.heappop(pending)
            if self.rhythm and profile is not None and self.rng.random() * top > profile(at):
                continue  # thinned: a quieter moment
            if kind == "call":
                call, *later = self._call(at)
                for ev in later:
                    heapq.heappush(pending, ev)
                yield call
            elif kind == "anpr":
                yield self._camera_batch(at)
            else:
                yield self._officer_ping(at)

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
        if self.repeat_people and r.random() < self.volumes.repeat_share:
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

    def _inside(self, place: Place) -> bool:
        return bool(
            len(self._districts.tree.query(shapely.Point(place.lon, place.lat), predicate="within"))
        )

    def _nearest_free_officer(self, at: datetime, lat: float, lon: float) -> Officer | None:
        free = [o for o in self.officers if not o.busy(at)]
        if not free:
            return None
        return min(free, key=lambda o: (o.place.lat - lat) ** 2 + ((o.place.lon - lon) * 0.61) ** 2)

    def _incident(self, at: datetime, call: dict[str, Any], grade: int) -> list[SimEvent]:
        """An incident's lifecycle: the nearest free officer takes it, travels, attends and
        becomes free again when it closes. If nobody is free it is never assigned."""
        r = self.rng
        inc_id = self._id("INC")
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
        loc = call["location"]
        officer = self._nearest_free_officer(assigned, loc["lat"], loc["lon"])
        if officer is None:
            steps: list[tuple[str, datetime, list[str]]] = [("created", created, [])]
        else:
            scene = Place(loc["lat"], loc["lon"], loc.get("address") or "", "")
            officer.jobs.append((assigned, arrived, closed, scene))
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
        job = officer.job_at(at)  # a closed job is dropped: free again, from where it was
        if job is not None and at >= job[1]:
            place = officer.place = job[3]  # at the scene
        elif job is not None and at >= job[0]:
            # On the way: half way to the scene, if that is still inside the force area.
            step = Place(
                round(place.lat + (job[3].lat - place.lat) * 0.5, 6),
                round(place.lon + (job[3].lon - place.lon) * 0.5, 6),
                place.address,
                place.ward,
            )
            if self._inside(step):
                place = officer.place = step
        else:
            # Patrolling: a short walk or drive (about 0-300 m), never out of the force area.
            moved = Place(
                round(place.lat + self.rng.uniform(-0.002, 0.002), 6),
                round(place.lon + self.rng.uniform(-0.003, 0.003), 6),
                place.address,
                place.ward,
            )
            if len(
                self._districts.tree.query(shapely.Point(moved.lon, moved.lat), predicate="within")
            ):
                place = officer.place = moved
        officer.status = "committed" if job is not None and at >= job[0] else "available"
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


def lsoa_weights_from_csv(text: str) -> dict[str, float]:
    """LSOA weights from a CSV: a police open-data crime file (crimes counted per
    ``LSOA code``), or two columns ``lsoa`` (or ``LSOA11CD``) and ``weight``."""
    reader = csv.DictReader(io.StringIO(text))
    cols = set(reader.fieldnames or [])
    weights: dict[str, float] = {}
    if "LSOA code" in cols:
        for row in reader:
            code = (row.get("LSOA code") or "").strip()
            if code:
                weights[code] = weights.get(code, 0.0) + 1.0
        return weights
    key = "lsoa" if "lsoa" in cols else "LSOA11CD" if "LSOA11CD" in cols else None
    if key is None or "weight" not in cols:
        raise ValueError(
            "an LSOA weights CSV needs 'LSOA code' (police data) or 'lsoa' and 'weight'"
        )
    for row in reader:
        try:
            weights[(row[key] or "").strip()] = float(row["weight"])
        except (TypeError, ValueError):
            continue
    return weights


async def run_simulator(
    settings: Settings,
    *,
    rate: float,
    seed: int,
    duration: float | None,
    count: int | None,
    preset: str | None = None,
    lsoa_weights: Mapping[str, float] | None = None,
) -> int:
    """Produce the model's demand on the wall clock until ``duration`` or ``count`` (or Ctrl-C)."""
    topics = Topics.with_prefix(settings.topic_prefix)
    await ensure_topics(settings.kafka_url, topics.all(), settings.topic_partitions)
    geo = GeoIndex.load(settings.data_dir)
    start = datetime.now(UTC)
    volumes = PRESETS[preset] if preset else Volumes.from_rate(rate)
    model = DemandModel(geo, seed=seed, start=start, volumes=volumes, lsoa_weights=lsoa_weights)
    producer = make_producer(settings.kafka_url)
    await producer.start()
    sent = Counter[str]()
    t0 = time.monotonic()
    last_report = t0
    produced = 0
    try:
        with progress_bar("simulate", total=count) as bar:
            for ev in model.events():
                due = (ev.at - start).total_seconds()
                wait = due - (time.monotonic() - t0)
                if wait > 0:
                    await asyncio.sleep(wait)
                await producer.send(topics.for_kind(ev.kind), dumps(ev.value), key=ev.key.encode())
                sent[ev.kind] += ev.weight
                if ev.kind != "reference":
                    produced += ev.weight
                    bar.advance(ev.weight)
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
