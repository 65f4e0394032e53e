"""Reconciliation findings per tenant: the same document key in one period is open for each
tenant on its own, and a finding changes and restores only its own tenant's ledger rows."""

from __future__ import annotations

from deltek_procore.posting.reconcile import Difference
from deltek_procore.state.states import Finding


def missing(key: str, ids: tuple[int, ...]) -> Difference:
    return Difference(Finding.MISSING, "2025-01", "AP", key, "missing in Deltek", "direct_cost",
                      7, "PCAP202501X", ids)  # fmt: skip


def test_findings_are_recorded_and_resolved_per_tenant(tenants) -> None:
    acme, globex = tenants
    a = acme.add_revision(kind="direct_cost", record_id=7, content_hash="h", status="posted")
    g = globex.add_revision(kind="direct_cost", record_id=7, content_hash="h", status="posted")
    assert acme.record_findings("2025-01", [missing("V100|INV-7", (a.id,))])["new"] == 1
    assert globex.findings() == []
    assert globex.latest("direct_cost")[7].status == "posted"
    # a difference naming acme's ledger row, handed to globex: globex's finding, acme untouched
    assert globex.record_findings("2025-01", [missing("V100|INV-7", (a.id, g.id))])["new"] == 1
    assert acme.latest("direct_cost")[7].status == "missing"
    assert globex.latest("direct_cost")[7].status == "missing"
    assert acme.record_findings("2025-01", [])["resolved"] == 1  # Deltek agrees for acme
    assert acme.latest("direct_cost")[7].status == "posted"
    assert globex.latest("direct_cost")[7].status == "missing"
    assert [f["doc_key"] for f in globex.findings(["2025-01"])] == ["V100|INV-7"]
    assert acme.findings() == [] and len(acme.findings(open_only=False)) == 1
