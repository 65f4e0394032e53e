"""From stored webhook events (and nightly gaps) to a few targeted runs. No Dagster here.

A burst of events becomes one run per accounting month (merged into at most
`max_runs` month ranges when it spans many months), each naming exactly the records
to re-read and post. The run key is a hash of the event keys a run covers, so a
re-evaluated tick cannot start the same run twice, and re-planning the same events
always gives the same key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from deltek_procore.state.store import StateStore
from deltek_procore.webhooks.events import EventError, affected_record, event_from_dict

# record kind -> (ingest asset, posting asset)
KIND_ASSETS: dict[str, tuple[str, str | None]] = {
    "requisition": ("procore_subcontractor_invoices", "deltek_ap_invoices"),
    "direct_cost": ("procore_direct_costs", "deltek_ap_invoices"),
    "work_order": ("procore_commitments", "deltek_commitment_journal_entries"),
    "purchase_order": ("procore_commitments", "deltek_commitment_journal_entries"),
    "change_order": ("procore_change_orders", "deltek_commitment_journal_entries"),
    "vendor": ("procore_vendors", None),
    "project": ("procore_projects", None),
    "cost_code": ("procore_cost_codes", None),
    "cost_type": ("procore_cost_types", None),
}
REFERENCE_KINDS = frozenset({"vendor", "project", "cost_code", "cost_type"})
# What a posting run needs fresh besides the records: firms (a vendor may have been
# created in Deltek since the last read) and the three maps.
POSTING_SUPPORT = ("deltek_firms", "project_map", "vendor_firm_map", "gl_account_map")
RECORD_INGEST_ASSETS = (
    "procore_subcontractor_invoices",
    "procore_direct_costs",
    "procore_commitments",
    "procore_change_orders",
)
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
TRIGGER_TAG = "deltek-procore/trigger"
WINDOW_TAG = "deltek-procore/nightly-window"
DEFAULT_MAX_RUNS = 4

Locate = Callable[[str, list[int]], Mapping[int, str | None]]


@dataclass
class RunPlan:
    """One run of the sync job: which months, which records, which assets."""

    start: str  # first accounting month (partition key)
    end: str  # last accounting month; == start for a single-partition run
    trigger: str = "webhook"
    ingest_ids: dict[str, set[int]] = field(default_factory=dict)  # ingest asset -> ids
    reconcile_assets: set[str] = field(default_factory=set)  # re-read by updated_at window
    posting_assets: set[str] = field(default_factory=set)
    posting_ids: set[int] = field(default_factory=set)  # empty = every record of the months
    event_keys: list[str] = field(default_factory=list)
    label: str = ""  # stable text for the run key when no events drive the run
    all_assets: bool = False  # the whole graph (nightly): reference data refreshed too
    window: bool = False  # the nightly window run (a catch-up follows it the same night)

    @property
    def partition_key(self) -> str | None:
        """The partition of a one-month run; None for a range (see `tags`)."""
        return self.start if self.start == self.end else None

    @property
    def run_key(self) -> str:
        material = "\n".join(sorted(self.event_keys)) if self.event_keys else self.label
        digest = hashlib.sha256(material.encode()).hexdigest()[:24]
        months = self.start if self.start == self.end else f"{self.start}..{self.end}"
        return f"{self.trigger}-{months}-{digest}"

    def run_config(self) -> dict[str, Any]:
        ops: dict[str, Any] = {}
        for asset in sorted(self.reconcile_assets):
            ops[asset] = {"config": {"reconcile": True}}
        for asset, ids in sorted(self.ingest_ids.items()):
            if asset not in self.reconcile_assets:
                ops[asset] = {"config": {"ids": sorted(ids)}}
        for asset in sorted(self.posting_assets):
            ops[asset] = {"config": {"ids": sorted(self.posting_ids)}}
        return {"ops": ops}

    def selection(self) -> list[str] | None:
        """Asset names to run; None = every asset of the job."""
        if self.all_assets:
            return None
        assets = set(self.ingest_ids) | self.reconcile_assets | self.posting_assets
        if self.posting_assets:
            assets |= set(POSTING_SUPPORT)
        return sorted(assets)

    def tags(self) -> dict[str, str]:
        tags = {TRIGGER_TAG: self.trigger}
        if self.window:
            tags[WINDOW_TAG] = self.label
        if self.event_keys:
            tags["deltek-procore/events"] = str(len(self.event_keys))
        if self.partition_key is None:
            tags[RANGE_START_TAG] = self.start
            tags[RANGE_END_TAG] = self.end
        return tags

    def absorb(self, other: RunPlan) -> None:
        """Merge another plan into this one (its months must follow this plan's)."""
        self.start, self.end = min(self.start, other.start), max(self.end, other.end)
        for asset, ids in other.ingest_ids.items():
            self.ingest_ids.setdefault(asset, set()).update(ids)
        self.reconcile_assets |= other.reconcile_assets
        self.posting_assets |= other.posting_assets
        self.posting_ids |= other.posting_ids
        self.event_keys.extend(other.event_keys)


@dataclass
class EventTarget:
    """What one inbox row points at."""

    key: str
    kind: str
    record_id: int | None
    project_id: int | None
    event_type: str


@dataclass
class TickPlan:
    plans: list[RunPlan]
    dropped: dict[str, str] = field(default_factory=dict)  # event key -> reason
    deletions: list[EventTarget] = field(default_factory=list)


def current_month(now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return f"{now.year:04d}-{now.month:02d}"


def previous_month(key: str) -> str:
    year, month = (int(p) for p in key.split("-"))
    return f"{year - 1}-12" if month == 1 else f"{year:04d}-{month - 1:02d}"


def read_event(row: Mapping[str, Any]) -> EventTarget:
    """Raises EventError/ValueError/KeyError for a row that names no usable record."""
    event = event_from_dict(json.loads(row["payload"]))
    kind, record_id, project_id = affected_record(event)
    return EventTarget(row["event_key"], kind, record_id, project_id, event.event_type)


def plan_runs(
    store: StateStore,
    events: Iterable[Mapping[str, Any]],
    locate: Locate | None = None,
    *,
    now: datetime | None = None,
    months: Sequence[str] | None = None,
    max_runs: int = DEFAULT_MAX_RUNS,
) -> TickPlan:
    """Group inbox rows into at most `max_runs` run plans (plus one for reference data).

    `locate(kind, ids)` finds the accounting month of records the store has never seen
    (the sensor fetches them from Procore); without it they go to the current month.
    `months` are the valid partition keys; a record outside them is dropped with a reason.
    """
    fallback = current_month(now)
    valid = set(months) if months is not None else None
    tick = TickPlan(plans=[])
    records: dict[str, list[EventTarget]] = {}
    reference = RunPlan(start=fallback, end=fallback)
    for row in events:
        try:
            target = read_event(row)
        except (EventError, ValueError, KeyError) as exc:
            tick.dropped[row["event_key"]] = f"unusable: {exc}"[:100]
            continue
        ingest_asset, _ = KIND_ASSETS[target.kind]
        if target.kind in REFERENCE_KINDS or target.record_id is None:
            # reference data, or a line item whose parent record is unknown: re-read the
            # asset by its updated_at window; the nightly run posts what that changes.
            reference.reconcile_assets.add(ingest_asset)
            reference.event_keys.append(target.key)
        elif target.event_type == "delete":
            tick.deletions.append(target)
        else:
            records.setdefault(target.kind, []).append(target)

    by_month: dict[str, RunPlan] = {}
    for kind, targets in records.items():
        periods = _periods(store, kind, sorted({t.record_id for t in targets}), locate)
        ingest_asset, posting_asset = KIND_ASSETS[kind]
        for target in targets:
            month = periods.get(target.record_id) or fallback
            if valid is not None and month not in valid:
                tick.dropped[target.key] = f"period {month} is outside the partitions"
                continue
            plan = by_month.setdefault(month, RunPlan(start=month, end=month))
            plan.ingest_ids.setdefault(ingest_asset, set()).add(target.record_id)
            if posting_asset:
                plan.posting_assets.add(posting_asset)
                plan.posting_ids.add(target.record_id)
            plan.event_keys.append(target.key)
    tick.plans = merge_months(list(by_month.values()), max_runs)
    if reference.event_keys:
        tick.plans.append(reference)
    return tick


def _periods(
    store: StateStore, kind: str, ids: list[int], locate: Locate | None
) -> dict[int, str | None]:
    periods: dict[int, str | None] = {r.record_id: r.period for r in store.staged(kind, ids=ids)}
    unknown = [rid for rid in ids if rid not in periods]
    if unknown and locate is not None:
        periods.update(locate(kind, unknown))
    return periods


def merge_months(plans: list[RunPlan], max_runs: int) -> list[RunPlan]:
    """At most `max_runs` plans: consecutive months merged into ranges, oldest first."""
    ordered = sorted(plans, key=lambda p: p.start)
    if len(ordered) <= max_runs:
        return ordered
    size = -(-len(ordered) // max_runs)  # ceil
    merged = []
    for begin in range(0, len(ordered), size):
        head, *rest = ordered[begin : begin + size]
        for other in rest:
            head.absorb(other)
        merged.append(head)
    return merged


# ---- deletions -------------------------------------------------------------------------
def handle_deletions(store: StateStore, deletions: Iterable[EventTarget]) -> dict[str, str]:
    """A deleted record is never reversed silently: posted -> review queue, else ignored.

    Returns event key -> the mark to store on the inbox row.
    """
    marks: dict[str, str] = {}
    by_kind: dict[str, list[EventTarget]] = {}
    for target in deletions:
        by_kind.setdefault(target.kind, []).append(target)
    for kind, targets in by_kind.items():
        done = store.last_done(kind, [t.record_id for t in targets if t.record_id is not None])
        for target in targets:
            posted = done.get(int(target.record_id or 0))
            if posted is not None:
                store.add_review(
                    kind=kind,
                    record_id=int(target.record_id or 0),
                    posted_hash=posted.content_hash,
                    new_hash="deleted",
                    posted_amount=posted.amount,
                    new_amount=None,
                    reason="deleted in Procore after it was posted; a person must decide",
                )
                marks[target.key] = "deleted:review"
            else:
                store.ignore(kind, int(target.record_id or 0), "deleted in Procore")
                marks[target.key] = "deleted:ignored"
    return marks


# ---- inbox look-ups (the store's, scoped to its tenant) --------------------------------
def events_for_run(store: StateStore, run_key: str) -> list[dict[str, Any]]:
    """Inbox rows claimed by `run_key` (to re-request a run that never started)."""
    return store.events_for_run(run_key)


def stored_event_keys(store: StateStore, keys: Iterable[str]) -> set[str]:
    """Which of `keys` the receiver stored (whatever became of them since)."""
    return store.stored_event_keys(keys)


# ---- nightly reconciliation ------------------------------------------------------------
def reconciliation_plans(
    day: str,
    gaps: Mapping[str, Mapping[int, str]] | None = None,
    *,
    months: Sequence[str] | None = None,
) -> list[RunPlan]:
    """The nightly runs for `day` (YYYY-MM-DD).

    1. previous..current month in one run: every record asset re-read by its updated_at
       window (requisitions and change orders have no webhooks at all), everything posted.
    2. a catch-up run for `gaps` ({kind: {record id: month}}, from
       `completeness.missing_from_ledger`) in any other open month: those records only.
    """
    current = day[:7]
    previous = previous_month(current)
    valid = set(months) if months is not None else None
    if valid is not None and previous not in valid:
        previous = current
    window = RunPlan(
        start=previous,
        end=current,
        trigger="nightly",
        label=f"window-{day}",
        all_assets=True,
        window=True,
    )
    window.reconcile_assets = set(RECORD_INGEST_ASSETS) | {"procore_vendors"}
    window.posting_assets = {"deltek_ap_invoices", "deltek_commitment_journal_entries"}
    plans = [window]
    catch_up: RunPlan | None = None
    for kind, records in sorted((gaps or {}).items()):
        ingest_asset, posting_asset = KIND_ASSETS[kind]
        for record_id, month in sorted(records.items()):
            if month in (previous, current) or (valid is not None and month not in valid):
                continue
            if catch_up is None:
                catch_up = RunPlan(start=month, end=month, trigger="nightly")
            catch_up.start, catch_up.end = min(catch_up.start, month), max(catch_up.end, month)
            catch_up.ingest_ids.setdefault(ingest_asset, set()).add(int(record_id))
            if posting_asset:
                catch_up.posting_assets.add(posting_asset)
                catch_up.posting_ids.add(int(record_id))
    if catch_up is not None:
        ids = ",".join(
            f"{asset}:{sorted(ids)}" for asset, ids in sorted(catch_up.ingest_ids.items())
        )
        catch_up.label = f"catch-up-{day}-{ids}"
        plans.append(catch_up)
    return plans
