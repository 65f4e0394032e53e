"""Comparing a planned document with what Deltek shows (posting/verify.py)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from deltek_procore.posting.documents import (
    Charge,
    JournalEntry,
    JournalLine,
    Voucher,
    VoucherLine,
)
from deltek_procore.posting.verify import (
    compare,
    from_batch_details,
    from_ledger_rows,
    lookup_verdict,
)

D = Decimal


def voucher(*lines: tuple[str, str, str]) -> Voucher:
    return Voucher(
        kind="direct_cost",
        record_id=1,
        period="2026-10",
        vendor="V001",
        invoice="INV-1",
        invoice_date=date(2026, 10, 3),
        description="",
        lines=tuple(VoucherLine(Charge(a, w), D(x)) for a, w, x in lines),
    )


def ap_details(*lines: tuple[str, str, str], key: str = "MK1") -> list[dict]:
    return [
        {"MasterPKey": key, "Account": a, "WBS1": w, "WBS2": " ", "WBS3": " ", "Amount": float(x)}
        for a, w, x in lines
    ]


MASTER = [{"MasterPKey": "MK1", "Vendor": "V001", "Invoice": "INV-1"}]


def test_a_batch_with_the_same_lines_verifies_whatever_their_order_and_split() -> None:
    doc = voucher(("5100", "P1", "600.00"), ("5200", "P1", "400.00"))
    held = from_batch_details(
        "AP",
        "B1",
        ap_details(("5200", "P1", "400"), ("5100", "P1", "250"), ("5100", "P1", "350")),
        MASTER,
    )
    assert compare(doc, [held["V001|INV-1"]]).same
    assert held["#MK1"] is held["V001|INV-1"]


def test_one_cent_is_a_difference_named_by_account_and_project() -> None:
    doc = voucher(("5100", "P1", "600.00"))
    held = from_batch_details("AP", "B1", ap_details(("5100", "P1", "600.01")), MASTER)
    verdict = compare(doc, [held["V001|INV-1"]])
    assert not verdict.same
    assert verdict.differences == ["account 5100 on P1: planned 600.00, Deltek 600.01"]


def test_a_hand_keyed_voucher_for_another_amount_is_not_the_same_document() -> None:
    doc = voucher(("5100", "P1", "6463.80"))
    held = from_batch_details("AP", "CLERK01", ap_details(("5100", "P1", "100.00")), MASTER)
    assert not compare(doc, [held["V001|INV-1"]]).same


def test_amounts_read_back_as_zero_are_hidden_not_different() -> None:
    doc = voucher(("5100", "P1", "600.00"))
    held = from_batch_details("AP", "B1", ap_details(("5100", "P1", "0")), MASTER)
    verdict = compare(doc, [held["V001|INV-1"]])
    assert verdict.same and verdict.hidden_amounts


def test_nothing_held_is_not_in_deltek() -> None:
    assert compare(voucher(("5100", "P1", "1.00")), []).differences == ["not in Deltek"]


def test_a_journal_entry_compares_debits_and_credits_as_signed_amounts() -> None:
    je = JournalEntry(
        kind="work_order",
        record_id=7,
        period="2026-10",
        ref_no="PCW7",
        trans_date=date(2026, 10, 1),
        description="",
        lines=(
            JournalLine(Charge("5100", "P1"), debit=D("250.00")),
            JournalLine(Charge("2150"), credit=D("250.00")),
        ),
    )
    details = [
        {"RefNo": "PCW7", "Account": "5100", "WBS1": "P1", "DebitAmount": 250, "CreditAmount": 0},
        {"RefNo": "PCW7", "Account": "2150", "WBS1": " ", "DebitAmount": 0, "CreditAmount": 250},
    ]
    held = from_batch_details("JE", "PCJE1", details)["PCW7"]
    assert compare(je, [held]).same
    assert held.total == D("250.00")


def test_posted_ledger_rows_group_per_document_and_batch() -> None:
    rows = [
        {"Batch": "B1", "Vendor": "V001", "Invoice": "INV-1", "Account": "5100", "WBS1": "P1",
         "Amount": 600, "Period": 202610},
        {"Batch": "B1", "Vendor": "V001", "Invoice": "INV-1", "Account": "2160", "WBS1": "",
         "Amount": -60, "Period": 202610},
        {"Batch": "B9", "Vendor": "V001", "Invoice": "INV-1", "Account": "5100", "WBS1": "P1",
         "Amount": 100, "Period": 202610},
    ]  # fmt: skip
    held = from_ledger_rows("AP", rows)
    assert sorted((h.batch, h.total, h.posted, h.period) for h in held) == [
        ("B1", D("540.00"), True, 202610),
        ("B9", D("100.00"), True, 202610),
    ]


def test_the_look_up_adopts_only_a_line_for_line_match_and_sends_the_rest_to_a_person() -> None:
    doc = voucher(("5100", "P1", "600.00"))
    same = from_batch_details("AP", "B1", ap_details(("5100", "P1", "600")), MASTER)["V001|INV-1"]
    other = from_batch_details("AP", "B2", ap_details(("5100", "P1", "100")), MASTER)["V001|INV-1"]

    assert lookup_verdict(doc, []).action == "post"
    adopt = lookup_verdict(doc, [same])
    assert adopt.action == "adopt" and adopt.comparison is not None and adopt.comparison.same
    keyed = lookup_verdict(doc, [other])  # a clerk's $100 voucher under the same key
    assert keyed.action == "review" and "batch B2" in keyed.reason
    assert "vendor V001 invoice 'INV-1'" in keyed.reason and "nothing posted" in keyed.reason
    twins = lookup_verdict(doc, [same, other])
    assert twins.action == "review" and twins.comparison is None
    assert "2 documents" in twins.reason and "B1 (unposted), B2 (unposted)" in twins.reason
