"""Pure translation: vouchers, JEs and quarantines from typed Procore records."""

from __future__ import annotations

from decimal import Decimal

import pytest

from deltek_procore.posting.documents import JournalEntry, Quarantine, Voucher
from deltek_procore.posting.periods import deltek_period, period_of, periods_between
from deltek_procore.posting.translate import (
    MappingContext,
    ProjectTarget,
    clean_text,
    is_eligible,
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


def requisition(**changes) -> Requisition:
    data = {
        "id": 1, "project_id": 1, "commitment_id": 900, "vendor_id": None, "invoice_number": 'INV-7 "A&B" #3',
        "number": 4, "billing_date": "2025-03-31", "status": "approved",
        "items": [
            {"id": 1, "cost_code_id": 100, "line_item_id": 500, "description_of_work": "Forms",
             "work_completed_this_period": "1000.00", "materials_presently_stored": "250.00",
             "work_completed_retainage_retained_this_period": "100.00",
             "materials_stored_retainage_retained_this_period": "25.00"},
            {"id": 2, "cost_code_id": 100, "line_item_id": 501, "description_of_work": "Rebar\x00\tbundle",
             "work_completed_this_period": "500.00", "materials_presently_stored": "0"},
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
    assert voucher.total == Decimal("1625.00")
    assert voucher.lines[1].description == "Rebar bundle"  # control characters cleaned


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
    req = requisition(
        items=[
            {
                "id": 3,
                "cost_code_id": 102,
                "line_item_type_id": 6,
                "work_completed_this_period": "10",
            }
        ]
    )
    result = translate("requisition", req, ctx())
    assert isinstance(result, Quarantine)
    assert result.reason.startswith("cost code 09-250 / cost type E has no GL account")
    req = requisition(
        items=[
            {
                "id": 3,
                "cost_code_id": 101,
                "line_item_type_id": 9,
                "work_completed_this_period": "10",
            }
        ]
    )
    assert "inactive" in translate("requisition", req, ctx()).reason


def test_absurd_amount_is_refused() -> None:
    req = requisition(
        items=[
            {
                "id": 3,
                "cost_code_id": 100,
                "line_item_id": 500,
                "work_completed_this_period": "1e15",
            }
        ]
    )
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


def test_negative_change_order_credits_cost_and_debits_offset() -> None:
    co = ChangeOrder.model_validate(
        {"id": 300001, "project_id": 1, "contract_id": 786001, "status": "approved", "grand_total": "-40.00",
         "reviewed_at": "2025-06-03T10:00:00Z",
         "line_items": [{"id": 1, "amount": "-40.00", "cost_code": {"id": 100}, "line_item_type": {"id": 7}}]}
    )  # fmt: skip
    je = translate("change_order", co, ctx())
    assert (
        isinstance(je, JournalEntry)
        and je.balanced
        and je.period == "2025-06"
        and je.ref_no == "PCC300001"
    )
    assert je.lines[0].credit == Decimal("40.00") and je.lines[1].debit == Decimal("40.00")


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
