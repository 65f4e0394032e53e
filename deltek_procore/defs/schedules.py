"""nightly_reconciliation: webhooks are not guaranteed, so every night re-read and post.

Two runs at most, both idempotent (the write protocol skips what the ledger already
holds): the previous and current month re-read by `updated_at` window and posted in
one run, and a catch-up run for approved records of older months that a sync staged
but never decided about (`completeness.missing_from_ledger`).
"""

# No `from __future__ import annotations`: Dagster reads resource annotations at runtime.
import os

import dagster as dg

from deltek_procore.defs.jobs import sync_job
from deltek_procore.defs.partitions import accounting_months
from deltek_procore.defs.resources import MappingResource, StateStoreResource
from deltek_procore.defs.sensors import run_request
from deltek_procore.pipeline.completeness import gaps_by_kind, missing_from_ledger
from deltek_procore.pipeline.triggers import WINDOW_TAG, reconciliation_plans

NIGHTLY_CRON_ENV = "DELTEK_PROCORE_NIGHTLY_CRON"
CATCH_UP_TAG = "deltek-procore/catch-up-of"
TIMEZONE_ENV = "DELTEK_PROCORE_TIMEZONE"


def reconciliation_requests(
    day: str, gaps: dict[str, dict[int, str]] | None = None, months: list[str] | None = None
) -> list[dg.RunRequest]:
    """The night's run requests for `day` (YYYY-MM-DD); same day, same run keys."""
    return [run_request(plan) for plan in reconciliation_plans(day, gaps, months=months)]


@dg.schedule(
    job=sync_job,
    cron_schedule=os.environ.get(NIGHTLY_CRON_ENV, "0 2 * * *"),
    execution_timezone=os.environ.get(TIMEZONE_ENV, "UTC"),
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Re-reads the current and previous period and posts what a webhook missed.",
)
def nightly_reconciliation(
    context: dg.ScheduleEvaluationContext, state: StateStoreResource, mapping: MappingResource
) -> list[dg.RunRequest]:
    when = context.scheduled_execution_time
    months = accounting_months.get_partition_keys(current_time=when)
    try:
        types = mapping.load().defaults.direct_cost_types
        gaps = gaps_by_kind(
            missing_from_ledger(state.store(), direct_cost_types=types, changed=True)
        )
    except Exception as exc:  # noqa: BLE001 - the window run must still happen
        context.log.warning(f"could not read ledger gaps ({exc}); window run only")
        gaps = {}
    return reconciliation_requests(when.strftime("%Y-%m-%d"), gaps, months)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[sync_job],
    request_job=sync_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Right after a nightly window run: posts the records it staged that belong to "
    "older months (a late approval), the same night instead of the next.",
)
def nightly_catch_up(
    context: dg.RunStatusSensorContext, state: StateStoreResource, mapping: MappingResource
) -> list[dg.RunRequest] | dg.SkipReason:
    run = context.dagster_run
    if not run.tags.get(WINDOW_TAG):
        return dg.SkipReason("not a nightly window run")
    types = mapping.load().defaults.direct_cost_types
    gaps = gaps_by_kind(missing_from_ledger(state.store(), direct_cost_types=types, changed=True))
    day = run.tags[WINDOW_TAG].removeprefix("window-")
    plans = [p for p in reconciliation_plans(day, gaps) if p.label.startswith("catch-up")]
    if not plans:
        return dg.SkipReason("the nightly run left no approved record undecided")
    requests = []
    for plan in plans:
        request = run_request(plan)
        requests.append(
            request.with_replaced_attrs(
                run_key=f"after-{run.run_id}-{request.run_key}",
                tags={**request.tags, CATCH_UP_TAG: run.run_id},
            )
        )
    return requests
