"""The sync job of one tenant: its whole graph for a month (or a range in a backfill)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import dagster as dg

from deltek_procore.defs.scope import TENANT_NAME_TAG, TENANT_TAG, TenantScope, deltek_tag

__all__ = ["TENANT_NAME_TAG", "TENANT_TAG", "build_sync_job", "tenant_tag"]


def tenant_tag() -> str:
    """The implicit tenant's TENANT_TAG value (the Deltek API root), for the run queue's
    one-per-tenant limit."""
    return deltek_tag(os.environ)


def build_sync_job(scope: TenantScope, assets: Sequence[dg.AssetsDefinition]) -> dg.JobDefinition:
    """Only this tenant's assets (and their checks); the daily summary has its own job."""
    return dg.define_asset_job(
        scope.name("sync"),
        selection=dg.AssetSelection.assets(*assets),
        tags=scope.run_tags,
        description="Read Procore, refresh the maps, post the month's approved spend to Deltek"
        + ("." if scope.tenant.implicit else f" (tenant {scope.tenant.name})."),
    )


def __getattr__(name: str):
    if name == "sync_job":  # the implicit tenant's, as before tenants
        from deltek_procore.defs.tenant import implicit_parts

        return implicit_parts().sync_job
    raise AttributeError(name)
