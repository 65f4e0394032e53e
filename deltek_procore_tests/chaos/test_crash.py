"""Crash: SIGKILL the posting process at random moments; restarts never double-post.

The sandbox runs in this (the test) process, so Deltek keeps what a killed worker
sent, including a write that was still in flight when the worker died. The state
store is a SQLite file the workers share. After several kills a last worker runs to
completion and Deltek must hold every approved record exactly once.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from pathlib import Path

import pytest

from deltek_procore.sandbox.faults import Faults
from deltek_procore.sandbox.runner import start_sandbox
from deltek_procore.state.store import StateStore
from deltek_procore_tests.chaos.crash_worker import BATCH_MARK, Worker, worker_env
from deltek_procore_tests.chaos.harness import verify

RECORDS = 1500
KILLS = 8
SEED = int(os.environ.get("CRASH_SEED", "20260"))


def slow_deltek() -> Faults:
    """Every Deltek call takes a while, so a kill lands mid-post; writes lose answers too."""
    faults = Faults()
    faults.configure(latency_ms=40, latency_jitter_ms=30, rate_lost_response=0.1, seed=SEED)
    return faults


def _in_doubt(box, state_url: str) -> int:
    """Records a killed worker left as 'posting' that Deltek already holds: the risky window."""
    store = StateStore(state_url)
    try:
        held = {(str(v["Vendor"]), str(v["Invoice"])) for v in box.deltek.ap_vouchers()}
        held |= {("", str(e["RefNo"])) for e in box.deltek.journal_entries()}
        return sum(
            1
            for row in store.ledger_rows(statuses=("posting",))
            if (row.deltek_vendor or "", row.document or "") in held
        )
    finally:
        store.dispose()


@pytest.mark.slow
def test_sigkill_during_posting_never_duplicates_or_loses(tmp_path: Path) -> None:
    box = start_sandbox(
        records=RECORDS,
        workdir=tmp_path,
        deltek_faults=slow_deltek(),
        hourly_limit=10**7,
        spike_limit=10**7,
    )
    try:
        text = box.mappings_path.read_text(encoding="utf-8")
        box.mappings_path.write_text(
            text.replace("defaults:\n", "defaults:\n  batch_size: 20\n", 1), encoding="utf-8"
        )
        state_url = f"sqlite:///{tmp_path / 'state.db'}"
        env = worker_env(box, state_url)
        rng = random.Random(SEED)
        kills: list[float] = []
        in_doubt: list[int] = []
        finished_early = 0
        for number in range(KILLS):
            worker = Worker.start(env)
            # even runs: die mid-post (once a batch went through); odd runs: die anywhere
            # (ingest, firm creation, maps, the look-up, posting)
            if number % 2 == 0 and not worker.wait_for(BATCH_MARK, timeout=120):
                finished_early += 1
                worker.result(timeout=120)
                continue
            delay = rng.uniform(0.2, 3.0)
            time.sleep(delay)
            if worker.kill():
                kills.append(round(time.monotonic() - worker.started, 2))
                in_doubt.append(_in_doubt(box, state_url))
            else:
                finished_early += 1
                worker.result(timeout=5)
        final: dict | None = None
        for _ in range(4):  # runs to completion; then one more that must have nothing to do
            worker = Worker.start(env)
            final = worker.result(timeout=300)
            assert final is not None, "the worker printed no result"
            assert worker.proc.returncode == 0, final
            if final["quiet"]:
                break
        assert final is not None and final["quiet"], f"still posting after restarts: {final}"
        problems, figures = verify(box)
        store = StateStore(state_url)
        events = Counter(row["event"] for row in store.audit_trail())
        print(
            f"crash: seed={SEED} records={box.data.summary['records']} kills={len(kills)} at {kills}s finished_early={finished_early} "
            f"in_doubt_after_each_kill={in_doubt} "
            f"dedup_hits={events['dedup_hit']} ambiguous={events['ambiguous']} "
            f"lost_responses={box.deltek.faults.counters.get('deltek_lost_response', 0)} "
            + " ".join(f"{k}={v}" for k, v in figures.items())
        )
        assert not problems, f"{len(problems)} difference(s):\n" + "\n".join(problems[:30])
        assert len(kills) >= KILLS // 2, "too few kills landed; the test proved little"
        # posting is the only writer of the ledger's "posting" state; none may be left over
        left = store.ledger_rows(statuses=("posting",))
        assert not left, f"{len(left)} ledger row(s) still say 'posting'"
    finally:
        box.stop()
