"""Concurrency: two syncs of the same periods at once post each record once.

Both syncs start together (threads released by a barrier, or two processes) against
one state store: PostgreSQL in a fresh schema (the production set-up), and SQLite.
The tenant lease makes them take turns at the Deltek writes; whichever comes second
must find the ledger (or Deltek) already holding everything.

Known bug (pipeline/reference.py, build_vendor_map): the sync that maps vendors
second reads a Deltek firm snapshot taken before the first sync created the missing
firms, so the links the first sync stored look broken ("stored link ... points to no
firm") and that sync's vendor map quarantines their spend. Nothing is posted twice
and the next sync posts the rest, but a race-dependent share of records waits one
sync longer. When that happens the test ends as xfail after the strict checks.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from deltek_procore.mapping.config import load_mapping
from deltek_procore.sandbox.faults import Faults
from deltek_procore.sandbox.runner import sandbox_periods, start_sandbox
from deltek_procore.state.store import StateStore
from deltek_procore_tests.chaos.crash_worker import Worker, worker_env
from deltek_procore_tests.chaos.harness import (
    RoundResult,
    make_clients,
    sync_round,
    tenant_of,
    verify,
)

RECORDS = 800
STALE_LINK = "points to no firm"
STALE_LINK_BUG = (
    "pipeline/reference.py build_vendor_map: a firm snapshot older than the links another "
    "sync stored makes them look broken ('stored link ... points to no firm')"
)


def _box(tmp_path: Path):
    faults = Faults()
    faults.configure(latency_ms=5)  # long enough for the two syncs to overlap
    return start_sandbox(
        records=RECORDS,
        workdir=tmp_path,
        deltek_faults=faults,
        hourly_limit=10**7,
        spike_limit=10**7,
    )


def _round(box, state_url: str, barrier: threading.Barrier | None = None) -> RoundResult:
    store = StateStore(state_url)  # one engine per sync, as two machines would have
    procore, deltek = make_clients(box.env)
    try:
        if barrier is not None:
            barrier.wait(timeout=30)
        return sync_round(
            store=store,
            procore=procore,
            deltek=deltek,
            mapping=load_mapping(box.mappings_path),
            periods=sandbox_periods(box),
            tenant=tenant_of(box.env),
        )
    finally:
        store.dispose()


def _two_threads(box, state_url: str) -> list[dict]:
    barrier = threading.Barrier(2)
    results: list[RoundResult | BaseException] = [RuntimeError("did not run")] * 2

    def run(slot: int) -> None:
        try:
            results[slot] = _round(box, state_url, barrier)
        except BaseException as exc:  # noqa: BLE001 - reported by the asserting thread
            results[slot] = exc

    threads = [threading.Thread(target=run, args=(slot,)) for slot in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    out = []
    for item in results:
        assert not isinstance(item, BaseException), f"a sync raised: {item!r}"
        out.append(
            {
                "counts": dict(item.counts),
                "errors": item.errors,
                "clean": item.clean,
                "reasons": [r["reason"] for rep in item.reports for r in rep.quarantined()],
            }
        )
    return out


def _two_processes(box, state_url: str) -> list[dict]:
    env = worker_env(box, state_url)
    workers = [Worker.start(env), Worker.start(env)]
    out = []
    for worker in workers:
        summary = worker.result(timeout=600)
        assert summary is not None, "a worker printed no result"
        summary["reasons"] = summary.get("reasons", [])
        out.append(summary)
    return out


def _check(box, state_url: str, summaries: list[dict], label: str) -> None:
    """Strict: both clean, nothing twice. Then a later sync completes whatever is left."""
    for number, summary in enumerate(summaries, 1):
        assert summary["clean"], f"sync {number} did not finish cleanly: {summary['errors']}"
    posted = [s["counts"].get("posted", 0) + s["counts"].get("adopted", 0) for s in summaries]
    problems, figures = verify(box)
    stale = sum(1 for s in summaries for reason in s["reasons"] if STALE_LINK in reason)
    print(
        f"concurrency ({label}): posted per sync={posted} stale_link_quarantines={stale} "
        + " ".join(f"{k}={v}" for k, v in figures.items())
    )
    wrong = [p for p in problems if not p.endswith("missing in Deltek")]
    assert not wrong, f"{len(wrong)} double or wrong posting(s):\n" + "\n".join(wrong[:30])
    missing = len(problems)
    follow_up = _round(box, state_url)
    assert follow_up.clean, follow_up.errors
    after, _ = verify(box)
    assert not after, f"{len(after)} difference(s) after a follow-up sync:\n" + "\n".join(
        after[:30]
    )
    if missing:
        if stale:
            pytest.xfail(f"{missing} record(s) waited for the follow-up sync: {STALE_LINK_BUG}")
        pytest.fail(f"{missing} record(s) were missing after both syncs: {problems[:10]}")
    assert sum(posted) == figures["expected_vouchers"] + figures["expected_entries"]


@pytest.mark.postgres
@pytest.mark.slow
def test_two_threads_same_periods_postgres(tmp_path: Path, pg_url: str) -> None:
    box = _box(tmp_path)
    try:
        _check(box, pg_url, _two_threads(box, pg_url), "threads, PostgreSQL")
    finally:
        box.stop()


@pytest.mark.postgres
@pytest.mark.slow
def test_two_processes_same_periods_postgres(tmp_path: Path, pg_url: str) -> None:
    box = _box(tmp_path)
    try:
        _check(box, pg_url, _two_processes(box, pg_url), "processes, PostgreSQL")
    finally:
        box.stop()


@pytest.mark.slow
def test_two_threads_same_periods_sqlite(tmp_path: Path) -> None:
    box = _box(tmp_path)
    url = f"sqlite:///{tmp_path / 'state.db'}"
    StateStore(url).dispose()  # create the schema first: see the test below
    try:
        _check(box, url, _two_threads(box, url), "threads, SQLite")
    finally:
        box.stop()


def test_two_stores_create_a_new_sqlite_file_at_once(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    for attempt in range(10):
        url = f"sqlite:///{tmp_path / f'fresh{attempt}.db'}"
        barrier = threading.Barrier(4)

        def open_store(url: str = url, barrier: threading.Barrier = barrier) -> None:
            barrier.wait(timeout=10)
            try:
                StateStore(url).dispose()
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=open_store) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert not errors, f"{len(errors)} of 40 store openings failed: {errors[0]!r}"
