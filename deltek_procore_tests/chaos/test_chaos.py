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

from deltek_procore.mapping.config import load_mapping
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
        faults.configure(rate_timeout=0.03, timeout_s=DELTEK_READ_TIMEOUT * 1.5)
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
    figures = {"rounds": 0, "posted": 0, "adopted": 0, "failed": 0, "step_errors": 0,
               "step_retries": 0, "quarantined": 0}
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
    figures["procore_calls"] = procore.stats.calls
    figures["procore_retries"] = procore.stats.retries
    figures["procore_429"] = procore.stats.throttled_429
    figures["procore_tokens"] = procore.stats.tokens
    figures["deltek_calls"] = deltek.stats.calls
    figures["deltek_retries"] = deltek.stats.retries
    figures["deltek_tokens"] = deltek.stats.tokens
    events = Counter(row["event"] for row in store.audit_trail())
    for name in ("ambiguous", "retry", "dedup_hit", "rejected", "error", "firm_adopted"):
        figures[f"audit_{name}"] = events.get(name, 0)
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
