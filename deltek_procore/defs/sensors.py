"""procore_webhook_sensor: stored webhook events -> a few targeted runs of the sync job.

Each tick claims the pending inbox rows (marks them with the run key that covers
them) and returns one run request per accounting month, or per month range when a
burst spans many months. The cursor remembers recent claims: a claim whose run never
started (the tick failed after marking) is requested again with the same run key,
which Dagster de-duplicates if the run did start after all.

One sensor per tenant (`build_webhook_sensor`): it reads only its tenant's inbox and requests
runs of its tenant's sync job, with the asset names of `pipeline.triggers` turned into the
tenant's keys and op names.
"""

# No `from __future__ import annotations`: Dagster reads resource annotations at runtime.
import json
import time
from typing import Any

import dagster as dg

from deltek_procore.defs.resources import ProcoreResource, StateStoreResource
from deltek_procore.defs.scope import TenantScope
from deltek_procore.pipeline import ingest
from deltek_procore.pipeline.triggers import (
    RunPlan,
    TickPlan,
    events_for_run,
    handle_deletions,
    plan_runs,
)
from deltek_procore.state.store import StateStore

MAX_EVENTS_PER_TICK = 2000
CLAIM_GRACE_S = 15 * 60  # a claimed run that has not started by then is requested again
CLAIM_TTL_S = 24 * 3600  # after a day the nightly reconciliation has covered it anyway
RUN_KEY_TAG = "dagster/run_key"


def run_request(plan: RunPlan, scope: TenantScope | None = None) -> dg.RunRequest:
    """The run a plan asks for, on `scope`'s assets (None: the implicit tenant's)."""
    scope = scope or _implicit()
    selection = plan.selection()
    return dg.RunRequest(
        run_key=plan.run_key,
        partition_key=plan.partition_key,
        run_config=scope.run_config(plan.run_config()),
        asset_selection=None if selection is None else [scope.key(a) for a in selection],
        tags=plan.tags(),
    )


def _implicit() -> TenantScope:
    from deltek_procore.defs.tenant import implicit_parts

    return implicit_parts().scope


def _locator(procore: ProcoreResource, store: StateStore, scope: TenantScope):
    """Fetch records never seen before, so their accounting month is known."""

    def locate(kind: str, ids: list[int]) -> dict[int, str | None]:
        projects = [r.record_id for r in store.staged("project")]
        ingest.ingest_projects(procore.client(scope.tenant), store, kind, projects, ids=ids)
        return {r.record_id: r.period for r in store.staged(kind, ids=ids)}

    return locate


def _load_claims(cursor: str | None) -> dict[str, float]:
    try:
        claims = json.loads(cursor or "{}").get("claims", {})
        return {str(k): float(v) for k, v in claims.items()}
    except (ValueError, AttributeError, TypeError):
        return {}


def _run_exists(instance: dg.DagsterInstance, run_key: str, job_name: str) -> bool:
    """A run of this tenant's job with the key (another tenant's events may hash alike)."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(job_name=job_name, tags={RUN_KEY_TAG: run_key}), limit=1
    )
    return bool(runs)


def _recover(
    context: dg.SensorEvaluationContext,
    scope: TenantScope,
    store: StateStore,
    claims: dict[str, float],
    now: float,
) -> list[dg.RunRequest]:
    """Re-request claims whose run never started; forget those that did or are too old."""
    again: list[dg.RunRequest] = []
    for run_key, claimed in list(claims.items()):
        age = now - claimed
        if age < CLAIM_GRACE_S:
            continue
        if age > CLAIM_TTL_S or _run_exists(context.instance, run_key, scope.name("sync")):
            del claims[run_key]
            continue
        rows = events_for_run(store, run_key)
        plans = plan_runs(store, rows, None, months=_months(scope), max_runs=1).plans
        same = [p for p in plans if p.run_key == run_key]
        if same:
            context.log.warning(f"run {run_key} never started; requesting it again")
            again.append(run_request(same[0], scope))
        else:
            del claims[run_key]  # its records moved months; the nightly run covers them
    return again


def _months(scope: TenantScope) -> list[str]:
    return scope.partitions.get_partition_keys()


def _plan(
    context: dg.SensorEvaluationContext,
    scope: TenantScope,
    store: StateStore,
    procore: ProcoreResource,
    events: list[dict[str, Any]],
) -> TickPlan:
    months = _months(scope)
    try:
        return plan_runs(store, events, _locator(procore, store, scope), months=months)
    except Exception as exc:  # noqa: BLE001 - Procore unreachable: unknown records -> this month
        context.log.warning(f"could not look up new records in Procore ({exc}); using this month")
        return plan_runs(store, events, None, months=months)


def build_webhook_sensor(scope: TenantScope, job: dg.JobDefinition) -> dg.SensorDefinition:
    """The tenant's sensor over its own inbox, requesting runs of its sync `job`."""

    @dg.sensor(
        name=scope.name("procore_webhook_sensor"),
        job=job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Turns Procore webhook events (stored by the receiver) into targeted runs.",
    )
    def procore_webhook_sensor(
        context: dg.SensorEvaluationContext, state: StateStoreResource, procore: ProcoreResource
    ) -> dg.SensorResult:
        return webhook_tick(context, scope, state.store(scope.tenant), procore)

    return procore_webhook_sensor


def webhook_tick(
    context: dg.SensorEvaluationContext,
    scope: TenantScope,
    store: StateStore,
    procore: ProcoreResource,
) -> dg.SensorResult:
    """One tick: recover lost claims, claim pending events, request their runs."""
    now = time.time()
    claims = _load_claims(context.cursor)
    requests = _recover(context, scope, store, claims, now)
    events = store.pending_events(limit=MAX_EVENTS_PER_TICK)
    if events:
        tick = _plan(context, scope, store, procore, events)
        for key, reason in tick.dropped.items():
            store.mark_events([key], f"dropped:{reason}"[:120])
        for key, mark in handle_deletions(store, tick.deletions).items():
            store.mark_events([key], mark)
        for plan in tick.plans:
            store.mark_events(plan.event_keys, plan.run_key)
            claims[plan.run_key] = now
            requests.append(run_request(plan, scope))
        context.log.info(
            f"{len(events)} event(s) -> {len(tick.plans)} run(s), {len(tick.dropped)} dropped, "
            f"{len(tick.deletions)} deletion(s)"
        )
    cursor = json.dumps({"claims": claims}, sort_keys=True)
    if not requests:
        return dg.SensorResult(skip_reason=dg.SkipReason("no new webhook events"), cursor=cursor)
    return dg.SensorResult(run_requests=requests, cursor=cursor)


def __getattr__(name: str) -> Any:
    if name == "procore_webhook_sensor":  # the implicit tenant's, as before tenants
        from deltek_procore.defs.tenant import implicit_parts

        return implicit_parts().webhook_sensor
    raise AttributeError(name)
