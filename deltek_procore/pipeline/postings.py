"""One posting step for a set of periods: candidates -> plan -> apply -> checks.

Used by the Dagster posting assets and by `sync --plan`. The whole step runs
under a lease named after the Deltek tenant, so two syncs of the same tenant
(two schedules, a sensor run and a backfill, two machines) take turns: the second
finds the ledger already says "posted" and posts nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel

from deltek_procore.mapping.config import MappingFile, mapping_hash
from deltek_procore.pipeline.ingest import parse
from deltek_procore.pipeline.reconciliation import expected_from_ledger, reconcile_period
from deltek_procore.pipeline.reference import ignore_from_mapping, mapping_context
from deltek_procore.posting.apply import Poster
from deltek_procore.posting.documents import JournalEntry, Voucher, document_to_json
from deltek_procore.posting.lookup import DeltekHoldings
from deltek_procore.posting.plan import (
    Candidate,
    Outcome,
    PlanRow,
    PostingSettings,
    invoice_owners,
    plan,
)
from deltek_procore.posting.translate import is_eligible, translate
from deltek_procore.posting.verify import Held, net_lines, planned_lines
from deltek_procore.procore.errors import DETAIL_GONE
from deltek_procore.state.states import OPEN, Finding, Reason
from deltek_procore.state.store import IN_DELTEK_STATES, AuditEvent, StateStore

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
        on_missing=d.on_missing,
        require_approval=d.require_approval,
        disabled_projects=mapping.disabled_projects(),
    )


def candidates(
    store: StateStore,
    kinds: Sequence[str],
    periods: Sequence[str],
    ids: Sequence[int] | None = None,
) -> list[Candidate]:
    out: list[Candidate] = []
    for kind in kinds:
        # a page of raw payloads at a time (a requisition with its G703 items is ~20 kB of
        # JSON, several times that parsed): only the parsed, declared fields stay for the month
        staged = (
            store.iter_staged(kind, periods=periods, page=CANDIDATE_PAGE)
            if ids is None
            else store.staged(kind, periods=periods, ids=ids)
        )
        for rec in staged:
            record = declared_only(parse(kind, rec.payload))
            out.append(Candidate(kind, record, rec.content_hash, rec.period))
    return out


CANDIDATE_PAGE = 250
SHOWN_ROWS = 50  # the changed rows a partition's plan table shows


def report_key(asset: str, run_id: str) -> str:
    """State-store reference holding a posting step's summary for one run."""
    return f"report:{asset}:{run_id}"


def report_rows_key(asset: str, run_id: str, period: str) -> str:
    """State-store reference holding one month's per-record result rows of that run."""
    return f"report:{asset}:{run_id}:{period}"


def declared_only(model: Any) -> Any:
    """Drop the fields a model keeps but does not declare (Procore sends many: item packages,
    origin data, creators...), except the detail-gone marker translation reads: a month's
    candidates are all in memory at once, and those fields were a third of them."""
    extra = getattr(model, "__pydantic_extra__", None)
    if extra:
        kept = {k: v for k, v in extra.items() if k == DETAIL_GONE}
        object.__setattr__(model, "__pydantic_extra__", kept)
    for value in getattr(model, "__dict__", {}).values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, BaseModel):
                declared_only(item)
    return model


@dataclass(frozen=True)
class CheckOutcome:
    """One asset check's verdict. `warn`: a failure that is a warning (records still open,
    or the check could not run), shown as WARN, never as a silent pass."""

    passed: bool
    detail: str
    warn: bool = False

    @property
    def severity(self) -> str:
        return "WARN" if self.warn and not self.passed else "ERROR"


@dataclass
class PostingReport:
    periods: list[str]
    kinds: tuple[str, ...]
    plan: list[PlanRow]
    outcome: Outcome | None = None
    checks: dict[str, CheckOutcome] = field(default_factory=dict)
    # one report per period of the run, so each monthly partition shows its own figures
    parts: dict[str, PostingReport] = field(default_factory=dict)
    awaiting_approval: str | None = None  # require_approval: the plan id that waits
    stale_approval: list[str] = field(default_factory=list)  # approved ids that no longer match

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
            "by_period": {p: part.counts for p, part in sorted(self.parts.items())},
            "awaiting_approval": self.awaiting_approval,
            "stale_approval": self.stale_approval,
            "checks": {
                k: {"passed": c.passed, "severity": c.severity, "detail": c.detail}
                for k, c in self.checks.items()
            },
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
    release: frozenset[tuple[str, int]] = frozenset(),
    approved_plans: frozenset[str] = frozenset(),
    progress: Callable[[str], None] | None = None,
    rows_to: Callable[[str, list[dict[str, Any]]], None] | None = None,
) -> PostingReport:
    """Plan and (with `apply`) post `kinds` for `periods`, then check against Deltek.

    `rows_to(period, rows)`: where each month's per-record result rows go once the month is
    done (the asset stores them). The report then keeps only what it shows (counts, totals,
    the rows a person acts on), so a run's memory does not grow with the months it spans.

    `release`: records a person replays (a document missing in Deltek is re-posted).
    Under `require_approval`, the whole plan is computed first and nothing is posted
    unless its id (a digest of every decision) is in `approved_plans`; otherwise it is
    stored for `deltek-procore approve PLAN_ID` and the report says so."""
    digest = mapping_hash(mapping)
    settings = settings_from(mapping)
    report = PostingReport(periods=list(periods), kinds=tuple(kinds), plan=[])
    with store.deltek_lease(tenant):
        ignore_from_mapping(store, mapping)
        ctx = mapping_context(store, mapping, digest)
        taken = invoice_owners(store)
        if settings.require_approval and apply and deltek is not None:
            gate = _approval_gate(
                store, ctx, settings, kinds, periods, ids, dict(taken), release, approved_plans,
                run_id,
            )  # fmt: skip
            if gate is not None:
                return gate
        poster = None
        if apply and deltek is not None:
            poster = Poster(
                store, deltek, settings, run_id=run_id, mapping_hash=digest, progress=progress
            )
            report.outcome = Outcome()
            holdings = DeltekHoldings.for_run(deltek, list(periods), run_id)
        per_period: list[tuple[str, dict[str, CheckOutcome]]] = []
        # One period at a time: memory stays flat however many months a backfill spans.
        for period in sorted(periods):
            cands = candidates(store, kinds, [period], ids)
            if not cands:
                continue
            rows = plan(cands, ctx, store, settings, taken=taken, release=release)
            part = report.parts[period] = PostingReport([period], tuple(kinds), plan=[])
            if poster is None:
                report.plan.extend(rows)
                part.plan = rows
                if rows_to is not None:
                    rows_to(period, [r.table_row() for r in rows])
                continue
            outcome = poster.apply(rows, holdings)
            part.outcome = outcome
            part.checks = evaluate_checks(store, cands, ctx, outcome, kinds, period, holdings)
            per_period.append((period, part.checks))
            if rows_to is not None:
                rows_to(period, outcome.results)
                outcome.shed_rows(SHOWN_ROWS)
            report.outcome.merge(outcome)
            del cands, rows, outcome  # before the next month's are read: one month at a time
        if poster is not None:
            report.checks = _merge_checks(per_period, periods)
    return report


def plan_id(rows: Sequence[PlanRow]) -> str:
    """A digest of every decision of a plan: the same live data gives the same id."""
    material = sorted(
        (
            r.kind,
            r.record_id,
            str(r.action),
            r.content_hash,
            document_to_json(r.document) if r.document is not None else r.reason,
        )
        for r in rows
    )
    return "plan-" + hashlib.sha256(json.dumps(material).encode()).hexdigest()[:16]


def _approval_gate(
    store: StateStore,
    ctx: Any,
    settings: PostingSettings,
    kinds: Sequence[str],
    periods: Sequence[str],
    ids: Sequence[int] | None,
    taken: dict[tuple[str, str], tuple[str, int]],
    release: frozenset[tuple[str, int]],
    approved: frozenset[str],
    run_id: str | None,
) -> PostingReport | None:
    """None when the run may post (its plan is approved, or posts nothing); else a
    report of the stored plan that waits for approval."""
    rows: list[PlanRow] = []
    for period in sorted(periods):
        cands = candidates(store, kinds, [period], ids)
        if cands:
            rows += plan(cands, ctx, store, settings, taken=taken, release=release)
    postable = [r for r in rows if r.action in ("create", "adjust", "reverse", "adopt")]
    if not postable:
        return None
    pid = plan_id(rows)
    if pid in approved:
        store.audit(
            [AuditEvent("plan_applied", None, None, {"plan": pid, "documents": len(postable)})],
            run_id,
        )
        return None
    stale = sorted(approved - {pid})
    store.put_reference(
        f"plan:{pid}",
        {
            "plan": pid,
            "kinds": list(kinds),
            "periods": list(periods),
            "documents": len(postable),
            "total": str(sum((r.amount or Decimal(0) for r in postable), Decimal("0.00"))),
            "rows": [r.table_row() for r in postable],
            "run_id": run_id,
        },
    )
    store.audit(
        [
            AuditEvent(
                "plan_waiting",
                None,
                None,
                {"plan": pid, "documents": len(postable), "refused_stale": stale},
            )
        ],
        run_id,
    )
    report = PostingReport(periods=list(periods), kinds=tuple(kinds), plan=rows)
    report.awaiting_approval = pid
    report.stale_approval = stale
    return report


def _merge_checks(
    per_period: list[tuple[str, dict[str, CheckOutcome]]], periods: Sequence[str]
) -> dict[str, CheckOutcome]:
    """One result per check: failed where any period failed, naming those periods; a
    warning only when every failing period only warns."""
    if len(per_period) == 1:
        return per_period[0][1]
    names = {name for _, checks in per_period for name in checks}
    merged: dict[str, CheckOutcome] = {}
    for name in sorted(names):
        failed = [(p, c[name]) for p, c in per_period if name in c and not c[name].passed]
        if failed:
            shown = "; ".join(f"{p}: {c.detail}" for p, c in failed[:3])
            more = f"; and {len(failed) - 3} more period(s)" if len(failed) > 3 else ""
            merged[name] = CheckOutcome(
                False,
                f"failed in {len(failed)} of {len(per_period)} period(s): {shown}{more}",
                warn=all(c.warn for _, c in failed),
            )
        else:
            merged[name] = CheckOutcome(
                True, f"passed for every period of {span_text(list(periods))}"
            )
    return merged


def span_text(periods: Sequence[str]) -> str:
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


def _held_amount(transtype: str, docs: Sequence[Held]) -> Decimal:
    """What Deltek's documents put on the record: a voucher's total; a JE's project-side
    lines (debits minus credits), as `cost_amount` does for a planned document."""
    lines = [line for h in docs for line in h.lines]
    if transtype == "JE":
        lines = [(k, a) for k, a in lines if k[1]]
    return sum((a for _, a in lines), Decimal("0.00"))


def _record_ids(rows: Sequence[Any], limit: int = 10) -> str:
    shown = ", ".join(f"{r.kind} {r.record_id}" for r in rows[:limit])
    return shown + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def evaluate_checks(
    store: StateStore,
    cands: Sequence[Candidate],
    ctx: Any,
    outcome: Outcome,
    kinds: Sequence[str],
    period: str,
    holdings: DeltekHoldings,
) -> dict[str, CheckOutcome]:
    """The posting asset's checks for one period. The ones about Deltek read Deltek
    (`holdings`, refreshed by every write of this run), never the connector's ledger."""
    latest: dict[tuple[str, int], Any] = {}
    for kind in kinds:
        for rid, row in store.latest(
            kind, [int(c.record.id) for c in cands if c.kind == kind]
        ).items():
            latest[(kind, rid)] = row
    eligible = [
        c
        for c in cands
        if is_eligible(c.kind, c.record, ctx)
        and getattr(latest.get((c.kind, int(c.record.id))), "status", None) != "disabled"
    ]
    quarantined = [r for r in outcome.results if r["status"] == "quarantined"]
    unmapped = [r for r in quarantined if r.get("code") in (Reason.NO_PROJECT, Reason.NO_ACCOUNT)]
    checks: dict[str, CheckOutcome] = {}
    checks["every_line_mapped"] = CheckOutcome(
        not unmapped,
        f"{len(unmapped)} record(s) have lines without a project or GL account"
        if unmapped
        else "every approved line has a project and GL account",
        warn=True,
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
    checks["complete"] = CheckOutcome(
        not missing,
        f"{len(missing)} approved record(s) have no ledger row: "
        + ", ".join(f"{c.kind} {c.record.id}" for c in missing[:10])
        if missing
        else f"all {len(eligible)} approved records of {period} are in the ledger",
    )
    rec = reconcile_period(store, None, period, kinds=kinds, holdings=holdings, record=False)
    open_rows = [
        row
        for c in eligible
        if (row := latest.get((c.kind, int(c.record.id)))) is not None and row.status in OPEN
    ]
    gone = rec.of(Finding.MISSING)
    twins = rec.of(Finding.DUPLICATE)
    claims: dict[tuple[str, str], set[str]] = {}
    for row in store.ledger_rows(kinds=kinds, periods=[period], statuses=IN_DELTEK_STATES):
        claims.setdefault((row.deltek_vendor or "", row.document or ""), set()).add(
            f"{row.kind} {row.record_id}"
        )
    claimed_twice = {k: v for k, v in claims.items() if len(v) > 1}
    problems = [f"{d.kind} {d.record_id}: {d.detail}" for d in twins] + [
        f"{' / '.join(k)} claimed by {', '.join(sorted(v))}" for k, v in claimed_twice.items()
    ]
    checks["no_duplicates"] = CheckOutcome(
        not problems,
        f"{len(problems)} duplicate(s) in Deltek: " + "; ".join(problems[:5])
        if problems
        else "Deltek shows each of the period's documents once",
    )
    changed = rec.of(Finding.CHANGED)
    if rec.hidden_amounts or outcome.hidden_amounts:
        checks["read_back_matches"] = CheckOutcome(
            False,
            "Deltek reads amounts back as 0: the API user's role cannot see amount fields "
            "(field-level security); give it visibility of Amount on AP and JE entries",
        )
    else:
        differ = [f"{d.kind} {d.record_id}: {d.detail}" for d in changed]
        differ += outcome.readback_mismatches
        differ += [f"{d.kind} {d.record_id}: not in Deltek" for d in gone]
        checks["read_back_matches"] = CheckOutcome(
            not differ,
            f"{len(differ)} document(s) differ from the plan in Deltek: " + "; ".join(differ[:5])
            if differ
            else f"Deltek shows all {rec.checked} document(s) with the planned lines",
        )
    checks["totals_match"] = _totals_check(eligible, ctx, holdings, store, kinds, period, open_rows)
    return checks


def _totals_check(
    eligible: Sequence[Candidate],
    ctx: Any,
    holdings: DeltekHoldings,
    store: StateStore,
    kinds: Sequence[str],
    period: str,
    open_rows: Sequence[Any],
) -> CheckOutcome:
    """Procore's approved total for the period against Deltek's total of the connector's
    documents. Records Deltek should hold are compared to the cent (per project and
    account where they differ: a failure); records still open make it a warning."""
    expected, _known = expected_from_ledger(store, kinds, period)
    by_record = {(e.kind, e.record_id): e for e in expected}
    procore_total = sum((procore_amount(c.kind, c.record) for c in eligible), Decimal("0.00"))
    procore_held = deltek_total = Decimal("0.00")
    planned: list[tuple[Any, Decimal]] = []
    held_lines: list[tuple[Any, Decimal]] = []
    for c in eligible:
        exp = by_record.get((c.kind, int(c.record.id)))
        if exp is None:
            continue
        docs = [h for key in exp.keys for h in holdings.by_key[exp.transtype].get(key, [])]
        procore_held += procore_amount(c.kind, c.record)
        deltek_total += _held_amount(exp.transtype, docs)
        held_lines += [line for h in docs for line in h.lines]
        doc = translate(c.kind, c.record, ctx)
        if isinstance(doc, (Voucher, JournalEntry)):
            planned += planned_lines(doc)
    if procore_held != deltek_total:
        want, got = net_lines(planned), net_lines(held_lines)
        where = [
            f"{k[1] or '-'} / {k[0]}: Procore {want.get(k, 0)}, Deltek {got.get(k, 0)}"
            for k in sorted(set(want) | set(got))
            if want.get(k, Decimal(0)) != got.get(k, Decimal(0))
        ]
        return CheckOutcome(
            False,
            f"Procore approved {procore_held} for the records posted, Deltek holds "
            f"{deltek_total}; differs at " + ("; ".join(where[:5]) or "the document totals"),
        )
    detail = f"Procore approved {procore_total}, Deltek holds {deltek_total}"
    if open_rows:
        return CheckOutcome(
            False,
            f"{detail}; {len(open_rows)} record(s) still open "
            f"(quarantined, failed or in review): {_record_ids(list(open_rows))}",
            warn=True,
        )
    if procore_total != deltek_total:
        return CheckOutcome(
            False, f"{detail}: approved records with no document in Deltek", warn=True
        )
    return CheckOutcome(True, detail + " for the period's records")
