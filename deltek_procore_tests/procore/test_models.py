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
            "work_completed_this_period": "1000.00",
            "materials_presently_stored": "500.00",
            "work_completed_retainage_retained_this_period": "100.00",
            "materials_stored_retainage_retained_this_period": "50.00",
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
    assert item.retainage_this_period == Decimal("150.00")
    assert item.line_item_type_id is None
    assert req.created_by == {"id": 99, "name": "Sam Sub"}  # extra fields kept
    assert req.has_items


def test_requisition_v10_shape_has_no_items_or_vendor():
    raw = {k: v for k, v in REQ_V11.items() if k not in ("items", "vendor_id", "vendor_name")}
    raw["comment"] = "old"
    req = Requisition.model_validate(raw)
    assert req.items == [] and not req.has_items
    assert req.vendor_id is None and req.vendor_name is None


def test_requisition_item_without_retainage_fields_is_zero_and_accepts_objects():
    item = RequisitionItem.model_validate(
        {
            "id": "5",
            "cost_code": {"id": 9, "full_code": "03-300"},
            "line_item_type": {"id": 47, "code": "S"},
            "work_completed_this_period": None,
        }
    )
    assert item.id == 5 and item.cost_code_id == 9 and item.line_item_type_id == 47
    assert item.retainage_this_period == Decimal(0)
    assert item.work_completed_this_period == Decimal(0)


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


def test_change_order_and_v2_line_with_string_ids():
    line = ChangeOrderLine.model_validate(
        {
            "id": "991",
            "amount": "12.50",
            "cost_code_id": "1472",
            "line_item_type": {"id": "47", "code": "S"},
        }
    )
    assert (line.id, line.cost_code_id, line.line_item_type_id) == (991, 1472, 47)
    assert line.line_item_type_code == "S"
    co = ChangeOrder.model_validate(
        {"id": 5, "contract": {"id": 41}, "status": "approved", "grand_total": None}
    )
    assert co.contract_id == 41 and co.grand_total == Decimal(0)


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
