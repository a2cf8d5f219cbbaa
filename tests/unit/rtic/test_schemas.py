"""Contract schemas: what is accepted, what is refused, and with which reason."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from rtic.errors import ContractError, DecodeError, ValidationFailed
from rtic.schemas import (
    AlertV1,
    CallV1,
    EventKind,
    PlateReadBatchV1,
    PlateReadV1,
    ReferenceChangeV1,
    Severity,
    decode_event,
    decode_json,
    dumps,
    validate_event,
)
from tests.conftest import (
    NOW,
    make_call,
    make_hotlist_change,
    make_incident,
    make_officer_location,
    make_read,
)


def test_valid_messages_of_every_input_topic() -> None:
    assert isinstance(validate_event(EventKind.CALL, make_call()), CallV1)
    validate_event(EventKind.INCIDENT, make_incident())
    validate_event(EventKind.OFFICER_LOCATION, make_officer_location())
    assert isinstance(validate_event(EventKind.ANPR, make_read()), PlateReadV1)
    batch = validate_event(EventKind.ANPR, {"reads": [make_read(), make_read()]})
    assert isinstance(batch, PlateReadBatchV1) and len(batch.reads) == 2
    assert isinstance(validate_event(EventKind.REFERENCE, make_hotlist_change()), ReferenceChangeV1)


def test_extra_fields_are_kept() -> None:
    data, model = decode_event(EventKind.CALL, orjson.dumps(make_call(force_ref="WMP/123")))
    assert data["force_ref"] == "WMP/123"
    assert model.model_dump()["force_ref"] == "WMP/123"


@pytest.mark.parametrize(
    ("raw", "error", "words"),
    [
        (b"", DecodeError, "empty"),
        (b"\xff\xfe", DecodeError, "not UTF-8 JSON"),
        (b"{not json", DecodeError, "not UTF-8 JSON"),
        (b"[1, 2]", DecodeError, "expected an object"),
        (orjson.dumps(make_call(channel="fax")), ValidationFailed, "channel"),
        (orjson.dumps(make_call(received_at="2026-11-24T10:00:00")), ValidationFailed, "timezone"),
        (orjson.dumps(make_call(location={"lat": 95, "lon": 0})), ValidationFailed, "location.lat"),
        (orjson.dumps(make_call(grade=7)), ValidationFailed, "grade"),
    ],
)
def test_bad_calls_are_refused_with_a_reason(
    raw: bytes, error: type[Exception], words: str
) -> None:
    with pytest.raises(error) as exc:
        decode_event(EventKind.CALL, raw)
    assert words in str(exc.value)


def test_naive_times_are_refused_everywhere() -> None:
    with pytest.raises(ValidationFailed):
        validate_event(EventKind.ANPR, make_read(read_at="2026-11-24T10:00:00"))
    with pytest.raises(ValidationFailed):
        validate_event(EventKind.INCIDENT, make_incident(at="2026-11-24 10:00"))


def test_reference_entries_are_validated_by_kind() -> None:
    with pytest.raises(ValidationFailed, match="hotlist entry"):
        validate_event(EventKind.REFERENCE, make_hotlist_change(reason="parking"))
    with pytest.raises(ValidationFailed, match="needs an 'entry'"):
        validate_event(EventKind.REFERENCE, {"kind": "hotlist", "op": "upsert", "id": "X"})
    with pytest.raises(ValidationFailed, match="person_marker entry"):
        validate_event(
            EventKind.REFERENCE,
            {"kind": "person_marker", "op": "upsert", "id": "M", "entry": {"marker": "x"}},
        )
    validate_event(EventKind.REFERENCE, {"kind": "hotlist", "op": "delete", "id": "X"})


def test_empty_camera_batch_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="reads"):
        validate_event(EventKind.ANPR, {"reads": []})


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise_anything_but_contract_errors(raw: bytes) -> None:
    for kind in EventKind:
        try:
            decode_event(kind, raw)
        except ContractError:
            pass


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["call_id", "channel", "location", "reads", "kind", "op", "id", "vrm"]),
        st.one_of(
            st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2)
        ),
    )
)
def test_arbitrary_objects_never_raise_anything_but_contract_errors(data: dict) -> None:
    for kind in EventKind:
        try:
            validate_event(kind, data)
        except ContractError:
            pass


# ---- decoding: what comes back, and from which inputs ------------------------------------


def test_decode_event_returns_the_object_as_sent_from_bytes_or_text() -> None:
    call = make_call(note={"nested": [1, 2]})
    for raw in (orjson.dumps(call), orjson.dumps(call).decode()):
        data, model = decode_event(EventKind.CALL, raw)
        assert data == call
        assert isinstance(model, CallV1) and model.call_id == call["call_id"]


@pytest.mark.parametrize("raw", [None, b"", ""])
def test_nothing_at_all_is_an_empty_message(raw: bytes | str | None) -> None:
    with pytest.raises(DecodeError, match="empty message"):
        decode_json(raw)


@pytest.mark.parametrize("raw", [b"null", b"1", b'"text"', b"true", b"NaN"])
def test_json_that_is_not_an_object_is_a_decode_error(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_json(raw)


def test_a_reason_names_at_most_three_problems_and_counts_the_rest() -> None:
    bad = {"call_id": "", "received_at": "yesterday", "channel": "fax", "category": "", "grade": 9}
    with pytest.raises(ValidationFailed) as exc:
        validate_event(EventKind.CALL, bad)
    reason = str(exc.value)
    assert reason.count(";") == 3 and reason.endswith("more")
    assert reason.startswith("call_id:")


def test_a_camera_batch_with_one_bad_read_is_refused_naming_the_read() -> None:
    with pytest.raises(ValidationFailed, match=r"reads\.1\.lat"):
        validate_event(EventKind.ANPR, {"reads": [make_read(), make_read(lat=91)]})


def test_a_camera_batch_is_capped() -> None:
    read = make_read()
    assert len(PlateReadBatchV1.model_validate({"reads": [read] * 10_000}).reads) == 10_000
    with pytest.raises(ValidationFailed, match="reads"):
        validate_event(EventKind.ANPR, {"reads": [read] * 10_001})


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"confidence": 1.5}, "confidence"),
        ({"vrm": ""}, "vrm"),
        ({"vrm": "X" * 17}, "vrm"),
        ({"lon": -181}, "lon"),
        ({"camera_id": ""}, "camera_id"),
    ],
)
def test_bad_reads_are_refused_with_the_field(overrides: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationFailed, match=words):
        validate_event(EventKind.ANPR, make_read(**overrides))


def test_officer_status_and_incident_event_are_closed_lists() -> None:
    with pytest.raises(ValidationFailed, match="status"):
        validate_event(EventKind.OFFICER_LOCATION, make_officer_location(status="lunch"))
    with pytest.raises(ValidationFailed, match="event"):
        validate_event(EventKind.INCIDENT, make_incident(event="reopened"))


# ---- reference entries ------------------------------------------------------------------

SQUARE = {
    "type": "Polygon",
    "coordinates": [[[-1.9, 52.48], [-1.88, 52.48], [-1.88, 52.49], [-1.9, 52.49], [-1.9, 52.48]]],
}


def geofence(**entry: Any) -> dict[str, Any]:
    return {"kind": "geofence", "op": "upsert", "id": "GF-1", "entry": {"name": "Zone", **entry}}


def test_a_geofence_is_a_polygon_or_a_circle() -> None:
    validate_event(EventKind.REFERENCE, geofence(geometry=SQUARE))
    validate_event(
        EventKind.REFERENCE, geofence(circle={"lat": 52.48, "lon": -1.89, "radius_m": 50})
    )


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({}, "exactly one"),
        (
            {"geometry": SQUARE, "circle": {"lat": 52.48, "lon": -1.89, "radius_m": 50}},
            "exactly one",
        ),
        ({"geometry": {"type": "Point", "coordinates": [-1.9, 52.48]}}, "Polygon"),
        (
            {
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]],  # a bow tie
                }
            },
            "self-intersecting",
        ),
        ({"geometry": {"type": "Polygon", "coordinates": "abc"}}, "not a valid polygon"),
        ({"circle": {"lat": 52.48, "lon": -1.89, "radius_m": 0}}, "radius_m"),
        ({"circle": {"lat": 52.48, "lon": -1.89, "radius_m": 50_001}}, "radius_m"),
        ({"circle": {"lat": 52.48, "lon": -1.89, "radius_m": 5, "shape": "oval"}}, "shape"),
        (
            {
                "geometry": SQUARE,
                "valid_from": NOW.isoformat(),
                "valid_to": NOW.isoformat(),
            },
            "valid_to must be after",
        ),
        ({"geometry": SQUARE, "valid_from": "2026-11-24T10:00:00"}, "timezone"),
    ],
)
def test_bad_geofences_are_refused_with_a_reason(entry: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationFailed, match=words):
        validate_event(EventKind.REFERENCE, geofence(**entry))


def test_reference_kind_and_op_are_closed_lists() -> None:
    with pytest.raises(ValidationFailed, match="kind"):
        validate_event(EventKind.REFERENCE, make_hotlist_change(kind="weather"))
    with pytest.raises(ValidationFailed, match="op"):
        validate_event(EventKind.REFERENCE, make_hotlist_change(op="patch"))


def test_a_delete_needs_no_entry_and_ignores_one() -> None:
    change = validate_event(EventKind.REFERENCE, make_hotlist_change(op="delete", entry={"x": 1}))
    assert isinstance(change, ReferenceChangeV1) and change.validated_entry() is None


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=4), inner)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=4),
    _containers,
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(
    geometry_type=st.sampled_from(["Polygon", "MultiPolygon", "Point", 7]),
    coordinates=JSON_VALUES,
)
def test_arbitrary_geofence_geometry_gives_only_contract_errors(
    geometry_type: Any, coordinates: Any
) -> None:
    change = geofence(geometry={"type": geometry_type, "coordinates": coordinates})
    try:
        validate_event(EventKind.REFERENCE, change)
    except ContractError:
        pass


# ---- engine output models ---------------------------------------------------------------


def alert(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "alert_id": "r-1",
        "rule_id": "r",
        "severity": "high",
        "title": "t",
        "summary": "s",
        "created_at": NOW,
        "source_event_ids": ["e"],
        "location": {"lat": 52.48, "lon": -1.89},
        "area": ["E08000025"],
        "audience": {"roles": ["officer"], "areas": [], "officers": []},
    }
    base.update(overrides)
    return base


def test_output_models_are_closed_and_checked() -> None:
    assert AlertV1.model_validate(alert()).severity is Severity.HIGH
    with pytest.raises(ValidationError):
        AlertV1.model_validate(alert(colour="red"))
    with pytest.raises(ValidationError):
        AlertV1.model_validate(alert(severity="urgent"))
    with pytest.raises(ValidationError):
        AlertV1.model_validate(alert(audience={"roles": ["superuser"]}))
    with pytest.raises(ValidationError):
        AlertV1.model_validate(alert(created_at=NOW.replace(tzinfo=None)))


def test_dumps_writes_utc_times_with_z_and_keeps_nulls() -> None:
    out = orjson.loads(dumps(AlertV1.model_validate(alert(location=None))))
    assert out["created_at"] == "2026-11-24T21:30:00Z"
    assert out["location"] is None and out["details"] == {}
    assert orjson.loads(dumps({"at": NOW})) == {"at": "2026-11-24T21:30:00Z"}


# ---- properties -------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    lat=st.floats(-90, 90),
    lon=st.floats(-180, 180),
    offset_minutes=st.integers(-14 * 60, 14 * 60),
)
def test_any_in_range_point_and_any_timezone_make_a_valid_call(
    lat: float, lon: float, offset_minutes: int
) -> None:
    at = NOW.astimezone(timezone(timedelta(minutes=offset_minutes)))
    call = make_call(at_point=(lat, lon), received_at=at.isoformat())
    model = validate_event(EventKind.CALL, orjson.loads(orjson.dumps(call)))
    assert isinstance(model, CallV1)
    assert model.received_at == NOW
    assert (model.location.lat, model.location.lon) == (lat, lon)


@settings(max_examples=60, deadline=None)
@given(lat=st.floats(allow_nan=False, allow_infinity=False).filter(lambda v: abs(v) > 90))
def test_any_out_of_range_latitude_is_refused_by_name(lat: float) -> None:
    with pytest.raises(ValidationFailed, match=r"location\.lat"):
        validate_event(EventKind.CALL, make_call(at_point=(lat, 0.0)))


def test_geofence_coordinates_must_be_wgs84() -> None:
    ring = [[500.0, 52.0], [501.0, 52.0], [501.0, 53.0], [500.0, 52.0]]
    change = {
        "kind": "geofence",
        "op": "upsert",
        "id": "G",
        "entry": {"name": "x", "geometry": {"type": "Polygon", "coordinates": [ring]}},
    }
    with pytest.raises(ValidationFailed, match="WGS84"):
        validate_event(EventKind.REFERENCE, change)


# ---- snoozes (reference kind ``snooze``) --------------------------------------------------


def _snooze_change(**entry: Any) -> dict[str, Any]:
    base = {"until": (NOW + timedelta(hours=1)).isoformat(), "by": "analyst-1"}
    return {"kind": "snooze", "op": "upsert", "id": "SN-1", "entry": {**base, **entry}}


def test_a_snooze_for_an_area_or_a_plate_is_valid() -> None:
    from rtic.schemas import SnoozeV1

    change = validate_event(EventKind.REFERENCE, _snooze_change(area="E05001197"))
    assert isinstance(change, ReferenceChangeV1) and change.kind == "snooze"
    entry = change.validated_entry()
    assert isinstance(entry, SnoozeV1)
    assert (entry.rule_id, entry.area, entry.vrm) == (None, "E05001197", None)
    assert entry.until == NOW + timedelta(hours=1)
    plate = ReferenceChangeV1.model_validate(
        _snooze_change(rule_id="anpr_hotlist_hit", vrm="BX15 OKT", reason="known to the team")
    ).validated_entry()
    assert isinstance(plate, SnoozeV1) and plate.vrm == "BX15 OKT"


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"rule_id": "anpr_hotlist_hit"}, "'area' or a 'vrm'"),
        ({"area": "E05001197", "until": "2026-11-24T22:30:00"}, "timezone"),
        ({"area": "E05001197", "until": None}, "until"),
        ({"area": "E05001197", "by": ""}, "by"),
        ({"vrm": " - "}, "letters or digits"),
        ({"vrm": "A" * 17}, "vrm"),
        ({"area": ""}, "area"),
    ],
)
def test_a_bad_snooze_is_refused_with_a_reason(entry: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationFailed, match=words) as err:
        validate_event(EventKind.REFERENCE, _snooze_change(**entry))
    assert str(err.value).startswith("snooze entry:")


def test_a_snooze_without_until_is_refused_and_a_delete_needs_no_entry() -> None:
    change = _snooze_change(area="E05001197")
    del change["entry"]["until"]
    with pytest.raises(ValidationFailed, match="until"):
        validate_event(EventKind.REFERENCE, change)
    lifted = validate_event(EventKind.REFERENCE, {"kind": "snooze", "op": "delete", "id": "SN-1"})
    assert isinstance(lifted, ReferenceChangeV1) and lifted.validated_entry() is None
