"""Test harness: the sandbox, a Dagster instance and the state store, wired like production.

Shared by the sensor, schedule, webhook, late-change and production-instance tests.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg

from deltek_procore.sandbox.faults import Faults
from deltek_procore.sandbox.runner import Sandbox, sandbox_periods, start_sandbox
from deltek_procore.state.store import StateStore

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
DONE = ("posted", "adopted", "adjusted")
AP_KINDS = ("requisition", "direct_cost")
JE_KINDS = ("work_order", "purchase_order", "change_order")
SEED_KEYS = {
    "requisition": "requisitions",
    "direct_cost": "direct_costs",
    "work_order": "work_order_contracts",
    "purchase_order": "purchase_order_contracts",
    "change_order": "commitment_change_orders",
}


@dataclass
class Harness:
    box: Sandbox
    store: StateStore
    instance: dg.DagsterInstance
    home: Path
    state_url: str

    @property
    def defs(self) -> dg.Definitions:
        from deltek_procore.definitions import defs

        return defs

    def resources(self) -> dict[str, Any]:
        from deltek_procore.defs.resources import (
            DeltekResource,
            MappingResource,
            ProcoreResource,
            StateStoreResource,
        )

        return {
            "state": StateStoreResource(url=self.state_url),
            "procore": ProcoreResource(),
            "deltek": DeltekResource(),
            "mapping": MappingResource(),
        }

    def sync(self, first: str | None = None, last: str | None = None) -> dg.ExecuteInProcessResult:
        """One run over a month range (a single-run backfill), every asset."""
        periods = sandbox_periods(self.box)
        tags = {RANGE_START: first or periods[0], RANGE_END: last or periods[-1]}
        result = self.defs.resolve_job_def("sync").execute_in_process(
            instance=self.instance, tags=tags
        )
        assert result.success
        return result

    def execute(self, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
        """Run a sensor's or schedule's request in-process, as the daemon would launch it."""
        job = self.defs.resolve_job_def("sync")
        result = job.execute_in_process(
            run_config=request.run_config,
            partition_key=request.partition_key,
            asset_selection=list(request.asset_selection) if request.asset_selection else None,
            instance=self.instance,
            tags=dict(request.tags),
        )
        assert result.success
        return result

    def flush(self) -> None:
        assert self.box.procore.flush_webhooks(timeout=60)


def write_instance_yaml(home: Path, extra: str = "") -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n" + extra)


@contextmanager
def harness(
    home: Path,
    monkeypatch: Any,
    *,
    records: int = 600,
    state_url: str | None = None,
    instance: dg.DagsterInstance | None = None,
    receiver: bool = True,
    procore_faults: Faults | None = None,
    late_change_policy: str | None = None,
    end_month: str = "2026-10",
) -> Iterator[Harness]:
    """Start the sandbox (with the webhook receiver), point the environment at it."""
    write_instance_yaml(home)
    url = state_url or f"sqlite:///{home / 'state.db'}"
    store = StateStore(url)
    box = start_sandbox(
        records=records,
        seed=42,
        workdir=home,
        receiver_store=store if receiver else None,
        procore_faults=procore_faults,
        webhook_retry_backoff_s=0.01,
        end_month=end_month,
    )
    try:
        if late_change_policy:
            text = box.mappings_path.read_text()
            assert "late_change_policy" not in text
            text = text.replace(
                "defaults:\n", f"defaults:\n  late_change_policy: {late_change_policy}\n", 1
            )
            box.mappings_path.write_text(text)
        for key, value in box.env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        monkeypatch.setenv("DELTEK_PROCORE_STATE_URL", url)
        if instance is not None:
            yield Harness(box=box, store=store, instance=instance, home=home, state_url=url)
        else:
            # `with`: an instance registers itself as the process's definitions-state
            # storage; leaving the block unregisters it so later tests never reach it
            with dg.DagsterInstance.from_config(str(home)) as inst:
                yield Harness(box=box, store=store, instance=inst, home=home, state_url=url)
    finally:
        box.stop()
        store.dispose()


# ---- what "Deltek is exactly right" means -------------------------------------------------
def approved_records(box: Sandbox, kind: str, periods: list[str]) -> dict[int, dict]:
    """Procore's current approved spend of `kind` in `periods` (the simulator's own data)."""
    from deltek_procore.pipeline.completeness import has_amount
    from deltek_procore.posting.periods import period_of
    from deltek_procore.posting.translate import (
        PURCHASE_ORDER_POSTABLE,
        REQUISITION_POSTABLE,
        WORK_ORDER_POSTABLE,
    )

    statuses = {
        "requisition": REQUISITION_POSTABLE,
        "direct_cost": {"approved"},
        "work_order": WORK_ORDER_POSTABLE,
        "purchase_order": PURCHASE_ORDER_POSTABLE,
        "change_order": {"approved"},
    }[kind]
    out = {}
    for rec in box.procore.data.procore[SEED_KEYS[kind]]:
        if rec.get("status") not in statuses or period_of(kind, rec) not in periods:
            continue
        if kind == "direct_cost" and rec.get("direct_cost_type") != "invoice":
            continue
        if rec.get("deleted_at") or not has_amount(kind, rec):
            continue
        out[int(rec["id"])] = rec
    return out


def assert_deltek_exact(h: Harness, periods: list[str]) -> dict[str, int]:
    """Every approved record of `periods` is in Deltek once (or quarantined for a mapping
    reason), nothing else is there, and each posted amount is Procore's amount."""
    vouchers = Counter((v["Vendor"], v["Invoice"]) for v in h.box.deltek.ap_vouchers())
    assert [k for k, n in vouchers.items() if n > 1] == [], "duplicate AP vouchers in Deltek"
    entries = Counter(j["RefNo"] for j in h.box.deltek.journal_entries())
    assert [k for k, n in entries.items() if n > 1] == [], "duplicate JEs in Deltek"
    ap_amounts = {
        (v["Vendor"], v["Invoice"]): sum(Decimal(str(d["Amount"])) for d in v["apDetail"])
        for v in h.box.deltek.ap_vouchers()
    }
    counts: Counter[str] = Counter()
    for kind in AP_KINDS + JE_KINDS:
        approved = approved_records(h.box, kind, periods)
        latest = h.store.latest(kind, list(approved))
        for rid, rec in approved.items():
            row = latest.get(rid)
            assert row is not None, f"{kind} {rid} approved in Procore but not in the ledger"
            assert row.status in DONE + ("quarantined",), f"{kind} {rid}: {row.status} {row.reason}"
            counts[row.status] += 1
            if row.status == "quarantined":
                assert "Deltek rejected" not in (row.reason or ""), row.reason
                continue
            if kind in AP_KINDS:
                assert vouchers[(row.deltek_vendor, row.document)] == 1, (kind, rid)
                if row.status == "posted":
                    assert ap_amounts[(row.deltek_vendor, row.document)] == _amount(kind, rec)
            else:
                assert entries[row.document] == 1, (kind, rid, row.document)
    # nothing in Deltek that the ledger does not account for
    done = h.store.ledger_rows(statuses=DONE)
    ap_docs = {(r.deltek_vendor, r.document) for r in done if r.kind in AP_KINDS}
    je_docs = {r.document for r in done if r.kind in JE_KINDS}
    assert set(vouchers) <= ap_docs
    assert set(entries) <= je_docs
    return dict(counts)


def _amount(kind: str, rec: dict) -> Decimal:
    if kind == "direct_cost":
        return Decimal(str(rec["grand_total"])).quantize(Decimal("0.01"))
    from deltek_procore.pipeline.ingest import parse
    from deltek_procore.pipeline.postings import procore_amount

    return procore_amount(kind, parse(kind, rec))


def pick_direct_cost(h: Harness, statuses: tuple[str, ...] = ("pending", "draft")) -> dict:
    """An invoice-type direct cost of a mapped project and a vendor Deltek knows."""
    ledger = h.store.ledger_rows(kinds=["direct_cost"], statuses=DONE)
    good_vendors = {
        int(s.payload["vendor_id"])
        for s in h.store.staged("direct_cost", ids=[r.record_id for r in ledger])
        if s.payload.get("vendor_id")
    }
    good_projects = {
        int(s.project_id) for s in h.store.staged("direct_cost", ids=[r.record_id for r in ledger])
    }
    for rec in h.box.procore.data.procore["direct_costs"]:
        if (
            rec["status"] in statuses
            and rec["direct_cost_type"] == "invoice"
            and rec.get("vendor_id") in good_vendors
            and rec["project_id"] in good_projects
            and rec.get("line_items")
            and _mapped_lines(h, rec)
        ):
            return rec
    raise AssertionError("no suitable direct cost in the sandbox")


def _mapped_lines(h: Harness, rec: dict) -> bool:
    """Every line's cost code x type pair is one the mapping file maps."""
    unmapped = {(u["cost_code"], u["cost_type"]) for u in _unmapped(h)}
    for line in rec["line_items"]:
        pair = (line["cost_code"]["full_code"], (line.get("line_item_type") or {}).get("code"))
        if pair in unmapped:
            return False
    return True


def _unmapped(h: Harness) -> list[dict]:
    gl = h.store.get_reference("gl_map") or {}
    return list(gl.get("unmapped") or [])


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")
