"""Hit rate and PAI: ties shared fairly, months never seen, the table and the doc."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analytics.evaluate import (
    LAST_MONTH,
    MEAN,
    MODEL,
    capture,
    evaluate_month,
    markdown,
    rolling,
    write_section,
)
from analytics.opendata import VICTIM_BASED, OpenDataError, read_street_files
from tests.unit.analytics.crimes import HANTS, WY_2016, WY_2017


def test_capture_counts_the_top_units_and_shares_a_tie_at_the_cut() -> None:
    scores = np.array([5.0, 3.0, 3.0, 3.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    actual = np.array([4, 3, 0, 3, 0, 0, 0, 0, 0, 0])
    # 10 % of 10 units: the first alone.
    top = capture(scores, actual, 0.10)
    assert (top.k, top.caught, top.total) == (1, 4.0, 10)
    assert top.hit_rate == pytest.approx(0.4) and top.pai == pytest.approx(4.0)
    # 20 %: the first and one of the three tied at 3 (which one is a coin toss):
    # 4 + 1/3 of (3 + 0 + 3).
    two = capture(scores, actual, 0.20)
    assert two.caught == pytest.approx(6.0) and two.pai == pytest.approx(0.6 / 0.2)
    # The order of the file changes nothing.
    order = np.array([3, 2, 1, 0, 4, 5, 6, 7, 8, 9])
    assert capture(scores[order], actual[order], 0.20).caught == pytest.approx(6.0)
    assert capture(np.zeros(0), np.zeros(0), 0.1).hit_rate == 0.0


def test_a_year_apart_the_model_and_the_baseline_on_real_data() -> None:
    history, test = read_street_files([WY_2016]), read_street_files([WY_2017])
    found = evaluate_month(history, test, types=VICTIM_BASED, types_name="victim")
    assert found.horizon == 12 and found.history_months == ["2016-07"]
    assert found.test_crimes == len(test.of_types(VICTIM_BASED))
    assert set(found.results) == {MODEL, LAST_MONTH}  # one month: no mean to take
    for caps in found.results.values():
        assert [c.fraction for c in caps] == [0.01, 0.05, 0.10]
        assert all(0 <= c.hit_rate <= 1 and c.total == found.test_crimes for c in caps)
        assert caps[0].hit_rate <= caps[1].hit_rate <= caps[2].hit_rate
    # Every LSOA of either month is in the universe the shares are of.
    assert found.units == len({c.lsoa_code for c in history.crimes + test.crimes})


def test_a_rolling_origin_never_shows_the_model_its_test_month() -> None:
    history = read_street_files(HANTS[:2])
    tests = [read_street_files([p]) for p in HANTS[2:]]
    found = rolling(history, tests, types=VICTIM_BASED, types_name="victim")
    assert [e.test_month for e in found] == ["2017-05", "2017-06"]
    assert found[0].history_months == ["2017-03", "2017-04"]
    assert found[1].history_months == ["2017-03", "2017-04", "2017-05"]
    assert all(e.horizon == 1 and MEAN in e.results for e in found)
    table = markdown(found, "rtic analytics evaluate --history a b --test c d", "Winchester")
    assert table.startswith("**Winchester**")
    assert "| 2017-05 | self-exciting (this model) |" in table
    assert "| mean | last month's counts |" in table
    assert table.rstrip().endswith("```") and "rtic analytics evaluate --history a b" in table
    with pytest.raises(OpenDataError, match="not after the history"):
        evaluate_month(
            read_street_files(HANTS[2:]), tests[0], types=VICTIM_BASED, types_name="victim"
        )


def test_the_table_goes_between_its_markers_and_nowhere_else(tmp_path: Path) -> None:
    doc = tmp_path / "analytics.md"
    doc.write_text("# A\n<!-- evaluation:x -->\nold\n<!-- /evaluation:x -->\nkept\n")
    write_section(doc, "x", "new table")
    assert (
        doc.read_text() == "# A\n<!-- evaluation:x -->\nnew table\n<!-- /evaluation:x -->\nkept\n"
    )
    with pytest.raises(OpenDataError, match="no '<!-- evaluation:y -->'"):
        write_section(doc, "y", "t")
