"""The sync's steps, in their one order: ingest, reference, maps, plan, apply, verify.

The Dagster graph runs these steps as assets (their dependencies are this order);
`sync --plan`, `backfill --plan` and the tests run them here, in-process. A plan runs the
very same steps with Deltek's writes and the state store's decisions captured instead of
made (`DryRunDeltek`, `DryRunStore`), so it shows every firm that would be created and
every document with the decision the apply would take, and writes nothing to Deltek.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from deltek_procore.mapping.config import MappingFile
from deltek_procore.pipeline import ingest, reference
from deltek_procore.pipeline.postings import PostingReport, run_postings
from deltek_procore.posting.documents import AP_KINDS, JE_KINDS
from deltek_procore.posting.lookup import DeltekHoldings
from deltek_procore.posting.plan import PlanRow
from deltek_procore.posting.verify import lookup_verdict
from deltek_procore.state.store import StateStore

STEP_ORDER = ("ingest", "reference", "maps", "plan", "apply", "verify")
POSTING_STEPS = (("deltek_ap_invoices", AP_KINDS), ("deltek_commitment_journal_entries", JE_KINDS))
COMPANY_KINDS = ("project", "vendor", "cost_type")
PROJECT_KINDS = ("cost_code", "requisition", "direct_cost", "work_order", "purchase_order",
                 "change_order")  # fmt: skip
PLANNED_CLIENT_ID = "(created by the sync)"


class DryRunDeltek:
    """Deltek for a plan: reads go to Deltek, a firm creation is recorded, not sent; any
    other write is refused (a plan must never reach it)."""

    def __init__(self, deltek: Any) -> None:
        self._deltek = deltek
        self.firms_planned: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        if name.startswith(("create_", "post_", "delete_")):
            raise RuntimeError(f"a plan must not write to Deltek ({name})")
        return getattr(self._deltek, name)

    def create_vendor_firm(self, *, name: str, vendor: str, fed_id: str | None = None) -> dict:
        firm = {"Vendor": vendor, "Name": name, "FedID": fed_id or "", "VendorInd": "Y",
                "ClientID": PLANNED_CLIENT_ID}  # fmt: skip
        self.firms_planned.append(firm)
        return firm


class DryRunStore:
    """The state store for a plan: reads go to the store; what the maps would record
    (reference snapshots, vendor links, ignore rules, audit events) stays in memory."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._references: dict[str, Any] = {}
        self._links: dict[int, dict[str, Any]] = {}
        self._ignored: dict[tuple[str, int], str] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def put_reference(self, name: str, payload: Any) -> None:
        self._references[name] = payload

    def get_reference(self, name: str, default: Any = None) -> Any:
        if name in self._references:
            return self._references[name]
        return self._store.get_reference(name, default)

    def link_vendor(self, procore_vendor_id: int, deltek_vendor: str, client_id: Any,
                    method: str, **_: Any) -> None:  # fmt: skip
        self._links[int(procore_vendor_id)] = {
            "deltek_vendor": deltek_vendor,
            "client_id": client_id,
            "method": method,
        }

    def vendor_links(self) -> dict[int, dict[str, Any]]:
        return {**self._store.vendor_links(), **self._links}

    def ignore(self, kind: str, record_id: int, reason: str) -> None:
        self._ignored[(kind, int(record_id))] = reason

    def ignored(self, kind: str) -> dict[int, str]:
        out = dict(self._store.ignored(kind))
        out.update({rid: why for (k, rid), why in self._ignored.items() if k == kind})
        return out

    def audit(self, events: Any, run_id: str | None = None) -> int:
        return 0

    @contextmanager
    def lease(self, name: str, **kwargs: Any) -> Iterator[str]:
        with self._store.lease(name, **kwargs) as holder:
            yield holder


@dataclass
class SyncPlan:
    """What a sync of `periods` would do: the firms it creates and each posting step's plan."""

    periods: list[str]
    firms: list[dict[str, Any]] = field(default_factory=list)
    reports: dict[str, PostingReport] = field(default_factory=dict)


def ingest_all(procore: Any, store: StateStore) -> None:
    """Step 1: Procore into the staging tables (company lists, then each project's kinds)."""
    for kind in COMPANY_KINDS:
        ingest.ingest_company(procore, store, kind)
    projects = [r.record_id for r in store.staged("project")]
    for kind in PROJECT_KINDS:
        ingest.ingest_projects(procore, store, kind, projects)


def build_maps(store: Any, mapping: MappingFile, deltek: Any, run_id: str | None = None) -> Any:
    """Step 3: project, vendor (creating missing firms through `deltek`) and GL maps."""
    reference.build_project_map(store, mapping)
    vendors = reference.build_vendor_map(store, mapping, deltek, run_id=run_id)
    reference.build_gl_map(store, mapping)
    return vendors


def plan_sync(
    procore: Any,
    deltek: Any,
    store: StateStore,
    mapping: MappingFile,
    periods: list[str],
    *,
    tenant: str,
    ingest_first: bool = True,
) -> SyncPlan:
    """Every step up to the plan, with nothing written to Deltek and no decision stored."""
    if ingest_first:
        ingest_all(procore, store)  # reading Procore into staging is not a decision
    dry_store, dry_deltek = DryRunStore(store), DryRunDeltek(deltek)
    reference.refresh_deltek(dry_deltek, dry_store)
    build_maps(dry_store, mapping, dry_deltek)
    out = SyncPlan(periods=list(periods), firms=list(dry_deltek.firms_planned))
    holdings = DeltekHoldings(deltek, periods)
    for name, kinds in POSTING_STEPS:
        report = run_postings(
            store=dry_store,  # type: ignore[arg-type]
            deltek=None,
            mapping=mapping,
            kinds=kinds,
            periods=periods,
            tenant=tenant,
            apply=False,
        )
        _look_up(report.plan, holdings)
        out.reports[name] = report
    return out


def _look_up(rows: list[PlanRow], holdings: DeltekHoldings) -> None:
    """The apply's look-up, read-only: what Deltek holds turns a create into adopt or review."""
    for row in rows:
        if row.action not in ("create", "adjust", "reverse") or row.document is None:
            continue
        holdings.ensure([row.document])
        verdict = lookup_verdict(row.document, holdings.find(row.document))
        if verdict.action != "post":
            row.action, row.reason = verdict.action, verdict.reason
