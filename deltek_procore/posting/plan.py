"""Planning: what the write protocol will do with each record revision. Reads only.

For each Procore record revision (README, "The write protocol") the plan decides one
`Action`: skip what the ledger says Deltek already holds with the same content, create
what is approved and new, adjust or reverse (or send to review) what changed after it
was posted, quarantine what cannot be mapped. The apply step (`posting.apply`) then
looks each document up in Deltek before writing anything.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from deltek_procore.posting import adjust
from deltek_procore.posting.documents import (
    AP_KINDS,
    Document,
    JournalEntry,
    Quarantine,
    Voucher,
    document_from_json,
)
from deltek_procore.posting.translate import MappingContext, is_eligible, is_voided, translate
from deltek_procore.state.states import Action, Reason, State
from deltek_procore.state.store import LedgerRow, StateStore

ACTIONS = tuple(str(a) for a in Action)
ON_MISSING = ("review", "repost")


@dataclass
class PostingSettings:
    liability_code: str = "AP"
    bank_code: str = "OPER"
    pay_terms: str = "Next"
    company: str | None = None
    batch_size: int = 50
    post_batches: bool = False
    late_change_policy: str = "review"  # or "adjust"
    on_missing: str = "review"  # or "repost": a document deleted in Deltek is posted again
    require_approval: bool = False  # post only a plan a person approved (by its id)
    disabled_projects: frozenset[int] = frozenset()  # `enabled: false` in the mapping file
    max_attempts: int = 5
    retries_per_run: int = 4  # sends of one batch after look-ups found it absent (one run)


@dataclass
class Candidate:
    """A staged Procore record of one period, parsed, with its content hash."""

    kind: str
    record: Any
    content_hash: str
    period: str | None


@dataclass
class PlanRow:
    kind: str
    record_id: int
    period: str | None
    action: str
    reason: str
    content_hash: str
    document: Document | None = None  # what gets posted (a delta for adjust/reverse)
    ledger: LedgerRow | None = None  # the newest ledger revision
    revision: int = 1
    full_document: Document | None = None  # the whole record as Deltek now holds it
    posted: LedgerRow | None = None  # the last posted revision, for late changes
    batch: str | None = None
    master_key: str | None = None
    facts: dict[str, str] = field(default_factory=dict)  # Procore's vendor, number, amount
    code: str = ""  # states.Reason of a quarantine: what the checks count, never the text

    @property
    def amount(self) -> Decimal | None:
        return self.document.total if self.document is not None else None

    @property
    def vendor(self) -> str | None:
        return self.document.vendor if isinstance(self.document, Voucher) else None

    @property
    def doc_number(self) -> str | None:
        if isinstance(self.document, Voucher):
            return self.document.invoice
        if isinstance(self.document, JournalEntry):
            return self.document.ref_no
        return None

    def table_row(self) -> dict[str, Any]:
        account = ""
        if self.document is not None and self.document.lines:
            account = self.document.lines[0].charge.account
        return {
            "kind": self.kind,
            "record_id": self.record_id,
            "period": self.period or "",
            "action": self.action,
            "vendor": self.vendor or self.facts.get("vendor", ""),
            "document": self.doc_number or self.facts.get("document", ""),
            "account": account,
            "amount": str(self.amount) if self.amount is not None else self.facts.get("amount", ""),
            "batch": self.batch or "",
            "reason": self.reason,
            "code": str(self.code),
        }


@dataclass
class Outcome:
    """What apply did, per record and in total. The tallies are kept as rows are added, so
    a long run can hand its rows on (`shed_rows`) and still report every count and total."""

    results: list[dict[str, Any]] = field(default_factory=list)
    readback_mismatches: list[str] = field(default_factory=list)
    hidden_amounts: bool = False
    batches: list[str] = field(default_factory=list)
    tally: Counter[str] = field(default_factory=Counter)
    sums: dict[str, Decimal] = field(default_factory=dict)

    def add(self, row: PlanRow, status: str, reason: str = "", **extra: Any) -> None:
        item = row.table_row()
        item.update(status=status, reason=reason or row.reason, **extra)
        self.results.append(item)
        self._count(item)

    def _count(self, item: dict[str, Any]) -> None:
        status = item["status"]
        self.tally[status] += 1
        if item["amount"]:
            self.sums[status] = self.sums.get(status, Decimal("0.00")) + Decimal(item["amount"])

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.tally)

    def total(self, *statuses: str) -> Decimal:
        return sum((self.sums.get(s, Decimal("0.00")) for s in statuses), Decimal("0.00"))

    def merge(self, other: Outcome) -> None:
        """Add another outcome's rows (what it still holds) and its tallies."""
        self.results.extend(other.results)
        self.readback_mismatches.extend(other.readback_mismatches)
        self.hidden_amounts = self.hidden_amounts or other.hidden_amounts
        self.batches.extend(other.batches)
        self.tally.update(other.tally)
        for status, amount in other.sums.items():
            self.sums[status] = self.sums.get(status, Decimal("0.00")) + amount

    def shed_rows(self, shown: int) -> None:
        """Keep only the rows a report shows (every row that needs a person: quarantined,
        review, failed; and the first `shown` that changed something); counts and totals
        stay whole. The caller has handed every row on before."""
        kept: list[dict[str, Any]] = []
        changed = 0
        for row in self.results:
            if row["status"] in ATTENTION:
                kept.append(row)
            elif row["status"] != "skipped" and changed < shown:
                kept.append(row)
                changed += 1
        self.results = kept


# Statuses a person acts on: their rows are never shed from a report.
ATTENTION = frozenset({"quarantined", "review", "failed", "aborted"})


# ---- planning ----------------------------------------------------------------------------------
def plan(
    candidates: Iterable[Candidate],
    ctx: MappingContext,
    store: StateStore,
    settings: PostingSettings,
    taken: dict[tuple[str, str], tuple[str, int]] | None = None,
    release: frozenset[tuple[str, int]] = frozenset(),
) -> list[PlanRow]:
    """Decide, per record, what apply will do. Reads only; writes nothing.

    `release`: (kind, id) a person asked to replay; a document the reconciliation found
    missing in Deltek is posted again only for those, or under `on_missing: repost`.
    """
    by_kind: dict[str, list[Candidate]] = defaultdict(list)
    for cand in candidates:
        by_kind[cand.kind].append(cand)
    rows: list[PlanRow] = []
    for kind, cands in by_kind.items():
        ids = [int(c.record.id) for c in cands]
        ledger = store.latest(kind, ids)
        done = store.last_done(kind, ids)
        ignored = store.ignored(kind)
        reviews: dict[tuple[int, str], dict[str, Any]] = {}
        for item in store.reviews(None, kind=kind):
            reviews[(int(item["record_id"]), item["new_hash"])] = item  # newest wins
        for cand in cands:
            rid = int(cand.record.id)
            view = _RecordView(
                latest=ledger.get(rid),
                done=done.get(rid),
                review=reviews.get((rid, cand.content_hash)),
                released=(kind, rid) in release,
            )
            rows.append(_plan_one(cand, ctx, view, ignored, settings))
    _refuse_duplicate_invoices(rows, invoice_owners(store) if taken is None else taken)
    return rows


def _code(result: Quarantine) -> str:
    return str(result.fields.get("code") or Reason.OTHER)


def record_facts(record: Any) -> dict[str, str]:
    """What Procore says of a record, for rows that have no document (a quarantine)."""
    number = getattr(record, "invoice_number", None) or getattr(record, "number", None)
    amount = getattr(record, "current_payment_due", None)
    if amount is None:
        amount = getattr(record, "grand_total", None)
    return {
        "vendor": str(getattr(record, "vendor_name", None) or ""),
        "document": str(number or ""),
        "amount": "" if amount is None else str(amount),
    }


@dataclass(frozen=True)
class _RecordView:
    """What the store knows of one record when it is planned."""

    latest: LedgerRow | None  # the newest ledger revision
    done: LedgerRow | None  # the newest revision Deltek holds
    review: dict[str, Any] | None  # the review item for this very content, if any
    released: bool = False  # a person replays it


def _plan_one(
    cand: Candidate,
    ctx: MappingContext,
    view: _RecordView,
    ignored: dict[int, str],
    settings: PostingSettings,
) -> PlanRow:
    latest, done, released = view.latest, view.done, view.released
    record_id = int(cand.record.id)
    base = {
        "kind": cand.kind,
        "record_id": record_id,
        "period": cand.period,
        "content_hash": cand.content_hash,
        "ledger": latest,
        "facts": record_facts(cand.record),
    }
    same_as_latest = latest is not None and latest.content_hash == cand.content_hash
    if record_id in ignored:
        return PlanRow(action="ignore", reason=f"on the ignore list: {ignored[record_id]}", **base)
    project = getattr(cand.record, "project_id", None)
    if project is not None and int(project) in settings.disabled_projects:
        return PlanRow(
            action="disable",
            reason=f"project {project} is disabled in the mapping file (enabled: false)",
            **base,
        )
    if done is not None and done.content_hash == cand.content_hash:
        return PlanRow(action="skip", reason=f"already {done.status}", **base)
    if same_as_latest and latest.status == "aborted":
        return PlanRow(
            action="skip",
            reason=f"aborted after {latest.attempts} failed attempts; run replay to try again",
            **base,
        )
    if same_as_latest and latest.status == State.IGNORED:
        return PlanRow(action="skip", reason=latest.reason or "dismissed in review", **base)
    if same_as_latest and latest.status == State.REVIEW:
        item = view.review or {}
        approved = item.get("status") == "approved"
        if item.get("code") == Reason.DELTEK_DIFFERS and approved:
            result = translate(cand.kind, cand.record, ctx)
            if isinstance(result, Quarantine):
                return PlanRow(
                    action="quarantine", reason=result.reason, code=_code(result), **base
                )
            return PlanRow(
                action="adopt",
                reason=f"approved by {item.get('decided_by')}: adopt what Deltek holds",
                document=result,
                full_document=result,
                revision=latest.revision,
                **base,
            )
        late = item.get("code") in (None, Reason.LATE_CHANGE)
        if not (
            late and done is not None and (approved or settings.late_change_policy == "adjust")
        ):
            return PlanRow(action="skip", reason="waiting in the review queue", **base)
        # approved in review, or the policy is now `adjust`: plan the change as `adjust` would
        settings = replace(settings, late_change_policy="adjust")
    if latest is not None and latest.status == State.CHANGED:
        return PlanRow(
            action="skip",
            reason=f"changed in Deltek after it was posted; a person must decide ({latest.reason})",
            **base,
        )
    if latest is not None and latest.status == State.MISSING:
        if not (released or settings.on_missing == "repost"):
            return PlanRow(
                action="skip",
                reason="missing in Deltek (deleted or rejected there); "
                "`deltek-procore replay` posts it again",
                **base,
            )
        if not is_eligible(cand.kind, cand.record, ctx):
            return PlanRow(
                action="skip", reason=f"missing in Deltek, now {cand.record.status}", **base
            )
        result = translate(cand.kind, cand.record, ctx)
        if isinstance(result, Quarantine):
            return PlanRow(action="quarantine", reason=result.reason, code=_code(result), **base)
        return PlanRow(
            action="create",
            reason="missing in Deltek; posted again (replay)"
            if released
            else "missing in Deltek; posted again (on_missing: repost)",
            document=result,
            full_document=result,
            revision=latest.revision + 1,
            **base,
        )
    if done is not None:
        revision = latest.revision if same_as_latest and not latest.done else latest.revision + 1
        return _plan_change(cand, ctx, done, revision, settings, base)
    if not is_eligible(cand.kind, cand.record, ctx):
        return PlanRow(action="skip", reason=f"not approved (status {cand.record.status})", **base)
    result = translate(cand.kind, cand.record, ctx)
    if isinstance(result, Quarantine):
        if result.fields.get("nothing_to_post"):
            return PlanRow(action="skip", reason=result.reason, **base)
        if result.fields.get("held_back"):  # e.g. its vendor's firm failed: retry next run
            return PlanRow(action=Action.FAIL, reason=result.reason, **base)
        return PlanRow(action="quarantine", reason=result.reason, code=_code(result), **base)
    revision = latest.revision if same_as_latest else (latest.revision + 1 if latest else 1)
    return PlanRow(
        action="create",
        reason="approved, not yet in Deltek",
        document=result,
        full_document=result,
        revision=revision,
        **base,
    )


def _plan_change(
    cand: Candidate,
    ctx: MappingContext,
    done: LedgerRow,
    revision: int,
    settings: PostingSettings,
    base: dict[str, Any],
) -> PlanRow:
    """The record was posted before and has changed since: adjust, reverse or review."""
    posted_doc = document_from_json(done.document_json) if done.document_json else None
    full: Document | None = None
    if is_voided(cand.kind, cand.record) and isinstance(posted_doc, JournalEntry):
        doc: Document | None = adjust.reversal(posted_doc, revision)
        if doc is None:
            return PlanRow(
                action="skip",
                reason="voided in Procore; already reversed in Deltek",
                revision=revision,
                **base,
            )
        full = adjust.held_after_reversal(posted_doc)
        why = f"voided in Procore after it was posted ({cand.record.status})"
        action = "reverse"
    elif is_eligible(cand.kind, cand.record, ctx):
        current = translate(cand.kind, cand.record, ctx)
        if isinstance(current, Quarantine):
            return PlanRow(
                action="quarantine",
                reason=f"changed after posting; {current.reason}",
                code=_code(current),
                revision=revision,
                **base,
            )
        full = current
        moved = adjust.identity_change(posted_doc, current) if posted_doc else None
        if moved:
            return PlanRow(
                action="review",
                reason=f"{moved}; a person must decide",
                document=current,
                full_document=current,
                revision=revision,
                posted=done,
                **base,
            )
        if posted_doc is None:
            doc = None
        elif isinstance(current, Voucher):
            doc = adjust.voucher_delta(posted_doc, current, revision)  # type: ignore[arg-type]
        else:
            doc = adjust.journal_delta(posted_doc, current, revision)  # type: ignore[arg-type]
        if doc is None:
            return PlanRow(
                action="skip",
                reason="changed in Procore, but not in anything Deltek holds",
                revision=revision,
                **base,
            )
        why = f"changed after posting: total {posted_doc.total} -> {current.total}"
        action = "adjust"
    else:
        return PlanRow(
            action="review",
            reason=f"posted, now {cand.record.status} in Procore; a person must decide",
            revision=revision,
            **base,
        )
    if settings.late_change_policy != "adjust":
        action, doc = "review", doc
    return PlanRow(
        action=action,
        reason=why,
        document=doc,
        full_document=full,
        revision=revision,
        posted=done,
        **base,
    )


def invoice_owners(store: StateStore) -> dict[tuple[str, str], tuple[str, int]]:
    """(Deltek vendor, invoice) -> the Procore record that holds it in Deltek (or is posting it)."""
    taken: dict[tuple[str, str], tuple[str, int]] = {}
    for row in store.ledger_rows(
        kinds=AP_KINDS, statuses=("posted", "adopted", "adjusted", "posting")
    ):
        if row.deltek_vendor and row.document:
            taken[(row.deltek_vendor, row.document)] = (row.kind, row.record_id)
    return taken


def _refuse_duplicate_invoices(
    rows: list[PlanRow], taken: dict[tuple[str, str], tuple[str, int]]
) -> None:
    """Two Procore records with one vendor + invoice number would collide in Deltek."""
    for row in rows:
        if row.action != "create" or not isinstance(row.document, Voucher):
            continue
        key = (row.document.vendor, row.document.invoice)
        owner = taken.get(key)
        if owner is not None and owner != (row.kind, row.record_id):
            row.action = "quarantine"
            row.code = Reason.DUPLICATE_INVOICE
            row.reason = (
                f"vendor {key[0]} invoice {key[1]!r} is already used by Procore "
                f"{owner[0]} {owner[1]}; give one of them a distinct invoice number"
            )
            row.document = None
        else:
            taken[key] = (row.kind, row.record_id)
