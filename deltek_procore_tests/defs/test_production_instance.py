"""The production profile on the machine's PostgreSQL: Dagster storage and the state store.

Loads deploy/dagster.postgres.yaml as the instance's dagster.yaml (credentials from the
environment, as in production), evaluates the sensor and the schedule on that instance
and executes their run requests in-process on it. Skips when no PostgreSQL server
answers, unless CI=true (then it fails).
"""

from __future__ import annotations

import os
import secrets
import shutil
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from deltek_procore.defs.jobs import TENANT_TAG
from deltek_procore.defs.schedules import nightly_reconciliation
from deltek_procore.defs.sensors import procore_webhook_sensor
from deltek_procore.posting.periods import period_of
from deltek_procore_tests.defs.sync_harness import (
    assert_deltek_exact,
    env_flag,
    harness,
    pick_direct_cost,
)

DEPLOY_YAML = Path(__file__).resolve().parents[2] / "deploy" / "dagster.postgres.yaml"
ADMIN_URL_ENV = "DELTEK_PROCORE_TEST_PG_ADMIN_URL"
DEFAULT_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_database():
    """A fresh database on the local server; dropped afterwards."""
    admin_url = sa.engine.make_url(os.environ.get(ADMIN_URL_ENV, DEFAULT_ADMIN_URL))
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        engine.dispose()
        if env_flag("CI"):
            pytest.fail(f"CI=true but PostgreSQL does not answer at {admin_url!r}: {exc}")
        pytest.skip(f"no PostgreSQL server answers at {admin_url!r}")
    name = f"dp_test_{secrets.token_hex(4)}"
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name)
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture
def pg_instance(pg_database, tmp_path, monkeypatch):
    """A Dagster instance from deploy/dagster.postgres.yaml, configured by environment."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY_YAML, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_PG_HOST", pg_database.host or "127.0.0.1")
    monkeypatch.setenv("DAGSTER_PG_PORT", str(pg_database.port or 5432))
    monkeypatch.setenv("DAGSTER_PG_DB", pg_database.database)
    monkeypatch.setenv("DAGSTER_PG_USERNAME", pg_database.username or "postgres")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", pg_database.password or "")
    # `with`: the instance registers itself as the current definitions-state storage and
    # must unregister on exit, or later Definitions in this process reach a dropped database
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance


def test_profile_loads_postgres_storage_and_the_tenant_queue(pg_instance):
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    assert isinstance(pg_instance.run_storage, PostgresRunStorage)
    assert isinstance(pg_instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(pg_instance.run_coordinator, QueuedRunCoordinator)
    queue = pg_instance.get_concurrency_config().run_queue_config
    assert queue is not None
    assert [
        (limit["key"], limit.get("value"), limit["limit"]) for limit in queue.tag_concurrency_limits
    ] == [(TENANT_TAG, {"applyLimitPerUniqueValue": True}, 1)]
    pools = pg_instance.get_concurrency_config().pool_config
    assert pools.default_pool_limit == 1


def test_sensor_and_schedule_paths_on_postgres(pg_database, pg_instance, tmp_path, monkeypatch):
    state_url = pg_database.render_as_string(hide_password=False)
    with harness(tmp_path / "sandbox", monkeypatch, state_url=state_url, instance=pg_instance) as h:
        assert h.store.dialect == "postgresql"
        h.sync()
        runs = pg_instance.get_runs()
        assert len(runs) == 1 and TENANT_TAG in runs[0].tags

        # webhook -> receiver (inbox on PostgreSQL) -> sensor on the PostgreSQL instance
        record = pick_direct_cost(h)
        h.box.procore.set_record("direct_costs", record["id"], {"status": "approved"})
        h.flush()
        ctx = dg.build_sensor_context(instance=pg_instance, resources=h.resources())
        result = procore_webhook_sensor(ctx)
        (request,) = result.run_requests
        assert request.partition_key == period_of("direct_cost", record)
        h.execute(request)
        invoices = [
            v for v in h.box.deltek.ap_vouchers() if v["Invoice"] == record["invoice_number"]
        ]
        assert len(invoices) == 1

        # nightly schedule on the same instance
        when = datetime.now(timezone.utc).replace(hour=2, minute=0, second=0, microsecond=0)
        sctx = dg.build_schedule_context(
            instance=pg_instance, scheduled_execution_time=when, resources=h.resources()
        )
        requests = list(nightly_reconciliation(sctx))
        assert requests
        for req in requests:
            h.execute(req)
        month = when.strftime("%Y-%m")
        year, mon = (int(p) for p in month.split("-"))
        previous = f"{year - 1}-12" if mon == 1 else f"{year:04d}-{mon - 1:02d}"
        assert_deltek_exact(h, [previous, month])
        stored = {r.run_id for r in pg_instance.get_runs()}
        assert len(stored) == 2 + len(requests)
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in pg_instance.get_runs())
        # the state store's tables sit beside Dagster's in the same database
        tables = set(sa.inspect(h.store.engine).get_table_names())
        assert {"dp_ledger", "dp_webhook_inbox", "runs", "event_logs"} <= tables
