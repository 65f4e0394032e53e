"""Reference maps from staged Procore data: GL pairs in use, vendors matched and created."""

from __future__ import annotations

import pytest

from deltek_procore.deltek import DeltekClient, DeltekSettings
from deltek_procore.mapping import parse_mapping
from deltek_procore.pipeline.ingest import to_staged
from deltek_procore.pipeline.reference import build_vendor_map, used_pairs
from deltek_procore.procore.models import ChangeOrder, CostCode, CostType, DirectCost, Vendor
from deltek_procore.sandbox import seed
from deltek_procore.sandbox.deltek_sim import DeltekSimulator
from deltek_procore.sandbox.faults import Faults
from deltek_procore.sandbox.server import serve_in_thread
from deltek_procore.state.store import StateStore

MAPPING = """
defaults:
  liability_code: AP
  bank_code: OPER
  commitment_offset_account: "2150"
"""


@pytest.fixture
def store(tmp_path) -> StateStore:
    return StateStore(f"sqlite:///{tmp_path / 'state.db'}")


def stage(store: StateStore, kind: str, model_cls: type, *raws: dict) -> None:
    store.stage([to_staged(kind, model_cls.model_validate(raw)) for raw in raws])


def co_line(line_id: int, **fields) -> dict:
    return {"id": str(line_id), "amount": "10.00", "quantity": 1, **fields}


def test_used_pairs_count_change_order_lines_as_translation_reads_them(store):
    stage(
        store,
        "cost_code",
        CostCode,
        {"id": 100, "full_code": "03-300", "project_id": 1},
        {"id": 101, "full_code": "01-000", "project_id": 1},
    )
    stage(store, "cost_type", CostType, {"id": 7, "code": "S"}, {"id": 8, "code": "M"})
    contract_line = {"id": 501, "cost_code_id": 100, "line_item_type_id": 8}
    stage(
        store,
        "change_order",
        ChangeOrder,
        {
            "id": 300001,
            "project_id": 1,
            "contract_id": 41,
            "status": "approved",
            "reviewed_at": "2026-10-02T00:00:00Z",
            "line_items": [
                # the contract line it changes decides, not its wbs code
                co_line(
                    1,
                    commitment_line_item_id="501",
                    contract_line=contract_line,
                    wbs_code={"flat_code": "03-300.S"},
                ),
                co_line(2, wbs_code={"id": "9", "flat_code": "01-000.S"}),  # no contract line
                co_line(3, wbs_code={"id": "9", "flat_code": "OWNER-ALLOWANCE"}),  # neither
            ],
        },
    )
    assert used_pairs(store) == {
        ("03-300", "M"): 1,
        ("01-000", "S"): 1,
        ("?OWNER-ALLOWANCE", ""): 1,
    }
    assert used_pairs(store, {"change_order": {"draft"}}) == {}


@pytest.fixture
def deltek():
    simulator = DeltekSimulator(seed.build(records=200).deltek, Faults())
    server = serve_in_thread(simulator.app)
    client = DeltekClient(
        DeltekSettings(
            api_url=f"{server.url}{seed.DELTEK_API_PATH}",
            username=seed.DELTEK_USERNAME,
            password=seed.DELTEK_PASSWORD,
            database=seed.DELTEK_DATABASE,
            client_id=seed.DELTEK_CLIENT_ID,
            client_secret=seed.DELTEK_CLIENT_SECRET,
            read_timeout=10,
        ),
        sleep=lambda _s: None,
    )
    yield client
    server.stop()


def test_vendors_match_by_business_id_and_new_firms_carry_it_as_fedid(store, deltek):
    firms = deltek.firms()
    store.put_reference("deltek_firms", firms)
    known = next(f for f in firms if f.get("FedID") and f.get("VendorInd") == "Y")
    stage(
        store,
        "vendor",
        Vendor,
        # nothing but the tax id in common with the Deltek firm
        {
            "id": 901,
            "name": "Nothing Alike Holdings",
            "origin_code": None,
            "business_id": known["FedID"].replace("-", ""),
        },
        {"id": 902, "name": "Brand New Drywall Co", "business_id": "31-4159265"},
    )
    stage(
        store,
        "direct_cost",
        DirectCost,
        *(
            {
                "id": 4300000000 + v,
                "project_id": 1,
                "vendor_id": v,
                "status": "approved",
                "direct_cost_date": "2026-10-01",
            }
            for v in (901, 902)
        ),
    )
    result = build_vendor_map(store, parse_mapping(MAPPING), deltek, run_id="t")
    vendor_map = store.get_reference("vendor_map")
    assert vendor_map["901"] == {"vendor": known["Vendor"], "method": "tax_id"}
    assert result.created == ["PC902"]
    (created,) = deltek.find_vendor(vendor="PC902")
    assert created["FedID"] == "31-4159265" and created["Name"] == "Brand New Drywall Co"
