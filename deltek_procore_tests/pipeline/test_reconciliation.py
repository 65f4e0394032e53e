"""Reconciling a month against Deltek (pipeline/reconciliation.py, the deltek_reconciliation
asset and the posting checks), with the real sync job and the sandbox.

Deltek is changed the way an accountant would change it: a batch deleted, an amount
edited through the API. The checks must see it, because they read Deltek.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest

from deltek_procore.replay import replay
from deltek_procore.sandbox.runner import sandbox_periods
from deltek_procore_tests.defs.sync_harness import Harness, assert_deltek_exact, harness


@pytest.fixture
def h(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with harness(tmp_path / "home", monkeypatch, records=300, receiver=False) as h:
        yield h


def checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    """{asset.check: evaluation} of one run (one partition: the last evaluation wins)."""
    return {
        f"{e.asset_key.to_user_string()}.{e.check_name}": e
        for e in result.get_asset_check_evaluations()
    }


def posted_ap_batch(h: Harness, period: str) -> tuple[str, list]:
    rows = [
        r
        for r in h.store.ledger_rows(
            kinds=["requisition", "direct_cost"], periods=[period], statuses=["posted"]
        )
        if (r.deltek_batch or "").startswith("PCAP")
    ]
    batch = Counter(r.deltek_batch for r in rows).most_common(1)[0][0]
    return batch, [r for r in rows if r.deltek_batch == batch]


def test_a_batch_deleted_in_deltek_fails_the_checks_naming_its_records_and_replay_reposts_once(
    h,
) -> None:
    period = sandbox_periods(h.box)[-1]
    first = checks(h.sync(period, period))
    assert first["deltek_reconciliation.deltek_matches_ledger"].passed
    batch, rows = posted_ap_batch(h, period)
    client = h.resources()["deltek"].client()
    client.delete_batch(batch, "AP")

    second = checks(h.sync(period, period))
    matches = second["deltek_reconciliation.deltek_matches_ledger"]
    assert not matches.passed
    for row in rows:
        assert f"missing {row.kind} {row.record_id}" in matches.description
        assert h.store.latest(row.kind, [row.record_id])[row.record_id].status == "missing"
    assert not second["deltek_ap_invoices.read_back_matches"].passed
    totals = second["deltek_ap_invoices.totals_match"]
    assert not totals.passed and totals.severity == dg.AssetCheckSeverity.ERROR
    open_findings = h.store.findings([period])
    assert {(f["kind"], f["record_id"]) for f in open_findings if f["finding"] == "missing"} == {
        (r.kind, r.record_id) for r in rows
    }

    # without a replay, a sync does not re-post (on_missing: review is the default)
    h.sync(period, period)
    assert not any(v["Batch"] == batch for v in h.box.deltek.ap_vouchers())
    assert all(h.store.latest(r.kind, [r.record_id])[r.record_id].status == "missing" for r in rows)

    for row in rows:
        assert replay(row.kind, row.record_id, h.store).startswith("posted")
    final = checks(h.sync(period, period))
    assert final["deltek_reconciliation.deltek_matches_ledger"].passed
    assert h.store.findings([period]) == []
    assert_deltek_exact(h, [period])
    invoices = Counter((v["Vendor"], v["Invoice"]) for v in h.box.deltek.ap_vouchers())
    for row in rows:
        assert invoices[(row.deltek_vendor, row.document)] == 1


def test_totals_match_fails_when_deltek_differs_from_procore_by_one_cent(h) -> None:
    period = sandbox_periods(h.box)[-1]
    assert checks(h.sync(period, period))["deltek_ap_invoices.totals_match"].severity
    batch, rows = posted_ap_batch(h, period)
    client = h.resources()["deltek"].client()
    detail = dict(client.batch_details(batch, "AP")[0])
    detail["Amount"] = float(Decimal(str(detail["Amount"])) + Decimal("0.01"))
    client._call("PUT", f"DataEntry/apControl/{batch}", body={"Batch": batch,
                                                               "apDetail": [detail]})  # fmt: skip

    result = checks(h.sync(period, period))
    totals = result["deltek_ap_invoices.totals_match"]
    assert not totals.passed and totals.severity == dg.AssetCheckSeverity.ERROR
    assert "differs at" in totals.description
    matches = result["deltek_reconciliation.deltek_matches_ledger"]
    assert not matches.passed and "changed" in matches.description
    changed = [f for f in h.store.findings([period]) if f["finding"] == "changed"]
    assert len(changed) == 1 and "0.01" not in (changed[0]["planned"] or "")
    row = h.store.latest(changed[0]["kind"], [changed[0]["record_id"]])[changed[0]["record_id"]]
    assert row.status == "changed"
