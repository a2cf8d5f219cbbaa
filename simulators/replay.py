"""Replay recorded events to the input topics, preserving their relative timing.

Pure parts (tested without a broker):

- adapters that turn a file into ``ReplayEvent`` values, counting every row
  they could not map with the reason, and going on:
  ``contract_jsonl`` (the contract's JSON Lines, and what ``rtic record`` writes),
  ``police_crime_csv`` (the UK police open-data street-level crime CSV), and
  ``mapped_csv`` (any CSV of calls, through a column-mapping file);
- ``schedule``: when each event is due, for a speed factor.

The edge is ``run_replay`` (``rtic replay FILE``): it sends each event when it
is due, shows progress on stderr and prints a summary. ``run_record``
(``rtic record``) captures the live input topics to a file replay can play.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import yaml

from rtic.errors import ConfigError, ContractError
from rtic.schemas import EventKind, validate_event
from rtic.settings import Settings
from rtic.topics import Topics
from simulators.progress import progress_bar

KIND_FIELDS = {
    EventKind.CALL: ("call_id", "received_at"),
    EventKind.INCIDENT: ("incident_id", "at"),
    EventKind.ANPR: ("camera_id", "read_at"),
    EventKind.OFFICER_LOCATION: ("officer_id", "at"),
}
CONTRACT_TOPICS = Topics.with_prefix()  # recorded topic names, the deployment's prefix cut off

# UK police open data "Crime type" -> the contract's call categories.
POLICE_CATEGORIES = {
    "Anti-social behaviour": "asb",
    "Burglary": "burglary",
    "Robbery": "robbery",
    "Violence and sexual offences": "assault",
    "Vehicle crime": "suspicious_vehicle",
    "Public order": "asb",
    "Possession of weapons": "other",
    "Criminal damage and arson": "other",
    "Drugs": "other",
    "Shoplifting": "other",
    "Theft from the person": "robbery",
    "Bicycle theft": "other",
    "Other theft": "other",
    "Other crime": "other",
}
POLICE_COLUMNS = (
    "Crime ID",
    "Month",
    "Reported by",
    "Falls within",
    "Longitude",
    "Latitude",
    "Location",
    "LSOA code",
    "LSOA name",
    "Crime type",
    "Last outcome category",
    "Context",
)


@dataclass(frozen=True)
class ReplayEvent:
    """One message to send: its kind, key, value and event time."""

    at: datetime
    kind: EventKind
    key: str
    value: dict[str, Any]


@dataclass
class AdapterReport:
    """Rows read, events made, and rows that could not be mapped (by reason)."""

    rows: int = 0
    events: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    examples: dict[str, int] = field(default_factory=dict)  # reason -> first row number

    def reject(self, row: int, reason: str) -> None:
        self.rejected[reason] += 1
        self.examples.setdefault(reason, row)

    def summary(self) -> str:
        lines = [
            f"{self.rows} rows read, {self.events} events, {sum(self.rejected.values())} rows not mapped"
        ]
        for reason, n in self.rejected.most_common():
            lines.append(f"  {n} x {reason} (first at row {self.examples[reason]})")
        return "\n".join(lines)


def _kind_of(value: dict[str, Any]) -> EventKind | None:
    if "reads" in value or "read_id" in value:
        return EventKind.ANPR
    if "call_id" in value:
        return EventKind.CALL
    if "incident_id" in value:
        return EventKind.INCIDENT
    if "officer_id" in value:
        return EventKind.OFFICER_LOCATION
    if "kind" in value and "op" in value:
        return EventKind.REFERENCE
    return None


def _event_time(kind: EventKind, value: dict[str, Any]) -> datetime | None:
    if kind is EventKind.REFERENCE:
        return None
    if kind is EventKind.ANPR and "reads" in value:
        times = [datetime.fromisoformat(r["read_at"]) for r in value["reads"]]
        return min(times)
    return datetime.fromisoformat(value[KIND_FIELDS[kind][1]])


def contract_jsonl(lines: Iterable[str], report: AdapterReport) -> Iterator[ReplayEvent]:
    """Events from JSON Lines: bare contract events, or ``{"topic", "key", "value", "at"}`` records."""
    last: datetime | None = None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        report.rows += 1
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            report.reject(n, "not JSON")
            continue
        if not isinstance(doc, dict):
            report.reject(n, "not a JSON object")
            continue
        recorded_at = None
        if "value" in doc and "topic" in doc:
            topic = str(doc["topic"])
            contract_kind = CONTRACT_TOPICS.kind_of(
                "rtic." + topic.split("rtic.", 1)[-1] if "rtic." in topic else ""
            )
            kind = EventKind(contract_kind) if contract_kind else None
            value, key = doc["value"], doc.get("key")
            recorded_at = doc.get("at")
        else:
            value, key = doc, None
            kind = _kind_of(doc)
        if kind is None or not isinstance(value, dict):
            report.reject(n, "unknown event type")
            continue
        try:
            validate_event(kind, value)
            at = datetime.fromisoformat(recorded_at) if recorded_at else _event_time(kind, value)
        except (ContractError, KeyError, TypeError, ValueError) as exc:
            report.reject(n, f"invalid {kind.value}: {str(exc).split(';')[0]}")
            continue
        if at is None:
            at = last or datetime.now(UTC)
        last = at
        if key is None:
            key = (
                str(value.get(KIND_FIELDS[kind][0], ""))
                if kind in KIND_FIELDS
                else str(value.get("id", ""))
            )
            if kind is EventKind.ANPR and "reads" in value:
                key = str(value["reads"][0]["camera_id"])
        report.events += 1
        yield ReplayEvent(at, kind, str(key), value)


def _spread_in_month(month: str, seed: str) -> datetime:
    """Police data gives only the month: place the crime at a stable time within it."""
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    nxt = (start + timedelta(days=32)).replace(day=1)
    span = (nxt - start).total_seconds()
    frac = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big") / 2**64
    return start + timedelta(seconds=int(frac * span))


def police_crime_csv(text: str, report: AdapterReport) -> Iterator[ReplayEvent]:
    """Calls from a UK police open-data street-level crime CSV (one recorded crime a row).

    The data has only the month, so each crime is placed at a stable pseudo-random
    time in its month (from its Crime ID), and rows without a position are not mapped.
    """
    reader = csv.DictReader(io.StringIO(text))
    missing = [
        c
        for c in ("Month", "Longitude", "Latitude", "Crime type")
        if c not in (reader.fieldnames or [])
    ]
    if missing:
        raise ConfigError(f"not a police street-level crime CSV: missing columns {missing}")
    for n, row in enumerate(reader, start=1):
        report.rows += 1
        if not row.get("Longitude") or not row.get("Latitude"):
            report.reject(n, "no location")
            continue
        crime_type = (row.get("Crime type") or "").strip()
        category = POLICE_CATEGORIES.get(crime_type)
        if category is None:
            report.reject(n, f"unknown crime type {crime_type!r}")
            continue
        crime_id = (row.get("Crime ID") or "").strip() or f"row-{n}"
        call_id = f"POL-{crime_id[:40]}"
        month = (row.get("Month") or "").strip()
        try:
            at = _spread_in_month(month, crime_id)
        except ValueError:
            report.reject(n, f"bad month {month!r}")
            continue
        try:
            value = {
                "call_id": call_id,
                "received_at": at.isoformat(),
                "channel": "101",
                "category": category,
                "location": {
                    "lat": float(row["Latitude"]),
                    "lon": float(row["Longitude"]),
                    "address": (row.get("Location") or "").strip() or None,
                },
                "description": f"{crime_type}; outcome: {(row.get('Last outcome category') or 'none').strip()}",
                "source": {
                    "dataset": "police.uk street-level crime",
                    "lsoa": row.get("LSOA code"),
                    "force": row.get("Falls within"),
                },
            }
            validate_event(EventKind.CALL, value)
        except (ValueError, ContractError) as exc:
            report.reject(n, f"invalid row: {str(exc).split(';')[0]}")
            continue
        report.events += 1
        yield ReplayEvent(at, EventKind.CALL, call_id, value)


def load_mapping(path: Path) -> dict[str, Any]:
    """A column-mapping file (YAML), checked for the fields a mapped CSV needs."""
    try:
        mapping = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"mapping {path}: {exc}") from exc
    if not isinstance(mapping, dict):
        raise ConfigError(f"mapping {path}: expected a YAML mapping")
    missing = [k for k in ("time", "lat", "lon", "category") if k not in mapping]
    if missing:
        raise ConfigError(f"mapping {path}: missing {missing}")
    if mapping.get("kind", "call") != "call":
        raise ConfigError(f"mapping {path}: only kind 'call' is supported")
    return mapping


def mapped_csv(
    text: str, mapping: dict[str, Any], report: AdapterReport, id_prefix: str = "CSV"
) -> Iterator[ReplayEvent]:
    """Calls from any CSV through a column mapping (see simulators/mappings/)."""
    reader = csv.DictReader(io.StringIO(text))
    columns = set(reader.fieldnames or [])
    wanted = [mapping["time"], mapping["lat"], mapping["lon"], mapping["category"]]
    if absent := [c for c in wanted if c not in columns]:
        raise ConfigError(f"the CSV has no column(s) {absent}; it has {sorted(columns)}")
    tz = ZoneInfo(mapping.get("timezone", "UTC"))
    fmt = mapping.get("time_format")
    cat_map: dict[str, str] = mapping.get("category_map") or {}
    split = mapping.get("category_split")
    address_cols = mapping.get("address") or []
    if isinstance(address_cols, str):
        address_cols = [address_cols]
    for n, row in enumerate(reader, start=1):
        report.rows += 1
        raw_time = (row.get(mapping["time"]) or "").strip()
        try:
            at = datetime.strptime(raw_time, fmt) if fmt else datetime.fromisoformat(raw_time)
        except ValueError:
            report.reject(n, f"bad time {raw_time!r}" if raw_time else "no time")
            continue
        at = (at.replace(tzinfo=tz) if at.tzinfo is None else at).astimezone(UTC)
        try:
            lat, lon = float(row[mapping["lat"]]), float(row[mapping["lon"]])
        except (TypeError, ValueError):
            report.reject(n, "no or bad position")
            continue
        raw_cat = (row.get(mapping["category"]) or "").strip()
        if split:
            raw_cat = raw_cat.split(split, 1)[0].strip()
        category = cat_map.get(raw_cat)
        if category is None:
            report.reject(n, f"category {raw_cat!r} not in the mapping")
            continue
        ident = (row.get(mapping["id"]) or "").strip() if mapping.get("id") else ""
        address = ", ".join(v for c in address_cols if (v := (row.get(c) or "").strip()))
        call_id = f"{id_prefix}-{ident or n}"
        value = {
            "call_id": call_id,
            "received_at": at.isoformat(),
            "channel": str(mapping.get("channel", "999")),
            "category": category,
            "location": {"lat": lat, "lon": lon, "address": address or None},
            "description": (row.get(mapping["description"]) or "").strip()
            if mapping.get("description")
            else None,
        }
        try:
            validate_event(EventKind.CALL, value)
        except ContractError as exc:
            report.reject(n, f"invalid row: {str(exc).split(';')[0]}")
            continue
        report.events += 1
        yield ReplayEvent(at, EventKind.CALL, call_id, value)


def read_file(path: Path, mapping: Path | None, report: AdapterReport) -> list[ReplayEvent]:
    """The events of a file, in time order, whatever its format."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        events = list(contract_jsonl(text.splitlines(), report))
    elif path.suffix.lower() == ".csv":
        header = text.split("\n", 1)[0]
        if mapping is not None:
            events = list(
                mapped_csv(text, load_mapping(mapping), report, id_prefix=path.stem[:20].upper())
            )
        elif "Crime type" in header and "Month" in header:
            events = list(police_crime_csv(text, report))
        else:
            raise ConfigError(
                f"{path.name}: a CSV other than police open data needs --mapping FILE"
            )
    else:
        raise ConfigError(f"{path.name}: unknown format (JSON Lines .jsonl or .csv)")
    return sorted(events, key=lambda e: e.at)


def schedule(events: list[ReplayEvent], speed: float | None) -> list[float]:
    """Seconds after the start at which each event is due (all 0 for ``speed=None``: max)."""
    if not events or speed is None:
        return [0.0] * len(events)
    t0 = events[0].at
    return [(e.at - t0).total_seconds() / speed for e in events]


async def run_replay(
    settings: Settings, path: Path, *, speed: float | None, mapping: Path | None
) -> int:
    """``rtic replay``: send a file's events at ``speed`` times real time (None: as fast as possible)."""
    from rtic.kafka import ensure_topics, make_producer

    report = AdapterReport()
    try:
        events = read_file(path, mapping, report)
    except (ConfigError, OSError, UnicodeDecodeError) as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    print(report.summary(), file=sys.stderr)
    topics = Topics.with_prefix(settings.topic_prefix)
    await ensure_topics(settings.kafka_url, topics.all(), settings.topic_partitions)
    producer = make_producer(settings.kafka_url)
    await producer.start()
    due = schedule(events, speed)
    errors = 0
    started = time.monotonic()
    try:
        with progress_bar(f"replay {path.name}", total=len(events)) as bar:
            for i, (event, when) in enumerate(zip(events, due, strict=True)):
                wait = when - (time.monotonic() - started)
                if wait > 0:
                    await asyncio.sleep(wait)
                try:
                    await producer.send(
                        topics.for_kind(event.kind),
                        orjson.dumps(event.value),
                        key=event.key.encode(),
                    )
                except Exception as exc:
                    errors += 1
                    bar.print(f"replay: could not send event {i}: {exc}")
                bar.advance()
            await producer.flush()
    finally:
        await producer.stop()
    elapsed = time.monotonic() - started
    print(
        f"replay: {len(events) - errors} events sent in {elapsed:.1f} s "
        f"({(len(events) - errors) / max(elapsed, 1e-9):,.0f}/s), {errors} send errors, "
        f"{sum(report.rejected.values())} rows not mapped",
        file=sys.stderr,
    )
    return 0 if errors == 0 else 1


async def run_record(
    settings: Settings, out: Path, *, duration: float | None, from_beginning: bool
) -> int:
    """``rtic record``: write the input topics to JSON Lines that ``rtic replay`` plays back."""
    from aiokafka import AIOKafkaConsumer

    from rtic.kafka import bootstrap_servers, ensure_topics

    topics = Topics.with_prefix(settings.topic_prefix)
    await ensure_topics(settings.kafka_url, topics.all(), settings.topic_partitions)
    consumer = AIOKafkaConsumer(
        *topics.inputs(),
        bootstrap_servers=bootstrap_servers(settings.kafka_url),
        group_id=None,
        auto_offset_reset="earliest" if from_beginning else "latest",
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    prefix_len = len(settings.topic_prefix)
    written = 0
    started = time.monotonic()
    try:
        with out.open("ab") as fh, progress_bar(f"record to {out.name}") as bar:
            while duration is None or time.monotonic() - started < duration:
                batches = await consumer.getmany(timeout_ms=500)
                for tp, records in batches.items():
                    bar.advance(len(records))
                    for r in records:
                        try:
                            value = orjson.loads(r.value) if r.value else None
                        except orjson.JSONDecodeError:
                            continue  # not contract JSON: the dead-letter topic has it
                        line = {
                            "topic": tp.topic[prefix_len:],
                            "key": r.key.decode(errors="replace") if r.key else None,
                            "value": value,
                            "at": datetime.fromtimestamp(r.timestamp / 1000, UTC).isoformat(),
                        }
                        fh.write(orjson.dumps(line) + b"\n")
                        written += 1
                fh.flush()
    finally:
        await consumer.stop()
        print(f"record: {written} events written to {out}", file=sys.stderr)
    return 0
