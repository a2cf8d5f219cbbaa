"""Alembic's environment for the records database (run by ``records.migrate``).

``records.migrate`` opens an async engine, takes a connection and hands it over in
``config.attributes["connection"]``: the migrations then run synchronously on that
connection (``AsyncConnection.run_sync``), inside the caller's event loop and
transaction. Run by the ``alembic`` command instead (a developer writing a new
revision, with ``sqlalchemy.url`` set), this file opens its own async engine.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from records.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite alters tables by copying them: let later revisions do that.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_own_engine(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


def _run_offline(url: str) -> None:
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


given = config.attributes.get("connection")
if given is not None:
    _run(given)
elif context.is_offline_mode():
    _run_offline(config.get_main_option("sqlalchemy.url") or "")
else:
    asyncio.run(_run_own_engine(config.get_main_option("sqlalchemy.url") or ""))
