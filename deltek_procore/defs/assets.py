"""The asset graph: Procore records -> maps -> Deltek postings.

Each asset is a few lines over the plain layers in `deltek_procore.pipeline`;
the data itself lives in the state store, so assets return `MaterializeResult`
with metadata a person reads in the UI.
"""

# No `from __future__ import annotations` here: Dagster reads these annotations at runtime.
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import dagster as dg

from deltek_procore.defs.resources import (
    DeltekResource,
    MappingResource,
    ProcoreResource,
    StateStoreResource,
)
from deltek_procore.defs.scope import TenantScope
from deltek_procore.pipeline import ingest, reference
from deltek_procore.pipeline.completeness import read_counts
from deltek_procore.pipeline.postings import (
    AP_KINDS,
    JE_KINDS,
    SHOWN_ROWS,
    CheckOutcome,
    PostingReport,
    report_key,
    report_rows_key,
    run_postings,
    span_text,
)
from deltek_procore.pipeline.reconciliation import reconcile_period
from deltek_procore.posting.lookup import DeltekHoldings

RETRY = dg.RetryPolicy(
    max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.FULL
)
# One pool per tenant (TenantScope.pool; the implicit tenant's is named from DELTEK_API_URL's
# host and path): posting steps of one tenant never overlap, across runs and machines; other
# tenants are not held up.
APPROVED_TAG = "deltek-procore/approved-plans"  # set by `deltek-procore approve`
CATCH_UP_TAG = "deltek-procore/catch-up-of"  # on a catch-up run: the window run it follows
CHECK_DESCRIPTIONS = {
    "every_line_mapped": "Every approved line has a Deltek project and GL account (records held "
    "back for a mapping reason make it warn).",
    "complete": "Every approved record of the month has a ledger row: nothing fell through.",
    "no_duplicates": "Deltek shows each of the month's documents once, and no two Procore "
    "records claim one Deltek document.",
    "read_back_matches": "Deltek shows every document the connector placed with the planned "
    "lines and amounts (read from Deltek, not from the ledger).",
    "totals_match": "Procore's approved total for the month equals Deltek's total of the "
    "connector's documents, to the cent; open records make it warn with their count.",
}
CHECKS = tuple(CHECK_DESCRIPTIONS)
TABLE_ROWS = SHOWN_ROWS
# Each log line is an event-log write: posting progress goes out at most this often.
PROGRESS_EVERY_S = 15.0


def every(seconds: float, say: Callable[[str], None]) -> Callable[[str], None]:
    """`say`, at most once per `seconds` (the first message always)."""
    last = [-seconds]

    def throttled(message: str) -> None:
        now = time.monotonic()
        if now - last[0] >= seconds:
            last[0] = now
            say(message)

    return throttled


class IngestConfig(dg.Config):
    """full: re-read everything; reconcile: re-read the current and previous period's
    updates; ids: only these records (a webhook-driven run)."""

    full: bool = False
    reconcile: bool = False
    ids: list[int] = []


class PostingConfig(dg.Config):
    """plan_only: compute and show the plan, write nothing; ids: only these records;
    approved_plans: plan ids a person approved (mapping defaults `require_approval: true`),
    as `deltek-procore approve PLAN_ID` passes them (or set here when launching from the UI)."""

    plan_only: bool = False
    ids: list[int] = []
    approved_plans: list[str] = []


# ---- postings ----------------------------------------------------------------------------------
RESULT_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("kind", "string"),
        dg.TableColumn("record_id", "int"),
        dg.TableColumn("period", "string"),
        dg.TableColumn("action", "string"),
        dg.TableColumn("vendor", "string"),
        dg.TableColumn("document", "string"),
        dg.TableColumn("account", "string"),
        dg.TableColumn("amount", "string"),
        dg.TableColumn("batch", "string"),
        dg.TableColumn("reason", "string"),
    ]
)


def _table(rows: list[dict[str, Any]]) -> dg.TableMetadataValue:
    records = [
        dg.TableRecord({c.name: _cell(r.get(c.name), c.type) for c in RESULT_SCHEMA.columns})
        for r in rows[:TABLE_ROWS]
    ]
    return dg.MetadataValue.table(records=records, schema=RESULT_SCHEMA)


def _cell(value: Any, kind: str) -> Any:
    if kind == "int":
        return int(value) if value not in (None, "") else 0
    return "" if value is None else str(value)


def period_metadata(report: PostingReport) -> dict[str, Any]:
    """What one month's partition shows: that month's counts, totals and tables only."""
    counts = report.counts
    rows = report.outcome.results if report.outcome else [r.table_row() for r in report.plan]
    changed = [r for r in rows if r.get("status", r["action"]) not in ("skipped", "skip")]
    return {
        "summary": dg.MetadataValue.md(_summary_table(report)),
        "posted": counts.get("posted", 0),
        "adopted (already in Deltek)": counts.get("adopted", 0),
        "adjusted": counts.get("adjusted", 0),
        "skipped (posted earlier, unchanged, or nothing to post)": counts.get(
            "skipped", counts.get("skip", 0)
        ),
        "quarantined": counts.get("quarantined", counts.get("quarantine", 0)),
        "review": counts.get("review", 0),
        "failed": counts.get("failed", 0) + counts.get("aborted", 0),
        "posted_total": dg.MetadataValue.text(str(report.total("posted", "adjusted"))),
        "quarantine": _table(report.quarantined()),
        "plan": _table(changed),
    }


def _summary_table(report: PostingReport) -> str:
    """A small markdown table: one row per month, never a line of 24 period names."""
    parts = report.parts or {p: report for p in report.periods}
    lines = [
        "| period | posted | adopted | adjusted | quarantined | review | failed | posted total |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for period in sorted(parts):
        c = parts[period].counts
        lines.append(
            f"| {period} | {c.get('posted', 0)} | {c.get('adopted', 0)} | {c.get('adjusted', 0)}"
            f" | {c.get('quarantined', c.get('quarantine', 0))} | {c.get('review', 0)}"
            f" | {c.get('failed', 0) + c.get('aborted', 0)}"
            f" | {parts[period].total('posted', 'adjusted')} |"
        )
    return "\n".join(lines)


def posting_result(
    report: PostingReport,
    asset_key: dg.AssetKey | str,
    context: dg.AssetExecutionContext | None = None,
) -> dg.MaterializeResult:
    """Each partition gets its own month's metadata; the checks cover the whole run."""
    if context is not None and context.has_partition_key_range:
        for period in context.partition_keys:
            part = report.parts.get(period) or PostingReport([period], report.kinds, plan=[])
            context.add_asset_metadata(period_metadata(part), partition_key=period)
        metadata = None
    else:
        metadata = period_metadata(report)
    check_results = [
        dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=name,
            passed=check.passed,
            severity=dg.AssetCheckSeverity.WARN
            if check.severity == "WARN"
            else dg.AssetCheckSeverity.ERROR,
            description=check.detail[:1000],
            metadata={"detail": check.detail},
        )
        for name, check in report.checks.items()
    ]
    return dg.MaterializeResult(metadata=metadata, check_results=check_results)


def _results(report: PostingReport) -> list[dict[str, Any]]:
    if report.outcome is not None:
        return report.outcome.results
    return [r.table_row() for r in report.plan]


FINDING_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn(name, "string")
        for name in (
            "finding",
            "kind",
            "record_id",
            "document",
            "batch",
            "planned",
            "in_deltek",
            "detail",
        )
    ]
)


READ_COMPLETE = "read_complete"
READ_COMPLETE_TEXT = (
    "Every Procore listing of this read yielded as many rows as the Total Procore announced for "
    "the same filters (a second count, independent of paging). Fails naming each listing that "
    "differs; a short read keeps the cursor, so the next run reads those records again."
)


def read_complete_results(
    key: dg.AssetKey, results: list[Any], counted: bool, skipped: str | None = None
) -> list[dg.AssetCheckResult]:
    """The `read_complete` verdict of a Procore spend asset (none where it has no check)."""
    if not counted:
        return []
    if skipped is not None:
        outcome_passed, detail = True, f"no listing read in this run ({skipped})"
    else:
        outcome = read_counts(results)
        outcome_passed, detail = outcome.passed, outcome.detail
    return [
        dg.AssetCheckResult(
            asset_key=key,
            check_name=READ_COMPLETE,
            passed=outcome_passed,
            description=detail[:1000],
            metadata={"detail": detail},
        )
    ]


# ---- the graph of one tenant -------------------------------------------------------------------
def build_assets(scope: TenantScope) -> list[dg.AssetsDefinition]:
    """Every asset of one tenant, keyed under its prefix (none for the implicit tenant),
    partitioned by its months, posting in its pool."""
    tenant = scope.tenant

    def procore_asset(
        name: str, description: str, deps: tuple[str, ...] = (), *, counted: bool = False
    ) -> Callable[..., dg.AssetsDefinition]:
        checks = (
            [
                dg.AssetCheckSpec(
                    READ_COMPLETE, asset=scope.key(name), description=READ_COMPLETE_TEXT
                )
            ]
            if counted
            else []
        )
        return dg.asset(
            key=scope.key(name),
            group_name=scope.name("procore"),
            kinds={"procore"},
            deps=[scope.key(d) for d in deps],
            retry_policy=RETRY,
            description=description,
            check_specs=checks,
        )

    def company_asset(name: str, kind: str, description: str) -> dg.AssetsDefinition:
        @procore_asset(name, description)
        def _asset(
            context: dg.AssetExecutionContext,
            config: IngestConfig,
            procore: ProcoreResource,
            state: StateStoreResource,
        ) -> dg.MaterializeResult:
            result = ingest.ingest_company(
                procore.client(tenant),
                state.store(tenant),
                kind,
                full=config.full or config.reconcile,
            )
            context.log.info(f"{name}: {result.fetched} read, {result.changed} changed")
            return dg.MaterializeResult(metadata=result.metadata())

        return _asset

    def project_asset(
        name: str,
        kinds: tuple[str, ...],
        description: str,
        after: tuple[str, ...] = (),
        *,
        counted: bool = True,
    ) -> dg.AssetsDefinition:
        @procore_asset(name, description, deps=("procore_projects", *after), counted=counted)
        def _asset(
            context: dg.AssetExecutionContext,
            config: IngestConfig,
            procore: ProcoreResource,
            state: StateStoreResource,
        ) -> dg.MaterializeResult:
            store = state.store(tenant)
            follows = context.run.tags.get(CATCH_UP_TAG)
            if follows and config.ids:
                # The nightly window run this catch-up follows has just re-read everything
                # updated in its window; a record it did not bring back has not changed since
                # it was staged. Reading the ids again would only cost calls.
                context.log.info(f"{len(config.ids)} record(s) as staged by run {follows}")
                return dg.MaterializeResult(
                    metadata={"fetched": 0, "staged_by_run": follows, "records": len(config.ids)},
                    check_results=read_complete_results(
                        scope.key(name), [], counted, f"read by run {follows}"
                    ),
                )
            project_ids = [r.record_id for r in store.staged("project")]
            metadata: dict[str, Any] = {}
            results: list[ingest.IngestResult] = []
            for kind in kinds:
                since = store.get_cursor(f"procore:{kind}")
                window = ingest.reconcile_window(since=since) if config.reconcile else None
                result = ingest.ingest_projects(
                    procore.client(tenant),
                    store,
                    kind,
                    project_ids,
                    full=config.full,
                    window=window,
                    ids=config.ids or None,
                )
                context.log.info(f"{kind}: {result.fetched} read, {result.changed} changed")
                prefix = f"{kind}_" if len(kinds) > 1 else ""
                metadata.update({prefix + k: v for k, v in result.metadata().items()})
                results.append(result)
            return dg.MaterializeResult(
                metadata=metadata,
                check_results=read_complete_results(scope.key(name), results, counted),
            )

        return _asset

    procore_projects = company_asset(
        "procore_projects", "project", "Procore projects of the company."
    )
    procore_vendors = company_asset("procore_vendors", "vendor", "Company Directory vendors.")
    procore_cost_types = company_asset(
        "procore_cost_types", "cost_type", "Line item types (cost types) of the company."
    )
    procore_cost_codes = project_asset(
        "procore_cost_codes",
        ("cost_code",),
        "Cost codes of every permitted project.",
        counted=False,
    )
    procore_subcontractor_invoices = project_asset(
        "procore_subcontractor_invoices",
        ("requisition",),
        "Subcontractor invoices (Procore requisitions) with their items, every status.",
    )
    procore_direct_costs = project_asset(
        "procore_direct_costs", ("direct_cost",), "Direct costs with line items, every status."
    )
    procore_commitments = project_asset(
        "procore_commitments",
        ("work_order", "purchase_order"),
        "Subcontracts (work order contracts) and purchase orders with line items.",
    )
    procore_change_orders = project_asset(
        "procore_change_orders",
        ("change_order",),
        "Commitment change orders with line items.",
        # after the contracts: a change order line takes its cost code from the contract line
        # it changes, staged with the contract, instead of one more read per contract
        after=("procore_commitments",),
    )

    # ---- Deltek reference data ----------------------------------------------------------------
    def reference_asset(name: str) -> Callable[..., dg.AssetsDefinition]:
        return dg.asset(
            key=scope.key(name),
            group_name=scope.name("deltek_reference"),
            kinds={"deltek"},
            retry_policy=RETRY,
        )

    @reference_asset("deltek_projects")
    def deltek_projects(deltek: DeltekResource, state: StateStoreResource) -> dg.MaterializeResult:
        """Deltek projects and phases (WBS1/WBS2/WBS3)."""
        rows = deltek.client(tenant).projects()
        state.store(tenant).put_reference("deltek_projects", rows)
        return dg.MaterializeResult(metadata={"projects": len(rows)})

    @reference_asset("deltek_firms")
    def deltek_firms(deltek: DeltekResource, state: StateStoreResource) -> dg.MaterializeResult:
        """Deltek firms (clients and vendors are one hub)."""
        rows = deltek.client(tenant).firms()
        state.store(tenant).put_reference("deltek_firms", rows)
        vendors = sum(1 for r in rows if str(r.get("VendorInd", "")).upper() == "Y")
        return dg.MaterializeResult(metadata={"firms": len(rows), "vendor_firms": vendors})

    @reference_asset("deltek_gl_accounts")
    def deltek_gl_accounts(
        context: dg.AssetExecutionContext, deltek: DeltekResource, state: StateStoreResource
    ) -> dg.MaterializeResult:
        """Accounts with activity in GLSummary (DELTEK_ACCOUNTS_PATH; see README). Not the whole
        chart: an account missing there is only not used yet, and Deltek checks it on posting."""
        rows = deltek.client(tenant).accounts()
        state.store(tenant).put_reference("deltek_gl_accounts", rows)
        if rows is None:
            context.log.warning(
                "Deltek's GLSummary is not readable at DELTEK_ACCOUNTS_PATH; Deltek checks every "
                "account when a batch posts"
            )
            return dg.MaterializeResult(metadata={"readable": False})
        active = sum(1 for r in rows if str(r.get("Status", "A")) == "A")
        return dg.MaterializeResult(
            metadata={"readable": True, "accounts": len(rows), "active": active}
        )

    # ---- maps ----------------------------------------------------------------------------------
    maps_group = scope.name("maps")

    @dg.asset(
        key=scope.key("project_map"),
        group_name=maps_group,
        deps=[procore_projects, deltek_projects],
    )
    def project_map(state: StateStoreResource, mapping: MappingResource) -> dg.MaterializeResult:
        """Procore project -> Deltek WBS1/2/3 (override, else project_number = WBS1)."""
        result = reference.build_project_map(state.store(tenant), mapping.load(tenant))
        problems = {k: v["problem"] for k, v in result.items() if v.get("problem")}
        return dg.MaterializeResult(
            metadata={
                "matched": len(result) - len(problems),
                "unmatched": len(problems),
                "problems": dg.MetadataValue.md(
                    "\n".join(f"- project {k}: {v}" for k, v in problems.items()) or "none"
                ),
            }
        )

    @dg.asset(
        key=scope.key("vendor_firm_map"),
        group_name=maps_group,
        deps=[
            procore_vendors,
            deltek_firms,
            procore_subcontractor_invoices,
            procore_direct_costs,
            procore_commitments,
        ],
        kinds={"deltek"},
    )
    def vendor_firm_map(
        context: dg.AssetExecutionContext,
        state: StateStoreResource,
        mapping: MappingResource,
        deltek: DeltekResource,
    ) -> dg.MaterializeResult:
        """Procore vendor -> Deltek vendor number; creates the firms approved spend needs.

        Under `require_approval` a firm is a write like any other: only a run launched by
        `deltek-procore approve` (tag APPROVED_TAG) creates firms; before that, documents of
        vendors without a firm wait in the plan, which names them."""
        store = state.store(tenant)
        loaded = mapping.load(tenant)
        create = not loaded.defaults.require_approval or bool(context.run.tags.get(APPROVED_TAG))
        with store.deltek_lease(deltek.tenant(tenant)):
            result = reference.build_vendor_map(
                store, loaded, deltek.client(tenant), run_id=context.run.run_id, create=create
            )
        if not create:
            context.log.info("require_approval: no firm created before a plan is approved")
        if result.created:
            context.log.info(f"created {len(result.created)} vendor firm(s) in Deltek")
        for reason in result.failed.values():  # only these vendors' documents wait (failed)
            context.log.warning(reason)
        return dg.MaterializeResult(
            metadata={
                "linked": result.linked,
                "created": len(result.created),
                "failed": len(result.failed),
                "failed_list": dg.MetadataValue.md(
                    "\n".join(f"- vendor {k}: {v}" for k, v in result.failed.items()) or "none"
                ),
                "problems": len(result.problems),
                "by_method": dg.MetadataValue.json(result.methods),
                "problem_list": dg.MetadataValue.md(
                    "\n".join(f"- vendor {k}: {v}" for k, v in result.problems.items()) or "none"
                ),
            }
        )

    @dg.asset(
        key=scope.key("gl_account_map"),
        group_name=maps_group,
        deps=[
            procore_cost_codes,
            procore_cost_types,
            deltek_gl_accounts,
            procore_subcontractor_invoices,
            procore_direct_costs,
            procore_commitments,
            procore_change_orders,
        ],
    )
    def gl_account_map(state: StateStoreResource, mapping: MappingResource) -> dg.MaterializeResult:
        """Cost code x cost type -> GL account; which accounts Deltek has confirmed by use."""
        result = reference.build_gl_map(state.store(tenant), mapping.load(tenant))
        unmapped = result["unmapped"]
        return dg.MaterializeResult(
            metadata={
                "pairs_in_use": len(result["pairs"]),
                "unmapped_pairs": len(unmapped),
                "bad_accounts": len(result["bad_accounts"]),
                "chart_readable": result["chart_readable"],
                "accounts_confirmed": ", ".join(result["confirmed_accounts"]) or "none",
                "accounts_not_yet_used_in_deltek": ", ".join(result["not_yet_used_accounts"])
                or "none",
                "unmapped": dg.MetadataValue.md(
                    "\n".join(
                        f"- {u['cost_code']} / {u['cost_type'] or '(none)'}: {u['lines']} line(s)"
                        for u in unmapped
                    )
                    or "none"
                ),
            }
        )

    # ---- postings ------------------------------------------------------------------------------
    postings_group = scope.name("postings")

    def posting_asset(
        name: str, kinds: tuple[str, ...], deps: list[Any], description: str
    ) -> dg.AssetsDefinition:
        key = scope.key(name)

        @dg.asset(
            key=key,
            group_name=postings_group,
            kinds={"deltek"},
            deps=deps,
            partitions_def=scope.partitions,
            backfill_policy=dg.BackfillPolicy.single_run(),
            pool=scope.pool,
            check_specs=[
                dg.AssetCheckSpec(c, asset=key, description=CHECK_DESCRIPTIONS[c]) for c in CHECKS
            ],
            description=description,
        )
        def _asset(
            context: dg.AssetExecutionContext,
            config: PostingConfig,
            deltek: DeltekResource,
            state: StateStoreResource,
            mapping: MappingResource,
        ) -> dg.MaterializeResult:
            periods = list(context.partition_keys)
            store = state.store(tenant)
            report = run_postings(
                store=store,
                deltek=deltek.client(tenant),
                mapping=mapping.load(tenant),
                kinds=kinds,
                periods=periods,
                tenant=deltek.tenant(tenant),
                run_id=context.run.run_id,
                apply=not config.plan_only,
                ids=config.ids or None,
                approved_plans=frozenset(config.approved_plans),
                progress=every(PROGRESS_EVERY_S, context.log.info),
                rows_to=lambda period, rows: store.put_reference(
                    report_rows_key(name, context.run.run_id, period), rows
                ),
            )
            if config.plan_only:
                # Checks only make sense after apply; report them skipped-as-passed with a note.
                report.checks = {
                    c: CheckOutcome(True, "plan only: nothing applied") for c in CHECKS
                }
            # The CLI prints this run's own report after an in-process run (keyed by run id,
            # so two syncs never print each other's); the UI shows the metadata below.
            summary = {
                "run_id": context.run.run_id,
                **report.summary(),
                "shown_rows": _results(report),
            }
            store.put_reference(report_key(name, context.run.run_id), summary)
            store.put_reference(f"report:{name}", summary)
            context.log.info(f"{name} {periods[0]}..{periods[-1]}: {report.counts}")
            return posting_result(report, key, context)

        return _asset

    deltek_ap_invoices = posting_asset(
        "deltek_ap_invoices",
        AP_KINDS,
        [
            project_map,
            vendor_firm_map,
            gl_account_map,
            procore_subcontractor_invoices,
            procore_direct_costs,
        ],
        "Approved subcontractor invoices and direct costs as Deltek AP vouchers.",
    )
    deltek_commitment_journal_entries = posting_asset(
        "deltek_commitment_journal_entries",
        JE_KINDS,
        [project_map, vendor_firm_map, gl_account_map, procore_commitments, procore_change_orders],
        "Approved subcontracts, purchase orders and change orders as balanced journal entries.",
    )

    reconciliation_key = scope.key("deltek_reconciliation")

    @dg.asset(
        key=reconciliation_key,
        group_name=postings_group,
        kinds={"deltek"},
        deps=[deltek_ap_invoices, deltek_commitment_journal_entries],
        partitions_def=scope.partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=scope.pool,
        check_specs=[
            dg.AssetCheckSpec(
                "deltek_matches_ledger",
                asset=reconciliation_key,
                description="Every document the ledger says is in Deltek is there with the same "
                "lines, once, and Deltek holds no connector document the ledger does not know.",
            )
        ],
        description="Reads what Deltek holds for the month (open batches and posted ledger) and "
        "records what differs from the ledger: missing, changed, duplicate or unknown documents.",
    )
    def deltek_reconciliation(
        context: dg.AssetExecutionContext,
        config: PostingConfig,
        deltek: DeltekResource,
        state: StateStoreResource,
    ) -> dg.MaterializeResult:
        if config.plan_only:
            return PLAN_ONLY_RECONCILIATION
        return reconciliation_result(context, deltek.client(tenant), state.store(tenant))

    return [
        procore_projects,
        procore_vendors,
        procore_cost_types,
        procore_cost_codes,
        procore_subcontractor_invoices,
        procore_direct_costs,
        procore_commitments,
        procore_change_orders,
        deltek_projects,
        deltek_firms,
        deltek_gl_accounts,
        project_map,
        vendor_firm_map,
        gl_account_map,
        deltek_ap_invoices,
        deltek_commitment_journal_entries,
        deltek_reconciliation,
    ]


PLAN_ONLY_RECONCILIATION = dg.MaterializeResult(
    metadata={"summary": dg.MetadataValue.md("plan only: Deltek not read")},
    check_results=[
        dg.AssetCheckResult(
            check_name="deltek_matches_ledger",
            passed=True,
            description="plan only: nothing applied",
        )
    ],
)


def reconciliation_result(
    context: dg.AssetExecutionContext, client: Any, store: Any
) -> dg.MaterializeResult:
    """deltek_reconciliation's body: compare what Deltek holds with the ledger, per month."""
    periods = list(context.partition_keys)
    # What the posting steps of this run read from Deltek, kept current by their writes and
    # checked against the landing lists: Deltek is read once per run.
    holdings = DeltekHoldings.for_run(client, periods, context.run.run_id)
    found = []
    checked = 0
    for period in periods:
        result = reconcile_period(store, client, period, holdings=holdings)
        checked += result.checked
        found += result.differences
    DeltekHoldings.end_run(context.run.run_id)
    counts = Counter(str(d.finding) for d in found)
    summary = f"**{span_text(periods)}**: {checked} record(s) compared with Deltek; " + (
        ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no differences"
    )
    table = dg.MetadataValue.table(
        records=[
            dg.TableRecord({k: str(v) for k, v in d.as_row().items() if k != "period"})
            for d in found[:TABLE_ROWS]
        ],
        schema=FINDING_SCHEMA,
    )
    ids = ", ".join(
        f"{d.finding} {d.kind or d.transtype} {d.record_id or d.key}" for d in found[:20]
    )
    return dg.MaterializeResult(
        metadata={
            "summary": dg.MetadataValue.md(summary),
            "compared": checked,
            **{f"{k}": counts.get(k, 0) for k in ("missing", "changed", "duplicate", "unknown")},
            "differences": table,
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="deltek_matches_ledger",
                passed=not found,
                description=f"{len(found)} difference(s) with Deltek: {ids}"
                if found
                else f"Deltek agrees with the ledger on {checked} record(s)",
                metadata={"record_ids": ids or "none"},
            )
        ],
    )


def __getattr__(name: str) -> Any:
    """The implicit tenant's assets under their names before tenants (ALL_ASSETS,
    deltek_ap_invoices, ...) and its POSTING_POOL."""
    if name.startswith("__"):
        raise AttributeError(name)
    from deltek_procore.defs.tenant import implicit_parts

    parts = implicit_parts()
    if name == "ALL_ASSETS":
        return parts.assets
    if name == "POSTING_POOL":
        return parts.scope.pool
    for asset in parts.assets:
        if asset.key.path[-1] == name:
            return asset
    raise AttributeError(name)
