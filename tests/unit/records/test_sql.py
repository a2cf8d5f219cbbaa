"""``records.sql`` on SQLite: the settings of the connection, paging, URLs, many writers,
the migrations up and down, and the trigger that keeps the audit trail append-only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from records import open_records
from records.migrate import current_async, downgrade_async, head, upgrade_async
from records.sql import SqlAuditStore, SqlRecords, async_url, make_engine, safe_url, sqlite_path
from rtic.errors import ServiceError
from tests.unit.records.contract import T0, make_audit, make_case, make_entry

TABLES = {
    "alembic_version",
    "audit_records",
    "case_access",
    "case_links",
    "case_numbers",
    "cases",
    "evidence",
    "portal_credentials",
    "revocations",
    "statements",
    "timeline_entries",
}


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'db' / 'records.sqlite3'}"


@pytest.fixture
async def sql(url: str) -> AsyncIterator[SqlRecords]:
    records = await open_records(url)
    assert isinstance(records, SqlRecords)
    try:
        yield records
    finally:
        await records.close()


async def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


def test_urls_get_an_async_driver_and_hide_passwords(tmp_path: Path) -> None:
    assert async_url("postgresql://u:p@h/db").drivername == "postgresql+asyncpg"
    assert async_url("postgresql+psycopg://u:p@h/db").drivername == "postgresql+psycopg"
    assert async_url("sqlite:///x.db").drivername == "sqlite+aiosqlite"
    assert "secret" not in safe_url("postgresql+asyncpg://u:secret@h/db")
    assert sqlite_path(f"sqlite+aiosqlite:///{tmp_path}/a.db") == tmp_path / "a.db"
    assert sqlite_path("sqlite+aiosqlite://") is None
    assert sqlite_path("postgresql+asyncpg://h/db") is None


async def test_the_folder_is_made_and_the_connection_is_set_up(sql: SqlRecords, url: str) -> None:
    path = sqlite_path(url)
    assert path is not None and path.is_file()
    async with sql.engine.connect() as conn:
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
        assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 30000


async def test_an_in_memory_database_works_on_one_engine() -> None:
    records = await open_records("sqlite+aiosqlite://")
    try:
        await records.cases.save(make_case())
        assert await records.cases.get_case(make_case().case_ref) == make_case()
    finally:
        await records.close()


async def test_a_database_that_does_not_answer_is_a_service_error() -> None:
    with pytest.raises(ServiceError, match="does not answer") as caught:
        await SqlRecords.connect("postgresql+asyncpg://rtic:hunter2@127.0.0.1:1/none")
    assert "hunter2" not in str(caught.value)


async def test_since_reads_page_by_page(sql: SqlRecords) -> None:
    # Many records at one instant: the pages must continue by id, not skip or repeat.
    batch = [make_audit(n, at=T0 + timedelta(seconds=n // 4)) for n in range(23)]
    await sql.audit.append(batch)
    store = SqlAuditStore(sql.engine, page=5)
    got = [r async for r in store.since(T0)]
    assert [r.audit_id for r in got] == [r.audit_id for r in batch]
    assert await store.count_before(T0 + timedelta(seconds=2)) == 8


async def test_a_batch_larger_than_one_statement_allows(sql: SqlRecords) -> None:
    batch = [make_audit(n) for n in range(3500)]  # 11 columns: over 30,000 parameters
    assert await sql.audit.append(batch) == 3500
    assert await sql.audit.append(batch) == 0


async def test_the_audit_trail_refuses_update_and_delete_in_the_database(
    sql: SqlRecords,
) -> None:
    await sql.audit.append([make_audit(1)])
    for statement in ("UPDATE audit_records SET actor = 'x'", "DELETE FROM audit_records"):
        with pytest.raises(IntegrityError, match="append-only"):
            async with sql.engine.begin() as conn:
                await conn.execute(text(statement))
    assert len([r async for r in sql.audit.since(T0)]) == 1


async def test_deleting_a_case_cascades_to_its_entries(sql: SqlRecords) -> None:
    case = make_case()
    await sql.cases.save(case, [make_entry(case, 1)])
    async with sql.engine.begin() as conn:
        await conn.execute(text("DELETE FROM cases"))
        assert (await conn.execute(text("SELECT count(*) FROM timeline_entries"))).scalar() == 0


async def test_processes_writing_at_once_take_turns(url: str) -> None:
    await upgrade_async(url)
    stores = [await SqlRecords.connect(url) for _ in range(3)]
    try:
        got = await asyncio.gather(
            *(s.cases.next_case_number(2026) for s in stores for _ in range(15))
        )
        assert sorted(got) == list(range(1, 46))
    finally:
        for store in stores:
            await store.close()


async def test_migrations_go_up_down_and_up_again(url: str) -> None:
    assert await current_async(url) is None
    await upgrade_async(url)
    assert await current_async(url) == head()
    assert await _tables(url) == TABLES
    await downgrade_async(url, "base")
    assert await current_async(url) is None
    assert await _tables(url) == {"alembic_version"}
    await upgrade_async(url)
    assert await _tables(url) == TABLES


async def test_services_starting_together_migrate_once(url: str) -> None:
    opened = await asyncio.gather(*(open_records(url) for _ in range(3)))
    for records in opened:
        await records.close()
    assert await current_async(url) == head()
