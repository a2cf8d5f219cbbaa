"""Replay adapters on real and written rows, and the schedule at a speed factor."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from rtic.errors import ConfigError
from rtic.schemas import EventKind
from rtic.settings import PROJECT_ROOT
from simulators.replay import (
    AdapterReport,
    contract_jsonl,
    load_mapping,
    mapped_csv,
    police_crime_csv,
    read_file,
    schedule,
)
from tests.conftest import NOW, make_call, make_read

CALLS_911 = PROJECT_ROOT / "data" / "calls" / "montgomery-county-pa-911-sample.csv"
MAPPING_911 = PROJECT_ROOT / "simulators" / "mappings" / "montgomery-911.yaml"

POLICE_CSV = """Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,LSOA name,Crime type,Last outcome category,Context
a1b2,2024-03,West Midlands Police,West Midlands Police,-1.890400,52.486200,On or near Station Street,E01033561,Birmingham 050E,Burglary,Under investigation,
,2024-03,West Midlands Police,West Midlands Police,-1.9,52.48,On or near Park Road,E01009347,Birmingham 049D,Anti-social behaviour,,
c3d4,2024-03,West Midlands Police,West Midlands Police,,,No location,,,Vehicle crime,Investigation complete; no suspect identified,
e5f6,2024-03,West Midlands Police,West Midlands Police,-1.9,52.48,On or near X,E01,B,Alien abduction,,
g7h8,2024-13,West Midlands Police,West Midlands Police,-1.9,52.48,On or near Y,E01,B,Robbery,,
"""


def test_the_real_911_calls_map_through_the_mapping_file() -> None:
    report = AdapterReport()
    events = list(mapped_csv(CALLS_911.read_text(), load_mapping(MAPPING_911), report))
    assert report.rows == 3051 and report.events == len(events)
    assert report.events + sum(report.rejected.values()) == report.rows
    first = events[0]
    assert first.kind is EventKind.CALL
    assert first.value["category"] in {"concern_for_safety", "traffic", "other"}
    assert first.value["received_at"].endswith("+00:00")
    # 2016-01-15 12:01 in Pennsylvania (EST, UTC-5) is 17:01 UTC.
    assert first.value["received_at"].startswith("2016-01-15T17:01")
    assert {e.value["category"] for e in events} == {"concern_for_safety", "traffic", "other"}


def test_mapped_csv_reports_bad_rows_and_goes_on() -> None:
    text = "lat,lng,title,timeStamp,twp,addr\n40.1,-75.3,EMS: X,2016-01-15 12:01,A,B\nx,-75.3,EMS: X,2016-01-15 12:02,A,B\n40.1,-75.3,Police: X,2016-01-15 12:03,A,B\n40.1,-75.3,EMS: X,yesterday,A,B\n40.2,-75.4,Fire: Y,2016-01-15 12:04,A,\n"
    report = AdapterReport()
    events = list(mapped_csv(text, load_mapping(MAPPING_911), report))
    assert [e.value["category"] for e in events] == ["concern_for_safety", "other"]
    assert report.rejected == {
        "no or bad position": 1,
        "category 'Police' not in the mapping": 1,
        "bad time 'yesterday'": 1,
    }
    assert report.examples["no or bad position"] == 2
    assert "5 rows read, 2 events, 3 rows not mapped" in report.summary()


def test_police_open_data_rows_and_their_rejections() -> None:
    report = AdapterReport()
    events = list(police_crime_csv(POLICE_CSV, report))
    assert [e.value["category"] for e in events] == ["burglary", "asb"]
    assert events[0].value["call_id"] == "POL-a1b2"
    assert events[0].value["received_at"].startswith("2024-03")
    assert events[0].value["location"]["address"] == "On or near Station Street"
    assert report.rejected == {
        "no location": 1,
        "unknown crime type 'Alien abduction'": 1,
        "bad month '2024-13'": 1,
    }
    # The same crime always lands at the same time within its month.
    again = list(police_crime_csv(POLICE_CSV, AdapterReport()))
    assert again[0].at == events[0].at


def test_contract_jsonl_bare_events_and_recorded_lines() -> None:
    read = make_read(read_at=(NOW + timedelta(seconds=5)).isoformat())
    call = make_call()
    lines = [
        orjson.dumps(call).decode(),
        orjson.dumps(
            {
                "topic": "pre.rtic.anpr.v1",
                "key": "CAM-1",
                "value": read,
                "at": (NOW + timedelta(seconds=9)).isoformat(),
            }
        ).decode(),
        "not json",
        orjson.dumps({"mystery": 1}).decode(),
        orjson.dumps(make_call(channel="pigeon")).decode(),
        "",
    ]
    report = AdapterReport()
    events = list(contract_jsonl(lines, report))
    assert [(e.kind, e.key) for e in events] == [
        (EventKind.CALL, call["call_id"]),
        (EventKind.ANPR, "CAM-1"),
    ]
    assert events[1].at == NOW + timedelta(seconds=9)  # the recorded time wins
    assert report.rows == 5 and sum(report.rejected.values()) == 3


def test_schedule_follows_event_time_at_a_speed() -> None:
    report = AdapterReport()
    lines = [
        orjson.dumps(make_call(received_at=(NOW + timedelta(minutes=m)).isoformat())).decode()
        for m in (0, 1, 3)
    ]
    events = list(contract_jsonl(lines, report))
    assert schedule(events, 60.0) == [0.0, 1.0, 3.0]
    assert schedule(events, None) == [0.0, 0.0, 0.0]


def test_files_need_a_known_format(tmp_path: Path) -> None:
    other = tmp_path / "calls.csv"
    other.write_text("when,where\n1,2\n")
    with pytest.raises(ConfigError, match="--mapping"):
        read_file(other, None, AdapterReport())
    with pytest.raises(ConfigError, match="unknown format"):
        read_file(tmp_path / "x.xlsx", None, AdapterReport()) if (tmp_path / "x.xlsx").write_text(
            ""
        ) is not None else None
