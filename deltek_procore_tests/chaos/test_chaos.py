"""Chaos: the fault mix on, and ONE run of the product finishes the period.

The product runs as an operator runs it (`deltek-procore backfill` over the sandbox's
months: the Dagster `sync` job, in process, with its own clients): no retry loop here.
Deltek's state is then compared with the ledger (`assert_deltek_exact`) and, record by
record, with an expectation computed from the seed data alone (`harness.expected_deltek`).

The fault mix: Deltek loses 20 % of write answers (after committing), answers 10 % of
requests with a 5xx and kills tokens every 25 calls; Procore answers 10 % of requests
429 and 5 % 5xx. On top: Procore lists send a Total lower than the truth and no Link,
and the detail reads of a few records answer 404 (deleted between list and detail).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from deltek_procore.deltek.errors import DeltekAmbiguousError
from deltek_procore.mapping.config import load_mapping
from deltek_procore.mapping.matching import new_vendor_number
from deltek_procore.pipeline import ingest, reference
from deltek_procore.posting.periods import period_of
from deltek_procore.posting.translate import WORK_ORDER_POSTABLE
from deltek_procore.sandbox import seed as seed_module
from deltek_procore.sandbox.faults import Faults
from deltek_procore.sandbox.runner import Sandbox, sandbox_periods, start_sandbox
from deltek_procore.state.store import StateStore
from deltek_procore_tests.chaos.harness import (
    actual_deltek,
    compare_deltek,
    expected_deltek,
    make_clients,
    sync_job,
    sync_round,
    tenant_of,
    verify,
)
from deltek_procore_tests.defs.sync_harness import AP_KINDS, DONE, approved_records

RECORDS = int(os.environ.get("CHAOS_RECORDS", "2000"))


def procore_mix(seed: int, **extra: Any) -> Faults:
    faults = Faults()
    faults.configure(rate_429=0.10, rate_5xx=0.05, seed=seed, **extra)
    return faults


def deltek_mix(seed: int, **extra: Any) -> Faults:
    faults = Faults()
    faults.configure(
        rate_lost_response=0.20, rate_5xx=0.10, token_expire_after_calls=25, seed=seed, **extra
    )
    return faults


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """`start(procore_faults, deltek_faults)`: the sandbox, a Dagster home and a state
    store, with the environment pointing the product at them."""
    boxes: list[Sandbox] = []
    stores: list[StateStore] = []

    def start(procore_faults: Faults, deltek_faults: Faults) -> SimpleNamespace:
        home = tmp_path / "dagster_home"
        home.mkdir(exist_ok=True)
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        box = start_sandbox(
            records=RECORDS,
            workdir=tmp_path,
            procore_faults=procore_faults,
            deltek_faults=deltek_faults,
        )
        boxes.append(box)
        url = f"sqlite:///{tmp_path / 'state.db'}"
        for key, value in box.env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        monkeypatch.setenv("DELTEK_PROCORE_STATE_URL", url)
        store = StateStore(url)
        stores.append(store)
        return SimpleNamespace(box=box, store=store, periods=sandbox_periods(box))

    yield start
    for box in boxes:
        box.stop()
    for store in stores:
        store.dispose()


def _dependents(data: Any, contract_id: int) -> list[str]:
    """What hangs on a contract (as `Expected.source` names it): its invoices and COs."""
    procore = data.procore
    return [
        f"requisition {r['id']}"
        for r in procore["requisitions"]
        if r.get("commitment_id") == contract_id
    ] + [
        f"PCC {o['id']}"
        for o in procore["commitment_change_orders"]
        if o.get("contract_id") == contract_id
    ]


def gone_records(data: Any) -> dict[str, int]:
    """An approved work order (the one with the fewest dependents) and an approved change
    order of another contract: their detail reads will answer 404."""
    procore = data.procore
    contract = min(
        (
            c
            for c in procore["work_order_contracts"]
            if c["status"] in WORK_ORDER_POSTABLE and c["line_items"] and not c.get("deleted_at")
        ),
        key=lambda c: (len(_dependents(data, c["id"])), c["id"]),
    )
    order = next(
        o
        for o in procore["commitment_change_orders"]
        if o["status"] == "approved" and o["line_items"] and o["contract_id"] != contract["id"]
    )
    return {"work_order": contract["id"], "change_order": order["id"]}


def _figures(box: Sandbox, run: Any) -> str:
    counters = {f"procore_{k}": v for k, v in box.procore.faults.counters.items()}
    counters.update({f"deltek_{k}": v for k, v in box.deltek.faults.counters.items()})
    return f"run took {run.seconds:.0f} s; " + " ".join(
        f"{k}={v}" for k, v in sorted(counters.items())
    )


def _differences(box: Sandbox, drop=lambda expected: False) -> list[str]:
    """Deltek against the seed-data expectation, leaving out what `drop` says waits."""
    mapping = load_mapping(box.mappings_path)
    want_ap, want_je = expected_deltek(box.data, mapping, box.deltek.firms())
    want_ap = {k: v for k, v in want_ap.items() if not drop(v)}
    want_je = {k: v for k, v in want_je.items() if not drop(v)}
    got_ap, got_je = actual_deltek(box.deltek)
    return compare_deltek(want_ap, got_ap, "voucher") + compare_deltek(
        want_je, got_je, "journal entry"
    )


@pytest.mark.slow
def test_one_run_finishes_the_period_under_the_fault_mix(sandbox) -> None:
    data = seed_module.build(records=RECORDS)
    gone = gone_records(data)
    env = sandbox(
        procore_mix(
            11,
            lying_total=True,
            missing_details=",".join(str(i) for i in gone.values()),
        ),
        deltek_mix(12),
    )
    run = sync_job(env.box, env.periods)
    print(_figures(env.box, run))
    assert run.code == 0, f"{run.out[-3000:]}\n{run.err[-3000:]}"
    assert run.first_line.startswith("OK: every postable record is done"), run.first_line
    counts = assert_exact(env)
    print("ledger:", counts)
    for kind, record_id in gone.items():
        row = env.store.latest(kind, [record_id])[record_id]
        assert row.status == "quarantined", (kind, record_id, row.status, row.reason)
        assert row.reason.startswith("gone from Procore (404 on GET "), row.reason
    # What waits: the two gone records, and what hangs on the gone contract (its invoices
    # lack the contract's cost types, its change orders its lines): quarantined too.
    waiting = {f"PCW {gone['work_order']}", f"PCC {gone['change_order']}"}
    waiting |= set(_dependents(data, gone["work_order"]))
    problems = _differences(env.box, drop=lambda expected: expected.source in waiting)
    assert not problems, f"{len(problems)} difference(s):\n" + "\n".join(problems[:30])
    # the faults really happened, or the test proves nothing
    procore, deltek = env.box.procore.faults.counters, env.box.deltek.faults.counters
    assert procore.get("http_429", 0) > 0 and procore.get("detail_404", 0) >= 2
    assert sum(procore.get(f"http_{c}", 0) for c in (500, 502, 503)) > 0
    assert deltek.get("deltek_lost_response", 0) > 0
    assert env.box.deltek.call_counts()["POST token"] > 2  # tokens died mid-run
    assert sum(deltek.get(f"deltek_{c}", 0) for c in (500, 502, 503)) > 0


def assert_exact(env: SimpleNamespace, failed_vendor: int | None = None) -> dict[str, int]:
    """As `sync_harness.assert_deltek_exact`, except that the AP documents of
    `failed_vendor` must be `failed` (its firm could not be created), and nothing else."""
    from deltek_procore_tests.defs.sync_harness import assert_deltek_exact

    if failed_vendor is None:
        return assert_deltek_exact(SimpleNamespace(box=env.box, store=env.store), env.periods)
    counts: dict[str, int] = {}
    held = 0
    for kind in AP_KINDS:
        approved = approved_records(env.box, kind, env.periods)
        latest = env.store.latest(kind, list(approved))
        for rid, rec in approved.items():
            row = latest[rid]
            vendor = _vendor_of(env.box, kind, rec)
            if vendor == failed_vendor:
                assert row.status == "failed", (kind, rid, row.status, row.reason)
                assert f"Procore vendor {failed_vendor}" in row.reason, row.reason
                held += 1
            else:
                assert row.status in DONE + ("quarantined",), (kind, rid, row.status, row.reason)
            counts[row.status] = counts.get(row.status, 0) + 1
    assert held > 0, "the failing vendor had no approved documents: the test proves nothing"
    return counts


def _vendor_of(box: Sandbox, kind: str, rec: dict) -> int | None:
    if rec.get("vendor_id"):
        return int(rec["vendor_id"])
    if kind == "requisition":
        for key in ("work_order_contracts", "purchase_order_contracts"):
            for contract in box.data.procore[key]:
                if contract["id"] == rec.get("commitment_id"):
                    return int(contract["vendor"]["id"])
    return None


def vendor_needing_a_firm(data: Any, periods: list[str]) -> int:
    """A vendor with a name and no Deltek firm (the connector creates one) that has
    approved AP spend in the periods."""
    box = SimpleNamespace(data=data)
    for index, (name, kind) in enumerate(seed_module.VENDORS):
        vid = seed_module.VENDOR_BASE + index
        if kind != "none" or not name:
            continue
        for kind_ in AP_KINDS:
            for rec in data.procore["requisitions" if kind_ == "requisition" else "direct_costs"]:
                if (
                    _vendor_of(box, kind_, rec) == vid  # type: ignore[arg-type]
                    and rec["status"] in ("approved", "approved_as_noted")
                    and period_of(kind_, rec) in periods
                ):
                    return vid
    raise AssertionError("no vendor needing a firm has approved spend")


@pytest.mark.slow
def test_a_firm_that_cannot_be_created_holds_back_only_its_vendors_documents(sandbox) -> None:
    data = seed_module.build(records=RECORDS)
    periods = sandbox_periods(SimpleNamespace(data=data))
    vid = vendor_needing_a_firm(data, periods)
    number = new_vendor_number(vid)
    env = sandbox(procore_mix(21), deltek_mix(22, failing_firms=number))
    run = sync_job(env.box, env.periods)
    print(_figures(env.box, run))
    print(run.out)
    assert run.code == 1, f"{run.out[-3000:]}\n{run.err[-3000:]}"
    assert run.first_line.startswith("FAILED: "), run.first_line
    assert "record(s) failed in deltek_ap_invoices" in run.first_line
    assert f"Procore vendor {vid}" in run.out  # the summary names the vendor and why
    counts = assert_exact(env, failed_vendor=vid)
    print("ledger:", counts)
    assert env.box.deltek.faults.counters.get("deltek_firm_create_failed", 0) >= 4
    assert not any(f.get("Vendor") == number for f in env.box.deltek.firms())
    problems = _differences(env.box, drop=lambda expected: expected.key[0] == "<0 firms>")
    assert not problems, f"{len(problems)} difference(s):\n" + "\n".join(problems[:30])
    # the next run, with the firm creatable again, posts what waited
    env.box.deltek.faults.configure(failing_firms="")
    again = sync_job(env.box, env.periods)
    assert again.code == 0, f"{again.out[-3000:]}\n{again.err[-3000:]}"
    assert_exact(env)
    problems = _differences(env.box)
    assert not problems, f"{len(problems)} difference(s):\n" + "\n".join(problems[:30])


class LateCommit:
    """A Deltek client whose first write per kind commits only after the look-up.

    What a stalled request does in real life: the client times out, looks the batch
    up (not there yet), sends it again, and meanwhile the first request commits.
    """

    def __init__(self, client, kinds: tuple[str, ...] = ("ap", "je")):
        self._client = client
        self._armed = set(kinds)
        self._hidden: set[str] = set()
        self.tricks = 0

    def __getattr__(self, name: str):
        return getattr(self._client, name)

    def _create(self, kind: str, control: dict) -> list[dict]:
        create = getattr(self._client, f"create_{kind}_batch")
        if kind not in self._armed or len(control[f"{kind}Master"]) < 2:
            return create(control)
        self._armed.discard(kind)
        self._hidden.add(control["Batch"])
        self.tricks += 1
        create(control)  # it lands...
        raise DeltekAmbiguousError(None, "POST", f"DataEntry/{kind}Control", "timed out")

    def _get(self, kind: str, batch: str) -> dict | None:
        if batch in self._hidden:  # ...but the look-up runs before it is visible
            self._hidden.discard(batch)
            return None
        return getattr(self._client, f"get_{kind}_batch")(batch)

    def create_ap_batch(self, control: dict) -> list[dict]:
        return self._create("ap", control)

    def create_je_batch(self, control: dict) -> list[dict]:
        return self._create("je", control)

    def get_ap_batch(self, batch: str) -> dict | None:
        return self._get("ap", batch)

    def get_je_batch(self, batch: str) -> dict | None:
        return self._get("je", batch)

    def batch_details(self, batch: str, transtype: str) -> list[dict]:
        if batch in self._hidden:  # ...but the look-up runs before it is visible
            self._hidden.discard(batch)
            return []
        return self._client.batch_details(batch, transtype)


def test_a_write_that_lands_after_its_look_up_is_not_posted_again(tmp_path: Path) -> None:
    """Retry of a batch Deltek meanwhile committed: 'already exists' must not split it."""
    box = start_sandbox(records=400, workdir=tmp_path, hourly_limit=10**7, spike_limit=10**7)
    try:
        procore, deltek = make_clients(box.env)
        late = LateCommit(deltek)
        result = sync_round(
            store=StateStore(f"sqlite:///{tmp_path / 'state.db'}"),
            procore=procore,
            deltek=late,  # type: ignore[arg-type]
            mapping=load_mapping(box.mappings_path),
            periods=sandbox_periods(box),
            tenant=tenant_of(box.env),
        )
        assert late.tricks == 2
        assert result.clean, result.errors
        rejected = [
            row
            for report in result.reports
            for row in report.quarantined()
            if "Deltek rejected" in row["reason"]
        ]
        problems, _ = verify(box)
        assert not problems, "\n".join(problems[:20])
        assert not rejected, rejected[:3]
    finally:
        box.stop()


def test_a_lost_answer_to_a_firm_creation_is_found_by_look_up_not_sent_twice(
    tmp_path: Path,
) -> None:
    box = start_sandbox(records=300, workdir=tmp_path, hourly_limit=10**7, spike_limit=10**7)
    try:
        procore, deltek = make_clients(box.env)
        store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
        mapping = load_mapping(box.mappings_path)
        for kind in ("project", "vendor", "cost_type"):
            ingest.ingest_company(procore, store, kind)
        ids = [r.record_id for r in store.staged("project")]
        for kind in ("requisition", "direct_cost", "work_order", "purchase_order"):
            ingest.ingest_projects(procore, store, kind, ids)
        reference.refresh_deltek(deltek, store)

        class LoseSecondFirm:
            """Creates firms; the second creation's answer is lost (it did land)."""

            def __init__(self) -> None:
                self.created = 0

            def __getattr__(self, name: str):
                return getattr(deltek, name)

            def create_vendor_firm(self, **kwargs):
                self.created += 1
                row = deltek.create_vendor_firm(**kwargs)
                if self.created == 2:
                    raise DeltekAmbiguousError(502, "POST", "firm", "Bad Gateway")
                return row

        lossy = LoseSecondFirm()
        result = reference.build_vendor_map(store, mapping, lossy, sleep=lambda _s: None)
        assert lossy.created >= 2 and not result.failed  # the lost answer cost nothing
        adopted = [e for e in store.audit_trail() if e["event"] == "firm_adopted"]
        assert len(adopted) == 1  # found by its vendor number, not sent a second time
        numbers = [f["Vendor"] for f in box.deltek.firms() if f["Vendor"]]
        assert len(numbers) == len(set(numbers))
        again = reference.build_vendor_map(store, mapping, deltek)  # the next run
        stale = {pid: p for pid, p in again.problems.items() if "points to no firm" in p}
        assert not stale, stale
    finally:
        box.stop()
