"""The one job: the whole graph for a month (or a range of months in a backfill)."""

from __future__ import annotations

import os

import dagster as dg

TENANT_TAG = "deltek-procore/tenant"


def tenant_tag() -> str:
    """A run tag naming the Deltek tenant, for the run queue's one-per-tenant limit."""
    url = (os.environ.get("DELTEK_API_URL") or "unconfigured").rstrip("/").lower()
    return url.split("://", 1)[-1][:63]


sync_job = dg.define_asset_job(
    "sync",
    # the daily summary has its own job and schedule: a sync never sends it
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups("operations"),
    tags={TENANT_TAG: tenant_tag()},
    description="Read Procore, refresh the maps, post the month's approved spend to Deltek.",
)
