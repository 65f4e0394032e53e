"""Posting runs: a long run hands each month's result rows on and keeps only what its
report shows; two tenants writing to one Deltek database take turns.

Two sandboxes seeded alike are posted over every month: one run keeps every row in
memory (as replay and the plan preview do), the other hands them to `rows_to` month by
month (as the posting assets do). Both must post the same, report the same counts and
totals, and together the handed rows must be exactly the rows the first run kept."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from deltek_procore.pipeline.postings import AP_KINDS, SHOWN_ROWS, PostingReport, run_postings
from deltek_procore.posting.plan import ATTENTION
from deltek_procore.sandbox.runner import sandbox_periods
from deltek_procore.state.store import StateStore
from deltek_procore_tests.chaos.harness import Mapped, mapped_sandbox

RECORDS = 1500
KEY = ("kind", "record_id", "period", "status", "amount", "document", "reason")


def post_ap(ready: Mapped, rows_to: Any = None) -> PostingReport:
    """Every seeded month's AP postings, as the AP asset runs them."""
    return run_postings(
        store=ready.store,
        deltek=ready.deltek,
        mapping=ready.mapping,
        kinds=AP_KINDS,
        periods=sandbox_periods(ready.box),
        tenant=ready.tenant,
        rows_to=rows_to,
    )


def post_every_month(tmp_path: Path, rows_to: Any = None) -> tuple[PostingReport, dict[str, Any]]:
    ready = mapped_sandbox(tmp_path, RECORDS)
    try:
        return post_ap(ready, rows_to), ready.box.deltek.call_counts()
    finally:
        ready.box.stop()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Any]:
    handed: dict[str, list[dict[str, Any]]] = {}

    def rows_to(period: str, rows: list[dict[str, Any]]) -> None:
        assert period not in handed, f"{period} handed on twice"
        handed[period] = [dict(r) for r in rows]

    kept, kept_calls = post_every_month(tmp_path_factory.mktemp("kept"))
    shed, shed_calls = post_every_month(tmp_path_factory.mktemp("shed"), rows_to)
    return {"kept": kept, "shed": shed, "handed": handed, "calls": (kept_calls, shed_calls)}


def project(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(tuple(str(r.get(k, "")) for k in KEY) for r in rows)


def test_the_rows_handed_on_are_exactly_the_rows_a_run_keeps(runs) -> None:
    kept, handed = runs["kept"], runs["handed"]
    assert kept.outcome is not None and len(kept.outcome.results) > 500
    assert project([r for rows in handed.values() for r in rows]) == project(kept.outcome.results)
    assert set(handed) == set(kept.parts)


def test_counts_totals_and_checks_do_not_change_when_rows_are_shed(runs) -> None:
    kept, shed = runs["kept"], runs["shed"]
    assert shed.counts == kept.counts and kept.counts.get("posted", 0) > 100
    for status in ("posted", "adopted", "quarantined", "skipped"):
        assert shed.total(status) == kept.total(status)
    assert {k: c.passed for k, c in shed.checks.items()} == {
        k: c.passed for k, c in kept.checks.items()
    }
    assert shed.summary()["by_period"] == kept.summary()["by_period"]
    assert runs["calls"][0] == runs["calls"][1], "shedding rows changed what was sent to Deltek"


def test_the_report_keeps_every_row_a_person_acts_on_and_a_table_of_changes(runs) -> None:
    kept, shed = runs["kept"], runs["shed"]
    needs_person = [r for r in kept.outcome.results if r["status"] in ATTENTION]
    assert needs_person, "the seeded data set has quarantines"
    assert project(shed.quarantined()) == project(kept.quarantined())
    assert project([r for r in shed.outcome.results if r["status"] in ATTENTION]) == project(
        needs_person
    )
    for period, part in shed.parts.items():
        others = [r for r in part.outcome.results if r["status"] not in ATTENTION]
        assert len(others) <= SHOWN_ROWS, period
        assert all(r["status"] != "skipped" for r in others)
    # what the run holds is bounded by the months and the rows needing a person, not the records
    assert len(shed.outcome.results) <= len(needs_person) + SHOWN_ROWS * len(shed.parts)
    assert len(shed.outcome.results) < len(kept.outcome.results)


def test_a_tenant_posting_to_a_deltek_database_another_tenant_is_writing_to_waits(
    tmp_path,
) -> None:
    """Two Procore companies feeding one Deltek ledger: while another tenant's run holds
    that database, a run posts nothing; once it is free, it posts."""
    ready = mapped_sandbox(tmp_path, 300)
    other = StateStore(ready.store.url, tenant="second_company")
    posts = "POST DataEntry/apControl"
    done: list[PostingReport] = []
    try:
        with other.deltek_lease(ready.tenant):
            run = threading.Thread(target=lambda: done.append(post_ap(ready)))
            run.start()
            run.join(timeout=3)
            assert run.is_alive() and not done
            assert ready.box.deltek.call_counts().get(posts, 0) == 0
        run.join(timeout=120)
        assert done and done[0].counts.get("posted", 0) > 0
        assert ready.box.deltek.call_counts().get(posts, 0) > 0
    finally:
        other.dispose()
        ready.box.stop()
