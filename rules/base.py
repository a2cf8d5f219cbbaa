"""What a rule is: a pure function of (event, context) that returns alerts.

Rules are described by data (``RuleSpec``: id, title, severity, audience,
parameters) and registered in one catalogue (``rules/catalogue.py``). A rule's
parameters are a pydantic model (``RuleParams``): each field its default, its
bounds and a description an analyst reads; a rule file (``rules/config.py``)
may set the tunable ones. A rule that needs more enrichment than the always-on
place and history says so (``RuleSpec.needs``); the stream asks the configured
rule set (``recent_calls_search``), never a rule by its id. The engine
(``evaluate``) runs every enabled rule that accepts the event's kind, isolating
each: a rule that raises is logged and counted against that rule, and the other
rules still run.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field

from rtic.errors import RuleError
from rtic.schemas import AlertV1, AudienceV1, EventKind, LocationV1, Role, Severity

log = logging.getLogger(__name__)


class RuleParams(BaseModel):
    """A rule's parameters; each rule module subclasses it as ``Params``.

    Strict: a rule file's ``"3"`` or ``true`` is not a number (an integer is a
    number, though). Frozen: a configured rule set is shared by every batch.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @classmethod
    def tunable(cls) -> list[str]:
        """The parameters a rule file may set (the others are fixed by the engine's settings)."""
        return [name for name, f in cls.model_fields.items() if not _is_fixed(f.json_schema_extra)]


def fixed(
    default: Any, description: str, *, ge: float | None = None, le: float | None = None
) -> Any:
    """A parameter the engine's settings set, shown to analysts but not tunable in a rule file."""
    return Field(default, description=description, json_schema_extra={"fixed": True}, ge=ge, le=le)


def _is_fixed(extra: object) -> bool:
    return isinstance(extra, dict) and bool(extra.get("fixed"))


@dataclass(frozen=True)
class RecentCallsNearby:
    """The emerging-incident search: for each call, the other calls within ``radius_m``
    in the last ``window_s`` (``recent_calls_nearby`` in the call's history block)."""

    radius_m: float
    window_s: float


# What a rule may need beyond the always-on place and history enrichment (one kind today).
EnrichmentNeed = RecentCallsNearby


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
    params: RuleParams = field(default_factory=RuleParams)
    enabled: bool = True
    # Time-based rules: what they keep a state for ("incident", "critical_alert"); they
    # run on a timer over those states (``evaluate_timed``), not on events.
    tracks: str | None = None
    # The enrichment the rule needs with these parameters, beyond place and history.
    needs: Callable[[Any], EnrichmentNeed | None] | None = None

    def enrichment_needed(self) -> EnrichmentNeed | None:
        """What this rule, as configured, needs computed before it runs (``None``: nothing more)."""
        return self.needs(self.params) if self.enabled and self.needs is not None else None


P = TypeVar("P", bound=RuleParams)


@dataclass(frozen=True, slots=True)
class RuleContext(Generic[P]):
    """What a rule may know besides the event: its enrichment, parameters and ``now``.

    A rule names its own parameter model, ``ctx: RuleContext[Params]``, and reads
    ``ctx.params.threshold``; the catalogue pairs each rule with a spec of that model.
    """

    now: datetime
    enrichment: Mapping[str, Any]
    spec: RuleSpec

    @property
    def params(self) -> P:
        return self.spec.params  # type: ignore[return-value]

    @property
    def area_codes(self) -> list[str]:
        return list(self.enrichment.get("area_codes", []))


RuleFn = Callable[[Any, RuleContext[Any]], list[AlertV1]]


@dataclass(frozen=True)
class Rule:
    """A rule: its description (with its parameters) and its function."""

    spec: RuleSpec
    fn: RuleFn


def recent_calls_search(rules: Sequence[Rule]) -> RecentCallsNearby | None:
    """The emerging-incident search the enabled rules need for calls, or ``None``.

    A batch's enrichment holds one such search, so enabled rules that need
    different ones cannot both be served: ``RuleError`` (the rule file loader
    refuses such a set, so a running stream never meets one).
    """
    wanted = {
        r.spec.rule_id: need for r in rules if (need := r.spec.enrichment_needed()) is not None
    }
    if len(set(wanted.values())) > 1:
        raise RuleError(
            "rules need different recent-call searches, the enrichment holds one: "
            + "; ".join(
                f"{rule_id} within {need.radius_m:g} m in the last {need.window_s:g} s"
                for rule_id, need in wanted.items()
            )
        )
    return next(iter(wanted.values()), None)


def stable_alert_id(rule_id: str, *facts: str) -> str:
    """The same rule and facts always give the same id (so redeliveries are recognisable)."""
    # JSON-encode the list, so ("a\x1fb",) and ("a", "b") cannot give the same id.
    digest = hashlib.sha256(orjson.dumps([rule_id, *facts])).hexdigest()[:20]
    return f"{rule_id}-{digest}"


def make_alert(
    ctx: RuleContext[Any],
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
    group_window_s: float = 0.0,
    group_label: str | None = "hits",
) -> AlertV1:
    """An alert from a rule, with its stable id, area and audience filled in.

    ``group``: facts that repeated hits share (a plate's hotlist entry, say). Within
    ``group_window_s`` of each other (0: never) the stream folds them into one open
    alert that is updated (same id, higher version) instead of raising a new one each
    time; ``group_label`` names what is counted in the updated summary ("3 hits
    since ..."), or ``None`` where the rule's own summary already counts.
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
        details = {**details, "group": {"window_s": group_window_s, "label": group_label}}
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
        details={**details, "rule": {"id": spec.rule_id, "params": spec.params.model_dump()}},
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


def evaluate_batch(
    rules: Sequence[Rule],
    kind: EventKind,
    events: Iterable[tuple[BaseModel, Mapping[str, Any]]],
    now: datetime,
    stats: RuleStats | None = None,
) -> list[AlertV1]:
    """``evaluate`` on each ``(event, enrichment)`` of one kind, in order, the alerts of
    all of them in one list; the rules for ``kind`` are chosen once for the batch."""
    chosen = [(r.spec, r.fn) for r in rules if r.spec.enabled and kind in r.spec.kinds]
    if not chosen:
        return []
    # ``_run``'s loop, inline (it runs for every event of every batch), its counters
    # added once for the batch.
    alerts: list[AlertV1] = []
    runs = 0
    failed: Counter[str] = Counter()
    fired: Counter[str] = Counter()
    for event, enrichment in events:
        runs += 1
        for spec, fn in chosen:
            try:
                produced = fn(event, RuleContext(now, enrichment, spec))
            except Exception:
                log.exception("rule %s failed on a %s event", spec.rule_id, kind.value)
                failed[spec.rule_id] += 1
                continue
            if produced:
                fired[spec.rule_id] += len(produced)
                alerts.extend(produced)
    if stats is not None:
        for spec, _ in chosen:
            if ok := runs - failed[spec.rule_id]:
                stats.evaluated[spec.rule_id] += ok
                stats.fired[spec.rule_id] += fired[spec.rule_id]
            if failed[spec.rule_id]:
                stats.errors[spec.rule_id] += failed[spec.rule_id]
    return alerts


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
        ctx: RuleContext[Any] = RuleContext(now=now, enrichment=enrichment, spec=spec)
        try:
            produced = rule.fn(subject, ctx)
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
