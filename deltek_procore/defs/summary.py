"""daily_summary: what waits for a person, every morning, in the UI and through a notifier.

One asset, job and schedule for the whole deployment: the summary covers every tenant,
grouped by tenant (with one tenant it is that tenant's summary, as before tenants).
"""

# No `from __future__ import annotations`: Dagster reads resource annotations at runtime.
import os
from collections.abc import Sequence
from typing import Any

import dagster as dg

from deltek_procore import notify
from deltek_procore.defs.resources import StateStoreResource
from deltek_procore.pipeline import daily_summary as summary_layer
from deltek_procore.tenants import Tenant

SUMMARY_CRON_ENV = "DELTEK_PROCORE_SUMMARY_CRON"


def build_summary_definitions(tenants: Sequence[Tenant]) -> dg.Definitions:
    """The deployment-wide daily summary over `tenants` (asset, job, schedule)."""
    asset, job, schedule = summary_parts(tenants)
    return dg.Definitions(assets=[asset], jobs=[job], schedules=[schedule])


def summary_parts(
    tenants: Sequence[Tenant],
) -> tuple[dg.AssetsDefinition, Any, dg.ScheduleDefinition]:
    tenants = list(tenants)

    @dg.asset(
        name="daily_summary",
        group_name="operations",
        kinds={"email"},
        description="Quarantined, review, failed and missing-in-Deltek records per project and "
        "reason, with amounts"
        + ("" if len(tenants) == 1 else ", grouped by tenant")
        + "; sent by e-mail or a Slack-compatible webhook when configured.",
    )
    def daily_summary(
        context: dg.AssetExecutionContext, state: StateStoreResource
    ) -> dg.MaterializeResult:
        summary = summary_layer.build_tenants({t.name: state.store(t) for t in tenants})
        deliveries = notify.send(summary, os.environ)
        for d in deliveries:
            (context.log.info if d.ok else context.log.warning)(f"{d.channel}: {d.detail}")
        per_tenant = (
            {}
            if len(tenants) == 1
            else {f"waiting: {name}": s.total for name, s in summary.by_tenant.items()}
        )
        return dg.MaterializeResult(
            metadata={
                "summary": dg.MetadataValue.md(f"**{summary.subject()}**\n\n{summary.markdown()}"),
                "waiting": summary.total,
                **per_tenant,
                **{state_name: n for state_name, n in sorted(summary.counts().items())},
                "sent": ", ".join(f"{d.channel}: {'ok' if d.ok else d.detail}" for d in deliveries)
                or "no notifier configured (UI only)",
            }
        )

    job = dg.define_asset_job(
        "daily_summary_job",
        selection=[daily_summary],
        description="Build and send the daily summary of what waits for a person.",
    )
    schedule = dg.ScheduleDefinition(
        name="daily_summary_schedule",
        job=job,
        cron_schedule=os.environ.get(SUMMARY_CRON_ENV, "0 7 * * *"),
        execution_timezone=os.environ.get("DELTEK_PROCORE_TIMEZONE", "UTC"),
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Every morning: what waits for a person.",
    )
    return daily_summary, job, schedule


def __getattr__(name: str) -> Any:
    """The single-tenant summary's parts under their names before tenants."""
    if name not in ("daily_summary", "daily_summary_job", "daily_summary_schedule"):
        raise AttributeError(name)
    from deltek_procore.defs.tenant import implicit_summary

    asset, job, schedule = implicit_summary()
    return {"daily_summary": asset, "daily_summary_job": job}.get(name, schedule)
