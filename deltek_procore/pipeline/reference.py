"""Deltek reference data and the three maps (projects, vendors -> firms, GL accounts).

Maps are computed from staged Procore data and Deltek snapshots and saved in the
state store, so the posting step and `mappings check` read the same answer.
`build_vendor_map` is the one step here that writes to Deltek: it creates the
vendor firms that approved spend needs and that no rule or match provides, each
found again by its deterministic vendor number after a crash.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from deltek_procore.mapping.accounts import account_split, account_statuses, mapped_accounts
from deltek_procore.mapping.config import MappingFile
from deltek_procore.mapping.matching import (
    match_projects,
    match_vendors,
    new_vendor_number,
    vendor_problem,
)
from deltek_procore.mapping.rules import compile_rules
from deltek_procore.posting.translate import (
    MappingContext,
    ProjectTarget,
    Refusal,
    change_order_line_codes,
    clean_text,
)
from deltek_procore.procore.models import ChangeOrderLine
from deltek_procore.state.store import AuditEvent, StateStore

FIRM_NAME_MAX = 255


def refresh_deltek(deltek: Any, store: StateStore) -> dict[str, int | None]:
    """Snapshot Deltek projects, firms and (where readable) the chart of accounts."""
    projects = deltek.projects()
    firms = deltek.firms()
    accounts = deltek.accounts()
    store.put_reference("deltek_projects", projects)
    store.put_reference("deltek_firms", firms)
    store.put_reference("deltek_gl_accounts", accounts)
    return {
        "projects": len(projects),
        "firms": len(firms),
        "accounts": None if accounts is None else len(accounts),
    }


def _payloads(store: StateStore, kind: str) -> list[dict[str, Any]]:
    return [r.payload for r in store.staged(kind)]


def build_project_map(store: StateStore, mapping: MappingFile) -> dict[str, Any]:
    matches = match_projects(
        _payloads(store, "project"),
        store.get_reference("deltek_projects", []),
        mapping.project_rules(),
    )
    result = {
        str(m.procore_id): {
            "wbs1": m.wbs1,
            "wbs2": m.wbs2 or "",
            "wbs3": m.wbs3 or "",
            "method": m.method,
            "problem": m.problem,
        }
        for m in matches
    }
    store.put_reference("project_map", result)
    return result


def vendors_in_use(store: StateStore) -> set[int]:
    """Vendor ids that staged spend refers to: only these get firms created."""
    used: set[int] = set()
    commitment_vendor: dict[int, int] = {}
    for kind in ("work_order", "purchase_order"):
        for rec in store.iter_staged(kind):
            vid = rec.payload.get("vendor_id")
            if vid:
                commitment_vendor[rec.record_id] = int(vid)
                used.add(int(vid))
    for rec in store.iter_staged("requisition"):
        vid = rec.payload.get("vendor_id") or commitment_vendor.get(
            int(rec.payload.get("commitment_id") or 0)
        )
        if vid:
            used.add(int(vid))
    for rec in store.iter_staged("direct_cost"):
        if rec.payload.get("vendor_id"):
            used.add(int(rec.payload["vendor_id"]))
    return used


@dataclass
class VendorMapResult:
    linked: int = 0
    created: list[str] = field(default_factory=list)
    problems: dict[int, str] = field(default_factory=dict)
    methods: dict[str, int] = field(default_factory=dict)


def build_vendor_map(
    store: StateStore,
    mapping: MappingFile,
    deltek: Any | None,
    *,
    run_id: str | None = None,
    create: bool = True,
) -> VendorMapResult:
    """Match every vendor in use to a Deltek vendor; create the firms that are missing."""
    vendors = {int(v["id"]): v for v in _payloads(store, "vendor")}
    used = vendors_in_use(store)
    links = {pid: link["deltek_vendor"] for pid, link in store.vendor_links().items()}
    firms = store.get_reference("deltek_firms", [])
    known = {str(f.get("Vendor") or "").casefold() for f in firms}
    if deltek is not None and any(str(v).casefold() not in known for v in links.values()):
        # A link newer than the snapshot (a firm created by an earlier try or another
        # sync): read the firms again rather than call the link broken.
        firms = deltek.firms()
        store.put_reference("deltek_firms", firms)
    result = VendorMapResult()
    vendor_map: dict[str, Any] = {}
    for match in match_vendors(
        [vendors[v] for v in sorted(used) if v in vendors], firms, mapping.vendors, links
    ):
        pid = match.procore_id
        if match.ok:
            vendor_map[str(pid)] = {"vendor": match.deltek_vendor, "method": match.method}
            result.methods[str(match.method)] = result.methods.get(str(match.method), 0) + 1
            if match.method not in ("link", "override"):
                store.link_vendor(pid, match.deltek_vendor, match.client_id, str(match.method))
            continue
        problem = match.problem or vendor_problem(vendors[pid])
        if problem is None and match.needs_firm and create and deltek is not None:
            number = new_vendor_number(pid)
            found = deltek.find_vendor(vendor=number)
            firm = (
                found[0]
                if found
                else deltek.create_vendor_firm(
                    name=clean_text(vendors[pid].get("name"), FIRM_NAME_MAX),
                    vendor=number,
                    fed_id=_business_id(vendors[pid]),
                )
            )
            store.link_vendor(pid, number, firm.get("ClientID"), "created")
            if not found:
                firms.append(firm)
                store.put_reference("deltek_firms", firms)
            store.audit(
                [
                    AuditEvent(
                        "firm_adopted" if found else "firm_created",
                        "vendor",
                        pid,
                        {"vendor": number, "client_id": firm.get("ClientID")},
                    )
                ],
                run_id,
            )
            if not found:
                result.created.append(number)
            vendor_map[str(pid)] = {"vendor": number, "method": "created"}
            result.methods["created"] = result.methods.get("created", 0) + 1
            continue
        problem = problem or f"Procore vendor {pid} has no Deltek vendor firm"
        result.problems[pid] = problem
        vendor_map[str(pid)] = {"vendor": None, "problem": problem}
    for pid in used - set(vendors):
        problem = f"Procore vendor {pid} is not in the Company Directory the connector can read"
        result.problems[pid] = problem
        vendor_map[str(pid)] = {"vendor": None, "problem": problem}
    result.linked = sum(1 for v in vendor_map.values() if v.get("vendor"))
    store.put_reference("vendor_map", vendor_map)
    return result


def _business_id(vendor: dict[str, Any]) -> str | None:
    """The vendor's tax id as Procore keeps it (`business_id`; `tax_id` in payloads staged
    before the connector read business_id), sent to Deltek as the firm's FedID."""
    value = vendor.get("business_id") or vendor.get("tax_id")
    text = "" if value is None else str(value).strip()
    return text or None


def used_pairs(
    store: StateStore, statuses: dict[str, set[str]] | None = None
) -> dict[tuple[str, str], int]:
    """(cost code, cost type) pairs the staged spend uses, with how many lines use each.

    With `statuses` ({kind: statuses}), only records in those statuses count.
    """

    def relevant(rec: Any) -> bool:
        return statuses is None or rec.status in statuses.get(rec.kind, set())

    codes = {r.record_id: r.payload.get("full_code") for r in store.staged("cost_code")}
    types = {r.record_id: r.payload.get("code") for r in store.staged("cost_type")}
    line_type: dict[int, int | None] = {}
    pairs: dict[tuple[str, str], int] = {}

    def count(code_id: Any, type_id: Any) -> None:
        code = codes.get(int(code_id)) if code_id else None
        ctype = types.get(int(type_id)) if type_id else None
        key = (code or f"?{code_id}", ctype or "")
        pairs[key] = pairs.get(key, 0) + 1

    for kind in ("work_order", "purchase_order"):
        for rec in store.iter_staged(kind):
            for line in rec.payload.get("line_items") or []:
                line_type[int(line["id"])] = line.get("line_item_type_id")
                if relevant(rec):
                    count(line.get("cost_code_id"), line.get("line_item_type_id"))
    known_codes = frozenset(c for c in codes.values() if c)
    known_types = frozenset(t for t in types.values() if t)
    for rec in store.iter_staged("change_order"):
        if not relevant(rec):
            continue
        for raw in rec.payload.get("line_items") or []:
            # As translation reads it: the contract line changed, else the wbs flat_code.
            line = ChangeOrderLine.model_validate(raw)
            try:
                key = change_order_line_codes(line, codes, types, known_codes, known_types)
            except Refusal:
                key = (f"?{line.flat_code or f'change order line {line.id}'}", "")
            pairs[key] = pairs.get(key, 0) + 1
    for rec in store.iter_staged("direct_cost"):
        for line in (rec.payload.get("line_items") or []) if relevant(rec) else []:
            count(line.get("cost_code_id"), line.get("line_item_type_id"))
    for rec in store.iter_staged("requisition"):
        if not relevant(rec):
            continue
        for item in rec.payload.get("items") or []:
            type_id = item.get("line_item_type_id") or line_type.get(
                int(item.get("line_item_id") or 0)
            )
            count(item.get("cost_code_id"), type_id)
    return pairs


def build_gl_map(
    store: StateStore, mapping: MappingFile, statuses: dict[str, set[str]] | None = None
) -> dict[str, Any]:
    """Pairs in use -> account; which accounts Deltek confirmed, which it lists inactive.

    Only an inactive Status in GLSummary is a problem (`bad_accounts`); an account absent
    from GLSummary is reported as "not yet used in Deltek", never as an error.
    """
    rules = compile_rules(mapping.gl_accounts)
    seen = account_statuses(store.get_reference("deltek_gl_accounts"))
    out: dict[str, Any] = {"pairs": [], "unmapped": [], "bad_accounts": []}
    for (code, ctype), lines in sorted(used_pairs(store, statuses).items()):
        match = rules.resolve(code, ctype)
        account = match.account if match else None
        row = {"cost_code": code, "cost_type": ctype, "account": account, "lines": lines}
        out["pairs"].append(row)
        if account is None:
            out["unmapped"].append(row)
        elif seen is not None and seen.get(account, "A") != "A":
            out["bad_accounts"].append(
                {**row, "problem": f"inactive in Deltek (GLSummary Status {seen[account]})"}
            )
    split = account_split(mapped_accounts(mapping, out["pairs"]), seen)
    out["confirmed_accounts"] = split["confirmed"]
    out["not_yet_used_accounts"] = split["not_yet_used"]
    out["inactive_accounts"] = split["inactive"]
    out["chart_readable"] = seen is not None  # GLSummary answered
    store.put_reference("gl_map", out)
    return out


def mapping_context(store: StateStore, mapping: MappingFile, mapping_hash: str) -> MappingContext:
    """Everything translation needs, read from the state store once per run."""
    projects: dict[int, ProjectTarget | str] = {}
    for pid, m in (store.get_reference("project_map") or {}).items():
        projects[int(pid)] = (
            m["problem"] if m.get("problem") else ProjectTarget(m["wbs1"], m["wbs2"], m["wbs3"])
        )
    vendors: dict[int, str] = {}
    vendor_problems: dict[int, str] = {}
    for pid, m in (store.get_reference("vendor_map") or {}).items():
        if m.get("vendor"):
            vendors[int(pid)] = m["vendor"]
        else:
            vendor_problems[int(pid)] = m.get("problem") or "no Deltek vendor firm"
    line_types: dict[int, int | None] = {}
    commitment_vendors: dict[int, int | None] = {}
    for kind in ("work_order", "purchase_order"):
        for rec in store.iter_staged(kind):
            commitment_vendors[rec.record_id] = rec.payload.get("vendor_id")
            for line in rec.payload.get("line_items") or []:
                line_types[int(line["id"])] = line.get("line_item_type_id")
    rules = compile_rules(mapping.gl_accounts)
    accounts = store.get_reference("deltek_gl_accounts")

    def resolve(full_code: str, type_code: str) -> tuple[str, int] | None:
        match = rules.resolve(full_code, type_code)
        return (match.account, match.rule_index) if match else None

    return MappingContext(
        projects=projects,
        vendors=vendors,
        vendor_problems=vendor_problems,
        cost_codes={r.record_id: r.payload.get("full_code") for r in store.staged("cost_code")},
        cost_types={r.record_id: r.payload.get("code") for r in store.staged("cost_type")},
        commitment_line_types=line_types,
        commitment_vendors=commitment_vendors,
        resolve_account=resolve,
        accounts=account_statuses(accounts),
        commitment_offset_account=mapping.defaults.commitment_offset_account,
        retainage_account=mapping.defaults.retainage_account,
        direct_cost_types=tuple(mapping.defaults.direct_cost_types),
        mapping_hash=mapping_hash,
    )


def ignore_from_mapping(store: StateStore, mapping: MappingFile) -> None:
    for rule in mapping.ignore:
        store.ignore(rule.kind, rule.id, rule.reason)


def first(items: Iterable[Any]) -> Any:
    return next(iter(items), None)
