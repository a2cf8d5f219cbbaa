"""The worker's peers in the suite: the same plate-read work in a direct Quix Streams
application and in a plain aiokafka loop.

Each peer, per plate read: decodes the JSON, validates it with the contract's model
(``rtic.schemas.PlateReadV1``, or ``PlateReadBatchV1`` for a camera batch), looks up
its areas (district, ward, LSOA) in the project's geo index (``enrichers.geo``, cached
per camera point as the worker's is), looks the plate up in the hotlist tolerating
the usual misreads (``rtic.plates.canonical_vrm``, in memory), and produces the
enriched read (or the enriched camera batch, one message as the worker does) to
``rtic.enriched.v1`` and, for each hit, an ``AlertV1`` to ``rtic.alerts.v1``. The
hotlist is loaded at start from ``rtic.reference.v1`` (every change validated).

What the peers do not do and the worker does (so the peers are the lighter load):
history in Redis (the plate's trail, open incidents' vehicles, the hotlist itself:
one script call per batch), geofences, the ten rules of the catalogue (one of them
the hotlist rule), snoozes, folding repeated hits into open alerts (Redis), dead
letters for bad input, the deadline agents and their tables, metrics.

Run as its own process, as the worker is::

    python benchmarks/peers.py quix|aiokafka --kafka-url URL --prefix P --group G
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import signal
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaConsumer

from enrichers.geo import GeoIndex
from rtic.kafka import bootstrap_servers, make_producer
from rtic.plates import canonical_vrm, normalise_vrm
from rtic.schemas import (
    AlertV1,
    AudienceV1,
    HotlistEntryV1,
    LocationV1,
    PlateReadBatchV1,
    PlateReadV1,
    ReferenceChangeV1,
    Role,
    Severity,
)
from rtic.settings import Settings
from rtic.topics import Topics

CRITICAL_REASONS = {"firearms", "wanted_driver"}
AUDIENCE = AudienceV1(roles=[Role.RTIC_ANALYST, Role.SUPERVISOR, Role.OFFICER])


class PeerCore:
    """The work both peers do, message by message (pure once the hotlist is loaded)."""

    def __init__(self, geo: GeoIndex) -> None:
        self.geo = geo
        self.hotlist: dict[str, dict[str, dict[str, Any]]] = {}  # folded plate -> id -> entry
        self._plate_of: dict[str, str] = {}

    def apply_reference(self, raw: bytes) -> None:
        change = ReferenceChangeV1.model_validate(orjson.loads(raw))
        if change.kind != "hotlist":
            return
        old = self._plate_of.pop(change.id, None)
        if old is not None:
            self.hotlist.get(old, {}).pop(change.id, None)
        entry = change.validated_entry()
        if isinstance(entry, HotlistEntryV1):
            plate = canonical_vrm(entry.vrm)
            self.hotlist.setdefault(plate, {})[change.id] = {
                "id": change.id,
                **entry.model_dump(mode="json", exclude_none=True),
            }
            self._plate_of[change.id] = plate

    def hits(self, read: PlateReadV1) -> list[dict[str, Any]]:
        listed = self.hotlist.get(canonical_vrm(read.vrm))
        if not listed:
            return []
        plate = normalise_vrm(read.vrm)
        return [
            {**e, "match": "exact" if normalise_vrm(e["vrm"]) == plate else "misread"}
            for e in listed.values()
        ]

    def process(self, data: dict[str, Any]) -> list[tuple[bool, bytes, dict[str, Any]]]:
        """One decoded message to its outputs: (is an alert, key, value), the enriched
        message first."""
        if "reads" in data:
            batch = PlateReadBatchV1.model_validate(data)
            reads = batch.reads
        else:
            reads = [PlateReadV1.model_validate(data)]
        areas = self.geo.areas([r.lat for r in reads], [r.lon for r in reads])
        raws = data["reads"] if "reads" in data else [data]
        out: list[tuple[bool, bytes, dict[str, Any]]] = []
        alerts: list[tuple[bool, bytes, dict[str, Any]]] = []
        enriched = []
        for raw, read, found in zip(raws, reads, areas, strict=True):
            codes = self.geo.area_codes(found)
            hits = self.hits(read)
            enriched.append(
                {
                    **raw,
                    "enrichment": {
                        "kind": "anpr",
                        "areas": found,
                        "area_codes": codes,
                        "in_force_area": bool(found),
                        "history": {"hotlist": hits},
                    },
                }
            )
            for hit in hits:
                alert = self.alert(read, hit, found, codes)
                alerts.append((True, alert.alert_id.encode(), alert.model_dump(mode="json")))
        value = {**data, "reads": enriched} if "reads" in data else enriched[0]
        out.append((False, reads[0].camera_id.encode(), value))
        out.extend(alerts)
        return out

    @staticmethod
    def alert(
        read: PlateReadV1, hit: dict[str, Any], areas: dict[str, Any], codes: list[str]
    ) -> AlertV1:
        reason = str(hit.get("reason", "other"))
        ident = hashlib.sha1(f"anpr_hotlist_hit|{read.read_id}|{hit['id']}".encode()).hexdigest()
        ward = areas.get("ward", {}).get("name", "outside force area")
        return AlertV1(
            alert_id=f"anpr_hotlist_hit-{ident[:20]}",
            rule_id="anpr_hotlist_hit",
            severity=Severity.CRITICAL if reason in CRITICAL_REASONS else Severity.HIGH,
            title=f"Check the plate: {hit['vrm']} ({reason}) read as {read.vrm}",
            summary=f"{hit['vrm']} read by camera {read.camera_id} in {ward}",
            created_at=datetime.now(UTC),
            source_event_ids=[read.read_id],
            location=LocationV1(lat=read.lat, lon=read.lon),
            area=codes,
            audience=AUDIENCE,
            details={"vrm": hit["vrm"], "vrm_read": read.vrm, "match": hit["match"], "hit": hit},
        )


async def load_hotlist(core: PeerCore, kafka_url: str, topic: str) -> int:
    """Every change on the reference topic now (read until it is quiet for a second)."""
    from benchmarks.harness import read_all

    records = await read_all(kafka_url, topic, quiet_s=1.0)
    for rec in records:
        core.apply_reference(rec.value or b"")
    return len(records)


def run_quix(core: PeerCore, settings: Settings, group: str) -> None:
    """A direct Quix Streams application: JSON in (orjson, Quix's default), the work
    per message with ``expand=True`` for the alerts, each output to its topic."""
    from quixstreams import Application

    topics = Topics.with_prefix(settings.topic_prefix)
    app = Application(
        broker_address=bootstrap_servers(settings.kafka_url),
        consumer_group=group,
        auto_offset_reset="earliest",
        loglevel=os.environ.get("BENCH_QUIX_LOG", "WARNING"),  # type: ignore[arg-type]
        auto_create_topics=False,
        use_changelog_topics=False,
    )
    reads = app.topic(topics.anpr, value_deserializer="json", key_deserializer="bytes")
    enriched = app.topic(topics.enriched, value_serializer="json", key_serializer="bytes")
    alerts = app.topic(topics.alerts, value_serializer="json", key_serializer="bytes")
    sdf = app.dataframe(reads)
    sdf = sdf.apply(lambda data: [value for _, _, value in core.process(data)], expand=True)
    sdf.to_topic(lambda v, k, ts, h: alerts if "rule_id" in v else enriched, key=_quix_key)
    app.run(sdf)


def _quix_key(value: dict[str, Any]) -> bytes:
    """An alert's id, else the (first) read's camera, as the worker keys them."""
    if "rule_id" in value:
        return str(value["alert_id"]).encode()
    read = value["reads"][0] if "reads" in value else value
    return str(read["camera_id"]).encode()


async def run_aiokafka(core: PeerCore, settings: Settings, group: str) -> None:
    """A plain loop: fetch, do the work per message, produce, wait for the acks, commit
    (at least once, as the worker)."""
    topics = Topics.with_prefix(settings.topic_prefix)
    consumer = AIOKafkaConsumer(
        topics.anpr,
        bootstrap_servers=bootstrap_servers(settings.kafka_url),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=500,
        fetch_max_wait_ms=10,
    )
    producer = make_producer(settings.kafka_url, linger_ms=2)
    await consumer.start()
    await producer.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        while not stop.is_set():
            got = await consumer.getmany(timeout_ms=100, max_records=500)
            if not got:
                continue
            futures = []
            for records in got.values():
                for rec in records:
                    for is_alert, key, value in core.process(orjson.loads(rec.value or b"")):
                        topic = topics.alerts if is_alert else topics.enriched
                        futures.append(await producer.send(topic, orjson.dumps(value), key=key))
            await asyncio.gather(*futures)
            await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("peer", choices=["quix", "aiokafka"])
    parser.add_argument("--kafka-url", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--group", required=True)
    args = parser.parse_args(list(argv) if argv is not None else None)
    settings = Settings(kafka_url=args.kafka_url, topic_prefix=args.prefix)
    core = PeerCore(GeoIndex.load(settings.data_dir))
    topics = Topics.with_prefix(settings.topic_prefix)
    n = asyncio.run(load_hotlist(core, settings.kafka_url, topics.reference))
    print(f"{args.peer}: {n} reference changes, {len(core.hotlist)} hotlisted plates", flush=True)
    if args.peer == "quix":
        run_quix(core, settings, args.group)
    else:
        asyncio.run(run_aiokafka(core, settings, args.group))


if __name__ == "__main__":
    main()
