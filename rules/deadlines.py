"""Time-based rules: deadlines kept per incident or per alert, fired by a clock.

Two rules of the catalogue wait for something that does not happen:

- ``response_promise``: a grade 1 incident not assigned within
  ``assign_within_s`` (2 min) or not attended within ``attend_within_s``
  (15 min, the urban promise); a grade 2 incident not attended within
  ``grade2_attend_within_s`` (60 min). To the RTIC and supervisors.
- ``unacknowledged_critical``: a critical alert that nobody acknowledges,
  assigns or dismisses within ``ack_within_s`` (60 s) goes to the
  supervisors.

Each is in two pure parts. *Tracking* folds the events of one key into a small
JSON-able state (``track_incident``, ``track_alert``, ``track_ack``; ``None``
means nothing is left to wait for, so the state is dropped): the worker keeps
these states in Faust tables keyed like their topics, so they survive a restart
and move with their partitions. *Firing* is a rule function of (state, context)
that returns the alerts whose deadline has passed at ``ctx.now``; the edge calls
it on a timer, with the wall clock live or the event clock in replays
(``rtic/clock.py``). Alert ids are stable per key and stage, so firing again
(after a restart, say) repeats an id and is shown once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import Field

from rtic.schemas import AlertAckV1, AlertV1, IncidentEventV1, LocationV1, Role, Severity
from rules.base import Rule, RuleContext, RuleParams, RuleSpec, make_alert

# The grades whose attendance is promised, and what each stage means.
PROMISED_GRADES = (1, 2)
STAGES = {
    "not_assigned": "not assigned",
    "not_attended": "not attended",
}


def _iso(at: datetime) -> str:
    return at.isoformat()


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


# ---- response promise --------------------------------------------------------------


class ResponsePromiseParams(RuleParams):
    """The promises an analyst may set, in seconds from the incident's creation."""

    assign_within_s: float = Field(
        120.0, ge=10, le=3600, description="Grade 1: a unit assigned within this many seconds."
    )
    attend_within_s: float = Field(
        900.0, ge=60, le=7200, description="Grade 1: a unit arrived within this many seconds."
    )
    grade2_attend_within_s: float = Field(
        3600.0, ge=300, le=86_400, description="Grade 2: a unit arrived within this many seconds."
    )


RESPONSE_PROMISE_SPEC = RuleSpec(
    rule_id="response_promise",
    title="Response promise at risk",
    description="A grade 1 incident not assigned within `assign_within_s` or not "
    "attended within `attend_within_s`; a grade 2 not attended within "
    "`grade2_attend_within_s`. On a timer: the wall clock live, the event clock in replays.",
    kinds=frozenset(),
    tracks="incident",
    severity=Severity.HIGH,
    audience_roles=(Role.RTIC_ANALYST, Role.SUPERVISOR),
    params=ResponsePromiseParams(),
)


def track_incident(
    state: dict[str, Any] | None, event: IncidentEventV1, area_codes: list[str]
) -> dict[str, Any] | None:
    """The incident's promise state after ``event``; ``None`` once nothing is owed.

    Arrival or closure ends the promise; a grade outside 1 and 2 has none. The
    clock starts at ``created`` (or at the first event seen of an incident whose
    creation was missed); the first assignment, or any event naming units,
    meets the assignment promise.
    """
    if event.event in ("arrived", "closed") or event.grade not in PROMISED_GRADES:
        return None
    st: dict[str, Any] = (
        dict(state) if state else {"incident_id": event.incident_id, "created_at": _iso(event.at)}
    )
    if event.event == "created" and event.at < _time(st["created_at"]):
        st["created_at"] = _iso(event.at)
    st["grade"] = event.grade
    st["category"] = event.category
    st["location"] = event.location.model_dump(mode="json", exclude_none=True)
    st["area"] = area_codes
    if event.units or event.event == "assigned":
        st.setdefault("assigned_at", _iso(event.at))
        st["units"] = list(event.units or st.get("units", []))
    return st


def promise_deadlines(state: dict[str, Any], params: ResponsePromiseParams) -> dict[str, datetime]:
    """The deadlines still open for an incident's state: stage -> when it passes."""
    created = _time(state["created_at"])
    out: dict[str, datetime] = {}
    if state["grade"] == 1:
        if "assigned_at" not in state:
            out["not_assigned"] = created + timedelta(seconds=params.assign_within_s)
        out["not_attended"] = created + timedelta(seconds=params.attend_within_s)
    elif state["grade"] == 2:
        out["not_attended"] = created + timedelta(seconds=params.grade2_attend_within_s)
    return out


def _minutes(seconds: float) -> str:
    """A duration as an officer reads it: "45 seconds", "2 minutes", "2.5 hours"."""
    if round(seconds) < 120:
        n = round(seconds)
        return f"{n} second{'' if n == 1 else 's'}"
    if seconds < 2 * 3600:
        return f"{round(seconds / 60, 1):g} minutes"
    return f"{round(seconds / 3600, 1):g} hours"


def response_promise(state: Any, ctx: RuleContext[ResponsePromiseParams]) -> list[AlertV1]:
    """An alert for each promise of the incident that has passed at ``ctx.now``."""
    assert isinstance(state, dict)
    created = _time(state["created_at"])
    location = LocationV1.model_validate(state["location"])
    alerts = []
    for stage, deadline in promise_deadlines(state, ctx.params).items():
        if ctx.now < deadline:
            continue
        allowed = (deadline - created).total_seconds()
        late = (ctx.now - created).total_seconds()
        what = STAGES[stage]
        where = f" at {location.address}" if location.address else ""
        units = state.get("units", [])
        assigned = (
            f"Assigned to {', '.join(units)} at {_time(state['assigned_at']):%H:%M:%S}Z, nobody has arrived."
            if "assigned_at" in state
            else "No unit is assigned."
        )
        alerts.append(
            make_alert(
                ctx,
                facts=(state["incident_id"], stage),
                title=f"Grade {state['grade']} {what} in {_minutes(allowed)}: {state['incident_id']}",
                summary=(
                    f"Grade {state['grade']} {state['category'].replace('_', ' ')} incident"
                    f"{where}, created {created:%H:%M:%S}Z, {what} after {_minutes(late)}. {assigned}"
                ),
                source_event_ids=[state["incident_id"]],
                location=location,
                officers=units,
                details={
                    "incident_id": state["incident_id"],
                    "grade": state["grade"],
                    "stage": stage,
                    "created_at": state["created_at"],
                    "deadline": deadline.isoformat(),
                    "assigned_units": units,
                    "why": (
                        f"The promise for a grade {state['grade']} incident is to be {what.split()[-1]} "
                        f"within {_minutes(allowed)}; it was created at {created:%H:%M:%S}Z and at "
                        f"{ctx.now:%H:%M:%S}Z it is still {what}. Escalated to the RTIC and supervisors."
                    ),
                },
            )
        )
    return alerts


# ---- unacknowledged critical alert --------------------------------------------------

UNACKNOWLEDGED_CRITICAL = "unacknowledged_critical"


class UnacknowledgedCriticalParams(RuleParams):
    """How long a critical alert may wait for an answer."""

    ack_within_s: float = Field(
        60.0,
        ge=5,
        le=3600,
        description="Seconds a critical alert may go without an acknowledgement, assignment "
        "or dismissal before it goes to the supervisors.",
    )


UNACKNOWLEDGED_CRITICAL_SPEC = RuleSpec(
    rule_id=UNACKNOWLEDGED_CRITICAL,
    title="Unacknowledged critical alert",
    description="A critical alert that nobody acknowledges, assigns or dismisses "
    "within `ack_within_s` is escalated to the supervisors.",
    kinds=frozenset(),
    tracks="critical_alert",
    severity=Severity.CRITICAL,
    audience_roles=(Role.SUPERVISOR,),
    params=UnacknowledgedCriticalParams(),
)


def track_alert(state: dict[str, Any] | None, alert: AlertV1) -> dict[str, Any] | None:
    """Start waiting for an acknowledgement of a critical alert (the first version starts
    the clock; updates and escalations do not)."""
    if state is not None:
        return state
    if alert.severity is not Severity.CRITICAL or alert.rule_id == UNACKNOWLEDGED_CRITICAL:
        return None
    return {
        "alert_id": alert.alert_id,
        "rule_id": alert.rule_id,
        "title": alert.title,
        "created_at": _iso(alert.created_at),
        "source_event_ids": alert.source_event_ids,
        "location": alert.location.model_dump(mode="json", exclude_none=True)
        if alert.location
        else None,
        "area": alert.area,
    }


def track_ack(state: dict[str, Any] | None, ack: AlertAckV1) -> dict[str, Any] | None:
    """Any answer from a person (ack, assign, dismiss) ends the wait."""
    return None


def unacknowledged_critical(
    state: Any, ctx: RuleContext[UnacknowledgedCriticalParams]
) -> list[AlertV1]:
    """The escalation of a critical alert left unanswered for ``ack_within_s``."""
    assert isinstance(state, dict)
    created = _time(state["created_at"])
    within = ctx.params.ack_within_s
    if ctx.now < created + timedelta(seconds=within):
        return []
    waited = (ctx.now - created).total_seconds()
    location = LocationV1.model_validate(state["location"]) if state.get("location") else None
    return [
        make_alert(
            ctx,
            facts=(state["alert_id"],),
            title=f"Unacknowledged critical alert: {state['title']}",
            summary=(
                f"Nobody has acknowledged, assigned or dismissed this critical alert "
                f"({state['rule_id'].replace('_', ' ')}) raised at {created:%H:%M:%S}Z, "
                f"{_minutes(waited)} ago."
            ),
            source_event_ids=list(state["source_event_ids"]),
            location=location,
            details={
                "escalates": state["alert_id"],
                "escalated_rule_id": state["rule_id"],
                "raised_at": state["created_at"],
                "why": (
                    f"A critical alert must be answered within {_minutes(within)}; "
                    f"'{state['title']}' has had no acknowledgement for {_minutes(waited)}. "
                    "Escalated to the supervisors."
                ),
            },
        )
    ]


RESPONSE_PROMISE_RULE = Rule(RESPONSE_PROMISE_SPEC, response_promise)
UNACKNOWLEDGED_CRITICAL_RULE = Rule(UNACKNOWLEDGED_CRITICAL_SPEC, unacknowledged_critical)
