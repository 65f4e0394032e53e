"""nightly_reconciliation: webhooks are not guaranteed, so every night re-read and post.

Two runs at most, both idempotent (the write protocol skips what the ledger already
holds): the previous and current month re-read by `updated_at` window and posted in
one run, and a catch-up run for approved records of older months that a sync staged
but never decided about (`completeness.missing_from_ledger`).

One schedule and one catch-up sensor per tenant (`build_nightly_schedule`,
`build_catch_up_sensor`), on the tenant's cron, timezone, months and sync job.
"""

# No `from __future__ import annotations`: Dagster reads resource annotations at runtime.
from typing import Any

import dagster as dg

from deltek_procore.defs.assets import CATCH_UP_TAG
from deltek_procore.defs.resources import MappingResource, StateStoreResource
from deltek_procore.defs.scope import NIGHTLY_CRON_ENV, TIMEZONE_ENV, TenantScope
from deltek_procore.defs.sensors import run_request
from deltek_procore.pipeline.completeness import gaps_by_kind, missing_from_ledger
from deltek_procore.pipeline.triggers import WINDOW_TAG, reconciliation_plans

__all__ = [
    "CATCH_UP_TAG",
    "NIGHTLY_CRON_ENV",
    "TIMEZONE_ENV",
    "build_catch_up_sensor",
    "build_nightly_schedule",
    "reconciliation_requests",
]


def reconciliation_requests(
    day: str,
    gaps: dict[str, dict[int, str]] | None = None,
    months: list[str] | None = None,
    scope: TenantScope | None = None,
) -> list[dg.RunRequest]:
    """The night's run requests for `day` (YYYY-MM-DD); same day, same run keys."""
    return [run_request(plan, scope) for plan in reconciliation_plans(day, gaps, months=months)]


def build_nightly_schedule(scope: TenantScope, job: dg.JobDefinition) -> dg.ScheduleDefinition:
    """The tenant's nightly window run (and catch-up of older months) on its cron."""
    tenant = scope.tenant

    @dg.schedule(
        name=scope.name("nightly_reconciliation"),
        job=job,
        cron_schedule=scope.nightly_cron,
        execution_timezone=scope.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Re-reads the current and previous period and posts what a webhook missed.",
    )
    def nightly_reconciliation(
        context: dg.ScheduleEvaluationContext,
        state: StateStoreResource,
        mapping: MappingResource,
    ) -> list[dg.RunRequest]:
        when = context.scheduled_execution_time
        months = scope.partitions.get_partition_keys(current_time=when)
        try:
            types = mapping.load(tenant).defaults.direct_cost_types
            gaps = gaps_by_kind(
                missing_from_ledger(state.store(tenant), direct_cost_types=types, changed=True)
            )
        except Exception as exc:  # noqa: BLE001 - the window run must still happen
            context.log.warning(f"could not read ledger gaps ({exc}); window run only")
            gaps = {}
        return reconciliation_requests(when.strftime("%Y-%m-%d"), gaps, months, scope)

    return nightly_reconciliation


def build_catch_up_sensor(scope: TenantScope, job: dg.JobDefinition) -> dg.SensorDefinition:
    """After the tenant's nightly window run: its older months' undecided records."""
    tenant = scope.tenant

    @dg.run_status_sensor(
        name=scope.name("nightly_catch_up"),
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[job],
        request_job=job,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Right after a nightly window run: posts the records it staged that belong "
        "to older months (a late approval), the same night instead of the next.",
    )
    def nightly_catch_up(
        context: dg.RunStatusSensorContext, state: StateStoreResource, mapping: MappingResource
    ) -> list[dg.RunRequest] | dg.SkipReason:
        run = context.dagster_run
        if not run.tags.get(WINDOW_TAG):
            return dg.SkipReason("not a nightly window run")
        types = mapping.load(tenant).defaults.direct_cost_types
        gaps = gaps_by_kind(
            missing_from_ledger(state.store(tenant), direct_cost_types=types, changed=True)
        )
        day = run.tags[WINDOW_TAG].removeprefix("window-")
        plans = [p for p in reconciliation_plans(day, gaps) if p.label.startswith("catch-up")]
        if not plans:
            return dg.SkipReason("the nightly run left no approved record undecided")
        requests = []
        for plan in plans:
            request = run_request(plan, scope)
            requests.append(
                request.with_replaced_attrs(
                    run_key=f"after-{run.run_id}-{request.run_key}",
                    tags={**request.tags, CATCH_UP_TAG: run.run_id},
                )
            )
        return requests

    return nightly_catch_up


def __getattr__(name: str) -> Any:
    """The implicit tenant's schedule and sensor under their names before tenants."""
    if name in ("nightly_reconciliation", "nightly_catch_up"):
        from deltek_procore.defs.tenant import implicit_parts

        parts = implicit_parts()
        return parts.nightly_schedule if name == "nightly_reconciliation" else parts.catch_up
    raise AttributeError(name)
