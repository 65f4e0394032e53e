"""Shared fixtures: PostgreSQL (real, per-test schema or database) and the sandbox."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_BASE = os.environ.get(
    "DELTEK_PROCORE_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
)


def _pg_engine(url: str = PG_BASE) -> sa.Engine:
    """An engine to the test server, or skip (fail under CI=true) when none answers."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "no server"
        engine.dispose()
        message = f"PostgreSQL at {url.split('@')[-1]} does not answer: {exc.__class__.__name__}"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: PostgreSQL tests may not skip)")
        pytest.skip(message)
    return engine


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A state-store URL on the real server, isolated in a fresh schema."""
    engine = _pg_engine()
    schema = f"dp_{uuid.uuid4().hex[:12]}"
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh database for a Dagster instance (dagster-postgres wants a whole database)."""
    engine = _pg_engine()
    name = f"dp_dagster_{uuid.uuid4().hex[:10]}"
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield name
    finally:
        with engine.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
                ),
                {"n": name},
            )
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        engine.dispose()


def write_dagster_yaml(home: Path, pg_database: str | None = None) -> None:
    """SQLite storage (the default) or dagster-postgres storage in `pg_database`."""
    text = "telemetry:\n  enabled: false\n"
    if pg_database:
        text += (
            "storage:\n  postgres:\n    postgres_db:\n      username: postgres\n"
            "      password: ''\n      hostname: 127.0.0.1\n      port: 5432\n"
            f"      db_name: {pg_database}\n"
        )
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(text, encoding="utf-8")


@pytest.fixture(autouse=True)
def _no_stale_defs_state_storage() -> Iterator[None]:
    """A DagsterInstance that is never closed leaves its defs-state storage as the process's
    current one (a ContextVar Dagster sets on instance creation), holding a weak reference to
    the dead instance; the next test that builds a repository then fails with "Attempted to
    resolve undefined DagsterInstance weakref". Each test starts and ends without one."""
    from dagster._core.storage.defs_state.base import _current_storage

    _current_storage.set(None)
    yield
    _current_storage.set(None)
