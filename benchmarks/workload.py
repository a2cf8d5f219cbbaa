"""The plate-read workload every system in the suite is given.

``make_workload`` makes, deterministically for a seed: a hotlist of distinct plates
(as ``rtic.reference.v1`` upserts), and contract-shaped plate reads
(``rtic.schemas.PlateReadV1``) from fixed cameras inside the force area, of which
about ``hit_share`` are hotlisted plates, ``misread_share`` of those read with one
usual ANPR misread (0/O, 1/I, 5/S, 8/B, 2/Z). Every other plate is checked not to
match any hotlisted plate even with misreads folded, so the expected alerts are
exactly the hits. Each hit uses its own hotlist entry while there are entries left,
so repeated hits on one entry (which the worker folds into one alert) do not occur
unless there are more hits than entries.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from rtic.plates import canonical_vrm

LETTERS = "ABCDEFGHJKLMNOPRSTUVWXYZ"
MISREAD = {"0": "O", "O": "0", "1": "I", "5": "S", "S": "5", "8": "B", "B": "8", "2": "Z"}
REASONS = ("stolen", "stolen", "stolen", "firearms", "wanted_driver", "no_insurance", "other")
# A box well inside the West Midlands force area (the shipped boundaries).
CAMERA_BOX = (52.42, 52.55, -2.05, -1.75)


@dataclass
class Workload:
    """Hotlist changes, reads, and which reads must raise an alert."""

    hotlist: list[dict[str, Any]]  # ReferenceChangeV1 upserts, kind hotlist
    reads: list[dict[str, Any]]
    hits: dict[str, str] = field(default_factory=dict)  # read id -> hotlist entry id
    misread: set[str] = field(default_factory=set)  # the hit read ids read with a misread

    def messages(self, per_message: int) -> list[tuple[bytes, bytes]]:
        """(key, value) messages: one read each, or camera batches ``{"reads": [...]}``
        of ``per_message`` reads (keyed by the first read's camera)."""
        return to_messages(self.reads, per_message)

    def hotlist_messages(self) -> list[tuple[bytes, bytes]]:
        return [(c["id"].encode(), orjson.dumps(c)) for c in self.hotlist]


def to_messages(reads: list[dict[str, Any]], per_message: int) -> list[tuple[bytes, bytes]]:
    if per_message <= 1:
        return [(r["camera_id"].encode(), orjson.dumps(r)) for r in reads]
    return [
        (reads[i]["camera_id"].encode(), orjson.dumps({"reads": reads[i : i + per_message]}))
        for i in range(0, len(reads), per_message)
    ]


def _plate(rng: random.Random) -> str:
    return (
        f"{rng.choice(LETTERS)}{rng.choice(LETTERS)}{rng.randint(10, 74):02d} "
        f"{''.join(rng.choices(LETTERS, k=3))}"
    )


def misread_of(plate: str, rng: random.Random) -> str | None:
    """The plate with one character swapped for the one ANPR confuses it with, or None
    if it has no such character."""
    spots = [i for i, c in enumerate(plate) if c in MISREAD]
    if not spots:
        return None
    chars = list(plate)
    i = rng.choice(spots)
    chars[i] = MISREAD[chars[i]]
    return "".join(chars)


def make_workload(
    reads: int,
    *,
    hotlist: int = 2000,
    hit_share: float = 0.01,
    misread_share: float = 1 / 3,
    cameras: int = 200,
    seed: int = 15,
    prefix: str = "R",
    start: datetime | None = None,
    spacing_ms: float = 1.0,
) -> Workload:
    """``reads`` reads (ids ``{prefix}-{i}``), ``read_at`` from ``start`` (default: now)
    ``spacing_ms`` apart, and a ``hotlist``-plate hotlist (ids ``HL-{seed}-{i}``)."""
    rng = random.Random(seed)
    start = start or datetime.now(UTC)
    lat0, lat1, lon0, lon1 = CAMERA_BOX
    cams = [
        (f"CAM-{c:03d}", round(rng.uniform(lat0, lat1), 6), round(rng.uniform(lon0, lon1), 6))
        for c in range(cameras)
    ]
    listed: list[str] = []
    folded: set[str] = set()
    while len(listed) < hotlist:
        plate = _plate(rng)
        key = canonical_vrm(plate)
        if key not in folded:
            folded.add(key)
            listed.append(plate)
    changes: list[dict[str, Any]] = [
        {
            "kind": "hotlist",
            "op": "upsert",
            "id": f"HL-{seed}-{i:05d}",
            "entry": {"vrm": plate, "reason": REASONS[i % len(REASONS)], "source": "bench"},
        }
        for i, plate in enumerate(listed)
    ]
    n_hits = round(reads * hit_share)
    hit_at = sorted(rng.sample(range(reads), n_hits)) if n_hits else []
    order = list(range(hotlist))
    rng.shuffle(order)
    entry_of = {at: order[k % hotlist] for k, at in enumerate(hit_at)}
    can_misread = [at for at in hit_at if misread_of(listed[entry_of[at]], rng) is not None]
    misread_at = set(rng.sample(can_misread, min(len(can_misread), round(n_hits * misread_share))))
    out: list[dict[str, Any]] = []
    work = Workload(changes, out)
    for i in range(reads):
        cam, lat, lon = cams[rng.randrange(cameras)]
        read_id = f"{prefix}-{i}"
        if i in entry_of:
            plate = listed[entry_of[i]]
            if i in misread_at:
                plate = misread_of(listed[entry_of[i]], rng) or listed[entry_of[i]]
                work.misread.add(read_id)
            work.hits[read_id] = changes[entry_of[i]]["id"]
        else:
            plate = _plate(rng)
            while canonical_vrm(plate) in folded:
                plate = _plate(rng)
        out.append(
            {
                "read_id": read_id,
                "vrm": plate,
                "camera_id": cam,
                "read_at": (start + timedelta(milliseconds=i * spacing_ms)).isoformat(),
                "lat": lat,
                "lon": lon,
                "confidence": 0.9,
            }
        )
    return work
