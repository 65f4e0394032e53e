"""Cursors and reference snapshots per tenant: one name, one value per tenant."""

from __future__ import annotations


def test_cursors_of_the_same_name_are_per_tenant(tenants) -> None:
    acme, globex = tenants
    acme.set_cursor("direct_costs:updated_at", "2025-01-01")
    assert globex.get_cursor("direct_costs:updated_at") is None
    globex.set_cursor("direct_costs:updated_at", "2024-06-30")
    acme.set_cursor("direct_costs:updated_at", "2025-02-01")  # an update, not a new row
    assert acme.get_cursor("direct_costs:updated_at") == "2025-02-01"
    assert globex.get_cursor("direct_costs:updated_at") == "2024-06-30"


def test_reference_snapshots_are_per_tenant(tenants) -> None:
    acme, globex = tenants
    acme.put_reference("vendor_map", {"501": "V100"})
    globex.put_reference("vendor_map", {"501": "G-9"})  # same Procore vendor id, other firm
    acme.put_reference("vendor_map", {"501": "V101"})
    assert acme.get_reference("vendor_map") == {"501": "V101"}
    assert globex.get_reference("vendor_map") == {"501": "G-9"}
    assert globex.get_reference("gl_map", default={}) == {}
