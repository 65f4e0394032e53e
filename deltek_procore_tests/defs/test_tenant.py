"""The factory's per-tenant pieces at work, on one real state database for two tenants:
each tenant's webhook sensor claims only its own inbox and asks for its own assets and ops,
its schedule plans on its own months, and the run configs fit its own job."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest

from deltek_procore import tenants as tenants_module
from deltek_procore.definitions import build_definitions
from deltek_procore.defs.resources import MappingResource, ProcoreResource, StateStoreResource
from deltek_procore.defs.scope import TENANT_TAG, TenantScope, implicit_tenant
from deltek_procore.defs.tenant import implicit_parts, tenant_parts
from deltek_procore.pipeline.ingest import content_hash
from deltek_procore.state.store import StagedRecord, StateStore
from deltek_procore.tenants import Tenant
from deltek_procore.webhooks.events import event_from_dict

ACME = Tenant(name="acme", start_month="2025-01", nightly_cron="15 1 * * *", timezone="UTC")
BETA = Tenant(name="beta", start_month="2026-01", nightly_cron="0 3 * * *", timezone="UTC")


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in list(os.environ):
        if name.startswith(("DELTEK_", "PROCORE_")):
            monkeypatch.delenv(name)
    tenants_module.clear_cache()
    url = f"sqlite:///{tmp_path / 'state.db'}"
    stores = {t.name: StateStore(url, tenant=t.name) for t in (ACME, BETA)}
    resources = {
        "state": StateStoreResource(url=url),
        "procore": ProcoreResource(),
        "mapping": MappingResource(path=str(tmp_path / "none.yaml")),
    }
    yield stores, resources
    for store in stores.values():
        store.dispose()


def _stage_and_event(store: StateStore, record_id: int, period: str) -> None:
    """The same Procore ids in both tenants: a staged direct cost and its webhook event."""
    body = {"id": record_id, "project_id": 7, "status": "approved"}
    store.stage(
        [StagedRecord("direct_cost", record_id, body, content_hash(body), 7, period, "approved")]
    )
    raw = {
        "id": 500 + record_id,
        "timestamp": "2026-11-26T10:00:00Z",
        "event_type": "update",
        "resource_name": "Direct Costs",
        "resource_id": record_id,
        "project_id": 7,
    }
    store.add(event_from_dict(raw), raw)


def test_each_sensor_claims_only_its_own_inbox_and_targets_its_own_assets(world) -> None:
    stores, resources = world
    _stage_and_event(stores["acme"], 1, "2026-03")
    _stage_and_event(stores["beta"], 1, "2026-04")
    instance = dg.DagsterInstance.ephemeral()
    acme = tenant_parts(ACME)
    ctx = dg.build_sensor_context(instance=instance, resources=resources)
    (request,) = acme.webhook_sensor(ctx).run_requests
    assert request.partition_key == "2026-03"  # acme's record, not beta's 2026-04
    assert request.asset_selection and all(k.path[0] == "acme" for k in request.asset_selection)
    assert dg.AssetKey(["acme", "procore_direct_costs"]) in request.asset_selection
    assert set(request.run_config["ops"]) >= {
        "acme__procore_direct_costs",
        "acme__deltek_ap_invoices",
    }
    assert stores["acme"].pending_events() == []
    assert len(stores["beta"].pending_events()) == 1  # untouched by acme's tick
    # beta's own sensor then takes beta's event, for beta's month and keys
    (other,) = tenant_parts(BETA).webhook_sensor(ctx).run_requests
    assert other.partition_key == "2026-04"
    assert all(k.path[0] == "beta" for k in other.asset_selection or [])
    assert stores["beta"].pending_events() == []
    # both configs fit their own job (op names, config fields) and not the other's
    defs = build_definitions([ACME, BETA])
    acme_job = defs.resolve_job_def("acme__sync")
    beta_job = defs.resolve_job_def("beta__sync")
    dg.validate_run_config(acme_job, request.run_config)
    dg.validate_run_config(beta_job, other.run_config)
    with pytest.raises(dg.DagsterInvalidConfigError):
        dg.validate_run_config(beta_job, request.run_config)


def test_each_schedule_plans_on_its_own_months_and_job(world) -> None:
    _stores, resources = world
    when = datetime(2026, 1, 5, 1, 15, tzinfo=timezone.utc)
    ctx = dg.build_schedule_context(scheduled_execution_time=when, resources=resources)
    (acme_window,) = tenant_parts(ACME).nightly_schedule(ctx)
    (beta_window,) = tenant_parts(BETA).nightly_schedule(ctx)
    # acme's months go back to 2025-01: the window spans December and January; beta's first
    # month is January 2026, so its window is that month alone
    assert acme_window.tags["dagster/asset_partition_range_start"] == "2025-12"
    assert beta_window.partition_key == "2026-01"
    assert all(op.startswith("acme__") for op in acme_window.run_config["ops"])
    assert all(op.startswith("beta__") for op in beta_window.run_config["ops"])
    assert tenant_parts(ACME).nightly_schedule.cron_schedule == "15 1 * * *"


def test_pools_and_run_tags_are_per_tenant() -> None:
    acme, beta = TenantScope.of(ACME, {}), TenantScope.of(BETA, {})
    assert (acme.pool, beta.pool) == ("deltek-acme", "deltek-beta")
    assert acme.run_tags[TENANT_TAG] == "acme"
    # the implicit tenant keeps today's value: the Deltek API root
    implicit = TenantScope.of(implicit_tenant(), {"DELTEK_API_URL": "https://x.example/A/api/"})
    assert implicit.run_tags == {TENANT_TAG: "x.example/a/api"}
    assert implicit.pool == "deltek-x-example-a-api"
    assert implicit.key("project_map") == dg.AssetKey(["project_map"])


def test_the_module_level_names_are_the_implicit_tenants() -> None:
    from deltek_procore.definitions import defs
    from deltek_procore.defs.assets import ALL_ASSETS
    from deltek_procore.defs.jobs import sync_job
    from deltek_procore.defs.partitions import accounting_months
    from deltek_procore.defs.schedules import nightly_reconciliation
    from deltek_procore.defs.sensors import procore_webhook_sensor

    parts = implicit_parts()
    assert ALL_ASSETS is parts.assets and sync_job is parts.sync_job
    assert accounting_months is parts.scope.partitions
    assert procore_webhook_sensor is parts.webhook_sensor
    assert nightly_reconciliation is parts.nightly_schedule
    assert defs.resolve_job_def("sync").name == "sync"
