"""Pure translation: one Procore record + the maps -> a voucher, a JE, or a quarantine.

No I/O here. Every refusal is a `Quarantine` whose reason says what a person must
fix, in words an accountant uses ("cost code 03-300 / cost type S has no GL
account"). Amounts are Decimal throughout; nothing is rounded silently.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from deltek_procore.posting.documents import (
    Charge,
    JournalEntry,
    JournalLine,
    Quarantine,
    Voucher,
    VoucherLine,
    money,
)
from deltek_procore.posting.periods import period_end, period_of, record_date
from deltek_procore.procore.errors import DETAIL_GONE
from deltek_procore.state.states import Reason

MAX_AMOUNT = Decimal("999999999.99")  # beyond this an amount is a data-entry error
INVOICE_MAX = 50
DESCRIPTION_MAX = 40

WORK_ORDER_POSTABLE = frozenset({"Approved", "Complete"})
PURCHASE_ORDER_POSTABLE = frozenset({"Approved", "Partially Received", "Received", "Closed"})
COMMITMENT_VOID = frozenset({"Void", "Terminated"})
REQUISITION_POSTABLE = frozenset({"approved", "approved_as_noted"})


@dataclass(frozen=True)
class ProjectTarget:
    wbs1: str
    wbs2: str = ""
    wbs3: str = ""


@dataclass
class MappingContext:
    """Everything translation needs, already fetched; values or a problem string."""

    projects: dict[int, ProjectTarget | str]
    vendors: dict[int, str]  # procore vendor id -> Deltek vendor number
    vendor_problems: dict[int, str]
    cost_codes: dict[int, str]  # cost code id -> full_code
    cost_types: dict[int, str]  # line item type id -> code
    commitment_line_types: dict[int, int | None]  # commitment line id -> line item type id
    commitment_vendors: dict[int, int | None]  # commitment id -> vendor id
    resolve_account: Callable[[str, str], tuple[str, int] | None]
    accounts: dict[str, str] | None  # account -> Status in GLSummary (accounts with activity)
    commitment_offset_account: str = ""
    retainage_account: str | None = None
    direct_cost_types: Sequence[str] = ("invoice",)
    mapping_hash: str = ""
    # vendor id -> why its firm could not be created this run: its documents fail (and are
    # retried next run) instead of being quarantined
    vendor_failures: dict[int, str] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    # The codes themselves, for reading a change order line's wbs flat_code.
    known_codes: frozenset[str] = field(init=False, repr=False, default=frozenset())
    known_types: frozenset[str] = field(init=False, repr=False, default=frozenset())

    def __post_init__(self) -> None:
        self.known_codes = frozenset(c for c in self.cost_codes.values() if c)
        self.known_types = frozenset(t for t in self.cost_types.values() if t)


class Refusal(Exception):
    """Raised inside translation to turn into a Quarantine with this reason and code."""

    def __init__(self, message: str, code: Reason = Reason.OTHER) -> None:
        super().__init__(message)
        self.code = code


class NothingToPost(Refusal):
    """The record is approved but carries no amount: skipped, not quarantined."""


class HeldBack(Refusal):
    """Something the record needs failed in this run (its vendor's firm could not be
    created): the record fails and is tried again next run; it is not quarantined."""


def clean_text(value: Any, limit: int = DESCRIPTION_MAX) -> str:
    """Printable, single-line text that fits a Deltek column."""
    text = "" if value is None else str(value)
    text = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in text)
    text = re.sub(r"\s+", " ", text).strip()
    return text[:limit]


def is_eligible(kind: str, record: Any, ctx: MappingContext) -> bool:
    """Is this record approved spend that belongs in Deltek (ignoring late changes)?"""
    status = getattr(record, "status", None)
    if kind == "requisition":
        return status in REQUISITION_POSTABLE
    if kind == "direct_cost":
        return status == "approved" and record.direct_cost_type in ctx.direct_cost_types
    if kind == "work_order":
        return status in WORK_ORDER_POSTABLE and not getattr(record, "deleted_at", None)
    if kind == "purchase_order":
        return status in PURCHASE_ORDER_POSTABLE and not getattr(record, "deleted_at", None)
    if kind == "change_order":
        return status == "approved"
    raise ValueError(f"unknown record kind {kind!r}")


def is_voided(kind: str, record: Any) -> bool:
    """A commitment that was posted and is now void gets a reversing entry."""
    if kind in ("work_order", "purchase_order"):
        return record.status in COMMITMENT_VOID or bool(getattr(record, "deleted_at", None))
    if kind == "change_order":
        return record.status in {"void", "rejected"}
    return False


def translate(kind: str, record: Any, ctx: MappingContext) -> Voucher | JournalEntry | Quarantine:
    period = period_of(kind, record)
    try:
        if period is None:
            raise Refusal("record has no date to place it in an accounting period")
        gone = (getattr(record, "model_extra", None) or {}).get(DETAIL_GONE)
        if gone:  # its details answered 404 when read: what is staged is not the record
            raise Refusal(str(gone))
        builder = _BUILDERS[kind]
        return builder(record, period, ctx)
    except Refusal as refusal:
        return Quarantine(
            kind=kind,
            record_id=int(record.id),
            period=period,
            reason=str(refusal),
            fields={
                "nothing_to_post": isinstance(refusal, NothingToPost),
                "held_back": isinstance(refusal, HeldBack),
                "code": refusal.code,
            },
        )


# ---- shared pieces -------------------------------------------------------------------------
def _project(ctx: MappingContext, project_id: int | None) -> ProjectTarget:
    target = ctx.projects.get(int(project_id)) if project_id is not None else None
    if target is None:
        raise Refusal(f"Procore project {project_id} has no Deltek project", Reason.NO_PROJECT)
    if isinstance(target, str):
        raise Refusal(target, Reason.NO_PROJECT)
    return target


def _vendor(ctx: MappingContext, vendor_id: int | None, what: str) -> str:
    if vendor_id is None:
        raise Refusal(
            f"{what} has no vendor in Procore; set one before it can be vouchered", Reason.NO_VENDOR
        )
    if int(vendor_id) in ctx.vendor_failures:
        raise HeldBack(ctx.vendor_failures[int(vendor_id)], Reason.NO_VENDOR)
    if int(vendor_id) in ctx.vendor_problems:
        raise Refusal(ctx.vendor_problems[int(vendor_id)], Reason.NO_VENDOR)
    vendor = ctx.vendors.get(int(vendor_id))
    if not vendor:
        raise Refusal(f"Procore vendor {vendor_id} has no Deltek vendor firm", Reason.NO_VENDOR)
    return vendor


def _account(ctx: MappingContext, cost_code_id: int | None, cost_type_id: int | None) -> str:
    full_code = ctx.cost_codes.get(int(cost_code_id)) if cost_code_id is not None else None
    if full_code is None:
        raise Refusal(
            f"line has no cost code (cost code id {cost_code_id} unknown)", Reason.NO_ACCOUNT
        )
    type_code = ctx.cost_types.get(int(cost_type_id)) if cost_type_id is not None else None
    if type_code is None:
        raise Refusal(f"cost code {full_code} line has no cost type", Reason.NO_ACCOUNT)
    return _account_for_codes(ctx, full_code, type_code)


def _account_for_codes(ctx: MappingContext, full_code: str, type_code: str) -> str:
    match = ctx.resolve_account(full_code, type_code)
    if match is None:
        raise Refusal(
            f"cost code {full_code} / cost type {type_code} has no GL account; "
            "add a gl_accounts rule to the mapping file",
            Reason.NO_ACCOUNT,
        )
    account, _rule = match
    _check_account(ctx, account, f"for cost code {full_code} / cost type {type_code}")
    return account


def _check_account(ctx: MappingContext, account: str, why: str) -> None:
    """Refuse an account only on Deltek's own word.

    GLSummary lists accounts that have activity, so an account missing there may simply be
    unused so far: Deltek's validation when the batch posts is the authority on it. An
    account GLSummary lists with an inactive Status is Deltek's word, and is refused here.
    """
    status = (ctx.accounts or {}).get(account)
    if status is None or status == "A":
        return
    raise Refusal(
        f"GL account {account} {why} is inactive in Deltek (GLSummary lists it with Status "
        f"{status}); reactivate it in Deltek or point the mapping file at an active account",
        Reason.NO_ACCOUNT,
    )


def _amount(value: Any, what: str) -> Decimal:
    try:
        amount = money(value)
    except Exception:  # noqa: BLE001 - any unparseable amount is a data problem
        raise Refusal(f"{what} amount {value!r} is not a number", Reason.BAD_AMOUNT) from None
    if not amount.is_finite():
        raise Refusal(
            f"{what} amount {value!r} is not a number; correct it in Procore", Reason.BAD_AMOUNT
        )
    if abs(amount) > MAX_AMOUNT:
        raise Refusal(
            f"{what} amount {amount} is beyond {MAX_AMOUNT}; check it in Procore", Reason.BAD_AMOUNT
        )
    return amount


def _invoice(number: Any, fallback: str) -> str:
    text = clean_text(number, 10_000) if number not in (None, "") else ""
    if not text:
        return fallback
    if len(text) > INVOICE_MAX:
        raise Refusal(
            f"invoice number is {len(text)} characters; Deltek takes at most {INVOICE_MAX}"
        )
    return text


def _charge(project: ProjectTarget, account: str) -> Charge:
    return Charge(account=account, wbs1=project.wbs1, wbs2=project.wbs2, wbs3=project.wbs3)


def _doc_date(kind: str, record: Any, period: str) -> date:
    return record_date(kind, record) or period_end(period)


# ---- AP vouchers ---------------------------------------------------------------------------
def _requisition(req: Any, period: str, ctx: MappingContext) -> Voucher:
    """Gross billed this period on the cost lines, retainage on one line (README
    "Retainage"). Stored materials are a running balance in Procore's G703: only their
    change since the previous application is billed (see RequisitionItem.gross_billed)."""
    project = _project(ctx, req.project_id)
    vendor_id = req.vendor_id or ctx.commitment_vendors.get(int(req.commitment_id or 0))
    vendor = _vendor(ctx, vendor_id, f"subcontractor invoice {req.id}")
    lines: list[VoucherLine] = []
    gross_total = Decimal("0.00")
    retainage = Decimal("0.00")
    for item in req.items:
        gross = _amount(_item_gross(item), f"item {item.id} billed")
        retainage += _amount(_item_retainage(item), f"item {item.id} retainage")
        gross_total += gross
        if gross == 0:
            continue
        cost_type_id = item.line_item_type_id or ctx.commitment_line_types.get(
            int(item.line_item_id or 0)
        )
        account = _account(ctx, item.cost_code_id, cost_type_id)
        lines.append(VoucherLine(_charge(project, account), gross, clean_text(item.description)))
    _check_payment_due(req, gross_total, retainage)
    if not lines and not retainage:
        raise NothingToPost("nothing billed this period")
    if retainage:
        if not ctx.retainage_account:
            raise Refusal(
                f"invoice holds {retainage} retainage; set defaults.retainage_account "
                "in the mapping file"
            )
        _check_account(ctx, ctx.retainage_account, "(retainage payable)")
        text = "Retainage held" if retainage > 0 else "Retainage released"
        lines.append(VoucherLine(Charge(account=ctx.retainage_account), -retainage, text))
    voucher = Voucher(
        kind="requisition",
        record_id=int(req.id),
        period=period,
        vendor=vendor,
        invoice=_invoice(req.invoice_number, f"PC-REQ{req.id}"),
        invoice_date=_doc_date("requisition", req, period),
        description=clean_text(f"Pay app #{req.number} {req.vendor_name or ''}"),
        lines=tuple(lines),
    )
    if voucher.total <= 0:
        raise Refusal(f"invoice nets to {voucher.total} after retainage; nothing to pay")
    return voucher


def _item_gross(item: Any) -> Decimal:
    gross = item.gross_billed()
    if gross is None:
        raise Refusal(
            f"item {item.id}: cannot tell this period's stored materials (Procore sent "
            "neither the previous application's totals nor its stored materials)"
        )
    return gross


def _item_retainage(item: Any) -> Decimal:
    held = item.retainage_held()
    if held is None:
        raise Refusal(
            f"item {item.id}: cannot tell this period's retainage on stored materials "
            "(Procore sent neither the new-materials retainage nor the previous balance)"
        )
    return held


def _check_payment_due(req: Any, gross: Decimal, retainage: Decimal) -> None:
    """The voucher must pay what Procore's G702 says is due now, when Procore says it."""
    due = req.current_payment_due
    if due is None:
        return
    due = _amount(due, "current payment due")
    payable = gross - retainage
    if payable != due:
        raise Refusal(
            f"items give {payable} payable this period (gross {gross} - retainage "
            f"{retainage}) but Procore's current payment due is {due}; check the invoice's "
            "schedule of values in Procore"
        )


def bills_this_period(req: Any) -> bool:
    """Would translation post (or refuse) this invoice, rather than skip it as billing
    nothing? Unknown amounts count as billing: they are quarantined, not skipped."""
    for item in req.items:
        gross, held = item.gross_billed(), item.retainage_held()
        if gross is None or held is None or gross != 0 or held != 0:
            return True
    return req.current_payment_due not in (None, Decimal(0))


def _direct_cost(cost: Any, period: str, ctx: MappingContext) -> Voucher:
    project = _project(ctx, cost.project_id)
    vendor = _vendor(ctx, cost.vendor_id, f"direct cost {cost.id}")
    total = _amount(cost.grand_total, "grand total")
    lines = []
    for item in cost.line_items:
        amount = _amount(item.amount, f"line {item.id}")
        if amount == 0:
            continue
        account = _account(ctx, item.cost_code_id, item.line_item_type_id)
        lines.append(VoucherLine(_charge(project, account), amount, clean_text(item.description)))
    line_sum = sum((ln.amount for ln in lines), Decimal("0.00"))
    if line_sum != total:
        raise Refusal(
            f"line items add up to {line_sum} but the grand total is {total}", Reason.BAD_AMOUNT
        )
    if not lines:
        raise Refusal("direct cost has no amount")
    return Voucher(
        kind="direct_cost",
        record_id=int(cost.id),
        period=period,
        vendor=vendor,
        invoice=_invoice(cost.invoice_number, f"PC-DC{cost.id}"),
        invoice_date=_doc_date("direct_cost", cost, period),
        description=clean_text(cost.description),
        lines=tuple(lines),
    )


# ---- journal entries -----------------------------------------------------------------------
def ref_no(kind: str, record_id: int, suffix: str = "") -> str:
    """Deterministic JE RefNo from the Procore id: the look-up key of the write protocol."""
    prefix = {"work_order": "PCW", "purchase_order": "PCP", "change_order": "PCC"}[kind]
    return f"{prefix}{record_id}{suffix}"


def _commitment_je(
    kind: str,
    record: Any,
    period: str,
    ctx: MappingContext,
    project_id: int,
    title: str,
    account_of: Callable[[Any], str] | None = None,
) -> JournalEntry:
    project = _project(ctx, project_id)
    if not ctx.commitment_offset_account:
        raise Refusal("set defaults.commitment_offset_account in the mapping file")
    _check_account(ctx, ctx.commitment_offset_account, "(commitment offset)")
    total = _amount(record.grand_total, "grand total")
    lines: list[JournalLine] = []
    for item in record.line_items:
        amount = _amount(item.amount, f"line {item.id}")
        if amount == 0:
            continue
        account = (
            account_of(item)
            if account_of
            else _account(ctx, item.cost_code_id, item.line_item_type_id)
        )
        lines.append(_je_line(_charge(project, account), amount, clean_text(item.description)))
    line_sum = sum((ln.debit - ln.credit for ln in lines), Decimal("0.00"))
    if line_sum != total:
        raise Refusal(
            f"line items add up to {line_sum} but the grand total is {total}", Reason.BAD_AMOUNT
        )
    if not lines:
        raise Refusal("commitment has no amount")
    lines.append(
        _je_line(Charge(account=ctx.commitment_offset_account), -total, "Commitment offset")
    )
    return JournalEntry(
        kind=kind,
        record_id=int(record.id),
        period=period,
        ref_no=ref_no(kind, int(record.id)),
        trans_date=_doc_date(kind, record, period),
        description=clean_text(title),
        lines=tuple(lines),
    )


def _je_line(charge: Charge, signed: Decimal, description: str) -> JournalLine:
    if signed >= 0:
        return JournalLine(charge, debit=signed, description=description)
    return JournalLine(charge, credit=-signed, description=description)


def _work_order(record: Any, period: str, ctx: MappingContext) -> JournalEntry:
    title = f"SC {record.number or record.id} {record.title or ''}"
    return _commitment_je("work_order", record, period, ctx, record.project_id, title)


def _purchase_order(record: Any, period: str, ctx: MappingContext) -> JournalEntry:
    title = f"PO {record.number or record.id} {record.title or ''}"
    return _commitment_je("purchase_order", record, period, ctx, record.project_id, title)


def _change_order(record: Any, period: str, ctx: MappingContext) -> JournalEntry:
    title = f"CO {record.number or record.id} {record.title or ''}"

    def account_of(line: Any) -> str:
        full_code, type_code = change_order_line_codes(
            line, ctx.cost_codes, ctx.cost_types, ctx.known_codes, ctx.known_types
        )
        return _account_for_codes(ctx, full_code, type_code)

    return _commitment_je("change_order", record, period, ctx, record.project_id, title, account_of)


# ---- change order lines: where their cost code comes from -------------------------------
def change_order_line_codes(
    line: Any,
    cost_codes: Mapping[int, str],
    cost_types: Mapping[int, str],
    known_codes: Collection[str],
    known_types: Collection[str],
) -> tuple[str, str]:
    """(cost code full_code, cost type code) of a change order line, or a Refusal.

    Procore's CO lines carry neither: they come from the contract line the CO changes
    (`contract_line`, filled by the client), else from `wbs_code.flat_code`.
    """
    problems: list[str] = []
    ref = line.contract_line
    if ref is not None:
        code = _lookup(cost_codes, ref.cost_code_id) or ref.cost_code
        ctype = _lookup(cost_types, ref.line_item_type_id) or ref.line_item_type_code
        if code and ctype:
            return code, ctype
        missing = "cost code" if not code else "cost type"
        problems.append(f"contract line {ref.id} has no {missing}")
    elif line.commitment_line_item_id is not None:
        problems.append(f"contract line {line.commitment_line_item_id} is not on the contract")
    else:
        problems.append("no contract line")
    flat = line.flat_code
    if not flat:
        problems.append("no wbs code")
    else:
        split = split_flat_code(flat, known_codes, known_types)
        if isinstance(split, tuple):
            return split
        problems.append(split)
    raise Refusal(f"change order line {line.id}: " + " and ".join(problems), Reason.NO_ACCOUNT)


def split_flat_code(
    flat_code: str, known_codes: Collection[str], known_types: Collection[str]
) -> tuple[str, str] | str:
    """Read "03-300.S" as ("03-300", "S"), or say why it cannot be read.

    A flat code is the cost code's full code, ".", the cost type code, but cost codes
    may contain "." themselves and companies may add WBS segments (sub jobs). So every
    "." is tried and a split is accepted only when both sides are known codes and
    exactly one split is.
    """
    text = flat_code.strip()
    splits = {
        (text[:i], text[i + 1 :])
        for i, ch in enumerate(text)
        if ch == "." and text[:i] in known_codes and text[i + 1 :] in known_types
    }
    if len(splits) == 1:
        return next(iter(splits))
    if splits:
        shown = ", ".join(f"{c} / {t}" for c, t in sorted(splits))
        return f"wbs code {flat_code!r} reads as more than one cost code / cost type ({shown})"
    return f"wbs code {flat_code!r} names no cost code / cost type"


def _lookup(table: Mapping[int, str], key: int | None) -> str | None:
    return table.get(int(key)) if key is not None else None


_BUILDERS: dict[str, Callable[[Any, str, MappingContext], Voucher | JournalEntry]] = {
    "requisition": _requisition,
    "direct_cost": _direct_cost,
    "work_order": _work_order,
    "purchase_order": _purchase_order,
    "change_order": _change_order,
}
