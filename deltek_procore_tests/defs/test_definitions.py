"""The definitions cannot drift silently: asset keys, checks, job, sensor, schedule."""

from __future__ import annotations

from deltek_procore.definitions import defs

EXPECTED_ASSETS = {
    "procore_projects", "procore_vendors", "procore_cost_types", "procore_cost_codes",
    "procore_subcontractor_invoices", "procore_direct_costs", "procore_commitments",
    "procore_change_orders", "deltek_projects", "deltek_firms", "deltek_gl_accounts",
    "project_map", "vendor_firm_map", "gl_account_map", "deltek_ap_invoices",
    "deltek_commitment_journal_entries", "deltek_reconciliation", "daily_summary",
}  # fmt: skip


def test_asset_graph_and_lineage() -> None:
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == EXPECTED_ASSETS
    ap = graph.get(
        next(k for k in graph.get_all_asset_keys() if k.to_user_string() == "deltek_ap_invoices")
    )
    parents = {k.to_user_string() for k in ap.parent_keys}
    assert {
        "vendor_firm_map",
        "gl_account_map",
        "project_map",
        "procore_subcontractor_invoices",
    } <= parents
    assert ap.partitions_def is not None
    keys = ap.partitions_def.get_partition_keys()
    assert keys[0] == "2024-01" and all(len(k) == 7 for k in keys)


def test_checks_job_sensor_schedule() -> None:
    checks = {k.name for k in defs.resolve_asset_graph().asset_check_keys}
    assert {
        "every_line_mapped",
        "complete",
        "no_duplicates",
        "read_back_matches",
        "totals_match",
        "deltek_matches_ledger",
    } <= checks
    assert defs.resolve_job_def("sync").name == "sync"
    assert defs.resolve_sensor_def("procore_webhook_sensor").name == "procore_webhook_sensor"
    assert defs.resolve_schedule_def("nightly_reconciliation").cron_schedule
    assert defs.resolve_schedule_def("daily_summary_schedule").cron_schedule
    sync_keys = {
        k.to_user_string() for k in defs.resolve_job_def("sync").asset_layer.selected_asset_keys
    }
    assert "daily_summary" not in sync_keys and "deltek_reconciliation" in sync_keys
