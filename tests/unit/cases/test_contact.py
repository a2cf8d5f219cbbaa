"""The next-contact estimate: a range from recent first contacts and the queue ahead."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cases.contact import (
    MIN_SAMPLES,
    USUAL,
    WINDOW,
    duration_words,
    estimate_next_contact,
)
from records.protocols import ContactTime
from tests.conftest import NOW

REF = "WM-2026-0000100"


def contacted(n: int, after: timedelta, days_ago: float = 1.0) -> ContactTime:
    """A case reported ``days_ago`` days ago and first contacted ``after`` it."""
    opened = NOW - timedelta(days=days_ago)
    return ContactTime(f"WM-2026-{n:07d}", opened, opened + after, closed=False)


def waiting(n: int, hours_ago: float) -> ContactTime:
    return ContactTime(f"WM-2026-{n:07d}", NOW - timedelta(hours=hours_ago), None, closed=False)


def test_duration_words() -> None:
    assert duration_words(timedelta(seconds=20)) == "1 minute"
    assert duration_words(timedelta(minutes=15)) == "15 minutes"
    assert duration_words(timedelta(minutes=100)) == "2 hours"
    assert duration_words(timedelta(hours=23)) == "23 hours"
    assert duration_words(timedelta(hours=30)) == "1 day"
    assert duration_words(timedelta(hours=50)) == "2 days"


def test_too_few_recent_cases_give_the_usual_times_of_the_grade() -> None:
    est = estimate_next_contact(
        case_ref=REF, grade=3, opened_at=NOW, now=NOW, others=[contacted(1, timedelta(hours=2))]
    )
    low, high = USUAL[3]
    assert (est.earliest, est.latest) == (NOW + low, NOW + high)
    assert "too few recent scheduled cases" in est.basis
    assert "1 day to 3 days" in est.basis
    assert "No scheduled cases reported before yours are waiting" in est.basis
    assert est.basis.startswith("This is an estimate, not a promise")


def test_recent_first_contacts_give_the_middle_half() -> None:
    hours = [1, 2, 3, 4, 5, 6, 7, 8, 9]
    others = [contacted(n, timedelta(hours=h)) for n, h in enumerate(hours)]
    est = estimate_next_contact(case_ref=REF, grade=2, opened_at=NOW, now=NOW, others=others)
    assert (est.earliest, est.latest) == (NOW + timedelta(hours=3), NOW + timedelta(hours=7))
    assert "first contacted 9 priority cases" in est.basis
    assert "between 3 hours and 7 hours" in est.basis


def test_old_contacts_outside_the_window_and_this_case_are_left_out() -> None:
    others = [contacted(n, timedelta(hours=1), days_ago=WINDOW.days + 2) for n in range(10)]
    others.append(ContactTime(REF, NOW, NOW + timedelta(minutes=1), closed=False))
    est = estimate_next_contact(case_ref=REF, grade=1, opened_at=NOW, now=NOW, others=others)
    assert "too few recent emergency cases" in est.basis


def test_a_queue_ahead_moves_the_range_out() -> None:
    # 14 contacts in 14 days: one a day. Ten cases reported earlier still wait.
    others = [contacted(n, timedelta(hours=2), days_ago=n + 0.5) for n in range(14)]
    quiet = estimate_next_contact(case_ref=REF, grade=3, opened_at=NOW, now=NOW, others=others)
    busy_others = others + [waiting(200 + n, hours_ago=n + 1) for n in range(10)]
    busy = estimate_next_contact(case_ref=REF, grade=3, opened_at=NOW, now=NOW, others=busy_others)
    # All took 2 hours: the range is the narrowest one, a quarter of an hour.
    assert (quiet.earliest, quiet.latest) == (
        NOW + timedelta(hours=2),
        NOW + timedelta(hours=2, minutes=15),
    )
    assert busy.latest == NOW + timedelta(days=11)  # (10 ahead + this one) at one a day
    assert busy.earliest is not None and busy.earliest >= NOW + timedelta(days=5)
    assert "10 scheduled cases reported before yours are waiting" in busy.basis
    assert "about 11 days" in busy.basis
    # Cases reported after this one, or closed, or contacted, are not ahead of it.
    later = [
        *others,
        ContactTime("WM-2026-0000500", NOW + timedelta(minutes=5), None, closed=False),
        ContactTime("WM-2026-0000501", NOW - timedelta(hours=1), None, closed=True),
    ]
    assert (
        estimate_next_contact(case_ref=REF, grade=3, opened_at=NOW, now=NOW, others=later) == quiet
    )


def test_the_range_is_never_in_the_past() -> None:
    opened = NOW - timedelta(days=2)
    est = estimate_next_contact(case_ref=REF, grade=2, opened_at=opened, now=NOW, others=[])
    assert est.earliest == NOW
    assert est.latest is not None and est.latest > NOW
    assert est.basis.startswith("It is taking longer than usual.")
    half = estimate_next_contact(
        case_ref=REF, grade=3, opened_at=NOW - timedelta(days=2), now=NOW, others=[]
    )
    assert half.earliest == NOW and half.latest == NOW + timedelta(days=1)
    assert not half.basis.startswith("It is taking longer")


def test_an_ungraded_online_report_and_an_unknown_grade() -> None:
    est = estimate_next_contact(case_ref=REF, grade=None, opened_at=NOW, now=NOW, others=[])
    assert "too few recent cases not yet assessed" in est.basis
    assert (est.earliest, est.latest) == (NOW + USUAL[None][0], NOW + USUAL[None][1])


def test_contacted_or_closed_cases_have_no_range() -> None:
    done = estimate_next_contact(
        case_ref=REF,
        grade=3,
        opened_at=NOW,
        now=NOW + timedelta(hours=5),
        others=[],
        first_contact_at=NOW + timedelta(hours=1),
    )
    assert done.earliest is None and done.latest is None
    assert "on your case since Tuesday 24 November 2026 at 22:30" in done.basis
    closed = estimate_next_contact(
        case_ref=REF, grade=3, opened_at=NOW, now=NOW, others=[], closed=True
    )
    assert closed.as_json() == {
        "earliest": None,
        "latest": None,
        "basis": "Your case is closed, so no further contact is planned.",
    }


@pytest.mark.parametrize("count", [MIN_SAMPLES - 1, MIN_SAMPLES])
def test_min_samples_is_where_recent_data_takes_over(count: int) -> None:
    others = [contacted(n, timedelta(minutes=10)) for n in range(count)]
    est = estimate_next_contact(case_ref=REF, grade=1, opened_at=NOW, now=NOW, others=others)
    uses_data = count >= MIN_SAMPLES
    assert ("too few" not in est.basis) is uses_data
    # Times are whole minutes; the range is at least a quarter of an hour wide.
    assert est.earliest is not None and est.latest is not None
    assert est.earliest.second == 0 and est.latest - est.earliest >= timedelta(minutes=15)
    assert est.as_json()["earliest"] == est.earliest.isoformat()
