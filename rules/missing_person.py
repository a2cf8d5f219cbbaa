"""Missing person: a call about, or from, a person linked to an open missing-person report.

Open reports reach the engine as reference data: a person marker ``missing_person``
on the missing person (and on people linked to them), and hotlist entries with
reason ``missing_person`` for linked vehicles (those raise ``anpr_hotlist_hit``
with high severity). This rule covers calls.
"""

from __future__ import annotations

from pydantic import BaseModel

from rtic.schemas import AlertV1, CallV1, EventKind, Role, Severity
from rules.base import Rule, RuleContext, RuleParams, RuleSpec, make_alert


class Params(RuleParams):
    """None: a marker is a match."""


SPEC = RuleSpec(
    rule_id="missing_person",
    title="Missing person",
    description="A call from or about a person, or at an address, linked to an open "
    "missing-person report (marker `missing_person`).",
    kinds=frozenset({EventKind.CALL}),
    severity=Severity.HIGH,
    audience_roles=(Role.RTIC_ANALYST, Role.SUPERVISOR, Role.OFFICER),
    params=Params(),
)


def missing_person_match(event: BaseModel, ctx: RuleContext[Params]) -> list[AlertV1]:
    """An alert when the call's history carries a ``missing_person`` marker."""
    assert isinstance(event, CallV1)
    linked = [
        m
        for m in ctx.enrichment.get("history", {}).get("markers", [])
        if m.get("marker") == "missing_person"
    ]
    if not linked:
        return []
    who = ", ".join(sorted({str(m.get("person_id") or m.get("address")) for m in linked}))
    return [
        make_alert(
            ctx,
            facts=(event.call_id, who),
            severity=Severity.HIGH,
            title=f"Call linked to an open missing-person report ({who})",
            summary=(
                f"{event.category.replace('_', ' ')} call {event.call_id}"
                + (f" from {event.location.address}" if event.location.address else "")
                + f" involves {who}, linked to an open missing-person report."
            ),
            source_event_ids=[event.call_id],
            location=event.location,
            details={
                "markers": linked,
                "why": f"The caller or the address carries a missing-person marker ({who}): tell the investigating team now.",
            },
        )
    ]


RULE = Rule(SPEC, missing_person_match)
