"""The fuzz suite's report: how many examples each target tried and how each ended,
as a line at the end of the session and as artifacts/fuzz.json."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rtic.settings import PROJECT_ROOT
from tests.fuzz.hostile import MEASURES, TALLY

REPORT = PROJECT_ROOT / "artifacts" / "fuzz.json"
SUMMARY_ONLY = {"families"}  # what kind of input the examples were, not a target


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not TALLY:
        return
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    targets = {name: dict(sorted(c.items())) for name, c in sorted(TALLY.items())}
    report: dict[str, Any] = {
        "examples": sum(sum(c.values()) for n, c in TALLY.items() if n not in SUMMARY_ONLY),
        "targets": targets,
        "memory": MEASURES,
        "exit_status": int(exitstatus),
    }
    REPORT.write_text(json.dumps(report, indent=2) + "\n")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TALLY:
        return
    outcomes: dict[str, int] = {}
    for name, c in TALLY.items():
        if name not in SUMMARY_ONLY:
            for outcome, n in c.items():
                outcomes[outcome] = outcomes.get(outcome, 0) + n
    total = sum(outcomes.values())
    summary = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
    families = ", ".join(f"{k} {v}" for k, v in sorted(TALLY["families"].items()))
    terminalreporter.write_line(
        f"fuzz: {total} examples over {len(TALLY) - len(SUMMARY_ONLY & set(TALLY))} targets "
        f"({summary}; decoder inputs: {families or 'none'}); "
        f"per target in {REPORT.relative_to(PROJECT_ROOT)}"
    )
