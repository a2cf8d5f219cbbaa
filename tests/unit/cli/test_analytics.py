"""``rtic analytics hotspots`` and ``rtic analytics evaluate`` on the shipped real extracts."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from analytics.opendata import read_street_files
from cli.main import main
from tests.unit.analytics.crimes import HANTS, WY_2016, WY_2017


def test_hotspots_writes_every_lsoa_seen_with_its_score_highest_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "hotspots.csv"
    history = [str(p) for p in HANTS[:3]]
    assert main(["analytics", "hotspots", "--history", *history, "--out", str(out)]) == 0
    with out.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["lsoa_code", "score"]
    codes = [r[0] for r in rows[1:]]
    scores = [float(r[1]) for r in rows[1:]]
    seen = {c.lsoa_code for c in read_street_files(HANTS[:3]).crimes}
    assert sorted(codes) == sorted(seen) and len(codes) == len(set(codes))
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0
    printed = capsys.readouterr().out
    assert "fitted on 2017-03, 2017-04, 2017-05" in printed and codes[0] in printed


def test_evaluate_prints_the_table_and_writes_it_into_the_doc(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = tmp_path / "analytics.md"
    doc.write_text("intro\n<!-- evaluation:wy -->\n<!-- /evaluation:wy -->\nend\n")
    argv = ["analytics", "evaluate", "--history", str(WY_2016), "--test", str(WY_2017)]
    code = main([*argv, "--title", "Calderdale", "--doc", str(doc), "--label", "wy"])
    assert code == 0
    printed = capsys.readouterr().out
    text = doc.read_text()
    assert printed.strip() in text and text.startswith("intro\n") and text.endswith("end\n")
    assert "| 2017-07 | last month's counts |" in text
    assert "12 months after the last fitted" in text
    # The command in the doc gives the same table again (without --doc).
    assert f"rtic analytics evaluate --history {WY_2016} --test {WY_2017}" in text
    assert "--doc" not in text


def test_bad_input_is_a_clear_error_and_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    out = tmp_path / "x.csv"
    assert main(["analytics", "hotspots", "--history", str(other), "--out", str(out)]) == 2
    assert "not a police street-level file" in capsys.readouterr().err and not out.exists()
    gap = ["analytics", "hotspots", "--history", str(WY_2016), str(WY_2017), "--out", str(out)]
    assert main(gap) == 2
    assert "missing 2016-08" in capsys.readouterr().err
    late = ["analytics", "evaluate", "--history", str(WY_2017), "--test", str(WY_2016)]
    assert main(late) == 2
    assert "not after the history" in capsys.readouterr().err
