"""Typed views of Procore records that accept every payload variant seen in the docs.

Procore returns money as strings ("250.0") or numbers, ids as ints (v1) or strings
(v2/v4), vendors as a name string, {"id","name"} or {"id","company"}, percentages as
"96.36%", and nulls almost anywhere. Each model normalises those in a `before`
validator and keeps every other field (extra="allow") so nothing is lost and an
unknown field never breaks a sync.

Field names follow Procore's OpenAPI-generated models (docs/api/procore.md). Two
class-level sets say where a model departs from them, so a contract test can tell:
`DERIVED` names fields the connector fills itself (not a Procore field of that
name), `LEGACY_KEYS` names raw keys read only as a fallback for undocumented
variants.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from deltek_procore.http.text import to_decimal as shared_to_decimal

# ---------------------------------------------------------------- scalar coercion


# An amount Procore sent that is no number at all. Kept (not raised) so one bad record
# does not abort a whole read; translation quarantines it ("amount ... is not a number").
NOT_A_NUMBER = Decimal("NaN")


def to_decimal(value: Any) -> Decimal | None:
    """Money and percentages: "1,250.00", "$12", "96.36%", 12.5, None -> Decimal | None;
    garbage -> NaN (one shared parser, `deltek_procore.http.text.to_decimal`)."""
    if isinstance(value, bool):
        return None
    return shared_to_decimal(value, None, invalid="nan")


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

    DERIVED: ClassVar[frozenset[str]] = frozenset()
    LEGACY_KEYS: ClassVar[frozenset[str]] = frozenset()


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
    """A Company Directory vendor; its tax id is `business_id` (Procore has no tax_id)."""

    LEGACY_KEYS: ClassVar[frozenset[str]] = frozenset({"tax_id", "federal_tax_id", "tin"})

    id: Id
    name: OptStr = None
    business_id: OptStr = None
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
            if _blank_to_none(data.get("business_id")) is None:
                data["business_id"] = _first(data, *sorted(cls.LEGACY_KEYS))
        return data


class CostCode(ProcoreModel):
    DERIVED: ClassVar[frozenset[str]] = frozenset({"project_id"})

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


def _known(*values: Decimal | None) -> bool:
    return all(v is not None for v in values)


def _zero(value: Decimal | None) -> Decimal:
    return Decimal(0) if value is None else value


class RequisitionItem(ProcoreModel):
    """One AIA G703 line of a subcontractor invoice (v1.1 item, v1.0 contract item, or a
    /detail row). Amounts absent from a shape stay None, so "not sent" differs from 0.

    `materials_presently_stored` is a running balance, not this period's amount: see
    `gross_billed` (docs/api/procore.md#subcontractor-invoices-requisitions).
    """

    DERIVED: ClassVar[frozenset[str]] = frozenset({"line_item_type_id"})
    LEGACY_KEYS: ClassVar[frozenset[str]] = frozenset({"cost_code", "line_item_type"})

    id: Id
    item_type: OptStr = None
    cost_code_id: OptId = None
    line_item_id: OptId = None
    # Requisition items carry no cost type; the client may copy it from the contract line.
    line_item_type_id: OptId = None
    description_of_work: OptStr = None
    scheduled_value: OptMoney = None
    work_completed_from_previous_application: OptMoney = None
    work_completed_this_period: Money = Decimal(0)
    materials_presently_stored: OptMoney = None
    materials_presently_stored_from_previous_progress: OptMoney = None
    materials_moved: OptMoney = None
    total_completed_and_stored_to_date: OptMoney = None
    total_completed_and_stored_to_date_from_previous: OptMoney = None
    work_completed_retainage_retained_this_period: OptMoney = None
    work_completed_retainage_released_this_period: OptMoney = None
    materials_stored_retainage_new_materials: OptMoney = None
    materials_stored_retainage_retained_this_period: OptMoney = None  # /detail rows only
    materials_stored_retainage_released_this_period: OptMoney = None
    materials_stored_retainage_currently_retained: OptMoney = None
    materials_stored_retainage_from_previous_application: OptMoney = None  # /detail rows
    materials_retainage_retained_moved: OptMoney = None

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        data = _copy(data)
        if not isinstance(data, dict):
            return data
        data["cost_code_id"] = _ref_id(data, "cost_code_id", "cost_code")
        data["line_item_type_id"] = _ref_id(data, "line_item_type_id", "line_item_type")
        return data

    @property
    def description(self) -> str | None:
        return self.description_of_work

    def stored_before(self) -> Decimal | None:
        """Materials stored at the previous application, or None when nothing says."""
        if self.materials_presently_stored_from_previous_progress is not None:
            return self.materials_presently_stored_from_previous_progress
        if self.materials_presently_stored == 0 and self.materials_moved == 0:
            # Nothing stored now and none installed from storage: none was stored before
            # (stored now = stored before + new - installed, and none of these is negative).
            return Decimal(0)
        return None

    def gross_billed(self) -> Decimal | None:
        """What this line bills this period, or None when Procore's figures cannot tell.

        total to date - total at the previous application (= work this period + stored
        now - stored before). Adding the stored balance to this period's work would bill
        materials again every month they stay stored.
        """
        to_date = self.total_completed_and_stored_to_date
        before = self.total_completed_and_stored_to_date_from_previous
        if _known(to_date, before):
            return to_date - before  # type: ignore[operator]
        stored_before = self.stored_before()
        if _known(self.materials_presently_stored, stored_before):
            return (
                self.work_completed_this_period
                + self.materials_presently_stored  # type: ignore[operator]
                - stored_before  # type: ignore[operator]
            )
        return None

    def stored_retainage_new(self) -> Decimal | None:
        """Retainage newly held on materials stored this period, or None."""
        if self.materials_stored_retainage_new_materials is not None:
            return self.materials_stored_retainage_new_materials
        if self.materials_stored_retainage_retained_this_period is not None:
            return self.materials_stored_retainage_retained_this_period
        now = self.materials_stored_retainage_currently_retained
        before = self.materials_stored_retainage_from_previous_application
        moved = self.materials_retainage_retained_moved
        if _known(now, before, moved):
            # balance now = before + new - moved to work retainage - released
            released = _zero(self.materials_stored_retainage_released_this_period)
            return now - before + moved + released  # type: ignore[operator]
        if now == 0 and moved == 0:
            return Decimal(0)  # nothing held on stored materials now, none moved out
        stored = (
            self.materials_presently_stored,
            self.materials_presently_stored_from_previous_progress,
            self.materials_moved,
        )
        if all(v is None or v == 0 for v in stored):
            return Decimal(0)  # no materials stored, before or now: none held on them
        return None

    def retainage_held(self) -> Decimal | None:
        """Retainage held this period, net of releases (negative = a net release)."""
        stored_new = self.stored_retainage_new()
        if stored_new is None:
            return None
        return (
            _zero(self.work_completed_retainage_retained_this_period)
            - _zero(self.work_completed_retainage_released_this_period)
            + stored_new
            - _zero(self.materials_stored_retainage_released_this_period)
        )

    def previous_figures_missing(self) -> bool:
        """True for a v1.0 item whose period amounts need the previous application."""
        return self.gross_billed() is None or self.retainage_held() is None


class Requisition(ProcoreModel):
    """A subcontractor invoice (Procore "requisition"), AIA G702 summary plus G703 items."""

    LEGACY_KEYS: ClassVar[frozenset[str]] = frozenset({"commitment", "project", "vendor"})

    id: Id
    project_id: OptId = None
    commitment_id: OptId = None
    commitment_type: OptStr = None
    previous_requisition_id: OptId = None
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
    summary: Any = None
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
        if data.get("items") is None:
            data["items"] = []
        return data

    def _summary(self, key: str) -> Decimal | None:
        summary = self.summary if isinstance(self.summary, dict) else {}
        return to_decimal(summary.get(key))

    @property
    def current_payment_due(self) -> Decimal | None:
        """G702 line 8: what Procore says this invoice makes payable now (None if absent)."""
        return self._summary("current_payment_due")

    @property
    def total_retainage(self) -> Decimal | None:
        """G702 retainage balance to date (not this period's)."""
        return self._summary("total_retainage")

    @property
    def has_items(self) -> bool:
        """False for a v1.0 payload, whose items must be fetched separately."""
        return bool(self.items)


# ---------------------------------------------------------------- direct costs


class DirectCostLine(ProcoreModel):
    DERIVED: ClassVar[frozenset[str]] = frozenset(
        {"direct_cost_id", "cost_code_id", "line_item_type_id", "line_item_type_code"}
    )
    LEGACY_KEYS: ClassVar[frozenset[str]] = frozenset({"direct_cost"})

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
    DERIVED: ClassVar[frozenset[str]] = frozenset({"project_id"})
    LEGACY_KEYS: ClassVar[frozenset[str]] = frozenset(
        {"total_amount", "vendor.company", "vendor.company_name"}
    )

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
    DERIVED: ClassVar[frozenset[str]] = frozenset(
        {"cost_code_id", "line_item_type_id", "line_item_type_code"}
    )

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
    DERIVED: ClassVar[frozenset[str]] = frozenset(
        {"project_id", "kind", "vendor_id", "vendor_name", "line_items"}
    )
    LEGACY_KEYS: ClassVar[frozenset[str]] = frozenset(
        {"type", "contract_type", "vendor.name", "vendor.company_name"}
    )

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


class WbsCode(ProcoreModel):
    """A WBS code: `flat_code` is the cost code's full code, ".", the cost type code
    (e.g. "03-300.S"), plus any extra segments a company configured."""

    id: OptId = None
    flat_code: OptStr = None
    description: OptStr = None


class ContractLineRef(ProcoreModel):
    """The contract (SOV) line a change-order line changes, as the client found it
    among the contract's line items: where the change order's cost code comes from."""

    id: Id
    cost_code_id: OptId = None
    cost_code: OptStr = None
    line_item_type_id: OptId = None
    line_item_type_code: OptStr = None

    @classmethod
    def of(cls, line: CommitmentLine) -> ContractLineRef:
        return cls(
            id=line.id,
            cost_code_id=line.cost_code_id,
            cost_code=line.cost_code,
            line_item_type_id=line.line_item_type_id,
            line_item_type_code=line.line_item_type_code,
        )


class ChangeOrderLine(ProcoreModel):
    """v2.0 commitment change-order line. It carries no cost code and no cost type: those
    come from the contract line it changes (`commitment_line_item_id`), else from
    `wbs_code.flat_code` (docs/api/procore.md#commitment-change-orders)."""

    DERIVED: ClassVar[frozenset[str]] = frozenset({"contract_line"})

    id: Id
    description: OptStr = None
    amount: Money = Decimal(0)
    quantity: OptMoney = None
    unit_cost: OptMoney = None
    uom: OptStr = None
    extended_type: OptStr = None
    position: OptMoney = None
    tax_code_id: OptId = None
    commitment_line_item_id: OptId = None
    prime_line_item_id: OptId = None
    wbs_code_id: OptId = None
    wbs_code: WbsCode | None = None
    # Filled by the client from the contract's line items; None when not found.
    contract_line: ContractLineRef | None = None

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        data = _copy(data)
        if isinstance(data, dict) and not isinstance(data.get("wbs_code"), (dict, type(None))):
            data["wbs_code"] = {"flat_code": data["wbs_code"]}  # a bare code string
        return data

    @property
    def flat_code(self) -> str | None:
        return self.wbs_code.flat_code if self.wbs_code is not None else None


class ChangeOrder(ProcoreModel):
    DERIVED: ClassVar[frozenset[str]] = frozenset({"project_id", "line_items"})
    LEGACY_KEYS: ClassVar[frozenset[str]] = frozenset(
        {"commitment_id", "contract", "commitment", "project"}
    )

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
