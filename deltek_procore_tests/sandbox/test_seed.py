"""The seeded sandbox world: deterministic, shaped like Procore/Deltek, with its rough edges."""

from __future__ import annotations

import re
import time
from collections import Counter
from fnmatch import fnmatchcase

import pytest
import yaml

from deltek_procore.sandbox import seed

MONEY = re.compile(r"^-?\d+\.\d{2}$")


@pytest.fixture(scope="module")
def data() -> seed.SandboxData:
    return seed.build(2000, seed=42)


def _cents(text: str) -> int:
    return round(float(text) * 100)


def test_same_seed_same_world_other_seed_other_world() -> None:
    first, second = seed.build(400, seed=3), seed.build(400, seed=3)
    assert first.procore == second.procore
    assert first.deltek == second.deltek
    assert first.mappings_yaml == second.mappings_yaml
    assert seed.build(400, seed=4).procore["direct_costs"] != first.procore["direct_costs"]


def test_counts_follow_the_records_knob(data: seed.SandboxData) -> None:
    p = data.procore
    records = (
        len(p["requisitions"])
        + len(p["direct_costs"])
        + len(p["work_order_contracts"])
        + len(p["purchase_order_contracts"])
        + len(p["commitment_change_orders"])
    )
    assert records == data.summary["records"] == 2000
    assert len(p["projects"]) == 6
    assert 35 <= len(p["vendors"]) <= 45
    assert [t["code"] for t in p["line_item_types"]] == ["L", "M", "E", "S", "O"]
    assert len(p["billing_periods"]) > 6 * 3
    for key, rows in p.items():
        assert all("project_id" in r for r in rows), key
        assert len({r["id"] for r in rows}) == len(rows), key


def test_every_status_occurs_and_approved_dominates(data: seed.SandboxData) -> None:
    p = data.procore
    req = Counter(r["status"] for r in p["requisitions"])
    assert set(req) == set(seed.REQUISITION_STATUSES)
    assert req["approved"] + req["approved_as_noted"] > len(p["requisitions"]) / 2
    assert set(Counter(r["status"] for r in p["direct_costs"])) == set(seed.DIRECT_COST_STATUSES)
    assert {r["direct_cost_type"] for r in p["direct_costs"]} == {"invoice", "expense", "payroll"}
    assert {r["status"] for r in p["work_order_contracts"]} == set(seed.WORK_ORDER_STATUSES)
    assert {r["status"] for r in p["purchase_order_contracts"]} == set(seed.PURCHASE_ORDER_STATUSES)
    assert {r["status"] for r in p["commitment_change_orders"]} == set(seed.CHANGE_ORDER_STATUSES)


def test_requisition_items_follow_the_commitment_lines(data: seed.SandboxData) -> None:
    p = data.procore
    lines = {
        line["id"]: line
        for c in p["work_order_contracts"] + p["purchase_order_contracts"]
        for line in c["line_items"]
    }
    contracts = {c["id"]: c for c in p["work_order_contracts"] + p["purchase_order_contracts"]}
    for req in p["requisitions"]:
        contract = contracts[req["commitment_id"]]
        assert req["billing_date"] > contract["contract_date"]
        period_total = 0
        retained = 0
        for item in req["items"]:
            line = lines[item["line_item_id"]]
            assert line["holder"]["id"] == req["commitment_id"]
            assert item["cost_code_id"] == line["cost_code_id"]
            assert "line_item_type_id" not in item and "line_item_type" not in item
            for key in (
                "work_completed_this_period",
                "materials_presently_stored",
                "work_completed_retainage_retained_this_period",
                "materials_stored_retainage_retained_this_period",
            ):
                assert MONEY.match(item[key]), (key, item[key])
            period_total += _cents(item["work_completed_this_period"]) + _cents(
                item["materials_presently_stored"]
            )
            retained += _cents(item["work_completed_retainage_retained_this_period"]) + _cents(
                item["materials_stored_retainage_retained_this_period"]
            )
        assert period_total == _cents(req["total_claimed_amount"])
        assert _cents(req["summary"]["current_payment_due"]) == period_total - retained
        assert _cents(req["summary"]["total_retainage"]) >= retained


def test_money_dates_and_line_sums(data: seed.SandboxData) -> None:
    p = data.procore
    for cost in p["direct_costs"]:
        assert MONEY.match(cost["grand_total"])
        assert sum(_cents(li["amount"]) for li in cost["line_items"]) == _cents(cost["grand_total"])
        assert cost["updated_at"] > cost["created_at"]
    for key in ("work_order_contracts", "purchase_order_contracts", "commitment_change_orders"):
        for record in p[key]:
            assert sum(_cents(li["amount"]) for li in record["line_items"]) == _cents(
                record["grand_total"]
            )
            assert record["updated_at"] > record["created_at"]
    months = {c["direct_cost_date"][:7] for c in p["direct_costs"]}
    assert len(months) == 24 and max(months) == "2026-10"
    assert len({r["billing_date"][:7] for r in p["requisitions"]}) >= 20
    assert any(co["grand_total"].startswith("-") for co in p["commitment_change_orders"])


def test_awkward_invoice_numbers_exist(data: seed.SandboxData) -> None:
    numbers = [
        r["invoice_number"]
        for r in data.procore["direct_costs"] + data.procore["requisitions"]
        if r["invoice_number"]
    ]
    assert 'INV-7 "A&B" #3 50% Müller' in numbers
    assert any("&" in n and "#" in n and "%" in n for n in numbers)
    assert len(numbers) == len(set(numbers)), "invoice numbers must be unique"


def test_vendor_matching_routes(data: seed.SandboxData) -> None:
    firms = data.deltek["firms"]
    by_number = {f["Vendor"]: f for f in firms if f["VendorInd"] == "Y"}
    by_fed = {f["FedID"]: f for f in firms if f["FedID"]}
    norm = {re.sub(r"[^a-z0-9]", "", f["Name"].lower()): f for f in firms}
    vendors = data.procore["vendors"]
    kinds = dict(seed.VENDORS)
    code = [v for v in vendors if kinds[v["name"]] == "code"]
    assert code and all(by_number[v["origin_code"]]["VendorInd"] == "Y" for v in code)
    for v in (v for v in vendors if kinds[v["name"]] == "tax"):
        assert v["origin_code"] is None and by_fed[v["tax_id"]]["Name"] != v["name"]
    for v in (v for v in vendors if kinds[v["name"]] == "name"):
        assert v["origin_code"] is None
        assert re.sub(r"[^a-z0-9]", "", v["name"].lower()) in norm
    matched = sum(1 for v in vendors if kinds[v["name"]] != "none")
    assert matched == len(vendors) // 2
    assert sum(1 for v in vendors if v["name"] == "") == 1
    assert "RRR-STEEL" in by_number  # the mapping-override firm


def test_deltek_side_and_projects(data: seed.SandboxData) -> None:
    wbs = {p["WBS1"]: p for p in data.deltek["projects"] if not p["WBS2"]}
    numbers = [p["project_number"] for p in data.procore["projects"]]
    unmatched = [n for n in numbers if n not in wbs]
    assert unmatched == [data.summary["unmatched_project"]]
    assert [w for w, p in wbs.items() if p["Status"] == "I"] == ["2023004.00"]
    accounts = {a["Account"]: a for a in data.deltek["accounts"]}
    assert {"2000", "2150", "2160"} <= set(accounts)
    assert all(a["Type"] == 7 for n, a in accounts.items() if n.startswith("5"))
    assert sum(1 for a in accounts.values() if a["Status"] == "I") == 1
    assert data.deltek["active_period"] == 202611 and data.deltek["company"] == "01"


def test_mapping_leaves_exactly_one_used_pair_unmapped(data: seed.SandboxData) -> None:
    mapping = yaml.safe_load(data.mappings_yaml)
    rules = mapping["gl_accounts"]
    assert not any(r["cost_code"] == "*" and r["cost_type"] == "*" for r in rules)
    accounts = {a["Account"] for a in data.deltek["accounts"] if a["Status"] == "A"}
    assert all(r["account"] in accounts for r in rules)
    p = data.procore
    used: dict[tuple[str, str], set[str]] = {}
    for key in (
        "direct_costs",
        "work_order_contracts",
        "purchase_order_contracts",
        "commitment_change_orders",
    ):
        for record in p[key]:
            for line in record["line_items"]:
                pair = (line["cost_code"]["full_code"], line["line_item_type"]["code"])
                used.setdefault(pair, set()).add(record["status"])

    def mapped(pair: tuple[str, str]) -> bool:
        return any(
            fnmatchcase(pair[0], r["cost_code"]) and r["cost_type"] in ("*", pair[1]) for r in rules
        )

    unmapped = [pair for pair in used if not mapped(pair)]
    assert unmapped == [seed.UNMAPPED_PAIR]
    assert "approved" in used[seed.UNMAPPED_PAIR]
    assert mapping["defaults"]["commitment_offset_account"] == "2150"


def test_hundred_thousand_records_build_quickly() -> None:
    started = time.perf_counter()
    big = seed.build(100_000, seed=42)
    elapsed = time.perf_counter() - started
    print(f"\nseed.build(100_000) took {elapsed:.2f} s; counts {big.summary['counts']}")
    assert big.summary["records"] == 100_000
    assert elapsed < 30  # generous: shared CI machines; a few seconds on a laptop
