"""An outcome's counts and totals survive handing its rows on (long runs shed them)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from deltek_procore.posting.documents import Charge, Voucher, VoucherLine
from deltek_procore.posting.plan import Outcome, PlanRow


def row(record_id: int, amount: str | None = None) -> PlanRow:
    document = None
    if amount is not None:
        line = VoucherLine(Charge("5100", "2024001.00"), Decimal(amount), "work")
        document = Voucher(
            "requisition", record_id, "2026-10", "V10", f"INV-{record_id}",
            date(2026, 10, 31), "work", (line,),
        )  # fmt: skip
    return PlanRow("requisition", record_id, "2026-10", "create", "", "h", document=document)


def outcome(statuses: list[str]) -> Outcome:
    out = Outcome()
    for i, status in enumerate(statuses, start=1):
        out.add(row(i, amount=f"{i}.00"), status, reason=f"because {i}")
    return out


def test_counts_and_totals_come_from_every_row_added() -> None:
    out = outcome(["posted", "posted", "skipped", "quarantined"])
    assert out.counts == {"posted": 2, "skipped": 1, "quarantined": 1}
    assert out.total("posted") == Decimal("3.00")
    assert out.total("posted", "quarantined") == Decimal("7.00")
    assert out.total("adopted") == Decimal("0.00")


def test_a_row_without_an_amount_counts_but_adds_nothing() -> None:
    out = Outcome()
    out.add(row(1), "quarantined", reason="no project")
    assert out.counts == {"quarantined": 1}
    assert out.total("quarantined") == Decimal("0.00")


def test_shedding_keeps_every_row_a_person_acts_on_and_the_first_changed_ones() -> None:
    statuses = ["skipped", "posted", "failed", "posted", "review", "posted", "quarantined"]
    out = outcome(statuses)
    counts, posted = out.counts, out.total("posted")
    out.shed_rows(shown=2)
    assert [(r["record_id"], r["status"]) for r in out.results] == [
        (2, "posted"), (3, "failed"), (4, "posted"), (5, "review"), (7, "quarantined"),
    ]  # fmt: skip
    assert out.counts == counts
    assert out.total("posted") == posted == Decimal("12.00")


def test_merging_adds_tallies_even_of_rows_already_shed() -> None:
    first, second = outcome(["posted", "skipped"]), outcome(["posted", "aborted"])
    first.shed_rows(shown=0)
    second.shed_rows(shown=0)
    total = Outcome()
    total.merge(first)
    total.merge(second)
    assert total.counts == {"posted": 2, "skipped": 1, "aborted": 1}
    assert total.total("posted") == Decimal("2.00")
    assert [r["status"] for r in total.results] == ["aborted"]
