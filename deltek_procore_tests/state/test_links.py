"""Vendor links per tenant: one Procore vendor id links to each tenant's own Deltek vendor."""

from __future__ import annotations


def test_the_same_procore_vendor_links_per_tenant(tenants) -> None:
    acme, globex = tenants
    acme.link_vendor(501, "V100", None, "tax_id")
    globex.link_vendor(501, "V100", "C7", "created")  # same vendor number, other Deltek
    acme.link_vendor(501, "V101", None, "override")
    assert acme.vendor_links()[501]["deltek_vendor"] == "V101"
    assert globex.vendor_links()[501]["deltek_vendor"] == "V100"
    assert globex.vendor_links()[501]["client_id"] == "C7"
    assert set(acme.vendor_links()[501]) == {
        "procore_vendor_id", "deltek_vendor", "client_id", "method", "confirmed", "created_at"
    }  # fmt: skip
