"""Late-change documents and the Deltek batch payloads."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from deltek_procore.posting import adjust, payloads
from deltek_procore.posting.documents import (
    Charge,
    JournalEntry,
    JournalLine,
    Voucher,
    VoucherLine,
    document_from_json,
    document_to_json,
)

C1, C2 = Charge("5100", "P1"), Charge("5200", "P1")


def voucher(*amounts: str) -> Voucher:
    charges = (C1, C2)
    return Voucher(
        kind="direct_cost", record_id=5, period="2025-04", vendor="V1", invoice="INV-1",
        invoice_date=date(2025, 4, 2), description="d",
        lines=tuple(VoucherLine(charges[i], Decimal(a)) for i, a in enumerate(amounts)),
    )  # fmt: skip


def test_voucher_delta_is_only_the_difference() -> None:
    delta = adjust.voucher_delta(voucher("100.00", "200.00"), voucher("100.00", "250.00"), 2)
    assert delta is not None and delta.invoice == "INV-1-A2"
    assert [(ln.charge, ln.amount) for ln in delta.lines] == [(C2, Decimal("50.00"))]
    assert adjust.voucher_delta(voucher("100.00"), voucher("100.00"), 2) is None


def test_reversal_swaps_every_side() -> None:
    je = JournalEntry(
        kind="work_order", record_id=1, period="2025-01", ref_no="PCW1", trans_date=date(2025, 1, 1),
        description="x", lines=(JournalLine(C1, debit=Decimal("10")), JournalLine(Charge("2150"), credit=Decimal("10"))),
    )  # fmt: skip
    rev = adjust.reversal(je, 3)
    assert rev.ref_no == "PCW1R3" and rev.balanced
    assert rev.lines[0].credit == Decimal("10") and rev.lines[1].debit == Decimal("10")
    assert document_from_json(document_to_json(rev)) == rev


def test_ap_control_totals_and_blank_wbs() -> None:
    v = voucher("100.00", "200.00")
    key = payloads.master_key(v, 1)
    batch = payloads.batch_name("PCAP", 202504, [key])
    assert len(batch) <= 32 and batch == payloads.batch_name("PCAP", 202504, [key])
    body = payloads.ap_control(
        batch, [(v, key)], period_code=202504, liability_code="AP", bank_code="OPER",
        pay_terms="Next", company=None, end_date=date(2025, 4, 30),
    )  # fmt: skip
    assert body["Total"] == 300.0 and body["Period"] == 202504
    assert body["apMaster"][0]["Invoice"] == "INV-1" and body["apMaster"][0]["MasterPKey"] == key
    assert [d["WBS2"] for d in body["apDetail"]] == [" ", " "]
    assert len({d["PKey"] for d in body["apDetail"]}) == 2
