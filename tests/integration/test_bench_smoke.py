"""``rtic bench`` runs: the cheapest part of the suite, quick, on its own Tansu (a smoke
check that the suite starts, measures, checks every alert and writes its results; the
figures themselves are benchmarks, not tests)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks import report

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_quick_peers_run_writes_a_comparable_results_file(tmp_path: Path) -> None:
    t0 = time.monotonic()
    args = ["--quick", "--only", "peers", "--systems", "aiokafka", "--feeds", "1"]
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "bench", *args, "--no-docs", "--out-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = tmp_path.glob("*.json")
    results = json.loads(path.read_text())
    assert report.problems(results) == []
    (run,) = results["parts"]["peers"]["runs"]
    assert run["system"] == "aiokafka" and run["per_message"] == 1
    assert run["hits"] > 0 and run["hits_alerted"] == run["hits"] and run["false_alerts"] == 0
    assert run["reads_out"] == run["reads"] and run["reads_per_s"] > 0
    # A run compares with itself: every ratio 1.
    compared = subprocess.run(
        [sys.executable, "-m", "cli.main", "bench", "--compare", str(path), str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert compared.returncode == 0 and "reads_per_s" in compared.stdout
    assert all(r in (None, 1.0) for *_, r in report.compare(results, results))
    print(f"rtic bench --quick --only peers took {time.monotonic() - t0:.1f} s")
