"""Dagster's embedded SQLite event log, with one engine per database file kept open.

Dagster's `SqliteEventLogStorage` builds a new SQLAlchemy engine (and compiles every
statement again) for each statement: about five per event, 8-9 ms an event, which was
more than half of Dagster's own time in a one-month sync (`bench/README.md`, "fixed
cost"). This subclass keeps the engine of each database file (a run's shard, the index)
and reuses its one connection under the storage's own lock, so an event costs about 2.5
ms. Same files, same tables, same layout: a `$DAGSTER_HOME` written by either
class is read by the other, and the webserver and daemon may use either.

The embedded default (`dagster.yaml` at the repository root) names it; the production
profile stores Dagster's data in PostgreSQL and does not use it.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from dagster._config import Field, StringSource
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._serdes import ConfigurableClassData
from sqlalchemy.pool import StaticPool

ENGINES_KEPT = 8  # database files kept open: the index and the runs in progress


def event_log_dir(dagster_home: str) -> str:
    """Where Dagster's default SQLite storage keeps event logs under an instance's home."""
    return os.path.join(dagster_home, "history", "runs")


def _pragmas(dbapi_conn: Any, _record: Any) -> None:
    """WAL with synchronous=NORMAL, as the state store: never corrupt, one fsync per
    checkpoint instead of per commit (a power cut may drop the last events, not a file)."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` that reuses one connection per database file."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[str, tuple[int, sa.Engine]] = OrderedDict()
        super().__init__(base_dir, inst_data)

    @classmethod
    def config_type(cls) -> Any:
        """`dagster_home` (the instance's home: the event logs go where Dagster's default puts
        them) or `base_dir` (the event-log directory itself, as Dagster's class takes)."""
        return {
            "dagster_home": Field(StringSource, is_required=False),
            "base_dir": Field(StringSource, is_required=False),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Any
    ) -> PooledSqliteEventLogStorage:
        config = dict(config_value)
        if config.get("base_dir"):
            return cls(config["base_dir"], inst_data)
        if config.get("dagster_home"):
            return cls(event_log_dir(config["dagster_home"]), inst_data)
        raise ValueError(
            "PooledSqliteEventLogStorage needs `dagster_home` or `base_dir` in its config "
            "(dagster.yaml: event_log_storage.config)"
        )

    def _engine(self, shard: str) -> sa.Engine:
        """This process's engine for `shard` (a forked child never reuses its parent's)."""
        held = self._engines.get(shard)
        if held is not None and held[0] == os.getpid():
            self._engines.move_to_end(shard)
            return held[1]
        engine = sa.create_engine(
            self.conn_string_for_shard(shard),
            poolclass=StaticPool,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        )
        sa.event.listen(engine, "connect", _pragmas)
        self._engines[shard] = (os.getpid(), engine)
        while len(self._engines) > ENGINES_KEPT:
            pid, old = self._engines.popitem(last=False)[1]
            if pid == os.getpid():
                old.dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[sa.Connection]:
        with self._db_lock:  # one statement at a time per storage, as in the parent class
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                with conn.begin():
                    yield conn
                if shard != INDEX_SHARD_NAME:
                    # Fold the WAL into the run's file, as closing the last connection did: a
                    # webserver watching the run is woken by that file changing.
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def dispose(self) -> None:
        for pid, engine in self._engines.values():
            if pid == os.getpid():
                engine.dispose()
        self._engines.clear()
        super().dispose()
