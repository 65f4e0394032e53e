"""Procore models accept every payload variant listed in docs/api/procore.md."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from deltek_procore.procore.models import (
    ChangeOrder,
    ChangeOrderLine,
    Commitment,
    CostCode,
    CostType,
    DirectCost,
    DirectCostLine,
    Project,
    Requisition,
    RequisitionItem,
    Vendor,
    to_decimal,
    to_int,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("250.0", Decimal("250.0")),
        (250, Decimal(250)),
        (12.5, Decimal("12.5")),
        ("1,250.00", Decimal("1250.00")),
        ("$12.03", Decimal("12.03")),
        ("96.36%", Decimal("96.36")),
        ("(5.00)", Decimal("-5.00")),
        ("-7.5", Decimal("-7.5")),
        ("", None),
        (None, None),
    ],
)
def test_to_decimal_variants(raw, expected):
    assert to_decimal(raw) == expected


def test_to_decimal_marks_garbage_as_not_a_number():
    # Kept as NaN, not raised: one bad record must not abort a read; translation quarantines it.
    assert to_decimal("twelve").is_nan()
    assert to_decimal({"amount": 1}).is_nan()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(5, 5), ("379913", 379913), ({"id": "8"}, 8), (7.0, 7), ("", None), (None, None)],
)
def test_to_int_variants(raw, expected):
    assert to_int(raw) == expected


def test_big_ids_over_32_bits():
    assert Project.model_validate({"id": "5982324300946918154", "name": "x"}).id == (
        5982324300946918154
    )


REQ_V11 = {
    "id": 1280646,
    "project_id": 123456,
    "commitment_id": 786001,
    "commitment_type": "WorkOrderContract",
    "vendor_id": 5181441,
    "vendor_name": "ABC Concrete",
    "invoice_number": "123",
    "number": 19,
    "period_id": 117330,
    "billing_date": "2017-11-01",
    "requisition_start": "2016-11-01",
    "requisition_end": "2016-11-30",
    "status": "approved",
    "percent_complete": "96.36%",
    "created_at": "2016-12-01T18:00:00Z",
    "updated_at": "2016-12-05T18:00:00Z",
    "created_by": {"id": 99, "name": "Sam Sub"},
    "summary": {"total_retainage": "5300.00", "current_payment_due": "0.00"},
    "items": [
        {
            "id": 17918097,
            "item_type": "contract_item",
            "cost_code_id": 80598390,
            "line_item_id": 5175960,
            "description_of_work": "Foundation work",
            "wbs_code": {"id": 1, "flat_code": "01-000.O"},
            "scheduled_value": "50000.00",
            "work_completed_from_previous_application": "20000.00",
            "work_completed_this_period": "1000.00",
            "materials_presently_stored": "500.00",
            "materials_presently_stored_from_previous_progress": "300.00",
            "materials_moved": "0.00",
            "total_completed_and_stored_to_date": "21500.00",
            "total_completed_and_stored_to_date_from_previous": "20300.00",
            "work_completed_retainage_retained_this_period": "100.00",
            "work_completed_retainage_released_this_period": "0.00",
            "materials_stored_retainage_new_materials": "20.00",
            "materials_stored_retainage_released_this_period": "0.00",
            "materials_stored_retainage_currently_retained": "50.00",
            "materials_retainage_retained_moved": "0.00",
        }
    ],
}


def test_requisition_v11_shape():
    req = Requisition.model_validate(REQ_V11)
    assert req.number == "19"
    assert req.percent_complete == Decimal("96.36")
    assert req.total_retainage == Decimal("5300.00")
    assert req.current_payment_due == Decimal("0.00")
    assert req.billing_date == date(2017, 11, 1)
    assert req.updated_at == datetime(2016, 12, 5, 18, tzinfo=timezone.utc)
    (item,) = req.items
    assert item.description == "Foundation work"
    assert item.work_completed_this_period == Decimal("1000.00")
    # G703: this period = total to date - total at the previous application; the stored
    # balance (500) is not this period's amount, only its change (+200) is.
    assert item.gross_billed() == Decimal("1200.00")
    assert item.retainage_held() == Decimal("120.00")  # 100 on work + 20 on new materials
    assert item.line_item_type_id is None
    assert req.created_by == {"id": 99, "name": "Sam Sub"}  # extra fields kept
    assert req.has_items


def test_requisition_v10_shape_has_no_items_or_vendor():
    raw = {k: v for k, v in REQ_V11.items() if k not in ("items", "vendor_id", "vendor_name")}
    raw["comment"] = "old"
    req = Requisition.model_validate(raw)
    assert req.items == [] and not req.has_items
    assert req.vendor_id is None and req.vendor_name is None


def test_requisition_item_accepts_nested_references_and_keeps_absent_amounts_unknown():
    item = RequisitionItem.model_validate(
        {
            "id": "5",
            "cost_code": {"id": 9, "full_code": "03-300"},
            "line_item_type": {"id": 47, "code": "S"},
            "work_completed_this_period": None,
            "materials_presently_stored": "250.00",
        }
    )
    assert item.id == 5 and item.cost_code_id == 9 and item.line_item_type_id == 47
    assert item.work_completed_this_period == Decimal(0)
    # Stored now but nothing says what was stored before: this period cannot be told.
    assert item.gross_billed() is None and item.retainage_held() is None
    assert item.previous_figures_missing()


V10_CONTRACT_ITEM = {  # the v1.0 contract_items model: no "_from_previous" figures
    "id": 31,
    "item_type": "contract_item",
    "cost_code_id": 1472,
    "line_item_id": 5175960,
    "work_completed_from_previous_application": "0.00",
    "work_completed_this_period": "400.00",
    "materials_presently_stored": "0.00",
    "materials_moved": "0.00",
    "total_completed_and_stored_to_date": "400.00",
    "work_completed_retainage_retained_this_period": "40.00",
    "work_completed_retainage_released_this_period": "0.00",
    "materials_stored_retainage_currently_retained": "0.00",
    "materials_stored_retainage_released_this_period": "0.00",
    "materials_retainage_retained_moved": "0.00",
}


def test_v10_item_with_nothing_stored_needs_no_previous_application():
    item = RequisitionItem.model_validate(V10_CONTRACT_ITEM)
    assert item.gross_billed() == Decimal("400.00") and item.retainage_held() == Decimal("40.00")


def test_v10_item_with_previous_figures_filled_in():
    # Installed this period from storage (materials_moved): billed when stored, not again.
    raw = dict(
        V10_CONTRACT_ITEM,
        work_completed_this_period="1500.00",
        materials_moved="1000.00",
        total_completed_and_stored_to_date="1500.00",
        work_completed_retainage_retained_this_period="50.00",
        materials_retainage_retained_moved="100.00",
    )
    assert RequisitionItem.model_validate(raw).gross_billed() is None
    filled = RequisitionItem.model_validate(
        dict(
            raw,
            materials_presently_stored_from_previous_progress="1000.00",
            materials_stored_retainage_from_previous_application="100.00",
        )
    )
    assert filled.gross_billed() == Decimal("500.00")  # 1500 + 0 stored now - 1000 before
    assert filled.retainage_held() == Decimal("50.00")  # stored retainage only moved


def test_detail_row_retainage_on_new_materials():
    row = RequisitionItem.model_validate(
        {
            "id": 1,
            "work_completed_this_period": "0.00",
            "materials_presently_stored": "800.00",
            "total_completed_and_stored_to_date": "800.00",
            "total_completed_and_stored_to_date_from_previous": "0.00",
            "materials_stored_retainage_retained_this_period": "80.00",
        }
    )
    assert row.gross_billed() == Decimal("800.00") and row.retainage_held() == Decimal("80.00")


DC_LIST = {
    "id": 81753,
    "direct_cost_type": "invoice",
    "status": "approved",
    "invoice_number": "INV-1",
    "direct_cost_date": "2024-12-14",
    "received_date": "2025-01-08T00:00:00Z",
    "amount": "1000.00",
    "vendor": "ABC Supply",
    "vendor_id": 5181441,
}


def test_direct_cost_list_shape_vendor_string():
    cost = DirectCost.model_validate(DC_LIST)
    assert cost.vendor_id == 5181441 and cost.vendor_name == "ABC Supply"
    assert cost.grand_total == Decimal("1000.00")  # list shape: "amount" only
    assert cost.received_date == date(2025, 1, 8)  # timestamp in a date field
    assert cost.line_items == []


def test_direct_cost_show_shape_vendor_object_and_lines():
    raw = {
        "id": 81753,
        "grand_total": 1000,
        "vendor": {"id": 5181441, "name": "ABC Supply"},
        "line_items": [
            {
                "id": 1,
                "description": "Copper pipe",
                "amount": "1000.00",
                "cost_code": {"id": 1472, "name": "Purpose", "full_code": "01-000"},
                "line_item_type": {"id": 47, "name": "Other", "code": "O"},
            },
            {"id": 2, "total_amount": "5.5", "cost_code": {"id": 1473}},
        ],
    }
    cost = DirectCost.model_validate(raw)
    assert cost.vendor_id == 5181441 and cost.vendor_name == "ABC Supply"
    first, second = cost.line_items
    assert (first.cost_code_id, first.cost_code) == (1472, "01-000")
    assert (first.line_item_type_id, first.line_item_type_code) == (47, "O")
    assert second.amount == Decimal("5.5") and second.cost_code is None
    assert raw["vendor"] == {"id": 5181441, "name": "ABC Supply"}  # caller's dict untouched


def test_direct_cost_line_owner_from_holder():
    line = DirectCostLine.model_validate({"id": 3, "amount": "1", "holder": {"id": 44}})
    assert line.direct_cost_id == 44


@pytest.mark.parametrize(
    "vendor",
    [{"id": 47, "company": "90 Minute Courier"}, {"id": 47, "name": "90 Minute Courier"}],
)
def test_commitment_vendor_company_or_name(vendor):
    raw = {
        "id": 41,
        "number": "SC-001",
        "status": "Out For Signature",
        "grand_total": "250.0",
        "project": {"id": 86, "name": "Project A"},
        "vendor": vendor,
        "created_at": "2020-10-19T12:17:31-07:00",
        "deleted_at": None,
        "type": "WorkOrderContract",
        "retainage_percent": None,
    }
    c = Commitment.model_validate(raw)
    assert (c.vendor_id, c.vendor_name) == (47, "90 Minute Courier")
    assert c.status == "Out For Signature"  # kept as Procore spells it
    assert c.project_id == 86 and c.kind == "work_order"
    assert c.grand_total == Decimal("250.0")
    assert c.created_at is not None and c.created_at.utcoffset().total_seconds() == -7 * 3600


CO_V2_LINE = {  # GET /rest/v2.0/.../commitment_change_orders/{id}/line_items, one of "data"
    "id": "700123",
    "amount": "1250.00",
    "description": "Extra footing",
    "quantity": 2.5,
    "unit_cost": "500.00",
    "uom": "ea",
    "extended_type": "calculated",
    "position": 1,
    "tax_code_id": None,
    "commitment_line_item_id": "5175961",
    "prime_line_item_id": None,
    "wbs_code_id": "1989",
    "wbs_code": {"id": "1989", "flat_code": "03-300.S", "description": "Concrete"},
    "work_breakdown_structure": {"cost_code": {"id": "1472"}},
}


def test_change_order_v2_line_real_shape():
    line = ChangeOrderLine.model_validate(CO_V2_LINE)
    assert (line.id, line.commitment_line_item_id, line.wbs_code_id) == (700123, 5175961, 1989)
    assert line.quantity == Decimal("2.5") and line.position == Decimal(1)
    assert line.amount == Decimal("1250.00") and line.flat_code == "03-300.S"
    assert line.contract_line is None  # the client fills it from the contract's lines
    assert line.work_breakdown_structure == {"cost_code": {"id": "1472"}}  # kept
    as_text = ChangeOrderLine.model_validate(dict(CO_V2_LINE, quantity="2.5000"))
    assert as_text.quantity == Decimal("2.5")
    co = ChangeOrder.model_validate(
        {"id": 5, "contract": {"id": 41}, "status": "approved", "grand_total": None}
    )
    assert co.contract_id == 41 and co.grand_total == Decimal(0)


def test_vendor_tax_id_is_business_id_legacy_keys_only_as_fallback():
    assert Vendor.model_validate({"id": 1, "business_id": "12-3456789"}).business_id == (
        "12-3456789"
    )
    legacy = Vendor.model_validate({"id": 2, "tax_id": "98-7654321"})
    assert legacy.business_id == "98-7654321"
    both = Vendor.model_validate({"id": 3, "business_id": "111", "federal_tax_id": "222"})
    assert both.business_id == "111"
    assert "tax_id" not in Vendor.model_fields


def test_vendor_name_from_company_and_blank_name():
    v = Vendor.model_validate({"id": 35, "company": "Test Vendor", "origin_code": 12})
    assert v.name == "Test Vendor" and v.origin_code == "12"
    blank = Vendor.model_validate({"id": 36, "name": "", "company": None})
    assert blank.name == ""


def test_cost_code_project_from_biller_and_cost_type_base_type_free_text():
    cc = CostCode.model_validate(
        {"id": 1, "full_code": "01-000", "biller_type": "Project", "biller_id": 86}
    )
    assert cc.project_id == 86
    ct = CostType.model_validate({"id": 47, "code": "L", "name": "Labor", "base_type": "labor"})
    assert ct.base_type == "labor"


def test_naive_datetime_is_utc():
    p = Project.model_validate({"id": 1, "updated_at": "2016-12-01"})
    assert p.updated_at == datetime(2016, 12, 1, tzinfo=timezone.utc)


def test_bad_money_is_kept_as_not_a_number():
    # One unreadable amount must not abort a whole read: it parses to NaN and the
    # translation layer quarantines that record ("... is not a number").
    assert DirectCost.model_validate({"id": 1, "grand_total": "n/a"}).grand_total.is_nan()
