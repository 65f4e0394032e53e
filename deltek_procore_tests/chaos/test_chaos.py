"""Chaos: every fault on at once, and Deltek still ends up holding each record exactly once.

The pipeline is re-run (as the nightly schedule and Dagster's retries would) until a
round posts nothing and fails nothing; then Deltek's state is compared record by
record with an expectation computed from the seed data alone.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from deltek_procore.deltek.errors import DeltekAmbiguousError
from deltek_procore.mapping.config import load_mapping
from deltek_procore.pipeline import ingest, reference
from deltek_procore.sandbox.faults import Faults
from deltek_procore.sandbox.runner import sandbox_periods, start_sandbox
from deltek_procore.state.store import StateStore
from deltek_procore_tests.chaos.harness import make_clients, sync_round, tenant_of, verify

RECORDS = int(os.environ.get("CHAOS_RECORDS", "2500"))
MAX_ROUNDS = 15
PROCORE_READ_TIMEOUT = 0.5
DELTEK_READ_TIMEOUT = 1.0


def procore_faults(seed: int) -> Faults:
    faults = Faults()
    faults.configure(
        latency_ms=5,
        rate_429=0.03,
        burst_429=3,
        rate_5xx=0.03,
        rate_timeout=0.01,
        timeout_s=PROCORE_READ_TIMEOUT * 2,  # longer than the client waits: a real stall
        token_expire_after_calls=7,
        seed=seed,
    )
    return faults


def deltek_faults(seed: int, *, stalls: bool = False) -> Faults:
    faults = Faults()
    faults.configure(
        rate_lost_response=0.2,
        rate_5xx=0.05,
        token_expire_after_calls=9,
        seed=seed,
    )
    if stalls:
        faults.configure(rate_timeout=0.012, timeout_s=DELTEK_READ_TIMEOUT * 1.3)
    return faults


def run_until_quiet(box, store: StateStore, *, max_rounds: int = MAX_ROUNDS) -> dict[str, int]:
    """Re-run the whole pipeline until one round fails nothing and posts nothing."""
    procore, deltek = make_clients(
        box.env,
        procore_read_timeout=PROCORE_READ_TIMEOUT,
        deltek_read_timeout=DELTEK_READ_TIMEOUT,
    )
    mapping = load_mapping(box.mappings_path)
    periods = sandbox_periods(box)
    figures = {
        "rounds": 0,
        "posted": 0,
        "adopted": 0,
        "failed": 0,
        "step_errors": 0,
        "step_retries": 0,
        "quarantined": 0,
    }
    for number in range(1, max_rounds + 1):
        result = sync_round(
            store=store,
            procore=procore,
            deltek=deltek,
            mapping=mapping,
            periods=periods,
            tenant=tenant_of(box.env),
        )
        counts = result.counts
        figures["rounds"] = number
        figures["posted"] += counts["posted"]
        figures["adopted"] += counts["adopted"]
        figures["failed"] += result.failed
        figures["step_errors"] += len(result.errors)
        figures["step_retries"] += result.step_retries
        figures["quarantined"] = counts["quarantined"]
        print(f"round {number}: {dict(counts)} errors={result.errors[:2]}")
        if result.quiet:
            break
    else:
        pytest.fail(f"still posting or failing after {max_rounds} rounds: {figures}")
    for report in result.reports:  # the asset checks agree once everything has landed
        for name in ("complete", "no_duplicates", "read_back_matches", "totals_match"):
            check = report.checks[name]
            # totals_match may only warn, for records quarantined for a mapping reason
            ok = check.passed or (name == "totals_match" and check.severity == "WARN")
            assert ok, f"{'/'.join(report.kinds)} check {name}: {check.detail}"
    figures["procore_calls"] = procore.stats.calls
    figures["procore_retries"] = procore.stats.retries
    figures["procore_429"] = procore.stats.throttled_429
    figures["procore_tokens"] = procore.stats.tokens
    figures["deltek_calls"] = deltek.stats.calls
    figures["deltek_retries"] = deltek.stats.retries
    figures["deltek_tokens"] = deltek.stats.tokens
    trail = store.audit_trail()
    events = Counter(row["event"] for row in trail)
    for name in ("dedup_hit", "rejected", "error", "firm_adopted"):
        figures[f"audit_{name}"] = events.get(name, 0)
    for name in ("ambiguous", "retry"):  # audited per record; count the batches
        figures[f"{name}_batches"] = len(
            {row["detail"].get("batch") for row in trail if row["event"] == name}
        )
    for name, value in box.procore.faults.counters.items():
        figures[f"procore_fault_{name}"] = value
    for name, value in box.deltek.faults.counters.items():
        figures[f"fault_{name}"] = value
    return figures


def small_batches(box, size: int) -> None:
    """More, smaller Deltek writes: more chances for a write to go wrong."""
    text = box.mappings_path.read_text(encoding="utf-8")
    box.mappings_path.write_text(
        text.replace("defaults:\n", f"defaults:\n  batch_size: {size}\n", 1), encoding="utf-8"
    )


def _chaos(tmp_path: Path, *, seed: int, deltek_stalls: bool, batch_size: int = 50) -> None:
    box = start_sandbox(
        records=RECORDS,
        workdir=tmp_path,
        procore_faults=procore_faults(seed),
        deltek_faults=deltek_faults(seed + 1, stalls=deltek_stalls),
        hourly_limit=10**7,
        spike_limit=10**7,
    )
    try:
        small_batches(box, batch_size)
        store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
        figures = run_until_quiet(box, store)
        figures["records"] = box.data.summary["records"]
        problems, expected = verify(box)
        figures.update(expected)
        print("chaos figures:", " ".join(f"{k}={v}" for k, v in sorted(figures.items())))
        assert not problems, f"{len(problems)} difference(s):\n" + "\n".join(problems[:30])
        # the faults really happened, or the test proves nothing
        assert figures["fault_deltek_lost_response"] > 0
        assert figures["procore_429"] > 0
        assert figures["procore_retries"] > 0
        assert expected["deltek_vouchers"] > 500 and expected["deltek_entries"] > 100
    finally:
        box.stop()


@pytest.mark.slow
def test_chaos_every_fault_each_record_exactly_once(tmp_path: Path) -> None:
    _chaos(tmp_path, seed=11, deltek_stalls=False, batch_size=20)


@pytest.mark.slow
def test_chaos_with_deltek_stalls_that_commit_late(tmp_path: Path) -> None:
    """A Deltek write that outlives the client's timeout lands after the look-up."""
    _chaos(tmp_path, seed=23, deltek_stalls=True, batch_size=10)


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


def test_vendor_map_retry_accepts_the_firms_it_created(tmp_path: Path) -> None:
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

        with pytest.raises(DeltekAmbiguousError):
            reference.build_vendor_map(store, mapping, LoseSecondFirm())
        retry = reference.build_vendor_map(store, mapping, deltek)  # as Dagster's retry does
        stale = {pid: p for pid, p in retry.problems.items() if "points to no firm" in p}
        assert not stale, stale
    finally:
        box.stop()
