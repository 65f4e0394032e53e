"""The review queue end to end: an invoice edited after posting waits, a person approves or
dismisses it through `deltek-procore review`, and Deltek shows exactly what they decided."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from deltek_procore.cli import main
from deltek_procore.posting.periods import period_of
from deltek_procore_tests.defs.sync_harness import harness

CENT = Decimal("0.01")


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    with harness(tmp_path_factory.mktemp("review"), mp, records=300, receiver=False) as h:
        h.sync()
        yield h
    mp.undo()


def edit_posted_direct_cost(h, skip: set[int], delta: str) -> tuple[object, str]:
    row = next(
        r
        for r in h.store.ledger_rows(kinds=["direct_cost"], statuses=("posted",))
        if r.record_id not in skip
    )
    record = next(r for r in h.box.procore.data.procore["direct_costs"] if r["id"] == row.record_id)
    new = Decimal(record["grand_total"]) + Decimal(delta)
    h.box.procore.set_record("direct_costs", row.record_id, {"grand_total": str(new)})
    month = period_of("direct_cost", record)
    h.sync(month, month)
    return row, month


def invoices(h, vendor: str, invoice: str) -> dict[str, Decimal]:
    return {
        v["Invoice"]: sum((Decimal(str(d["Amount"])) for d in v["apDetail"]), Decimal(0)).quantize(
            CENT
        )
        for v in h.box.deltek.ap_vouchers()
        if v["Vendor"] == vendor and v["Invoice"].startswith(invoice)
    }


def review_item(record_id: int, capsys) -> dict:
    assert main(["review", "list", "--json"]) == 0
    items = json.loads(capsys.readouterr().out)
    return next(i for i in items if i["record_id"] == record_id)


def test_approve_posts_exactly_one_adjusting_voucher_and_is_audited(synced, capsys) -> None:
    h = synced
    row, month = edit_posted_direct_cost(h, set(), "250.00")
    assert h.store.latest("direct_cost", [row.record_id])[row.record_id].status == "review"
    item = review_item(row.record_id, capsys)
    assert item["code"] == "late_change" and item["new_amount"]

    code = main(["review", "approve", str(item["id"]), "--by", "pat.controller",
                 "--reason", "owner approved the extra"])  # fmt: skip
    assert code == 0, capsys.readouterr()
    assert invoices(h, row.deltek_vendor, row.document) == {
        row.document: Decimal(row.amount),
        f"{row.document}-A2": Decimal("250.00"),
    }
    h.sync(month, month)  # and nothing more on the next run
    assert len(invoices(h, row.deltek_vendor, row.document)) == 2
    assert h.store.latest("direct_cost", [row.record_id])[row.record_id].status == "adjusted"
    events = [e for e in h.store.audit_trail("direct_cost", row.record_id)]
    approved = [e for e in events if e["event"] == "review_approved"]
    assert approved and approved[0]["detail"]["by"] == "pat.controller"
    assert approved[0]["detail"]["reason"] == "owner approved the extra"
    assert main(["review", "approve", str(item["id"])]) == 2  # not open any more


def test_dismiss_posts_nothing_and_is_audited(synced, capsys) -> None:
    h = synced
    taken = {r["record_id"] for r in h.store.reviews(None)}
    row, month = edit_posted_direct_cost(h, taken, "-75.00")
    item = review_item(row.record_id, capsys)
    assert main(["review", "dismiss", str(item["id"])]) == 2  # a reason is required
    code = main(["review", "dismiss", str(item["id"]), "--by", "sam.ap",
                 "--reason", "credit note comes separately"])  # fmt: skip
    assert code == 0
    h.sync(month, month)
    assert invoices(h, row.deltek_vendor, row.document) == {row.document: Decimal(row.amount)}
    latest = h.store.latest("direct_cost", [row.record_id])[row.record_id]
    assert latest.status == "ignored" and "sam.ap" in latest.reason
    dismissed = [
        e
        for e in h.store.audit_trail("direct_cost", row.record_id)
        if e["event"] == "review_dismissed"
    ]
    assert dismissed[0]["detail"] == {
        "by": "sam.ap",
        "reason": "credit note comes separately",
        "review_id": item["id"],
        "code": "late_change",
    }


def test_switching_the_policy_to_adjust_releases_waiting_items(synced, capsys) -> None:
    h = synced
    taken = {r["record_id"] for r in h.store.reviews(None)}
    row, month = edit_posted_direct_cost(h, taken, "10.00")
    assert h.store.latest("direct_cost", [row.record_id])[row.record_id].status == "review"
    text = h.box.mappings_path.read_text()
    h.box.mappings_path.write_text(
        text.replace("defaults:\n", "defaults:\n  late_change_policy: adjust\n", 1)
    )
    try:
        h.sync(month, month)
    finally:
        h.box.mappings_path.write_text(text)
    assert invoices(h, row.deltek_vendor, row.document)[f"{row.document}-A2"] == Decimal("10.00")
    assert [i for i in h.store.reviews() if i["record_id"] == row.record_id] == []


def test_ignore_and_undo_are_audited_with_the_operator(synced) -> None:
    h = synced
    row = h.store.ledger_rows(kinds=["requisition"], statuses=("posted",))[0]
    assert (
        main(["ignore", "requisition", str(row.record_id), "--by", "kim", "--reason", "dup"]) == 0
    )
    assert main(["ignore", "requisition", str(row.record_id), "--undo", "--by", "kim"]) == 0
    events = [
        (e["event"], e["detail"]["by"])
        for e in h.store.audit_trail("requisition", row.record_id)
        if e["event"] in ("ignored", "unignored")
    ]
    assert events == [("ignored", "kim"), ("unignored", "kim")]


def test_the_ui_job_records_a_decision_like_the_command(synced) -> None:
    from deltek_procore.definitions import defs

    h = synced
    taken = {r["record_id"] for r in h.store.reviews(None)}
    row, _month = edit_posted_direct_cost(h, taken, "5.00")
    item = next(i for i in h.store.reviews() if i["record_id"] == row.record_id)
    config = {"review_id": item["id"], "decision": "dismiss", "by": "ui.user", "reason": "dup"}
    result = defs.resolve_job_def("review_decision").execute_in_process(
        instance=h.instance,
        run_config={"ops": {"decide_review": {"config": config}}},
        resources=h.resources(),
    )
    assert result.success
    decided = h.store.review(item["id"])
    assert (decided["status"], decided["decided_by"]) == ("dismissed", "ui.user")
