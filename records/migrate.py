"""Apply the records' migrations in code: no alembic.ini, works from an installed package.

``upgrade(url)`` and ``downgrade(url, revision)`` are for commands (``rtic db``);
``upgrade_async(url)`` and ``upgrade_engine(engine)`` for services, which apply
the migrations at start from inside their event loop. All of them run Alembic on
one connection of an async engine (``AsyncConnection.run_sync``; ``migrations/env.py``
picks that connection up).

Several processes may start at once (``rtic up`` starts the case worker and the
gateway together) and each upgrades: on PostgreSQL an advisory lock held for the
migration's transaction makes them take turns; on SQLite a lock file beside the
database does.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from records.sql import make_engine, sqlite_path

if TYPE_CHECKING:
    from alembic.config import Config

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"
# pg_advisory_xact_lock key: any constant the engine uses for nothing else ("RTIC").
_PG_LOCK_KEY = 0x52544943


class _QuietAlembic(logging.Filter):
    """Keep Alembic's "Running upgrade ..." lines; drop what it says at every start."""

    CHATTER = ("Context impl", "Will assume", "setup plugin")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.CHATTER)


for _name in ("alembic.runtime.migration", "alembic.runtime.plugins"):
    if not any(isinstance(f, _QuietAlembic) for f in logging.getLogger(_name).filters):
        logging.getLogger(_name).addFilter(_QuietAlembic())


# Alembic is imported where it is used: after the filter above is on its loggers (it logs
# as its modules load).


def alembic_config() -> Config:
    """Alembic's configuration, built in code (script location: this package)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    return config


def head() -> str:
    """The newest revision this code knows."""
    from alembic.script import ScriptDirectory

    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None, "records/migrations/versions has no revision"
    return revision


def _run(connection: Connection, action: str, revision: str) -> None:
    from alembic import command

    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    config = alembic_config()
    config.attributes["connection"] = connection
    if action == "upgrade":
        command.upgrade(config, revision)
    else:
        command.downgrade(config, revision)


def _current(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


@contextlib.asynccontextmanager
async def _file_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """On a SQLite file: an exclusive lock on ``<database>.migrate-lock`` (waited for in a
    thread, so the event loop goes on). Elsewhere: nothing (PostgreSQL locks in SQL)."""
    path = sqlite_path(engine.url)
    if path is None:
        yield
        return
    lock = path.with_name(path.name + ".migrate-lock").open("a")
    try:
        await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


async def _migrate(engine: AsyncEngine, action: str, revision: str) -> None:
    async with _file_lock(engine), engine.begin() as conn:
        await conn.run_sync(_run, action, revision)


async def upgrade_engine(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade the database behind ``engine`` to ``revision`` (default: the newest)."""
    await _migrate(engine, "upgrade", revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url``, from inside a running event loop."""
    engine = make_engine(url)
    try:
        await upgrade_engine(engine, revision)
    finally:
        await engine.dispose()


async def downgrade_async(url: str, revision: str) -> None:
    """Downgrade the database at ``url`` to ``revision`` (``base``: drop every table)."""
    engine = make_engine(url)
    try:
        await _migrate(engine, "downgrade", revision)
    finally:
        await engine.dispose()


async def current_async(url: str) -> str | None:
    """The revision the database at ``url`` is at (None: never migrated)."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_current)
    finally:
        await engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` (for commands; services use ``upgrade_async``)."""
    asyncio.run(upgrade_async(url, revision))


def downgrade(url: str, revision: str) -> None:
    """Downgrade the database at ``url`` to ``revision`` (for commands)."""
    asyncio.run(downgrade_async(url, revision))


def current(url: str) -> str | None:
    """The revision the database at ``url`` is at (for commands)."""
    return asyncio.run(current_async(url))
