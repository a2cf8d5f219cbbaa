"""The fault suite's and the soak's pure parts: what a screen counts (lost, shown twice,
recovery), the audit records, the docs sections and the soak's memory slope and chart
(benchmarks/fault_tally.py, benchmarks/soak.py)."""

from __future__ import annotations

from typing import Any

from benchmarks import soak
from benchmarks.fault_tally import (
    Screen,
    Sent,
    guarantees_rows,
    recovery_s,
    render_markdown,
    replace_section,
    tally,
    tally_records,
)


def alert(alert_id: str, *reads: str, version: int = 1) -> dict[str, Any]:
    return {
        "type": "alert",
        "alert_id": alert_id,
        "version": version,
        "source_event_ids": list(reads),
    }


def test_a_screen_counts_a_version_shown_again_across_reconnections_but_not_a_new_version() -> None:
    screen = Screen("s")
    screen.on_alert(alert("A", "r1"), 1.0)
    screen.connections += 1  # reconnected; the resume sends A again, then its version 2
    screen.on_alert(alert("A", "r1"), 5.0)
    screen.on_alert(alert("A", "r1", version=2), 5.1)
    screen.on_alert(alert("B", "r2"), 5.2)
    assert screen.twice() == 1
    assert screen.first_seen == {"r1": 1.0, "r2": 5.2}
    assert screen.last_alert_id == "B"
    assert screen.alert_reads == {"A": {"r1"}, "B": {"r2"}}


def test_a_screen_resumes_as_the_desk_does_naming_the_latest_version_it_holds() -> None:
    screen = Screen("s")
    screen.on_alert({**alert("A", "r1"), "created_at": "2026-12-02T10:00:00+00:00"}, 1.0)
    screen.on_alert({**alert("A", "r1", version=2), "created_at": "2026-12-02T10:00:00+00:00"}, 2)
    screen.on_alert({**alert("B", "r2"), "created_at": "2026-12-02T10:07:00+00:00"}, 3.0)
    assert screen.resume_message() == {
        "type": "resume",
        "last_alert_id": "B",
        "since": "2026-12-02T10:02:00+00:00",
        "seen": {"A": 2, "B": 1},
    }


def test_tally_counts_lost_delivered_and_refused_reads() -> None:
    sent = Sent(acked={"r1": 0.0, "r2": 1.0, "r3": 2.0}, refused={"r4": "KafkaTimeoutError"})
    screen = Screen("s")
    screen.on_alert(alert("A", "r1"), 0.2)
    screen.on_alert(alert("C", "r3"), 9.0)
    screen.on_alert(alert("D", "r4"), 9.5)
    out = tally("worker_kill", sent, screen, cleared_at=1.5, events_in=100)
    assert out["alerts_expected"] == 3
    assert out["alerts_delivered"] == 2
    assert out["lost"] == 1 and out["lost_reads"] == ["r2"]
    assert out["refused_by_broker"] == 1 and out["refused_but_alerted"] == 1
    assert out["twice"] == 0
    assert out["recovery_s"] == 7.5  # r3, sent after the fault cleared, shown at 9.0
    assert out["latency_ms"]["n"] == 2 and out["latency_ms"]["max"] == 7000.0


def test_recovery_is_none_when_nothing_sent_after_the_fault_came_through() -> None:
    assert recovery_s({"r1": 0.0, "r2": 5.0}, {"r1": 0.1}, cleared_at=4.0) is None
    assert recovery_s({"r1": 0.0, "r2": 5.0}, {"r1": 0.1, "r2": 6.25}, cleared_at=4.0) == 2.25


def test_records_lost_and_doubled() -> None:
    shown = {("A", 1), ("A", 2), ("B", 1)}
    rows = [
        {"object_id": "A", "detail": {"version": 1, "recipients": [{"connection": "c1"}]}},
        {"object_id": "A", "detail": {"version": 1, "recipients": [{"connection": "c1"}]}},
        {"object_id": "A", "detail": {"version": 1, "recipients": [{"connection": "c2"}]}},
        {"object_id": "B", "detail": {"version": 1, "recipients": [{"connection": "c1"}]}},
        {"object_id": "Z", "detail": {"version": 1, "recipients": [{"connection": "c1"}]}},
    ]
    assert tally_records(shown, rows) == {
        "records_expected": 3,
        "records_written": 2,
        "records_lost": 1,  # A version 2
        "records_doubled": 1,  # A v1 to c1 twice; c2 is a new delivery (a resume)
    }


def results() -> dict[str, Any]:
    screen = Screen("s")
    screen.on_alert(alert("A", "r1"), 1.0)
    screen.on_alert(alert("A", "r1"), 2.0)
    ok = tally("redis_away", Sent(acked={"r1": 0.5}), screen, cleared_at=0.0, events_in=10)
    ok["records"] = {
        "records_expected": 1,
        "records_written": 1,
        "records_lost": 0,
        "records_doubled": 0,
    }
    return {
        "started_at": "2026-12-02T12:00:00+00:00",
        "commit": "abc1234",
        "command": "rtic faults",
        "machine": "test machine",
        "load": {"before": [1, 1, 1], "after": [2, 2, 2]},
        "faults": [ok, {"fault": "broker_stop", "error": "RuntimeError: no flow"}],
    }


def test_the_docs_table_says_each_fault_and_the_one_not_measured() -> None:
    text = render_markdown(results(), "benchmarks/results/x.json")
    assert "| redis_away | 10 | 1 | 1 | 0 | 1 | 1.0 | 1 / 1 / 0 |" in text
    assert "| broker_stop | not measured: RuntimeError: no flow" in text
    assert "`rtic faults`" in text and "abc1234" in text
    table = guarantees_rows(results())
    assert "target met (0, 0, ≤ 10 s, 0 / 0)" in table
    assert "| redis_away | 0 of 1 | 1 | 1.0 | 0 / 0 | **no** |" in table  # shown twice
    assert "| broker_stop | not measured |" in table


def test_the_guarantee_is_met_only_when_every_count_is_and_recovery_is_quick() -> None:
    def row(**over: Any) -> str:
        fault = {
            "fault": "f",
            "lost": 0,
            "alerts_expected": 5,
            "twice": 0,
            "recovery_s": 2.0,
            "records": {"records_lost": 0, "records_doubled": 0},
        }
        fault.update(over)
        return guarantees_rows({"faults": [fault]}).splitlines()[-1]

    assert row().endswith("| yes |")
    assert row(recovery_s=12.5).endswith("| **no** |")
    assert row(recovery_s=None).endswith("| **no** |")
    assert row(records={"records_lost": 1, "records_doubled": 0}).endswith("| **no** |")
    assert row(lost=1).endswith("| **no** |")


def test_replace_section_keeps_the_other_sections_and_the_words_around_the_figures() -> None:
    doc = "# T\n\n## A\n\n(a)\n\n## B\n\n(b)\n\n## C\n\n(c)\n"
    out = replace_section(doc, "B", "new body\n")
    assert out == (
        "# T\n\n## A\n\n(a)\n\n## B\n\n<!-- figures:begin -->\nnew body\n"
        "<!-- figures:end -->\n\n## C\n\n(c)\n"
    )
    said = out.replace("## B\n\n", "## B\n\nWhat we found.\n\n").replace(
        "figures:end -->\n", "figures:end -->\n\nWhat it means.\n"
    )
    again = replace_section(said, "B", "second run")
    assert "What we found.\n\n<!-- figures:begin -->\nsecond run\n<!-- figures:end -->" in again
    assert "What it means.\n\n## C\n\n(c)\n" in again and "new body" not in again
    last = replace_section(doc, "C", "end")
    assert last.endswith("## C\n\n<!-- figures:begin -->\nend\n<!-- figures:end -->\n")
    assert "(b)" in last
    assert replace_section(doc, "D", "d").endswith(
        "## D\n\n<!-- figures:begin -->\nd\n<!-- figures:end -->\n"
    )


def test_soak_memory_slope_and_windows() -> None:
    samples = [
        {"t_s": t, "rss_mib": {"worker": 100 + t / 60 * 2, "gateway": 50.0}}
        for t in range(0, 600, 10)
    ]
    worker = soak.growth(samples, "worker")
    assert worker["first"] == 100 and worker["slope_mib_per_min"] == 2.0
    assert soak.growth(samples, "gateway")["slope_mib_per_min"] == 0.0
    assert soak.growth(samples, "redis")["first"] is None
    w = soak.window(
        {"r1": 1.0, "r2": 2.0, "r3": 50.0}, {"r1": [1.1, 1.3], "r2": [2.5]}, 0.0, 10.0, 0.0
    )
    assert w["n"] == 3 and w["max"] == 500.0


def test_soak_chart_draws_memory_and_latency() -> None:
    data = {
        "minutes": 2,
        "scale": 10,
        "clients": 500,
        "samples": [
            {"t_s": t, "rss_mib": {"worker": 100.0 + t, "gateway": 80.0}} for t in (10, 20, 30)
        ],
        "windows": [{"t_s": 10, "p50": 40.0, "p99": 90.0}, {"t_s": 20, "p50": 50.0, "p99": 120.0}],
    }
    svg = soak.render_svg(data)
    assert svg.startswith("<svg") and svg.count("<polyline") == 4
    assert "Resident memory" in svg and "Alert latency" in svg
