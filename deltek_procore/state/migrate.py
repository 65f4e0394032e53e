"""Schema migrations of the state store, by Alembic, run from code (operators need no
alembic.ini).

- a fresh database gets today's tables (`schema.metadata`) and is stamped at the head;
- a database written before Alembic (dp_meta schema_version 3, no version table) is stamped
  at the baseline (0003) and upgraded, every row kept as tenant ``default``; an older one
  (1, 2) is brought to the baseline by 0003 first;
- otherwise Alembic applies the revisions it lacks.

Several Dagster step processes open the store at once: PostgreSQL serialises them on an
advisory lock, SQLite on a write lock (BEGIN IMMEDIATE) held for the whole migration, so the
second process waits and finds the work done. The version table is ``dp_alembic_version``:
Dagster keeps its own ``alembic_version`` in a database the state store may share.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.pool import NullPool

from deltek_procore.state import schema

if TYPE_CHECKING:
    from alembic.config import Config

VERSION_TABLE = "dp_alembic_version"
BASELINE = "0003"  # the tables of schema_version 3, the last release before Alembic
HEAD = "0004"
LOCK_ID = 424242  # the advisory lock the pre-Alembic migrate() took: old and new exclude
SCRIPTS = Path(__file__).with_name("migrations")


def alembic_config(connection: Connection) -> Config:
    # Alembic is imported only to migrate: every store opening (each CLI command, each
    # Dagster step) reads the version itself and would otherwise pay Alembic's 0.4 s import.
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    cfg.attributes["connection"] = connection
    return cfg


def current_revision(connection: Connection) -> str | None:
    """The Alembic revision the database is at; None before Alembic (or when empty)."""
    if not sa.inspect(connection).has_table(VERSION_TABLE):
        return None
    version = sa.table(VERSION_TABLE, sa.column("version_num"))
    return connection.execute(sa.select(version.c.version_num)).scalar()


def schema_version(connection: Connection) -> int:
    """The schema version `status` and `ping` print: the revision number, or the pre-Alembic
    dp_meta value, or 0 for a database without our tables."""
    revision = current_revision(connection)
    if revision:
        return int(revision)
    if not sa.inspect(connection).has_table(schema.meta.name):
        return 0
    value = connection.execute(
        sa.select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")
    ).scalar()
    return int(value) if value else 0


def upgrade(engine: Engine) -> int:
    """Bring the database to the head revision; safe to run from several processes at once.
    Returns the schema version."""
    for attempt in range(5):
        try:
            with engine.connect() as conn:
                if current_revision(conn) == HEAD:
                    return int(HEAD)
            with _migration_lock(engine) as conn:
                _upgrade(conn)
            return int(HEAD)
        except (OperationalError, IntegrityError):
            # SQLite answers "database is locked" at once, without waiting, where waiting
            # could deadlock (e.g. switching a new file to WAL): try again shortly.
            if engine.dialect.name == "postgresql" or attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))
    return int(HEAD)


def _upgrade(conn: Connection) -> None:
    revision = current_revision(conn)
    if revision == HEAD:
        return  # another process migrated while this one waited for the lock
    from alembic import command

    cfg = alembic_config(conn)
    if revision is None:
        inspector = sa.inspect(conn)
        ours = [t.name for t in schema.metadata.sorted_tables if inspector.has_table(t.name)]
        if not ours:
            schema.metadata.create_all(conn)
            conn.execute(
                schema.meta.insert().values(key="schema_version", value=str(schema.SCHEMA_VERSION))
            )
            command.stamp(cfg, "head")
            return
        if schema.meta.name in ours and schema_version(conn) >= 3:
            command.stamp(cfg, BASELINE)
    command.upgrade(cfg, "head")


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    """A transaction that no other migrating process can enter at the same time."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": LOCK_ID})
            yield conn
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        with engine.begin() as conn:  # one connection only: nothing to race with
            yield conn
        return
    # pysqlite runs DDL outside transactions; this engine of its own makes the whole
    # migration one transaction that starts with SQLite's write lock.
    locked = sa.create_engine(engine.url, poolclass=NullPool, connect_args={"timeout": 60})

    @sa.event.listens_for(locked, "connect")
    def _manual(dbapi_conn, _record) -> None:  # noqa: ANN001 - SQLAlchemy event signature
        dbapi_conn.isolation_level = None

    @sa.event.listens_for(locked, "begin")
    def _immediate(conn) -> None:  # noqa: ANN001
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    try:
        with locked.begin() as conn:
            yield conn
    finally:
        locked.dispose()
