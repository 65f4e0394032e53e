"""Pure translation: vouchers, JEs and quarantines from typed Procore records."""

from __future__ import annotations

from decimal import Decimal

import pytest

from deltek_procore.posting.documents import JournalEntry, Quarantine, Voucher
from deltek_procore.posting.periods import deltek_period, period_of, periods_between
from deltek_procore.posting.translate import (
    MappingContext,
    ProjectTarget,
    bills_this_period,
    clean_text,
    is_eligible,
    split_flat_code,
    translate,
)
from deltek_procore.procore.models import ChangeOrder, Commitment, DirectCost, Requisition

RULES = {("03-300", "S"): "5100", ("03-300", "M"): "5200", ("01-000", "L"): "5310"}


def ctx(**overrides) -> MappingContext:
    base = dict(
        projects={
            1: ProjectTarget("2024001.00", "CONST"),
            2: "Deltek project 2023004.00 is inactive",
        },
        vendors={10: "V10"},
        vendor_problems={
            11: "Procore vendor 11 has no name; add one in the Procore Company Directory"
        },
        cost_codes={100: "03-300", 101: "01-000", 102: "09-250"},
        cost_types={7: "S", 8: "M", 9: "L", 6: "E"},
        commitment_line_types={500: 7, 501: 8},
        commitment_vendors={900: 10},
        resolve_account=lambda code, ctype: (
            (RULES[(code, ctype)], 0) if (code, ctype) in RULES else None
        ),
        accounts={"5100": "A", "5200": "A", "5310": "I", "2150": "A", "2160": "A"},
        commitment_offset_account="2150",
        retainage_account="2160",
    )
    base.update(overrides)
    return MappingContext(**base)


def g703(item_id: int, line: int, *, work: str = "0", stored: str = "0", **more: str) -> dict:
    """A v1.1 requisition item of a first application: nothing billed before."""
    total = str(Decimal(work) + Decimal(stored))
    return {
        "id": item_id, "cost_code_id": 100, "line_item_id": line,
        "work_completed_from_previous_application": "0.00", "work_completed_this_period": work,
        "materials_presently_stored": stored, "materials_presently_stored_from_previous_progress": "0.00",
        "materials_moved": "0.00", "total_completed_and_stored_to_date": total,
        "total_completed_and_stored_to_date_from_previous": "0.00", **more,
    }  # fmt: skip


def requisition(**changes) -> Requisition:
    data = {
        "id": 1, "project_id": 1, "commitment_id": 900, "vendor_id": None, "invoice_number": 'INV-7 "A&B" #3',
        "number": 4, "billing_date": "2025-03-31", "status": "approved",
        "summary": {"current_payment_due": "1625.00", "total_retainage": "125.00"},
        "items": [
            g703(1, 500, work="1000.00", stored="250.00", description_of_work="Forms",
                 work_completed_retainage_retained_this_period="100.00",
                 materials_stored_retainage_new_materials="25.00"),
            g703(2, 501, work="500.00", description_of_work="Rebar\x00\tbundle"),
        ],
    }  # fmt: skip
    data.update(changes)
    return Requisition.model_validate(data)


def test_requisition_becomes_gross_lines_and_a_retainage_line() -> None:
    voucher = translate("requisition", requisition(), ctx())
    assert isinstance(voucher, Voucher)
    assert voucher.vendor == "V10"  # from the commitment: v1.0 requisitions carry no vendor
    assert voucher.invoice == 'INV-7 "A&B" #3' and voucher.period == "2025-03"
    assert [(ln.charge.account, ln.amount) for ln in voucher.lines] == [
        ("5100", Decimal("1250.00")),
        ("5200", Decimal("500.00")),  # cost type from the commitment line the item bills
        ("2160", Decimal("-125.00")),
    ]
    assert all(
        ln.charge.wbs1 == "2024001.00" and ln.charge.wbs2 == "CONST" for ln in voucher.lines[:2]
    )
    assert voucher.lines[2].charge.wbs1 == ""
    assert voucher.total == Decimal("1625.00")  # = Procore's current payment due
    assert voucher.lines[1].description == "Rebar bundle"  # control characters cleaned


def application(month: int, **item: str) -> Requisition:
    """One monthly application on contract line 500 (03-300 / S), v1.1 G703 figures."""
    gross = Decimal(item["total_completed_and_stored_to_date"]) - Decimal(
        item.get("total_completed_and_stored_to_date_from_previous", "0")
    )
    return Requisition.model_validate(
        {"id": 40 + month, "project_id": 1, "commitment_id": 900, "vendor_id": 10,
         "invoice_number": f"PA-{month}", "number": month, "billing_date": f"2025-0{month}-28",
         "status": "approved", "summary": {"current_payment_due": item.pop("due", str(gross))},
         "items": [{"id": month, "cost_code_id": 100, "line_item_id": 500, **item}]}
    )  # fmt: skip


# Stored in March (1000 of materials), carried in April, installed in May; 10 % retainage.
STORED = {
    "work_completed_from_previous_application": "0.00", "work_completed_this_period": "2000.00",
    "materials_presently_stored": "1000.00", "materials_presently_stored_from_previous_progress": "0.00",
    "materials_moved": "0.00",
    "total_completed_and_stored_to_date": "3000.00", "total_completed_and_stored_to_date_from_previous": "0.00",
    "work_completed_retainage_retained_this_period": "200.00",
    "materials_stored_retainage_new_materials": "100.00",
    "materials_stored_retainage_currently_retained": "100.00",
    "materials_retainage_retained_moved": "0.00", "due": "2700.00",
}  # fmt: skip
CARRIED = {
    "work_completed_from_previous_application": "2000.00", "work_completed_this_period": "500.00",
    "materials_presently_stored": "1000.00", "materials_presently_stored_from_previous_progress": "1000.00",
    "materials_moved": "0.00",
    "total_completed_and_stored_to_date": "3500.00", "total_completed_and_stored_to_date_from_previous": "3000.00",
    "work_completed_retainage_retained_this_period": "50.00",
    "materials_stored_retainage_new_materials": "0.00",
    "materials_stored_retainage_currently_retained": "100.00",
    "materials_retainage_retained_moved": "0.00", "due": "450.00",
}  # fmt: skip
INSTALLED = {  # 1500 of work this period, 1000 of it the stored materials put in place
    "work_completed_from_previous_application": "2500.00", "work_completed_this_period": "1500.00",
    "materials_presently_stored": "0.00", "materials_presently_stored_from_previous_progress": "1000.00",
    "materials_moved": "1000.00",
    "total_completed_and_stored_to_date": "4000.00", "total_completed_and_stored_to_date_from_previous": "3500.00",
    "work_completed_retainage_retained_this_period": "50.00",
    "materials_stored_retainage_new_materials": "0.00",
    "materials_stored_retainage_currently_retained": "0.00",
    "materials_retainage_retained_moved": "100.00", "due": "450.00",
}  # fmt: skip
V10_ONLY = (  # fields the v1.0 contract_items model lacks
    "total_completed_and_stored_to_date_from_previous",
    "materials_presently_stored_from_previous_progress",
    "materials_stored_retainage_new_materials",
)


def v10_filled(item: dict, stored_before: str, stored_retainage_before: str) -> dict:
    """The v1.0 shape after the client copied the previous application's figures."""
    out = {k: v for k, v in item.items() if k not in V10_ONLY}
    out["materials_presently_stored_from_previous_progress"] = stored_before
    out["materials_stored_retainage_from_previous_application"] = stored_retainage_before
    return out


@pytest.mark.parametrize(
    "chain",
    [
        [STORED, CARRIED, INSTALLED],
        [
            v10_filled(STORED, "0.00", "0.00"),
            v10_filled(CARRIED, "1000.00", "100.00"),
            v10_filled(INSTALLED, "1000.00", "100.00"),
        ],
    ],
    ids=["v1.1 items", "v1.0 items, previous figures filled"],
)
def test_stored_materials_are_billed_once_across_three_applications(chain) -> None:
    got = []
    for month, item in zip((3, 4, 5), chain, strict=True):
        voucher = translate("requisition", application(month, **item), ctx())
        assert isinstance(voucher, Voucher), voucher
        gross = sum((ln.amount for ln in voucher.lines if ln.charge.account == "5100"), Decimal(0))
        held = -sum((ln.amount for ln in voucher.lines if ln.charge.account == "2160"), Decimal(0))
        got.append((voucher.period, gross, held, voucher.total))
    assert got == [
        ("2025-03", Decimal("3000.00"), Decimal("300.00"), Decimal("2700.00")),  # stored
        ("2025-04", Decimal("500.00"), Decimal("50.00"), Decimal("450.00")),  # carried
        ("2025-05", Decimal("500.00"), Decimal("50.00"), Decimal("450.00")),  # installed
    ]
    # Job cost over the three months is the contract line's total to date, not more.
    assert sum(g for _, g, _, _ in got) == Decimal(INSTALLED["total_completed_and_stored_to_date"])


def test_payable_must_equal_procores_current_payment_due() -> None:
    result = translate("requisition", application(3, **dict(STORED, due="2900.00")), ctx())
    assert isinstance(result, Quarantine)
    assert "items give 2700.00 payable" in result.reason
    assert "current payment due is 2900.00" in result.reason


def test_stored_materials_without_previous_figures_are_quarantined() -> None:
    item = {k: v for k, v in CARRIED.items() if k not in V10_ONLY}
    result = translate("requisition", application(4, **item), ctx())
    assert isinstance(result, Quarantine)
    assert result.reason.startswith("item 4: cannot tell this period's stored materials")


def test_net_release_of_retainage_is_a_positive_retainage_line() -> None:
    release = {
        "work_completed_from_previous_application": "4000.00", "work_completed_this_period": "0.00",
        "materials_presently_stored": "0.00", "materials_presently_stored_from_previous_progress": "0.00",
        "total_completed_and_stored_to_date": "4000.00",
        "total_completed_and_stored_to_date_from_previous": "4000.00",
        "work_completed_retainage_released_this_period": "400.00", "due": "400.00",
    }  # fmt: skip
    voucher = translate("requisition", application(6, **release), ctx())
    assert isinstance(voucher, Voucher)
    assert [(ln.charge.account, ln.amount, ln.description) for ln in voucher.lines] == [
        ("2160", Decimal("400.00"), "Retainage released")
    ]


def test_nothing_billed_is_skipped_not_quarantined() -> None:
    idle = dict(CARRIED, work_completed_this_period="0.00", due="0.00")
    idle["total_completed_and_stored_to_date"] = "3000.00"
    idle["work_completed_retainage_retained_this_period"] = "0.00"
    result = translate("requisition", application(4, **idle), ctx())
    assert isinstance(result, Quarantine) and result.fields["nothing_to_post"]
    assert not bills_this_period(application(4, **idle))


def test_retainage_without_an_account_is_quarantined_not_guessed() -> None:
    result = translate("requisition", requisition(), ctx(retainage_account=None))
    assert isinstance(result, Quarantine) and "retainage_account" in result.reason


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"project_id": 2}, "inactive"),
        ({"project_id": 3}, "has no Deltek project"),
        ({"vendor_id": 11}, "has no name"),
        ({"commitment_id": None, "vendor_id": None}, "has no vendor"),
        ({"invoice_number": "X" * 10_000}, "at most 50"),
        ({"billing_date": None, "requisition_end": None, "created_at": None}, "no date"),
    ],
)
def test_requisition_problems_are_specific(change, needle) -> None:
    result = translate("requisition", requisition(**change), ctx())
    assert isinstance(result, Quarantine) and needle in result.reason


def test_unmapped_pair_and_inactive_account_name_the_pair() -> None:
    item = dict(g703(3, 0, work="10"), cost_code_id=102, line_item_type_id=6)
    result = translate("requisition", requisition(items=[item], summary=None), ctx())
    assert isinstance(result, Quarantine)
    assert result.reason.startswith("cost code 09-250 / cost type E has no GL account")
    item = dict(g703(3, 0, work="10"), cost_code_id=101, line_item_type_id=9)
    result = translate("requisition", requisition(items=[item], summary=None), ctx())
    assert "inactive" in result.reason


def test_absurd_amount_is_refused() -> None:
    req = requisition(items=[g703(3, 500, work="1e15")], summary=None)
    result = translate("requisition", req, ctx())
    assert isinstance(result, Quarantine) and "beyond" in result.reason


def direct_cost(**changes) -> DirectCost:
    data = {
        "id": 4300000001, "project_id": 1, "direct_cost_type": "invoice", "status": "approved",
        "invoice_number": "DC-1", "direct_cost_date": "2025-04-02", "grand_total": "300.00",
        "vendor": "ABC Supply", "vendor_id": 10,
        "line_items": [
            {"id": 1, "amount": "100.00", "cost_code": {"id": 100}, "line_item_type": {"id": 7}},
            {"id": 2, "amount": "200.00", "cost_code": {"id": 100}, "line_item_type": {"id": 8}},
        ],
    }  # fmt: skip
    data.update(changes)
    return DirectCost.model_validate(data)


def test_direct_cost_lines_must_add_up_to_the_grand_total() -> None:
    voucher = translate("direct_cost", direct_cost(), ctx())
    assert (
        isinstance(voucher, Voucher)
        and voucher.total == Decimal("300.00")
        and voucher.period == "2025-04"
    )
    result = translate("direct_cost", direct_cost(grand_total="301.00"), ctx())
    assert (
        isinstance(result, Quarantine)
        and "add up to 300.00 but the grand total is 301.00" in result.reason
    )


def test_eligibility_follows_procore_spelling() -> None:
    c = ctx()
    assert is_eligible("direct_cost", direct_cost(), c)
    assert not is_eligible("direct_cost", direct_cost(direct_cost_type="expense"), c)
    assert is_eligible(
        "direct_cost",
        direct_cost(direct_cost_type="expense"),
        ctx(direct_cost_types=("invoice", "expense")),
    )
    assert not is_eligible("direct_cost", direct_cost(status="pending"), c)
    assert is_eligible("requisition", requisition(status="approved_as_noted"), c)
    assert not is_eligible("requisition", requisition(status="under_review"), c)


def commitment(**changes) -> Commitment:
    data = {
        "id": 786001, "project_id": 1, "number": "SC-001", "title": "Concrete", "status": "Approved",
        "vendor": {"id": 10, "company": "ABC"}, "grand_total": "250.0", "contract_date": "2025-01-15",
        "line_items": [{"id": 500, "amount": "250.0", "cost_code": {"id": 100}, "line_item_type": {"id": 7}}],
    }  # fmt: skip
    data.update(changes)
    return Commitment.model_validate(data)


def test_commitment_becomes_a_balanced_je_with_a_deterministic_refno() -> None:
    je = translate("work_order", commitment(), ctx())
    assert isinstance(je, JournalEntry) and je.balanced
    assert je.ref_no == "PCW786001" and je.period == "2025-01"
    assert [(ln.charge.account, ln.debit, ln.credit) for ln in je.lines] == [
        ("5100", Decimal("250.00"), Decimal("0.00")),
        ("2150", Decimal("0.00"), Decimal("250.00")),
    ]
    assert not is_eligible("work_order", commitment(status="Draft"), ctx())
    assert not is_eligible("work_order", commitment(status="approved"), ctx())  # Title Case only


def change_order(*lines: dict, total: str = "-40.00") -> ChangeOrder:
    return ChangeOrder.model_validate(
        {"id": 300001, "project_id": 1, "contract_id": 786001, "status": "approved",
         "grand_total": total, "reviewed_at": "2025-06-03T10:00:00Z", "line_items": list(lines)}
    )  # fmt: skip


def co_line(line_id: int, amount: str, *, contract_line=None, refers=None, flat=None) -> dict:
    """A v2.0 CO line: no cost code; `contract_line` as the client fills it."""
    return {
        "id": str(line_id), "amount": amount, "quantity": 1, "description": "change",
        "commitment_line_item_id": refers, "contract_line": contract_line,
        "wbs_code": {"id": "1", "flat_code": flat} if flat else None,
    }  # fmt: skip


def test_negative_change_order_credits_cost_and_debits_offset() -> None:
    ref = {"id": 500, "cost_code_id": 100, "line_item_type_id": 7}
    je = translate("change_order", change_order(co_line(1, "-40.00", contract_line=ref)), ctx())
    assert (
        isinstance(je, JournalEntry)
        and je.balanced
        and je.period == "2025-06"
        and je.ref_no == "PCC300001"
    )
    assert je.lines[0].credit == Decimal("40.00") and je.lines[1].debit == Decimal("40.00")


def test_change_order_lands_on_the_referenced_contract_lines_account() -> None:
    # The CO changes the contract's SECOND line (03-300 / M), not its first (03-300 / S).
    first = {"id": 500, "cost_code_id": 100, "line_item_type_id": 7}
    second = {"id": 501, "cost_code_id": 100, "line_item_type_id": 8}
    co = change_order(
        co_line(1, "30.00", contract_line=second, refers="501", flat="03-300.S"),
        co_line(2, "10.00", contract_line=first, refers="500"),
        total="40.00",
    )
    je = translate("change_order", co, ctx())
    assert isinstance(je, JournalEntry)
    assert [(ln.charge.account, ln.debit) for ln in je.lines[:2]] == [
        ("5200", Decimal("30.00")),  # the contract line wins over the wbs code
        ("5100", Decimal("10.00")),
    ]


def test_change_order_line_without_contract_line_uses_the_wbs_flat_code() -> None:
    co = change_order(co_line(1, "25.00", flat="03-300.M"), total="25.00")
    je = translate("change_order", co, ctx())
    assert isinstance(je, JournalEntry) and je.lines[0].charge.account == "5200"
    # a referenced line the contract does not have: the wbs code still decides
    co = change_order(co_line(1, "25.00", refers="999", flat="03-300.S"), total="25.00")
    assert translate("change_order", co, ctx()).lines[0].charge.account == "5100"


def test_change_order_line_with_no_source_is_quarantined_naming_the_line() -> None:
    co = change_order(co_line(700123, "25.00", flat="99-999.Q"), total="25.00")
    result = translate("change_order", co, ctx())
    assert isinstance(result, Quarantine)
    assert result.reason == (
        "change order line 700123: no contract line and wbs code '99-999.Q' "
        "names no cost code / cost type"
    )
    co = change_order(co_line(5, "25.00", refers="999"), total="25.00")
    assert translate("change_order", co, ctx()).reason == (
        "change order line 5: contract line 999 is not on the contract and no wbs code"
    )
    no_type = {"id": 502, "cost_code_id": 100, "line_item_type_id": None}
    co = change_order(co_line(6, "25.00", contract_line=no_type, flat="SJ1.03-300"), total="25")
    assert translate("change_order", co, ctx()).reason == (
        "change order line 6: contract line 502 has no cost type and "
        "wbs code 'SJ1.03-300' names no cost code / cost type"
    )


@pytest.mark.parametrize(
    ("flat", "expected"),
    [
        ("03-300.S", ("03-300", "S")),
        ("01.100.S", ("01.100", "S")),  # a cost code with a "." in it
        ("SJ1.03-300.S", "wbs code 'SJ1.03-300.S' names no cost code / cost type"),  # sub job
        ("03-300", "wbs code '03-300' names no cost code / cost type"),
        ("01.100.T", "reads as more than one cost code / cost type (01 / 100.T, 01.100 / T)"),
    ],
)
def test_flat_code_splits_only_into_known_codes(flat, expected) -> None:
    codes, types = {"03-300", "01.100", "01"}, {"S", "T", "100.T"}
    got = split_flat_code(flat, codes, types)
    assert got == expected if isinstance(expected, tuple) else expected in got


def test_periods_and_text_helpers() -> None:
    assert (
        period_of("direct_cost", {"direct_cost_date": None, "received_date": "2025-12-31"})
        == "2025-12"
    )
    assert deltek_period("2025-12") == 202512
    assert periods_between("2025-11", "2026-02") == ["2025-11", "2025-12", "2026-01", "2026-02"]
    with pytest.raises(ValueError, match="after"):
        periods_between("2026-02", "2025-11")
    assert clean_text("Müller\u0007 façade   works", 40) == "Müller façade works"


def test_every_quarantine_carries_a_reason_code_the_checks_count() -> None:
    from deltek_procore.state.states import Reason

    unmapped_line = {"id": 3, "amount": "300.00", "cost_code": {"id": 102},
                     "line_item_type": {"id": 6}}  # fmt: skip
    codes = {
        "no rule": direct_cost(line_items=[unmapped_line]),
        "no project": direct_cost(project_id=999),
        "no vendor": direct_cost(vendor_id=11),
        "bad total": direct_cost(grand_total="301.00"),
    }
    got = {what: translate("direct_cost", rec, ctx()).fields["code"] for what, rec in codes.items()}
    assert got == {
        "no rule": Reason.NO_ACCOUNT,
        "no project": Reason.NO_PROJECT,
        "no vendor": Reason.NO_VENDOR,
        "bad total": Reason.BAD_AMOUNT,
    }
