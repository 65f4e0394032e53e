"""End to end: approve in Procore -> webhook -> receiver -> sensor tick -> run -> Deltek."""

from __future__ import annotations

import json
import time

import dagster as dg
import pytest

from deltek_procore.defs.sensors import procore_webhook_sensor
from deltek_procore.posting.periods import period_of
from deltek_procore_tests.defs.sync_harness import harness, pick_direct_cost


def _tick(h, cursor: str | None = None) -> dg.SensorResult:
    ctx = dg.build_sensor_context(instance=h.instance, resources=h.resources(), cursor=cursor)
    return procore_webhook_sensor(ctx)


def _vouchers_for(h, invoice: str) -> list[dict]:
    return [v for v in h.box.deltek.ap_vouchers() if v["Invoice"] == invoice]


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    """One sandbox synced once (all 24 months); the tests below build on it in order."""
    mp = pytest.MonkeyPatch()
    with harness(tmp_path_factory.mktemp("webhooks"), mp) as h:
        h.sync()
        yield h
    mp.undo()


def test_approval_reaches_deltek_through_webhook_and_sensor(synced):
    h = synced
    record = pick_direct_cost(h)
    month = period_of("direct_cost", record)
    assert _vouchers_for(h, record["invoice_number"]) == []
    started = time.perf_counter()

    h.box.procore.set_record("direct_costs", record["id"], {"status": "approved"})
    h.flush()
    pending = h.store.pending_events()
    assert [(e["resource_name"], e["resource_id"]) for e in pending] == [
        ("Direct Costs", record["id"])
    ]

    result = _tick(h)
    assert len(result.run_requests) == 1
    request = result.run_requests[0]
    assert request.partition_key == month
    ops = request.run_config["ops"]
    assert ops["procore_direct_costs"]["config"]["ids"] == [record["id"]]
    assert ops["deltek_ap_invoices"]["config"]["ids"] == [record["id"]]
    selected = {k.to_user_string() for k in request.asset_selection}
    assert {"procore_direct_costs", "deltek_ap_invoices", "vendor_firm_map"} <= selected
    assert "deltek_commitment_journal_entries" not in selected
    assert h.store.pending_events() == []

    h.execute(request)
    vouchers = _vouchers_for(h, record["invoice_number"])
    assert len(vouchers) == 1
    total = sum(d["Amount"] for d in vouchers[0]["apDetail"])
    assert round(total, 2) == float(record["grand_total"])
    assert h.store.latest("direct_cost", [record["id"]])[record["id"]].status == "posted"
    print(f"approve -> voucher in {time.perf_counter() - started:.1f} s")

    # the same events again (a re-evaluated tick, Procore re-sending) change nothing
    again = _tick(h, cursor=result.cursor)
    assert again.run_requests in (None, [])
    h.execute(request)
    assert len(_vouchers_for(h, record["invoice_number"])) == 1


def test_burst_of_500_events_is_a_few_runs_with_stable_keys(synced):
    h = synced
    costs = [
        r
        for r in h.box.procore.data.procore["direct_costs"]
        if r["status"] == "approved" and r["direct_cost_type"] == "invoice"
    ]
    events = 0
    while events < 500:
        for rec in costs:
            h.box.procore.set_record("direct_costs", rec["id"], {"description": f"edit {events}"})
            events += 1
            if events >= 500:
                break
    h.flush()
    pending = h.store.pending_events(limit=10_000)
    assert len(pending) == 500
    keys = sorted(e["event_key"] for e in pending)

    first = _tick(h)
    requests = first.run_requests
    print(
        "burst runs:",
        [
            (
                r.partition_key,
                r.tags.get("dagster/asset_partition_range_start"),
                r.tags.get("dagster/asset_partition_range_end"),
                r.tags["deltek-procore/events"],
            )
            for r in requests
        ],
    )
    assert 1 <= len(requests) <= 4
    covered = sum(int(r.tags["deltek-procore/events"]) for r in requests)
    assert covered == 500
    assert len({r.run_key for r in requests}) == len(requests)
    claims = json.loads(first.cursor)["claims"]
    assert set(claims) == {r.run_key for r in requests}

    # re-evaluating: nothing new, every event marked with its run key
    second = _tick(h, cursor=first.cursor)
    assert second.run_requests in (None, [])
    assert h.store.pending_events() == []

    # planning the same events again gives the same keys (the run key is their hash)
    from deltek_procore.defs.partitions import accounting_months
    from deltek_procore.pipeline.triggers import events_for_run, plan_runs

    rows = [row for r in requests for row in events_for_run(h.store, r.run_key)]
    assert sorted(row["event_key"] for row in rows) == keys
    replanned = plan_runs(h.store, rows, months=accounting_months.get_partition_keys())
    assert sorted(p.run_key for p in replanned.plans) == sorted(r.run_key for r in requests)

    # the runs post nothing new: descriptions are not in what Deltek holds
    before = len(h.box.deltek.ap_vouchers())
    for request in requests:
        h.execute(request)
    assert len(h.box.deltek.ap_vouchers()) == before


def test_claim_whose_run_never_started_is_requested_again(synced, monkeypatch):
    """A tick that marked events but whose run never launched: same run key, later."""
    import deltek_procore.defs.sensors as sensors

    h = synced
    record = pick_direct_cost(h)
    h.box.procore.set_record("direct_costs", record["id"], {"status": "approved"})
    h.flush()
    first = _tick(h)
    (request,) = first.run_requests
    # nothing was launched; pretend the grace period has passed
    claims = json.loads(first.cursor)["claims"]
    old = json.dumps({"claims": {k: v - sensors.CLAIM_GRACE_S - 1 for k, v in claims.items()}})
    second = _tick(h, cursor=old)
    assert [r.run_key for r in second.run_requests] == [request.run_key]
    assert second.run_requests[0].run_config == request.run_config
    # once a run with that key exists, the claim is forgotten
    h.execute(
        second.run_requests[0].with_replaced_attrs(
            tags={**second.run_requests[0].tags, "dagster/run_key": request.run_key}
        )
    )
    third = _tick(h, cursor=second.cursor)
    assert third.run_requests in (None, [])
    assert json.loads(third.cursor)["claims"] == {}
    assert len(_vouchers_for(h, record["invoice_number"])) == 1
