"""Late changes: the difference between what was posted and what Procore says now.

A record edited after it was posted never becomes a second full voucher. By
policy it becomes an adjusting document for the delta (a reversing JE for a void)
or an item in the review queue. These helpers compute the documents; the write
protocol posts them like any other.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from decimal import Decimal

from deltek_procore.posting.documents import (
    Charge,
    JournalEntry,
    JournalLine,
    Voucher,
    VoucherLine,
)
from deltek_procore.posting.translate import INVOICE_MAX


def _by_charge_voucher(doc: Voucher) -> dict[Charge, Decimal]:
    sums: dict[Charge, Decimal] = defaultdict(lambda: Decimal("0.00"))
    for line in doc.lines:
        sums[line.charge] += line.amount
    return sums


def voucher_delta(posted: Voucher, current: Voucher, revision: int) -> Voucher | None:
    """An adjusting voucher (same vendor, suffixed invoice) or None when nothing moved."""
    old, new = _by_charge_voucher(posted), _by_charge_voucher(current)
    lines = tuple(
        VoucherLine(
            charge,
            new.get(charge, Decimal("0.00")) - old.get(charge, Decimal("0.00")),
            "Adjustment from Procore",
        )
        for charge in sorted(set(old) | set(new), key=lambda c: (c.wbs1, c.wbs2, c.wbs3, c.account))
        if new.get(charge, Decimal("0.00")) != old.get(charge, Decimal("0.00"))
    )
    if not lines:
        return None
    suffix = f"-A{revision}"
    return replace(
        current,
        vendor=posted.vendor,  # the adjustment belongs to the voucher Deltek holds
        invoice=posted.invoice[: INVOICE_MAX - len(suffix)] + suffix,
        description=f"Adj {posted.invoice}"[:40],
        lines=lines,
    )


def _signed_je(doc: JournalEntry) -> dict[Charge, Decimal]:
    sums: dict[Charge, Decimal] = defaultdict(lambda: Decimal("0.00"))
    for line in doc.lines:
        sums[line.charge] += line.debit - line.credit
    return sums


def journal_delta(
    posted: JournalEntry, current: JournalEntry, revision: int
) -> JournalEntry | None:
    old, new = _signed_je(posted), _signed_je(current)
    lines = []
    for charge in sorted(set(old) | set(new), key=lambda c: (c.wbs1, c.wbs2, c.wbs3, c.account)):
        delta = new.get(charge, Decimal("0.00")) - old.get(charge, Decimal("0.00"))
        if delta > 0:
            lines.append(JournalLine(charge, debit=delta, description="Adjustment from Procore"))
        elif delta < 0:
            lines.append(JournalLine(charge, credit=-delta, description="Adjustment from Procore"))
    if not lines:
        return None
    return replace(
        current,
        ref_no=f"{posted.ref_no}A{revision}",
        description=f"Adj {posted.ref_no}"[:40],
        lines=tuple(lines),
    )


def identity_change(posted: Voucher | JournalEntry, current: Voucher | JournalEntry) -> str | None:
    """What makes a change impossible to express as a delta: a voucher whose vendor or
    invoice number changed in Procore. Deltek holds the old one; a person must decide."""
    if isinstance(posted, Voucher) and isinstance(current, Voucher):
        if posted.vendor != current.vendor:
            return f"vendor changed after posting ({posted.vendor} -> {current.vendor})"
        if posted.invoice != current.invoice:
            return f"invoice number changed after posting ({posted.invoice} -> {current.invoice})"
    return None


def held_after_reversal(posted: JournalEntry) -> JournalEntry:
    """What Deltek holds, net, once `posted` is reversed: nothing. Stored as the ledger's
    full document so a later re-approval posts the whole amount again, and a second edit
    of the voided record reverses nothing twice."""
    return replace(posted, lines=())


def reversal(
    posted: JournalEntry, revision: int, trans_date=None, period: str | None = None
) -> JournalEntry | None:
    """Swap every debit and credit: the commitment was voided after it was posted.

    None when Deltek already holds nothing for it (reversed before).
    """
    if not posted.lines:
        return None
    return replace(
        posted,
        ref_no=f"{posted.ref_no}R{revision}",
        description=f"Void {posted.ref_no}"[:40],
        trans_date=trans_date or posted.trans_date,
        period=period or posted.period,
        lines=tuple(
            JournalLine(ln.charge, debit=ln.credit, credit=ln.debit, description="Reversal: void")
            for ln in posted.lines
        ),
    )
