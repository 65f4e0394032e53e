"""Late changes: a record edited in Procore after it was posted never becomes a second voucher."""

from __future__ import annotations

from decimal import Decimal

import pytest

from deltek_procore.posting.periods import period_of
from deltek_procore_tests.defs.sync_harness import DONE, harness

CENT = Decimal("0.01")


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    with harness(tmp_path_factory.mktemp("late"), mp, receiver=False) as h:
        h.sync()
        yield h
    mp.undo()


def _set_policy(h, policy: str) -> None:
    text = h.box.mappings_path.read_text()
    lines = [ln for ln in text.splitlines() if "late_change_policy" not in ln]
    at = lines.index("defaults:") + 1
    lines.insert(at, f"  late_change_policy: {policy}")
    h.box.mappings_path.write_text("\n".join(lines) + "\n")


def _posted(h, kind: str, n: int = 1, skip: set[int] | None = None) -> list:
    rows = [
        r
        for r in h.store.ledger_rows(kinds=[kind], statuses=("posted",))
        if r.record_id not in (skip or set())
    ]
    return rows[:n]


def _vouchers(h, vendor: str, invoice_prefix: str) -> list[dict]:
    return [
        v
        for v in h.box.deltek.ap_vouchers()
        if v["Vendor"] == vendor and v["Invoice"].startswith(invoice_prefix)
    ]


def _total(voucher: dict) -> Decimal:
    return sum((Decimal(str(d["Amount"])) for d in voucher["apDetail"]), Decimal("0")).quantize(
        CENT
    )


def test_amount_change_under_adjust_posts_exactly_the_delta(synced):
    h = synced
    _set_policy(h, "adjust")
    row = _posted(h, "direct_cost")[0]
    record = next(r for r in h.box.procore.data.procore["direct_costs"] if r["id"] == row.record_id)
    old = Decimal(record["grand_total"])
    new = old + Decimal("1234.56")
    h.box.procore.set_record("direct_costs", row.record_id, {"grand_total": str(new)})
    month = period_of("direct_cost", record)

    h.sync(month, month)
    vouchers = _vouchers(h, row.deltek_vendor, row.document)
    assert sorted(v["Invoice"] for v in vouchers) == sorted([row.document, f"{row.document}-A2"])
    adjusting = next(v for v in vouchers if v["Invoice"].endswith("-A2"))
    assert _total(adjusting) == Decimal("1234.56")
    latest = h.store.latest("direct_cost", [row.record_id])[row.record_id]
    assert (latest.status, latest.revision) == ("adjusted", 2)

    # the next sync (and the one after) finds nothing to do
    h.sync(month, month)
    h.sync(month, month)
    assert len(_vouchers(h, row.deltek_vendor, row.document)) == 2

    # a second edit adjusts again, from what Deltek now holds, not from the original
    h.box.procore.set_record("direct_costs", row.record_id, {"grand_total": str(old)})
    h.sync(month, month)
    vouchers = _vouchers(h, row.deltek_vendor, row.document)
    assert len(vouchers) == 3
    second = next(v for v in vouchers if v["Invoice"].endswith("-A3"))
    assert _total(second) == Decimal("-1234.56")
    assert sum(_total(v) for v in vouchers) == old.quantize(CENT)


def test_amount_change_under_review_posts_nothing_and_queues_it(synced):
    h = synced
    _set_policy(h, "review")
    touched = {
        r.record_id for r in h.store.ledger_rows(kinds=["direct_cost"], statuses=("adjusted",))
    }
    row = _posted(h, "direct_cost", skip=touched)[0]
    record = next(r for r in h.box.procore.data.procore["direct_costs"] if r["id"] == row.record_id)
    month = period_of("direct_cost", record)
    new = Decimal(record["grand_total"]) - Decimal("100.00")
    before = len(h.box.deltek.ap_vouchers())
    h.box.procore.set_record("direct_costs", row.record_id, {"grand_total": str(new)})

    h.sync(month, month)
    h.sync(month, month)
    assert len(h.box.deltek.ap_vouchers()) == before
    items = [r for r in h.store.reviews() if r["record_id"] == row.record_id]
    assert len(items) == 1
    assert items[0]["kind"] == "direct_cost"
    assert Decimal(items[0]["posted_amount"]) == Decimal(record["grand_total"]) + Decimal("100")
    assert Decimal(items[0]["new_amount"]) == Decimal("-100.00")  # the delta it would post
    assert h.store.latest("direct_cost", [row.record_id])[row.record_id].status == "review"


def test_voided_commitment_under_adjust_gets_a_reversing_entry(synced):
    h = synced
    _set_policy(h, "adjust")
    row = _posted(h, "work_order")[0]
    record = next(
        r for r in h.box.procore.data.procore["work_order_contracts"] if r["id"] == row.record_id
    )
    month = period_of("work_order", record)
    h.box.procore.set_record("work_order_contracts", row.record_id, {"status": "Void"})

    h.sync(month, month)
    h.sync(month, month)
    entries = [j for j in h.box.deltek.journal_entries() if j["RefNo"].startswith(row.document)]
    assert sorted(j["RefNo"] for j in entries) == sorted([row.document, f"{row.document}R2"])
    original = next(j for j in entries if j["RefNo"] == row.document)
    reversal = next(j for j in entries if j["RefNo"] != row.document)

    def net(entry: dict) -> dict:
        out: dict = {}
        for d in entry["jeDetail"]:
            key = (d["WBS1"], d["Account"])
            out[key] = out.get(key, 0) + round(d["DebitAmount"] - d["CreditAmount"], 2)
        return out

    assert {k: -v for k, v in net(original).items()} == net(reversal)
    latest = h.store.latest("work_order", [row.record_id])[row.record_id]
    assert latest.status in DONE and latest.revision == 2


def _entries(h, ref: str) -> list[dict]:
    return [j for j in h.box.deltek.journal_entries() if j["RefNo"].startswith(ref)]


def _net(entries: list[dict]) -> Decimal:
    return sum(
        (
            Decimal(str(d["DebitAmount"])) - Decimal(str(d["CreditAmount"]))
            for j in entries
            for d in j["jeDetail"]
            if d["Account"] != "2150"
        ),
        Decimal("0"),
    ).quantize(CENT)


def _void_one(h, skip: set[int]):
    _set_policy(h, "adjust")
    row = _posted(h, "work_order", skip=skip)[0]
    record = next(
        r for r in h.box.procore.data.procore["work_order_contracts"] if r["id"] == row.record_id
    )
    month = period_of("work_order", record)
    h.box.procore.set_record("work_order_contracts", row.record_id, {"status": "Void"})
    h.sync(month, month)
    assert len(_entries(h, row.document)) == 2
    return row, record, month


def _touched(h) -> set[int]:
    return {r.record_id for r in h.store.ledger_rows(kinds=["work_order"]) if r.revision > 1}


def test_editing_a_voided_commitment_does_not_reverse_twice(synced):
    h = synced
    row, _record, month = _void_one(h, _touched(h))
    h.box.procore.set_record("work_order_contracts", row.record_id, {"title": "voided, renamed"})
    h.sync(month, month)
    assert len(_entries(h, row.document)) == 2
    assert _net(_entries(h, row.document)) == 0


def test_reapproving_a_voided_commitment_posts_it_again(synced):
    h = synced
    row, record, month = _void_one(h, _touched(h))
    h.box.procore.set_record("work_order_contracts", row.record_id, {"status": "Approved"})
    h.sync(month, month)
    assert _net(_entries(h, row.document)) == Decimal(record["grand_total"]).quantize(CENT)
