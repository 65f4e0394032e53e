"""End to end on Procore's real shapes (the sandbox serves only fields Procore's models have):
change orders land on the account of the contract line they change, stored materials are
billed once from the month they are stored to the month they are installed, and a vendor
found in Deltek by tax id alone gets its vouchers. What Deltek shows is the judge."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from deltek_procore.mapping.config import parse_mapping
from deltek_procore.mapping.rules import compile_rules
from deltek_procore.posting.periods import period_of
from deltek_procore_tests.defs.sync_harness import harness

D = Decimal
CHAIN_MONTHS = ["2026-09", "2026-10", "2026-11"]


@pytest.fixture(scope="module")
def h(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    home: Path = tmp_path_factory.mktemp("real")
    with harness(home, mp, records=600, receiver=False, end_month="2026-11") as h:
        for month in CHAIN_MONTHS:  # one sync per month, as the nights would run them
            h.sync(month, month)
        yield h
    mp.undo()


def voucher_of(h, record_id: int, kind: str = "requisition") -> dict:
    row = h.store.latest(kind, [record_id])[record_id]
    assert row.status == "posted", (row.status, row.reason)
    [voucher] = [
        v
        for v in h.box.deltek.ap_vouchers()
        if (v["Vendor"], v["Invoice"]) == (row.deltek_vendor, row.document)
    ]
    return voucher


def test_stored_materials_are_billed_once_from_september_to_november(h) -> None:
    chain = h.box.data.summary["stored_materials_chain"]
    assert chain["months"] == CHAIN_MONTHS
    reqs = {r["id"]: r for r in h.box.procore.data.procore["requisitions"]}
    billed, naive = [], []
    for rid, item_id in zip(chain["requisition_ids"], chain["item_ids"], strict=True):
        req = reqs[rid]
        item = next(i for i in req["items"] if i["id"] == item_id)
        billed.append(
            D(item["total_completed_and_stored_to_date"])
            - D(item["total_completed_and_stored_to_date_from_previous"])
        )
        naive.append(D(item["work_completed_this_period"]) + D(item["materials_presently_stored"]))
        voucher = voucher_of(h, rid)
        gross = sum(
            (D(str(d["Amount"])) for d in voucher["apDetail"] if str(d["WBS1"]).strip()),
            D("0.00"),
        )
        expected = sum(
            (
                D(i["total_completed_and_stored_to_date"])
                - D(i["total_completed_and_stored_to_date_from_previous"])
                for i in req["items"]
            ),
            D("0.00"),
        )
        assert gross == expected, (req["id"], gross, expected)
        total = sum((D(str(d["Amount"])) for d in voucher["apDetail"]), D("0.00"))
        assert total == D(req["summary"]["current_payment_due"])
    first_item = next(
        i for i in reqs[chain["requisition_ids"][0]]["items"] if i["id"] == chain["item_ids"][0]
    )
    last_item = next(
        i for i in reqs[chain["requisition_ids"][-1]]["items"] if i["id"] == chain["item_ids"][-1]
    )
    # what Deltek was billed for the line over the three months is what was done, once
    assert sum(billed) == D(last_item["total_completed_and_stored_to_date"]) - D(
        first_item["total_completed_and_stored_to_date_from_previous"]
    )
    assert D(reqs[chain["requisition_ids"][1]]["items"][0]["materials_presently_stored"]) > 0
    assert sum(naive) > sum(billed)  # adding the stored balance would have billed it twice


def test_every_change_order_lands_on_the_account_of_the_contract_line_it_changes(h) -> None:
    data = h.box.procore.data.procore
    rules = compile_rules(parse_mapping(h.box.data.mappings_yaml).gl_accounts)
    lines = {
        line["id"]: line
        for key in ("work_order_contracts", "purchase_order_contracts")
        for contract in data[key]
        for line in contract["line_items"]
    }
    entries = {je["RefNo"]: je for je in h.box.deltek.journal_entries()}
    checked = non_first = 0
    for co in data["commitment_change_orders"]:
        if co["status"] != "approved" or period_of("change_order", co) not in CHAIN_MONTHS:
            continue
        row = h.store.latest("change_order", [co["id"]]).get(co["id"])
        if row is None or row.status != "posted":
            continue
        want: dict[str, D] = defaultdict(lambda: D("0.00"))
        for line in co["line_items"]:
            ref = line.get("commitment_line_item_id")
            if ref is None:
                code, ctype = line["wbs_code"]["flat_code"].rsplit(".", 1)
            else:
                target = lines[int(ref)]
                code, ctype = target["cost_code"]["full_code"], target["line_item_type"]["code"]
                contract = next(
                    c
                    for k in ("work_order_contracts", "purchase_order_contracts")
                    for c in data[k]
                    if any(x["id"] == target["id"] for x in c["line_items"])
                )
                non_first += target["id"] != contract["line_items"][0]["id"]
            want[rules.resolve(code, ctype).account] += D(line["amount"])
        got: dict[str, D] = defaultdict(lambda: D("0.00"))
        for detail in entries[row.document]["jeDetail"]:
            if str(detail["WBS1"]).strip():
                got[detail["Account"]] += D(str(detail["DebitAmount"])) - D(
                    str(detail["CreditAmount"])
                )
        assert dict(got) == {k: v for k, v in want.items() if v}, co["id"]
        checked += 1
    assert checked >= 3 and non_first >= 1


def test_a_change_order_whose_line_names_no_cost_code_is_quarantined_naming_the_line(h) -> None:
    data = h.box.procore.data.procore
    for co_id in h.box.data.summary["unresolvable_change_orders"]:
        co = next(c for c in data["commitment_change_orders"] if c["id"] == co_id)
        row = h.store.latest("change_order", [co_id]).get(co_id)
        if period_of("change_order", co) not in CHAIN_MONTHS:
            continue
        assert row is not None and row.status == "quarantined"
        assert any(str(line["id"]) in row.reason for line in co["line_items"]), row.reason


def test_a_vendor_known_to_deltek_only_by_tax_id_gets_its_vouchers(h) -> None:
    links = h.store.vendor_links()
    by_tax = {pid: link for pid, link in links.items() if link["method"] == "tax_id"}
    assert by_tax, "the seed holds vendors Deltek knows by tax id only"
    firms = {f["Vendor"]: f for f in h.box.deltek.firms()}
    vendors = {v["id"]: v for v in h.box.procore.data.procore["vendors"]}
    posted = 0
    for pid, link in by_tax.items():
        firm, vendor = firms[link["deltek_vendor"]], vendors[pid]
        assert firm["FedID"] and firm["FedID"].replace("-", "") == vendor["business_id"].replace(
            "-", ""
        )
        assert firm["Name"] != vendor["name"]
        posted += sum(1 for v in h.box.deltek.ap_vouchers() if v["Vendor"] == link["deltek_vendor"])
    assert posted > 0
