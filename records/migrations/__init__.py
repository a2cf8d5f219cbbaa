"""Alembic migrations of the records database (applied by ``records.migrate``)."""
