"""When the police will next be in touch: an estimate for the citizen of a case.

``estimate_next_contact`` is pure: it takes the case (its grade, when it was
opened, whether an officer has been in touch yet, its status), the cases of
the same grade (``records.protocols.ContactTime``: opened, first contacted,
closed) and ``now``, and gives a range (``earliest``, ``latest``) with its
basis in words. Nothing here reads a clock or a database.

How:

1. The usual range. The times to first contact (the first entry of an officer
   assigned, on the way or attending) of the cases of the same grade first
   contacted in the last ``WINDOW`` (14 days): the middle half of them, from
   the first quartile to the third. With fewer than ``MIN_SAMPLES`` such
   cases, the force's usual times for the grade (``USUAL``) instead, said so.
   The range starts at the case's opening.
2. Current demand. The open cases of that grade reported before this one and
   not contacted yet wait ahead of it. At the recent pace (cases contacted in
   the window, per hour) they take ``(ahead + 1) / pace``: when that ends later
   than the usual range, the range moves out to it.
3. The range is never in the past: an estimate already passed becomes "from
   now", and a latest time passed says it is taking longer than usual.

A case an officer has been in touch with already, or a closed one, has no
estimate (``earliest`` and ``latest`` None) and a basis that says why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cases.table import when_words
from records.protocols import ContactTime

WINDOW = timedelta(days=14)
MIN_SAMPLES = 5
MIN_SPREAD = timedelta(minutes=15)

# The usual first-contact times per grade (None: an online report not assessed yet),
# used when there are too few recent cases: the national attendance targets most forces
# publish (emergency within 15-20 minutes, priority within the hour or so), scheduled
# appointments within days, and assessment of an online report within a few days.
USUAL: dict[int | None, tuple[timedelta, timedelta]] = {
    1: (timedelta(minutes=5), timedelta(minutes=20)),
    2: (timedelta(minutes=30), timedelta(hours=2)),
    3: (timedelta(days=1), timedelta(days=3)),
    4: (timedelta(days=1), timedelta(days=5)),
    None: (timedelta(days=1), timedelta(days=5)),
}
GRADE_NAMES: dict[int | None, str] = {
    1: "emergency",
    2: "priority",
    3: "scheduled",
    4: "phone or online",
    None: "not yet assessed",
}


@dataclass(frozen=True)
class NextContact:
    """The estimate: a range (None when there is none) and what it rests on, in words."""

    earliest: datetime | None
    latest: datetime | None
    basis: str

    def as_json(self) -> dict[str, Any]:
        return {
            "earliest": self.earliest.isoformat() if self.earliest else None,
            "latest": self.latest.isoformat() if self.latest else None,
            "basis": self.basis,
        }


def duration_words(span: timedelta) -> str:
    """A duration as a person says it: '15 minutes', '3 hours', '2 days' (minutes rounded
    up; hours and days to the nearest)."""
    minutes = max(1, math.ceil(span.total_seconds() / 60))
    if minutes < 90:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours = round(minutes / 60)
    if hours < 24:
        return f"{hours} hours"
    days = round(hours / 24)
    return f"{days} day{'s' if days != 1 else ''}"


def cases_words(count: int | None, grade: int | None) -> str:
    """'9 priority cases', 'No scheduled cases', 'recent cases not yet assessed'..."""
    noun = "case" if count == 1 else "cases"
    number = "recent" if count is None else ("no" if count == 0 else str(count))
    if grade is None:
        return f"{number} {noun} not yet assessed"
    return f"{number} {GRADE_NAMES.get(grade, 'similar')} {noun}"


def _quartiles(values: Sequence[timedelta]) -> tuple[timedelta, timedelta]:
    """The first and third quartiles (linear between the nearest ranks)."""
    ordered = sorted(values)

    def at(q: float) -> timedelta:
        pos = q * (len(ordered) - 1)
        low, high = math.floor(pos), math.ceil(pos)
        return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)

    return at(0.25), at(0.75)


def _minute(at: datetime) -> datetime:
    """Up to the next whole minute (nobody needs the seconds of an estimate)."""
    whole = at.replace(second=0, microsecond=0)
    return whole if whole == at else whole + timedelta(minutes=1)


def estimate_next_contact(
    *,
    case_ref: str,
    grade: int | None,
    opened_at: datetime,
    now: datetime,
    others: Sequence[ContactTime],
    first_contact_at: datetime | None = None,
    closed: bool = False,
) -> NextContact:
    """When the police will next be in touch with the citizen of ``case_ref``.

    Args:
        case_ref: the case (left out of ``others`` if it is there).
        grade: its grade, None if not assessed yet.
        opened_at: when it was reported.
        now: the time of the estimate.
        others: the cases of the same grade open now or opened within ``WINDOW``
            (``PortalStore.contact_times``).
        first_contact_at: when an officer was first in touch with this case, if yet.
        closed: whether the case is closed.
    """
    if closed:
        return NextContact(None, None, "Your case is closed, so no further contact is planned.")
    if first_contact_at is not None:
        return NextContact(
            None,
            None,
            f"An officer has been on your case since {when_words(first_contact_at)}. They "
            "will tell you what happens next.",
        )
    recent = [
        c.first_contact_at - c.opened_at
        for c in others
        if c.case_ref != case_ref
        and c.first_contact_at is not None
        and now - WINDOW <= c.first_contact_at <= now
        and c.first_contact_at >= c.opened_at
    ]
    ahead = sum(
        1
        for c in others
        if c.case_ref != case_ref
        and not c.closed
        and c.first_contact_at is None
        and c.opened_at < opened_at
    )
    if len(recent) >= MIN_SAMPLES:
        low, high = _quartiles(recent)
        days = WINDOW.days
        usual = (
            f"in the last {days} days the police first contacted {cases_words(len(recent), grade)}"
            f", most of them between {duration_words(low)} and {duration_words(high)} after "
            "they were reported"
        )
    else:
        low, high = USUAL.get(grade, USUAL[None])
        usual = (
            f"there are too few {cases_words(None, grade)} to go on, so this is the usual time for "
            f"first contact: {duration_words(low)} to {duration_words(high)} after a report"
        )
    earliest, latest = opened_at + low, opened_at + high
    waiting = (
        f"{cases_words(ahead, grade)} reported before yours "
        f"{'is' if ahead == 1 else 'are'} waiting for first contact"
    )
    if len(recent) >= MIN_SAMPLES and ahead:
        pace = len(recent) / (WINDOW.total_seconds() / 3600)  # cases contacted per hour
        clears = now + timedelta(hours=(ahead + 1) / pace)
        if clears > latest:
            waiting += f", which at the recent pace takes about {duration_words(clears - now)}"
            earliest, latest = max(earliest, now + (clears - now) / 2), clears
    late = latest <= now
    earliest = max(earliest, now)
    if late:
        latest = now + max(high - low, MIN_SPREAD)
    latest = max(latest, earliest + MIN_SPREAD)
    basis = f"This is an estimate, not a promise: {usual}. {waiting[0].upper()}{waiting[1:]}."
    if late:
        basis = f"It is taking longer than usual. {basis}"
    return NextContact(_minute(earliest), _minute(latest), basis)
