"""The fuzz suite's report: how many examples each target tried and how each ended,
as a line at the end of the session and as artifacts/fuzz.json."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rtic.settings import PROJECT_ROOT
from tests.fuzz.hostile import MEASURES, TALLY

REPORT = PROJECT_ROOT / "artifacts" / "fuzz.json"


def _detail(name: str) -> bool:
    """Tallies that break examples down (input families, statuses), not targets."""
    return name == "families" or name.startswith("detail:")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not TALLY and not MEASURES:
        return
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    targets = {name: dict(sorted(c.items())) for name, c in sorted(TALLY.items())}
    report: dict[str, Any] = {
        "examples": sum(sum(c.values()) for n, c in TALLY.items() if not _detail(n)),
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
        if not _detail(name):
            for outcome, n in c.items():
                outcomes[outcome] = outcomes.get(outcome, 0) + n
    total = sum(outcomes.values())
    summary = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
    families = ", ".join(f"{k} {v}" for k, v in sorted(TALLY["families"].items()))
    terminalreporter.write_line(
        f"fuzz: {total} examples over {sum(not _detail(n) for n in TALLY)} targets "
        f"({summary}; decoder inputs: {families or 'none'}); "
        f"per target in {REPORT.relative_to(PROJECT_ROOT)}"
    )
