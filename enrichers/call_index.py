"""Call history answered from memory: calls at an address, by a caller, within 50 m
in the history window, and (for emerging incidents) within R m in the last T minutes.

Pure: no I/O, no clock. ``enrichers.history.HistoryStore`` feeds it from the shared
call log in Redis (``Keys.call_log``, a stream): each worker appends every batch of
calls it enriches to the log and, in the same transaction, reads what other workers
appended since its last batch, so every worker's index holds every call of the log.
The log is the durable, shared copy (a new or restarted worker reads it back); the
index is what makes a look-up a few dictionary and ``bisect`` operations instead of
Redis commands per call.

Semantics (those of the sorted sets and geo sets this replaced):

- one record per call id; a call seen again with the same fields (a redelivery)
  changes nothing, one with other fields (a correction) replaces it;
- a call's history counts the calls received in ``[t - window, t]`` of its own
  received time ``t``, itself included for its address and caller, excluded for
  the radius searches; calls received later than ``t`` (a replay out of order) are
  not counted;
- the most recent are listed newest first, ties by id (greatest first); the calls
  near an emerging incident oldest first, ties by id;
- distances are on a sphere of Redis's geo radius (6,372,797.56 m, as GEOSEARCH
  measures), computed equirectangularly about the pair's mean latitude: within a
  micrometre of the haversine at these distances.

Records are kept as long as the log keeps them (``forget_logged_before``), by the
time they were logged, not their received time, so a replay of old calls still has
its history.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

EARTH_M = 6_372_797.560856  # Redis's geo earth radius
_RAD = math.pi / 180
_M_PER_DEG = EARTH_M * _RAD
# Grid cells in degrees, at least twice the search radius in metres up to 70 degrees
# of latitude: fewer metres per degree than the sphere has, and the longitude step set
# at 70 degrees. A call is filed in its own cell; a search reads the cells its circle
# touches (two by two at most, up to 70 degrees; more columns beyond). No wrap at 180
# degrees of longitude.
_LAT_M = 110_500.0
_LON_M = 111_000.0
_GRID_LAT = 70.0
_MAX_LAT = 89.0
_ROW = 1 << 32  # a cell's key: row * _ROW + column
_NO_CELL = 1 << 62  # a key no cell has


@dataclass(slots=True)
class CallRecord:
    """One call as the index and the log keep it."""

    id: str
    ms: int  # received time, epoch milliseconds
    address: str  # normalised address key, '' for none
    person: str  # caller's person id, '' for none
    lat: float
    lon: float
    category: str
    logged_ms: int = 0  # when the log took it (its stream id's time)

    def fields(self) -> tuple[Any, ...]:
        return (self.id, self.ms, self.address, self.person, self.lat, self.lon, self.category)


# A cell's entries, sorted: (received ms, id, lat, lon, category).
_Entry = tuple[int, str, float, float, str]


class _Grid:
    """Calls by cell of a grid of twice ``r`` metres, each cell's entries in time order,
    for searches of radius ``r``."""

    def __init__(self, r: float) -> None:
        self.r = r
        self.lat_step = 2 * r / _LAT_M
        self.lon_step = 2 * r / (_LON_M * math.cos(_GRID_LAT * _RAD))
        self.dlat = r / _LAT_M
        self.r2 = (r / _M_PER_DEG) ** 2  # in degrees of arc, squared
        self.cells: dict[int, list[_Entry]] = {}

    def cell(self, lat: float, lon: float) -> int:
        return math.floor(lat / self.lat_step) * _ROW + math.floor(lon / self.lon_step)

    def cells_of(self, lats: Sequence[float], lons: Sequence[float]) -> list[int]:
        """``cell`` of each point, at once."""
        la, lo = np.asarray(lats, dtype=float), np.asarray(lons, dtype=float)
        keys = np.floor(la / self.lat_step).astype(np.int64) * _ROW + np.floor(
            lo / self.lon_step
        ).astype(np.int64)
        out: list[int] = keys.tolist()
        return out

    def add(self, entry: _Entry, cell: int | None = None) -> None:
        """File an entry in its cell (``cell``, if the caller has it already)."""
        if cell is None:
            cell = self.cell(entry[2], entry[3])
        found = self.cells.get(cell)
        if found is None:
            self.cells[cell] = [entry]
        elif entry >= found[-1]:
            found.append(entry)
        else:
            insort(found, entry)

    def remove(self, entry: _Entry) -> None:
        _remove(self.cells, self.cell(entry[2], entry[3]), entry[:2])

    def probes(self, lats: Sequence[float], lons: Sequence[float]) -> list[list[int]]:
        """For each point, the keys of the cells its search reads (``_NO_CELL`` pads)."""
        la, lo = np.asarray(lats, dtype=float), np.asarray(lons, dtype=float)
        dlat = self.dlat
        dlon = self.r / (_LON_M * np.cos(np.minimum(np.abs(la) + dlat, _MAX_LAT) * _RAD))
        x0 = np.floor((lo - dlon) / self.lon_step).astype(np.int64)
        x1 = np.floor((lo + dlon) / self.lon_step).astype(np.int64)
        y0 = np.floor((la - dlat) / self.lat_step).astype(np.int64) * _ROW
        y1 = np.floor((la + dlat) / self.lat_step).astype(np.int64) * _ROW
        if len(la) and int((x1 - x0).max()) > 1:  # near a pole: more columns
            return [self._cover(a, b) for a, b in zip(la.tolist(), lo.tolist(), strict=True)]
        one_col, one_row = x0 == x1, y0 == y1
        keys = np.stack(
            [
                y0 + x0,
                np.where(one_col, _NO_CELL, y0 + x1),
                np.where(one_row, _NO_CELL, y1 + x0),
                np.where(one_col | one_row, _NO_CELL, y1 + x1),
            ],
            axis=1,
        )
        out: list[list[int]] = keys.tolist()
        return out

    def _cover(self, lat: float, lon: float) -> list[int]:
        dlat = self.dlat
        dlon = self.r / (_LON_M * math.cos(min(abs(lat) + dlat, _MAX_LAT) * _RAD))
        return [
            cy * _ROW + cx
            for cy in sorted(
                {math.floor((lat - dlat) / self.lat_step), math.floor((lat + dlat) / self.lat_step)}
            )
            for cx in range(
                math.floor((lon - dlon) / self.lon_step),
                math.floor((lon + dlon) / self.lon_step) + 1,
            )
        ]

    def search(
        self, probe: list[int], lat: float, lon: float, lo: int, hi: int, own: str
    ) -> list[_Entry]:
        """Entries within the radius of (lat, lon) in the cells ``probe`` (its ``probes``),
        received in ``[lo, hi]`` ms, other than ``own``."""
        out: list[_Entry] = []
        get = self.cells.get
        for key in probe:
            entries = get(key)
            if entries:
                i = bisect_left(entries, (lo,)) if entries[0][0] < lo else 0
                j = len(entries) if entries[-1][0] <= hi else bisect_left(entries, (hi + 1,))
                if i < j:
                    self._within(entries, i, j, lat, lon, own, out)
        return out

    def around(self, lat: float, lon: float, lo: int, hi: int, own: str) -> list[_Entry]:
        """Entries within the radius, received in ``[lo, hi]`` ms, other than ``own``."""
        out: list[_Entry] = []
        cells, dlat, lat_step, lon_step = self.cells, self.dlat, self.lat_step, self.lon_step
        dlon = self.r / (_LON_M * math.cos(min(abs(lat) + dlat, _MAX_LAT) * _RAD))
        x0 = math.floor((lon - dlon) / lon_step)
        x1 = math.floor((lon + dlon) / lon_step)
        y0 = math.floor((lat - dlat) / lat_step)
        y1 = math.floor((lat + dlat) / lat_step)
        rows = (y0,) if y0 == y1 else (y0, y1)
        for cy in rows:
            row = cy * _ROW
            for cx in range(x0, x1 + 1):
                entries = cells.get(row + cx)
                if not entries:
                    continue
                i = bisect_left(entries, (lo,)) if entries[0][0] < lo else 0
                j = len(entries) if entries[-1][0] <= hi else bisect_left(entries, (hi + 1,))
                if i < j:
                    self._within(entries, i, j, lat, lon, own, out)
        return out

    def _within(
        self,
        entries: list[_Entry],
        i: int,
        j: int,
        lat: float,
        lon: float,
        own: str,
        out: list[_Entry],
    ) -> None:
        rad = lat * _RAD
        coslat = math.cos(rad)
        # cos of the pair's mean latitude from the query's: cos(a + d/2) ~ cos a - sin a d/2,
        # within 1e-9 of it for d under a degree.
        half_sin = math.sin(rad) * _RAD / 2
        r2 = self.r2
        for k in range(i, j):
            e = entries[k]
            dy = e[2] - lat
            dx = (e[3] - lon) * (coslat - half_sin * dy)
            if dx * dx + dy * dy <= r2 and e[1] != own:
                out.append(e)


def within(lat: float, lon: float, other_lat: float, other_lon: float, r_m: float) -> bool:
    """Whether a point is within ``r_m`` metres of (lat, lon), exactly as searches decide."""
    rad = lat * _RAD
    dy = other_lat - lat
    dx = (other_lon - lon) * (math.cos(rad) - math.sin(rad) * _RAD / 2 * dy)
    return dx * dx + dy * dy <= (r_m / _M_PER_DEG) ** 2


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance on Redis's geo sphere (what GEOSEARCH measures)."""
    u = math.sin((lat2 - lat1) * _RAD / 2)
    v = math.sin((lon2 - lon1) * _RAD / 2)
    a = u * u + math.cos(lat1 * _RAD) * math.cos(lat2 * _RAD) * v * v
    return 2 * EARTH_M * math.asin(math.sqrt(a))


def _remove(index: dict[Any, list[Any]], key: Any, prefix: tuple[int, str]) -> None:
    """Remove the entry starting with ``prefix`` (time, id) from ``index[key]``."""
    entries = index.get(key)
    if not entries:
        return
    i = bisect_left(entries, prefix)
    if i < len(entries) and entries[i][:2] == prefix:
        del entries[i]
    if not entries:
        del index[key]


_ISO: dict[int, str] = {}


def iso_seconds(ms: int) -> str:
    """ISO 8601 (UTC) of epoch milliseconds, to the second; remembered."""
    s = ms // 1000
    text = _ISO.get(s)
    if text is None:
        if len(_ISO) > 100_000:
            _ISO.clear()
        text = datetime.fromtimestamp(s, UTC).isoformat()
        _ISO[s] = text
    return text


class CallIndex:
    """Every call of the log, indexed by address, caller, 100 m cell and, while the
    emerging-incident rule is on, by cell of twice its radius."""

    def __init__(self, window_s: int, radius_m: float = 50.0, shown: int = 5) -> None:
        self.window_ms = window_s * 1000
        self.radius_m = radius_m
        self.shown = shown
        self.records: dict[str, CallRecord] = {}
        self._address: dict[str, list[tuple[int, str]]] = {}
        self._person: dict[str, list[tuple[int, str]]] = {}
        self._near = _Grid(radius_m)
        self._wide: _Grid | None = None  # for the emerging-incident radius
        self._logged: deque[tuple[int, list[str]]] = deque()

    def __len__(self) -> int:
        return len(self.records)

    # ---- keeping it ----------------------------------------------------------------

    def add(self, rec: CallRecord) -> bool:
        """Index a call; False if it was already there as it is (a redelivery)."""
        old = self.records.get(rec.id)
        if old is not None:
            if old.fields() == rec.fields():
                self._relog(old, rec.logged_ms)
                return False
            self._drop(old)
        self.records[rec.id] = rec
        key = (rec.ms, rec.id)
        if rec.address:
            _sorted_add(self._address, rec.address, key)
        if rec.person:
            _sorted_add(self._person, rec.person, key)
        entry = (rec.ms, rec.id, rec.lat, rec.lon, rec.category)
        self._near.add(entry)
        if self._wide is not None:
            self._wide.add(entry)
        self._log(rec.logged_ms, rec.id)
        return True

    def _relog(self, rec: CallRecord, logged_ms: int) -> None:
        if logged_ms > rec.logged_ms:
            rec.logged_ms = logged_ms
            self._log(logged_ms, rec.id)

    def _log(self, logged_ms: int, ident: str) -> None:
        if self._logged and self._logged[-1][0] == logged_ms:
            self._logged[-1][1].append(ident)
        else:
            self._logged.append((logged_ms, [ident]))

    def _drop(self, rec: CallRecord) -> None:
        key = (rec.ms, rec.id)
        if rec.address:
            _remove(self._address, rec.address, key)
        if rec.person:
            _remove(self._person, rec.person, key)
        entry = (rec.ms, rec.id, rec.lat, rec.lon, rec.category)
        self._near.remove(entry)
        if self._wide is not None:
            self._wide.remove(entry)
        del self.records[rec.id]

    def forget_logged_before(self, ms: int) -> int:
        """Drop the calls the log took before ``ms`` (the log's own trimming); how many."""
        dropped = 0
        while self._logged and self._logged[0][0] < ms:
            logged_ms, ids = self._logged.popleft()
            for ident in ids:
                rec = self.records.get(ident)
                if rec is not None and rec.logged_ms == logged_ms:
                    self._drop(rec)
                    dropped += 1
        return dropped

    def _wide_grid(self, radius_m: float) -> _Grid:
        """The grid for emerging-incident searches of ``radius_m``, built on first use."""
        if self._wide is None or self._wide.r != radius_m:
            self._wide = _Grid(radius_m)
            for rec in self.records.values():
                self._wide.add((rec.ms, rec.id, rec.lat, rec.lon, rec.category))
        return self._wide

    # ---- asking it -----------------------------------------------------------------

    def history(
        self, rec: CallRecord, emerging: tuple[float, float] | None = None
    ) -> dict[str, Any]:
        """The history block of an indexed call (without markers)."""
        ms, lo, shown = rec.ms, rec.ms - self.window_ms, self.shown
        block: dict[str, Any] = {}
        if rec.address:
            block["calls_at_address"] = _count_recent(self._address[rec.address], lo, ms, shown)
        if rec.person:
            block["calls_by_person"] = _count_recent(self._person[rec.person], lo, ms, shown)
        found = self._near.around(rec.lat, rec.lon, lo, ms, rec.id)
        block["nearby"] = _summary(found, self.radius_m, shown)
        if emerging:
            radius, window_s = emerging
            grid = self._wide_grid(radius)
            close = grid.around(rec.lat, rec.lon, ms - round(window_s * 1000), ms, rec.id)
            if len(close) > 1:
                close.sort()
            block["recent_calls_nearby"] = {
                "radius_m": radius,
                "window_minutes": window_s / 60,
                "count": len(close),
                "calls": [
                    {"id": e[1], "category": e[4], "at": iso_seconds(e[0])}
                    for e in close[:EMERGING_SHOWN]
                ],
            }
        return block

    def add_and_ask(
        self, recs: Sequence[CallRecord], emerging: tuple[float, float] | None = None
    ) -> list[dict[str, Any]]:
        """Index a batch in order, each call's block seeing the calls before it.

        The same as ``add`` then ``history`` for each call (a test checks it), written
        out for speed: a block whose radius search finds nothing shares one empty answer
        (read the blocks, never change their parts)."""
        out = []
        records, address, person = self.records, self._address, self._person
        near, window, shown, radius = self._near, self.window_ms, self.shown, self.radius_m
        cells = near.cells
        empty_near = {"radius_m": radius, "count": 0, "by_category": {}, "recent": []}
        wide = self._wide_grid(emerging[0]) if emerging else self._wide
        if emerging:
            er, ew_ms, minutes = emerging[0], round(emerging[1] * 1000), emerging[1] / 60
            empty_close = {"radius_m": er, "window_minutes": minutes, "count": 0, "calls": []}
        lats, lons = [r.lat for r in recs], [r.lon for r in recs]
        near_probes, near_cells = near.probes(lats, lons), near.cells_of(lats, lons)
        wide_probes = wide.probes(lats, lons) if wide is not None and emerging else None
        wide_cells = wide.cells_of(lats, lons) if wide is not None else None
        for n, rec in enumerate(recs):
            ident, ms = rec.id, rec.ms
            lo = ms - window
            block: dict[str, Any] = {}
            if ident in records:  # seen before: a redelivery or a correction
                old = records[ident]
                if old.fields() == rec.fields():
                    self._relog(old, rec.logged_ms)
                    rec = old
                else:
                    self.add(rec)
                if rec.address:
                    block["calls_at_address"] = _count_recent(address[rec.address], lo, ms, shown)
                if rec.person:
                    block["calls_by_person"] = _count_recent(person[rec.person], lo, ms, shown)
            else:
                records[ident] = rec
                key = (ms, ident)
                a = rec.address
                if a:
                    entries = address.get(a)
                    if entries is None:
                        address[a] = [key]
                        block["calls_at_address"] = {"count": 1, "recent": [ident]}
                    else:
                        if key > entries[-1]:
                            entries.append(key)
                        else:
                            insort(entries, key)
                        block["calls_at_address"] = _count_recent(entries, lo, ms, shown)
                p = rec.person
                if p:
                    entries = person.get(p)
                    if entries is None:
                        person[p] = [key]
                        block["calls_by_person"] = {"count": 1, "recent": [ident]}
                    else:
                        if key > entries[-1]:
                            entries.append(key)
                        else:
                            insort(entries, key)
                        block["calls_by_person"] = _count_recent(entries, lo, ms, shown)
                entry = (ms, ident, rec.lat, rec.lon, rec.category)
                in_cell = cells.get(near_cells[n])
                if in_cell is None:
                    cells[near_cells[n]] = [entry]
                elif entry > in_cell[-1]:
                    in_cell.append(entry)
                else:
                    insort(in_cell, entry)
                if wide_cells is not None:
                    wide.add(entry, wide_cells[n])  # type: ignore[union-attr]
                self._log(rec.logged_ms, ident)
            found = near.search(near_probes[n], rec.lat, rec.lon, lo, ms, ident)
            block["nearby"] = _summary(found, radius, shown) if found else empty_near
            if wide is not None and wide_probes is not None:
                close = wide.search(wide_probes[n], rec.lat, rec.lon, ms - ew_ms, ms, ident)
                if close:
                    close.sort()
                    block["recent_calls_nearby"] = {
                        "radius_m": er,
                        "window_minutes": minutes,
                        "count": len(close),
                        "calls": [
                            {"id": e[1], "category": e[4], "at": iso_seconds(e[0])}
                            for e in close[:EMERGING_SHOWN]
                        ],
                    }
                else:
                    block["recent_calls_nearby"] = empty_close
            out.append(block)
        return out


def _summary(found: list[_Entry], radius: float, shown: int) -> dict[str, Any]:
    """Counts by category and the newest few of the calls a radius search found."""
    by_category: dict[str, int] = {}
    for e in found:
        by_category[e[4]] = by_category.get(e[4], 0) + 1
    if len(found) > 1:
        found.sort(reverse=True)
    return {
        "radius_m": radius,
        "count": len(found),
        "by_category": by_category,
        "recent": [{"id": e[1], "category": e[4], "at": iso_seconds(e[0])} for e in found[:shown]],
    }


EMERGING_SHOWN = 50  # at most this many nearby recent calls listed for an emerging incident


def _sorted_add(index: dict[str, list[tuple[int, str]]], key: str, entry: tuple[int, str]) -> None:
    found = index.get(key)
    if found is None:
        index[key] = [entry]
    elif entry >= found[-1]:
        found.append(entry)
    else:
        insort(found, entry)


def _count_recent(entries: list[tuple[int, str]], lo: int, hi: int, shown: int) -> dict[str, Any]:
    """Count of entries received in [lo, hi] and the ids of the newest few, newest first."""
    j = len(entries) if entries[-1][0] <= hi else bisect_left(entries, (hi + 1,))
    i = 0 if entries[0][0] >= lo else bisect_left(entries, (lo,))
    return {
        "count": j - i,
        "recent": [entries[k][1] for k in range(j - 1, max(i, j - shown) - 1, -1)],
    }
