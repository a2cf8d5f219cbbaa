"""What a rule is: a pure function of (event, context) that returns alerts.

Rules are described by data (``RuleSpec``: id, title, severity, audience,
parameters) and registered in one catalogue (``rules/catalogue.py``). The
engine (``evaluate``) runs every enabled rule that accepts the event's kind,
isolating each: a rule that raises is logged and counted against that rule,
and the other rules still run.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel

from rtic.schemas import AlertV1, AudienceV1, EventKind, LocationV1, Role, Severity

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RuleSpec:
    """A rule's description: what an analyst reads and tunes."""

    rule_id: str
    title: str
    description: str
    kinds: frozenset[EventKind]
    severity: Severity
    audience_roles: tuple[Role, ...] = (Role.RTIC_ANALYST, Role.SUPERVISOR)
    # Also for the teams of these areas (codes), and for available officers whose last
    # fix is within this many metres of the event (from its nearest units; calls and
    # incidents carry them).
    audience_areas: tuple[str, ...] = ()
    audience_within_m: float | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    enabled: bool = True
    # Time-based rules: what they keep a state for ("incident", "critical_alert"); they
    # run on a timer over those states (``evaluate_timed``), not on events.
    tracks: str | None = None


@dataclass(frozen=True)
class RuleContext:
    """What a rule may know besides the event: its enrichment, parameters and ``now``."""

    now: datetime
    enrichment: Mapping[str, Any]
    spec: RuleSpec

    @property
    def params(self) -> Mapping[str, Any]:
        return self.spec.params

    @property
    def area_codes(self) -> list[str]:
        return list(self.enrichment.get("area_codes", []))


RuleFn = Callable[[Any, RuleContext], list[AlertV1]]


@dataclass(frozen=True)
class Rule:
    spec: RuleSpec
    fn: RuleFn


def stable_alert_id(rule_id: str, *facts: str) -> str:
    """The same rule and facts always give the same id (so redeliveries are recognisable)."""
    # JSON-encode the list, so ("a\x1fb",) and ("a", "b") cannot give the same id.
    digest = hashlib.sha256(orjson.dumps([rule_id, *facts])).hexdigest()[:20]
    return f"{rule_id}-{digest}"


def make_alert(
    ctx: RuleContext,
    *,
    facts: Sequence[str],
    title: str,
    summary: str,
    source_event_ids: list[str],
    location: LocationV1 | None,
    details: dict[str, Any],
    severity: Severity | None = None,
    officers: Sequence[str] = (),
    group: Sequence[str] | None = None,
    group_window_s: float | None = None,
    group_label: str | None = "hits",
) -> AlertV1:
    """An alert from a rule, with its stable id, area and audience filled in.

    ``group``: facts that repeated hits share (a plate's hotlist entry, say). Within
    ``group_window_s`` (default: the rule's parameter of that name) of each other the
    stream folds them into one open alert that is updated (same id, higher version)
    instead of raising a new one each time; ``group_label`` names what is counted in
    the updated summary ("3 hits since ..."), or ``None`` where the rule's own summary
    already counts.
    """
    spec = ctx.spec
    near: list[str] = []
    if spec.audience_within_m is not None:
        near = [
            str(u["officer_id"])
            for u in ctx.enrichment.get("nearest_units", [])
            if u.get("officer_id") and float(u.get("distance_m", 1e12)) <= spec.audience_within_m
        ]
    if group:
        window = group_window_s
        if window is None:
            window = float(spec.params.get("group_window_s", 0))
        details = {**details, "group": {"window_s": window, "label": group_label}}
    return AlertV1(
        group=stable_alert_id(spec.rule_id, *group) if group else None,
        alert_id=stable_alert_id(spec.rule_id, *facts),
        rule_id=spec.rule_id,
        severity=severity or spec.severity,
        title=title,
        summary=summary,
        created_at=ctx.now,
        source_event_ids=source_event_ids,
        location=location,
        area=ctx.area_codes,
        audience=AudienceV1(
            roles=list(spec.audience_roles),
            areas=list(dict.fromkeys([*ctx.area_codes, *spec.audience_areas])),
            officers=list(dict.fromkeys([*officers, *near])),
        ),
        details={**details, "rule": {"id": spec.rule_id, "params": dict(spec.params)}},
    )


@dataclass
class RuleStats:
    """Counters per rule: evaluations, alerts raised, errors."""

    evaluated: Counter[str] = field(default_factory=Counter)
    fired: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)


def evaluate(
    rules: Sequence[Rule],
    kind: EventKind,
    event: BaseModel,
    enrichment: Mapping[str, Any],
    now: datetime,
    stats: RuleStats | None = None,
) -> list[AlertV1]:
    """Run every enabled rule for ``kind`` on one event; a failing rule never stops the others."""
    chosen = [r for r in rules if r.spec.enabled and kind in r.spec.kinds]
    return _run(chosen, event, enrichment, now, stats, f"a {kind.value} event")


def evaluate_timed(
    rules: Sequence[Rule],
    tracks: str,
    state: Mapping[str, Any],
    now: datetime,
    stats: RuleStats | None = None,
) -> list[AlertV1]:
    """Run every enabled time-based rule that keeps ``tracks`` states on one such state.

    The state's ``area`` (area codes) stands in for the enrichment of an event.
    """
    chosen = [r for r in rules if r.spec.enabled and r.spec.tracks == tracks]
    enrichment = {"area_codes": list(state.get("area") or [])}
    return _run(chosen, state, enrichment, now, stats, f"a {tracks} state")


def _run(
    rules: Sequence[Rule],
    subject: Any,
    enrichment: Mapping[str, Any],
    now: datetime,
    stats: RuleStats | None,
    what: str,
) -> list[AlertV1]:
    alerts: list[AlertV1] = []
    for rule in rules:
        spec = rule.spec
        try:
            produced = rule.fn(subject, RuleContext(now=now, enrichment=enrichment, spec=spec))
        except Exception:
            log.exception("rule %s failed on %s", spec.rule_id, what)
            if stats is not None:
                stats.errors[spec.rule_id] += 1
            continue
        if stats is not None:
            stats.evaluated[spec.rule_id] += 1
            stats.fired[spec.rule_id] += len(produced)
        alerts.extend(produced)
    return alerts
