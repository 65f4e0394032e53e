"""Completeness: ledger gaps from the state store, lost webhooks from Procore's own history."""

from __future__ import annotations

import dagster as dg
import pytest

from deltek_procore.pipeline.completeness import (
    gaps_by_kind,
    has_amount,
    hook_ids,
    missing_from_ledger,
    undelivered_events,
)
from deltek_procore.pipeline.ingest import content_hash
from deltek_procore.procore.client import ProcoreClient, ProcoreSettings
from deltek_procore.sandbox.faults import Faults
from deltek_procore.state.store import StagedRecord, StateStore
from deltek_procore_tests.defs.sync_harness import harness


def _staged(kind: str, rid: int, period: str, **payload) -> StagedRecord:
    body = {"id": rid, "project_id": 1, **payload}
    return StagedRecord(kind, rid, body, content_hash(body), 1, period, payload.get("status"))


@pytest.fixture
def store(tmp_path) -> StateStore:
    return StateStore(f"sqlite:///{tmp_path / 'state.db'}")


CARRIED_ONLY = {  # a G703 item whose only amount is a stored-materials balance
    "id": 1,
    "work_completed_this_period": "0.00",
    "materials_presently_stored": "500.00",
    "materials_presently_stored_from_previous_progress": "500.00",
    "total_completed_and_stored_to_date": "2500.00",
    "total_completed_and_stored_to_date_from_previous": "2500.00",
    "materials_stored_retainage_new_materials": "0.00",
}


BILLS_WORK = dict(
    CARRIED_ONLY,
    id=2,
    work_completed_this_period="10.00",
    total_completed_and_stored_to_date="2510.00",
)


def test_missing_from_ledger_lists_approved_records_without_a_row(store):
    store.stage(
        [
            _staged("direct_cost", 1, "2026-10", status="approved", direct_cost_type="invoice"),
            _staged("direct_cost", 2, "2026-10", status="approved", direct_cost_type="expense"),
            _staged("direct_cost", 3, "2026-10", status="pending", direct_cost_type="invoice"),
            _staged("direct_cost", 4, "2026-09", status="approved", direct_cost_type="invoice"),
            _staged("direct_cost", 5, "2026-10", status="approved", direct_cost_type="invoice"),
            _staged("direct_cost", 6, "2026-10", status="approved", direct_cost_type="invoice"),
            _staged("work_order", 7, "2026-10", status="Approved"),
            _staged("work_order", 8, "2026-10", status="Draft"),
            _staged(
                "requisition",
                9,
                "2026-10",
                status="approved",
                items=[CARRIED_ONLY],  # stored materials carried forward bill nothing
            ),
            _staged(
                "requisition",
                10,
                "2026-10",
                status="approved_as_noted",
                items=[BILLS_WORK],
            ),
        ]
    )
    row5 = store.staged("direct_cost", ids=[5])[0]
    store.add_revision(
        kind="direct_cost",
        record_id=5,
        content_hash=row5.content_hash,
        status="quarantined",
        period="2026-10",
    )
    store.ignore("direct_cost", 6, "test")

    gaps = missing_from_ledger(store, ["2026-10"])
    assert sorted((g.kind, g.record_id) for g in gaps) == [
        ("direct_cost", 1),
        ("requisition", 10),
        ("work_order", 7),
    ]
    assert all(g.reason == "approved, no ledger row" for g in gaps)
    # expense-type direct costs count when the mapping posts them
    with_expense = missing_from_ledger(
        store, ["2026-10"], kinds=["direct_cost"], direct_cost_types=["invoice", "expense"]
    )
    assert sorted(g.record_id for g in with_expense) == [1, 2]
    # all periods
    assert {g.record_id for g in missing_from_ledger(store)} == {1, 4, 7, 10}
    assert gaps_by_kind(missing_from_ledger(store))["direct_cost"] == {1: "2026-10", 4: "2026-09"}

    # a posted record edited since: only reported with changed=True
    store.add_revision(
        kind="direct_cost", record_id=1, content_hash="old", status="posted", period="2026-10"
    )
    assert 1 not in {g.record_id for g in missing_from_ledger(store, ["2026-10"])}
    changed = missing_from_ledger(store, ["2026-10"], changed=True)
    assert [(g.record_id, g.reason) for g in changed if g.kind == "direct_cost"] == [
        (1, "changed in Procore since the ledger's posted revision")
    ]
    assert 5 not in {g.record_id for g in changed}  # same content as its quarantined row


def test_has_amount_only_refuses_invoices_that_bill_nothing():
    assert has_amount("direct_cost", {})
    assert not has_amount("requisition", {"items": []})
    release = dict(CARRIED_ONLY, work_completed_retainage_released_this_period="5.00")
    assert has_amount("requisition", {"items": [release]})
    assert not has_amount("requisition", {"items": [CARRIED_ONLY]})


def _client(box) -> ProcoreClient:
    env = box.env
    return ProcoreClient(
        ProcoreSettings(
            auth_url=env["PROCORE_AUTH_URL"],
            api_url=env["PROCORE_API_URL"],
            client_id=env["PROCORE_CLIENT_ID"],
            client_secret=env["PROCORE_CLIENT_SECRET"],
            company_id=int(env["PROCORE_COMPANY_ID"]),
        )
    )


def test_undelivered_events_from_procore_delivery_history(tmp_path, monkeypatch):
    faults = Faults()
    with harness(tmp_path, monkeypatch, receiver=True, procore_faults=faults) as h:
        client = _client(h.box)
        (hook,) = hook_ids(client)
        costs = h.box.procore.data.procore["direct_costs"]
        h.box.procore.set_record("direct_costs", costs[0]["id"], {"description": "arrives"})
        h.flush()
        faults.configure(webhook_drop=1.0)
        h.box.procore.set_record("direct_costs", costs[1]["id"], {"description": "lost"})
        h.box.procore.set_record("direct_costs", costs[2]["id"], {"description": "lost too"})
        h.flush()
        faults.configure(webhook_drop=0.0)

        lost = undelivered_events(client, hook, h.store)
        assert sorted(e.resource_id for e in lost) == sorted([costs[1]["id"], costs[2]["id"]])
        assert {(e.outcome, e.resource_name, e.event_type) for e in lost} == {
            ("discarded", "Direct Costs", "update")
        }
        # the inbox holds the delivered one, not the lost ones
        inbox = {e["resource_id"] for e in h.store.pending_events()}
        assert costs[0]["id"] in inbox and not inbox & {e.resource_id for e in lost}
        # without the store, "arrived" is judged from Procore's successful deliveries
        assert {e.key for e in undelivered_events(client, hook)} == {e.key for e in lost}

        # a second hook whose endpoint is down: every attempt fails, then discarded
        dead = client.create_hook("deltek-procore", "http://127.0.0.1:9/down", "Bearer x-12345")
        dead_id = int(dead.get("data", dead)["id"])
        client.create_trigger(dead_id, "Direct Costs", "update")
        h.box.procore.set_record("direct_costs", costs[3]["id"], {"description": "to nowhere"})
        h.flush()
        lost_dead = undelivered_events(client, dead_id, h.store)
        (down,) = lost_dead
        assert (down.resource_id, down.outcome) == (costs[3]["id"], "discarded")
        assert down.attempts == h.box.procore.webhook_max_attempts
        assert down.last_error  # the connection error Procore saw
        assert hook_ids(client) == sorted([hook, dead_id])

        # the Dagster check lists them all and fails
        from deltek_procore.defs.checks import webhook_deliveries

        resources = h.resources()
        result = webhook_deliveries(procore=resources["procore"], state=resources["state"])
        assert not result.passed
        assert result.severity == dg.AssetCheckSeverity.ERROR
        assert result.metadata["undelivered"].value == 3
        assert str(costs[3]["id"]) in result.metadata["events"].value


def test_ledger_complete_check_runs_per_month_in_the_sync_job(tmp_path, monkeypatch):
    from deltek_procore.definitions import defs
    from deltek_procore.defs.checks import completeness_checks

    with harness(tmp_path, monkeypatch, receiver=False) as h:
        full = dg.Definitions.merge(defs, dg.Definitions(asset_checks=completeness_checks()))
        job = full.resolve_job_def("sync")
        result = job.execute_in_process(instance=h.instance, partition_key="2026-10")
        assert result.success
        evaluations = {
            (
                e.asset_check_evaluation_data.asset_key.to_user_string(),
                e.asset_check_evaluation_data.check_name,
            ): e.asset_check_evaluation_data
            for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION"
        }
        check = evaluations[("deltek_ap_invoices", "ledger_complete")]
        assert check.passed
        assert check.metadata["periods"].value == "2026-10"
        assert ("procore_direct_costs", "webhook_deliveries") in evaluations

        # a record approved behind the connector's back shows up once staged
        rec = next(
            r
            for r in h.box.procore.data.procore["direct_costs"]
            if r["status"] == "pending" and r["direct_cost_type"] == "invoice"
        )
        h.box.procore.set_record(
            "direct_costs", rec["id"], {"status": "approved", "direct_cost_date": "2026-10-15"}
        )
        from deltek_procore.pipeline import ingest

        client = _client(h.box)
        projects = [r.record_id for r in h.store.staged("project")]
        ingest.ingest_projects(client, h.store, "direct_cost", projects, ids=[rec["id"]])
        (gap,) = missing_from_ledger(h.store, ["2026-10"], kinds=["direct_cost"])
        assert gap.record_id == rec["id"]
