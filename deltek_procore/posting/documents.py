"""What the connector writes to Deltek, before it is shaped as Deltek JSON.

A `Voucher` becomes one apMaster with its apDetail lines; a `JournalEntry` one
jeMaster with jeDetail lines. Both are plain, comparable values so a plan can be
shown, stored in the ledger, diffed for an adjustment and re-derived by replay.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Literal

Kind = Literal["requisition", "direct_cost", "work_order", "purchase_order", "change_order"]
AP_KINDS: tuple[str, ...] = ("requisition", "direct_cost")
JE_KINDS: tuple[str, ...] = ("work_order", "purchase_order", "change_order")
CENT = Decimal("0.01")


def money(value: Any) -> Decimal:
    return Decimal(str(value if value is not None else "0")).quantize(CENT)


@dataclass(frozen=True)
class Charge:
    """Where a line lands: project (WBS1/2/3) and GL account. Blank WBS = balance sheet."""

    account: str
    wbs1: str = ""
    wbs2: str = ""
    wbs3: str = ""


@dataclass(frozen=True)
class VoucherLine:
    charge: Charge
    amount: Decimal
    description: str = ""


@dataclass(frozen=True)
class Voucher:
    kind: str
    record_id: int
    period: str  # YYYY-MM
    vendor: str  # Deltek vendor number
    invoice: str
    invoice_date: date
    description: str
    lines: tuple[VoucherLine, ...]

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00"))


@dataclass(frozen=True)
class JournalLine:
    charge: Charge
    debit: Decimal = Decimal("0.00")
    credit: Decimal = Decimal("0.00")
    description: str = ""


@dataclass(frozen=True)
class JournalEntry:
    kind: str
    record_id: int
    period: str
    ref_no: str
    trans_date: date
    description: str
    lines: tuple[JournalLine, ...]

    @property
    def total(self) -> Decimal:
        return sum((line.debit for line in self.lines), Decimal("0.00"))

    @property
    def balanced(self) -> bool:
        credits = sum((line.credit for line in self.lines), Decimal("0.00"))
        return self.total == credits


Document = Voucher | JournalEntry


@dataclass(frozen=True)
class Quarantine:
    """A record that must not be posted until a person fixes what `reason` says."""

    kind: str
    record_id: int
    period: str | None
    reason: str
    fields: dict[str, Any] = field(default_factory=dict)


def document_to_json(doc: Document) -> str:
    data = asdict(doc)
    data["type"] = "voucher" if isinstance(doc, Voucher) else "journal_entry"
    return json.dumps(data, default=str, sort_keys=True)


def document_from_json(text: str) -> Document:
    data = json.loads(text)
    kind = data.pop("type")
    if kind == "voucher":
        lines = tuple(
            VoucherLine(Charge(**ln["charge"]), money(ln["amount"]), ln.get("description", ""))
            for ln in data.pop("lines")
        )
        data["invoice_date"] = date.fromisoformat(data["invoice_date"])
        return Voucher(lines=lines, **data)
    lines = tuple(
        JournalLine(
            Charge(**ln["charge"]),
            money(ln["debit"]),
            money(ln["credit"]),
            ln.get("description", ""),
        )
        for ln in data.pop("lines")
    )
    data["trans_date"] = date.fromisoformat(data["trans_date"])
    return JournalEntry(lines=lines, **data)


def stable_hex(*parts: object, length: int = 32) -> str:
    """Deterministic hex id (Deltek MasterPKey / PKey) so a retry builds the same keys."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return digest[:length].upper()
