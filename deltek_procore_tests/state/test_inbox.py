"""The webhook inbox per tenant: the same event key is stored once for each tenant."""

from __future__ import annotations

from types import SimpleNamespace


def event(key: str, rid: int = 11) -> SimpleNamespace:
    return SimpleNamespace(
        key=key, resource_name="Direct Costs", resource_id=rid, event_type="update", project_id=7
    )


def test_event_keys_deduplicate_per_tenant(tenants) -> None:
    acme, globex = tenants
    assert acme.add(event("ulid-1"), {"id": "ulid-1"})
    assert not acme.add(event("ulid-1"), {"id": "ulid-1"})  # a redelivery
    assert globex.add(event("ulid-1"), {"id": "ulid-1", "company": "globex"})  # not a duplicate
    assert acme.add(event("ulid-2"), {"id": "ulid-2"})
    assert (acme.inbox_count(), globex.inbox_count()) == (2, 1)
    assert [e["event_key"] for e in acme.pending_events()] == ["ulid-1", "ulid-2"]
    assert "tenant" not in acme.pending_events()[0]  # rows look as they did before tenants


def test_claiming_events_claims_only_the_tenants_own(tenants) -> None:
    acme, globex = tenants
    for store in (acme, globex):
        store.add(event("k1"), {})
        store.add(event("k2"), {})
    acme.mark_events(["k1", "k2"], "acme-run")
    assert acme.pending_events() == []
    assert [e["event_key"] for e in globex.pending_events()] == ["k1", "k2"]
    assert [e["event_key"] for e in acme.events_for_run("acme-run")] == ["k1", "k2"]
    assert globex.events_for_run("acme-run") == []
    globex.mark_events(["k2"], "globex-run")
    assert globex.stored_event_keys(["k1", "k2", "k3"]) == {"k1", "k2"}
    assert acme.stored_event_keys(["k3"]) == set()
