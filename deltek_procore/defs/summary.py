"""daily_summary: what waits for a person, every morning, in the UI and through a notifier."""

# No `from __future__ import annotations`: Dagster reads resource annotations at runtime.
import os

import dagster as dg

from deltek_procore import notify
from deltek_procore.defs.resources import StateStoreResource
from deltek_procore.pipeline import daily_summary as summary_layer

SUMMARY_CRON_ENV = "DELTEK_PROCORE_SUMMARY_CRON"


@dg.asset(
    group_name="operations",
    kinds={"email"},
    description="Quarantined, review, failed and missing-in-Deltek records per project and "
    "reason, with amounts; sent by e-mail or a Slack-compatible webhook when configured.",
)
def daily_summary(
    context: dg.AssetExecutionContext, state: StateStoreResource
) -> dg.MaterializeResult:
    summary = summary_layer.build(state.store())
    deliveries = notify.send(summary, os.environ)
    for d in deliveries:
        (context.log.info if d.ok else context.log.warning)(f"{d.channel}: {d.detail}")
    return dg.MaterializeResult(
        metadata={
            "summary": dg.MetadataValue.md(f"**{summary.subject()}**\n\n{summary.markdown()}"),
            "waiting": summary.total,
            **{state_name: n for state_name, n in sorted(summary.counts().items())},
            "sent": ", ".join(f"{d.channel}: {'ok' if d.ok else d.detail}" for d in deliveries)
            or "no notifier configured (UI only)",
        }
    )


daily_summary_job = dg.define_asset_job(
    "daily_summary_job",
    selection=[daily_summary],
    description="Build and send the daily summary of what waits for a person.",
)

daily_summary_schedule = dg.ScheduleDefinition(
    name="daily_summary_schedule",
    job=daily_summary_job,
    cron_schedule=os.environ.get(SUMMARY_CRON_ENV, "0 7 * * *"),
    execution_timezone=os.environ.get("DELTEK_PROCORE_TIMEZONE", "UTC"),
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every morning: what waits for a person.",
)
