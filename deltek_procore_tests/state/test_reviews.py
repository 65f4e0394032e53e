"""Ignore list and review queue per tenant: a decision in one never reaches the other."""

from __future__ import annotations


def review(store, rid: int = 11, new_hash: str = "h2") -> bool:
    return store.add_review(
        kind="direct_cost", record_id=rid, posted_hash="h1", new_hash=new_hash,
        posted_amount="100", new_amount="120", reason="changed after posting", code="late_change",
    )  # fmt: skip


def test_ignore_lists_are_per_tenant(tenants) -> None:
    acme, globex = tenants
    acme.ignore("direct_cost", 11, "paid outside")
    globex.ignore("direct_cost", 11, "duplicate")
    acme.ignore("direct_cost", 12, "test record")
    assert acme.ignored("direct_cost") == {11: "paid outside", 12: "test record"}
    assert globex.ignored("direct_cost") == {11: "duplicate"}
    assert globex.unignore("direct_cost", 12) is False  # acme's, not globex's
    assert globex.unignore("direct_cost", 11) is True
    assert acme.ignored("direct_cost") == {11: "paid outside", 12: "test record"}


def test_review_items_and_decisions_are_per_tenant(tenants) -> None:
    acme, globex = tenants
    assert review(acme) and not review(acme)  # once per record change
    assert review(globex)  # the same record change under another tenant is its own item
    [mine], [theirs] = acme.reviews(), globex.reviews()
    assert "tenant" not in mine
    # globex cannot read, decide or close acme's item, even by its id
    assert globex.review(mine["id"]) is None
    assert not globex.decide_review(mine["id"], "approved", "eve", "not hers")
    assert acme.review(mine["id"])["status"] == "open"
    assert acme.decide_review(mine["id"], "approved", "pat", "agreed with the sub")
    assert set(acme.review_decisions("direct_cost", [11])) == {11}
    assert globex.review_decisions("direct_cost", [11]) == {}
    globex.close_reviews("direct_cost", 11, "policy switched")
    assert globex.reviews() == [] and globex.reviews("resolved")[0]["id"] == theirs["id"]
    assert acme.reviews("approved")[0]["decided_by"] == "pat"
    assert acme.reviews("resolved") == []
