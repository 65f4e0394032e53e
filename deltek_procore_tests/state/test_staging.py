"""Staged records per tenant: the same kind and Procore id under two tenants are two rows."""

from __future__ import annotations

from deltek_procore.state.store import StagedRecord, StateStore


def rec(rid: int, h: str, period: str = "2025-01", project: int = 7) -> StagedRecord:
    body = {"id": rid, "v": h}
    return StagedRecord("direct_cost", rid, body, h, project, period, "approved", "2025-01-05")


def test_the_same_record_id_is_staged_once_per_tenant(tenants) -> None:
    acme, globex = tenants
    assert acme.stage([rec(1, "a"), rec(2, "b")]) == 2
    assert globex.stage([rec(1, "A", "2025-02"), rec(3, "C")]) == 2  # id 1 is new for globex
    assert acme.stage([rec(1, "a")]) == 0  # unchanged for acme, whatever globex holds

    assert {r.record_id: r.content_hash for r in acme.staged("direct_cost")} == {1: "a", 2: "b"}
    assert {r.record_id: r.content_hash for r in globex.staged("direct_cost")} == {1: "A", 3: "C"}
    assert [r.record_id for r in globex.staged("direct_cost", ids=[1, 2])] == [1]
    assert [r.record_id for r in acme.staged("direct_cost", periods=["2025-02"])] == []
    assert [r.record_id for r in globex.iter_staged("direct_cost", page=1)] == [1, 3]
    assert set(acme.staged_stamps("direct_cost")) == {1, 2}
    assert acme.staged_periods(["direct_cost"]) == ["2025-01"]
    assert globex.staged_periods(["direct_cost"]) == ["2025-01", "2025-02"]
    # each tenant's `fetched` events are its own
    assert len(acme.audit_trail("direct_cost", 1)) == 1
    assert globex.audit_trail("direct_cost", 2) == []


def test_restaging_one_tenant_leaves_the_other_untouched(tenants) -> None:
    acme, globex = tenants
    acme.stage([rec(5, "old")])
    globex.stage([rec(5, "theirs")])
    assert acme.stage([rec(5, "new", "2025-03")]) == 1
    [mine] = acme.staged("direct_cost")
    [theirs] = globex.staged("direct_cost")
    assert (mine.content_hash, mine.period) == ("new", "2025-03")
    assert (theirs.content_hash, theirs.period) == ("theirs", "2025-01")


def test_the_default_tenant_is_one_tenant_among_others(state_url) -> None:
    default, acme = StateStore(state_url), StateStore(state_url, tenant="acme")
    default.stage([rec(9, "d")])
    assert acme.staged("direct_cost") == [] and len(default.staged("direct_cost")) == 1
    default.dispose()
    acme.dispose()
