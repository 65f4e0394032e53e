"""TenantScope: what one tenant's Dagster definitions are built from (names, keys, calendar).

The factory (`defs/tenant.py`) builds every asset, check, job, sensor and schedule of a tenant
from its scope, so two tenants never share a key, a name, a partition set or a posting pool.
The implicit tenant (no tenants file) gets today's keys and names: no prefix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import dagster as dg

from deltek_procore.tenants import DEFAULT_TENANT, Tenant

START_MONTH_ENV = "DELTEK_PROCORE_START_MONTH"
DEFAULT_START_MONTH = "2024-01"
NIGHTLY_CRON_ENV = "DELTEK_PROCORE_NIGHTLY_CRON"
DEFAULT_NIGHTLY_CRON = "0 2 * * *"
TIMEZONE_ENV = "DELTEK_PROCORE_TIMEZONE"
TENANT_TAG = "deltek-procore/tenant"
#: The tenant's name on every run of a named tenant (the implicit tenant's runs keep today's tags).
TENANT_NAME_TAG = "deltek-procore/tenant-name"


def implicit_tenant() -> Tenant:
    """The one tenant today's environment defines when there is no tenants file."""
    return Tenant(name=DEFAULT_TENANT, implicit=True)


def deltek_tag(env: Mapping[str, str]) -> str:
    """Today's TENANT_TAG value: the Deltek API root's host and path (no secret in it)."""
    url = (env.get("DELTEK_API_URL") or "unconfigured").rstrip("/").lower()
    return url.split("://", 1)[-1][:63]


@dataclass(frozen=True)
class TenantScope:
    """One tenant as its definitions see it; equal scopes build the same definitions."""

    tenant: Tenant
    start_month: str
    nightly_cron: str
    timezone: str
    #: TENANT_TAG value: the tenant's name, or today's Deltek-URL value for the implicit one
    tag_value: str

    @classmethod
    def of(cls, tenant: Tenant, env: Mapping[str, str] | None = None) -> TenantScope:
        seen = tenant.environment(env)
        return cls(
            tenant=tenant,
            start_month=seen.get(START_MONTH_ENV) or DEFAULT_START_MONTH,
            nightly_cron=seen.get(NIGHTLY_CRON_ENV) or DEFAULT_NIGHTLY_CRON,
            timezone=seen.get(TIMEZONE_ENV) or "UTC",
            tag_value=deltek_tag(seen) if tenant.implicit else tenant.name,
        )

    @cached_property
    def partitions(self) -> dg.MonthlyPartitionsDefinition:
        """Accounting months from the tenant's first month; end_offset=1: the month in
        progress is a partition too, so this month's spend posts now."""
        return dg.MonthlyPartitionsDefinition(
            start_date=self.start_month, fmt="%Y-%m", end_offset=1
        )

    def key(self, name: str) -> dg.AssetKey:
        return dg.AssetKey([*self.tenant.key_prefix, name])

    def name(self, base: str) -> str:
        """A job, sensor, schedule, op or group name (also an asset's op name: Dagster names
        the op of key [tenant, asset] ``tenant__asset``)."""
        return self.tenant.dagster_name(base)

    @property
    def pool(self) -> str:
        """The posting pool: one posting step per tenant at a time, across runs."""
        return "deltek-" + (re.sub(r"[^a-z0-9]+", "-", self.tag_value).strip("-") or "tenant")

    @property
    def run_tags(self) -> dict[str, str]:
        """Tags of every sync run: the run queue allows one per TENANT_TAG value."""
        tags = {TENANT_TAG: self.tag_value}
        if not self.tenant.implicit:
            tags[TENANT_NAME_TAG] = self.tenant.name
        return tags

    def run_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """A run config written with asset names (pipeline.triggers) for this tenant's ops."""
        ops = config.get("ops")
        if self.tenant.implicit or not ops:
            return config
        return {**config, "ops": {self.name(op): value for op, value in ops.items()}}
