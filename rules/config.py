"""Rule files: which rules run, how severe, for whom, with which parameters.

A deployment's rule file is YAML, one entry per rule of the catalogue::

    rules:
      anpr_hotlist_hit:
        enabled: true
        severity: high            # the default; an entry's own severity still wins
        audience:
          roles: [rtic_analyst, supervisor, officer]
          areas: [E05011118]        # also the team of this area
          officers_within_m: 1500   # and available officers this close (calls, incidents)
        params:
          min_confidence: 0.6
      repeat_calls:
        params:
          threshold: 3

Everything is optional; what a file does not say keeps the catalogue's
default. A file is checked whole before it is used: an unknown rule, an
unknown or out-of-range parameter, a wrong type, each is reported with its
line and reason (``RuleFileError``), and the engine keeps the last good set.
Pure: text in, rules out (``load_rule_file``); reloading is the stream's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import yaml

from rtic.errors import ConfigError
from rtic.schemas import Role, Severity
from rules.base import Rule


class RuleFileError(ConfigError):
    """A rule file that cannot be used, with every problem found (line and reason)."""

    def __init__(self, source: str, problems: list[tuple[int, str]]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source} line {line}: {why}" for line, why in problems))


@dataclass(frozen=True)
class ParamSpec:
    """A tunable parameter: its type and the range an analyst may set."""

    kind: type
    minimum: float | None = None
    maximum: float | None = None

    def check(self, value: Any) -> str | None:
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.kind) or (isinstance(value, bool) and self.kind is not bool):
            return f"must be {'a number' if self.kind is float else 'an integer' if self.kind is int else self.kind.__name__}"
        number = float(cast(float, value))
        if self.minimum is not None and number < self.minimum:
            return f"must be at least {self.minimum:g}"
        if self.maximum is not None and number > self.maximum:
            return f"must be at most {self.maximum:g}"
        return None


# What an analyst may tune, per rule (parameters not listed here are fixed by settings).
TUNABLE: dict[str, dict[str, ParamSpec]] = {
    "anpr_hotlist_hit": {
        "min_confidence": ParamSpec(float, 0.0, 1.0),
        "group_window_s": ParamSpec(float, 0, 86_400),
    },
    "repeat_calls": {
        "threshold": ParamSpec(int, 2, 50),
        "domestic_abuse_threshold": ParamSpec(int, 2, 50),
    },
    "vulnerable_place": {"distance_m": ParamSpec(float, 10, 2000)},
    "vehicle_linked_to_incident": {"window_minutes": ParamSpec(float, 5, 24 * 60)},
    "near_repeat_burglary": {"radius_m": ParamSpec(float, 50, 2000), "days": ParamSpec(int, 1, 60)},
    "emerging_incident": {
        "min_calls": ParamSpec(int, 2, 50),
        "radius_m": ParamSpec(float, 25, 2000),
        "window_minutes": ParamSpec(float, 1, 240),
    },
    "response_promise": {
        "assign_within_s": ParamSpec(float, 10, 3600),
        "attend_within_s": ParamSpec(float, 60, 7200),
        "grade2_attend_within_s": ParamSpec(float, 300, 86_400),
    },
    "unacknowledged_critical": {"ack_within_s": ParamSpec(float, 5, 3600)},
}


def _line(node: yaml.Node | None) -> int:
    return node.start_mark.line + 1 if node is not None else 1


def _child(node: yaml.Node | None, key: str) -> tuple[yaml.Node | None, yaml.Node | None]:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if getattr(k, "value", None) == key:
                return k, v
    return None, None


AUDIENCE_KEYS = ("roles", "areas", "officers_within_m")


def _audience(
    rule_id: str, audience: Any, node: yaml.Node | None, changes: dict[str, Any]
) -> list[tuple[int, str]]:
    """Check a rule's ``audience`` (roles, areas, officers_within_m) into ``changes``."""
    where = f"{rule_id}.audience"
    if not isinstance(audience, dict) or not audience:
        return [(_line(node), f"{where}: give any of {', '.join(AUDIENCE_KEYS)}")]
    problems = [
        (
            _line(_child(node, str(k))[0]),
            f"{where}: unknown key {k!r}; one of {', '.join(AUDIENCE_KEYS)}",
        )
        for k in audience
        if k not in AUDIENCE_KEYS
    ]
    if "roles" in audience:
        roles = audience["roles"]
        try:
            if not isinstance(roles, list):
                raise ValueError
            changes["audience_roles"] = tuple(Role(r) for r in roles)
        except ValueError:
            problems.append(
                (
                    _line(_child(node, "roles")[1]),
                    f"{where}.roles: a list, each one of {', '.join(r.value for r in Role)}",
                )
            )
    if "areas" in audience:
        areas = audience["areas"]
        if isinstance(areas, list) and all(isinstance(a, str) and a.strip() for a in areas):
            changes["audience_areas"] = tuple(a.strip() for a in areas)
        else:
            problems.append(
                (
                    _line(_child(node, "areas")[1]),
                    f"{where}.areas: a list of area codes (e.g. E05011118)",
                )
            )
    if "officers_within_m" in audience:
        value = audience["officers_within_m"]
        why = ParamSpec(float, 0, 20_000).check(value)
        if why:
            problems.append(
                (_line(_child(node, "officers_within_m")[1]), f"{where}.officers_within_m: {why}")
            )
        else:
            changes["audience_within_m"] = float(value)
    return problems


def load_rule_file(text: str, rules: Sequence[Rule], source: str = "rules file") -> list[Rule]:
    """The catalogue's rules as the file configures them, or ``RuleFileError`` listing every problem."""
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise RuleFileError(
            source,
            [(mark.line + 1 if mark else 1, f"not valid YAML: {getattr(exc, 'problem', exc)}")],
        ) from exc
    problems: list[tuple[int, str]] = []
    if data is None:
        return list(rules)
    if not isinstance(data, dict) or set(data) - {"rules"}:
        raise RuleFileError(source, [(1, "the file must be a mapping with one key, 'rules'")])
    _, rules_node = _child(root, "rules") if root is not None else (None, None)
    entries = data.get("rules") or {}
    if not isinstance(entries, dict):
        raise RuleFileError(source, [(_line(rules_node), "'rules' must map rule ids to settings")])
    by_id = {r.spec.rule_id: r for r in rules}
    configured: dict[str, Rule] = {}
    for rule_id, entry in entries.items():
        key_node, entry_node = (
            _child(rules_node, str(rule_id)) if rules_node is not None else (None, None)
        )
        line = _line(key_node)
        if rule_id not in by_id:
            problems.append(
                (line, f"unknown rule {rule_id!r}; the catalogue has {', '.join(sorted(by_id))}")
            )
            continue
        if entry is None:
            entry = {}
        if not isinstance(entry, dict):
            problems.append((line, f"{rule_id}: settings must be a mapping"))
            continue
        spec = by_id[rule_id].spec
        for field in set(entry) - {"enabled", "severity", "audience", "params"}:
            problems.append(
                (
                    _line(_child(entry_node, field)[0]) if entry_node else line,
                    f"{rule_id}: unknown setting {field!r}",
                )
            )
        changes: dict[str, Any] = {}
        if "enabled" in entry:
            if isinstance(entry["enabled"], bool):
                changes["enabled"] = entry["enabled"]
            else:
                problems.append(
                    (
                        _line(_child(entry_node, "enabled")[1]),
                        f"{rule_id}.enabled: must be true or false",
                    )
                )
        if "severity" in entry:
            try:
                changes["severity"] = Severity(entry["severity"])
            except ValueError:
                problems.append(
                    (
                        _line(_child(entry_node, "severity")[1]),
                        f"{rule_id}.severity: must be one of critical, high, medium, low",
                    )
                )
        if "audience" in entry:
            problems += _audience(
                rule_id, entry["audience"], _child(entry_node, "audience")[1], changes
            )
        if "params" in entry:
            params = entry["params"] or {}
            pnode = _child(entry_node, "params")[1]
            if not isinstance(params, dict):
                problems.append((_line(pnode), f"{rule_id}.params: must be a mapping"))
            else:
                tunable = TUNABLE.get(rule_id, {})
                merged = dict(spec.params)
                for name, value in params.items():
                    where = _line(_child(pnode, str(name))[1])
                    if name not in tunable:
                        fixed = (
                            f" ({name} is set by the engine's settings)"
                            if name in spec.params
                            else ""
                        )
                        problems.append(
                            (
                                where,
                                f"{rule_id}.params.{name}: not a tunable parameter{fixed}; tunable: {', '.join(sorted(tunable)) or 'none'}",
                            )
                        )
                        continue
                    why = tunable[name].check(value)
                    if why:
                        problems.append((where, f"{rule_id}.params.{name}: {why}"))
                        continue
                    merged[name] = float(value) if tunable[name].kind is float else value
                changes["params"] = merged
        configured[rule_id] = replace(by_id[rule_id], spec=replace(spec, **changes))
    if problems:
        raise RuleFileError(source, sorted(problems))
    return [configured.get(r.spec.rule_id, r) for r in rules]


def describe(rules: Sequence[Rule]) -> str:
    """The catalogue as an analyst reads it: id, state, severity, audience, parameters."""
    lines = []
    for r in rules:
        s = r.spec
        tunable = TUNABLE.get(s.rule_id, {})
        params = ", ".join(
            f"{k}={v}{'' if k in tunable else ' (fixed)'}" for k, v in s.params.items()
        )
        audience = ", ".join(x.value for x in s.audience_roles)
        if s.audience_areas:
            audience += f"; areas {', '.join(s.audience_areas)}"
        if s.audience_within_m is not None:
            audience += f"; officers within {s.audience_within_m:g} m"
        lines.append(
            f"{s.rule_id} [{'on' if s.enabled else 'off'}] {s.severity.value}, for {audience}\n"
            f"    {s.description}\n    params: {params or 'none'}"
        )
    return "\n".join(lines)
