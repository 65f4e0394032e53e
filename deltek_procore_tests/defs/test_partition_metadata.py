"""After a 24-month backfill in one run, each monthly partition carries its own month's
figures (what the Dagster UI shows per partition), not the whole run's."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from deltek_procore.sandbox.runner import sandbox_periods
from deltek_procore_tests.defs.sync_harness import harness


def materialization(instance: dg.DagsterInstance, asset: str, partition: str):
    result = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=1
    )
    [record] = result.records
    return record.asset_materialization


def test_each_partition_of_a_backfill_shows_only_its_month(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with harness(tmp_path / "home", monkeypatch, records=400, receiver=False) as h:
        periods = sandbox_periods(h.box)
        assert len(periods) == 24
        h.sync(periods[0], periods[-1])
        posted = {
            p: len(
                [
                    r
                    for r in h.store.ledger_rows(
                        kinds=["requisition", "direct_cost"], periods=[p], statuses=["posted"]
                    )
                ]
            )
            for p in periods
        }
        month = "2025-01"
        assert month in periods and posted[month] > 0
        shown = materialization(h.instance, "deltek_ap_invoices", month).metadata
        assert shown["posted"].value == posted[month]
        assert posted[month] < sum(posted.values())
        table = shown["quarantine"].value
        assert {r.data["period"] for r in table.records} <= {month}
        for row in table.records:
            assert row.data["vendor"] or row.data["document"], row.data
            assert row.data["amount"], row.data
        summary = shown["summary"].value
        assert f"| {month} |" in summary and "| 2025-02 |" not in summary
        other = materialization(h.instance, "deltek_ap_invoices", "2025-02").metadata
        assert other["posted"].value == posted["2025-02"]
