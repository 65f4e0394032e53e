"""The factory: one tenant's Dagster definitions, built from its scope.

`build_tenant_definitions(tenant)` gives a tenant its own asset keys (prefixed by its name;
none for the implicit tenant, so today's keys, partitions and run history stay), partitions
(its first month), asset checks, sync job, webhook sensor, nightly schedule and catch-up
sensor (its cron and timezone), review job, posting pool and run tags. `definitions.py`
merges them for every tenant of `load_tenants()`, with the one deployment-wide daily summary.
Everything here is naming and wiring: the work is in the plain layers the assets call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import dagster as dg

from deltek_procore.defs.assets import build_assets
from deltek_procore.defs.checks import build_checks
from deltek_procore.defs.jobs import build_sync_job
from deltek_procore.defs.review import build_review_job
from deltek_procore.defs.schedules import build_catch_up_sensor, build_nightly_schedule
from deltek_procore.defs.scope import TenantScope, implicit_tenant
from deltek_procore.defs.sensors import build_webhook_sensor
from deltek_procore.defs.summary import summary_parts
from deltek_procore.tenants import Tenant


@dataclass(frozen=True)
class TenantParts:
    """One tenant's definitions, each by role (tests and the CLI reach them by name too:
    `tenant.dagster_name("sync")`, `..."procore_webhook_sensor"`, ...)."""

    scope: TenantScope
    assets: list[dg.AssetsDefinition]
    checks: list[dg.AssetChecksDefinition]
    sync_job: Any
    review_job: dg.JobDefinition
    webhook_sensor: dg.SensorDefinition
    nightly_schedule: dg.ScheduleDefinition
    catch_up: dg.SensorDefinition

    def definitions(self) -> dg.Definitions:
        return dg.Definitions(
            assets=self.assets,
            asset_checks=self.checks,
            jobs=[self.sync_job, self.review_job],
            sensors=[self.webhook_sensor, self.catch_up],
            schedules=[self.nightly_schedule],
        )


@lru_cache(maxsize=64)
def _parts(scope: TenantScope) -> TenantParts:
    assets = build_assets(scope)
    sync = build_sync_job(scope, assets)
    return TenantParts(
        scope=scope,
        assets=assets,
        checks=build_checks(scope),
        sync_job=sync,
        review_job=build_review_job(scope),
        webhook_sensor=build_webhook_sensor(scope, sync),
        nightly_schedule=build_nightly_schedule(scope, sync),
        catch_up=build_catch_up_sensor(scope, sync),
    )


def tenant_parts(tenant: Tenant, env: Mapping[str, str] | None = None) -> TenantParts:
    """The tenant's definitions by role; equal tenants and settings give the same objects."""
    return _parts(TenantScope.of(tenant, env))


def build_tenant_definitions(
    tenant: Tenant, env: Mapping[str, str] | None = None
) -> dg.Definitions:
    """One tenant's definitions (no resources: `definitions.py` binds one set for all)."""
    return tenant_parts(tenant, env).definitions()


@lru_cache(maxsize=1)
def implicit_parts() -> TenantParts:
    """The implicit tenant's definitions: what the module-level names of defs/* are. Built
    once, from the environment of the first use (as module-level definitions were)."""
    return tenant_parts(implicit_tenant())


@lru_cache(maxsize=1)
def implicit_summary() -> tuple:
    return summary_parts([implicit_tenant()])
