"""The worker's copy of hotlists and markers: what it keeps, what it answers, its bound."""

from __future__ import annotations

from typing import Any

from enrichers.reference_copy import ReferenceCopy
from rtic.schemas import CallV1, EventKind, IncidentEventV1, PlateReadV1, ReferenceChangeV1
from tests.conftest import make_call, make_hotlist_change, make_incident, make_read


def _change(**data: Any) -> ReferenceChangeV1:
    return ReferenceChangeV1.model_validate(data)


def _hits(copy: ReferenceCopy, vrm: str) -> list[dict[str, Any]]:
    read = PlateReadV1.model_validate(make_read(vrm=vrm))
    (block,) = copy.history(EventKind.ANPR, [read])
    assert block is not None
    return list(block["hotlist"])


def test_hotlist_hits_exact_and_misread_and_deletes() -> None:
    copy = ReferenceCopy()
    stolen = make_hotlist_change(vrm="SO51 ABC", reason="stolen")
    copy.apply([_change(**stolen)])
    assert [(h["reason"], h["match"]) for h in _hits(copy, "SO51ABC")] == [("stolen", "exact")]
    assert [h["match"] for h in _hits(copy, "S051ABC")] == ["misread"]  # 0 read for O
    assert _hits(copy, "XX11XXX") == []
    copy.apply([_change(kind="hotlist", op="delete", id=stolen["id"])])
    assert _hits(copy, "SO51ABC") == [] and len(copy) == 0


def test_an_expired_entry_is_no_hit() -> None:
    copy = ReferenceCopy()
    old = make_hotlist_change(vrm="EX11PRD")
    old["entry"]["expires_at"] = "2020-01-01T00:00:00+00:00"
    copy.apply([_change(**old)])
    assert _hits(copy, "EX11PRD") == []


def test_markers_of_calls_and_incidents() -> None:
    copy = ReferenceCopy()
    copy.apply(
        [
            _change(
                kind="address_marker",
                op="upsert",
                id="M-1",
                entry={"address": "12 Example Street, Birmingham B7 4AA", "marker": "dog"},
            ),
            _change(
                kind="person_marker",
                op="upsert",
                id="M-2",
                entry={"person_id": "P-200", "marker": "weapons"},
            ),
            _change(kind="geofence", op="delete", id="G-1"),  # not the copy's
        ]
    )
    call = CallV1.model_validate(make_call())
    incident = IncidentEventV1.model_validate(make_incident())
    (call_block,) = copy.history(EventKind.CALL, [call])
    (incident_block,) = copy.history(EventKind.INCIDENT, [incident])
    assert call_block is not None and incident_block is not None
    assert [m["marker"] for m in call_block["markers"]] == ["dog"]
    assert [m["marker"] for m in incident_block["markers"]] == ["weapons"]
    assert copy.history(EventKind.OFFICER_LOCATION, [call]) == [None]


def test_the_bound_refuses_new_entries_and_says_so() -> None:
    copy = ReferenceCopy(max_entries=2)
    changes = [make_hotlist_change(vrm=f"BD{i:02d}AAA") for i in range(3)]
    copy.apply([_change(**c) for c in changes])
    assert len(copy) == 2 and copy.refused == 1 and not copy.complete
    assert _hits(copy, "BD02AAA") == []
    updated = {**changes[0], "entry": {**changes[0]["entry"], "reason": "firearms"}}
    copy.apply([_change(**updated)])  # an entry already held still changes
    assert [h["reason"] for h in _hits(copy, "BD00AAA")] == ["firearms"]
    bad = _change(kind="hotlist", op="upsert", id="HL-bad", entry={"reason": "stolen"})
    ReferenceCopy().apply([bad])  # no plate: skipped (the pipeline dead-letters it)
