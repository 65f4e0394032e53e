"""From inbox rows to run plans: grouping, merging, keys, deletions (no Dagster, no HTTP)."""

from __future__ import annotations

import itertools
from datetime import datetime, timezone

import pytest

from deltek_procore.pipeline.ingest import content_hash
from deltek_procore.pipeline.triggers import (
    events_for_run,
    handle_deletions,
    merge_months,
    plan_runs,
    reconciliation_plans,
    stored_event_keys,
)
from deltek_procore.state.store import StagedRecord, StateStore
from deltek_procore.webhooks.events import event_from_dict

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
MONTHS = [f"2025-{m:02d}" for m in range(1, 13)] + [f"2026-{m:02d}" for m in range(1, 12)]
_ids = itertools.count(1)


@pytest.fixture
def store(tmp_path) -> StateStore:
    return StateStore(f"sqlite:///{tmp_path / 'state.db'}")


def _stage(store: StateStore, kind: str, rid: int, period: str) -> None:
    body = {"id": rid, "project_id": 7, "status": "approved"}
    store.stage([StagedRecord(kind, rid, body, content_hash(body), 7, period, "approved")])


def _event(store: StateStore, resource: str, rid: int, event_type: str = "update", **extra):
    n = next(_ids)
    raw = {
        "id": 10_000 + n,
        "ulid": f"01TEST{n:020d}",
        "timestamp": "2026-11-26T10:00:00.123456Z",
        "api_version": "v2",
        "event_type": event_type,
        "resource_name": resource,
        "resource_id": rid,
        "company_id": 1,
        "project_id": 7,
        **extra,
    }
    assert store.add(event_from_dict(raw), raw)
    return raw["ulid"]


def test_one_run_per_month_with_exactly_the_records(store):
    _stage(store, "direct_cost", 1, "2026-10")
    _stage(store, "direct_cost", 2, "2026-10")
    _stage(store, "work_order", 3, "2026-09")
    keys = [
        _event(store, "Direct Costs", 1),
        _event(store, "Direct Costs", 1),  # a second event for the same record
        _event(store, "Direct Costs", 2),
        _event(store, "Work Order Contracts", 3),
    ]
    tick = plan_runs(store, store.pending_events(), now=NOW, months=MONTHS)
    assert [p.partition_key for p in tick.plans] == ["2026-09", "2026-10"]
    sept, octo = tick.plans
    assert octo.run_config() == {
        "ops": {
            "procore_direct_costs": {"config": {"ids": [1, 2]}},
            "deltek_ap_invoices": {"config": {"ids": [1, 2]}},
        }
    }
    assert sept.run_config()["ops"]["deltek_commitment_journal_entries"]["config"]["ids"] == [3]
    assert "deltek_ap_invoices" not in sept.selection()
    assert {"deltek_firms", "vendor_firm_map", "gl_account_map"} <= set(octo.selection())
    assert sorted(octo.event_keys) == sorted(keys[:3])
    assert octo.tags() == {"deltek-procore/trigger": "webhook", "deltek-procore/events": "3"}


def test_run_key_depends_on_the_events_not_their_order(store):
    _stage(store, "direct_cost", 1, "2026-10")
    for _ in range(5):
        _event(store, "Direct Costs", 1)
    rows = store.pending_events()
    first = plan_runs(store, rows, now=NOW).plans[0].run_key
    assert plan_runs(store, list(reversed(rows)), now=NOW).plans[0].run_key == first
    assert plan_runs(store, rows[:4], now=NOW).plans[0].run_key != first
    assert first.startswith("webhook-2026-10-")


def test_a_burst_over_many_months_is_merged_into_a_few_ranges(store):
    for i, month in enumerate(MONTHS[:20]):
        _stage(store, "direct_cost", 100 + i, month)
        for _ in range(25):  # 500 events
            _event(store, "Direct Costs", 100 + i)
    rows = store.pending_events(limit=1000)
    assert len(rows) == 500
    tick = plan_runs(store, rows, now=NOW, months=MONTHS, max_runs=4)
    assert len(tick.plans) == 4
    assert sum(len(p.event_keys) for p in tick.plans) == 500
    spans = [(p.start, p.end) for p in tick.plans]
    assert spans == [
        ("2025-01", "2025-05"),
        ("2025-06", "2025-10"),
        ("2025-11", "2026-03"),
        ("2026-04", "2026-08"),
    ]
    ranged = tick.plans[0]
    assert ranged.partition_key is None
    assert ranged.tags()["dagster/asset_partition_range_start"] == "2025-01"
    assert ranged.tags()["dagster/asset_partition_range_end"] == "2025-05"
    assert ranged.run_config()["ops"]["deltek_ap_invoices"]["config"]["ids"] == list(
        range(100, 105)
    )


def test_merge_months_keeps_few_plans_untouched():
    from deltek_procore.pipeline.triggers import RunPlan

    plans = [RunPlan(start=m, end=m) for m in ("2026-03", "2026-01")]
    assert [p.start for p in merge_months(plans, 4)] == ["2026-01", "2026-03"]


def test_unknown_records_are_located_or_placed_in_this_month(store):
    _event(store, "Direct Costs", 55)
    _event(store, "Direct Costs", 56)
    asked = []

    def locate(kind, ids):
        asked.append((kind, ids))
        return {55: "2026-04"}

    tick = plan_runs(store, store.pending_events(), locate, now=NOW, months=MONTHS)
    assert asked == [("direct_cost", [55, 56])]
    assert {p.partition_key: sorted(p.posting_ids) for p in tick.plans} == {
        "2026-04": [55],
        "2026-11": [56],
    }


def test_unusable_and_out_of_range_events_are_dropped_with_a_reason(store):
    _stage(store, "direct_cost", 1, "2019-01")
    old = _event(store, "Direct Costs", 1)
    tick = plan_runs(store, store.pending_events(), now=NOW, months=MONTHS)
    assert tick.plans == []
    assert tick.dropped == {old: "period 2019-01 is outside the partitions"}


def test_reference_and_parentless_line_events_re_read_by_window(store):
    _event(store, "Company Vendors", 9)
    _event(store, "Direct Cost Line Items", 77)  # v2: no related_resources, parent unknown
    (plan,) = plan_runs(store, store.pending_events(), now=NOW, months=MONTHS).plans
    assert plan.partition_key == "2026-11"
    assert plan.run_config() == {
        "ops": {
            "procore_direct_costs": {"config": {"reconcile": True}},
            "procore_vendors": {"config": {"reconcile": True}},
        }
    }
    assert plan.selection() == ["procore_direct_costs", "procore_vendors"]


def test_line_event_with_related_resource_targets_the_parent(store):
    _stage(store, "direct_cost", 31, "2026-08")
    _event(
        store, "Direct Cost Line Items", 900, related_resources=[{"id": 31, "name": "Direct Costs"}]
    )
    (plan,) = plan_runs(store, store.pending_events(), now=NOW, months=MONTHS).plans
    assert (plan.partition_key, sorted(plan.posting_ids)) == ("2026-08", [31])


def test_deleted_records_go_to_review_when_posted_else_to_the_ignore_list(store):
    _stage(store, "direct_cost", 1, "2026-10")
    _stage(store, "direct_cost", 2, "2026-10")
    store.add_revision(
        kind="direct_cost", record_id=1, content_hash="h1", status="posted", amount="10.00"
    )
    k1 = _event(store, "Direct Costs", 1, "delete")
    k2 = _event(store, "Direct Costs", 2, "delete")
    tick = plan_runs(store, store.pending_events(), now=NOW, months=MONTHS)
    assert tick.plans == []
    marks = handle_deletions(store, tick.deletions)
    assert marks == {k1: "deleted:review", k2: "deleted:ignored"}
    (review,) = store.reviews()
    assert (review["record_id"], review["new_hash"], review["posted_amount"]) == (
        1,
        "deleted",
        "10.00",
    )
    assert store.ignored("direct_cost") == {2: "deleted in Procore"}


def test_inbox_lookups(store):
    _stage(store, "direct_cost", 1, "2026-10")
    key = _event(store, "Direct Costs", 1)
    store.mark_events([key], "webhook-x")
    assert [r["event_key"] for r in events_for_run(store, "webhook-x")] == [key]
    assert stored_event_keys(store, [key, "nope"]) == {key}


def test_reconciliation_plans_skip_gaps_inside_the_window():
    window, catch_up = reconciliation_plans(
        "2026-11-27", {"direct_cost": {1: "2026-11", 2: "2026-02"}}
    )
    assert (window.start, window.end, window.all_assets) == ("2026-10", "2026-11", True)
    assert window.selection() is None
    assert (catch_up.start, catch_up.end, sorted(catch_up.posting_ids)) == (
        "2026-02",
        "2026-02",
        [2],
    )
    assert reconciliation_plans("2026-11-27")[0].run_key == window.run_key
