"""`mappings check` and `mappings suggest`: coverage of the mapping file, proposed matches.

Both read Procore and Deltek (never write) and reuse the maps the pipeline builds,
so what `check` reports is exactly what a sync would quarantine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from deltek_procore import connections
from deltek_procore.mapping.accounts import CONFIRMED, INACTIVE, NOT_YET_USED
from deltek_procore.mapping.config import load_mapping, load_mapping_located
from deltek_procore.mapping.matching import match_projects, match_vendors
from deltek_procore.mapping.rules import gl_rule_warnings
from deltek_procore.pipeline import reference
from deltek_procore.state.store import StateStore
from deltek_procore.tenants import DEFAULT_TENANT, Tenant

RELEVANT = {
    "requisition": {"approved", "approved_as_noted", "under_review", "pending_owner_approval"},
    "direct_cost": {"approved", "pending"},
    "work_order": {"Approved", "Complete", "Out For Signature"},
    "purchase_order": {"Approved", "Processing", "Submitted", "Partially Received", "Received"},
    "change_order": {"approved", "pending", "proceeding"},
}


def _refresh(store: StateStore, tenant: Tenant | None) -> Any:
    from deltek_procore.cli import refresh_procore

    mapping = load_mapping(env=connections.tenant_environment(tenant))
    refresh_procore(connections.procore_client(tenant=tenant), store)
    deltek = connections.deltek_client(tenant=tenant)
    reference.refresh_deltek(deltek, store)
    return mapping


def _store(store: StateStore | None, tenant: Tenant | None) -> StateStore:
    return store or StateStore(tenant=tenant.name if tenant else DEFAULT_TENANT)


def check_report(
    store: StateStore | None = None, *, tenant: Tenant | None = None
) -> dict[str, Any]:
    """What `mappings check` found, as data (`--json` prints it as is).

    GL accounts come in three groups: `confirmed` (seen in Deltek's GLSummary), `not yet
    used in Deltek` (absent from GLSummary, which lists only accounts with activity: no
    error, Deltek validates them when the first batch on them posts) and `inactive` (listed
    with an inactive Status: records on them will be quarantined).
    """
    store = _store(store, tenant)
    mapping = _refresh(store, tenant)
    located = load_mapping_located(env=connections.tenant_environment(tenant))
    rule_warnings = gl_rule_warnings(located)  # warnings, never gaps
    projects = reference.build_project_map(store, mapping)
    vendors = reference.build_vendor_map(store, mapping, None, create=False)
    gl = reference.build_gl_map(store, mapping, statuses=RELEVANT)
    project_problems = {pid: row["problem"] for pid, row in projects.items() if row.get("problem")}
    needs_firm = sorted(pid for pid, p in vendors.problems.items() if "no Deltek vendor firm" in p)
    vendor_problems = {
        str(pid): problem for pid, problem in vendors.problems.items() if pid not in needs_firm
    }
    ok = not (gl["unmapped"] or gl["bad_accounts"] or gl["inactive_accounts"] or project_problems)
    return {
        "ok": ok,
        "gl": {
            "pairs_in_use": len(gl["pairs"]),
            "glsummary_readable": gl["chart_readable"],
            "warnings": rule_warnings,
            "unmapped": gl["unmapped"],
            "inactive": gl["bad_accounts"],
            "accounts": {
                "confirmed": gl["confirmed_accounts"],
                "not_yet_used": gl["not_yet_used_accounts"],
                "inactive": gl["inactive_accounts"],
            },
        },
        "projects": {
            "matched": len(projects) - len(project_problems),
            "problems": project_problems,
        },
        "vendors": {
            "matched": vendors.linked,
            "new_firm_next_sync": needs_firm,
            "problems": vendor_problems,
        },
    }


def render_check(report: dict[str, Any]) -> str:
    """The text of `mappings check`."""
    gl = report["gl"]
    accounts = gl["accounts"]
    out = [
        f"GL accounts: {gl['pairs_in_use']} cost code x cost type pair(s) in use by approved "
        "or open records"
    ]
    if not gl["glsummary_readable"]:
        out.append(
            "  (Deltek's GLSummary is not readable; Deltek checks every account when a batch posts)"
        )
    for warning in gl.get("warnings", []):
        out.append(f"  WARNING   {warning}")
    for row in gl["unmapped"]:
        out.append(
            f"  NO RULE   {row['cost_code']} / {row['cost_type'] or '(no cost type)'}  "
            f"({row['lines']} line(s))"
        )
    for row in gl["inactive"]:
        out.append(
            f"  INACTIVE  {row['cost_code']} / {row['cost_type']} -> {row['account']}: "
            f"{row['problem']}"
        )
    out.append(f"  {CONFIRMED} (seen in GLSummary): {_accounts(accounts['confirmed'])}")
    out.append(
        f"  {NOT_YET_USED}: {_accounts(accounts['not_yet_used'])}"
        + (
            " (GLSummary lists only accounts with activity; Deltek checks these when the "
            "first batch on them posts)"
            if accounts["not_yet_used"]
            else ""
        )
    )
    if accounts["inactive"]:
        out.append(f"  {INACTIVE}: {_accounts(accounts['inactive'])}")
    projects = report["projects"]
    out.append(
        f"Projects: {projects['matched']} matched, {len(projects['problems'])} without a "
        "Deltek project"
    )
    for pid, problem in projects["problems"].items():
        out.append(f"  project {pid}: {problem}")
    vendors = report["vendors"]
    out.append(
        f"Vendors in use: {vendors['matched']} matched, {len(vendors['new_firm_next_sync'])} "
        f"will get a new firm at the next sync, {len(vendors['problems'])} cannot be created"
    )
    for pid, problem in vendors["problems"].items():
        out.append(f"  vendor {pid}: {problem}")
    out.append(
        "coverage complete"
        if report["ok"]
        else "coverage has gaps: records using them will be quarantined"
    )
    return "\n".join(out)


def _accounts(accounts: list[str]) -> str:
    return ", ".join(accounts) if accounts else "none"


def check(store: StateStore | None = None, *, tenant: Tenant | None = None) -> tuple[str, bool]:
    """Which pairs, projects and vendors that approved or open spend uses have no rule or match.

    Accounts not yet used in Deltek are listed, never counted as a gap.
    """
    report = check_report(store, tenant=tenant)
    return render_check(report), report["ok"]


def suggest(
    out_path: str, store: StateStore | None = None, *, tenant: Tenant | None = None
) -> Path:
    """Write proposed project and vendor matches (and unmapped pairs) for a person to confirm."""
    store = _store(store, tenant)
    mapping = _refresh(store, tenant)
    procore_projects = [r.payload for r in store.staged("project")]
    deltek_projects = store.get_reference("deltek_projects", [])
    used = reference.vendors_in_use(store)
    procore_vendors = [r.payload for r in store.staged("vendor") if r.record_id in used]
    firms = store.get_reference("deltek_firms", [])
    doc: dict[str, Any] = {
        "projects": [],
        "vendors": [],
        "vendors_to_decide": [],
        "gl_accounts_missing": [],
    }
    for match in match_projects(procore_projects, deltek_projects, mapping.project_rules()):
        if match.ok and match.method == "project_number":
            doc["projects"].append(
                {
                    "procore_project_id": match.procore_id,
                    "wbs1": match.wbs1,
                    "matched_by": "project_number",
                }
            )
    for match in match_vendors(procore_vendors, firms, mapping.vendors, {}):
        if match.ok and match.method in ("tax_id", "name", "origin_code"):
            doc["vendors"].append(
                {
                    "procore_vendor_id": match.procore_id,
                    "deltek_vendor": match.deltek_vendor,
                    "matched_by": match.method,
                }
            )
        elif match.candidates:
            doc["vendors_to_decide"].append(
                {
                    "procore_vendor_id": match.procore_id,
                    "candidates": match.candidates,
                    "problem": match.problem,
                }
            )
    gl = reference.build_gl_map(store, mapping, statuses=RELEVANT)
    for row in gl["unmapped"]:
        doc["gl_accounts_missing"].append(
            {"cost_code": row["cost_code"], "cost_type": row["cost_type"], "account": "FILL-ME"}
        )
    path = Path(out_path)
    header = (
        "# Proposed by `deltek-procore mappings suggest`. Nothing here is used until a person\n"
        "# copies confirmed entries into the mapping file (drop the matched_by keys).\n"
    )
    path.write_text(
        header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    return path
