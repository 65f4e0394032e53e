"""nightly_reconciliation: webhooks are not guaranteed, so every night re-read and post."""

import os

import dagster as dg

from deltek_procore.defs.jobs import sync_job

INGEST_ASSETS = (
    "procore_subcontractor_invoices",
    "procore_direct_costs",
    "procore_commitments",
    "procore_change_orders",
)


def previous_month(key: str) -> str:
    year, month = (int(p) for p in key.split("-"))
    return f"{year - 1}-12" if month == 1 else f"{year:04d}-{month - 1:02d}"


def reconciliation_requests(scheduled: str) -> list[dg.RunRequest]:
    """Two runs: the previous and the current month, each re-reading recent updates."""
    current = scheduled[:7]
    out = []
    for partition in (previous_month(current), current):
        out.append(
            dg.RunRequest(
                run_key=f"nightly-{scheduled[:10]}-{partition}",
                partition_key=partition,
                run_config={"ops": {a: {"config": {"reconcile": True}} for a in INGEST_ASSETS}},
                tags={"deltek-procore/trigger": "nightly"},
            )
        )
    return out


@dg.schedule(
    job=sync_job,
    cron_schedule=os.environ.get("DELTEK_PROCORE_NIGHTLY_CRON", "0 2 * * *"),
    execution_timezone=os.environ.get("DELTEK_PROCORE_TIMEZONE", "UTC"),
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Re-reads the current and previous period and posts what a webhook missed.",
)
def nightly_reconciliation(context: dg.ScheduleEvaluationContext):
    return reconciliation_requests(context.scheduled_execution_time.strftime("%Y-%m-%d"))
