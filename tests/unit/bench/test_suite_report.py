"""The benchmark suite's pure parts: percentiles, the results file's shape, comparing two
runs, the docs section and the chart (benchmarks/report.py), and the workload's hits."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from benchmarks import report
from benchmarks.workload import make_workload
from rtic.plates import canonical_vrm


def results(worker_rate: float, quix_rate: float, p99: float) -> dict[str, Any]:
    return {
        "suite": "rtic-bench",
        "schema": report.SCHEMA,
        "started_at": "2026-12-02T09:00:00+00:00",
        "commit": "abc1234",
        "command": "rtic bench --quick",
        "machine": "test machine",
        "load": {"before": [1.0, 1.0, 1.0], "after": [1.0, 1.0, 1.0], "uptime": "up"},
        "quick": True,
        "parts": {
            "peers": {
                "workload": {"reads": 100, "hotlist": 20, "hits": 1, "hits_misread": 0},
                "runs": [
                    {
                        "system": "worker",
                        "per_message": 1,
                        "reads_per_s": worker_rate,
                        "load_before": [9.0],
                    },
                    {"system": "quix", "per_message": 1, "reads_per_s": quix_rate},
                ],
                "ratios": {"1": {"quix": round(worker_rate / quix_rate, 2)}},
            },
            "latency": {
                "runs": [
                    {
                        "rate": 1000,
                        "per_message": 1,
                        "latency_ms": {"p50": 10.0, "p99": p99},
                        "sustained": True,
                    }
                ]
            },
        },
    }


@pytest.mark.parametrize("n", [1, 2, 7, 100, 1001])
def test_percentiles_match_numpy(n: int) -> None:
    values = list(np.random.default_rng(n).exponential(30.0, n))
    got = report.percentiles(values, digits=6)
    assert got["n"] == n
    for q in (50, 95, 99):
        assert got[f"p{q}"] == pytest.approx(float(np.percentile(values, q)), abs=1e-5)
    assert got["max"] == pytest.approx(max(values), abs=1e-5)


def test_percentiles_of_nothing_are_none() -> None:
    assert report.percentiles([]) == {"n": 0, "p50": None, "p95": None, "p99": None, "max": None}


def test_shape_is_checked() -> None:
    good = results(2000.0, 1000.0, 40.0)
    assert report.problems(json.loads(json.dumps(good))) == []
    assert report.problems([]) == ["not a JSON object"]
    bad = {**good, "schema": 99, "parts": {"peers": {}, "nonsense": {}}}
    del bad["commit"]
    found = report.problems(bad)
    assert "missing 'commit'" in found
    assert f"'schema' is not {report.SCHEMA}" in found
    assert "unknown part 'nonsense'" in found


def test_compare_names_runs_and_gives_ratios() -> None:
    a, b = results(2000.0, 1000.0, 40.0), results(3000.0, 1000.0, 20.0)
    rows = {k: (x, y, r) for k, x, y, r in report.compare(a, b)}
    assert rows["peers.runs[system=worker,per_message=1].reads_per_s"] == (2000.0, 3000.0, 1.5)
    assert rows["peers.ratios.1.quix"] == (2.0, 3.0, 1.5)
    assert rows["latency.runs[per_message=1,rate=1000].latency_ms.p99"] == (40.0, 20.0, 0.5)
    # the machine's load is context, not a figure of the system
    assert not any("load_before" in k for k in rows)
    text = report.render_compare(a, b, report.compare(a, b))
    assert "1.50" in text and "abc1234" in text


def test_section_goes_first_after_the_introduction() -> None:
    doc = "# Benchmarks\n\nIntro.\n\n## Older\n\nold\n"
    section = report.render_markdown(results(2000.0, 1000.0, 40.0), "r.json", "c.svg")
    out = report.insert_section(doc, section)
    assert out.index("Intro.") < out.index("the suite") < out.index("## Older")
    assert "| one read per message | quix | 1,000 | 2.00× |" in out
    assert "rtic bench --quick" in out and "r.json" in out and "c.svg" in out


def test_chart_has_a_bar_per_run() -> None:
    svg = report.render_svg(results(2000.0, 1000.0, 40.0))
    assert svg is not None and svg.startswith("<svg") and svg.count("<rect x=") == 2 + 2
    assert report.render_svg({"parts": {}}) is None


def test_workload_hits_are_exactly_the_hotlisted_reads() -> None:
    work = make_workload(3000, hotlist=200, hit_share=0.01, seed=3)
    listed = {canonical_vrm(c["entry"]["vrm"]) for c in work.hotlist}
    hits = {r["read_id"] for r in work.reads if canonical_vrm(r["vrm"]) in listed}
    assert hits == set(work.hits) and len(hits) == 30
    assert len(work.misread) == 10
    by_id = {r["read_id"]: r for r in work.reads}
    exact = {c["id"]: c["entry"]["vrm"] for c in work.hotlist}
    for rid in work.misread:
        assert by_id[rid]["vrm"] != exact[work.hits[rid]]
    assert len(work.messages(50)) == 60 and len(work.messages(1)) == 3000
