"""From stored webhook events to a few targeted runs (the sensor's logic, I/O-light).

A burst of events becomes one run per accounting month, each naming exactly the
records to re-read and post. The run key is a hash of the event keys it covers,
so re-evaluating a tick cannot start the same run twice.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from deltek_procore.state.store import StateStore
from deltek_procore.webhooks.events import EventError, affected_record, event_from_dict

# record kind -> (ingest asset, posting asset)
KIND_ASSETS: dict[str, tuple[str, str | None]] = {
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


@dataclass
class RunPlan:
    partition: str
    ingest_ids: dict[str, list[int]] = field(default_factory=dict)  # asset -> ids
    posting_assets: set[str] = field(default_factory=set)
    posting_ids: set[int] = field(default_factory=set)
    reconcile_assets: set[str] = field(default_factory=set)  # re-read without ids
    event_keys: list[str] = field(default_factory=list)

    @property
    def run_key(self) -> str:
        digest = hashlib.sha256("\n".join(sorted(self.event_keys)).encode()).hexdigest()
        return f"webhooks-{self.partition}-{digest[:24]}"

    def run_config(self) -> dict[str, Any]:
        ops: dict[str, Any] = {}
        for asset, ids in self.ingest_ids.items():
            ops[asset] = {"config": {"ids": sorted(set(ids))}}
        for asset in self.reconcile_assets:
            ops[asset] = {"config": {"reconcile": True}}
        for asset in self.posting_assets:
            ops[asset] = {"config": {"ids": sorted(self.posting_ids)}}
        return {"ops": ops}

    def selection(self) -> list[str]:
        assets = set(self.ingest_ids) | self.reconcile_assets | self.posting_assets
        if self.posting_assets:
            assets |= {"project_map", "vendor_firm_map", "gl_account_map"}
        return sorted(assets)


def current_month(now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return f"{now.year:04d}-{now.month:02d}"


def plan_runs(
    store: StateStore,
    events: Iterable[dict[str, Any]],
    locate: Callable[[str, list[int]], dict[int, str | None]] | None = None,
    now: datetime | None = None,
) -> tuple[list[RunPlan], list[str]]:
    """Group inbox rows into run plans; returns (plans, keys of events to drop as useless).

    `locate(kind, ids)` finds the accounting month of records the store has never seen
    (the sensor fetches them from Procore); without it they go to the current month.
    """
    plans: dict[str, RunPlan] = {}
    dropped: list[str] = []
    pending: dict[str, list[tuple[int, str]]] = defaultdict(list)  # kind -> (id, event key)
    fallback = current_month(now)

    def plan_for(partition: str) -> RunPlan:
        return plans.setdefault(partition, RunPlan(partition=partition))

    for row in events:
        try:
            event = event_from_dict(json.loads(row["payload"]))
            kind, record_id, _project = affected_record(event)
        except (EventError, ValueError, KeyError):
            dropped.append(row["event_key"])
            continue
        ingest_asset, posting_asset = KIND_ASSETS[kind]
        if kind in REFERENCE_KINDS or record_id is None:
            target = plan_for(fallback)
            target.reconcile_assets.add(ingest_asset)
            if posting_asset:
                target.posting_assets.add(posting_asset)
            target.event_keys.append(row["event_key"])
            continue
        pending[kind].append((int(record_id), row["event_key"]))

    for kind, items in pending.items():
        ids = sorted({rid for rid, _ in items})
        periods = {r.record_id: r.period for r in store.staged(kind, ids=ids)}
        unknown = [rid for rid in ids if rid not in periods]
        if unknown and locate is not None:
            periods.update(locate(kind, unknown))
        ingest_asset, posting_asset = KIND_ASSETS[kind]
        for rid, key in items:
            target = plan_for(periods.get(rid) or fallback)
            target.ingest_ids.setdefault(ingest_asset, []).append(rid)
            if posting_asset:
                target.posting_assets.add(posting_asset)
                target.posting_ids.add(rid)
            target.event_keys.append(key)
    return sorted(plans.values(), key=lambda p: p.partition), dropped
