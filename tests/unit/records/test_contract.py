"""The records contract on ``MemoryRecords`` and on SQLite in a temporary file.

PostgreSQL runs the same tests in ``tests/integration/test_records_sql.py``.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from records import MemoryRecords, open_records
from records.migrate import upgrade
from records.protocols import Records
from tests.unit.records.contract import RecordsContract


@pytest.fixture(scope="module")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file at the newest schema, copied by each test (one migration per module)."""
    path = tmp_path_factory.mktemp("records") / "template.sqlite3"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(params=["memory", "sqlite"])
async def records(
    request: pytest.FixtureRequest, migrated_sqlite: Path, tmp_path: Path
) -> AsyncIterator[Records]:
    if request.param == "memory":
        yield MemoryRecords()
        return
    path = tmp_path / "records.sqlite3"
    await asyncio.to_thread(shutil.copy, migrated_sqlite, path)
    sql = await open_records(f"sqlite+aiosqlite:///{path}")
    try:
        yield sql
    finally:
        await sql.close()


class TestRecords(RecordsContract):
    pass
