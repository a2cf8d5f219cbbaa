"""The processing path for one batch of raw messages from one input topic.

decode + validate -> place enrichment (vectorised) -> history (one Redis
round trip) -> rules -> output messages. Faust agents (``streams/app.py``)
only feed it raw records and send what it returns, so the whole path runs
and is benchmarked without a broker.

Bad input is data: a message that cannot be decoded or validated becomes a
dead letter with its topic, partition, offset, raw bytes and reason, and
the rest of the batch goes on. If Redis fails, the batch goes on with place
enrichment and ``enrichment.partial`` says why.
"""

from __future__ import annotations

import base64
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from enrichers.geo import GeoIndex
from enrichers.history import HistoryStore
from enrichers.zones import Geofences, Officers, build_place_layers
from rtic.clock import Clock, as_clock
from rtic.errors import ConfigError, ContractError, EnrichmentError, ServiceError
from rtic.schemas import (
    AlertV1,
    CallV1,
    DeadLetterV1,
    EventKind,
    IncidentEventV1,
    OfficerLocationV1,
    PlateReadBatchV1,
    PlateReadV1,
    ReferenceChangeV1,
    decode_json,
    dumps,
    validate_event,
    validate_read_batch,
)
from rtic.topics import Topics
from rules.base import Rule, RuleStats, evaluate, recent_calls_search
from rules.config import RuleFileError, load_rule_file
from rules.snooze import SnoozeIndex, split_snoozed

log = logging.getLogger(__name__)
LAYER_CHECK_S = 1.0  # how stale a worker's geofences and operator places may be


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RawRecord:
    """One message as it came off the topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class Output:
    """Messages to send: (topic, key, value)."""

    messages: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    alerts: list[AlertV1] = field(default_factory=list)
    dead_letters: int = 0


@dataclass
class PipelineStats:
    """Counters an operator reads (exposed by the worker's log and the benchmark)."""

    received: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    alerts: int = 0
    partial_batches: int = 0
    rules: RuleStats = field(default_factory=RuleStats)
    suppressed: Counter[str] = field(default_factory=Counter)  # alerts snoozed, per rule


@dataclass
class _Item:
    """One event (a read of a batch counts as one) on its way through the batch."""

    model: BaseModel
    lat: float | None
    lon: float | None
    event_id: str
    at: datetime
    enrichment: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Message:
    record: RawRecord
    data: dict[str, Any]
    model: BaseModel
    items: list[_Item]


def _key(value: str) -> bytes:
    return value.encode()


class Pipeline:
    """Everything between raw input bytes and output messages, for one worker."""

    def __init__(
        self,
        topics: Topics,
        geo: GeoIndex,
        history: HistoryStore | None,
        rules: Sequence[Rule],
        clock: Clock | Callable[[], datetime] = utc_now,
        rules_file: Path | None = None,
    ) -> None:
        self.topics = topics
        self.geo = geo
        self.history = history
        self.catalogue = list(rules)
        self.rules = list(rules)
        self.rules_file = rules_file
        self._rules_mtime: float | None = None
        if rules_file is not None:
            self._load_rules(strict=True)
        self.clock = as_clock(clock)
        self.stats = PipelineStats()
        self.geofences = Geofences.build(0, {})
        self.officers = Officers.build({})
        self.snoozes = SnoozeIndex()
        self._layer_versions = {"geofence": 0, "place": 0, "snooze": 0}
        self._layers_checked: float | None = None
        self.kind_by_topic = {topic: EventKind(kind) for kind, topic in topics.by_kind().items()}

    def dead_letter(
        self, record: RawRecord, reason: str, now: datetime
    ) -> tuple[str, bytes | None, bytes]:
        """The dead-letter message for a record that could not be used."""
        self.stats.dead_letters[record.topic] += 1
        log.warning(
            "dead letter from %s[%d]@%d: %s", record.topic, record.partition, record.offset, reason
        )
        letter = DeadLetterV1(
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            raw=base64.b64encode(record.value or b"").decode("ascii"),
            key=base64.b64encode(record.key).decode("ascii") if record.key is not None else None,
            reason=reason,
            at=now,
        )
        return self.topics.dead_letter, _key(record.topic), dumps(letter)

    async def process(self, records: Sequence[RawRecord]) -> Output:
        """Process one batch of records from one input topic."""
        out = Output()
        if not records:
            return out
        now = self.clock()
        kind = self.kind_by_topic[records[0].topic]
        self.stats.received[kind.value] += len(records)
        messages: list[_Message] = []
        for rec in records:
            try:
                data = decode_json(rec.value)
                if kind is EventKind.ANPR and "reads" in data:
                    batch, bad = validate_read_batch(data)
                    if bad:
                        # One dead letter for the message, naming the reads left out; the
                        # others go on (the enriched batch lists the indices left out).
                        reason = "ValidationFailed: " + "; ".join(
                            f"reads[{i}]: {why}" for i, why in bad[:5]
                        )
                        if len(bad) > 5:
                            reason += f"; and {len(bad) - 5} more reads"
                        out.messages.append(self.dead_letter(rec, reason, now))
                        out.dead_letters += 1
                    if batch is None:
                        continue
                    if bad:
                        left_out = {i for i, _ in bad}
                        data = {
                            **data,
                            "reads": [r for i, r in enumerate(data["reads"]) if i not in left_out],
                            "dead_lettered_reads": sorted(left_out),
                        }
                    model: BaseModel = batch
                else:
                    model = validate_event(kind, data)
            except ContractError as exc:
                out.messages.append(self.dead_letter(rec, f"{type(exc).__name__}: {exc}", now))
                out.dead_letters += 1
                continue
            messages.append(_Message(rec, data, model, _items(model)))
        if kind is EventKind.REFERENCE:
            await self._apply_reference(messages, out, now)
            self._layers_checked = None  # look at the live layers again on the next batch
            return out
        await self._refresh_layers()
        items = [it for m in messages for it in m.items]
        if items:
            self.clock.observe(max(it.at for it in items))  # an event clock moves with them
            now = self.clock()
        self._enrich_place(kind, items)
        partial = await self._enrich_history(kind, items, now)
        if kind in (EventKind.CALL, EventKind.INCIDENT):
            points = [
                (it, it.lat, it.lon) for it in items if it.lat is not None and it.lon is not None
            ]
            units = self.officers.nearest([p[1] for p in points], [p[2] for p in points], now)
            for (it, _, _), u in zip(points, units, strict=True):
                it.enrichment["nearest_units"] = u
        enriched_at = now.isoformat()
        for it in items:
            it.enrichment["kind"] = kind.value
            it.enrichment["reference_version"] = self.reference_version
            it.enrichment["enriched_at"] = enriched_at
            if partial:
                it.enrichment["partial"] = {"reason": partial}
        seen: set[str] = set()
        for it in items:
            for alert in evaluate(self.rules, kind, it.model, it.enrichment, now, self.stats.rules):
                if alert.alert_id in seen:
                    continue
                seen.add(alert.alert_id)
                out.alerts.append(alert)
        out.alerts = self.drop_snoozed(out.alerts, now)
        out.alerts = await self._group_alerts(out.alerts, now)
        self.stats.alerts += len(out.alerts)
        for m in messages:
            out.messages.append(self._enriched_message(kind, m))
        for alert in out.alerts:
            out.messages.append((self.topics.alerts, _key(alert.alert_id), dumps(alert)))
        return out

    def drop_snoozed(self, alerts: list[AlertV1], now: datetime) -> list[AlertV1]:
        """The alerts no analyst's live snooze holds back (those held are counted and logged)."""
        kept, held = split_snoozed(self.snoozes, alerts, now)
        for alert, snooze in held:
            self.stats.suppressed[alert.rule_id] += 1
            log.info(
                "alert %s (%s) not sent: snoozed by %s until %s",
                alert.alert_id,
                alert.rule_id,
                snooze.snooze_id,
                snooze.until.isoformat(),
            )
        return kept

    async def _group_alerts(self, alerts: list[AlertV1], now: datetime) -> list[AlertV1]:
        """Fold repeated hits of a rule into one open alert (same id, higher version).

        Without Redis the alerts go out ungrouped: more alerts, none lost.
        """
        grouped = [a for a in alerts if a.group and _group_window(a) > 0]
        if not grouped or self.history is None:
            return alerts
        hits = [
            (
                a.group or "",
                a.alert_id,
                ",".join(a.source_event_ids),
                _group_window(a),
                now.timestamp(),
            )
            for a in grouped
        ]
        try:
            answers = await self.history.group_alerts(hits)
        except (ServiceError, EnrichmentError) as exc:
            log.warning("alerts not grouped (sent as they are): %s", exc)
            return alerts
        latest: dict[str, AlertV1] = {}
        for alert, (alert_id, version, count, first) in zip(grouped, answers, strict=True):
            first_at = datetime.fromtimestamp(first, UTC)
            update = {"alert_id": alert_id, "version": version}
            if version > 1:
                update["updated_at"] = now
                update["created_at"] = first_at
                label = alert.details["group"].get("label")
                if label:
                    update["summary"] = (
                        f"{alert.summary} ({count} {label} since {first_at:%H:%M:%S}Z)"
                    )
                update["details"] = {
                    **alert.details,
                    "hits": count,
                    "first_hit_at": first_at.isoformat(),
                }
            folded = alert.model_copy(update=update)
            if alert_id not in latest or latest[alert_id].version < version:
                latest[alert_id] = folded
        folded_in = {id(a) for a in grouped}
        others = [a for a in alerts if id(a) not in folded_in]
        return others + list(latest.values())

    @property
    def reference_version(self) -> str:
        """Which reference data an enrichment used: boundaries and places, geofences, operator places."""
        v = self._layer_versions
        return f"{self.geo.version}/geofences-{v['geofence']}/places-{v['place']}"

    def _load_rules(self, strict: bool = False) -> None:
        """Read the rule file if it changed. A bad file keeps the last good set (and says
        why in the log); at start (``strict``) it stops the worker instead."""
        assert self.rules_file is not None
        try:
            mtime = self.rules_file.stat().st_mtime
            if mtime == self._rules_mtime:
                return
            self._rules_mtime = mtime
            self.rules = load_rule_file(
                self.rules_file.read_text(), self.catalogue, str(self.rules_file)
            )
            log.info("rules loaded from %s", self.rules_file)
        except (OSError, RuleFileError) as exc:
            if strict:
                raise ConfigError(f"cannot use the rule file: {exc}") from exc
            log.error("rule file not used, keeping the last good rules:\n%s", exc)

    async def _refresh_layers(self) -> None:
        """Reload the rule file, officers' positions, and geofences and operator places
        when they changed (at most once a second: a worker's view is at most that stale)."""
        tick = time.monotonic()
        if self._layers_checked is not None and tick - self._layers_checked < LAYER_CHECK_S:
            return
        self._layers_checked = tick
        if self.rules_file is not None:
            self._load_rules()
        if self.history is None:
            return
        kinds = list(self._layer_versions)
        try:
            self.officers = Officers.build(await self.history.officer_states())
            versions = await self.history.reference_versions(kinds)
            for kind, version in zip(kinds, versions, strict=True):
                if version == self._layer_versions[kind]:
                    continue
                version, entries = await self.history.reference_entries(kind)
                if kind == "geofence":
                    self.geofences = Geofences.build(version, entries)
                elif kind == "snooze":
                    self.snoozes = SnoozeIndex.build(version, entries)
                else:
                    self.geo.set_operator_places(build_place_layers(entries))
                self._layer_versions[kind] = version
                log.info("loaded %d %s entries (version %d)", len(entries), kind, version)
        except (ServiceError, EnrichmentError) as exc:
            log.warning("live reference layers not refreshed (keeping the last ones): %s", exc)

    def _enrich_place(self, kind: EventKind, items: list[_Item]) -> None:
        located = [it for it in items if it.lat is not None and it.lon is not None]
        if not located:
            return
        lats = [it.lat for it in located]
        lons = [it.lon for it in located]
        # Calls and incidents rarely come from the same point twice: no cache for them
        # (plate reads come from fixed cameras: cached).
        fresh = kind in (EventKind.CALL, EventKind.INCIDENT)
        areas = self.geo.areas(lats, lons, cache=not fresh)  # type: ignore[arg-type]
        for it, a in zip(located, areas, strict=True):
            it.enrichment["areas"] = a
            it.enrichment["area_codes"] = self.geo.area_codes(a)
            it.enrichment["in_force_area"] = bool(a)
        zones = self.geofences.hits(lats, lons, [it.at for it in located])  # type: ignore[arg-type]
        for it, z in zip(located, zones, strict=True):
            it.enrichment["geofences"] = z
        if fresh:
            places = self.geo.nearest_places(lats, lons)  # type: ignore[arg-type]
            for it, p in zip(located, places, strict=True):
                it.enrichment["nearby_places"] = p

    async def _enrich_history(
        self, kind: EventKind, items: list[_Item], now: datetime
    ) -> str | None:
        """History for the batch; the reason if it could not be had (events go on)."""
        if self.history is None:
            return "history store not configured"
        try:
            blocks = await self.history.enrich(
                kind, [it.model for it in items], now, self._emerging_search(kind)
            )
            for it, block in zip(items, blocks, strict=True):
                it.enrichment.update(block)
        except (ServiceError, EnrichmentError) as exc:
            self.stats.partial_batches += 1
            log.warning(
                "history enrichment skipped for %d %s events: %s", len(items), kind.value, exc
            )
            return str(exc)
        return None

    def _emerging_search(self, kind: EventKind) -> tuple[float, float] | None:
        """(radius m, window s) of the recent-call search the enabled rules need, for calls."""
        search = recent_calls_search(self.rules) if kind is EventKind.CALL else None
        return (search.radius_m, search.window_s) if search else None

    def _enriched_message(self, kind: EventKind, m: _Message) -> tuple[str, bytes | None, bytes]:
        if isinstance(m.model, PlateReadBatchV1):
            reads = [
                {**raw, "enrichment": it.enrichment}
                for raw, it in zip(m.data["reads"], m.items, strict=True)
            ]
            value = {**m.data, "reads": reads}
            key = m.model.reads[0].camera_id
        else:
            value = {**m.data, "enrichment": m.items[0].enrichment}
            key = m.items[0].event_id if kind is not EventKind.ANPR else m.model.camera_id  # type: ignore[attr-defined]
        return self.topics.enriched, _key(key), dumps(value)

    async def _apply_reference(self, messages: list[_Message], out: Output, now: datetime) -> None:
        changes = [m.model for m in messages]
        if not changes:
            return
        if self.history is None:
            raise ServiceError("reference changes need the history store")
        # A Redis failure here must not lose the changes: let it raise, the agent
        # retries the batch (Faust does not commit its offsets).
        await self.history.apply_reference(changes)  # type: ignore[arg-type]


def _group_window(alert: AlertV1) -> float:
    """How long an alert's group stays open between hits (0: not grouped)."""
    return float(alert.details.get("group", {}).get("window_s") or 0)


def _items(model: BaseModel) -> list[_Item]:
    if isinstance(model, PlateReadBatchV1):
        return [_Item(r, r.lat, r.lon, r.read_id, r.read_at) for r in model.reads]
    if isinstance(model, PlateReadV1):
        return [_Item(model, model.lat, model.lon, model.read_id, model.read_at)]
    if isinstance(model, CallV1):
        loc = model.location
        return [_Item(model, loc.lat, loc.lon, model.call_id, model.received_at)]
    if isinstance(model, IncidentEventV1):
        loc = model.location
        return [_Item(model, loc.lat, loc.lon, model.incident_id, model.at)]
    if isinstance(model, OfficerLocationV1):
        return [_Item(model, model.lat, model.lon, model.officer_id, model.at)]
    if isinstance(model, ReferenceChangeV1):
        return []
    raise TypeError(type(model).__name__)
