"""Analysts' snoozes: alerts an analyst asked not to be shown for a while. Pure.

A snooze (``SnoozeV1``, reference kind ``snooze`` on ``rtic.reference.v1``)
holds back the alerts of one rule, or of every rule, for an area code or a
plate, until its ``until``. The stream (``streams/pipeline.py``) builds a
``SnoozeIndex`` from the live snooze layer whenever its change counter moves
and drops every alert ``SnoozeIndex.match`` finds a live snooze for, just
before alerts are grouped and sent.

An alert matches a snooze when all of these hold:

- the snooze names no rule, or the alert's rule;
- the snooze's area is one of the alert's area codes, or the snooze's plate
  and a plate the alert is about are equal once the usual ANPR misreads are
  folded (``canonical_vrm``, as for hotlists);
- ``now`` is before the snooze's ``until``.

No I/O and no clock: ``now`` is passed in.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from rtic.plates import canonical_vrm
from rtic.schemas import AlertV1, SnoozeV1

log = logging.getLogger(__name__)

# Where rules put the plate an alert is about: ``vrm`` first (the plate itself),
# then what the plate rules also say (the listed plate, the plate as read).
PLATE_FIELDS = ("vrm", "vrm_listed", "vrm_read")


@dataclass(frozen=True)
class Snooze:
    """One live snooze, its plate already folded for comparison."""

    snooze_id: str
    rule_id: str | None
    area: str | None
    plate: str | None
    until: datetime
    by: str
    reason: str | None = None

    @classmethod
    def from_entry(cls, snooze_id: str, entry: SnoozeV1) -> Snooze:
        return cls(
            snooze_id=snooze_id,
            rule_id=entry.rule_id,
            area=entry.area,
            plate=canonical_vrm(entry.vrm) if entry.vrm else None,
            until=entry.until,
            by=entry.by,
            reason=entry.reason,
        )

    def applies_to(self, rule_id: str) -> bool:
        return self.rule_id is None or self.rule_id == rule_id


def alert_plates(alert: AlertV1) -> set[str]:
    """The canonical plates an alert is about (empty for an alert about no vehicle)."""
    plates = set()
    for name in PLATE_FIELDS:
        value = alert.details.get(name)
        if isinstance(value, str) and value.strip():
            plates.add(canonical_vrm(value))
    return plates


@dataclass(frozen=True)
class SnoozeIndex:
    """The live snoozes, by area code and by canonical plate."""

    version: int = 0
    by_area: Mapping[str, tuple[Snooze, ...]] = field(default_factory=dict)
    by_plate: Mapping[str, tuple[Snooze, ...]] = field(default_factory=dict)
    skipped: int = 0

    @classmethod
    def build(cls, version: int, entries: Mapping[str, Mapping[str, Any]]) -> SnoozeIndex:
        """An index of the layer's entries (snooze id -> entry); an entry that is not a
        valid snooze is skipped (and counted), never fatal."""
        by_area: dict[str, list[Snooze]] = {}
        by_plate: dict[str, list[Snooze]] = {}
        skipped = 0
        for snooze_id, raw in entries.items():
            try:
                snooze = Snooze.from_entry(snooze_id, SnoozeV1.model_validate(raw))
            except ValidationError as exc:
                skipped += 1
                log.warning("snooze %s skipped: %s", snooze_id, exc.errors()[0]["msg"])
                continue
            if snooze.area is not None:
                by_area.setdefault(snooze.area, []).append(snooze)
            if snooze.plate is not None:
                by_plate.setdefault(snooze.plate, []).append(snooze)
        return cls(
            version=version,
            by_area={k: tuple(v) for k, v in by_area.items()},
            by_plate={k: tuple(v) for k, v in by_plate.items()},
            skipped=skipped,
        )

    def __bool__(self) -> bool:
        return bool(self.by_area or self.by_plate)

    def __len__(self) -> int:
        ids = {s.snooze_id for group in self.by_area.values() for s in group}
        ids |= {s.snooze_id for group in self.by_plate.values() for s in group}
        return len(ids)

    def match(self, alert: AlertV1, now: datetime) -> Snooze | None:
        """The live snooze that holds this alert back (the one running longest), or None."""
        if not self:
            return None
        candidates: list[Snooze] = []
        for code in alert.area:
            candidates.extend(self.by_area.get(code, ()))
        for plate in alert_plates(alert):
            candidates.extend(self.by_plate.get(plate, ()))
        live = [s for s in candidates if s.applies_to(alert.rule_id) and now < s.until]
        return max(live, key=lambda s: (s.until, s.snooze_id)) if live else None


def split_snoozed(
    index: SnoozeIndex, alerts: Iterable[AlertV1], now: datetime
) -> tuple[list[AlertV1], list[tuple[AlertV1, Snooze]]]:
    """The alerts to send, and the ones held back with the snooze that holds each."""
    kept: list[AlertV1] = []
    held: list[tuple[AlertV1, Snooze]] = []
    for alert in alerts:
        snooze = index.match(alert, now)
        if snooze is None:
            kept.append(alert)
        else:
            held.append((alert, snooze))
    return kept, held
