"""procore_webhook_sensor against a real state store, without the sandbox."""

from __future__ import annotations

import json
import time

import dagster as dg
import pytest

import deltek_procore.defs.sensors as sensors
from deltek_procore.defs.resources import ProcoreResource, StateStoreResource
from deltek_procore.defs.sensors import procore_webhook_sensor
from deltek_procore.pipeline.ingest import content_hash
from deltek_procore.pipeline.triggers import current_month
from deltek_procore.state.store import StagedRecord, StateStore
from deltek_procore.webhooks.events import event_from_dict


@pytest.fixture
def env(tmp_path, monkeypatch):
    for name in ("PROCORE_API_URL", "PROCORE_AUTH_URL", "PROCORE_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = StateStore(url)
    instance = dg.DagsterInstance.ephemeral()
    resources = {"state": StateStoreResource(url=url), "procore": ProcoreResource()}
    yield store, instance, resources
    store.dispose()


def _all(store):
    import sqlalchemy as sa

    from deltek_procore.state import schema

    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(schema.webhook_inbox))]


def _tick(instance, resources, cursor=None):
    ctx = dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor)
    return procore_webhook_sensor(ctx)


def _stage(store, kind, rid, period):
    body = {"id": rid, "project_id": 7, "status": "approved"}
    store.stage([StagedRecord(kind, rid, body, content_hash(body), 7, period, "approved")])


def _event(store, n, resource="Direct Costs", rid=1, event_type="update"):
    raw = {
        "id": n,
        "timestamp": "2026-11-26T10:00:00Z",
        "event_type": event_type,
        "resource_name": resource,
        "resource_id": rid,
        "project_id": 7,
    }
    store.add(event_from_dict(raw), raw)
    return str(n)


def test_no_events_is_a_skip_that_keeps_the_cursor(env):
    store, instance, resources = env
    result = _tick(instance, resources)
    assert result.run_requests in (None, [])
    assert result.skip_reason and "no new webhook events" in result.skip_reason.skip_message
    assert json.loads(result.cursor) == {"claims": {}}


def test_events_become_requests_and_are_marked(env):
    store, instance, resources = env
    _stage(store, "direct_cost", 1, "2026-03")
    _event(store, 1, rid=1)
    _event(store, 2, rid=1)
    _event(store, 3, resource="Direct Costs", rid=1, event_type="delete")
    bad_raw = {
        "id": 4,
        "timestamp": "2026-11-26T10:00:00Z",
        "event_type": "update",
        "resource_name": "Direct Costs",
        "resource_id": 5,
    }
    store.add(event_from_dict(bad_raw), {"broken": True})  # stored, but unreadable later
    result = _tick(instance, resources)
    (request,) = result.run_requests
    assert request.partition_key == "2026-03"
    assert request.tags["deltek-procore/events"] == "2"
    assert store.pending_events() == []
    marks = {r["event_key"]: r["run_key"] for r in sensors.events_for_run(store, request.run_key)}
    assert set(marks) == {"1", "2"}
    assert store.ignored("direct_cost") == {1: "deleted in Procore"}  # never posted
    (bad,) = [r for r in store.pending_events() + _all(store) if r["event_key"] == "4"]
    assert bad["run_key"].startswith("dropped:unusable")
    assert json.loads(result.cursor)["claims"].keys() == {request.run_key}


def test_procore_unreachable_places_unknown_records_in_this_month(env):
    store, instance, resources = env
    _event(store, 1, rid=999)  # never staged: the sensor would ask Procore where it belongs
    (request,) = _tick(instance, resources).run_requests
    assert request.partition_key == current_month()


def test_old_claims_are_forgotten(env):
    store, instance, resources = env
    stale = json.dumps({"claims": {"webhook-2026-01-abc": time.time() - 2 * sensors.CLAIM_TTL_S}})
    result = _tick(instance, resources, cursor=stale)
    assert json.loads(result.cursor) == {"claims": {}}
    garbage = _tick(instance, resources, cursor="not json")
    assert json.loads(garbage.cursor) == {"claims": {}}


def test_sensor_and_schedule_target_the_sync_job():
    from deltek_procore.definitions import defs

    sensor = defs.get_sensor_def("procore_webhook_sensor")
    schedule = defs.get_schedule_def("nightly_reconciliation")
    assert sensor.job_name == "sync" and schedule.job_name == "sync"
    assert schedule.cron_schedule == "0 2 * * *"
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
