"""The audit trail per tenant: each store reads only its own events."""

from __future__ import annotations

from deltek_procore.state.store import AuditEvent


def test_each_tenant_reads_only_its_own_audit_trail(tenants) -> None:
    acme, globex = tenants
    acme.audit([AuditEvent("posted", "direct_cost", 1, {"batch": "A"})], "run-a")
    globex.audit([AuditEvent("posted", "direct_cost", 1, {"batch": "G"})], "run-g")
    globex.audit([AuditEvent("verified", "direct_cost", 1)], "run-g")
    assert [(e["run_id"], e["detail"]) for e in acme.audit_trail("direct_cost", 1)] == [
        ("run-a", {"batch": "A"})
    ]
    assert [e["event"] for e in globex.audit_trail()] == ["posted", "verified"]
    assert len(globex.audit_trail(limit=1)) == 1
