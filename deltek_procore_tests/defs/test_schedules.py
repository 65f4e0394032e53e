"""nightly_reconciliation: with webhooks dropped, duplicated and reordered, Deltek ends exact."""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg
import pytest

from deltek_procore.defs.schedules import (
    nightly_catch_up,
    nightly_reconciliation,
    reconciliation_requests,
)
from deltek_procore.defs.sensors import procore_webhook_sensor
from deltek_procore.pipeline.triggers import WINDOW_TAG
from deltek_procore.posting.periods import period_of
from deltek_procore.sandbox.faults import Faults, FaultSettings
from deltek_procore_tests.defs.sync_harness import (
    RANGE_END,
    RANGE_START,
    SEED_KEYS,
    assert_deltek_exact,
    harness,
)

NIGHT_1 = datetime(2026, 11, 27, 2, 0, tzinfo=timezone.utc)
NIGHT_2 = datetime(2026, 11, 28, 2, 0, tzinfo=timezone.utc)
WINDOW = ["2026-10", "2026-11"]


def test_requests_cover_previous_and_current_month_in_one_run():
    (window,) = reconciliation_requests("2026-11-27")
    assert window.partition_key is None
    assert (window.tags[RANGE_START], window.tags[RANGE_END]) == ("2026-10", "2026-11")
    assert window.asset_selection is None  # the whole graph: reference data refreshed too
    ops = window.run_config["ops"]
    for asset in (
        "procore_subcontractor_invoices",
        "procore_direct_costs",
        "procore_change_orders",
    ):
        assert ops[asset]["config"] == {"reconcile": True}
    assert ops["deltek_ap_invoices"]["config"] == {"ids": []}  # every record of the months
    assert window.tags["deltek-procore/trigger"] == "nightly"
    # the same night evaluated twice: the same run key, so Dagster starts it once
    assert reconciliation_requests("2026-11-27")[0].run_key == window.run_key
    assert reconciliation_requests("2026-11-28")[0].run_key != window.run_key


def test_january_reaches_back_into_december():
    (window,) = reconciliation_requests("2027-01-02")
    assert (window.tags[RANGE_START], window.tags[RANGE_END]) == ("2026-12", "2027-01")


def test_gaps_in_older_months_get_a_targeted_catch_up_run():
    gaps = {"direct_cost": {11: "2025-03", 12: "2026-10"}, "requisition": {21: "2025-07"}}
    window, catch_up = reconciliation_requests("2026-11-27", gaps)
    assert (catch_up.tags[RANGE_START], catch_up.tags[RANGE_END]) == ("2025-03", "2025-07")
    ops = catch_up.run_config["ops"]
    assert ops["procore_direct_costs"]["config"]["ids"] == [11]  # 12 is in the window run
    assert ops["procore_subcontractor_invoices"]["config"]["ids"] == [21]
    assert ops["deltek_ap_invoices"]["config"]["ids"] == [11, 21]
    assert "deltek_commitment_journal_entries" not in ops
    assert reconciliation_requests("2026-11-27", gaps)[1].run_key == catch_up.run_key
    # a gap outside the open partitions is not requested (the run would be refused)
    (only,) = reconciliation_requests("2026-11-27", {"direct_cost": {5: "2019-01"}}, ["2026-11"])
    assert only.partition_key == "2026-11"  # no previous month before the first partition


def _approve(h, kind: str, months: list[str], wanted: dict[str, str], limit: int = 4) -> list[int]:
    done = []
    for rec in h.box.procore.data.procore[SEED_KEYS[kind]]:
        if period_of(kind, rec) in months and rec["status"] in wanted:
            h.box.procore.set_record(SEED_KEYS[kind], rec["id"], {"status": wanted[rec["status"]]})
            done.append(rec["id"])
            if len(done) >= limit:
                break
    return done


def _sensor_round(h) -> int:
    ctx = dg.build_sensor_context(instance=h.instance, resources=h.resources())
    result = procore_webhook_sensor(ctx)
    for request in result.run_requests or []:
        h.execute(request)
    return len(result.run_requests or [])


def _night(h, when: datetime) -> list[dg.RunRequest]:
    """The schedule's runs, then what the catch-up sensor asks right after the window run."""
    ctx = dg.build_schedule_context(
        instance=h.instance, scheduled_execution_time=when, resources=h.resources()
    )
    requests = list(nightly_reconciliation(ctx))
    for request in requests:
        result = h.execute(request)
        if request.tags.get(WINDOW_TAG):
            for follow_up in _catch_up(h, result.run_id):
                h.execute(follow_up)
                requests.append(follow_up)
    return requests


def _catch_up(h, run_id: str) -> list[dg.RunRequest]:
    run = h.instance.get_run_by_id(run_id)
    [record] = h.instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.RUN_SUCCESS
    ).records
    ctx = dg.build_run_status_sensor_context(
        sensor_name="nightly_catch_up",
        dagster_event=record.event_log_entry.dagster_event,
        dagster_instance=h.instance,
        dagster_run=run,
        resources=h.resources(),
    )
    result = nightly_catch_up(ctx)
    return [] if isinstance(result, dg.SkipReason) or result is None else list(result)


@pytest.mark.slow
def test_reconciliation_leaves_deltek_exact_despite_webhook_faults(tmp_path, monkeypatch):
    faults = Faults(FaultSettings(webhook_drop=0.4, webhook_duplicate=0.4, webhook_reorder=True))
    with harness(tmp_path, monkeypatch, procore_faults=faults) as h:
        h.sync()
        counts_before = assert_deltek_exact(h, WINDOW)
        # Procore users at work: direct costs (webhooks, some lost), invoices and change
        # orders (no webhooks at all), one direct cost moved into October and approved.
        moved = next(
            r
            for r in h.box.procore.data.procore["direct_costs"]
            if r["status"] == "pending"
            and r["direct_cost_type"] == "invoice"
            and period_of("direct_cost", r) < "2026-06"
        )
        h.box.procore.set_record(
            "direct_costs", moved["id"], {"status": "approved", "direct_cost_date": "2026-10-20"}
        )
        changed = _approve(
            h, "direct_cost", WINDOW, {"pending": "approved", "draft": "approved"}, 6
        )
        changed += _approve(
            h, "requisition", WINDOW, {"draft": "approved", "under_review": "approved"}
        )
        changed += _approve(h, "change_order", WINDOW, {"pending": "approved"})
        assert len(changed) >= 5
        edited = [
            r
            for r in h.box.procore.data.procore["direct_costs"]
            if r["status"] == "approved" and period_of("direct_cost", r) in WINDOW
        ][:10]
        for rec in edited:  # more webhook traffic: edits Deltek does not hold (no new voucher)
            h.box.procore.set_record("direct_costs", rec["id"], {"description": "re-described"})
        h.flush()
        assert faults.counters.get("webhook_drop", 0) >= 2
        assert faults.counters.get("webhook_duplicate", 0) >= 1
        # an approval in an old month whose webhook is certainly lost
        faults.configure(webhook_drop=1.0)
        old = next(
            r
            for r in h.box.procore.data.procore["direct_costs"]
            if r["status"] == "pending"
            and "2025-01" <= period_of("direct_cost", r) < "2026-06"
            and r["direct_cost_type"] == "invoice"
        )
        h.box.procore.set_record("direct_costs", old["id"], {"status": "approved"})
        h.flush()
        faults.configure(webhook_drop=0.4)

        _sensor_round(h)
        requests = _night(h, NIGHT_1)
        assert requests[0].tags[RANGE_START] == "2026-10"
        counts = assert_deltek_exact(h, WINDOW)
        assert sum(counts.values()) > sum(counts_before.values())
        moved_row = h.store.latest("direct_cost", [moved["id"]])[moved["id"]]
        assert (moved_row.status, moved_row.period) in {
            ("posted", "2026-10"),
            ("quarantined", "2026-10"),
        }

        # the old month's approval (staged by night 1's window read) is caught up the same
        # night, by the run the catch-up sensor asks for right after the window run
        assert len(requests) == 2
        assert requests[1].run_config["ops"]["deltek_ap_invoices"]["config"]["ids"] == [old["id"]]
        latest = h.store.latest("direct_cost", [old["id"]])[old["id"]]
        assert latest.status in ("posted", "quarantined")
        assert len(_night(h, NIGHT_2)) == 1  # nothing left for night 2
        from deltek_procore.sandbox.runner import sandbox_periods

        assert_deltek_exact(h, sandbox_periods(h.box) + ["2026-11"])
        # a third night changes nothing in Deltek
        before = (len(h.box.deltek.ap_vouchers()), len(h.box.deltek.journal_entries()))
        assert len(_night(h, NIGHT_2)) == 1
        assert (len(h.box.deltek.ap_vouchers()), len(h.box.deltek.journal_entries())) == before


@pytest.mark.slow
def test_backfill_of_24_months_in_one_run_posts_every_approved_record_once(tmp_path, monkeypatch):
    from deltek_procore.sandbox.runner import sandbox_periods
    from deltek_procore_tests.defs.sync_harness import AP_KINDS, DONE, approved_records

    with harness(tmp_path, monkeypatch, receiver=False) as h:
        periods = sandbox_periods(h.box)
        assert len(periods) == 24
        result = h.sync(periods[0], periods[-1])
        # one run materialized every month of both posting assets
        for asset in ("deltek_ap_invoices", "deltek_commitment_journal_entries"):
            keys = h.instance.get_materialized_partitions(dg.AssetKey(asset))
            assert set(periods) <= keys
        assert len(h.instance.get_runs()) == 1
        counts = assert_deltek_exact(h, periods)
        seed_approved = {k: len(approved_records(h.box, k, periods)) for k in SEED_KEYS}
        ledger = h.store.status_counts()
        for kind, n in seed_approved.items():
            assert sum(ledger.get(kind, {}).values()) == n, kind
        assert sum(counts.values()) == sum(seed_approved.values())
        ap_done = sum(ledger[k].get(s, 0) for k in AP_KINDS for s in DONE)
        assert len(h.box.deltek.ap_vouchers()) == ap_done
        assert counts["posted"] > 300 and counts["quarantined"] < 20
        # the same backfill again posts nothing
        before = h.box.deltek.call_counts()
        h.sync(periods[0], periods[-1])
        assert len(h.box.deltek.ap_vouchers()) == ap_done
        after = h.box.deltek.call_counts()
        writes = {k for k in set(before) | set(after) if k.split(" ")[0] in ("POST", "PUT")}
        writes -= {k for k in writes if "token" in k.lower()}
        assert writes and {k: after.get(k, 0) for k in writes} == {
            k: before.get(k, 0) for k in writes
        }
        assert result.success
