"""Period reconciliation: the ledger's view against Deltek's (posting/reconcile.py)."""

from __future__ import annotations

from decimal import Decimal

from deltek_procore.posting.reconcile import Expected, reconcile
from deltek_procore.posting.verify import Held
from deltek_procore.state.states import Finding

D = Decimal
P1_5100 = ("5100", "P1", "", "")
RET = ("2160", "", "", "")


def expected(record_id: int, *keys: str, lines=None) -> Expected:
    return Expected(
        kind="requisition",
        record_id=record_id,
        period="2026-10",
        transtype="AP",
        keys=keys,
        lines=lines or {P1_5100: D("1000.00"), RET: D("-100.00")},
        ledger_ids=(record_id * 10,),
        amount=D("900.00"),
    )


def held(key: str, batch: str, lines, posted: bool = False, period: int | None = None) -> Held:
    return Held("AP", key, batch, posted, tuple(lines), "", period)


FULL = [(P1_5100, D("1000.00")), (RET, D("-100.00"))]


def findings(result) -> list[tuple[str, object]]:
    return [(str(d.finding), d.record_id or d.key) for d in result.differences]


def test_a_record_deltek_shows_as_planned_has_no_finding() -> None:
    result = reconcile("2026-10", 202610, [expected(1, "V1|INV-1")],
                       [held("V1|INV-1", "PCAP202610AAA", FULL)], set())  # fmt: skip
    assert result.differences == [] and result.checked == 1


def test_a_deleted_batch_is_missing_with_the_planned_amount() -> None:
    result = reconcile("2026-10", 202610, [expected(1, "V1|INV-1")], [], set())
    [diff] = result.differences
    assert (diff.finding, diff.record_id, diff.planned, diff.in_deltek) == (
        Finding.MISSING,
        1,
        D("900.00"),
        D("0.00"),
    )
    assert diff.ledger_ids == (10,)


def test_an_amount_edited_in_deltek_is_changed() -> None:
    edited = [(P1_5100, D("1000.01")), (RET, D("-100.00"))]
    result = reconcile("2026-10", 202610, [expected(1, "V1|INV-1")],
                       [held("V1|INV-1", "PCAP202610AAA", edited)], set())  # fmt: skip
    assert findings(result) == [("changed", 1)]
    assert "planned 1000.00, Deltek 1000.01" in result.differences[0].detail


def test_an_adjusted_record_is_compared_as_the_sum_of_its_documents() -> None:
    original = [(P1_5100, D("800.00")), (RET, D("-80.00"))]
    adjustment = [(P1_5100, D("200.00")), (RET, D("-20.00"))]
    result = reconcile(
        "2026-10",
        202610,
        [expected(1, "V1|INV-1", "V1|INV-1-A2")],
        [held("V1|INV-1", "PCAP202610AAA", original), held("V1|INV-1-A2", "PCAP202610BBB",
                                                             adjustment)],
        set(),
    )  # fmt: skip
    assert result.differences == []


def test_two_documents_under_one_key_are_a_duplicate() -> None:
    result = reconcile(
        "2026-10",
        202610,
        [expected(1, "V1|INV-1")],
        [held("V1|INV-1", "PCAP202610AAA", FULL), held("V1|INV-1", "CLERK7", FULL)],
        set(),
    )
    assert ("duplicate", 1) in findings(result)


def test_a_connector_document_the_ledger_does_not_know_is_unknown_in_its_period_only() -> None:
    stray = held("V9|INV-9", "PCAP202610CCC", FULL)
    other_month = held("V8|INV-8", "PCAP202609DDD", FULL)
    hand_keyed = held("V7|INV-7", "CLERK7", FULL, period=202610)
    result = reconcile("2026-10", 202610, [], [stray, other_month, hand_keyed], set())
    assert findings(result) == [("unknown", "V9|INV-9")]


def test_a_document_of_an_unconfirmed_post_is_not_unknown() -> None:
    stray = held("V9|INV-9", "PCAP202610CCC", FULL)
    result = reconcile("2026-10", 202610, [], [stray], {("AP", "V9|INV-9")})
    assert result.differences == []
