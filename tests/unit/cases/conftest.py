"""Fixtures of the case module's tests: a case book on the in-memory records and a clock
the test moves."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cases.book import CaseBook
from records.memory import MemoryRecords
from tests.conftest import NOW
from tests.unit.cases.messages import AREA, Clock


@pytest.fixture
def records() -> MemoryRecords:
    return MemoryRecords()


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW + timedelta(hours=1))


@pytest.fixture
def book(records: MemoryRecords, clock: Clock) -> CaseBook:
    return CaseBook(records.cases, "WM", clock, area_codes=lambda lat, lon: list(AREA))
