"""The records on real databases: the contract, migrations, the audit trigger, many writers.

Every test runs on SQLite (a temporary file) and on PostgreSQL at 127.0.0.1:5432
(trust auth, user ``postgres``): the session migrates a template database
``rtic_test_<unique>_tpl`` once and each test gets its own copy of it
(``CREATE DATABASE ... TEMPLATE``), dropped afterwards. The PostgreSQL cases skip,
saying why, only when nothing listens on 5432.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from records import open_records
from records.migrate import current_async, downgrade_async, head, upgrade, upgrade_async
from records.protocols import CaseWrite, Records
from records.sql import SqlRecords, make_engine
from rtic.casework import CaseLinkV1, LinkKind
from rtic.settings import PROJECT_ROOT
from tests.unit.records.contract import T0, RecordsContract, make_audit, make_case, make_entry

pytestmark = pytest.mark.integration

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
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


def _pg_listens() -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((PG_HOST, PG_PORT)) == 0


def _pg_url(database: str) -> str:
    return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


async def _admin(*statements: str) -> None:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def _unique_name(kind: str) -> str:
    return f"rtic_test_{os.getpid()}_{uuid.uuid4().hex[:10]}{kind}"


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str | None]:
    """A migrated PostgreSQL database to copy, or None when nothing listens on 5432."""
    if not _pg_listens():
        yield None
        return
    name = _unique_name("_tpl")
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        upgrade(_pg_url(name))
        yield name
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def pg_empty() -> AsyncIterator[str]:
    """An empty PostgreSQL database of the test's own."""
    if not _pg_listens():
        pytest.skip(f"PostgreSQL: nothing listens on {PG_HOST}:{PG_PORT}")
    name = _unique_name("")
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(name)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("records") / "template.sqlite3"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    pg_template: str | None,
) -> AsyncIterator[str]:
    """A database at the newest schema, of the test's own."""
    if request.param == "sqlite":
        path = tmp_path / "records.sqlite3"
        await asyncio.to_thread(shutil.copy, sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    if pg_template is None:
        pytest.skip(f"PostgreSQL: nothing listens on {PG_HOST}:{PG_PORT}")
    name = _unique_name("")
    await _admin(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    try:
        yield _pg_url(name)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database (no tables) of the test's own."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    if not _pg_listens():
        pytest.skip(f"PostgreSQL: nothing listens on {PG_HOST}:{PG_PORT}")
    name = _unique_name("")
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(name)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def records(database_url: str) -> AsyncIterator[Records]:
    opened = await open_records(database_url)
    try:
        yield opened
    finally:
        await opened.close()


class TestRecordsOnDatabases(RecordsContract):
    """The contract of ``tests/unit/records/contract.py`` on SQLite and PostgreSQL."""


async def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_migrations_empty_to_head_to_base_to_head(empty_url: str) -> None:
    assert await current_async(empty_url) is None
    await upgrade_async(empty_url)
    assert await current_async(empty_url) == head()
    assert await _tables(empty_url) == TABLES
    await downgrade_async(empty_url, "base")
    assert await current_async(empty_url) is None
    assert await _tables(empty_url) == {"alembic_version"}
    await upgrade_async(empty_url)
    assert await _tables(empty_url) == TABLES
    records = await open_records(empty_url)  # and it works
    try:
        await records.audit.append([make_audit(1)])
        assert await records.audit.append([make_audit(1)]) == 0
    finally:
        await records.close()


async def test_services_starting_together_migrate_once(empty_url: str) -> None:
    opened = await asyncio.gather(*(open_records(empty_url) for _ in range(4)))
    for records in opened:
        await records.close()
    assert await current_async(empty_url) == head()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_records SET actor = 'someone else'",
        "DELETE FROM audit_records",
        "TRUNCATE audit_records",
    ],
)
async def test_postgresql_refuses_to_change_the_audit_trail(pg_empty: str, statement: str) -> None:
    records = await open_records(pg_empty)
    assert isinstance(records, SqlRecords)
    try:
        await records.audit.append([make_audit(1), make_audit(2)])
        with pytest.raises(DBAPIError, match="append-only"):
            async with records.engine.begin() as conn:
                await conn.execute(text(statement))
        assert len([r async for r in records.audit.since(T0)]) == 2
    finally:
        await records.close()


async def test_the_same_records_saved_twice_leave_the_same_rows(database_url: str) -> None:
    async def snapshot(records: SqlRecords) -> dict[str, list[tuple[object, ...]]]:
        rows = {}
        async with records.engine.connect() as conn:
            for table in sorted(TABLES - {"alembic_version"}):
                result = await conn.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2"))
                rows[table] = [tuple(r) for r in result]
        return rows

    records = await open_records(database_url)
    assert isinstance(records, SqlRecords)
    try:
        case = make_case(officer_in_charge="OFF-1", attending=["OFF-2"])
        entries = [make_entry(case, n) for n in range(5)]
        audit = [make_audit(n) for n in range(50)]
        snapshots = []
        for _delivery in range(2):  # a stream, then the same stream redelivered
            await records.cases.save(case, entries)
            await records.audit.append(audit)
            await records.revocations.revoke(jti="J", sub=None, by="a", reason="r", at=T0)
            snapshots.append(await snapshot(records))
        first, second = snapshots
        assert second == first
        assert len(first["audit_records"]) == 50 and len(first["timeline_entries"]) == 5
    finally:
        await records.close()


async def test_many_writers_get_distinct_consecutive_case_numbers(database_url: str) -> None:
    # Three processes' worth of engines, each with many callers at once.
    writers = [await SqlRecords.connect(database_url) for _ in range(3)]
    try:
        got = await asyncio.gather(
            *(w.cases.next_case_number(2026) for w in writers for _ in range(30))
        )
        assert sorted(got) == list(range(1, 91))
    finally:
        for writer in writers:
            await writer.close()


async def test_a_committed_record_survives_a_new_connection(database_url: str) -> None:
    first = await open_records(database_url)
    await first.cases.save(make_case(), [make_entry(make_case(), 1)])
    await first.close()  # as a process that stops
    again = await open_records(database_url)
    try:
        view = await again.cases.view(make_case().case_ref)
        assert view is not None and len(view.timeline) == 1
    finally:
        await again.close()


async def test_a_database_that_is_missing_is_a_service_error() -> None:
    if not _pg_listens():
        pytest.skip(f"PostgreSQL: nothing listens on {PG_HOST}:{PG_PORT}")
    from rtic.errors import ServiceError

    with pytest.raises(ServiceError):
        await SqlRecords.connect(_pg_url(_unique_name("_missing")))


WRITER = """
import asyncio, sys
from records import open_records
from tests.unit.records.contract import make_audit

async def main(url: str) -> None:
    records = await open_records(url)
    for batch in range(10_000):
        await records.audit.append([make_audit(batch * 50 + n) for n in range(50)])
        print(batch, flush=True)  # only after the commit returned

asyncio.run(main(sys.argv[1]))
"""


async def test_a_writer_killed_mid_stream_loses_no_committed_batch(database_url: str) -> None:
    # SIGKILL: no clean shutdown, no flush. Every batch it reported committed must be
    # there, and no batch may be there in part (a batch is one transaction).
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WRITER,
        database_url,
        stdout=asyncio.subprocess.PIPE,
        cwd=str(PROJECT_ROOT),
    )
    assert proc.stdout is not None
    reported = -1
    try:
        while reported < 20:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
            assert line, "the writer stopped on its own"
            reported = int(line)
    finally:
        proc.kill()
        await proc.wait()
    records = await open_records(database_url)
    try:
        stored = [r.audit_id async for r in records.audit.since(T0 - timedelta(days=1))]
    finally:
        await records.close()
    assert len(stored) % 50 == 0
    assert len(stored) >= (reported + 1) * 50
    assert len(set(stored)) == len(stored)


async def test_a_save_many_that_fails_in_the_database_is_rolled_back(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch's last statement (its links) fails after its cases and entries were
    written: the transaction is rolled back, nothing of the batch is stored."""
    import records.sql as sql

    real = sql._insert_new

    async def failing_links(conn: Any, table: Any, *args: Any, **kwargs: Any) -> set[Any]:
        if table is sql._links:
            raise RuntimeError("the database refused the links")
        return await real(conn, table, *args, **kwargs)

    case = make_case(1)
    writes = [
        CaseWrite(case, [make_entry(case, 1)], [CaseLinkV1(kind=LinkKind.CALL, id="C-1")]),
        CaseWrite(case.model_copy(update={"version": 2}), [make_entry(case, 2)]),
    ]
    opened = await open_records(database_url)
    try:
        monkeypatch.setattr(sql, "_insert_new", failing_links)
        with pytest.raises(RuntimeError):
            await opened.cases.save_many(writes)
        monkeypatch.setattr(sql, "_insert_new", real)
        assert await opened.cases.get_case(case.case_ref) is None
        assert await opened.cases.view(case.case_ref) is None
        assert await opened.cases.list_cases() == []
        assert await opened.cases.save_many(writes) == [
            [make_entry(case, 1)],
            [make_entry(case, 2)],
        ]
    finally:
        await opened.close()
