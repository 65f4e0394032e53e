"""Shape vouchers and JEs as Deltek DataEntry batches (batch mode, "files")."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from deltek_procore.posting.documents import JournalEntry, Voucher, stable_hex

BATCH_MAX = 32


def deltek_date(value: date) -> str:
    return f"{value.isoformat()}T00:00:00.000"


def blank(value: str) -> str:
    """Deltek writes an empty WBS2/WBS3 as one space."""
    return value if value else " "


def num(value: Decimal) -> float:
    return float(value)


def master_key(doc: Voucher | JournalEntry, revision: int) -> str:
    return stable_hex("master", doc.kind, doc.record_id, revision, doc.period)


def batch_name(prefix: str, period_code: int, keys: Sequence[str]) -> str:
    """Deterministic: the same set of documents always gets the same batch name."""
    name = f"{prefix}{period_code}{stable_hex(*sorted(keys), length=12)}"
    assert len(name) <= BATCH_MAX, name
    return name


def ap_control(
    batch: str,
    items: Sequence[tuple[Voucher, str]],
    *,
    period_code: int,
    liability_code: str,
    bank_code: str,
    pay_terms: str,
    company: str | None,
    end_date: date,
) -> dict:
    masters, details = [], []
    for seq, (voucher, mkey) in enumerate(items, start=1):
        masters.append(
            {
                "Batch": batch,
                "MasterPKey": mkey,
                "Vendor": voucher.vendor,
                "Invoice": voucher.invoice,
                "InvoiceDate": deltek_date(voucher.invoice_date),
                "TransDate": deltek_date(voucher.invoice_date),
                "LiabCode": liability_code,
                "BankCode": bank_code,
                "PayTerms": pay_terms,
                "Address": "<Default>",
                "Posted": "N",
                "Seq": seq,
                "Status": "N",
            }
        )
        for line_seq, line in enumerate(voucher.lines, start=1):
            details.append(
                {
                    "Batch": batch,
                    "MasterPKey": mkey,
                    "PKey": stable_hex(mkey, line_seq),
                    "Seq": line_seq,
                    "Description": line.description,
                    "WBS1": blank(line.charge.wbs1),
                    "WBS2": blank(line.charge.wbs2),
                    "WBS3": blank(line.charge.wbs3),
                    "Account": line.charge.account,
                    "Amount": num(line.amount),
                    "NetAmount": num(line.amount),
                    "PaymentAmount": num(line.amount),
                    "SuppressBill": "N",
                }
            )
    total = sum((v.total for v, _ in items), Decimal("0.00"))
    control = {
        "Batch": batch,
        "Description": f"Procore AP {period_code}",
        "Recurring": "N",
        "EndDate": deltek_date(end_date),
        "Total": num(total),
        "DefaultLiab": liability_code,
        "DefaultBank": bank_code,
        "Selected": "N",
        "Posted": "N",
        "Creator": "PROCORE",
        "Period": period_code,
        "apMaster": masters,
        "apDetail": details,
    }
    if company:
        control["Company"] = company
    return control


def je_control(
    batch: str,
    items: Sequence[tuple[JournalEntry, str]],
    *,
    period_code: int,
    company: str | None,
    end_date: date,
) -> dict:
    masters, details = [], []
    for seq, (entry, _key) in enumerate(items, start=1):
        masters.append(
            {
                "Batch": batch,
                "RefNo": entry.ref_no,
                "TransDate": deltek_date(entry.trans_date),
                "Description": entry.description,
                "Type": "3",  # every published example uses "3"; its meaning is undocumented
                "UpdateBilled": "N",
                "Posted": "N",
                "Seq": seq,
                "Status": "N",
            }
        )
        for line_seq, line in enumerate(entry.lines, start=1):
            details.append(
                {
                    "Batch": batch,
                    "RefNo": entry.ref_no,
                    "PKey": stable_hex(entry.ref_no, line_seq),
                    "Seq": line_seq,
                    "Description": line.description,
                    "WBS1": blank(line.charge.wbs1),
                    "WBS2": blank(line.charge.wbs2),
                    "WBS3": blank(line.charge.wbs3),
                    "Account": line.charge.account,
                    "DebitAmount": num(line.debit),
                    "CreditAmount": num(line.credit),
                    "SuppressBill": "N",
                }
            )
    debits = sum((e.total for e, _ in items), Decimal("0.00"))
    control = {
        "Batch": batch,
        "Description": f"Procore commitments {period_code}",
        "Recurring": "N",
        "EndDate": deltek_date(end_date),
        "Total": num(debits),
        "CreditsTotal": num(debits),
        "AllowTaxEntries": "N",
        "Selected": "N",
        "Posted": "N",
        "Creator": "PROCORE",
        "Period": period_code,
        "Reverse": "N",
        "jeMaster": masters,
        "jeDetail": details,
    }
    if company:
        control["Company"] = company
    return control
