"""Alembic environment: runs on the connection deltek_procore.state.migrate passes in (it
holds the migration lock and the transaction), with our own version table."""

from __future__ import annotations

from alembic import context

from deltek_procore.state import schema
from deltek_procore.state.migrate import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=schema.metadata,
    version_table=VERSION_TABLE,
    render_as_batch=True,  # SQLite changes primary keys by copying the table
)
with context.begin_transaction():
    context.run_migrations()
