"""The `read_complete` check in a real sync: each Procore listing's rows against the Total
Procore announced. A truncated page taken for the last one loses rows silently to paging;
this check fails naming the listing, and the next run (paging whole again) reads them."""

from __future__ import annotations

from deltek_procore.sandbox.faults import Faults, FaultSettings
from deltek_procore_tests.defs.sync_harness import harness

SPEND_ASSETS = (
    "procore_subcontractor_invoices",
    "procore_direct_costs",
    "procore_commitments",
    "procore_change_orders",
)


def _read_complete(result) -> dict[str, object]:
    return {
        e.asset_check_evaluation_data.asset_key.to_user_string(): e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.asset_check_evaluation_data.check_name == "read_complete"
    }


def test_a_truncated_page_fails_read_complete_and_the_next_run_reads_the_rest(
    tmp_path, monkeypatch
):
    faults = Faults(FaultSettings(short_pages=True))
    with harness(tmp_path, monkeypatch, procore_faults=faults) as h:
        truth = len(h.box.data.procore["direct_costs"])
        result = h.sync()  # the run itself succeeds: the check is the alarm
        checks = _read_complete(result)
        assert set(checks) == set(SPEND_ASSETS)
        direct = checks["procore_direct_costs"]
        assert not direct.passed
        assert "/direct_costs" in direct.description and "Procore's Total" in direct.description
        assert "the cursor stays" in direct.description
        short = len(h.store.staged("direct_cost"))
        assert short < truth  # rows were lost to the truncated pages
        assert h.store.get_cursor("procore:direct_cost") is None

        faults.settings.short_pages = False
        result = h.sync()
        checks = _read_complete(result)
        assert all(c.passed for c in checks.values()), {k: c.description for k, c in checks.items()}
        assert "read exactly Procore's Total" in checks["procore_direct_costs"].description
        assert len(h.store.staged("direct_cost")) == truth
        assert h.store.get_cursor("procore:direct_cost") is not None
