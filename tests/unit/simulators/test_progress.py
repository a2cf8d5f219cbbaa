"""Progress bars: drawn on a terminal, silent in a pipe."""

from __future__ import annotations

import io

from rich.console import Console

from simulators.progress import progress_bar


def test_nothing_is_drawn_when_stderr_is_not_a_terminal(capsys) -> None:  # type: ignore[no-untyped-def]
    with progress_bar("replay x", total=3, console=Console(file=io.StringIO())) as bar:
        for _ in range(3):
            bar.advance()
        bar.print("a line")
    assert not bar.shown and bar.completed == 3
    assert capsys.readouterr().err == "a line\n"


def test_a_bar_with_a_total_shows_count_and_rate_on_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    with progress_bar("replay calls.csv", total=40, console=console) as bar:
        for _ in range(40):
            bar.advance()
        bar.print("replay: could not send event 7: broker gone")
    text = out.getvalue()
    assert bar.shown
    assert "replay calls.csv" in text and "40/40" in text and "events/s" in text
    assert "could not send event 7" in text


def test_a_live_counter_without_a_total() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    with progress_bar("record to r.jsonl", console=console) as bar:
        bar.advance(1234)
    assert "1,234 events" in out.getvalue()
