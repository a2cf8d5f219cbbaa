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

Loading is three steps: *parse* (YAML text to the ``rules`` mapping and its
nodes, which know their lines), *validate* (each entry against ``RuleEntry``,
each ``params`` block against its rule's own ``Params`` model; pydantic's
errors are told back at the line of the key or value they are about) and
*build* (the catalogue's specs with what the file set). Pure: text in, rules
out (``load_rule_file``); reloading is the stream's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidationError,
    field_validator,
)
from pydantic_core import ErrorDetails

from rtic.errors import RuleError
from rtic.schemas import Role, Severity
from rules.base import Rule, RuleParams, RuleSpec, recent_calls_search

Problem = tuple[int, str]  # (line, reason)


class RuleFileError(RuleError):
    """A rule file that cannot be used, with every problem found (line and reason)."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source} line {line}: {why}" for line, why in problems))


# ---- what an entry may say -----------------------------------------------------------

AreaCode = Annotated[str, StringConstraints(strict=True, strip_whitespace=True, min_length=1)]


class AudienceEntry(BaseModel):
    """A rule's ``audience``: roles, further areas' teams, available officers this close."""

    model_config = ConfigDict(extra="forbid")

    roles: tuple[Role, ...] | None = None
    areas: tuple[AreaCode, ...] | None = None
    officers_within_m: float | None = Field(None, ge=0, le=20_000, strict=True)


class RuleEntry(BaseModel):
    """One rule's entry in a rule file, but its ``params`` (checked by the rule's own model).

    Only what the file says changes a rule (``model_fields_set``); a key given as
    null (or an empty audience) says nothing useful and is refused.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool | None = None
    severity: Severity | None = None
    audience: AudienceEntry | None = None

    @field_validator("enabled", "severity", "audience", mode="before")
    @classmethod
    def _given(cls, value: Any) -> Any:
        if value is None or value == {}:
            raise ValueError("empty")
        return value


# Reasons for a whole field, by its path in an entry, where pydantic's own words per
# item would say less ("roles: a list, each one of ..." rather than one per bad role).
REASONS: dict[tuple[str, ...], str] = {
    ("enabled",): "must be true or false",
    ("severity",): f"must be one of {', '.join(s.value for s in Severity)}",
    ("audience",): f"give any of {', '.join(AudienceEntry.model_fields)}",
    ("audience", "roles"): f"a list, each one of {', '.join(r.value for r in Role)}",
    ("audience", "areas"): "a list of area codes (e.g. E05011118)",
}


# ---- YAML nodes: where each thing was said -------------------------------------------


def _line(node: yaml.Node | None) -> int:
    return node.start_mark.line + 1 if node is not None else 1


def _child(node: yaml.Node | None, key: str) -> tuple[yaml.Node | None, yaml.Node | None]:
    """The key and value nodes of ``key`` in a mapping node (``None``s if not there)."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if getattr(k, "value", None) == key:
                return k, v
    return None, None


def _at(node: yaml.Node | None, path: Sequence[str]) -> tuple[yaml.Node | None, yaml.Node | None]:
    """The key and value nodes at ``path`` below a mapping node."""
    key: yaml.Node | None = None
    for part in path:
        key, node = _child(node, part)
    return key, node


# ---- parse ---------------------------------------------------------------------------


def _parse(text: str, source: str) -> tuple[dict[Any, Any], yaml.Node | None]:
    """The ``rules`` mapping of a file and its node, or ``RuleFileError`` if it has no such shape."""
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise RuleFileError(
            source,
            [(mark.line + 1 if mark else 1, f"not valid YAML: {getattr(exc, 'problem', exc)}")],
        ) from exc
    if data is None:
        return {}, None
    if not isinstance(data, dict) or set(data) - {"rules"}:
        raise RuleFileError(source, [(1, "the file must be a mapping with one key, 'rules'")])
    _, node = _child(root, "rules")
    entries = data.get("rules") or {}
    if not isinstance(entries, dict):
        raise RuleFileError(source, [(_line(node), "'rules' must map rule ids to settings")])
    return entries, node


# ---- validate ------------------------------------------------------------------------


def _reason(error: ErrorDetails) -> str:
    """Pydantic's reason for one value, as an analyst reads it."""
    ctx = error.get("ctx") or {}
    match error["type"]:
        case "greater_than_equal":
            return f"must be at least {ctx['ge']:g}"
        case "less_than_equal":
            return f"must be at most {ctx['le']:g}"
        case "int_type" | "int_parsing" | "int_from_float":
            return "must be an integer"
        case "float_type" | "float_parsing":
            return "must be a number"
        case "bool_type" | "bool_parsing":
            return "must be true or false"
    return str(error["msg"])


def _problems(
    exc: ValidationError,
    where: str,
    node: yaml.Node | None,
    unknown: Mapping[tuple[str, ...], str],
) -> list[Problem]:
    """One problem per field pydantic refused, at the line where the file says it.

    ``where`` prefixes each reason ("repeat_calls.params"); ``unknown`` says, per
    mapping path (``()``: the top), what to tell of a key that has no place there
    (``{at}``: that mapping's dotted path, ``{key}``: the key).
    """
    problems: dict[tuple[str, ...], Problem] = {}
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            key, _ = _at(node, loc)
            at = ".".join((where, *loc[:-1]))
            problems[loc] = (_line(key), unknown[loc[:-1]].format(at=at, key=loc[-1]))
            continue
        # A bad item of a list is told once, as its field (the path without the index).
        path = loc
        while path and isinstance(error["loc"][len(path) - 1], int):
            path = path[:-1]
        _, value = _at(node, path)
        why = REASONS.get(path) or _reason(error)
        problems.setdefault(path, (_line(value), f"{'.'.join((where, *path))}: {why}"))
    return list(problems.values())


def _check_entry(
    rule_id: str, entry: dict[Any, Any], node: yaml.Node | None
) -> tuple[RuleEntry | None, list[Problem]]:
    """An entry's settings but its ``params``: checked, or the problems found."""
    said = {str(k): v for k, v in entry.items() if k != "params"}
    try:
        return RuleEntry.model_validate(said), []
    except ValidationError as exc:
        unknown = {
            (): "{at}: unknown setting {key!r}",
            ("audience",): "{at}: unknown key {key!r}; one of "
            + ", ".join(AudienceEntry.model_fields),
        }
        return None, _problems(exc, rule_id, node, unknown)


def _check_params(
    spec: RuleSpec, params: Any, node: yaml.Node | None
) -> tuple[dict[str, Any], list[Problem]]:
    """The parameters a ``params`` block sets, checked by the rule's model, or the problems."""
    where = f"{spec.rule_id}.params"
    if params is None:
        return {}, []
    if not isinstance(params, dict):
        return {}, [(_line(node), f"{where}: must be a mapping")]
    model = type(spec.params)
    tunable = model.tunable()
    choice = f"tunable: {', '.join(sorted(tunable)) or 'none'}"
    given = {str(k): v for k, v in params.items()}
    # A fixed parameter is a field of the model, so pydantic would take it: refuse it here.
    fixed = [k for k in given if k in model.model_fields and k not in tunable]
    problems = [
        (
            _line(_child(node, name)[0]),
            f"{where}.{name}: not a tunable parameter ({name} is set by the engine's settings); "
            + choice,
        )
        for name in fixed
    ]
    given = {k: v for k, v in given.items() if k not in fixed}
    try:
        checked = model.model_validate(given)
    except ValidationError as exc:
        unknown: dict[tuple[str, ...], str] = {(): "{at}.{key}: not a tunable parameter; " + choice}
        return {}, problems + _problems(exc, where, node, unknown)
    return {name: getattr(checked, name) for name in given}, problems


def _check_needs(rules: Sequence[Rule], node: yaml.Node | None) -> list[Problem]:
    """A rule set whose enabled rules need different enrichments cannot be served."""
    try:
        recent_calls_search(rules)
    except RuleError as exc:
        return [(_line(node), str(exc))]
    return []


# ---- build ---------------------------------------------------------------------------


def _configured(spec: RuleSpec, entry: RuleEntry | None, params: dict[str, Any]) -> RuleSpec:
    """The spec with what the file set (and nothing else)."""
    changes: dict[str, Any] = {}
    if entry is not None:
        said = entry.model_fields_set
        if "enabled" in said:
            changes["enabled"] = entry.enabled
        if "severity" in said:
            changes["severity"] = entry.severity
        if entry.audience is not None:
            audience = entry.audience
            if audience.roles is not None:
                changes["audience_roles"] = audience.roles
            if audience.areas is not None:
                changes["audience_areas"] = audience.areas
            if audience.officers_within_m is not None:
                changes["audience_within_m"] = float(audience.officers_within_m)
    if params:
        # Only the parameters the file names: the others keep the catalogue's values
        # (which may come from settings).
        changes["params"] = spec.params.model_copy(update=params)
    return replace(spec, **changes)


def load_rule_file(text: str, rules: Sequence[Rule], source: str = "rules file") -> list[Rule]:
    """The catalogue's rules as a rule file configures them.

    Args:
        text: the file's YAML.
        rules: the catalogue (``rules.catalogue.default_rules``), in running order.
        source: the file's name, for the problems.

    Returns:
        The rules in the catalogue's order, each with what the file says of it.

    Raises:
        RuleFileError: listing every problem in the file, each with its line.
    """
    entries, entries_node = _parse(text, source)
    by_id = {r.spec.rule_id: r for r in rules}
    problems: list[Problem] = []
    configured: dict[str, Rule] = {}
    for rule_id, entry in entries.items():
        key_node, node = _child(entries_node, str(rule_id))
        if rule_id not in by_id:
            problems.append(
                (
                    _line(key_node),
                    f"unknown rule {rule_id!r}; the catalogue has {', '.join(sorted(by_id))}",
                )
            )
            continue
        entry = {} if entry is None else entry
        if not isinstance(entry, dict):
            problems.append((_line(key_node), f"{rule_id}: settings must be a mapping"))
            continue
        rule = by_id[rule_id]
        checked, found = _check_entry(rule_id, entry, node)
        params, found_in_params = _check_params(
            rule.spec, entry.get("params"), _child(node, "params")[1]
        )
        problems += found + found_in_params
        configured[rule_id] = replace(rule, spec=_configured(rule.spec, checked, params))
    result = [configured.get(r.spec.rule_id, r) for r in rules]
    problems += _check_needs(result, entries_node)
    if problems:
        raise RuleFileError(source, sorted(problems))
    return result


# ---- what an analyst reads -----------------------------------------------------------


def _param_lines(params: RuleParams) -> list[str]:
    """Each parameter: its value, its range (or that it is fixed) and what it means."""
    schema = type(params).model_json_schema()["properties"]
    lines = []
    for name, value in params.model_dump().items():
        field = schema[name]
        notes = []
        if field.get("fixed"):
            notes.append("fixed by settings")
        if "minimum" in field and "maximum" in field:
            notes.append(f"{field['minimum']:g} to {field['maximum']:g}")
        elif "minimum" in field:
            notes.append(f"at least {field['minimum']:g}")
        if "default" in field and field["default"] != value:
            notes.append(f"default {field['default']}")
        lines.append(f"      {name} = {value} ({'; '.join(notes)}): {field.get('description', '')}")
    return lines


def describe(rules: Sequence[Rule]) -> str:
    """The catalogue as an analyst reads it: id, state, severity, audience, parameters."""
    lines = []
    for r in rules:
        s = r.spec
        audience = ", ".join(x.value for x in s.audience_roles)
        if s.audience_areas:
            audience += f"; areas {', '.join(s.audience_areas)}"
        if s.audience_within_m is not None:
            audience += f"; officers within {s.audience_within_m:g} m"
        params = _param_lines(s.params)
        lines += [
            f"{s.rule_id} [{'on' if s.enabled else 'off'}] {s.severity.value}, for {audience}",
            f"    {s.description}",
            f"    params:{'' if params else ' none'}",
            *params,
        ]
    return "\n".join(lines)
