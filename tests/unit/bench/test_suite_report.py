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


def test_fanout_part_is_rendered_with_both_phases_and_the_checks() -> None:
    data = results(2000.0, 1000.0, 40.0)
    data["parts"]["fanout"] = {
        "command": "python benchmarks/fanout.py --clients 5000 --seconds 40 --rate 20",
        "clients": 5000,
        "connected": 5000,
        "officers": 4000,
        "stalled": 50,
        "client_processes": 4,
        "kib_per_client": 53.2,
        "rss_before_mib": 360.0,
        "rss_connected_mib": 620.0,
        "phases": [
            {
                "phase": "reading",
                "alerts_per_s": 20.0,
                "frames_per_s": 4700,
                "gateway_cpu": 0.23,
                "deliveries": 180_000,
                "latency_ms": {"p50": 21.5, "p95": 80.0, "p99": 123.4, "max": 300.0},
                "client_p99_median_ms": 90.0,
                "client_p99_worst_ms": 200.0,
            },
            {
                "phase": "stalled",
                "alerts_per_s": 20.0,
                "frames_per_s": 4600,
                "gateway_cpu": 0.22,
                "deliveries": 179_000,
                "latency_ms": {"p50": None, "p95": None, "p99": None, "max": None},
                "client_p99_median_ms": None,
                "client_p99_worst_ms": None,
            },
        ],
        "checked": 300,
        "missing": 0,
        "twice": 0,
        "not_theirs": 0,
    }
    assert report.problems(data) == []
    section = report.render_markdown(data, "r.json", None)
    assert "### Fan-out" in section
    assert "| reading | 20.0 | 4,700 | 23% | 180,000 | 21.5 | 80.0 | 123.4 | 300.0 |" in section
    assert "| stalled |" in section and "53 KiB a client" in section
    assert "0 missing, 0 twice, 0 not theirs" in section
    # A fan-out part is compared like the others (its phases named).
    assert any("phase=reading" in name for name, *_ in report.compare(data, data))
