"""What Deltek shows, compared with what the connector planned. Pure: no I/O.

A document counts as posted only once Deltek shows it with the planned lines and
amounts (README, "The write protocol"). Deltek shows documents in two places: the
unposted batches of the Transaction Center (`DataEntry/{ap|je}Detail/{Batch}`,
lines keyed by `MasterPKey` or `RefNo`) and the posted ledger (`PSALedger/{AP|JE}`,
one row per line). Both become `Held` documents here, so the look-up before a write,
the read-back after it, the period reconciliation and the asset checks all compare
the same way: per charge (account + WBS1/2/3), net signed amount.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from deltek_procore.posting.documents import Document, JournalEntry, Voucher

CENT = Decimal("0.01")
ChargeKey = tuple[str, str, str, str]  # account, wbs1, wbs2, wbs3


def _text(value: Any) -> str:
    """Deltek pads blank WBS levels with a space; ' ' and '' and None are one value."""
    return "" if value is None else str(value).strip()


def _get(row: Mapping[str, Any], key: str) -> Any:
    """Case-insensitive field read: Deltek's column casing varies between versions."""
    if key in row:
        return row[key]
    lower = key.lower()
    for name, value in row.items():
        if str(name).lower() == lower:
            return value
    return None


def _amount(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal("0.00")
    try:
        return Decimal(str(value)).quantize(CENT)
    except (InvalidOperation, ValueError):
        return Decimal("0.00")


def _charge(row: Mapping[str, Any]) -> ChargeKey:
    # interned: a run holds every line it reads, and accounts and projects repeat on most
    return (
        sys.intern(_text(_get(row, "Account"))),
        sys.intern(_text(_get(row, "WBS1"))),
        sys.intern(_text(_get(row, "WBS2"))),
        sys.intern(_text(_get(row, "WBS3"))),
    )


@dataclass(frozen=True, slots=True)
class Held:
    """One document as Deltek shows it."""

    transtype: str  # "AP" or "JE"
    key: str  # AP: "vendor|invoice"; JE: RefNo
    batch: str
    posted: bool
    lines: tuple[tuple[ChargeKey, Decimal], ...]
    master_key: str = ""  # AP MasterPKey when known
    period: int | None = None

    @property
    def total(self) -> Decimal:
        """AP: what the voucher pays; JE: its debits (as Deltek sums a JE)."""
        if self.transtype == "AP":
            return sum((amount for _, amount in self.lines), Decimal("0.00"))
        return sum((amount for _, amount in self.lines if amount > 0), Decimal("0.00"))

    def net(self) -> dict[ChargeKey, Decimal]:
        return net_lines(self.lines)


def ap_key(vendor: Any, invoice: Any) -> str:
    return f"{_text(vendor)}|{_text(invoice)}"


def doc_key(doc: Document) -> str:
    if isinstance(doc, Voucher):
        return ap_key(doc.vendor, doc.invoice)
    return _text(doc.ref_no)


def transtype_of(doc: Document) -> str:
    return "AP" if isinstance(doc, Voucher) else "JE"


def planned_lines(doc: Document) -> list[tuple[ChargeKey, Decimal]]:
    """A document's lines as signed amounts per charge (JE: debit - credit)."""
    out: list[tuple[ChargeKey, Decimal]] = []
    for line in doc.lines:
        c = line.charge
        key = (_text(c.account), _text(c.wbs1), _text(c.wbs2), _text(c.wbs3))
        if isinstance(doc, JournalEntry):
            out.append((key, (line.debit - line.credit).quantize(CENT)))
        else:
            out.append((key, line.amount.quantize(CENT)))
    return out


def net_lines(lines: Iterable[tuple[ChargeKey, Decimal]]) -> dict[ChargeKey, Decimal]:
    """Sum per charge and drop zeros: the order and split of lines do not matter."""
    out: dict[ChargeKey, Decimal] = defaultdict(lambda: Decimal("0.00"))
    for key, amount in lines:
        out[key] += amount
    return {k: v for k, v in out.items() if v != 0}


@dataclass
class Comparison:
    """The verdict on one document: equal, different (with why), or amounts hidden."""

    same: bool
    hidden_amounts: bool = False
    differences: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return "; ".join(self.differences[:5]) or "same lines and amounts"


def _charge_text(key: ChargeKey) -> str:
    account, wbs1, wbs2, wbs3 = key
    where = "/".join(p for p in (wbs1, wbs2, wbs3) if p)
    return f"account {account}" + (f" on {where}" if where else "")


def compare_net(
    expected: Mapping[ChargeKey, Decimal],
    held: Mapping[ChargeKey, Decimal],
    held_accounts: Iterable[ChargeKey] = (),
) -> Comparison:
    """Compare netted lines. All-zero amounts on the Deltek side, where lines exist and
    the plan is not zero, mean the API role cannot see amounts (field security): the
    charges are compared, the amounts cannot be."""
    charges = set(held_accounts)
    if not held and charges and any(v != 0 for v in expected.values()):
        same_charges = charges == set(expected)
        return Comparison(
            same=same_charges,
            hidden_amounts=True,
            differences=[] if same_charges else ["Deltek shows other accounts or projects"],
        )
    diffs: list[str] = []
    for key in sorted(set(expected) | set(held)):
        want, got = expected.get(key, Decimal("0.00")), held.get(key, Decimal("0.00"))
        if want != got:
            diffs.append(f"{_charge_text(key)}: planned {want}, Deltek {got}")
    return Comparison(same=not diffs, differences=diffs)


def compare(doc: Document, held: Iterable[Held]) -> Comparison:
    """Does Deltek show `doc` (possibly split over several held documents)?"""
    held = list(held)
    if not held:
        return Comparison(same=False, differences=["not in Deltek"])
    lines = [line for h in held for line in h.lines]
    return compare_net(net_lines(planned_lines(doc)), net_lines(lines), [k for k, _ in lines])


# ---- building Held documents from Deltek rows -------------------------------------------------
def from_batch_details(
    transtype: str,
    batch: str,
    details: Iterable[Mapping[str, Any]],
    masters: Iterable[Mapping[str, Any]] = (),
    period: int | None = None,
) -> dict[str, Held]:
    """An unposted batch: detail lines grouped per document.

    AP details carry only `MasterPKey`; the vendor and invoice come from the masters
    (when given), else the document is keyed by its MasterPKey alone. Returns
    {document key: Held}; AP documents are also reachable by "#<MasterPKey>".
    """
    grouped: dict[str, list[tuple[ChargeKey, Decimal]]] = defaultdict(list)
    link = "MasterPKey" if transtype == "AP" else "RefNo"
    for row in details:
        if not isinstance(row, Mapping):
            continue
        if transtype == "AP":
            amount = _amount(_get(row, "Amount"))
        else:
            amount = _amount(_get(row, "DebitAmount")) - _amount(_get(row, "CreditAmount"))
        grouped[_text(_get(row, link))].append((_charge(row), amount))
    names: dict[str, str] = {}
    for master in masters:
        if transtype == "AP":
            names[_text(_get(master, "MasterPKey"))] = ap_key(
                _get(master, "Vendor"), _get(master, "Invoice")
            )
    out: dict[str, Held] = {}
    for link_value, lines in grouped.items():
        if transtype == "AP":
            key = names.get(link_value, f"#{link_value}")
            held = Held("AP", key, batch, False, tuple(lines), link_value, period)
            out[key] = held
            out.setdefault(f"#{link_value}", held)
        else:
            out[link_value] = Held("JE", link_value, batch, False, tuple(lines), "", period)
    return out


def from_ledger_rows(transtype: str, rows: Iterable[Mapping[str, Any]]) -> list[Held]:
    """Posted ledger lines (PSALedger) grouped per document and batch."""
    grouped: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        if not isinstance(row, Mapping):
            continue
        if transtype == "AP":
            key = ap_key(_get(row, "Vendor"), _get(row, "Invoice"))
        else:
            key = _text(_get(row, "RefNo"))
        grouped[(key, _text(_get(row, "Batch")))].append(row)
    out: list[Held] = []
    for (key, batch), lines in grouped.items():
        parsed = []
        for row in lines:
            debit, credit = _get(row, "DebitAmount"), _get(row, "CreditAmount")
            if transtype == "JE" and (debit not in (None, "") or credit not in (None, "")):
                amount = _amount(debit) - _amount(credit)
            else:
                amount = _amount(_get(row, "Amount"))
            parsed.append((_charge(row), amount))
        period = _get(lines[0], "Period")
        out.append(
            Held(
                transtype,
                key,
                batch,
                True,
                tuple(parsed),
                _text(_get(lines[0], "MasterPKey")),
                int(period) if str(period or "").isdigit() else None,
            )
        )
    return out


@dataclass(frozen=True)
class LookupVerdict:
    """What the look-up before a write decides for one document: `post` (not in Deltek),
    `adopt` (there with the same lines) or `review` (there with other lines, or twice)."""

    action: str
    reason: str
    found: tuple[Held, ...] = ()
    comparison: Comparison | None = None


def document_name(doc: Document) -> str:
    """How messages name a document: the key Deltek finds it by."""
    if isinstance(doc, Voucher):
        return f"vendor {doc.vendor} invoice {doc.invoice!r}"
    return f"journal entry {doc.ref_no}"


def lookup_verdict(doc: Document, found: list[Held]) -> LookupVerdict:
    """The one rule for a document found (or not) in Deltek under the connector's key:
    adopt only what matches line for line; anything else goes to a person, nothing posted."""
    if not found:
        return LookupVerdict("post", "not in Deltek")
    if len(found) > 1:
        where = ", ".join(
            f"{h.batch or '?'} ({'posted' if h.posted else 'unposted'})" for h in found
        )
        return LookupVerdict(
            "review",
            f"Deltek holds {len(found)} documents as {document_name(doc)}: {where}; a person "
            "must decide which one stands; nothing posted",
            tuple(found),
        )
    comparison = compare(doc, found)
    if comparison.same:
        return LookupVerdict(
            "adopt",
            f"already in Deltek (batch {found[0].batch}) with the same lines",
            tuple(found),
            comparison,
        )
    return LookupVerdict(
        "review",
        f"Deltek already holds {document_name(doc)} (batch {found[0].batch}) with other lines: "
        f"{comparison.describe()}; not adopted, nothing posted",
        tuple(found),
        comparison,
    )
