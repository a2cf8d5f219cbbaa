"""The what-if figures and the evidence routes' pure parts: no services."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from push.api import ApiError
from push.evidence import EvidenceDesk, check_filename, content_disposition, megabytes
from push.outcomes import (
    NO_OUTCOME,
    OUTCOME_GROUP,
    Outcomes,
    answer,
    build_extract,
    count_street_outcomes,
    share,
    slug,
)
from rtic.casework import EvidenceV1
from rtic.settings import PROJECT_ROOT, Settings

HEADER = (
    "Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,"
    "LSOA name,Crime type,Last outcome category,Context\n"
)


def _row(month: str, crime_type: str, outcome: str) -> str:
    return f"x,{month},Test Police,Test Police,0,0,On or near X,E0,X 001,{crime_type},{outcome},\n"


def test_the_extract_counts_crimes_by_type_and_outcome_and_leaves_out_asb(
    tmp_path: Path,
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    rows = [
        _row("2020-01", "Vehicle crime", "Investigation complete; no suspect identified"),
        _row("2020-01", "Vehicle crime", "Investigation complete; no suspect identified"),
        _row("2020-01", "Vehicle crime", "Offender fined"),
        _row("2020-01", "Anti-social behaviour", ""),
        _row("2020-01", "Burglary", ""),
    ]
    (source / "2020-01-test-street.csv").write_text(HEADER + "".join(rows))
    meta = build_extract(source, tmp_path / "out")
    assert meta["months"] == ["2020-01"] and meta["forces"] == ["Test Police"]
    assert (tmp_path / "out" / "recorded-crime.csv").read_text() == "force,category,offences\n"
    (tmp_path / "data").mkdir()
    (tmp_path / "out").rename(tmp_path / "data" / "outcomes")
    loaded = Outcomes.load(tmp_path / "data")
    assert set(loaded.counts) == {"Vehicle crime", "Burglary"}
    vehicle = loaded.detail("Vehicle crime")
    assert vehicle["with_outcome"] == 3
    assert [(o["outcome"], o["count"], o["share"]) for o in vehicle["outcomes"]] == [
        ("Investigation complete; no suspect identified", 2, 66.7),
        ("Offender fined", 1, 33.3),
    ]
    burglary = loaded.detail("Burglary")
    assert burglary["without_outcome"] == 1 and burglary["with_outcome"] == 0
    assert burglary["outcomes"] == [] and all(g["share"] == 0.0 for g in burglary["groups"])
    assert loaded.period() == "January 2020"


def test_counting_is_exact() -> None:
    rows = [
        {
            "Month": "2020-01",
            "Reported by": "P",
            "Crime type": "Robbery",
            "Last outcome category": "",
        }
    ] * 3
    assert count_street_outcomes(rows) == [
        {
            "month": "2020-01",
            "force": "P",
            "crime_type": "Robbery",
            "outcome": NO_OUTCOME,
            "count": 3,
        }
    ]


def test_every_outcome_in_the_shipped_data_has_a_plain_group() -> None:
    outcomes = Outcomes.load(PROJECT_ROOT / "data")
    seen = {o for counts in outcomes.counts.values() for o in counts}
    assert seen <= set(OUTCOME_GROUP)


def test_slugs_shares_and_the_answer() -> None:
    assert slug("Violence and sexual offences") == "violence-and-sexual-offences"
    assert share(1, 3) == 33.3 and share(0, 0) == 0.0
    status, body = answer(PROJECT_ROOT / "data", "Vehicle crime")
    assert status == 200 and body["outcome"]["category"] == "vehicle-crime"
    assert answer(PROJECT_ROOT / "data", "nothing")[0] == 404
    assert answer(Path("/nonexistent"), None)[0] == 503
    source = json.loads((PROJECT_ROOT / "data" / "outcomes" / "source.json").read_text())
    assert source["licence"] == "Open Government Licence v3.0"


@pytest.mark.parametrize(
    "name",
    [
        "../../x",
        "..",
        ".",
        "/etc/passwd",
        "a/b.jpg",
        "a\\b.jpg",
        "C:evil.jpg",
        "a\x00b",
        "a\x1fb",
        "x" * 256,
    ],
)
def test_file_names_with_paths_or_control_characters_are_refused(name: str) -> None:
    with pytest.raises(ApiError) as refused:
        check_filename(name)
    assert refused.value.status == 400


def test_plain_names_are_kept() -> None:
    assert check_filename("Photo 12 (1).JPG") == "Photo 12 (1).JPG"
    assert check_filename("Café at 22.00.heic") == "Café at 22.00.heic"
    assert check_filename("..hidden.png") == "..hidden.png"  # not a path: a name


def test_downloads_are_named_safely() -> None:
    item = EvidenceV1.model_validate(
        {
            "evidence_id": "evd-1",
            "kind": "photo",
            "captured_by": "citizen",
            "captured_at": "2026-01-01T00:00:00Z",
            "sha256": "0" * 64,
            "storage_uri": "local:sha256/" + "0" * 64,
            "filename": 'x"; filename=evil.html',
        }
    )
    header = content_disposition("evd-1", item, ".jpg")
    assert header.startswith('attachment; filename="x_filename_evil.html.jpg"')
    assert "filename*=UTF-8''x%22%3B%20filename%3Devil.html" in header
    assert header.count('"') == 2


def test_the_rules_say_each_limit_in_words() -> None:
    desk = EvidenceDesk.from_settings(Settings(), None)
    rules = {f["family"]: f for f in desk.rules()["families"]}
    assert rules["video"]["max_words"] == "512 MB" and rules["text"]["max_words"] == "1 MB"
    assert megabytes(1536) == "2 KB" and megabytes(int(1.5 * 1024 * 1024)) == "1.5 MB"
    assert desk.max_body() > max(desk.limits.values())
