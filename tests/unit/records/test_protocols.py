"""Both implementations satisfy ``records.protocols.Records``, as mypy sees them.

The typed assignments below are the check; the test runs mypy over this file so
that a drift between a protocol and an implementation fails the unit tests too,
not only ``make typecheck``.
"""

from __future__ import annotations

from pathlib import Path

from records import MemoryRecords, open_records
from records.protocols import AuditStore, CaseStore, Records, RevocationStore
from records.sql import SqlRecords
from rtic.settings import PROJECT_ROOT


async def _typed(url: str) -> list[Records]:
    memory: Records = MemoryRecords()
    sql: Records = await SqlRecords.connect(url)
    opened: Records = await open_records(url)
    stores: tuple[CaseStore, AuditStore, RevocationStore] = (
        memory.cases,
        memory.audit,
        memory.revocations,
    )
    assert stores
    return [memory, sql, opened]


def test_memory_and_sql_records_satisfy_the_protocol_for_mypy() -> None:
    from mypy import api

    out, err, status = api.run(
        [str(Path(__file__)), "--config-file", str(PROJECT_ROOT / "pyproject.toml")]
    )
    assert status == 0, out + err
