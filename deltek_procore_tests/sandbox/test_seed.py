"""The seeded sandbox world: deterministic, shaped like Procore/Deltek, with its rough edges."""

from __future__ import annotations

import re
import time
from collections import Counter
from fnmatch import fnmatchcase

import pytest
import yaml

from deltek_procore.sandbox import contract, seed

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


def _contract_lines(p: dict) -> dict[int, dict]:
    return {
        line["id"]: line
        for c in p["work_order_contracts"] + p["purchase_order_contracts"]
        for line in c["line_items"]
    }


def test_requisition_items_have_the_real_v11_shape(data: seed.SandboxData) -> None:
    p = data.procore
    lines = _contract_lines(p)
    item_fields = set(contract.item_shapes(contract.REQUISITIONS)[""]["items"]["of"]["fields"])
    contracts = {c["id"]: c for c in p["work_order_contracts"] + p["purchase_order_contracts"]}
    for req in p["requisitions"]:
        assert req["billing_date"] > contracts[req["commitment_id"]]["contract_date"]
        for item in req["items"]:
            line = lines[item["line_item_id"]]
            assert line["holder"]["id"] == req["commitment_id"]
            assert set(item) <= item_fields, set(item) - item_fields
            assert item["cost_code_id"] == line["cost_code"]["id"]  # flat, as the model has it
            assert item["wbs_code"] == line["wbs_code"]
            for key in ("cost_code", "line_item_type", "line_item_type_id"):
                assert key not in item
            for key, value in item.items():
                if key.startswith(("work_", "materials_", "total_")) and "percent" not in key:
                    assert MONEY.match(value), (key, value)


def _g703(item: dict) -> dict[str, int]:
    return {k: _cents(v) for k, v in item.items() if isinstance(v, str) and MONEY.match(v)}


def test_every_item_obeys_the_g703_identities(data: seed.SandboxData) -> None:
    for req in data.procore["requisitions"]:
        gross_sum = held_sum = to_date_sum = balance_sum = 0
        for item in req["items"]:
            c = _g703(item)
            w_prev = c["work_completed_from_previous_application"]
            w_this = c["work_completed_this_period"]
            moved = c["materials_moved"]
            s_prev = c["materials_presently_stored_from_previous_progress"]
            s_now = c["materials_presently_stored"]
            new = s_now - s_prev + moved
            assert new >= 0 and 0 <= moved <= s_prev and moved <= w_this
            assert c["total_completed_and_stored_to_date"] == w_prev + w_this + s_now
            assert c["total_completed_and_stored_to_date_from_previous"] == w_prev + s_prev
            assert c["total_completed_and_stored_to_date"] <= c["scheduled_value"]
            assert c["work_completed_retainage_retained_this_period"] * 10 == w_this - moved
            assert c["materials_stored_retainage_new_materials"] * 10 == new
            assert c["materials_retainage_retained_moved"] * 10 == moved
            assert c["materials_stored_retainage_currently_retained"] * 10 == s_now
            assert c["work_completed_retainage_released_this_period"] == 0
            assert c["materials_stored_retainage_released_this_period"] == 0
            gross = (
                c["total_completed_and_stored_to_date"]
                - c["total_completed_and_stored_to_date_from_previous"]
            )
            assert gross == w_this + s_now - s_prev == c["gross_amount"]
            held = (
                c["work_completed_retainage_retained_this_period"]
                + c["materials_stored_retainage_new_materials"]
            )
            assert c["net_amount"] == gross - held
            gross_sum += gross
            held_sum += held
            to_date_sum += c["total_completed_and_stored_to_date"]
            balance_sum += (
                c["work_completed_retainage_from_previous_application"]
                + c["work_completed_retainage_retained_this_period"]
                + c["materials_retainage_retained_moved"]
                + c["materials_stored_retainage_currently_retained"]
            )
        summary = {k: _cents(v) for k, v in req["summary"].items() if MONEY.match(v)}
        assert _cents(req["total_claimed_amount"]) == gross_sum
        assert summary["current_payment_due"] == gross_sum - held_sum
        assert summary["total_completed_and_stored_to_date"] == to_date_sum
        assert summary["total_retainage"] == balance_sum
        assert summary["total_earned_less_retainage"] == to_date_sum - balance_sum
        assert (
            summary["less_previous_certificates_for_payment"]
            == summary["total_earned_less_retainage"] - summary["current_payment_due"]
        )


def _applications(p: dict) -> dict[int, list[dict]]:
    """Each contract's applications in order, following previous_requisition_id."""
    by_id = {r["id"]: r for r in p["requisitions"]}
    out: dict[int, list[dict]] = {}
    for req in sorted(p["requisitions"], key=lambda r: (r["commitment_id"], r["number"])):
        out.setdefault(req["commitment_id"], []).append(req)
    for chain in out.values():
        assert "previous_requisition_id" not in chain[0]  # absent, not null
        for before, after in zip(chain, chain[1:], strict=False):
            assert by_id[after["previous_requisition_id"]] is before
            assert after["number"] == before["number"] + 1
    return out


def test_consecutive_applications_carry_the_running_totals(data: seed.SandboxData) -> None:
    for chain in _applications(data.procore).values():
        for before, after in zip(chain, chain[1:], strict=False):
            earlier = {i["line_item_id"]: _g703(i) for i in before["items"]}
            for item in after["items"]:
                now, prev = _g703(item), earlier[item["line_item_id"]]
                assert now["work_completed_from_previous_application"] == (
                    prev["work_completed_from_previous_application"]
                    + prev["work_completed_this_period"]
                )
                assert (
                    now["materials_presently_stored_from_previous_progress"]
                    == prev["materials_presently_stored"]
                )
                assert (
                    now["total_completed_and_stored_to_date_from_previous"]
                    == prev["total_completed_and_stored_to_date"]
                )
                assert now["work_completed_retainage_from_previous_application"] == (
                    prev["work_completed_retainage_from_previous_application"]
                    + prev["work_completed_retainage_retained_this_period"]
                    + prev["materials_retainage_retained_moved"]
                )
            assert _cents(after["summary"]["less_previous_certificates_for_payment"]) == _cents(
                before["summary"]["total_earned_less_retainage"]
            )


def test_stored_materials_carry_over_in_the_random_history(data: seed.SandboxData) -> None:
    """Stored in one application, still stored in the next, installed in a later one."""
    chain_contract = data.summary["stored_materials_chain"]["commitment_id"]
    found = 0
    for contract_id, apps in _applications(data.procore).items():
        if contract_id == chain_contract:
            continue
        for k in range(len(apps) - 2):
            for item in apps[k]["items"]:
                line = item["line_item_id"]
                later = [next(i for i in a["items"] if i["line_item_id"] == line) for a in apps[k:]]
                stored = _g703(later[0])
                carried = _g703(later[1])
                if (
                    stored["materials_presently_stored"] > 0
                    and carried["materials_presently_stored_from_previous_progress"] > 0
                    and carried["materials_moved"] == 0
                    and any(_g703(i)["materials_moved"] > 0 for i in later[2:])
                ):
                    found += 1
    assert found >= 3


def test_the_stored_materials_chain_is_guaranteed(data: seed.SandboxData) -> None:
    chain = data.summary["stored_materials_chain"]
    assert chain["months"] == ["2026-08", "2026-09", "2026-10"]
    by_id = {r["id"]: r for r in data.procore["requisitions"]}
    apps = [by_id[i] for i in chain["requisition_ids"]]
    assert [r["status"] for r in apps] == ["approved"] * 3
    assert [r["billing_date"][:7] for r in apps] == chain["months"]
    assert {r["commitment_id"] for r in apps} == {chain["commitment_id"]}
    raw = [next(i for i in r["items"] if i["line_item_id"] == chain["line_item_id"]) for r in apps]
    assert [i["id"] for i in raw] == chain["item_ids"]
    stored, carried, installed = (_g703(i) for i in raw)
    assert stored["materials_presently_stored"] > 0 and stored["materials_moved"] == 0
    assert stored["materials_presently_stored_from_previous_progress"] == 0
    assert (
        carried["materials_presently_stored"]
        == carried["materials_presently_stored_from_previous_progress"]
        == stored["materials_presently_stored"]
    )
    assert carried["materials_moved"] == 0
    assert installed["materials_moved"] == stored["materials_presently_stored"]
    assert installed["materials_presently_stored"] == 0
    contract_of = {
        c["id"]: c
        for c in data.procore["work_order_contracts"] + data.procore["purchase_order_contracts"]
    }
    assert contract_of[chain["commitment_id"]]["status"] in seed.BILLABLE_COMMITMENT


@pytest.mark.parametrize(
    ("end_month", "months", "expected"),
    [
        ("2025-03", 6, ["2025-01", "2025-02", "2025-03"]),
        ("2026-01", 3, ["2025-11", "2025-12", "2026-01"]),
        ("2026-01", 2, None),
    ],
)
def test_chain_follows_the_end_month(end_month: str, months: int, expected) -> None:
    built = seed.build(300, seed=9, end_month=end_month, months=months)
    chain = built.summary["stored_materials_chain"]
    assert (chain["months"] if chain else None) == expected


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
    assert not any("tax_id" in v for v in vendors)  # Procore's tax id is business_id
    tax = [v for v in vendors if kinds[v["name"]] == "tax"]
    assert tax
    for v in tax:  # only the tax id can match: no vendor number, another name in Deltek
        firm = by_fed[v["business_id"]]
        assert v["origin_code"] is None and firm["Name"] != v["name"]
        assert _squash(firm["Name"]) != _squash(v["name"])
    for v in (v for v in vendors if kinds[v["name"]] == "name"):
        assert v["origin_code"] is None
        assert re.sub(r"[^a-z0-9]", "", v["name"].lower()) in norm
    matched = sum(1 for v in vendors if kinds[v["name"]] != "none")
    assert matched == len(vendors) // 2
    assert sum(1 for v in vendors if v["name"] == "") == 1
    assert "RRR-STEEL" in by_number  # the mapping-override firm


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


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
    lines = _contract_lines(p)
    used: dict[tuple[str, str], set[str]] = {}
    for key in ("direct_costs", "work_order_contracts", "purchase_order_contracts"):
        for record in p[key]:
            for line in record["line_items"]:
                pair = (line["cost_code"]["full_code"], line["line_item_type"]["code"])
                used.setdefault(pair, set()).add(record["status"])
    for order in p["commitment_change_orders"]:  # a CO line's pair is its contract line's
        for line in order["line_items"]:
            if line["commitment_line_item_id"] is not None:
                ref = lines[line["commitment_line_item_id"]]
                pair = (ref["cost_code"]["full_code"], ref["line_item_type"]["code"])
            elif line["wbs_code"]["flat_code"] != seed.UNPARSEABLE_FLAT_CODE:
                code, ctype = line["wbs_code"]["flat_code"].split(".")
                pair = (code, ctype)
            else:
                continue
            used.setdefault(pair, set()).add(order["status"])

    def mapped(pair: tuple[str, str]) -> bool:
        return any(
            fnmatchcase(pair[0], r["cost_code"]) and r["cost_type"] in ("*", pair[1]) for r in rules
        )

    unmapped = [pair for pair in used if not mapped(pair)]
    assert unmapped == [seed.UNMAPPED_PAIR]
    assert "approved" in used[seed.UNMAPPED_PAIR]
    assert mapping["defaults"]["commitment_offset_account"] == "2150"


def test_change_order_lines_have_the_v2_shape(data: seed.SandboxData) -> None:
    p = data.procore
    lines = _contract_lines(p)
    contracts = {c["id"]: c for c in p["work_order_contracts"] + p["purchase_order_contracts"]}
    fields = set(contract.item_shapes(contract.CHANGE_ORDER_LINES)[""]["data"]["of"]["fields"])
    not_first = 0
    for order in p["commitment_change_orders"]:
        for line in order["line_items"]:
            assert set(line) <= fields, set(line) - fields
            assert isinstance(line["quantity"], float) and isinstance(line["position"], int)
            assert line["prime_line_item_id"] is None
            assert line["wbs_code_id"] == line["wbs_code"]["id"]
            ref = line["commitment_line_item_id"]
            if ref is None:
                continue
            contract_line = lines[ref]
            assert contract_line["holder"]["id"] == order["contract_id"]
            assert line["wbs_code"] == contract_line["wbs_code"]
            first = contracts[order["contract_id"]]["line_items"][0]["id"]
            not_first += ref != first
    assert not_first >= 10, "CO lines must reference any line of their contract, not the first"


def test_change_orders_without_a_contract_line(data: seed.SandboxData) -> None:
    p = data.procore
    orders = {o["id"]: o for o in p["commitment_change_orders"]}
    codes = {c["full_code"] for c in p["cost_codes"]}
    types = {t["code"] for t in p["line_item_types"]}
    wbs_only = data.summary["wbs_only_change_orders"]
    unresolvable = data.summary["unresolvable_change_orders"]
    assert len(wbs_only) >= 2 and len(unresolvable) >= 1
    for order_id in wbs_only + unresolvable:
        order = orders[order_id]
        assert order["status"] == "approved" and order["reviewed_at"]
        assert all(line["commitment_line_item_id"] is None for line in order["line_items"])
    for order_id in wbs_only:  # the flat code splits into a real cost code and cost type
        for line in orders[order_id]["line_items"]:
            code, ctype = line["wbs_code"]["flat_code"].split(".")
            assert code in codes and ctype in types
    for order_id in unresolvable:
        flat = orders[order_id]["line_items"][0]["wbs_code"]["flat_code"]
        assert "." not in flat and flat not in codes
    again = seed.build(2000, seed=42).summary
    assert again["wbs_only_change_orders"] == wbs_only  # deterministic
    small = seed.build(150, seed=1).summary
    assert small["wbs_only_change_orders"] and small["unresolvable_change_orders"]


def test_lines_nest_their_references(data: seed.SandboxData) -> None:
    """Direct-cost and contract lines: cost_code{} and line_item_type{}, no flat ids."""
    p = data.procore
    for key in ("direct_costs", "work_order_contracts", "purchase_order_contracts"):
        for record in p[key]:
            for line in record["line_items"]:
                for flat in ("cost_code_id", "line_item_type_id", "project_id"):
                    assert flat not in line, (key, flat)
                assert set(line["cost_code"]) == {"id", "name", "full_code"}
                assert line["line_item_type"]["base_type"] in (
                    "other",
                    "materials",
                    "equipment",
                    "commitment",
                )
                assert line["wbs_code"]["flat_code"] == (
                    f"{line['cost_code']['full_code']}.{line['line_item_type']['code']}"
                )


def test_hundred_thousand_records_build_quickly() -> None:
    started = time.perf_counter()
    big = seed.build(100_000, seed=42)
    elapsed = time.perf_counter() - started
    print(f"\nseed.build(100_000) took {elapsed:.2f} s; counts {big.summary['counts']}")
    assert big.summary["records"] == 100_000
    assert elapsed < 30  # generous: shared CI machines; a few seconds on a laptop
