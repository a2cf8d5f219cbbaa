"""Durable records: what must outlive the topics (cases, timelines, evidence metadata,
audit, token revocations), in a database through SQLAlchemy 2 with Alembic migrations.

``protocols`` is what the floors above use; ``sql`` implements it (PostgreSQL in
production, SQLite embedded), ``memory`` in memory for unit tests. A service opens
its records with ``await open_records(settings.database_url)``: the migrations are
applied, then the database is connected. docs/records.md says what is kept, where
and for how long.
"""

from __future__ import annotations

from records.memory import MemoryRecords
from records.protocols import Records

__all__ = ["MemoryRecords", "Records", "open_records"]


async def open_records(url: str) -> Records:
    """The records at ``url`` (``RTIC_DATABASE_URL``), upgraded to the newest schema.

    Safe to call from several processes starting at once (they take turns to migrate).

    Raises:
        rtic.errors.ServiceError: the database does not answer.
    """
    # Imported here: SQLAlchemy and Alembic load only in processes that open a database.
    from records.migrate import upgrade_engine
    from records.sql import SqlRecords

    records = await SqlRecords.connect(url)
    try:
        await upgrade_engine(records.engine)
    except BaseException:
        await records.close()
        raise
    return records
