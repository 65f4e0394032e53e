"""One posting step for a set of periods: candidates -> plan -> apply -> checks.

Used by the Dagster posting assets and by `sync --plan`. The whole step runs
under a lease named after the Deltek tenant, so two syncs of the same tenant
(two schedules, a sensor run and a backfill, two machines) take turns: the second
finds the ledger already says "posted" and posts nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from deltek_procore.mapping.config import MappingFile, mapping_hash
from deltek_procore.pipeline.ingest import parse
from deltek_procore.pipeline.reference import ignore_from_mapping, mapping_context
from deltek_procore.posting.documents import JournalEntry, document_from_json
from deltek_procore.posting.apply import Poster
from deltek_procore.posting.lookup import DeltekHoldings
from deltek_procore.posting.plan import (
    Candidate,
    Outcome,
    PlanRow,
    PostingSettings,
    invoice_owners,
    plan,
)
from deltek_procore.posting.translate import is_eligible
from deltek_procore.state.store import StateStore

AP_KINDS = ("requisition", "direct_cost")
JE_KINDS = ("work_order", "purchase_order", "change_order")


def settings_from(mapping: MappingFile) -> PostingSettings:
    d = mapping.defaults
    return PostingSettings(
        liability_code=d.liability_code,
        bank_code=d.bank_code,
        pay_terms=d.voucher_pay_terms,
        company=d.company,
        batch_size=d.batch_size,
        post_batches=d.post_batches,
        late_change_policy=d.late_change_policy,
    )


def candidates(
    store: StateStore,
    kinds: Sequence[str],
    periods: Sequence[str],
    ids: Sequence[int] | None = None,
) -> list[Candidate]:
    out: list[Candidate] = []
    for kind in kinds:
        for rec in store.staged(kind, periods=periods, ids=ids):
            out.append(Candidate(kind, parse(kind, rec.payload), rec.content_hash, rec.period))
    return out


@dataclass
class PostingReport:
    periods: list[str]
    kinds: tuple[str, ...]
    plan: list[PlanRow]
    outcome: Outcome | None = None
    checks: dict[str, tuple[bool, str]] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        if self.outcome is not None:
            return self.outcome.counts
        out: dict[str, int] = {}
        for row in self.plan:
            out[row.action] = out.get(row.action, 0) + 1
        return out

    def total(self, *statuses: str) -> Decimal:
        return self.outcome.total(*statuses) if self.outcome else Decimal("0.00")

    @property
    def failed(self) -> int:
        return sum(self.counts.get(s, 0) for s in ("failed", "aborted"))

    def quarantined(self) -> list[dict[str, Any]]:
        rows = self.outcome.results if self.outcome else [r.table_row() for r in self.plan]
        return [
            r for r in rows if r.get("status", r.get("action")) in ("quarantined", "quarantine")
        ]

    def summary(self) -> dict[str, Any]:
        return {
            "periods": self.periods,
            "kinds": list(self.kinds),
            "counts": self.counts,
            "posted_total": str(self.total("posted", "adjusted")),
            "adopted_total": str(self.total("adopted")),
            "quarantined": self.quarantined(),
            "checks": {k: {"passed": ok, "detail": d} for k, (ok, d) in self.checks.items()},
        }


def run_postings(
    *,
    store: StateStore,
    deltek: Any | None,
    mapping: MappingFile,
    kinds: Sequence[str],
    periods: Sequence[str],
    tenant: str,
    run_id: str | None = None,
    apply: bool = True,
    ids: Sequence[int] | None = None,
    progress: Callable[[str], None] | None = None,
) -> PostingReport:
    digest = mapping_hash(mapping)
    settings = settings_from(mapping)
    report = PostingReport(periods=list(periods), kinds=tuple(kinds), plan=[])
    with store.lease(f"deltek:{tenant}"):
        ignore_from_mapping(store, mapping)
        ctx = mapping_context(store, mapping, digest)
        taken = invoice_owners(store)
        poster = None
        if apply and deltek is not None:
            poster = Poster(
                store, deltek, settings, run_id=run_id, mapping_hash=digest, progress=progress
            )
            report.outcome = Outcome()
            index = DeltekHoldings(deltek, list(periods))
        per_period: list[tuple[str, dict[str, tuple[bool, str]]]] = []
        # One period at a time: memory stays flat however many months a backfill spans.
        for period in sorted(periods):
            cands = candidates(store, kinds, [period], ids)
            if not cands:
                continue
            rows = plan(cands, ctx, store, settings, taken=taken)
            if poster is None:
                report.plan.extend(rows)
                continue
            outcome = poster.apply(rows, index)
            _merge(report.outcome, outcome)
            per_period.append(
                (period, evaluate_checks(store, cands, ctx, outcome, kinds, [period]))
            )
        if poster is not None:
            report.checks = _merge_checks(per_period, periods)
    return report


def _merge(total: Outcome, part: Outcome) -> None:
    total.results.extend(part.results)
    total.readback_mismatches.extend(part.readback_mismatches)
    total.hidden_amounts = total.hidden_amounts or part.hidden_amounts
    total.batches.extend(part.batches)


def _merge_checks(
    per_period: list[tuple[str, dict[str, tuple[bool, str]]]], periods: Sequence[str]
) -> dict[str, tuple[bool, str]]:
    """One result per check: failed where any period failed, naming those periods."""
    if len(per_period) == 1:
        return per_period[0][1]
    names = {name for _, checks in per_period for name in checks}
    merged: dict[str, tuple[bool, str]] = {}
    for name in sorted(names):
        failed = [(p, c[name][1]) for p, c in per_period if name in c and not c[name][0]]
        if failed:
            shown = "; ".join(f"{p}: {detail}" for p, detail in failed[:3])
            more = f"; and {len(failed) - 3} more period(s)" if len(failed) > 3 else ""
            merged[name] = (
                False,
                f"failed in {len(failed)} of {len(per_period)} period(s): {shown}{more}",
            )
        else:
            merged[name] = (True, f"passed for every period of {_span(list(periods))}")
    return merged


def _span(periods: Sequence[str]) -> str:
    if not periods:
        return "no period"
    return (
        periods[0] if len(periods) == 1 else f"{periods[0]}..{periods[-1]} ({len(periods)} months)"
    )


def cost_amount(doc: Any) -> Decimal:
    """The signed amount a document puts on the project: a voucher's total; a JE's
    project-side lines (debits minus credits), so a negative change order stays negative."""
    if isinstance(doc, JournalEntry):
        return sum((ln.debit - ln.credit for ln in doc.lines if ln.charge.wbs1), Decimal("0.00"))
    return doc.total


def procore_amount(kind: str, record: Any) -> Decimal:
    """What Procore says is owed or committed, computed independently of translation.

    A record whose amount is no number counts 0 here: it is quarantined, not posted."""
    try:
        return _procore_amount(kind, record)
    except (InvalidOperation, ValueError):
        return Decimal("0.00")


def _procore_amount(kind: str, record: Any) -> Decimal:
    if kind == "requisition":
        # Procore's own figure (G702 current payment due) where it gives one, else the
        # G703 items: gross this period (stored materials are a balance) less retainage.
        if record.current_payment_due is not None:
            return Decimal(str(record.current_payment_due)).quantize(Decimal("0.01"))
        gross = sum((i.gross_billed() or Decimal(0) for i in record.items), Decimal("0.00"))
        retainage = sum((i.retainage_held() or Decimal(0) for i in record.items), Decimal("0.00"))
        return (gross - retainage).quantize(Decimal("0.01"))
    return Decimal(str(record.grand_total or 0)).quantize(Decimal("0.01"))


def evaluate_checks(
    store: StateStore,
    cands: Sequence[Candidate],
    ctx: Any,
    outcome: Outcome,
    kinds: Sequence[str],
    periods: Sequence[str],
) -> dict[str, tuple[bool, str]]:
    """The posting checks (every line mapped, complete, no duplicates, read-back matches,
    totals match), computed from this run and the ledger."""
    latest: dict[tuple[str, int], Any] = {}
    for kind in kinds:
        for rid, row in store.latest(
            kind, [int(c.record.id) for c in cands if c.kind == kind]
        ).items():
            latest[(kind, rid)] = row
    eligible = [c for c in cands if is_eligible(c.kind, c.record, ctx)]
    quarantined = [r for r in outcome.results if r["status"] == "quarantined"]
    unmapped = [r for r in quarantined if "GL account" in r["reason"] or "project" in r["reason"]]
    checks: dict[str, tuple[bool, str]] = {}
    checks["every_line_mapped"] = (
        not unmapped,
        f"{len(unmapped)} record(s) have lines without a project or GL account"
        if unmapped
        else "every approved line has a project and GL account",
    )
    # approved but with nothing to post (e.g. a pay app billing nothing this period) is a
    # decision of the plan, not a record that fell through: it gets no ledger row
    nothing = {
        (r["kind"], int(r["record_id"])) for r in outcome.results if r["status"] == "skipped"
    }
    missing = [
        c
        for c in eligible
        if (c.kind, int(c.record.id)) not in latest and (c.kind, int(c.record.id)) not in nothing
    ]
    checks["complete"] = (
        not missing,
        f"{len(missing)} approved record(s) have no ledger row: "
        + ", ".join(f"{c.kind} {c.record.id}" for c in missing[:10])
        if missing
        else f"all {len(eligible)} approved records of {_span(periods)} are in the ledger",
    )
    docs: dict[tuple[str, str], list[str]] = {}
    for row in store.ledger_rows(
        kinds=kinds, periods=periods, statuses=("posted", "adopted", "adjusted")
    ):
        key = (row.deltek_vendor or "", row.document or "")
        docs.setdefault(key, []).append(f"{row.kind} {row.record_id}")
    dupes = {k: v for k, v in docs.items() if len(set(v)) > 1}
    checks["no_duplicates"] = (
        not dupes,
        f"{len(dupes)} Deltek document(s) claimed by more than one Procore record"
        if dupes
        else "no Deltek document is claimed twice",
    )
    if outcome.hidden_amounts:
        checks["read_back_matches"] = (
            False,
            "Deltek reads amounts back as 0: the API user's role cannot see amount fields "
            "(field-level security); give it visibility of Amount on AP and JE entries",
        )
    else:
        checks["read_back_matches"] = (
            not outcome.readback_mismatches,
            "; ".join(outcome.readback_mismatches[:10]) or "every posted batch reads back equal",
        )
    procore_total = sum((procore_amount(c.kind, c.record) for c in eligible), Decimal("0.00"))
    eligible_ids = {(c.kind, int(c.record.id)) for c in eligible}
    ledger_total = Decimal("0.00")
    for kind in kinds:
        ids = [rid for k, rid in eligible_ids if k == kind]
        for row in store.last_done(kind, ids).values():
            if row.document_json:
                ledger_total += cost_amount(document_from_json(row.document_json))
    open_items = sum(
        1 for r in outcome.results if r["status"] in ("quarantined", "failed", "aborted", "review")
    )
    checks["totals_match"] = (
        procore_total == ledger_total or open_items > 0,
        f"Procore approved {procore_total}, Deltek holds {ledger_total}"
        + (f" ({open_items} record(s) still open)" if open_items else ""),
    )
    return checks
