"""Durable records: what must outlive the topics (cases, timelines, evidence metadata,
audit, token revocations), in a database through SQLAlchemy 2 with Alembic migrations.

``protocols`` is what the floors above use; ``sql`` implements it (PostgreSQL in
production, SQLite embedded), ``memory`` in memory for unit tests.
"""
