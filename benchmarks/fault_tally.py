"""The fault suite's counting and its report, without I/O (``benchmarks/faults.py`` runs it).

A ``Screen`` is what one analyst's page keeps: every alert frame it was shown, across
all of its connections (a page that reconnects and resumes is still one screen). From
what was sent (hotlisted reads the broker acknowledged, each of which must raise one
alert) and what a screen saw, ``tally`` gives a fault's figures: alerts expected,
delivered, lost, shown twice, the time to recover, and the alerts' latency.
``tally_records`` counts the audit records the database holds for the alerts shown.

``render_markdown`` and ``replace_section`` write the figures into
docs/reliability.md under the suite's own headings.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from benchmarks.report import percentiles

SCHEMA = 1
RESUME_OVERLAP_MIN = 5  # a resume's `since`: this long before the last alert seen
MAX_SEEN = 1000  # alert versions a resume names as `seen` (the contract's bound)


@dataclass
class Screen:
    """Alert frames one screen was shown, over every connection it made.

    ``shown`` counts frames per (alert id, version): a count above one is an alert
    shown twice (a page that keeps the highest version would hide it, but the
    gateway promises each version once per screen, resume included).
    """

    name: str
    shown: Counter[tuple[str, int]] = field(default_factory=Counter)
    first_seen: dict[str, float] = field(default_factory=dict)  # read id -> when (monotonic)
    alert_reads: dict[str, set[str]] = field(default_factory=dict)  # alert id -> its reads
    connections: int = 0
    resumes: list[dict[str, Any]] = field(default_factory=list)
    last_alert_id: str | None = None
    last_created_at: str | None = None
    errors: list[str] = field(default_factory=list)

    def on_alert(self, alert: Mapping[str, Any], at: float) -> None:
        """One ``alert`` frame, received at ``at`` (monotonic seconds)."""
        alert_id = str(alert.get("alert_id"))
        self.shown[(alert_id, int(alert.get("version") or 1))] += 1
        self.last_alert_id = alert_id
        if alert.get("created_at"):
            self.last_created_at = str(alert["created_at"])
        reads = self.alert_reads.setdefault(alert_id, set())
        for read_id in alert.get("source_event_ids") or ():
            reads.add(str(read_id))
            self.first_seen.setdefault(str(read_id), at)

    def resume_message(self) -> dict[str, Any]:
        """The ``resume`` a page sends on reconnecting (dashboards/static/rtic.js): the
        last alert id it saw, ``since`` five minutes before that alert was created, and
        the (at most 1,000) latest alert versions it holds as ``seen``."""
        msg: dict[str, Any] = {"type": "resume", "last_alert_id": self.last_alert_id}
        if self.last_created_at is not None:
            last = datetime.fromisoformat(self.last_created_at)
            msg["since"] = (last - timedelta(minutes=RESUME_OVERLAP_MIN)).isoformat()
        latest: dict[str, int] = {}
        for alert_id, version in self.shown:
            latest[alert_id] = max(version, latest.get(alert_id, 0))
        msg["seen"] = dict(list(latest.items())[-MAX_SEEN:])
        return msg

    def on_resumed(self, reply: Mapping[str, Any], at: float) -> None:
        self.resumes.append(
            {"at": round(at, 3), "count": reply.get("count"), "complete": reply.get("complete")}
        )

    def twice(self) -> int:
        """Frames beyond the first of any (alert id, version)."""
        return sum(n - 1 for n in self.shown.values() if n > 1)


@dataclass
class Sent:
    """Hotlisted reads offered during a fault: acknowledged (expected to alert) or not."""

    acked: dict[str, float] = field(default_factory=dict)  # read id -> sent at (monotonic)
    refused: dict[str, str] = field(default_factory=dict)  # read id -> the producer's error

    def offered(self) -> int:
        return len(self.acked) + len(self.refused)


def recovery_s(
    sent: Mapping[str, float], seen: Mapping[str, float], cleared_at: float
) -> float | None:
    """Seconds from ``cleared_at`` (the fault over: the kill done, the service back) to
    the first alert shown for a read sent at or after it; None if none came."""
    arrivals = [seen[r] for r, at in sent.items() if at >= cleared_at and r in seen]
    return round(min(arrivals) - cleared_at, 2) if arrivals else None


def tally(
    name: str,
    sent: Sent,
    screen: Screen,
    *,
    cleared_at: float,
    events_in: int,
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """A fault's figures: expected = hotlisted reads the broker acknowledged; delivered =
    those whose alert the screen was shown; lost = the rest; twice = frames shown again
    (any alert, ours or the simulator's); recovery and latency from the send times."""
    expected = set(sent.acked)
    delivered = expected & set(screen.first_seen)
    latencies = [(screen.first_seen[r] - sent.acked[r]) * 1000 for r in delivered]
    return {
        "fault": name,
        "events_in": events_in,
        "hotlisted_offered": sent.offered(),
        "refused_by_broker": len(sent.refused),
        "refused_but_alerted": len(set(sent.refused) & set(screen.first_seen)),
        "alerts_expected": len(expected),
        "alerts_delivered": len(delivered),
        "lost": len(expected - delivered),
        "lost_reads": sorted(expected - delivered)[:20],
        "twice": screen.twice(),
        "frames": sum(screen.shown.values()),
        "recovery_s": recovery_s(sent.acked, screen.first_seen, cleared_at),
        "latency_ms": percentiles(latencies),
        "connections": screen.connections,
        "resumes": screen.resumes,
        "screen_errors": screen.errors[:10],
        "notes": list(notes),
    }


def tally_records(
    shown: Iterable[tuple[str, int]], rows: Iterable[Mapping[str, Any]]
) -> dict[str, int]:
    """Audit records for the alert versions a screen was shown.

    ``rows`` are ``alert_delivered`` records (``object_id``, ``detail``). Expected: one
    record naming each (alert id, version) shown; written: those with one or more;
    doubled: a (alert id, version, connection) listed by more than one record (the
    same delivery recorded twice; a resumed connection is a new delivery).
    """
    wanted = set(shown)
    written: set[tuple[str, int]] = set()
    per_delivery: Counter[tuple[str, int, str]] = Counter()
    for row in rows:
        detail = row.get("detail") or {}
        key = (str(row.get("object_id")), int(detail.get("version") or 0))
        if key not in wanted:
            continue
        written.add(key)
        for r in detail.get("recipients") or ():
            per_delivery[(*key, str(r.get("connection")))] += 1
    return {
        "records_expected": len(wanted),
        "records_written": len(written),
        "records_lost": len(wanted - written),
        "records_doubled": sum(n - 1 for n in per_delivery.values() if n > 1),
    }


# ---- the report -----------------------------------------------------------------------


def _n(x: Any) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:,.1f}"
    if isinstance(x, int):
        return f"{x:,}"
    return str(x)


def fault_rows(results: Mapping[str, Any]) -> list[str]:
    """The table: one row per fault."""
    out = [
        "| fault | events in | alerts expected | delivered | lost | twice | recovery s "
        "| records expected / written / doubled |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for f in results.get("faults", []):
        if "error" in f:
            out.append(f"| {f['fault']} | not measured: {f['error'][:120]} | | | | | | |")
            continue
        rec = f.get("records") or {}
        records = (
            f"{_n(rec.get('records_expected'))} / {_n(rec.get('records_written'))} / "
            f"{_n(rec.get('records_doubled'))}"
            if rec
            else "–"
        )
        out.append(
            f"| {f['fault']} | {_n(f['events_in'])} | {_n(f['alerts_expected'])} "
            f"| {_n(f['alerts_delivered'])} | {_n(f['lost'])} | {_n(f['twice'])} "
            f"| {_n(f['recovery_s'])} | {records} |"
        )
    return out


def header_lines(results: Mapping[str, Any]) -> list[str]:
    return [
        f"Run {results.get('started_at', '?')} on commit `{results.get('commit', '?')}`"
        f"{' (uncommitted changes)' if results.get('dirty') else ''}: `{results.get('command')}`.",
        f"Machine: {results.get('machine', '?')}; load before {results.get('load', {}).get('before')}"
        f", after {results.get('load', {}).get('after')}. The machine was shared with other "
        "work while this ran: times are noisy, counts are not.",
    ]


def render_markdown(results: Mapping[str, Any], json_rel: str) -> str:
    """The body of the "Fault suite" section for one run."""
    lines = [*header_lines(results), f"Figures: `{json_rel}`.", "", *fault_rows(results), ""]
    lines.append(
        "Counted at one analyst screen per fault (it reconnects and sends `resume` with "
        "the last alert id it saw, as the pages do). *Events in*: every message the "
        "load and the hotlisted stream offered during the fault's window. *Alerts "
        "expected*: hotlisted reads the broker acknowledged, each on its own hotlist "
        "entry. *Lost*: expected and never shown. *Twice*: the same alert id and "
        "version shown again on that screen (any alert). *Recovery*: from the fault's "
        "end (the kill, the service back) to the first alert shown for a read sent "
        "after it. *Records*: `alert_delivered` audit rows in the database for the "
        "alert versions shown."
    )
    lines.append("")
    for f in results.get("faults", []):
        if "error" in f:
            continue
        say = [*f.get("notes", [])]
        if f.get("refused_by_broker"):
            say.append(
                f"{f['refused_by_broker']} hotlisted reads were refused by the broker "
                f"(not expected; {f.get('refused_but_alerted', 0)} of them alerted anyway)"
            )
        lat = f.get("latency_ms") or {}
        say.append(
            f"alert latency p50 {_n(lat.get('p50'))} ms, p99 {_n(lat.get('p99'))} ms, "
            f"max {_n(lat.get('max'))} ms; {f.get('connections')} connection(s)"
        )
        if f.get("resumes"):
            say.append(
                "resumes answered: "
                + ", ".join(f"count {r['count']} complete {r['complete']}" for r in f["resumes"])
            )
        if f.get("restarts"):
            say.append("restarted by the harness: " + "; ".join(f["restarts"]))
        lines.append(f"- **{f['fault']}**: " + "; ".join(say) + ".")
    return "\n".join(lines) + "\n"


RECOVERY_TARGET_S = 10.0  # "within seconds": what the table holds a recovery to


def guarantees_rows(results: Mapping[str, Any]) -> str:
    """The "Guarantees in one table" body: the target and what this run measured."""
    lines = [
        "| fault | alerts lost | shown twice | recovery s | records lost / doubled "
        f"| target met (0, 0, ≤ {RECOVERY_TARGET_S:g} s, 0 / 0) |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for f in results.get("faults", []):
        if "error" in f:
            lines.append(f"| {f['fault']} | not measured | | | | – |")
            continue
        rec = f.get("records") or {}
        recovery = f["recovery_s"]
        met = (
            f["lost"] == 0
            and f["twice"] == 0
            and recovery is not None
            and recovery <= RECOVERY_TARGET_S
            and not rec.get("records_lost")
            and not rec.get("records_doubled")
        )
        records = (
            f"{_n(rec.get('records_lost'))} / {_n(rec.get('records_doubled'))}" if rec else "–"
        )
        lines.append(
            f"| {f['fault']} | {f['lost']} of {f['alerts_expected']} | {f['twice']} "
            f"| {_n(recovery)} | {records} | {'yes' if met else '**no**'} |"
        )
    return "\n".join(lines) + "\n"


def replace_section(doc: str, heading: str, body: str) -> str:
    """``doc`` with the figures under ``## heading`` replaced by ``body``.

    The figures sit between ``<!-- figures:begin -->`` and ``<!-- figures:end -->``;
    what the section says around them (written by hand) is kept. A section without
    the markers is replaced whole; a missing heading is appended."""
    marked = f"{BEGIN}\n{body.rstrip()}\n{END}"
    marker = f"## {heading}\n"
    start = doc.find(marker)
    if start < 0:
        return doc.rstrip("\n") + f"\n\n{marker}\n{marked}\n"
    begin = start + len(marker)
    end = doc.find("\n## ", begin)
    end = len(doc) if end < 0 else end
    section = doc[begin:end]
    a, b = section.find(BEGIN), section.find(END)
    if a >= 0 and b > a:
        section = section[:a] + marked + section[b + len(END) :]
        return doc[:begin] + section + doc[end:]
    return doc[:begin] + "\n" + marked + "\n" + doc[end:]


BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"
