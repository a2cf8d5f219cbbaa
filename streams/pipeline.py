"""The processing path for one batch of raw messages from one input topic.

decode + validate -> place enrichment (vectorised) -> history (one round trip to
the history store) -> nearest units -> the enrichment block (``rtic.enrichment``,
built here, once per event) -> rules -> snoozes -> open alerts (one round trip to
the alert-group store) -> output messages. Faust agents (``streams/app.py``) only
feed it raw records and send what it returns, so the whole path runs and is
benchmarked without a broker, and unit-tested on the memory stores
(``enrichers.stores.Stores.memory``) without Redis either.

Bad input is data: a message that cannot be decoded or validated becomes a
dead letter with its topic, partition, offset, raw bytes and reason, and
the rest of the batch goes on. If Redis fails, the batch goes on with place
enrichment and ``enrichment.partial`` says why; hotlist hits and markers then
come from the worker's own copy (``enrichers.reference_copy``), so a hotlisted
read still raises its alert, and that alert's ``details.history_partial`` says
history was partial.
"""

from __future__ import annotations

import base64
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, cast

from pydantic import BaseModel

from enrichers.alert_groups import fold_repeated
from enrichers.geo import GeoIndex
from enrichers.reference_copy import ReferenceCopy
from enrichers.stores import Stores
from enrichers.zones import Geofences, Officers, build_place_layers
from rtic.clock import Clock, as_clock, utc_now
from rtic.enrichment import (
    AreaRef,
    Enrichment,
    EventKindName,
    GeofenceHit,
    HistoryBlock,
    NearbyPlace,
    NearestUnit,
    Partial,
)
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
    validate_reads,
)
from rtic.topics import Topics
from rules.base import Rule, RuleStats, evaluate_batch, recent_calls_search
from rules.config import RuleFileError, load_rule_file
from rules.snooze import SnoozeIndex, split_snoozed

log = logging.getLogger(__name__)
LAYER_CHECK_S = 1.0  # how stale a worker's geofences and operator places may be
PLACE_LAYERS = ("geofence", "place")  # live layers of the reference store
# After a Redis failure, how long reads are also checked against the worker's copy of
# the hotlists (Redis may lack what was listed meanwhile until the held changes land).
COPY_HITS_AFTER_OUTAGE_S = 600.0


class Record(Protocol):
    """What the pipeline reads of a message: a ``RawRecord``, or Faust's own
    ``Message`` as the worker's agents pass it (no copy per message)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


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
    # The batch's valid events as validated, with their input partition, in order (what
    # the worker's observers get: streams/app.py, ``Worker.observe``).
    events: list[tuple[int, BaseModel]] = field(default_factory=list)


@dataclass
class PipelineStats:
    """Counters an operator reads (exposed by the worker's log and the benchmark)."""

    received: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    alerts: int = 0
    partial_batches: int = 0
    rules: RuleStats = field(default_factory=RuleStats)
    suppressed: Counter[str] = field(default_factory=Counter)  # alerts snoozed, per rule


@dataclass(slots=True)
class _Item:
    """One event (a read of a batch counts as one) on its way through the batch: the
    parts of its enrichment as the steps find them, then the block they make."""

    model: BaseModel
    lat: float | None
    lon: float | None
    event_id: str
    at: datetime
    areas: dict[str, AreaRef] | None = None
    area_codes: list[str] | None = None
    geofences: list[GeofenceHit] | None = None
    nearby_places: dict[str, NearbyPlace] | None = None
    history: HistoryBlock | None = None
    nearest_units: list[NearestUnit] | None = None
    # The block's wire form (``Enrichment.wire``): what rules read and what goes out.
    enrichment: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Message:
    record: Record
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
        stores: Stores | None,
        rules: Sequence[Rule],
        clock: Clock | Callable[[], datetime] = utc_now,
        rules_file: Path | None = None,
        reference_copy: ReferenceCopy | None = None,
    ) -> None:
        self.topics = topics
        # Hotlists and markers in memory, for batches Redis cannot enrich.
        self.reference_copy = reference_copy if reference_copy is not None else ReferenceCopy()
        self._copy_hits_until = 0.0  # monotonic time: reads checked against the copy too
        self.geo = geo
        self.stores = stores
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
        self, record: Record, reason: str, now: datetime
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

    async def process(self, records: Sequence[Record]) -> Output:
        """Process one batch of records from one input topic."""
        out = Output()
        if not records:
            return out
        now = self.clock()
        kind = self.kind_by_topic[records[0].topic]
        self.stats.received[kind.value] += len(records)
        messages = self._decode(kind, records, out, now)
        out.events = [(m.record.partition, m.model) for m in messages]
        if kind is EventKind.REFERENCE:
            await self._apply_reference(messages)
            self._layers_checked = None  # look at the live layers again on the next batch
            return out
        await self._refresh_layers()
        items = [it for m in messages for it in m.items]
        if items:
            self.clock.observe(max(it.at for it in items))  # an event clock moves with them
            now = self.clock()
        partial = await self._enrich(kind, items, now)
        out.alerts = await self._alerts(kind, items, now)
        if partial:
            for alert in out.alerts:  # raised on what the worker's copy knew
                alert.details["history_partial"] = partial
        self.stats.alerts += len(out.alerts)
        out.messages.extend(self._enriched_message(kind, m) for m in messages)
        out.messages.extend(
            (self.topics.alerts, _key(alert.alert_id), dumps(alert)) for alert in out.alerts
        )
        return out

    # ---- decode and validate ------------------------------------------------------------

    def _decode(
        self, kind: EventKind, records: Sequence[Record], out: Output, now: datetime
    ) -> list[_Message]:
        """The records as validated messages; the others become dead letters in ``out``."""
        if kind is EventKind.ANPR:
            single = self._single_reads(records)
            if single is not None:
                return single
        messages: list[_Message] = []
        for rec in records:
            try:
                data = decode_json(rec.value)
                if kind is EventKind.ANPR and "reads" in data:
                    decoded = self._read_batch(rec, data, out, now)
                    if decoded is None:
                        continue
                    data, model = decoded
                else:
                    model = validate_event(kind, data)
            except ContractError as exc:
                out.messages.append(self.dead_letter(rec, f"{type(exc).__name__}: {exc}", now))
                out.dead_letters += 1
                continue
            messages.append(_Message(rec, data, model, _items(model)))
        return messages

    def _single_reads(self, records: Sequence[Record]) -> list[_Message] | None:
        """Plate reads one per message, every one of them valid (nearly always), decoded
        and validated with one call into pydantic's core for the lot; ``None`` when one
        is not (or is a camera batch): then record by record, naming what is wrong."""
        try:
            decoded = [decode_json(rec.value) for rec in records]
        except ContractError:
            return None
        if any("reads" in data for data in decoded):
            return None
        models = validate_reads(decoded)
        if models is None:
            return None
        return [
            _Message(rec, data, m, [_Item(m, m.lat, m.lon, m.read_id, m.read_at)])
            for rec, data, m in zip(records, decoded, models, strict=True)
        ]

    def _read_batch(
        self, rec: Record, data: dict[str, Any], out: Output, now: datetime
    ) -> tuple[dict[str, Any], BaseModel] | None:
        """A camera batch's valid reads (None if there are none). One dead letter for the
        message names the reads left out; the others go on, and the enriched batch
        lists the indices left out."""
        batch, bad = validate_read_batch(data)
        if bad:
            reason = "ValidationFailed: " + "; ".join(f"reads[{i}]: {why}" for i, why in bad[:5])
            if len(bad) > 5:
                reason += f"; and {len(bad) - 5} more reads"
            out.messages.append(self.dead_letter(rec, reason, now))
            out.dead_letters += 1
        if batch is None:
            return None
        if bad:
            left_out = {i for i, _ in bad}
            data = {
                **data,
                "reads": [r for i, r in enumerate(data["reads"]) if i not in left_out],
                "dead_lettered_reads": sorted(left_out),
            }
        return data, batch

    # ---- enrichment -------------------------------------------------------------------

    async def _enrich(self, kind: EventKind, items: list[_Item], now: datetime) -> str | None:
        """Each item's enrichment block: place, history, nearest units, then the block;
        why history is partial, if it is."""
        self._enrich_place(kind, items)
        partial = await self._enrich_history(kind, items)
        if kind in (EventKind.CALL, EventKind.INCIDENT):
            self._nearest_units(items, now)
        self._build_blocks(kind, items, now, partial)
        return partial

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
        zones = self.geofences.hits(lats, lons, [it.at for it in located])  # type: ignore[arg-type]
        area_codes = self.geo.area_codes
        for it, a, z in zip(located, areas, zones, strict=True):
            it.areas = a
            it.area_codes = area_codes(a)
            it.geofences = cast(list[GeofenceHit], z)
        if fresh:
            places = self.geo.nearest_places(lats, lons)  # type: ignore[arg-type]
            for it, p in zip(located, places, strict=True):
                it.nearby_places = p

    async def _enrich_history(self, kind: EventKind, items: list[_Item]) -> str | None:
        """History for the batch (officers' pings: recorded for nearest units); the
        reason if it could not be had (the events go on)."""
        if self.stores is None:
            return "history store not configured"
        try:
            if kind is EventKind.OFFICER_LOCATION:
                pings = cast(list[OfficerLocationV1], [it.model for it in items])
                await self.stores.reference.record_officers(pings)
                return None
            blocks = await self.stores.history.enrich(
                kind, [it.model for it in items], self._emerging_search(kind)
            )
            if kind is EventKind.ANPR and time.monotonic() < self._copy_hits_until:
                self._hits_from_copy(items, blocks)
            for it, block in zip(items, blocks, strict=True):
                it.history = block
        except (ServiceError, EnrichmentError) as exc:
            self._redis_failed()
            self.stats.partial_batches += 1
            log.warning(
                "history enrichment skipped for %d %s events: %s", len(items), kind.value, exc
            )
            return self._history_from_copy(kind, items, str(exc))
        return None

    def _redis_failed(self) -> None:
        """Redis failed: for a while after it answers again it may lack changes listed
        meanwhile (held by a reference agent until its next try, or Redis came back
        empty), so reads are checked against the copy as well until then."""
        self._copy_hits_until = time.monotonic() + COPY_HITS_AFTER_OUTAGE_S

    def _hits_from_copy(self, items: list[_Item], blocks: list[HistoryBlock | None]) -> None:
        """Hotlist hits the copy knows and Redis does not yet (a change listed during an
        outage, held until Redis takes it): added, so the read still alerts."""
        if not len(self.reference_copy):
            return
        mine = self.reference_copy.history(EventKind.ANPR, [it.model for it in items])
        for block, known in zip(blocks, mine, strict=True):
            if block is None or known is None or not known["hotlist"]:
                continue
            have = {str(hit.get("id")) for hit in block.get("hotlist", [])}
            extra = [hit for hit in known["hotlist"] if str(hit.get("id")) not in have]
            if extra:
                block["hotlist"] = [*block.get("hotlist", []), *extra]

    def _history_from_copy(self, kind: EventKind, items: list[_Item], why: str) -> str:
        """History from the worker's copy of hotlists and markers (Redis failed); the
        partial reason, saying what the blocks hold."""
        copy = self.reference_copy
        if not copy.ready and kind in (EventKind.ANPR, EventKind.CALL, EventKind.INCIDENT):
            # Half a copy would miss hits: hold the batch (the agent retries it) until
            # Redis answers or the copy has read the reference topic to its end.
            raise ServiceError(f"{why}; the worker's copy of hotlists is still loading")
        blocks = copy.history(kind, [it.model for it in items])
        if all(block is None for block in blocks):
            return why
        for it, block in zip(items, blocks, strict=True):
            it.history = block
        held = "hotlists" if kind is EventKind.ANPR else "markers"
        note = f"{why}; {held} from the worker's copy ({len(copy)} entries"
        note += ")" if copy.complete else f", {copy.refused} left out: over its bound)"
        return note + ", the rest of history unknown"

    def _emerging_search(self, kind: EventKind) -> tuple[float, float] | None:
        """(radius m, window s) of the recent-call search the enabled rules need, for calls."""
        search = recent_calls_search(self.rules) if kind is EventKind.CALL else None
        return (search.radius_m, search.window_s) if search else None

    def _nearest_units(self, items: list[_Item], now: datetime) -> None:
        located = [it for it in items if it.lat is not None and it.lon is not None]
        units = self.officers.nearest(
            [it.lat for it in located],  # type: ignore[misc]
            [it.lon for it in located],  # type: ignore[misc]
            now,
        )
        for it, u in zip(located, units, strict=True):
            it.nearest_units = cast(list[NearestUnit], u)

    def _build_blocks(
        self, kind: EventKind, items: list[_Item], now: datetime, partial: str | None
    ) -> None:
        """The enrichment block of each item, from its parts: the one place it is built."""
        kind_name = cast(EventKindName, kind.value)
        version = self.reference_version
        enriched_at = now.isoformat()
        why: Partial | None = {"reason": partial} if partial else None
        build = Enrichment.build
        for it in items:
            areas = it.areas
            it.enrichment = build(
                kind=kind_name,
                reference_version=version,
                enriched_at=enriched_at,
                areas=areas,
                area_codes=it.area_codes,
                in_force_area=bool(areas) if areas is not None else None,
                geofences=it.geofences,
                nearby_places=it.nearby_places,
                history=it.history,
                nearest_units=it.nearest_units,
                partial=why,
            ).wire()

    # ---- rules, snoozes, open alerts --------------------------------------------------

    async def _alerts(self, kind: EventKind, items: list[_Item], now: datetime) -> list[AlertV1]:
        """The rules' alerts for the batch (each id once), less the snoozed, with repeated
        hits folded into their open alerts."""
        alerts: list[AlertV1] = []
        seen: set[str] = set()
        raised = evaluate_batch(
            self.rules, kind, ((it.model, it.enrichment) for it in items), now, self.stats.rules
        )
        for alert in raised:
            if alert.alert_id in seen:
                continue
            seen.add(alert.alert_id)
            alerts.append(alert)
        alerts = self.drop_snoozed(alerts, now)
        groups = self.stores.alert_groups if self.stores is not None else None
        return await fold_repeated(alerts, groups, now)

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

    # ---- live layers and the rule file -------------------------------------------------

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
        """Reload the rule file, officers' positions, and geofences, operator places and
        snoozes when they changed (at most once a second: a worker's view is at most
        that stale)."""
        tick = time.monotonic()
        if self._layers_checked is not None and tick - self._layers_checked < LAYER_CHECK_S:
            return
        self._layers_checked = tick
        if self.rules_file is not None:
            self._load_rules()
        if self.stores is None:
            return
        try:
            await self._reload_layers(self.stores)
        except (ServiceError, EnrichmentError) as exc:
            self._redis_failed()
            log.warning("live reference layers not refreshed (keeping the last ones): %s", exc)

    async def _reload_layers(self, stores: Stores) -> None:
        reference, versions = stores.reference, self._layer_versions
        self.officers = Officers.build(await reference.officer_states())
        moved = await reference.layer_versions(PLACE_LAYERS)
        for kind, version in zip(PLACE_LAYERS, moved, strict=True):
            if version == versions[kind]:
                continue
            version, entries = await reference.layer(kind)
            if kind == "geofence":
                self.geofences = Geofences.build(version, entries)
            else:
                self.geo.set_operator_places(build_place_layers(entries))
            versions[kind] = version
            log.info("loaded %d %s entries (version %d)", len(entries), kind, version)
        if await stores.snoozes.version() != versions["snooze"]:
            version, entries = await stores.snoozes.entries()
            self.snoozes = SnoozeIndex.build(version, entries)
            versions["snooze"] = version
            log.info("loaded %d snooze entries (version %d)", len(entries), version)

    # ---- output ---------------------------------------------------------------------

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

    async def _apply_reference(self, messages: list[_Message]) -> None:
        """Reference changes into their stores: snoozes into the snooze store, the rest
        (hotlists, markers, geofences, places) into the reference store."""
        changes = cast(list[ReferenceChangeV1], [m.model for m in messages])
        if not changes:
            return
        # The worker's copy first: it holds the change even while Redis does not.
        self.reference_copy.apply(changes)
        if self.stores is None:
            raise ServiceError("reference changes need the history store")
        # A Redis failure here must not lose the changes: let it raise, the agent
        # retries the batch (its offsets are not committed).
        snoozes = [ch for ch in changes if ch.kind == "snooze"]
        others = [ch for ch in changes if ch.kind != "snooze"]
        try:
            if others:
                await self.stores.reference.apply(others)
            if snoozes:
                await self.stores.snoozes.apply(snoozes)
        except (ServiceError, EnrichmentError):
            self._redis_failed()
            raise


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
