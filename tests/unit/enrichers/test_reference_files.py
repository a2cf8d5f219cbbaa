"""Reference files: every format, kinds recognised, rejected rows reported with row and reason."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from enrichers.reference_files import parse_reference_file
from rtic.errors import ContractError
from rtic.settings import PROJECT_ROOT


def test_hotlist_csv_with_bad_rows() -> None:
    text = "vrm,reason,expires_at\nAB12 CDE,stolen,\nXY99 ZZZ,parking,\n,stolen,\nKL11 MNO,firearms,2027-01-01T00:00:00Z\n"
    report = parse_reference_file(Path("hot.csv"), text)
    assert report.rows == 4
    assert [c.entry["vrm"] for c in report.changes if c.entry] == ["AB12 CDE", "KL11 MNO"]
    assert [row for row, _ in report.rejected] == [2, 3]
    assert "reason" in report.rejected[0][1] and "vrm" in report.rejected[1][1]
    assert "4 rows: 2 accepted, 2 rejected" in report.summary()
    assert report.changes[0].id == "hot-hotlist-1"


def test_marker_and_place_csv_by_columns() -> None:
    markers = parse_reference_file(Path("m.csv"), "person_id,marker,note\nP1,weapons,knife\nP2,,\n")
    assert markers.changes[0].kind == "person_marker" and markers.rejected[0][0] == 2
    places = parse_reference_file(
        Path("p.csv"), "name,kind,lat,lon\nA refuge,refuge,52.48,-1.89\nNowhere,refuge,north,-1.9\n"
    )
    assert places.changes[0].kind == "place"
    assert places.rejected[0][0] == 2 and "lat" in places.rejected[0][1]
    with pytest.raises(ContractError, match="--kind"):
        parse_reference_file(Path("x.csv"), "a,b\n1,2\n")


def test_geojson_points_are_places_and_polygons_geofences() -> None:
    hospitals = (PROJECT_ROOT / "data" / "places" / "hospitals.geojson").read_text()
    report = parse_reference_file(Path("hospitals.geojson"), hospitals)
    assert report.rows == 63 and not report.rejected
    assert {c.kind for c in report.changes} == {"place"}
    zone = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": "Zone", "id": "Z1"},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[-1.9, 52.4], [-1.8, 52.4], [-1.8, 52.5], [-1.9, 52.4]]],
                },
            },
            {
                "type": "Feature",
                "properties": {"name": "Line"},
                "geometry": {"type": "LineString", "coordinates": [[-1.9, 52.4], [-1.8, 52.4]]},
            },
        ],
    }
    report = parse_reference_file(Path("zones.geojson"), orjson.dumps(zone).decode())
    assert [(c.kind, c.id) for c in report.changes] == [("geofence", "Z1")]
    assert report.rejected[0][0] == 2 and "LineString" in report.rejected[0][1]


def test_jsonl_changes_and_entries_with_kind() -> None:
    lines = "\n".join(
        [
            orjson.dumps({"kind": "hotlist", "op": "delete", "id": "HL-1"}).decode(),
            "{not json",
            orjson.dumps(
                {
                    "kind": "hotlist",
                    "op": "upsert",
                    "id": "HL-2",
                    "entry": {"vrm": "A1", "reason": "other"},
                }
            ).decode(),
        ]
    )
    report = parse_reference_file(Path("changes.jsonl"), lines)
    assert [c.id for c in report.changes] == ["HL-1", "HL-2"] and report.rejected[0][0] == 2
    entries = parse_reference_file(
        Path("e.jsonl"), '{"address": "1 High St", "marker": "dog"}\n', kind="address_marker"
    )
    assert entries.changes[0].kind == "address_marker"
    with pytest.raises(ContractError):
        parse_reference_file(Path("x.xml"), "<a/>")


def test_snooze_files_by_columns_or_kind() -> None:
    text = (
        "id,rule_id,area,vrm,until,by,reason\n"
        "SN-1,anpr_hotlist_hit,,BX15 OKT,2026-11-25T06:00:00Z,an-1,owner driving\n"
        "SN-2,,E05001197,,2026-11-25T06:00:00Z,an-1,\n"
        "SN-3,repeat_calls,,,2026-11-25T06:00:00Z,an-1,no area or plate\n"
        "SN-4,,E05001197,,tomorrow,an-1,\n"
    )
    report = parse_reference_file(Path("snoozes.csv"), text)
    assert [(c.kind, c.id) for c in report.changes] == [("snooze", "SN-1"), ("snooze", "SN-2")]
    assert report.changes[1].entry == {
        "id": "SN-2",
        "area": "E05001197",
        "until": "2026-11-25T06:00:00Z",
        "by": "an-1",
    }
    assert [row for row, _ in report.rejected] == [3, 4]
    assert "'area' or a 'vrm'" in report.rejected[0][1] and "until" in report.rejected[1][1]
    line = orjson.dumps({"vrm": "BX15OKT", "until": "2026-11-25T06:00:00Z", "by": "an-1"})
    jsonl = parse_reference_file(Path("s.jsonl"), line.decode(), kind="snooze")
    assert [c.kind for c in jsonl.changes] == ["snooze"] and not jsonl.rejected


def test_json_lists_objects_and_whole_file_errors() -> None:
    doc = [
        {
            "kind": "hotlist",
            "op": "upsert",
            "id": "HL-9",
            "entry": {"vrm": "B2", "reason": "other"},
        },
        "not an object",
        {"vrm": "C3", "reason": "stolen"},  # a bare entry: needs --kind
    ]
    report = parse_reference_file(Path("list.json"), orjson.dumps(doc).decode())
    assert report.rows == 3 and [c.id for c in report.changes] == ["HL-9"]
    assert [n for n, _ in report.rejected] == [2, 3]
    assert report.rejected[0][1] == "not a JSON object"
    with_kind = parse_reference_file(Path("list.json"), orjson.dumps(doc).decode(), "hotlist")
    assert [c.id for c in with_kind.changes] == ["HL-9", "list-hotlist-3"]
    with pytest.raises(ContractError, match="not JSON"):
        parse_reference_file(Path("broken.json"), "{")
    with pytest.raises(ContractError, match="expected a list"):
        parse_reference_file(Path("obj.json"), '{"type": "Feature"}')
    with pytest.raises(ContractError, match="unknown kind"):
        parse_reference_file(Path("h.csv"), "vrm\nA1\n", kind="weather")
    with pytest.raises(ContractError, match="give --kind"):
        parse_reference_file(Path("h.csv"), "colour,size\nred,2\n")


def test_csv_values_are_trimmed_and_extra_values_ignored() -> None:
    text = "name , lat, lon ,kind\n School ,52.48, -1.89 ,school,extra\n"
    report = parse_reference_file(Path("places.csv"), text)
    assert not report.rejected, report.rejected
    (change,) = report.changes
    assert change.kind == "place" and change.id == "places-place-1"
    assert change.entry["name"] == "School" and change.entry["lat"] == 52.48
