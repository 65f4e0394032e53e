"""procore_webhook_sensor: stored webhook events -> a few targeted runs of the sync job.

Each tick claims the pending inbox rows (marks them with the run key that covers
them) and returns one run request per accounting month, or per month range when a
burst spans many months. The cursor remembers recent claims: a claim whose run never
started (the tick failed after marking) is requested again with the same run key,
which Dagster de-duplicates if the run did start after all.
"""

# No `from __future__ import annotations`: Dagster reads resource annotations at runtime.
import json
import time
from typing import Any

import dagster as dg

from deltek_procore.defs.jobs import sync_job
from deltek_procore.defs.partitions import accounting_months
from deltek_procore.defs.resources import ProcoreResource, StateStoreResource
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


def run_request(plan: RunPlan) -> dg.RunRequest:
    selection = plan.selection()
    return dg.RunRequest(
        run_key=plan.run_key,
        partition_key=plan.partition_key,
        run_config=plan.run_config(),
        asset_selection=None if selection is None else [dg.AssetKey(a) for a in selection],
        tags=plan.tags(),
    )


def _locator(procore: ProcoreResource, store: StateStore):
    """Fetch records never seen before, so their accounting month is known."""

    def locate(kind: str, ids: list[int]) -> dict[int, str | None]:
        projects = [r.record_id for r in store.staged("project")]
        ingest.ingest_projects(procore.client(), store, kind, projects, ids=ids)
        return {r.record_id: r.period for r in store.staged(kind, ids=ids)}

    return locate


def _load_claims(cursor: str | None) -> dict[str, float]:
    try:
        claims = json.loads(cursor or "{}").get("claims", {})
        return {str(k): float(v) for k, v in claims.items()}
    except (ValueError, AttributeError, TypeError):
        return {}


def _run_exists(instance: dg.DagsterInstance, run_key: str) -> bool:
    runs = instance.get_runs(filters=dg.RunsFilter(tags={RUN_KEY_TAG: run_key}), limit=1)
    return bool(runs)


def _recover(
    context: dg.SensorEvaluationContext, store: StateStore, claims: dict[str, float], now: float
) -> list[dg.RunRequest]:
    """Re-request claims whose run never started; forget those that did or are too old."""
    again: list[dg.RunRequest] = []
    for run_key, claimed in list(claims.items()):
        age = now - claimed
        if age < CLAIM_GRACE_S:
            continue
        if age > CLAIM_TTL_S or _run_exists(context.instance, run_key):
            del claims[run_key]
            continue
        rows = events_for_run(store, run_key)
        plans = plan_runs(store, rows, None, months=_months(), max_runs=1).plans
        same = [p for p in plans if p.run_key == run_key]
        if same:
            context.log.warning(f"run {run_key} never started; requesting it again")
            again.append(run_request(same[0]))
        else:
            del claims[run_key]  # its records moved months; the nightly run covers them
    return again


def _months() -> list[str]:
    return accounting_months.get_partition_keys()


def _plan(
    context: dg.SensorEvaluationContext,
    store: StateStore,
    procore: ProcoreResource,
    events: list[dict[str, Any]],
) -> TickPlan:
    try:
        return plan_runs(store, events, _locator(procore, store), months=_months())
    except Exception as exc:  # noqa: BLE001 - Procore unreachable: unknown records -> this month
        context.log.warning(f"could not look up new records in Procore ({exc}); using this month")
        return plan_runs(store, events, None, months=_months())


@dg.sensor(
    job=sync_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Turns Procore webhook events (stored by the receiver) into targeted runs.",
)
def procore_webhook_sensor(
    context: dg.SensorEvaluationContext, state: StateStoreResource, procore: ProcoreResource
) -> dg.SensorResult:
    store = state.store()
    now = time.time()
    claims = _load_claims(context.cursor)
    requests = _recover(context, store, claims, now)
    events = store.pending_events(limit=MAX_EVENTS_PER_TICK)
    if events:
        tick = _plan(context, store, procore, events)
        for key, reason in tick.dropped.items():
            store.mark_events([key], f"dropped:{reason}"[:120])
        for key, mark in handle_deletions(store, tick.deletions).items():
            store.mark_events([key], mark)
        for plan in tick.plans:
            store.mark_events(plan.event_keys, plan.run_key)
            claims[plan.run_key] = now
            requests.append(run_request(plan))
        context.log.info(
            f"{len(events)} event(s) -> {len(tick.plans)} run(s), {len(tick.dropped)} dropped, "
            f"{len(tick.deletions)} deletion(s)"
        )
    cursor = json.dumps({"claims": claims}, sort_keys=True)
    if not requests:
        return dg.SensorResult(skip_reason=dg.SkipReason("no new webhook events"), cursor=cursor)
    return dg.SensorResult(run_requests=requests, cursor=cursor)
