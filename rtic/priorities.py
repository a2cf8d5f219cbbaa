"""Patrol priorities (``rtic.priorities.v1``, key ``"force"``): the areas where
victim-reported crime is most expected over the next period, each with the recent
calls behind it.

Written by the gateway (``push/priorities.py``) every ``RTIC_PRIORITIES_INTERVAL_S``
when something changed, and answered by ``GET /api/desk/priorities`` (analysts,
supervisors). The model and its limits: ``analytics/hotspots.py`` and docs/analytics.md.
Nothing in a priority names a person: a reason is a call's id, category, time and
area, never its caller, address or text.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriorityReasonV1(_Model):
    """One recent event behind a priority, and how much of the score it carries."""

    event_id: str = Field(description="the event's own id, whole (a call_id)")
    kind: Literal["call"] = "call"
    category: str
    at: AwareDatetime
    area_code: str = Field(description="the LSOA the event was in")
    relation: Literal["same_area", "nearby_area"]
    weight: float = Field(description="expected events of the next period it accounts for")


class PriorityV1(_Model):
    rank: int = Field(ge=1)
    area_code: str = Field(description="LSOA code (2011)")
    area_name: str
    lat: float
    lon: float
    score: float = Field(description="expected victim-reported crime calls, next period")
    background: float = Field(description="the area's usual level (part of score)")
    repeat: float = Field(description="recent events in the area itself (part of score)")
    near: float = Field(description="recent events in areas around it (part of score)")
    events_in_area: int = Field(description="modelled events in the area in the window")
    why: list[PriorityReasonV1]


class PriorityPeriodV1(_Model):
    start: AwareDatetime
    end: AwareDatetime


class PrioritiesV1(_Model):
    """The ranked areas for one period (highest first)."""

    priorities_id: str
    generated_at: AwareDatetime
    period: PriorityPeriodV1 = Field(description="the period forecast")
    window: PriorityPeriodV1 = Field(description="the recent events the model was fitted on")
    unit: Literal["lsoa"] = "lsoa"
    categories: list[str] = Field(description="the call categories modelled")
    events_used: int
    model: dict[str, float | int | bool | str]
    priorities: list[PriorityV1]
