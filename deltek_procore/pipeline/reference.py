"""Deltek reference data and the three maps (projects, vendors -> firms, GL accounts).

Maps are computed from staged Procore data and Deltek snapshots and saved in the
state store, so the posting step and `mappings check` read the same answer.
`build_vendor_map` is the one step here that writes to Deltek: it creates the
vendor firms that approved spend needs and that no rule or match provides, each
found again by its deterministic vendor number after a crash.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from deltek_procore.deltek.errors import DeltekAmbiguousError, DeltekAuthError, DeltekError
from deltek_procore.http.retry import Backoff
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
    # vendors whose firm could not be created this run: their documents fail and are
    # retried next run (a problem of this run, not of the mapping)
    failed: dict[int, str] = field(default_factory=dict)


FIRM_ATTEMPTS = 4  # sends of one POST firm per run, each after a look-up that found nothing
FIRM_BACKOFF = Backoff(base_s=1.0, cap_s=8.0)


class FirmNotCreated(Exception):
    """The firm could not be created in this run; `reason` says why (for the ledger)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _transient(exc: DeltekError) -> bool:
    """Worth sending again: never sent (no status), throttled, or a server error."""
    return exc.status is None or exc.status == 429 or exc.status >= 500


def _landed(deltek: Any, number: str, name: str, before: set[str]) -> dict[str, Any] | None:
    """The firm an earlier send of this run created, if Deltek shows it: by its vendor
    number, else by its name among vendor firms this run had not seen before (a tenant
    that numbers vendors itself may have given it another number)."""
    found = deltek.find_vendor(vendor=number)
    if found:
        return found[0]
    fresh = [
        firm
        for firm in deltek.find_vendor(name=name)
        if str(firm.get("VendorInd") or "Y").upper() == "Y"
        and str(firm.get("Vendor") or "").casefold() not in before
    ]
    if len(fresh) > 1:
        raise FirmNotCreated(
            f"{len(fresh)} new Deltek vendor firms are named {name!r}; link one with a "
            "vendors: rule in the mapping file"
        )
    return fresh[0] if fresh else None


def create_firm(
    deltek: Any,
    *,
    number: str,
    name: str,
    fed_id: str | None,
    before: set[str],
    sleep: Callable[[float], None] = time.sleep,
    attempts: int = FIRM_ATTEMPTS,
    backoff: Backoff = FIRM_BACKOFF,
) -> tuple[dict[str, Any], bool]:
    """POST one vendor firm, never twice: after an unknown outcome (a lost answer, a 5xx,
    a timeout) the firm is looked up by vendor number and by name before it is sent
    again, with bounded, jittered back-off. Returns (firm, adopted); adopted = an earlier
    send of this run had landed. Raises FirmNotCreated when the bound is reached or
    Deltek refuses the firm (a 4xx), and DeltekAuthError as is (nothing can be created).
    """
    unknown = False  # the last send may have landed: look before sending again
    last = "no attempt was made"
    for attempt in range(1, attempts + 1):
        if attempt > 1:
            sleep(backoff.delay(attempt - 1))
        if unknown:
            try:
                firm = _landed(deltek, number, name, before)
            except DeltekAuthError:
                raise
            except DeltekError as exc:
                last = f"the look-up after an unknown outcome failed: {exc.message}"
                continue
            if firm is not None:
                return firm, True
            unknown = False
        try:
            return deltek.create_vendor_firm(name=name, vendor=number, fed_id=fed_id), False
        except DeltekAuthError:
            raise
        except DeltekAmbiguousError as exc:
            unknown, last = True, exc.message
        except DeltekError as exc:
            if not _transient(exc):
                raise FirmNotCreated(f"Deltek refused it: {exc.message}") from None
            last = exc.message
    if unknown:
        try:
            firm = _landed(deltek, number, name, before)
        except DeltekAuthError:
            raise
        except DeltekError as exc:
            last = f"the look-up after an unknown outcome failed: {exc.message}"
        else:
            if firm is not None:
                return firm, True
    raise FirmNotCreated(f"{attempts} attempts failed, the last: {last}")


def _firm_failure(pid: int, vendor: dict[str, Any], number: str, reason: str) -> str:
    name = clean_text(vendor.get("name"), 80) or "no name"
    return (
        f"the Deltek vendor firm {number} for Procore vendor {pid} ({name}) could not be "
        f"created in this run ({reason}); its documents are retried next run"
    )


def build_vendor_map(
    store: StateStore,
    mapping: MappingFile,
    deltek: Any | None,
    *,
    run_id: str | None = None,
    create: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> VendorMapResult:
    """Match every vendor in use to a Deltek vendor; create the firms that are missing.

    A firm that cannot be created (see `create_firm`) holds back only that vendor's
    documents: its entry says `failed`, translation fails them (not quarantined), and
    the next run tries the firm again; every other vendor is mapped as usual."""
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
    matches = match_vendors(
        [vendors[v] for v in sorted(used) if v in vendors], firms, mapping.vendors, links
    )
    existing: dict[str, dict[str, Any]] | None = None
    for match in matches:
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
            if existing is None:
                # One read of the firms, not one look-up per firm: a firm an interrupted
                # earlier run created under its deterministic number is found here.
                existing = _by_vendor_number(deltek.firms())
            hit = existing.get(number.casefold())
            found = [hit] if hit else []
            if not found:
                try:
                    firm, adopted = create_firm(
                        deltek,
                        number=number,
                        name=clean_text(vendors[pid].get("name"), FIRM_NAME_MAX),
                        fed_id=_business_id(vendors[pid]),
                        before=set(existing),
                        sleep=sleep,
                    )
                except FirmNotCreated as exc:
                    reason = _firm_failure(pid, vendors[pid], number, exc.reason)
                    result.failed[pid] = reason
                    vendor_map[str(pid)] = {"vendor": None, "problem": reason, "failed": True}
                    store.audit(
                        [AuditEvent("firm_failed", "vendor", pid, {"vendor": number, "why": reason})],
                        run_id,
                    )
                    continue
                if adopted:  # an earlier send of this run landed: keep it, say so
                    found = [firm]
                    firms.append(firm)
                    store.put_reference("deltek_firms", firms)
                number = str(firm.get("Vendor") or number)
            firm = found[0] if found else firm
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


def _by_vendor_number(firms: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(f.get("Vendor") or "").casefold(): f for f in firms if f.get("Vendor")}


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
    vendor_failures: dict[int, str] = {}  # firm creation failed this run: fail, not quarantine
    for pid, m in (store.get_reference("vendor_map") or {}).items():
        if m.get("vendor"):
            vendors[int(pid)] = m["vendor"]
        elif m.get("failed"):
            vendor_failures[int(pid)] = m.get("problem") or "no Deltek vendor firm this run"
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
        vendor_failures=vendor_failures,
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
