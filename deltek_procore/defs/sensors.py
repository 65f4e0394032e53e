"""procore_webhook_sensor: stored webhook events -> targeted runs of the sync job."""

import dagster as dg

from deltek_procore.defs.jobs import sync_job
from deltek_procore.defs.resources import ProcoreResource, StateStoreResource
from deltek_procore.pipeline import ingest
from deltek_procore.pipeline.triggers import plan_runs
from deltek_procore.state.store import StateStore

MAX_EVENTS_PER_TICK = 5000


def _locator(procore: ProcoreResource, store: StateStore):
    """Fetch records never seen before, so their accounting month is known."""

    def locate(kind: str, ids: list[int]) -> dict[int, str | None]:
        projects = [r.record_id for r in store.staged("project")]
        ingest.ingest_projects(procore.client(), store, kind, projects, ids=ids)
        return {r.record_id: r.period for r in store.staged(kind, ids=ids)}

    return locate


@dg.sensor(
    job=sync_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Turns Procore webhook events (stored by the receiver) into targeted runs.",
)
def procore_webhook_sensor(
    context: dg.SensorEvaluationContext, state: StateStoreResource, procore: ProcoreResource
):
    store = state.store()
    events = store.pending_events(limit=MAX_EVENTS_PER_TICK)
    if not events:
        return dg.SkipReason("no new webhook events")
    try:
        locate = _locator(procore, store)
        plans, dropped = plan_runs(store, events, locate)
    except Exception as exc:  # noqa: BLE001 - Procore unreachable: place unknowns in this month
        context.log.warning(f"could not look up new records in Procore ({exc}); using this month")
        plans, dropped = plan_runs(store, events, None)
    if dropped:
        store.mark_events(dropped, "dropped:unusable")
    requests = []
    for plan in plans:
        requests.append(
            dg.RunRequest(
                run_key=plan.run_key,
                partition_key=plan.partition,
                run_config=plan.run_config(),
                asset_selection=[dg.AssetKey(a) for a in plan.selection()],
                tags={
                    "deltek-procore/trigger": "webhook",
                    "deltek-procore/events": str(len(plan.event_keys)),
                },
            )
        )
        store.mark_events(plan.event_keys, plan.run_key)
    context.log.info(f"{len(events)} event(s) -> {len(requests)} run(s)")
    return requests
