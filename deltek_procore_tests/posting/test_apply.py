"""The write path against the sandbox: a document is posted only once Deltek shows it.

Each test runs the real `sync` job in-process (sync_harness) and then reads the
Deltek simulator's own state, never the connector's ledger, to decide what landed.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest

from deltek_procore.sandbox.runner import sandbox_periods
from deltek_procore_tests.defs.sync_harness import Harness, assert_deltek_exact, harness

RECORDS = 300


@pytest.fixture
def h(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with harness(tmp_path / "home", monkeypatch, records=RECORDS, receiver=False) as h:
        yield h


def sync(h: Harness, periods: list[str]) -> dg.ExecuteInProcessResult:
    return h.sync(periods[0], periods[-1])


def vouchers(h: Harness) -> Counter:
    return Counter((v["Vendor"], v["Invoice"]) for v in h.box.deltek.ap_vouchers())


def ledger(h: Harness, kinds=("requisition", "direct_cost")) -> Counter:
    return Counter(r.status for r in h.store.ledger_rows(kinds=list(kinds)))


def test_a_2xx_with_an_empty_body_that_saved_nothing_is_never_recorded_as_posted(h) -> None:
    periods = sandbox_periods(h.box)[-3:]
    h.box.deltek.faults.configure(rate_empty_success=1.0)
    sync(h, periods)
    assert vouchers(h) == Counter() and h.box.deltek.journal_entries() == []
    states = ledger(h, ("requisition", "direct_cost", "work_order", "purchase_order",
                        "change_order"))  # fmt: skip
    assert states["posted"] == states["adopted"] == 0
    assert states["failed"] > 0
    failed = h.store.ledger_rows(statuses=["failed"])[0]
    assert "does not show it" in failed.reason
    events = Counter(e["event"] for e in h.store.audit_trail())
    assert events["unconfirmed"] > 0 and events["retry"] > 0
    h.box.deltek.faults.configure(rate_empty_success=0.0)
    sync(h, periods)
    counts = assert_deltek_exact(h, periods)
    assert counts["posted"] > 0


def test_a_garbled_2xx_that_did_save_is_verified_and_posted_once(h) -> None:
    periods = sandbox_periods(h.box)[-2:]
    h.box.deltek.faults.configure(rate_garbled_success=1.0, hollow_success_saves=True)
    sync(h, periods)
    counts = assert_deltek_exact(h, periods)
    assert counts["posted"] > 0 and ledger(h)["failed"] == 0
    assert h.box.deltek.faults.counters.get("deltek_garbled_success_saved", 0) > 0


def test_a_hand_keyed_voucher_for_another_amount_goes_to_review_not_adoption(h) -> None:
    periods = sandbox_periods(h.box)
    sync(h, periods[:1])  # vendor firms exist and are linked from here on
    target_period = periods[-1]
    links = h.store.vendor_links()
    pick = next(
        c
        for c in h.box.procore.data.procore["direct_costs"]
        if c["status"] == "approved"
        and c["direct_cost_type"] == "invoice"
        and (c.get("direct_cost_date") or "").startswith(target_period)
        and c.get("vendor_id") in links
    )
    vendor = links[pick["vendor_id"]]["deltek_vendor"]
    client = h.resources()["deltek"].client()
    client.create_ap_batch(
        {
            "Batch": "CLERK0001",
            "Description": "keyed by hand",
            "Period": int(target_period.replace("-", "")),
            "Total": 100,
            "apMaster": [
                {"Batch": "CLERK0001", "MasterPKey": "CLERKMASTER1", "Vendor": vendor,
                 "Invoice": pick["invoice_number"], "InvoiceDate": "2026-10-01T00:00:00.000",
                 "TransDate": "2026-10-01T00:00:00.000", "LiabCode": "AP", "BankCode": "OPER",
                 "PayTerms": "Next", "Seq": 1}
            ],
            "apDetail": [
                {"Batch": "CLERK0001", "MasterPKey": "CLERKMASTER1", "PKey": "CLERKDETAIL1",
                 "Seq": 1, "WBS1": "", "WBS2": "", "WBS3": "", "Account": "5100", "Amount": 100}
            ],
        }
    )  # fmt: skip
    sync(h, [target_period])
    row = h.store.latest("direct_cost", [pick["id"]])[pick["id"]]
    assert row.status == "review", row.reason
    assert "with other lines" in row.reason and "planned" in row.reason
    held = [
        v for v in h.box.deltek.ap_vouchers() if (v["Vendor"], v["Invoice"]) ==
        (vendor, pick["invoice_number"])
    ]  # fmt: skip
    assert [sum(Decimal(str(d["Amount"])) for d in v["apDetail"]) for v in held] == [Decimal("100")]
    review = [r for r in h.store.reviews() if r["record_id"] == pick["id"]]
    assert review and review[0]["new_amount"] == str(
        Decimal(pick["grand_total"]).quantize(Decimal("0.01"))
    )
    trail = [e for e in h.store.audit_trail("direct_cost", pick["id"])]
    assert any(e["event"] == "deltek_differs" for e in trail)
