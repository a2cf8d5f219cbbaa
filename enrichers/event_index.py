"""History answered from memory: the calls (or incidents) at an address, by a caller,
within 50 m in the history window, and (for emerging incidents) within R m in the
last T minutes. ``EventIndex`` indexes one kind of event, as ``EventRecord``s: the
worker keeps one for calls and one for incidents (their created events); an event of
the other kind asks an index without joining it (``EventIndex.ask``).

Pure: no I/O, no clock. ``enrichers.history.HistoryStore`` feeds it from the shared
logs in Redis (``Keys.call_log``, a stream; incidents: ``Keys.incident_log``): each
worker appends every batch of events it enriches to the log and, in the same
transaction, reads what other workers appended since it last looked, so every
worker's index holds every event of the log.
The log is the durable, shared copy (a new or restarted worker reads it back); the
index is what makes a look-up a few dictionary and ``bisect`` operations instead of
Redis commands per event.

Semantics (those of the sorted sets and geo sets this replaced), said of calls:

- one record per call id; a call seen again with the same fields (a redelivery)
  changes nothing, one with other fields (a correction) replaces it;
- a call's history counts the calls received in ``[t - window, t]`` of its own
  received time ``t``, itself included for its address and caller, excluded for
  the radius searches; calls received later than ``t`` (a replay out of order) are
  not counted;
- the most recent are listed newest first, ties by id (greatest first); the calls
  near an emerging incident oldest first, ties by id;
- distances are those of ``rtic.geodesy`` (a sphere of Redis's geo radius, as
  GEOSEARCH measures), decided by ``rtic.geodesy.within`` / ``arc_deg2``: within a
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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from rtic.geodesy import arc_deg2, arc_limit

_RAD = math.pi / 180
# Grid cells in degrees, at least twice the search radius in metres up to 70 degrees
# of latitude: fewer metres per degree than the sphere has (``rtic.geodesy.M_PER_DEG``),
# and the longitude step set at 70 degrees. A call is filed in its own cell; a search reads the cells its circle
# touches (two by two at most up to 70 degrees, more columns beyond), within its time
# window only. No wrap at 180 degrees of longitude.
_LAT_M = 110_500.0
_LON_M = 111_000.0
_GRID_LAT = 70.0
_MAX_LAT = 89.0
_ROW = 1 << 32  # a cell's key: row * _ROW + column
_NO_CELL = 1 << 62  # a key no cell has
# A grid entry's sort key: the cell's number (in order of first use) above the received
# time in ms since 2001 (41 bits: until 2070; times outside are filed at the bounds).
_MS_BASE = 978_307_200_000
_MS_BITS = 41
_MS_MAX = (1 << _MS_BITS) - 1


@dataclass(slots=True)
class EventRecord:
    """One call as the index and the log keep it."""

    id: str
    ms: int  # received time, epoch milliseconds
    address: str  # normalised address key, '' for none
    person: str  # caller's person id, '' for none
    lat: float
    lon: float
    category: str
    logged_ms: int = 0  # when the log took it (its stream id's time)
    rid: int = -1  # its row in the index (order of indexing), once indexed
    # How blocks list it ({"id", "category", "at"}), made once and shared by every block
    # that lists it: read it, never change it.
    listed: dict[str, str] | None = field(default=None, compare=False, repr=False)

    def item(self) -> dict[str, str]:
        listed = self.listed
        if listed is None:
            listed = self.listed = {
                "id": self.id,
                "category": self.category,
                "at": iso_seconds(self.ms),
            }
        return listed

    def fields(self) -> tuple[Any, ...]:
        return (self.id, self.ms, self.address, self.person, self.lat, self.lon, self.category)


_EMPTY_I = np.empty(0, dtype=np.int64)


class _Grid:
    """Calls by cell of a grid of twice ``r`` metres, for searches of radius ``r``, in
    numpy arrays sorted by (cell, received time): a batch's searches are a handful of
    vectorised operations, whatever its size."""

    def __init__(self, r: float) -> None:
        self.r = r
        self.lat_step = 2 * r / _LAT_M
        self.lon_step = 2 * r / (_LON_M * math.cos(_GRID_LAT * _RAD))
        self.dlat = r / _LAT_M
        self.r2 = arc_limit(r)  # in degrees of arc, squared
        self.key = _EMPTY_I  # sorted: cell number << _MS_BITS | ms since _MS_BASE
        self.lat = np.empty(0)
        self.lon = np.empty(0)
        self.rid = _EMPTY_I
        self.cells = _EMPTY_I  # every cell used, sorted, and its number
        self.numbers = _EMPTY_I
        self.dead = 0  # entries of dropped calls still in the arrays

    def __len__(self) -> int:
        return len(self.key)

    def _cells(self, la: np.ndarray, lo: np.ndarray) -> np.ndarray:
        return np.floor(la / self.lat_step).astype(np.int64) * _ROW + np.floor(
            lo / self.lon_step
        ).astype(np.int64)

    def _numbers(self, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(cell numbers, known) for cell keys; unknown cells have no entries."""
        if not len(self.cells):
            return np.zeros(len(cells), dtype=np.int64), np.zeros(len(cells), dtype=bool)
        pos = np.minimum(np.searchsorted(self.cells, cells), len(self.cells) - 1)
        return self.numbers[pos], self.cells[pos] == cells

    def add(self, la: np.ndarray, lo: np.ndarray, ms: np.ndarray, rids: np.ndarray) -> None:
        cells = self._cells(la, lo)
        fresh = np.unique(cells)
        fresh = fresh[~self._numbers(fresh)[1]]
        if len(fresh):
            at = np.searchsorted(self.cells, fresh)
            start = len(self.cells)
            self.cells = np.insert(self.cells, at, fresh)
            self.numbers = np.insert(
                self.numbers, at, np.arange(start, start + len(fresh), dtype=np.int64)
            )
        key = (self._numbers(cells)[0] << _MS_BITS) | np.clip(ms - _MS_BASE, 0, _MS_MAX)
        order = np.argsort(key, kind="stable")
        key = key[order]
        at = np.searchsorted(self.key, key, side="right")
        self.key = np.insert(self.key, at, key)
        self.lat = np.insert(self.lat, at, la[order])
        self.lon = np.insert(self.lon, at, lo[order])
        self.rid = np.insert(self.rid, at, rids[order])

    def compact(self, alive: np.ndarray) -> None:
        """Drop the entries of dropped calls once they are a quarter of the arrays."""
        if self.dead * 4 > len(self.key):
            keep = alive[self.rid]
            self.key, self.lat = self.key[keep], self.lat[keep]
            self.lon, self.rid = self.lon[keep], self.rid[keep]
            self.dead = 0

    def _probes(self, la: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """For each point, the keys of the cells its circle touches (``_NO_CELL`` pads)."""
        dlat = self.dlat
        dlon = self.r / (_LON_M * np.cos(np.minimum(np.abs(la) + dlat, _MAX_LAT) * _RAD))
        x0 = np.floor((lo - dlon) / self.lon_step).astype(np.int64)
        x1 = np.floor((lo + dlon) / self.lon_step).astype(np.int64)
        y0 = np.floor((la - dlat) / self.lat_step).astype(np.int64) * _ROW
        y1 = np.floor((la + dlat) / self.lat_step).astype(np.int64) * _ROW
        width = int((x1 - x0).max()) + 1 if len(la) else 1
        cols = x0[:, None] + np.arange(width)[None, :]
        off = cols > x1[:, None]
        return np.hstack(
            [
                np.where(off, _NO_CELL, y0[:, None] + cols),
                np.where(off | (y0 == y1)[:, None], _NO_CELL, y1[:, None] + cols),
            ]
        )

    def matches(
        self,
        la: np.ndarray,
        lo: np.ndarray,
        lo_ms: np.ndarray,
        hi_ms: np.ndarray,
        before: np.ndarray,
        own: np.ndarray,
        alive: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(query, row) of the calls within the radius of each point, received within its
        [lo_ms, hi_ms], alive, indexed before row ``before`` and other than row ``own``."""
        if not len(self.key) or not len(la):
            return _EMPTY_I, _EMPTY_I
        probes = self._probes(la, lo)
        k = probes.shape[1]
        numbers, known = self._numbers(probes.ravel())
        q = np.repeat(np.arange(len(la)), k)
        high = numbers << _MS_BITS
        left = np.searchsorted(self.key, high | np.clip(lo_ms - _MS_BASE, 0, _MS_MAX)[q])
        right = np.searchsorted(
            self.key, high | np.clip(hi_ms - _MS_BASE, 0, _MS_MAX)[q], side="right"
        )
        count = np.where(known, right - left, 0)
        total = int(count.sum())
        if not total:
            return _EMPTY_I, _EMPTY_I
        q = np.repeat(q, count)
        idx = np.repeat(left - (np.cumsum(count) - count), count) + np.arange(total)
        rid = self.rid[idx]
        near = arc_deg2(la[q], lo[q], self.lat[idx], self.lon[idx]) <= self.r2
        keep = near & alive[rid] & (rid < before[q]) & (rid != own[q])
        return q[keep], rid[keep]


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
_DATES: dict[int, str] = {}


def iso_seconds(ms: int) -> str:
    """ISO 8601 (UTC) of epoch milliseconds, to the second, as ``datetime.isoformat``
    writes it; remembered."""
    s = ms // 1000
    text = _ISO.get(s)
    if text is None:
        if len(_ISO) > 100_000:
            _ISO.clear()
            _DATES.clear()
        day, rest = divmod(s, 86_400)
        date = _DATES.get(day)
        if date is None:
            date = _DATES[day] = datetime.fromtimestamp(day * 86_400, UTC).date().isoformat()
        hours, rest = divmod(rest, 3_600)
        minutes, seconds = divmod(rest, 60)
        text = _ISO[s] = f"{date}T{hours:02d}:{minutes:02d}:{seconds:02d}+00:00"
    return text


class EventIndex:
    """Every call of the log, indexed by address, caller, 100 m cell and, while the
    emerging-incident rule is on, by cell of twice its radius."""

    def __init__(self, window_s: int, radius_m: float = 50.0, shown: int = 5) -> None:
        self.window_ms = window_s * 1000
        self.radius_m = radius_m
        self.shown = shown
        self.records: dict[str, EventRecord] = {}
        self._address: dict[str, list[tuple[int, str]]] = {}
        self._person: dict[str, list[tuple[int, str]]] = {}
        self._near = _Grid(radius_m)
        self._wide: _Grid | None = None  # for the emerging-incident radius
        self._logged: deque[tuple[int, list[str]]] = deque()
        # By row (order of indexing): the calls still indexed, and whether a row is. A
        # row is never reused; the flags (a byte per call ever indexed) start afresh
        # when the index empties.
        self._rows: dict[int, EventRecord] = {}
        self._next_row = 0
        self._alive = np.zeros(1024, dtype=bool)

    def __len__(self) -> int:
        return len(self.records)

    # ---- keeping it ----------------------------------------------------------------

    def add(self, recs: Sequence[EventRecord]) -> int:
        """Index calls (other workers' batches, the log at start); how many were new."""
        run: dict[str, EventRecord] = {}  # by id, in order
        added = 0
        for rec in recs:
            old = self.records.get(rec.id) or run.get(rec.id)
            if old is not None:
                if old.fields() == rec.fields():
                    self._relog(old, rec.logged_ms)
                    continue
                if run:  # index what came before the correction first
                    added += self._add_run(list(run.values()))
                    run = {}
                self._drop(old)
            run[rec.id] = rec
        if run:
            added += self._add_run(list(run.values()))
        return added

    def _add_run(self, run: list[EventRecord]) -> int:
        self._index(run)
        for r in run:
            if r.address:
                _sorted_add(self._address, r.address, (r.ms, r.id))
            if r.person:
                _sorted_add(self._person, r.person, (r.ms, r.id))
        return len(run)

    def _index(self, recs: Sequence[EventRecord]) -> np.ndarray:
        """Give new calls their rows and file them in the grids (not the address and
        caller lists: the caller does that, in order); their rows."""
        first = self._next_row
        self._next_row += len(recs)
        rows = np.arange(first, first + len(recs), dtype=np.int64)
        if first + len(recs) > len(self._alive):
            grown = np.zeros(max(2 * len(self._alive), first + len(recs)), dtype=bool)
            grown[: len(self._alive)] = self._alive
            self._alive = grown
        self._alive[first : first + len(recs)] = True
        for n, rec in enumerate(recs):
            rec.rid = first + n
            self.records[rec.id] = rec
            self._rows[first + n] = rec
            self._log(rec.logged_ms, rec.id)
        la, lo, ms = _arrays(recs)
        self._near.add(la, lo, ms, rows)
        if self._wide is not None:
            self._wide.add(la, lo, ms, rows)
        return rows

    def _relog(self, rec: EventRecord, logged_ms: int) -> None:
        if logged_ms > rec.logged_ms:
            rec.logged_ms = logged_ms
            self._log(logged_ms, rec.id)

    def _log(self, logged_ms: int, ident: str) -> None:
        if self._logged and self._logged[-1][0] == logged_ms:
            self._logged[-1][1].append(ident)
        else:
            self._logged.append((logged_ms, [ident]))

    def _drop(self, rec: EventRecord) -> None:
        key = (rec.ms, rec.id)
        if rec.address:
            _remove(self._address, rec.address, key)
        if rec.person:
            _remove(self._person, rec.person, key)
        self._alive[rec.rid] = False
        del self._rows[rec.rid]
        for grid in (self._near, self._wide):
            if grid is not None:
                grid.dead += 1
                grid.compact(self._alive)
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
        if not self.records and self._next_row:  # all gone: start the rows afresh
            self._next_row = 0
            self._alive[:] = False
            self._near = _Grid(self.radius_m)
            if self._wide is not None:
                self._wide = _Grid(self._wide.r)
        return dropped

    def _wide_grid(self, radius_m: float) -> _Grid:
        """The grid for emerging-incident searches of ``radius_m``, built on first use."""
        if self._wide is None or self._wide.r != radius_m:
            self._wide = _Grid(radius_m)
            live = list(self.records.values())
            if live:
                la, lo, ms = _arrays(live)
                self._wide.add(la, lo, ms, np.array([r.rid for r in live], dtype=np.int64))
        return self._wide

    # ---- asking it -----------------------------------------------------------------

    def add_and_ask(
        self, recs: Sequence[EventRecord], emerging: tuple[float, float] | None = None
    ) -> list[dict[str, Any]]:
        """Index a batch in order and answer each call's history block (without
        markers), each seeing the calls indexed before it. New calls are answered
        together (a run); a call seen before (a redelivery: answered as it stands; a
        correction: dropped and indexed again) ends a run. Blocks whose radius search
        finds nothing share one empty answer: read the blocks, never change their parts.
        """
        wide = self._wide_grid(emerging[0]) if emerging else None
        out: list[dict[str, Any]] = []
        i = 0
        while i < len(recs):
            run: list[EventRecord] = []
            ids: set[str] = set()
            while i < len(recs) and recs[i].id not in self.records and recs[i].id not in ids:
                ids.add(recs[i].id)
                run.append(recs[i])
                i += 1
            if run:
                out.extend(self._run(run, True, emerging, wide))
                continue
            rec, old = recs[i], self.records[recs[i].id]
            i += 1
            if old.fields() == rec.fields():
                self._relog(old, rec.logged_ms)
                out.extend(self._run([old], False, emerging, wide))
            else:
                self._drop(old)
                out.extend(self._run([rec], True, emerging, wide))
        return out

    def _run(
        self,
        recs: list[EventRecord],
        new: bool,
        emerging: tuple[float, float] | None,
        wide: _Grid | None,
    ) -> list[dict[str, Any]]:
        """Blocks of a run of calls: new ones (indexed here, in order) or one already indexed."""
        shown, window = self.shown, self.window_ms
        blocks: list[dict[str, Any]] = []
        address, person = self._address, self._person
        for rec in recs:
            ms, ident = rec.ms, rec.id
            block: dict[str, Any] = {}
            if rec.address:
                block["calls_at_address"] = _file_and_count(
                    address, rec.address, ms, ident, ms - window, shown, new
                )
            if rec.person:
                block["calls_by_person"] = _file_and_count(
                    person, rec.person, ms, ident, ms - window, shown, new
                )
            blocks.append(block)
        rows = self._index(recs) if new else np.array([recs[0].rid], dtype=np.int64)
        la, lo_, ms_ = _arrays(recs)
        # New calls see the rows before their own; one indexed before sees every other.
        before = rows if new else np.full(1, self._next_row, dtype=np.int64)
        radius = self.radius_m
        found = self._near.matches(la, lo_, ms_ - window, ms_, before, rows, self._alive)
        empty_near = {"radius_m": radius, "count": 0, "by_category": {}, "recent": []}
        near = self._group(found, len(recs), newest_first=True)
        for block, calls in zip(blocks, near, strict=True):
            block["nearby"] = _summary(calls, radius, shown) if calls else empty_near
        if emerging and wide is not None:
            er, minutes = emerging[0], emerging[1] / 60
            ew = round(emerging[1] * 1000)
            empty = {
                "radius_m": er,
                "window_minutes": minutes,
                "count": 0,
                "sources": 1,
                "calls": [],
            }
            close = wide.matches(la, lo_, ms_ - ew, ms_, before, rows, self._alive)
            grouped = self._group(close, len(recs), newest_first=False)
            for block, calls, rec in zip(blocks, grouped, recs, strict=True):
                block["recent_calls_nearby"] = (
                    {
                        "radius_m": er,
                        "window_minutes": minutes,
                        "count": len(calls),
                        "sources": distinct_sources([*calls, rec]),
                        "calls": [r.item() for r in calls[:EMERGING_SHOWN]],
                    }
                    if calls
                    else empty
                )
        return blocks

    def ask(self, recs: Sequence[EventRecord]) -> list[dict[str, Any]]:
        """History for events this index does not take in: another kind's (a call asking
        the incident index, an incident asking the call index) or an incident's later
        lifecycle events. Per event ``{"nearby": ...}`` (as ``add_and_ask``'s) and, when
        it has an address, ``{"at_address": {"count", "recent"}}``: the records received
        in [t - window, t] of its own time ``t``, within the radius or at the address,
        a record with the event's own id left out. Indexes nothing. Blocks whose radius
        search finds nothing share one empty answer: read them, never change them."""
        if not recs:
            return []
        window, shown, radius = self.window_ms, self.shown, self.radius_m
        la, lo_, ms_ = _arrays(recs)
        mine = [self.records.get(rec.id) for rec in recs]
        own = np.array([-1 if r is None else r.rid for r in mine], dtype=np.int64)
        everything = np.full(len(recs), self._next_row, dtype=np.int64)
        found = self._near.matches(la, lo_, ms_ - window, ms_, everything, own, self._alive)
        empty = {"radius_m": radius, "count": 0, "by_category": {}, "recent": []}
        out: list[dict[str, Any]] = []
        for rec, same_id, near in zip(
            recs, mine, self._group(found, len(recs), newest_first=True), strict=True
        ):
            block: dict[str, Any] = {"nearby": _summary(near, radius, shown) if near else empty}
            if rec.address:
                block["at_address"] = _count_between(
                    self._address, rec.address, rec.ms - window, rec.ms, same_id, shown
                )
            out.append(block)
        return out

    def _group(
        self,
        found: tuple[np.ndarray, np.ndarray],
        n: int,
        newest_first: bool,
    ) -> list[list[EventRecord]]:
        """Per query, the calls found for it, sorted by (received time, id)."""
        out: list[list[EventRecord]] = [[] for _ in range(n)]
        q, rows = found
        if len(q):
            all_rows = self._rows
            for qi, row in zip(q.tolist(), rows.tolist(), strict=True):
                out[qi].append(all_rows[row])
            for calls in out:
                if len(calls) > 1:
                    calls.sort(key=_by_time, reverse=newest_first)
        return out


EMERGING_SHOWN = 50  # at most this many nearby recent calls listed for an emerging incident


def distinct_sources(recs: Sequence[EventRecord]) -> int:
    """How many distinct callers or addresses made these calls: calls that share a
    caller (person id) or an address are one source (joined transitively); a call with
    neither is a source of its own."""
    parent = list(range(len(recs)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, rec in enumerate(recs):
        for key in (
            f"a:{rec.address}" if rec.address else "",
            f"p:{rec.person}" if rec.person else "",
        ):
            if not key:
                continue
            j = first.setdefault(key, i)
            if j != i:
                parent[root(i)] = root(j)
    return len({root(i) for i in range(len(recs))})


def _by_time(rec: EventRecord) -> tuple[int, str]:
    return rec.ms, rec.id


def _arrays(recs: Sequence[EventRecord]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.array([r.lat for r in recs], dtype=float),
        np.array([r.lon for r in recs], dtype=float),
        np.array([r.ms for r in recs], dtype=np.int64),
    )


def _summary(found: list[EventRecord], radius: float, shown: int) -> dict[str, Any]:
    """Counts by category and the newest few (``found`` is newest first)."""
    by_category: dict[str, int] = {}
    for r in found:
        by_category[r.category] = by_category.get(r.category, 0) + 1
    return {
        "radius_m": radius,
        "count": len(found),
        "by_category": by_category,
        "recent": [r.item() for r in found[:shown]],
    }


def _sorted_add(index: dict[str, list[tuple[int, str]]], key: str, entry: tuple[int, str]) -> None:
    found = index.get(key)
    if found is None:
        index[key] = [entry]
    elif entry >= found[-1]:
        found.append(entry)
    else:
        insort(found, entry)


def _file_and_count(
    index: dict[str, list[tuple[int, str]]],
    key: str,
    ms: int,
    ident: str,
    lo: int,
    shown: int,
    new: bool,
) -> dict[str, Any]:
    """File a new call under ``key`` (in time order), then count the calls there received
    in [lo, ms] and list the ids of the newest few, newest first."""
    entries = index.get(key)
    if new:
        if entries is None:
            index[key] = [(ms, ident)]
            return {"count": 1, "recent": [ident]}
        if (ms, ident) > entries[-1]:
            entries.append((ms, ident))
        else:
            insort(entries, (ms, ident))
    assert entries is not None
    j = len(entries) if entries[-1][0] <= ms else bisect_left(entries, (ms + 1,))
    i = 0 if entries[0][0] >= lo else bisect_left(entries, (lo,))
    if j == len(entries):
        recent = (
            [e[1] for e in entries[: max(i, j - shown) - j - 1 : -1]]
            if i
            else [e[1] for e in entries[-1 : -shown - 1 : -1]]
        )
    else:
        recent = [entries[k][1] for k in range(j - 1, max(i, j - shown) - 1, -1)]
    return {"count": j - i, "recent": recent}


def _count_between(
    index: dict[str, list[tuple[int, str]]],
    key: str,
    lo: int,
    hi: int,
    leave_out: EventRecord | None,
    shown: int,
) -> dict[str, Any]:
    """The records under ``key`` received in [lo, hi], ``leave_out`` excepted: how many,
    and the ids of the newest few, newest first."""
    entries = index.get(key)
    if not entries:
        return {"count": 0, "recent": []}
    i = 0 if entries[0][0] >= lo else bisect_left(entries, (lo,))
    j = len(entries) if entries[-1][0] <= hi else bisect_left(entries, (hi + 1,), i)
    if leave_out is not None:
        skip = (leave_out.ms, leave_out.id)
        pos = bisect_left(entries, skip, i, j)
        if pos < j and entries[pos] == skip:  # filed here, in the window: not counted
            newest = entries[max(i, j - shown - 1) : j]
            return {
                "count": j - i - 1,
                "recent": [e[1] for e in reversed(newest) if e != skip][:shown],
            }
    return {"count": j - i, "recent": [e[1] for e in reversed(entries[max(i, j - shown) : j])]}
