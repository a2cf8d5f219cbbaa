"""Reading police open-data street-level files: the real extracts, and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.opendata import (
    VICTIM_BASED,
    OpenDataError,
    month_index,
    month_name,
    read_street_files,
    type_set,
)
from tests.unit.analytics.crimes import HANTS, HEADER, WY_2016


def test_a_real_extract_reads_whole_with_its_ids_kept() -> None:
    data = read_street_files([WY_2016])
    assert len(data.crimes) == 258 and not data.skipped
    assert data.months == ["2016-07"]
    crimes = [c for c in data.crimes if c.crime_type != "Anti-social behaviour"]
    # Crime ids are 64 hex characters, kept whole; anti-social behaviour has none.
    assert crimes and all(len(c.crime_id) == 64 for c in crimes)
    assert all(c.crime_id == "" for c in data.crimes if c.crime_type == "Anti-social behaviour")
    assert {c.lsoa_name[:14] for c in data.crimes} == {
        "Calderdale 001",
        "Calderdale 002",
        "Calderdale 003",
        "Calderdale 004",
    }
    victim = data.of_types(VICTIM_BASED)
    assert 0 < len(victim) < len(data.crimes)
    assert all(c.crime_type not in ("Drugs", "Possession of weapons") for c in victim)


def test_unusable_rows_are_skipped_and_counted_never_guessed(tmp_path: Path) -> None:
    bad = tmp_path / "2017-01-test-street.csv"
    bad.write_text(
        HEADER
        + "abc,2017-01,F,F,-1.5,53.7,On or near X,E01000001,Somewhere 001A,Burglary,,\n"
        + "abc,2017-01,F,F,-1.5,53.7,On or near X,E01000001,Somewhere 001A,Burglary,,\n"
        + "def,2017-13,F,F,-1.5,53.7,On or near X,E01000001,Somewhere 001A,Burglary,,\n"
        + "ghi,2017-01,F,F,,,No location,,,Burglary,,\n"
        + "jkl,2017-01,F,F,-1.5,95.0,On or near X,E01000001,Somewhere 001A,Burglary,,\n"
        + "mno,2017-01,F,F,-1.5,53.7,On or near X,,,Burglary,,\n"
        + ",2017-01,F,F,-1.5,53.7,On or near X,E01000002,Somewhere 001B,Anti-social behaviour,,\n"
    )
    data = read_street_files([bad])
    assert [c.crime_id for c in data.crimes] == ["abc", ""]
    assert data.skipped == {
        "repeated crime id": 1,
        "no month": 1,
        "no location": 2,
        "no LSOA": 1,
    }


def test_a_file_of_another_format_or_none_is_a_clear_error(tmp_path: Path) -> None:
    other = tmp_path / "calls.csv"
    other.write_text("lat,lng,title\n52.1,-1.2,EMS: FALL\n")
    with pytest.raises(OpenDataError, match=r"calls\.csv: not a police street-level file"):
        read_street_files([other])
    with pytest.raises(OpenDataError, match="cannot be read"):
        read_street_files([tmp_path / "missing.csv"])
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00\x00garbage")
    with pytest.raises(OpenDataError):
        read_street_files([binary])
    with pytest.raises(OpenDataError, match="no files"):
        read_street_files([])
    with pytest.raises(OpenDataError, match="unknown crime type set"):
        type_set("everything")


def test_months_of_several_files_and_month_arithmetic() -> None:
    data = read_street_files(HANTS)
    assert data.months == ["2017-03", "2017-04", "2017-05", "2017-06"]
    assert month_index("2017-07") - month_index("2016-07") == 12
    assert month_name(month_index("2016-12") + 1) == "2017-01"
    with pytest.raises(OpenDataError):
        month_index("July 2017")
