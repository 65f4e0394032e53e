"""`mappings check` and `mappings suggest`: coverage of the mapping file, proposed matches.

Both read Procore and Deltek (never write) and reuse the maps the pipeline builds,
so what `check` reports is exactly what a sync would quarantine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from deltek_procore import connections
from deltek_procore.mapping.config import load_mapping
from deltek_procore.mapping.matching import match_projects, match_vendors
from deltek_procore.pipeline import reference
from deltek_procore.state.store import StateStore

RELEVANT = {
    "requisition": {"approved", "approved_as_noted", "under_review", "pending_owner_approval"},
    "direct_cost": {"approved", "pending"},
    "work_order": {"Approved", "Complete", "Out For Signature"},
    "purchase_order": {"Approved", "Processing", "Submitted", "Partially Received", "Received"},
    "change_order": {"approved", "pending", "proceeding"},
}


def _refresh(store: StateStore) -> Any:
    from deltek_procore.cli import refresh_procore

    mapping = load_mapping()
    refresh_procore(connections.procore_client(), store)
    deltek = connections.deltek_client()
    reference.refresh_deltek(deltek, store)
    return mapping


def check(store: StateStore | None = None) -> tuple[str, bool]:
    """Which pairs, projects and vendors that approved or open spend uses have no rule or match."""
    store = store or StateStore()
    mapping = _refresh(store)
    projects = reference.build_project_map(store, mapping)
    vendors = reference.build_vendor_map(store, mapping, None, create=False)
    gl = reference.build_gl_map(store, mapping, statuses=RELEVANT)
    out = [
        f"GL accounts: {len(gl['pairs'])} cost code x cost type pair(s) in use by approved or open records"
    ]
    if not gl["chart_readable"]:
        out.append(
            "  (Deltek's chart of accounts is not readable; accounts checked against the mapping file only)"
        )
    for row in gl["unmapped"]:
        out.append(
            f"  NO RULE   {row['cost_code']} / {row['cost_type'] or '(no cost type)'}  ({row['lines']} line(s))"
        )
    for row in gl["bad_accounts"]:
        out.append(
            f"  BAD ACCT  {row['cost_code']} / {row['cost_type']} -> {row['account']}: {row['problem']}"
        )
    problems = {k: v for k, v in projects.items() if v.get("problem")}
    out.append(
        f"Projects: {len(projects) - len(problems)} matched, {len(problems)} without a Deltek project"
    )
    for pid, row in problems.items():
        out.append(f"  project {pid}: {row['problem']}")
    needs_firm = [pid for pid, p in vendors.problems.items() if "no Deltek vendor firm" in p]
    out.append(
        f"Vendors in use: {vendors.linked} matched, {len(needs_firm)} will get a new firm at the next sync, "
        f"{len(vendors.problems) - len(needs_firm)} cannot be created"
    )
    for pid, problem in vendors.problems.items():
        if pid not in needs_firm:
            out.append(f"  vendor {pid}: {problem}")
    ok = not gl["unmapped"] and not gl["bad_accounts"] and not problems
    out.append(
        "coverage complete" if ok else "coverage has gaps: records using them will be quarantined"
    )
    return "\n".join(out), ok


def suggest(out_path: str, store: StateStore | None = None) -> Path:
    """Write proposed project and vendor matches (and unmapped pairs) for a person to confirm."""
    store = store or StateStore()
    mapping = _refresh(store)
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
    for match in match_projects(procore_projects, deltek_projects, mapping.projects):
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
