"""Typed views of Procore records that accept every payload variant seen in the docs.

Procore returns money as strings ("250.0") or numbers, ids as ints (v1) or strings
(v2/v4), vendors as a name string, {"id","name"} or {"id","company"}, percentages as
"96.36%", and nulls almost anywhere. Each model normalises those in a `before`
validator and keeps every other field (extra="allow") so nothing is lost and an
unknown field never breaks a sync.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

# ---------------------------------------------------------------- scalar coercion


# An amount Procore sent that is no number at all. Kept (not raised) so one bad record
# does not abort a whole read; translation quarantines it ("amount ... is not a number").
NOT_A_NUMBER = Decimal("NaN")


def to_decimal(value: Any) -> Decimal | None:
    """Money and percentages: "1,250.00", "$12", "96.36%", 12.5, None -> Decimal | None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        text = value.strip().replace(",", "").replace("$", "").replace("%", "").strip()
        if not text:
            return None
        negative = text.startswith("(") and text.endswith(")")  # accounting style
        text = text.strip("()")
        try:
            number = Decimal(text)
        except InvalidOperation:
            return NOT_A_NUMBER
        return -number if negative else number
    return NOT_A_NUMBER


def money_or_zero(value: Any) -> Decimal:
    """A required amount: a null means nothing was entered, i.e. zero."""
    number = to_decimal(value)
    return Decimal(0) if number is None else number


def to_int(value: Any) -> int | None:
    """Ids: 123, "123", 123.0, {"id": 123}, "" / None -> None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        return to_int(value.get("id"))
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return int(text)
        except ValueError as exc:
            raise ValueError(f"not an id: {value!r}") from exc
    raise ValueError(f"not an id: {value!r}")


def to_str(value: Any) -> str | None:
    """Free text and codes: numbers become strings ("number": 19 -> "19")."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    if isinstance(value, str):
        return value
    raise ValueError(f"not text: {value!r}")


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _date_part(value: Any) -> Any:
    """Date fields sometimes arrive as full timestamps; keep the calendar date."""
    value = _blank_to_none(value)
    if isinstance(value, str) and len(value) > 10 and value[4] == "-" and value[10] in "T ":
        return value[:10]
    if isinstance(value, datetime):
        return value.date()
    return value


def _utc_if_naive(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


# allow_inf_nan: an amount that is no number reaches translation as NaN and is quarantined there.
Money = Annotated[Decimal, Field(allow_inf_nan=True), BeforeValidator(money_or_zero)]
OptMoney = Annotated[Decimal | None, Field(allow_inf_nan=True), BeforeValidator(to_decimal)]
Id = Annotated[int, BeforeValidator(to_int)]
OptId = Annotated[int | None, BeforeValidator(to_int)]
OptStr = Annotated[str | None, BeforeValidator(to_str)]
OptDate = Annotated[date | None, BeforeValidator(_date_part)]
OptDateTime = Annotated[
    datetime | None, BeforeValidator(_blank_to_none), AfterValidator(_utc_if_naive)
]
OptBool = Annotated[bool | None, BeforeValidator(_blank_to_none)]


# ---------------------------------------------------------------- helpers on raw dicts


def _first(raw: dict, *keys: str) -> Any:
    """The first key that is present with a non-null value."""
    for key in keys:
        value = raw.get(key)
        if value is not None:
            return value
    return None


def _ref_id(raw: dict, id_key: str, obj_key: str) -> Any:
    """An id given flat ("cost_code_id") or as an object ("cost_code": {"id": ..})."""
    value = raw.get(id_key)
    if value is None and isinstance(raw.get(obj_key), dict):
        value = raw[obj_key].get("id")
    return value


def _vendor_parts(raw: dict) -> tuple[Any, Any]:
    """(vendor_id, vendor_name) from any vendor shape: string, {id,name}, {id,company}."""
    vendor = raw.get("vendor")
    vendor_id = raw.get("vendor_id")
    vendor_name = raw.get("vendor_name")
    if isinstance(vendor, dict):
        if vendor_id is None:
            vendor_id = vendor.get("id")
        if vendor_name is None:
            vendor_name = _first(vendor, "name", "company", "company_name")
    elif isinstance(vendor, str) and vendor_name is None:
        vendor_name = vendor
    return vendor_id, vendor_name


class ProcoreModel(BaseModel):
    """Base: keep unknown fields, never mutate the caller's dict."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


def _copy(data: Any) -> Any:
    return dict(data) if isinstance(data, dict) else data


# ---------------------------------------------------------------- reference data


class Company(ProcoreModel):
    id: Id
    name: OptStr = None
    is_active: OptBool = None


class Project(ProcoreModel):
    id: Id
    name: OptStr = None
    project_number: OptStr = None
    active: OptBool = None
    origin_id: OptStr = None
    updated_at: OptDateTime = None


class Vendor(ProcoreModel):
    id: Id
    name: OptStr = None
    tax_id: OptStr = None
    origin_id: OptStr = None
    origin_code: OptStr = None
    is_active: OptBool = None
    updated_at: OptDateTime = None

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        data = _copy(data)
        if isinstance(data, dict):
            company = data.get("company")
            name = data.get("name")
            if (name is None or (isinstance(name, str) and not name.strip())) and isinstance(
                company, str
            ):
                data["name"] = company
            if data.get("tax_id") is None:
                data["tax_id"] = _first(data, "federal_tax_id", "tin")
        return data


class CostCode(ProcoreModel):
    id: Id
    full_code: OptStr = None
    name: OptStr = None
    project_id: OptId = None

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        data = _copy(data)
        if isinstance(data, dict) and data.get("project_id") is None:
            if data.get("biller_type") == "Project":
                data["project_id"] = data.get("biller_id")
        return data


class CostType(ProcoreModel):
    id: Id
    code: OptStr = None
    name: OptStr = None
    base_type: OptStr = None


class BillingPeriod(ProcoreModel):
    id: Id
    start_date: OptDate = None
    end_date: OptDate = None
    due_date: OptDate = None
    status: OptStr = None


# ---------------------------------------------------------------- requisitions


class RequisitionItem(ProcoreModel):
    id: Id
    item_type: OptStr = None
    cost_code_id: OptId = None
    line_item_id: OptId = None
    line_item_type_id: OptId = None
    description: OptStr = None
    scheduled_value: OptMoney = None
    work_completed_this_period: Money = Decimal(0)
    materials_presently_stored: Money = Decimal(0)
    retainage_this_period: Money = Decimal(0)

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        data = _copy(data)
        if not isinstance(data, dict):
            return data
        data["cost_code_id"] = _ref_id(data, "cost_code_id", "cost_code")
        data["line_item_type_id"] = _ref_id(data, "line_item_type_id", "line_item_type")
        if data.get("description") is None:
            data["description"] = data.get("description_of_work")
        if data.get("retainage_this_period") is None:
            # [I] the v1.1 item splits retainage into work and stored-material parts.
            parts = [
                to_decimal(data.get("work_completed_retainage_retained_this_period")),
                to_decimal(data.get("materials_stored_retainage_retained_this_period")),
            ]
            data["retainage_this_period"] = sum((p for p in parts if p is not None), Decimal(0))
        return data


class Requisition(ProcoreModel):
    id: Id
    project_id: OptId = None
    commitment_id: OptId = None
    commitment_type: OptStr = None
    vendor_id: OptId = None
    vendor_name: OptStr = None
    invoice_number: OptStr = None
    number: OptStr = None
    period_id: OptId = None
    billing_date: OptDate = None
    requisition_start: OptDate = None
    requisition_end: OptDate = None
    status: OptStr = None
    percent_complete: OptMoney = None
    created_at: OptDateTime = None
    updated_at: OptDateTime = None
    total_retainage: OptMoney = None
    current_payment_due: OptMoney = None
    items: list[RequisitionItem] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        data = _copy(data)
        if not isinstance(data, dict):
            return data
        data["vendor_id"], data["vendor_name"] = _vendor_parts(data)
        data["commitment_id"] = _ref_id(data, "commitment_id", "commitment")
        data["project_id"] = _ref_id(data, "project_id", "project")
        summary = data.get("summary")
        if isinstance(summary, dict):
            for key in ("total_retainage", "current_payment_due"):
                if data.get(key) is None:
                    data[key] = summary.get(key)
        if data.get("items") is None:
            data["items"] = []
        return data

    @property
    def has_items(self) -> bool:
        """False for a v1.0 payload, whose items must be fetched separately."""
        return bool(self.items)


# ---------------------------------------------------------------- direct costs


class DirectCostLine(ProcoreModel):
    id: Id
    direct_cost_id: OptId = None
    description: OptStr = None
    amount: Money = Decimal(0)
    cost_code_id: OptId = None
    cost_code: OptStr = None
    line_item_type_id: OptId = None
    line_item_type_code: OptStr = None

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        data = _copy(data)
        if not isinstance(data, dict):
            return data
        code = data.get("cost_code")
        data["cost_code_id"] = _ref_id(data, "cost_code_id", "cost_code")
        data["cost_code"] = code.get("full_code") if isinstance(code, dict) else code
        kind = data.get("line_item_type")
        data["line_item_type_id"] = _ref_id(data, "line_item_type_id", "line_item_type")
        if data.get("line_item_type_code") is None and isinstance(kind, dict):
            data["line_item_type_code"] = kind.get("code")
        if data.get("amount") is None:
            data["amount"] = _first(data, "total_amount", "extended_amount")
        if data.get("direct_cost_id") is None:
            holder = _first(data, "direct_cost", "holder")
            if isinstance(holder, dict):
                data["direct_cost_id"] = holder.get("id")
        return data


class DirectCost(ProcoreModel):
    id: Id
    project_id: OptId = None
    direct_cost_type: OptStr = None
    status: OptStr = None
    invoice_number: OptStr = None
    description: OptStr = None
    direct_cost_date: OptDate = None
    received_date: OptDate = None
    payment_date: OptDate = None
    grand_total: Money = Decimal(0)
    vendor_id: OptId = None
    vendor_name: OptStr = None
    created_at: OptDateTime = None
    updated_at: OptDateTime = None
    line_items: list[DirectCostLine] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        data = _copy(data)
        if not isinstance(data, dict):
            return data
        data["vendor_id"], data["vendor_name"] = _vendor_parts(data)
        data["project_id"] = _ref_id(data, "project_id", "project")
        if data.get("grand_total") is None:
            data["grand_total"] = _first(data, "amount", "total_amount")
        if data.get("line_items") is None:
            data["line_items"] = []
        return data


# ---------------------------------------------------------------- commitments


class CommitmentLine(ProcoreModel):
    id: Id
    description: OptStr = None
    amount: Money = Decimal(0)
    cost_code_id: OptId = None
    cost_code: OptStr = None
    line_item_type_id: OptId = None
    line_item_type_code: OptStr = None

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        data = _copy(data)
        if not isinstance(data, dict):
            return data
        code = data.get("cost_code")
        kind = data.get("line_item_type")
        data["cost_code_id"] = _ref_id(data, "cost_code_id", "cost_code")
        data["cost_code"] = code.get("full_code") if isinstance(code, dict) else code
        data["line_item_type_id"] = _ref_id(data, "line_item_type_id", "line_item_type")
        if data.get("line_item_type_code") is None and isinstance(kind, dict):
            data["line_item_type_code"] = kind.get("code")
        if data.get("amount") is None:
            data["amount"] = _first(data, "extended_amount", "total_amount")
        return data


_KIND_BY_TYPE = {"WorkOrderContract": "work_order", "PurchaseOrderContract": "purchase_order"}


class Commitment(ProcoreModel):
    id: Id
    project_id: OptId = None
    kind: Literal["work_order", "purchase_order"] | None = None
    number: OptStr = None
    title: OptStr = None
    status: OptStr = None
    vendor_id: OptId = None
    vendor_name: OptStr = None
    grand_total: Money = Decimal(0)
    contract_date: OptDate = None
    executed: OptBool = None
    deleted_at: OptDateTime = None
    created_at: OptDateTime = None
    updated_at: OptDateTime = None
    line_items: list[CommitmentLine] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        data = _copy(data)
        if not isinstance(data, dict):
            return data
        data["vendor_id"], data["vendor_name"] = _vendor_parts(data)
        data["project_id"] = _ref_id(data, "project_id", "project")
        if data.get("kind") is None:
            data["kind"] = _KIND_BY_TYPE.get(str(data.get("type") or data.get("contract_type")))
        if data.get("line_items") is None:
            data["line_items"] = []
        return data


class ChangeOrderLine(CommitmentLine):
    """v2.0 change-order line: same fields as a commitment line, string ids."""


class ChangeOrder(ProcoreModel):
    id: Id
    project_id: OptId = None
    contract_id: OptId = None
    number: OptStr = None
    title: OptStr = None
    status: OptStr = None
    grand_total: Money = Decimal(0)
    executed: OptBool = None
    reviewed_at: OptDateTime = None
    created_at: OptDateTime = None
    updated_at: OptDateTime = None
    line_items: list[ChangeOrderLine] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        data = _copy(data)
        if not isinstance(data, dict):
            return data
        data["project_id"] = _ref_id(data, "project_id", "project")
        contract = data.get("contract_id")
        if contract is None:
            contract = _ref_id(data, "commitment_id", "contract")
        if contract is None and isinstance(data.get("commitment"), dict):
            contract = data["commitment"].get("id")
        data["contract_id"] = contract
        if data.get("line_items") is None:
            data["line_items"] = []
        return data
