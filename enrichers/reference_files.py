"""Reference data files to reference changes: hotlists, markers, geofences, places and
snoozes.

Pure: text in, ``(changes, rejected rows)`` out; ``rtic reference load`` (in
``cli/main.py``) reads the file and sends the changes to ``rtic.reference.v1``,
so a loaded file and a live change take the same path into the engine.

Formats (by file name ending):

- ``.jsonl``: one reference change per line (``{"kind", "op", "id", "entry"}``),
  or one entry per line with ``--kind``.
- ``.json``: a list of the same, or a GeoJSON FeatureCollection.
- ``.geojson``: Point features become places (properties ``name``, ``kind``),
  Polygon features geofences (``name``, ``valid_from``?, ``valid_to``?).
- ``.csv``: one entry per row with a header; the kind is ``--kind`` or
  recognised from the columns (``until`` -> snooze; ``vrm`` -> hotlist;
  ``person_id`` + ``marker`` -> person marker; ``address`` + ``marker`` ->
  address marker; ``name`` + ``lat`` + ``lon`` -> place).

Every row is validated as the stream would validate it; a rejected row is
reported with its row number (1 = first data row or line) and the reason.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from rtic.errors import ContractError
from rtic.schemas import EventKind, ReferenceChangeV1, validate_event

KINDS = ("hotlist", "person_marker", "address_marker", "geofence", "place", "snooze")
_NUMERIC = {"lat", "lon", "severity_rank"}


@dataclass
class LoadReport:
    """What a file gave: the valid changes and the rows that were not."""

    changes: list[ReferenceChangeV1] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    rows: int = 0

    def summary(self) -> str:
        lines = [f"{self.rows} rows: {len(self.changes)} accepted, {len(self.rejected)} rejected"]
        lines += [f"  row {row}: {reason}" for row, reason in self.rejected]
        return "\n".join(lines)


def _guess_kind(columns: set[str]) -> str | None:
    if "until" in columns:  # before ``vrm``: a snooze may name a plate too
        return "snooze"
    if "vrm" in columns:
        return "hotlist"
    if {"person_id", "marker"} <= columns:
        return "person_marker"
    if {"address", "marker"} <= columns:
        return "address_marker"
    if {"name", "lat", "lon"} <= columns:
        return "place"
    return None


def _entry_id(kind: str, entry: dict[str, Any], stem: str, row: int) -> str:
    for key in ("id", "source_id"):
        if entry.get(key):
            return str(entry[key])
    return f"{stem}-{kind}-{row}"


def _as_change(kind: str, entry: dict[str, Any], stem: str, row: int) -> dict[str, Any]:
    entry = {k: v for k, v in entry.items() if v not in ("", None)}
    return {"kind": kind, "op": "upsert", "id": _entry_id(kind, entry, stem, row), "entry": entry}


def _feature_change(feature: dict[str, Any], stem: str, row: int) -> dict[str, Any]:
    props = dict(feature.get("properties") or {})
    geometry = feature.get("geometry") or {}
    gtype = geometry.get("type")
    if gtype == "Point":
        lon, lat = geometry["coordinates"][:2]
        return _as_change("place", {**props, "lat": lat, "lon": lon}, stem, row)
    if gtype in ("Polygon", "MultiPolygon"):
        return _as_change("geofence", {**props, "geometry": geometry}, stem, row)
    raise ContractError(f"geometry {gtype!r}: expected Point (a place) or Polygon (a geofence)")


def _csv_entry(row: dict[str | None, str | None]) -> dict[str, Any]:
    """One CSV row as an entry: names and values trimmed, numeric columns as numbers."""
    entry: dict[str, Any] = {}
    for k, v in row.items():
        if k is None:
            continue  # more values than columns
        k = k.strip()
        v = (v or "").strip()
        if k in _NUMERIC and v:
            try:
                entry[k] = float(v)
            except ValueError:
                entry[k] = v  # validation will say why
        else:
            entry[k] = v
    return entry


def _csv_items(path: Path, text: str, kind: str | None) -> list[tuple[int, Any]]:
    """A CSV's rows as changes of ``kind`` (or the kind its columns tell)."""
    reader = csv.DictReader(io.StringIO(text))
    columns = {c.strip() for c in reader.fieldnames or []}
    csv_kind = kind or _guess_kind(columns)
    if csv_kind is None:
        raise ContractError(
            f"cannot tell what {path.name} holds from its columns {sorted(columns)}: give --kind"
        )
    return [
        (n, _as_change(csv_kind, _csv_entry(row), path.stem, n))
        for n, row in enumerate(reader, start=1)
    ]


def _jsonl_items(text: str, report: LoadReport) -> list[tuple[int, Any]]:
    """One JSON value per non-blank line; a line that is not JSON is rejected."""
    items: list[tuple[int, Any]] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append((n, orjson.loads(line)))
        except orjson.JSONDecodeError as exc:
            report.rejected.append((n, f"not JSON: {exc}"))
            report.rows += 1
    return items


def _json_items(path: Path, text: str, report: LoadReport) -> list[tuple[int, Any]]:
    """A JSON list of changes or entries, or a GeoJSON FeatureCollection's features."""
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ContractError(f"{path.name} is not JSON: {exc}") from exc
    if isinstance(doc, list):
        return list(enumerate(doc, start=1))
    if not (isinstance(doc, dict) and doc.get("type") == "FeatureCollection"):
        raise ContractError(f"{path.name}: expected a list of changes or a FeatureCollection")
    items: list[tuple[int, Any]] = []
    for n, feature in enumerate(doc.get("features") or [], start=1):
        try:
            items.append((n, _feature_change(feature, path.stem, n)))
        except (ContractError, KeyError, TypeError, ValueError) as exc:
            report.rejected.append((n, str(exc)))
            report.rows += 1
    return items


def _raw_items(
    path: Path, text: str, kind: str | None, report: LoadReport
) -> list[tuple[int, Any]]:
    """(row number, change as a dict or whatever the file had) by the file's format."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_items(path, text, kind)
    if suffix not in (".json", ".geojson", ".jsonl"):
        raise ContractError(f"{path.name}: unknown format (use .csv, .json, .jsonl or .geojson)")
    items = _jsonl_items(text, report) if suffix == ".jsonl" else _json_items(path, text, report)
    # Bare entries (no "entry" key) become changes of the kind given.
    return [
        (n, _as_change(kind, item, path.stem, n))
        if isinstance(item, dict) and kind is not None and "entry" not in item
        else (n, item)
        for n, item in items
    ]


def parse_reference_file(path: Path, text: str, kind: str | None = None) -> LoadReport:
    """The reference changes in a file's text, and the rows that were rejected.

    Args:
        path: the file's name tells its format (``.csv``, ``.json``, ``.geojson``, ``.jsonl``)
            and its stem names entries that have no id.
        text: the file's content.
        kind: what the rows are (one of ``KINDS``); None: from the file.

    Raises:
        ContractError: an unknown kind or format, or a file that cannot be read at all.
    """
    if kind is not None and kind not in KINDS:
        raise ContractError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    report = LoadReport()
    for n, item in _raw_items(path, text, kind, report):
        report.rows += 1
        if not isinstance(item, dict):
            report.rejected.append((n, "not a JSON object"))
            continue
        try:
            model = validate_event(EventKind.REFERENCE, item)
        except ContractError as exc:
            report.rejected.append((n, str(exc)))
            continue
        assert isinstance(model, ReferenceChangeV1)
        report.changes.append(model)
    report.rejected.sort()
    return report
