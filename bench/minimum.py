"""The physical minimum of API calls for a seeded data set, and our calls sorted the same way.

Pure functions over the sandbox's seed data (and, for Deltek, what the run posted), so the
benchmark can print our calls as a ratio to what the documented APIs allow:

Procore, per run:
- reference reads: the token, the project, vendor and cost type lists, and cost codes per
  project (each at 100 a page);
- list pages: per (kind, project) the pages its records need at 100 a page, at least one
  (a project with nothing still answers one empty page); the change order list does not
  page (one call per project); direct-cost lines come from one bulk listing per project,
  also at 100 a page;
- line items: one read per contract and change order that can post (Procore has no bulk
  read of them), more only where one has over 100 lines;
- contract lines Procore's shapes require besides (`needed`): a change order line and a
  subcontractor invoice item carry no cost code or cost type of their own, they point at a
  contract line (docs/api/procore.md, corrections 1 and 9), so a contract that cannot post
  itself is read once when an approved change order or invoice points into it.
For a nightly run only the records that changed count (the list pages then hold them), and
contract lines read on an earlier night are not needed again.

Deltek, per run:
- reference reads: the token, the project, firm and GLSummary lists (500 a page), and the
  look-up the protocol needs without an idempotency key: each landing list, the posted
  ledger of the months posted to and one either side (1000 a page), and every unposted
  batch Deltek already holds for those months (AP: masters and details, JE: details);
- the firm creations;
- one write per batch of `batch_size` documents per transaction type and month;
- one verification read per batch written.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

PAGE = 100
DELTEK_PAGE = 500
DELTEK_LEDGER_PAGE = 1000
# seed data key -> (record kind, statuses that can post)
SPEND = {
    "requisitions": ("requisition", None),
    "direct_costs": ("direct_cost", None),
    "work_order_contracts": ("work_order", frozenset({"Approved", "Complete"})),
    "purchase_order_contracts": (
        "purchase_order",
        frozenset({"Approved", "Partially Received", "Received", "Closed"}),
    ),
    "commitment_change_orders": ("change_order", frozenset({"approved"})),
}
CATEGORIES = ("token", "reference", "lists", "line_items", "checks", "other")
DELTEK_CATEGORIES = ("token", "reference", "reads", "firms", "writes", "other")


def pages(rows: int, size: int = PAGE) -> int:
    """Calls a paged listing of `rows` costs: at least one."""
    return max(1, math.ceil(rows / size))


def can_post(key: str, record: Mapping[str, Any]) -> bool:
    statuses = SPEND[key][1]
    return statuses is not None and record.get("status") in statuses


def procore_minimum(
    data: Mapping[str, list[dict]], changed: Iterable[tuple[str, int]] | None = None
) -> dict[str, int]:
    """Calls a first read (or, with `changed` = {(seed key, id)}, a nightly read) needs."""
    only = None if changed is None else set(changed)
    projects = [p["id"] for p in data["projects"]]
    codes = Counter(c["project_id"] for c in data.get("cost_codes", []))
    out = {
        "token": 1,
        "reference": pages(len(projects))
        + pages(len(data.get("vendors", [])))
        + pages(len(data.get("line_item_types", [])))
        + sum(pages(codes.get(p, 0)) for p in projects),
        "lists": 0,
        "line_items": 0,
    }
    for key in SPEND:
        rows = [r for r in data.get(key, []) if only is None or (key, r["id"]) in only]
        per_project = Counter(r["project_id"] for r in rows)
        if key == "commitment_change_orders":
            out["lists"] += len(projects)  # the v1.0 list ignores paging: one call
        else:
            out["lists"] += sum(pages(per_project.get(p, 0)) for p in projects)
        if key == "direct_costs":
            dc_lines: Counter[int] = Counter()
            for r in rows:
                dc_lines[r["project_id"]] += len(r.get("line_items") or [])
            out["lists"] += sum(pages(n) for p, n in dc_lines.items() if per_project.get(p))
        for r in rows:
            if can_post(key, r):
                out["line_items"] += pages(len(r.get("line_items") or []))
    out["needed"] = 0 if only is not None else len(pointed_contracts(data))
    out["formula"] = sum(out[k] for k in ("token", "reference", "lists", "line_items"))
    out["total"] = out["formula"] + out["needed"]
    return out


def pointed_contracts(data: Mapping[str, list[dict]]) -> set[int]:
    """Contracts that cannot post but whose lines an approved change order or a postable
    subcontractor invoice needs for its cost codes and cost types."""
    postable = {
        r["id"]
        for key in ("work_order_contracts", "purchase_order_contracts")
        for r in data.get(key, [])
        if can_post(key, r)
    }
    out: set[int] = set()
    for co in data.get("commitment_change_orders", []):
        lines = co.get("line_items") or []
        if co.get("status") == "approved" and any(x.get("commitment_line_item_id") for x in lines):
            out.add(int(co["contract_id"]))
    for req in data.get("requisitions", []):
        if req.get("status") in ("approved", "approved_as_noted") and req.get("commitment_id"):
            out.add(int(req["commitment_id"]))
    return out - postable


_PROCORE_REFERENCE = re.compile(
    r"^GET /rest/v1\.0/(projects|vendors|line_item_types|cost_codes|companies)$"
)
_PROCORE_LISTS = re.compile(
    r"^GET /rest/v1\.[01]/(requisitions|work_order_contracts|purchase_order_contracts"
    r"|projects/\{id\}/(direct_costs|direct_costs/line_items|commitment_change_orders))$"
)


def procore_category(endpoint: str) -> str:
    """Sort one "METHOD /path/{id}" endpoint into the minimum's categories."""
    if endpoint == "POST /oauth/token":
        return "token"
    if _PROCORE_REFERENCE.match(endpoint):
        return "reference"
    if _PROCORE_LISTS.match(endpoint):
        return "lists"
    if endpoint.endswith("/line_items"):
        return "line_items"
    if "/webhooks/" in endpoint:
        return "checks"
    return "other"


def deltek_category(endpoint: str) -> str:
    """Sort one simulator route ("GET DataEntry/apDetail/{Batch}") into categories."""
    method, _, path = endpoint.partition(" ")
    if path == "token":
        return "token"
    if method == "GET" and path in ("project", "firm", "GLSummary"):
        return "reference"
    if method == "POST" and path == "firm":
        return "firms"
    if method in ("POST", "PUT", "DELETE") and path.startswith("DataEntry/"):
        return "writes"
    if method == "GET" and (path.startswith("DataEntry/") or path.startswith("PSALedger/")):
        return "reads"  # the look-up and the verification read the same endpoints
    return "other"


def by_category(calls: Mapping[str, int], sort: Any) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for endpoint, n in calls.items():
        out[sort(endpoint)] += n
    out["total"] = sum(calls.values())
    return dict(out)


def neighbour_codes(periods: Iterable[str]) -> set[int]:
    """Deltek period codes (YYYYPP) of `periods` and one month either side."""
    out: set[int] = set()
    for period in periods:
        year, month = (int(p) for p in period.split("-"))
        for delta in (-1, 0, 1):
            m = month + delta
            y = year + (m - 1) // 12
            out.add(y * 100 + (m - 1) % 12 + 1)
    return out


def batch_code(batch: str) -> int | None:
    """The period encoded in one of the connector's batch names (PCAP/PCJE<YYYYPP>...)."""
    match = re.match(r"^PC(AP|JE)(\d{6})", batch)
    return int(match.group(2)) if match else None


def deltek_minimum(
    *,
    posted: Mapping[tuple[str, str], int],
    batch_size: int,
    firms_created: int,
    months: Iterable[str],
    before: Mapping[str, Any],
) -> dict[str, int]:
    """Calls a run needs: `posted` = documents placed per (AP|JE, month); `before` = what
    Deltek held when the run began (row counts and unposted batch names per type)."""
    near = neighbour_codes(months)
    batches = sum(math.ceil(n / batch_size) for n in posted.values() if n)
    look_up = 0
    for transtype, per_batch in (("AP", 2), ("JE", 1)):
        look_up += pages(before["landing"].get(transtype, 0), DELTEK_PAGE)
        ledger_rows = sum(
            n for code, n in before["ledger_rows"].get(transtype, {}).items() if int(code) in near
        )
        look_up += pages(ledger_rows, DELTEK_LEDGER_PAGE)
        for batch in before["unposted"].get(transtype, []):
            code = batch_code(batch)
            if code is None or code in near:
                look_up += per_batch
    out = {
        "token": 1,
        "reference": pages(before["projects"], DELTEK_PAGE)
        + pages(before["firms"], DELTEK_PAGE)
        + pages(before["gl_rows"], DELTEK_PAGE),
        "reads": look_up + batches,  # the look-up, then one verification read per batch
        "firms": firms_created,
        "writes": batches,
    }
    out["total"] = sum(out.values())
    return out


def posted_documents(
    by_period: Mapping[str, Mapping[str, Mapping[str, int]]],
) -> dict[tuple[str, str], int]:
    """Documents a run placed in Deltek, per (AP|JE, month), from each posting step's counts
    per month ({step: {month: {status: n}}}; the AP step's name says it is AP)."""
    out: Counter[tuple[str, str]] = Counter()
    for step, months in by_period.items():
        transtype = "AP" if "_ap_" in step or step == "AP" else "JE"
        for month, counts in months.items():
            out[(transtype, month)] += counts.get("posted", 0) + counts.get("adjusted", 0)
    return dict(out)
