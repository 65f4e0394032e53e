"""Deltek refuses one record of a batch of fifty: that record waits, the other 49 post.

The maps are built while everything is fine; then, before posting, a person changes
Deltek underneath the connector (a vendor firm made inactive, a GL account retired).
Deltek answers the whole batch with a 400 naming the record; the connector must
split the batch until the record is isolated, quarantine it with Deltek's message,
and post the rest exactly once.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deltek_procore.mapping.config import MappingFile
from deltek_procore.pipeline.postings import AP_KINDS, PostingReport, run_postings
from deltek_procore.posting.plan import PlanRow
from deltek_procore.sandbox.runner import sandbox_periods
from deltek_procore.state.store import StateStore
from deltek_procore_tests.chaos.harness import (
    actual_deltek,
    expected_deltek,
    mapped_sandbox,
    tenant_of,
)

RECORDS = 2500
BATCH = 50
POST_ROUTE = "POST DataEntry/{tt}Control"


@dataclass
class Ready:
    """A sandbox with maps built and the first AP batch of the busiest period planned."""

    box: Any
    store: StateStore
    deltek: Any
    mapping: MappingFile
    period: str
    chunk: list[PlanRow]

    def post(self) -> PostingReport:
        return run_postings(
            store=self.store,
            deltek=self.deltek,
            mapping=self.mapping,
            kinds=AP_KINDS,
            periods=[self.period],
            tenant=tenant_of(self.box.env),
        )


def _ready(tmp_path: Path) -> Ready:
    ready = mapped_sandbox(tmp_path, RECORDS)
    box, store, deltek, mapping, tenant = (
        ready.box, ready.store, ready.deltek, ready.mapping, ready.tenant,
    )  # fmt: skip
    preview = run_postings(
        store=store,
        deltek=deltek,
        mapping=mapping,
        kinds=AP_KINDS,
        periods=sandbox_periods(box),
        tenant=tenant,
        apply=False,
    )
    by_period: dict[str, list[PlanRow]] = {}
    for row in preview.plan:
        if row.action == "create":
            by_period.setdefault(row.period or "", []).append(row)
    period, rows = max(by_period.items(), key=lambda item: len(item[1]))
    assert len(rows) > BATCH, f"the busiest period has only {len(rows)} vouchers"
    return Ready(box, store, deltek, mapping, period, rows[:BATCH])  # apply's first batch


def _pick(chunk: list[PlanRow], key: Callable[[PlanRow], set[str]]) -> tuple[PlanRow, str]:
    """A record holding a value no other record of the chunk holds."""
    counts = Counter(value for row in chunk for value in key(row))
    for row in chunk:
        unique = sorted(v for v in key(row) if counts[v] == 1)
        if unique:
            return row, unique[0]
    pytest.skip("no value is unique to one record of the batch in this data set")


def _check(ready: Ready, bad: PlanRow, message: str) -> None:
    posts_before = ready.box.deltek.call_counts().get(POST_ROUTE, 0)
    report = ready.post()
    posts = ready.box.deltek.call_counts().get(POST_ROUTE, 0) - posts_before
    results = {(r["kind"], r["record_id"]): r for r in report.outcome.results}
    mine = results[(bad.kind, bad.record_id)]
    assert mine["status"] == "quarantined", mine
    assert mine["reason"].startswith("Deltek rejected it: "), mine["reason"]
    assert message in mine["reason"], mine["reason"]
    others = [results[(r.kind, r.record_id)] for r in ready.chunk if r is not bad]
    assert len(others) == BATCH - 1
    assert Counter(r["status"] for r in others) == Counter({"posted": BATCH - 1})
    # binary split: one failed batch, then two halves per level down to the record
    batches_of_period = math.ceil(sum(1 for r in report.plan if r.action == "create") / BATCH)
    assert posts <= batches_of_period + 2 * math.ceil(math.log2(BATCH)), posts
    # Deltek holds each of the 49 once, with the right amount; the refused one not at all
    want_ap, _ = expected_deltek(ready.box.data, ready.mapping, ready.box.deltek.firms())
    by_source = {w.source: w for w in want_ap.values()}
    got_ap, _ = actual_deltek(ready.box.deltek)
    for row in ready.chunk:
        want = by_source[f"{row.kind} {row.record_id}"]
        got = got_ap.get(want.key, [])
        if row is bad:
            assert not got, got
        else:
            assert len(got) == 1 and got[0].lines == want.lines, (want, got)
    ledger = ready.store.latest(bad.kind, [bad.record_id])[bad.record_id]
    assert ledger.status == "quarantined" and message in (ledger.reason or "")
    audit = [
        e for e in ready.store.audit_trail(bad.kind, bad.record_id) if e["event"] == "rejected"
    ]
    assert audit and message in audit[-1]["detail"]["message"]
    again = ready.post()  # a re-run posts nothing twice and still refuses the record
    assert again.counts.get("posted", 0) == 0, again.counts
    assert again.counts.get("failed", 0) == 0, again.counts


def test_inactive_vendor_firm_quarantines_one_record_of_fifty(tmp_path: Path) -> None:
    ready = _ready(tmp_path)
    try:
        bad, vendor = _pick(ready.chunk, lambda row: {row.vendor or ""})
        firm = next(f for f in ready.box.deltek.firms() if f["Vendor"] == vendor)
        ready.deltek._call("PUT", f"firm/{firm['ClientID']}", body={"Status": "I"})
        assert next(f for f in ready.box.deltek.firms() if f["Vendor"] == vendor)["Status"] == "I"
        _check(ready, bad, f"Vendor '{vendor}' is not an active vendor")
    finally:
        ready.box.stop()


def test_retired_gl_account_quarantines_one_record_of_fifty(tmp_path: Path) -> None:
    ready = _ready(tmp_path)
    try:
        bad, account = _pick(
            ready.chunk, lambda row: {line.charge.account for line in row.document.lines}
        )
        sim = ready.box.deltek
        with sim._lock:  # Deltek has no API to retire an account; a person does it in the UI
            sim._accounts[account]["Status"] = "I"
        _check(ready, bad, f"Account '{account}' is not active")
    finally:
        ready.box.stop()
