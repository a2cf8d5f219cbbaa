"""Contract schemas: what is accepted, what is refused, and with which reason."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtic.errors import ContractError, DecodeError, ValidationFailed
from rtic.schemas import (
    CallV1,
    EventKind,
    PlateReadBatchV1,
    PlateReadV1,
    ReferenceChangeV1,
    decode_event,
    validate_event,
)
from tests.conftest import (
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
