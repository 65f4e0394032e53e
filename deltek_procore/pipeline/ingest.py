"""Read Procore into the staging tables, incrementally.

Each record kind keeps a cursor (the start time of its last complete read). The
next read asks Procore only for records updated since then, minus an overlap
that absorbs clock skew between Procore and us. `full=True` re-reads everything:
the nightly reconciliation uses a wider window instead (see `reconcile_window`).

Line items cost one call per contract or change order. A poll (cursor or window, not
`full`, not `ids`) reads them again only for a record whose `updated_at` or status
moved since it was staged: the stamp is the only change signal a poll has, and an
unchanged record keeps the lines staged with it. A read by ids (a webhook, possibly
for one line item) always reads the lines.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from deltek_procore.posting.periods import period_of
from deltek_procore.posting.translate import PURCHASE_ORDER_POSTABLE, WORK_ORDER_POSTABLE
from deltek_procore.procore.errors import DETAIL_GONE
from deltek_procore.procore.models import (
    ChangeOrder,
    Commitment,
    CommitmentLine,
    ContractLineRef,
    CostCode,
    CostType,
    DirectCost,
    Project,
    Requisition,
    Vendor,
)
from deltek_procore.state.store import StagedRecord, StateStore

OVERLAP = timedelta(minutes=10)
NIGHTLY_OVERLAP = timedelta(days=1)  # the nightly poll re-reads a day before its cursor

# record kind -> model class; also the kinds staged per project
MODELS: dict[str, type] = {
    "project": Project,
    "vendor": Vendor,
    "cost_code": CostCode,
    "cost_type": CostType,
    "requisition": Requisition,
    "direct_cost": DirectCost,
    "work_order": Commitment,
    "purchase_order": Commitment,
    "change_order": ChangeOrder,
}
POSTABLE_KINDS = ("requisition", "direct_cost", "work_order", "purchase_order", "change_order")
VOLATILE = frozenset({"updated_at", "fetched_at"})


def content_hash(payload: dict[str, Any]) -> str:
    """Hash of what matters in a record: everything but its update stamps."""
    material = {k: v for k, v in payload.items() if k not in VOLATILE}
    text = json.dumps(material, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def to_staged(kind: str, model: Any) -> StagedRecord:
    payload = model.model_dump(mode="json")
    if kind in ("work_order", "purchase_order"):
        payload["kind"] = kind
    return StagedRecord(
        kind=kind,
        record_id=int(model.id),
        payload=payload,
        content_hash=content_hash(payload),
        project_id=payload.get("project_id"),
        period=period_of(kind, model) if kind in POSTABLE_KINDS else None,
        status=payload.get("status"),
        updated_at=str(payload.get("updated_at") or ""),
    )


def parse(kind: str, payload: dict[str, Any]) -> Any:
    return MODELS[kind].model_validate(payload)


@dataclass
class IngestResult:
    kind: str
    fetched: int = 0
    changed: int = 0
    projects: int = 0
    window: tuple[str, str] | None = None
    by_status: dict[str, int] = field(default_factory=dict)
    # whole listings compared with Procore's own Total, and the ones that differed
    counted: int = 0
    count_mismatches: list[dict[str, Any]] = field(default_factory=list)

    def metadata(self) -> dict[str, Any]:
        return {
            "fetched": self.fetched,
            "changed": self.changed,
            "projects": self.projects,
            "window": f"{self.window[0]} ... {self.window[1]}" if self.window else "full read",
            "listings_counted": self.counted,
            "count_mismatches": len(self.count_mismatches),
        }

    @property
    def short_read(self) -> bool:
        """Fewer rows read than Procore counted in some listing: the read is not complete."""
        return any(m["read"] < m["total"] for m in self.count_mismatches)


class _Counts:
    """What a client's listings counted while one ingest ran (clients without stats: none)."""

    def __init__(self, client: Any) -> None:
        self.stats = getattr(client, "stats", None)
        self.counted = getattr(self.stats, "counted_listings", 0)
        self.mismatches = len(getattr(self.stats, "count_mismatches", []))

    def into(self, result: IngestResult) -> IngestResult:
        if self.stats is not None and hasattr(self.stats, "count_mismatches"):
            result.counted = self.stats.counted_listings - self.counted
            result.count_mismatches = list(self.stats.count_mismatches[self.mismatches :])
        return result


# Line items cost one Procore call per contract or change order; read them only where a
# record can post (requisition items also take their cost type from these lines; an
# approved change order whose contract is staged without lines costs one more call for
# that contract's lines, see `staged_contract`).
LINES_WANTED = {
    "work_order": WORK_ORDER_POSTABLE | {"Terminated"},
    "purchase_order": PURCHASE_ORDER_POSTABLE,
    "change_order": frozenset({"approved"}),
}


# record id -> (updated_at, status, details gone at the last read), as staged
Stamps = dict[int, tuple[str, str | None, bool]]


def _lines_for(kind: str, known: Stamps):
    wanted = LINES_WANTED[kind]

    def wants(raw: dict[str, Any]) -> bool:
        return raw.get("status") in wanted and not _unchanged(kind, known, raw)

    return wants


def _unchanged(kind: str, known: Stamps, raw: dict[str, Any]) -> bool:
    """Staged with its lines, same status and same updated_at as Procore answers now (a
    record whose details were gone at the last read is read again)."""
    try:
        before = known.get(int(raw.get("id")))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    if before is None:
        return False
    stamp, status, gone = before
    return (
        not gone
        and status in LINES_WANTED[kind]
        and status == raw.get("status")
        and _same_instant(stamp, raw.get("updated_at"))
    )


def _same_instant(a: Any, b: Any) -> bool:
    if not a or not b:
        return False
    try:
        return _instant(a) == _instant(b)
    except ValueError:
        return str(a) == str(b)


def _instant(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _keep_staged_lines(store: StateStore, staged: StagedRecord) -> StagedRecord:
    """An unchanged record read without its lines gets the lines staged with it (a change
    order's re-linked to its contract's lines as staged now)."""
    found = store.staged(staged.kind, ids=[staged.record_id])
    if not found:
        return staged
    lines = [dict(x) for x in found[0].payload.get("line_items") or []]
    if staged.kind == "change_order":
        contract = staged_contract(store)(int(staged.payload.get("contract_id") or 0))
        _relink(lines, (contract or {}).get("line_items") or [])
    staged.payload["line_items"] = lines
    staged.content_hash = content_hash(staged.payload)
    return staged


def _relink(lines: list[dict[str, Any]], contract_lines: list[dict[str, Any]]) -> None:
    by_id = {int(x["id"]): x for x in contract_lines if x.get("id") is not None}
    for line in lines:
        ref = line.get("commitment_line_item_id")
        found = by_id.get(int(ref)) if ref is not None else None
        if found is not None:
            line["contract_line"] = ContractLineRef.of(
                CommitmentLine.model_validate(found)
            ).model_dump(mode="json")


def staged_contract(store: StateStore) -> Callable[[int], dict[str, Any] | None]:
    """Look up a staged work order or purchase order by id (its payload has `kind` and,
    for postable contracts, `line_items`): change order lines take their cost code from
    these lines, so the client reads a contract's lines only when none are staged."""

    def lookup(contract_id: int) -> dict[str, Any] | None:
        for kind in ("work_order", "purchase_order"):
            found = store.staged(kind, ids=[int(contract_id)])
            if found:
                return found[0].payload
        return None

    return lookup


def _fetch(
    client: Any,
    kind: str,
    project_id: int | None,
    updated: Any,
    ids: Any,
    store: StateStore | None = None,
    known: Stamps | None = None,
) -> Iterator[Any]:
    if kind == "requisition":
        return client.requisitions(project_id, ids=ids, updated=updated, resolve_cost_types=False)
    if kind == "direct_cost":
        return client.direct_costs(project_id, ids=ids, updated=updated)
    if kind in ("work_order", "purchase_order"):
        return client.commitments(
            project_id,
            kind,
            ids=ids,
            updated=updated,
            with_line_items=_lines_for(kind, known or {}),
        )
    if kind == "change_order":
        return client.change_orders(
            project_id,
            ids=ids,
            updated=updated,
            with_line_items=_lines_for(kind, known or {}),
            staged_contract=staged_contract(store) if store is not None else None,
        )
    if kind == "cost_code":
        return client.cost_codes(project_id)
    raise ValueError(f"{kind} is not a project-scoped kind")


def ingest_company(
    client: Any, store: StateStore, kind: str, *, full: bool = False
) -> IngestResult:
    """Projects, vendors, cost types: company-wide lists."""
    now = datetime.now(timezone.utc)
    result = IngestResult(kind=kind)
    counts = _Counts(client)
    if kind == "project":
        models: Iterable[Any] = client.projects()
    elif kind == "vendor":
        cursor = None if full else store.get_cursor("procore:vendor")
        window = _window(cursor, now)
        result.window = _window_text(window)
        models = client.vendors(updated=window) if window else client.vendors()
    elif kind == "cost_type":
        models = client.cost_types()
    else:
        raise ValueError(kind)
    records = [to_staged(kind, m) for m in models]
    result.fetched = len(records)
    result.changed = store.stage(records)
    counts.into(result)
    if not result.short_read:
        store.set_cursor(f"procore:{kind}", now.isoformat())
    return result


def ingest_projects(
    client: Any,
    store: StateStore,
    kind: str,
    project_ids: Iterable[int],
    *,
    full: bool = False,
    window: tuple[datetime, datetime] | None = None,
    ids: list[int] | None = None,
    chunk: int = 2000,
) -> IngestResult:
    """A project-scoped kind for every project, staged page by page to keep memory flat."""
    now = datetime.now(timezone.utc)
    result = IngestResult(kind=kind)
    if window is None and not full and ids is None and kind != "cost_code":
        window = _window(store.get_cursor(f"procore:{kind}"), now)
    result.window = _window_text(window)
    counts = _Counts(client)
    polled = kind in LINES_WANTED and not full and ids is None
    known = store.staged_stamps(kind, DETAIL_GONE) if polled else {}
    for project_id in project_ids:
        result.projects += 1
        buffer: list[StagedRecord] = []
        for model in _fetch(client, kind, project_id, window, ids, store, known):
            staged = to_staged(kind, model)
            if staged.project_id is None:
                staged.project_id = int(project_id)
                staged.payload["project_id"] = int(project_id)
            if (
                polled
                and not staged.payload.get("line_items")
                and _unchanged(kind, known, staged.payload)
            ):
                staged = _keep_staged_lines(store, staged)
            buffer.append(staged)
            result.by_status[str(staged.status)] = result.by_status.get(str(staged.status), 0) + 1
            if len(buffer) >= chunk:
                result.fetched += len(buffer)
                result.changed += store.stage(buffer)
                buffer = []
        result.fetched += len(buffer)
        result.changed += store.stage(buffer)
    counts.into(result)
    # the cursor moves only after a complete read: not when Procore counted more than came
    complete = not result.short_read
    if complete and ids is None and (window is None or window[1] >= now - OVERLAP):
        store.set_cursor(f"procore:{kind}", now.isoformat())
    return result


def _window(cursor: str | None, now: datetime) -> tuple[datetime, datetime] | None:
    if not cursor:
        return None
    start = datetime.fromisoformat(cursor) - OVERLAP
    return (start, now + timedelta(minutes=1))


def _window_text(window: tuple[datetime, datetime] | None) -> tuple[str, str] | None:
    if window is None:
        return None
    return (window[0].isoformat(), window[1].isoformat())


def reconcile_window(
    now: datetime | None = None, days: int = 62, since: str | None = None
) -> tuple[datetime, datetime]:
    """The nightly poll's window.

    `since` (the kind's cursor: the start of its last complete read): from then, less
    `NIGHTLY_OVERLAP`. That is everything updated since the last complete read, whatever
    webhooks delivered or missed meanwhile, and a day of Procore answering late, again;
    however long ago that read was. Without a cursor (the kind was never read in full):
    everything updated in the current and previous period."""
    now = now or datetime.now(timezone.utc)
    end = now + timedelta(minutes=1)
    if since:
        return (datetime.fromisoformat(since) - NIGHTLY_OVERLAP, end)
    first_of_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    previous = (first_of_month - timedelta(days=1)).replace(day=1)
    return (min(previous, now - timedelta(days=days)), end)
