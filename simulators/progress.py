"""Progress on stderr for the long commands (rich): replay, record, simulate, reference load.

``progress_bar(description, total=N)`` shows a bar with the count, the rate and
the time left when the total is known, and a live counter with the rate
otherwise. It draws only when stderr is a terminal, as pip and tqdm do: in a
pipe, a log file or a test, the commands print their summary lines and
nothing else, so output that scripts parse stays the same.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Items per second, e.g. ``1,234 events/s``."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed or 0:,.0f} {self.unit}/s", style="progress.data.speed")


class ProgressBar:
    """What a command updates: ``advance`` as it goes, ``print`` for a line above the bar."""

    def __init__(self, progress: Progress | None, task: TaskID | None) -> None:
        self._progress = progress
        self._task = task
        self.completed = 0.0

    @property
    def shown(self) -> bool:
        """Whether a bar is drawn (stderr is a terminal)."""
        return self._progress is not None

    def advance(self, amount: float = 1) -> None:
        self.completed += amount
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, amount)

    def print(self, message: str) -> None:
        """A line on stderr that does not tear the bar."""
        if self._progress is not None:
            self._progress.console.print(message, markup=False, highlight=False)
        else:
            print(message, file=sys.stderr)


@contextmanager
def progress_bar(
    description: str,
    *,
    total: float | None = None,
    unit: str = "events",
    console: Console | None = None,
) -> Iterator[ProgressBar]:
    """A bar (``total`` known) or a live counter, on stderr when it is a terminal.

    Args:
        description: what is being done, e.g. ``"replay calls.csv"``.
        total: how many items there will be; None for a live counter.
        unit: the items' name, for the counter and the rate.
        console: where to draw (tests pass one that writes to a buffer).
    """
    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield ProgressBar(None, None)
        return
    columns: list[ProgressColumn | str]
    if total is not None:
        columns = [
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(unit),
            RateColumn(unit),
            TimeRemainingColumn(),
        ]
    else:
        columns = [
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn(f"{{task.completed:,.0f}} {unit}"),
            RateColumn(unit),
            TimeElapsedColumn(),
        ]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=total)
        yield ProgressBar(progress, task)
