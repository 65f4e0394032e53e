"""The write protocol: plan, then apply, so nothing is ever posted twice.

For each Procore record revision (design.md, "The write protocol"):
1. the ledger says it is posted with the same content hash -> skip;
2. Deltek already holds it (vendor + invoice for AP, RefNo for JEs, in unposted
   batches and in the posted ledger) -> adopt;
3. post in batches; a rejected batch is split until the bad record is isolated and
   quarantined with Deltek's message; an ambiguous failure (timeout, lost
   response) is followed by a look-up before any retry;
4. record the outcome and Deltek's keys in the ledger and the audit trail.
Because the ledger row says "posting" (with the batch name) before the POST and
the look-up runs before every post, a crash between 3 and 4 cannot duplicate.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from deltek_procore.deltek.errors import DeltekAmbiguousError, DeltekError
from deltek_procore.deltek.filters import Filter
from deltek_procore.posting import adjust, payloads
from deltek_procore.posting.documents import (
    AP_KINDS,
    Document,
    JournalEntry,
    Quarantine,
    Voucher,
    document_from_json,
    document_to_json,
)
from deltek_procore.posting.periods import deltek_period, period_end
from deltek_procore.posting.translate import (
    MappingContext,
    is_eligible,
    is_voided,
    translate,
)
from deltek_procore.state.store import AuditEvent, LedgerRow, StateStore

log = logging.getLogger(__name__)

ACTIONS = ("create", "adopt", "skip", "adjust", "reverse", "review", "quarantine", "ignore")


@dataclass
class PostingSettings:
    liability_code: str = "AP"
    bank_code: str = "OPER"
    pay_terms: str = "Next"
    company: str | None = None
    batch_size: int = 50
    post_batches: bool = False
    late_change_policy: str = "review"  # or "adjust"
    max_attempts: int = 5
    retries_per_run: int = 2


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
            "vendor": self.vendor or "",
            "document": self.doc_number or "",
            "account": account,
            "amount": str(self.amount) if self.amount is not None else "",
            "batch": self.batch or "",
            "reason": self.reason,
        }


@dataclass
class Outcome:
    """What apply did, per record and in total."""

    results: list[dict[str, Any]] = field(default_factory=list)
    readback_mismatches: list[str] = field(default_factory=list)
    hidden_amounts: bool = False
    batches: list[str] = field(default_factory=list)

    def add(self, row: PlanRow, status: str, reason: str = "", **extra: Any) -> None:
        item = row.table_row()
        item.update(status=status, reason=reason or row.reason, **extra)
        self.results.append(item)

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(r["status"] for r in self.results))

    def total(self, *statuses: str) -> Decimal:
        return sum(
            (Decimal(r["amount"]) for r in self.results if r["status"] in statuses and r["amount"]),
            Decimal("0.00"),
        )


# ---- planning ----------------------------------------------------------------------------------
def plan(
    candidates: Iterable[Candidate],
    ctx: MappingContext,
    store: StateStore,
    settings: PostingSettings,
    taken: dict[tuple[str, str], tuple[str, int]] | None = None,
) -> list[PlanRow]:
    """Decide, per record, what apply will do. Reads only; writes nothing."""
    by_kind: dict[str, list[Candidate]] = defaultdict(list)
    for cand in candidates:
        by_kind[cand.kind].append(cand)
    rows: list[PlanRow] = []
    for kind, cands in by_kind.items():
        ids = [int(c.record.id) for c in cands]
        ledger = store.latest(kind, ids)
        done = store.last_done(kind, ids)
        ignored = store.ignored(kind)
        for cand in cands:
            rid = int(cand.record.id)
            rows.append(_plan_one(cand, ctx, ledger.get(rid), done.get(rid), ignored, settings))
    _refuse_duplicate_invoices(rows, invoice_owners(store) if taken is None else taken)
    return rows


def _plan_one(
    cand: Candidate,
    ctx: MappingContext,
    latest: LedgerRow | None,
    done: LedgerRow | None,
    ignored: dict[int, str],
    settings: PostingSettings,
) -> PlanRow:
    record_id = int(cand.record.id)
    base = {
        "kind": cand.kind,
        "record_id": record_id,
        "period": cand.period,
        "content_hash": cand.content_hash,
        "ledger": latest,
    }
    same_as_latest = latest is not None and latest.content_hash == cand.content_hash
    if record_id in ignored:
        return PlanRow(action="ignore", reason=f"on the ignore list: {ignored[record_id]}", **base)
    if done is not None and done.content_hash == cand.content_hash:
        return PlanRow(action="skip", reason=f"already {done.status}", **base)
    if same_as_latest and latest.status == "aborted":
        return PlanRow(
            action="skip",
            reason=f"aborted after {latest.attempts} failed attempts; run replay to try again",
            **base,
        )
    if same_as_latest and latest.status == "review":
        return PlanRow(action="skip", reason="waiting in the review queue", **base)
    if done is not None:
        revision = latest.revision if same_as_latest and not latest.done else latest.revision + 1
        return _plan_change(cand, ctx, done, revision, settings, base)
    if not is_eligible(cand.kind, cand.record, ctx):
        return PlanRow(action="skip", reason=f"not approved (status {cand.record.status})", **base)
    result = translate(cand.kind, cand.record, ctx)
    if isinstance(result, Quarantine):
        if result.fields.get("nothing_to_post"):
            return PlanRow(action="skip", reason=result.reason, **base)
        return PlanRow(action="quarantine", reason=result.reason, **base)
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
            row.reason = (
                f"vendor {key[0]} invoice {key[1]!r} is already used by Procore "
                f"{owner[0]} {owner[1]}; give one of them a distinct invoice number"
            )
            row.document = None
        else:
            taken[key] = (row.kind, row.record_id)


# ---- applying -----------------------------------------------------------------------------------
class DeltekIndex:
    """What Deltek already holds, read in bulk once per run (the look-up step)."""

    def __init__(self, deltek: Any, periods: Sequence[str]):
        self.deltek = deltek
        self.periods = sorted({p for p in periods if p})
        self.ap: dict[tuple[str, str], dict[str, Any]] = {}
        self.je: dict[str, dict[str, Any]] = {}
        self.loaded: set[str] = set()

    def ensure(self, docs: Iterable[Document]) -> None:
        """Read what each needed side holds, once per index (a run shares one index)."""
        kinds = {"AP" if isinstance(d, Voucher) else "JE" for d in docs}
        if "AP" in kinds - self.loaded:
            self.load_ap()
        if "JE" in kinds - self.loaded:
            self.load_je()

    def _range(self) -> list[Filter]:
        around = _neighbours(self.periods)
        return [
            Filter("Period", deltek_period(around[0]), ">="),
            Filter("Period", deltek_period(around[-1]), "<="),
        ]

    def load_ap(self) -> None:
        self.loaded.add("AP")
        self.ap = {}
        for master in self.deltek.unposted_ap_masters():
            self.ap[(str(master.get("Vendor")), str(master.get("Invoice")))] = master
        for row in self.deltek.posted_ap(filters=self._range()):
            self.ap.setdefault((str(row.get("Vendor")), str(row.get("Invoice"))), row)

    def load_je(self) -> None:
        self.loaded.add("JE")
        self.je = {}
        for master in self.deltek.unposted_je_masters():
            self.je[str(master.get("RefNo"))] = master
        for row in self.deltek.posted_je(filters=self._range()):
            self.je.setdefault(str(row.get("RefNo")), row)

    def find(self, doc: Document) -> dict[str, Any] | None:
        if isinstance(doc, Voucher):
            return self.ap.get((doc.vendor, doc.invoice))
        return self.je.get(doc.ref_no)


def _neighbours(periods: Sequence[str]) -> list[str]:
    """The plan's periods and one either side: where a hand-keyed twin may sit."""
    out: set[str] = set()
    for period in periods:
        year, month = (int(p) for p in period.split("-"))
        for delta in (-1, 0, 1):
            m = month + delta
            y = year + (m - 1) // 12
            m = (m - 1) % 12 + 1
            out.add(f"{y:04d}-{m:02d}")
    return sorted(out)


class Poster:
    """Applies a plan against Deltek, recording every step."""

    def __init__(
        self,
        store: StateStore,
        deltek: Any,
        settings: PostingSettings,
        *,
        run_id: str | None = None,
        mapping_hash: str | None = None,
        progress: Callable[[str], None] | None = None,
    ):
        self.store = store
        self.deltek = deltek
        self.settings = settings
        self.run_id = run_id
        self.mapping_hash = mapping_hash
        self.progress = progress or (lambda _msg: None)

    # -- entry point --
    def apply(self, rows: list[PlanRow], index: DeltekIndex | None = None) -> Outcome:
        """Post a plan. Pass one `index` for several plans of a run: Deltek is read once."""
        outcome = Outcome()
        self._record_non_posting(rows, outcome)
        postable = [r for r in rows if r.action in {"create", "adjust", "reverse"} and r.document]
        if not postable:
            return outcome
        if index is None:
            index = DeltekIndex(self.deltek, [r.period for r in postable if r.period])
        index.ensure(r.document for r in postable)
        # Write 'posting' before talking to Deltek, so a crash leaves a trace to look up.
        self._set_states(postable, "posting")
        self.store.audit(
            [
                AuditEvent(
                    "mapped",
                    r.kind,
                    r.record_id,
                    {
                        "action": r.action,
                        "amount": str(r.amount),
                        "accounts": sorted({ln.charge.account for ln in r.document.lines}),
                        "document": r.doc_number,
                        "vendor": r.vendor,
                        "mapping_hash": (self.mapping_hash or "")[:12],
                    },
                )
                for r in postable
            ],
            self.run_id,
        )
        to_post: list[PlanRow] = []
        adopted: list[tuple[PlanRow, dict[str, Any]]] = []
        for row in postable:
            found = index.find(row.document)
            if found is not None:
                adopted.append((row, found))
            else:
                to_post.append(row)
        self._adopt(adopted, outcome)
        groups: dict[tuple[str, str], list[PlanRow]] = defaultdict(list)
        for row in to_post:
            kind = "AP" if isinstance(row.document, Voucher) else "JE"
            groups[(kind, row.period or "")].append(row)
        for (transtype, period), group in sorted(groups.items()):
            for start in range(0, len(group), self.settings.batch_size):
                chunk = group[start : start + self.settings.batch_size]
                self._post_chunk(transtype, period, chunk, index, outcome)
                self.progress(
                    f"{transtype} {period}: {min(start + len(chunk), len(group))}/{len(group)}"
                )
        return outcome

    # -- ledger bookkeeping --
    def _record_non_posting(self, rows: list[PlanRow], outcome: Outcome) -> None:
        audit: list[AuditEvent] = []
        by_state: dict[str, list[PlanRow]] = defaultdict(list)
        for row in rows:
            if row.action == "skip":
                outcome.add(row, "skipped")
            elif row.action == "ignore":
                by_state["ignored"].append(row)
                outcome.add(row, "ignored")
            elif row.action == "quarantine":
                by_state["quarantined"].append(row)
                outcome.add(row, "quarantined")
                audit.append(
                    AuditEvent("quarantined", row.kind, row.record_id, {"reason": row.reason})
                )
            elif row.action == "review":
                by_state["review"].append(row)
                posted = row.posted or row.ledger
                self.store.add_review(
                    kind=row.kind,
                    record_id=row.record_id,
                    posted_hash=posted.content_hash if posted else "",
                    new_hash=row.content_hash,
                    posted_amount=posted.amount if posted else None,
                    new_amount=str(row.amount) if row.amount is not None else None,
                    reason=row.reason,
                )
                outcome.add(row, "review")
                audit.append(
                    AuditEvent("review_queued", row.kind, row.record_id, {"reason": row.reason})
                )
        for status, group in by_state.items():
            self._set_states(group, status)
        self.store.audit(audit, self.run_id)

    def _values(self, row: PlanRow, status: str) -> dict[str, Any]:
        document = row.full_document or row.document
        return {
            "status": status,
            "reason": row.reason,
            "period": row.period,
            "action": row.action,
            "mapping_hash": self.mapping_hash,
            "run_id": self.run_id,
            "amount": str(row.amount) if row.amount is not None else None,
            "document_json": document_to_json(document) if document else None,
            "deltek_vendor": row.vendor,
            "document": row.doc_number,
        }

    def _set_states(self, rows: Sequence[PlanRow], status: str) -> None:
        """Update each row's current revision in place, or add its next revision (in bulk)."""
        updates: list[tuple[int, dict[str, Any]]] = []
        inserts: list[PlanRow] = []
        for row in rows:
            latest = row.ledger
            if latest is not None and latest.content_hash == row.content_hash and not latest.done:
                values = self._values(row, status)
                updates.append((latest.id, values))
                for key, value in values.items():
                    setattr(latest, key, value)
            else:
                inserts.append(row)
        self.store.update_ledger_rows(updates)
        created = self.store.add_revisions(
            [
                {
                    "kind": r.kind,
                    "record_id": r.record_id,
                    "content_hash": r.content_hash,
                    **self._values(r, status),
                }
                for r in inserts
            ]
        )
        for row, new in zip(inserts, created, strict=True):
            row.ledger = new
            row.revision = new.revision

    def _adopt(self, found: list[tuple[PlanRow, dict[str, Any]]], outcome: Outcome) -> None:
        updates, audit = [], []
        for row, hit in found:
            batch = str(hit.get("Batch") or "")
            key = str(hit.get("MasterPKey") or hit.get("RefNo") or hit.get("Voucher") or "")
            updates.append(
                (
                    row.ledger.id,
                    {
                        "status": "adopted",
                        "deltek_batch": batch[:32] or None,
                        "deltek_key": key or None,
                        "reason": "already in Deltek (found by look-up); not posted again",
                    },
                )
            )
            audit.append(
                AuditEvent("dedup_hit", row.kind, row.record_id, {"batch": batch, "key": key})
            )
            row.batch = batch
            outcome.add(row, "adopted", "already in Deltek; adopted, not posted again")
        self.store.update_ledger_rows(updates)
        self.store.audit(audit, self.run_id)

    # -- posting --
    def _post_chunk(
        self,
        transtype: str,
        period: str,
        chunk: list[PlanRow],
        index: DeltekIndex,
        outcome: Outcome,
    ) -> None:
        keyed = [(row, payloads.master_key(row.document, row.revision)) for row in chunk]
        prefix = "PCAP" if transtype == "AP" else "PCJE"
        period_code = deltek_period(period)
        batch = payloads.batch_name(prefix, period_code, [k for _, k in keyed])
        if transtype == "AP":
            control = payloads.ap_control(
                batch,
                [(r.document, k) for r, k in keyed],
                period_code=period_code,
                liability_code=self.settings.liability_code,
                bank_code=self.settings.bank_code,
                pay_terms=self.settings.pay_terms,
                company=self.settings.company,
                end_date=period_end(period),
            )
            create = self.deltek.create_ap_batch
        else:
            control = payloads.je_control(
                batch,
                [(r.document, k) for r, k in keyed],
                period_code=period_code,
                company=self.settings.company,
                end_date=period_end(period),
            )
            create = self.deltek.create_je_batch

        def fetch(name: str) -> list[dict[str, Any]] | None:
            return self.deltek.batch_details(name, transtype) or None

        for row, key in keyed:
            row.batch, row.master_key = batch, key
        self.store.update_ledger_rows(
            [(row.ledger.id, {"deltek_batch": batch, "deltek_key": key}) for row, key in keyed]
        )
        self.store.audit(
            [AuditEvent("post", r.kind, r.record_id, {"batch": batch}) for r in chunk], self.run_id
        )
        for attempt in range(self.settings.retries_per_run + 1):
            try:
                create(control)
            except DeltekAmbiguousError as exc:
                self.store.audit(
                    [
                        AuditEvent(
                            "ambiguous", r.kind, r.record_id, {"batch": batch, "error": str(exc)}
                        )
                        for r in chunk
                    ],
                    self.run_id,
                )
                existing = self._safe_fetch(fetch, batch)
                if existing is not None:
                    self._record_posted(transtype, period, keyed, existing, outcome, batch)
                    return
                if existing is False or attempt == self.settings.retries_per_run:
                    self._fail(
                        chunk, outcome, f"Deltek did not confirm batch {batch}: {exc.message}"
                    )
                    return
                self.store.audit(
                    [AuditEvent("retry", r.kind, r.record_id, {"batch": batch}) for r in chunk],
                    self.run_id,
                )
                continue
            except DeltekError as exc:
                if (
                    exc.status is not None
                    and 400 <= exc.status < 500
                    and exc.status not in (401, 403, 429)
                ):
                    # The batch name is derived from its documents, so "already exists"
                    # means an earlier send of this very batch landed late (a stalled
                    # request, or one from a run that died): it is posted, not rejected.
                    # Splitting it would post the halves a second time.
                    existing = self._safe_fetch(fetch, batch)
                    if existing and _holds_all(transtype, existing, keyed):
                        self._record_posted(transtype, period, keyed, existing, outcome, batch)
                        return
                    self._split(transtype, period, chunk, index, outcome, exc)
                else:
                    self._fail(chunk, outcome, str(exc))
                return
            existing = self._safe_fetch(fetch, batch)
            self._record_posted(transtype, period, keyed, existing or None, outcome, batch)
            return

    def _safe_fetch(self, fetch: Callable[[str], Any], batch: str) -> Any:
        """Read a batch back; False when even the look-up failed (then nothing is decided)."""
        try:
            return fetch(batch)
        except DeltekError as exc:
            log.warning("look-up of batch %s failed: %s", batch, exc)
            return False

    def _split(
        self,
        transtype: str,
        period: str,
        chunk: list[PlanRow],
        index: DeltekIndex,
        outcome: Outcome,
        exc: DeltekError,
    ) -> None:
        if len(chunk) == 1:
            row = chunk[0]
            reason = f"Deltek rejected it: {exc.message}"
            self.store.update_ledger(
                [row.ledger.id], status="quarantined", reason=reason, deltek_batch=None
            )
            self.store.audit(
                [
                    AuditEvent(
                        "rejected",
                        row.kind,
                        row.record_id,
                        {"status": exc.status, "message": exc.message},
                    )
                ],
                self.run_id,
            )
            outcome.add(row, "quarantined", reason)
            return
        middle = len(chunk) // 2
        for half in (chunk[:middle], chunk[middle:]):
            self._post_chunk(transtype, period, half, index, outcome)

    def _fail(self, chunk: list[PlanRow], outcome: Outcome, reason: str) -> None:
        self.store.bump_attempts([r.ledger.id for r in chunk], "failed", reason)
        for row in chunk:
            attempts = (row.ledger.attempts or 0) + 1
            status = "aborted" if attempts >= self.settings.max_attempts else "failed"
            if status == "aborted":
                self.store.update_ledger([row.ledger.id], status="aborted")
            outcome.add(row, status, reason)
        self.store.audit(
            [AuditEvent("error", r.kind, r.record_id, {"reason": reason}) for r in chunk],
            self.run_id,
        )

    def _record_posted(
        self,
        transtype: str,
        period: str,
        keyed: list[tuple[PlanRow, str]],
        readback: list[dict[str, Any]] | None,
        outcome: Outcome,
        batch: str,
    ) -> None:
        amounts = _readback_amounts(transtype, readback) if readback else {}
        status_by_action = {"create": "posted", "adjust": "adjusted", "reverse": "adjusted"}
        audit: list[AuditEvent] = []
        updates: list[tuple[int, dict[str, Any]]] = []
        for row, key in keyed:
            ref = key if transtype == "AP" else row.document.ref_no
            status = status_by_action[row.action]
            updates.append(
                (
                    row.ledger.id,
                    {
                        "status": status,
                        "deltek_batch": batch,
                        "deltek_key": ref,
                        "reason": row.reason,
                    },
                )
            )
            seen = amounts.get(ref)
            if readback:
                if seen is None:
                    outcome.readback_mismatches.append(
                        f"{row.kind} {row.record_id}: not in batch read-back"
                    )
                elif seen == 0 and row.document.total != 0:
                    outcome.hidden_amounts = True
                elif seen != row.document.total:
                    outcome.readback_mismatches.append(
                        f"{row.kind} {row.record_id}: posted {row.document.total}, read back {seen}"
                    )
            audit.append(AuditEvent(status, row.kind, row.record_id, {"batch": batch, "key": ref}))
            outcome.add(row, status)
        self.store.update_ledger_rows(updates)
        outcome.batches.append(batch)
        self.store.audit(audit, self.run_id)
        if self.settings.post_batches:
            try:
                self.deltek.post_batch(
                    batch, transtype, deltek_period(period), self.settings.company
                )
                self.store.audit(
                    [AuditEvent("ledger_posted", None, None, {"batch": batch})], self.run_id
                )
            except DeltekError as exc:
                self.store.audit(
                    [
                        AuditEvent(
                            "ledger_post_failed", None, None, {"batch": batch, "error": str(exc)}
                        )
                    ],
                    self.run_id,
                )


def _holds_all(
    transtype: str, details: list[dict[str, Any]], keyed: list[tuple[PlanRow, str]]
) -> bool:
    """Does this batch read back with every document of the chunk (by key or RefNo)?"""
    field_name = "MasterPKey" if transtype == "AP" else "RefNo"
    present = {str(d.get(field_name)) for d in details if isinstance(d, dict)}
    wanted = {key if transtype == "AP" else row.document.ref_no for row, key in keyed}
    return bool(wanted) and wanted <= present


def _readback_amounts(transtype: str, details: list[dict[str, Any]]) -> dict[str, Decimal]:
    """Per master key (AP) or RefNo (JE): the amount Deltek reads back from the detail lines."""
    out: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
    key, amount = ("MasterPKey", "Amount") if transtype == "AP" else ("RefNo", "DebitAmount")
    for line in details:
        out[str(line.get(key))] += Decimal(str(line.get(amount) or 0)).quantize(Decimal("0.01"))
    return dict(out)
