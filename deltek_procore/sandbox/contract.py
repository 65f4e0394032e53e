"""Contract checks: does a body have the shape Procore's real response models declare?

`docs/api/procore-fields.json` lists, per GET operation, the fields and declared JSON types
of Procore's OpenAPI-generated response models (docs/api/procore.md says where they come
from). Two questions are answered against it, so the simulator cannot drift into shapes
Procore never sends and the connector cannot come to depend on them:

- `violations(operation, body)`: every served field exists in the model (recursing into
  the nested objects and arrays the file expands; a body with `variants`/`oneOf` must fit
  one of them) and its JSON type, nullability, enum and date format agree.
- `unknown_reads()`: every raw field the connector reads exists in the model of the
  endpoint it reads from. The reads come from `deltek_procore.procore.models` (declared
  fields plus the raw keys its `before` validators look at, found by reading their source)
  and from `CONNECTOR_READS` (what the HTTP client reads itself).

`EXCEPTIONS` is the one place for a deviation the simulator serves on purpose; each names
its source. Keep it tiny.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

FIELDS_FILE = Path(__file__).resolve().parents[2] / "docs" / "api" / "procore-fields.json"

COMPANIES = "GET /rest/v1.0/companies"
PROJECTS = "GET /rest/v1.0/projects"
VENDORS = "GET /rest/v1.0/vendors"
COST_CODES = "GET /rest/v1.0/cost_codes"
LINE_ITEM_TYPES = "GET /rest/v1.0/line_item_types"
REQUISITIONS = "GET /rest/v1.1/requisitions"
REQUISITION_ITEMS = "GET /rest/v1.0/requisitions/{requisition_id}/contract_items"
REQUISITION_DETAIL = "GET /rest/v1.0/requisitions/{requisition_id}/detail"
DIRECT_COSTS = "GET /rest/v1.1/projects/{project_id}/direct_costs"
DIRECT_COST = "GET /rest/v1.1/projects/{project_id}/direct_costs/{id}"
DIRECT_COST_LINES = "GET /rest/v1.0/projects/{project_id}/direct_costs/line_items"
WORK_ORDERS = "GET /rest/v1.0/work_order_contracts"
WORK_ORDER = "GET /rest/v1.0/work_order_contracts/{id}"
WORK_ORDER_LINES = "GET /rest/v1.0/work_order_contracts/{work_order_contract_id}/line_items"
PURCHASE_ORDERS = "GET /rest/v1.0/purchase_order_contracts"
PURCHASE_ORDER = "GET /rest/v1.0/purchase_order_contracts/{id}"
PURCHASE_ORDER_LINES = (
    "GET /rest/v1.0/purchase_order_contracts/{purchase_order_contract_id}/line_items"
)
CHANGE_ORDERS = "GET /rest/v1.0/projects/{project_id}/commitment_change_orders"
CHANGE_ORDER = "GET /rest/v1.0/projects/{project_id}/commitment_change_orders/{id}"
CHANGE_ORDER_LINES = (
    "GET /rest/v2.0/companies/{company_id}/projects/{project_id}/commitment_change_orders"
    "/{commitment_change_order_id}/line_items"
)
HOOKS = "GET /rest/v1.0/webhooks/hooks"
DELIVERIES = "GET /rest/v1.0/webhooks/hooks/{hook_id}/deliveries"
TRIGGERS = "GET /rest/v1.0/webhooks/hooks/{hook_id}/triggers"


@dataclass(frozen=True)
class Deviation:
    """Something the simulator serves although the model lacks it, and why that is right.

    kind: "field" = a field the model does not list; "null" = null where the model
    declares no null; "list-body" = a JSON array where the model declares one object.
    path: the field inside one item, e.g. "data[].prime_line_item_id" ("" = the body).
    """

    operation: str
    path: str
    kind: Literal["field", "null", "list-body"]
    source: str


EXCEPTIONS: tuple[Deviation, ...] = (
    Deviation(
        CHANGE_ORDERS,
        "",
        "list-body",
        "docs/api/procore.md#commitment-change-orders: the connector and the simulator treat "
        "the list as a JSON array of change orders; the OAS model declares one object "
        "(oneOf default/extended) and the live shape is unverified.",
    ),
    Deviation(
        CHANGE_ORDER_LINES,
        "data[].commitment_line_item_id",
        "null",
        "docs/api/procore.md#commitment-change-orders: commitment_line_item_id is the contract "
        "line being changed, or null; without one a line has only its wbs_code.",
    ),
    Deviation(
        CHANGE_ORDER_LINES,
        "data[].prime_line_item_id",
        "null",
        "docs/api/procore.md#commitment-change-orders: prime_line_item_id is a linked prime "
        "contract line, else null.",
    ),
)

# Which endpoint bodies each connector model is validated from: (operation, where in one
# item). A read must exist in at least one of them.
MODEL_SOURCES: dict[str, tuple[tuple[str, str], ...]] = {
    "Company": ((COMPANIES, ""),),
    "Project": ((PROJECTS, ""),),
    "Vendor": ((VENDORS, ""),),
    "CostCode": ((COST_CODES, ""),),
    "CostType": ((LINE_ITEM_TYPES, ""),),
    "Requisition": ((REQUISITIONS, ""),),
    "RequisitionItem": (
        (REQUISITIONS, "items[]"),
        (REQUISITION_ITEMS, ""),
        (REQUISITION_DETAIL, ""),
    ),
    "DirectCost": ((DIRECT_COSTS, ""), (DIRECT_COST, "")),
    "DirectCostLine": ((DIRECT_COST, "line_items[]"), (DIRECT_COST_LINES, "")),
    "Commitment": (
        (WORK_ORDERS, ""),
        (WORK_ORDER, ""),
        (PURCHASE_ORDERS, ""),
        (PURCHASE_ORDER, ""),
    ),
    "CommitmentLine": (
        (WORK_ORDER, "line_items[]"),
        (WORK_ORDER_LINES, ""),
        (PURCHASE_ORDER, "line_items[]"),
        (PURCHASE_ORDER_LINES, ""),
    ),
    "ChangeOrder": ((CHANGE_ORDERS, ""), (CHANGE_ORDER, "")),
    "ChangeOrderLine": ((CHANGE_ORDER_LINES, "data[]"),),
}
# Models whose endpoint procore-fields.json does not cover (nothing to check them against).
UNCOVERED_MODELS: dict[str, str] = {
    "BillingPeriod": "GET /rest/v1.0/projects/{project_id}/billing_periods is not in the file",
    "ContractLineRef": "built by the connector from a contract line, never from a Procore body",
}

# Raw fields the HTTP client (deltek_procore/procore/client.py) reads itself, outside the
# models, per group of endpoints it reads them from; "items[].x" = field x of each element
# of items. A key the fed model declares DERIVED or LEGACY_KEYS is excused as there.
CONNECTOR_READS: dict[tuple[str, ...], tuple[str, ...]] = {
    (COMPANIES, PROJECTS, VENDORS, COST_CODES, LINE_ITEM_TYPES): ("id",),
    (REQUISITIONS,): (
        "id",
        "items",
        "number",
        "previous_requisition_id",
        "commitment_id",
        "commitment_type",
        "vendor_id",
        "vendor",
        "items[].id",
        "items[].item_type",
        "items[].line_item_id",
        "items[].cost_code_id",
        "items[].cost_code",
        "items[].line_item_type_id",
        "items[].line_item_type",
        "items[].work_completed_from_previous_application",
    ),
    (REQUISITION_ITEMS,): (
        "id",
        "item_type",
        "line_item_id",
        "cost_code_id",
        "work_completed_from_previous_application",
    ),
    (DIRECT_COSTS, DIRECT_COST): ("id", "line_items"),
    (DIRECT_COST_LINES,): ("id", "direct_cost_id", "holder.id"),
    (WORK_ORDERS, PURCHASE_ORDERS): ("id",),
    (WORK_ORDER_LINES, PURCHASE_ORDER_LINES): ("id",),
    (CHANGE_ORDERS,): ("id",),
    (CHANGE_ORDER_LINES,): ("data", "data[].commitment_line_item_id"),
    (HOOKS,): ("id", "namespace", "destination_url", "destination_headers"),
    (TRIGGERS,): ("resource_name", "event_type"),
    (DELIVERIES,): ("event_id",),
}


# --- the fields file -----------------------------------------------------------------------


@lru_cache(maxsize=4)
def load(path: str | None = None) -> dict[str, dict]:
    """Operation key -> its entry in procore-fields.json."""
    with open(path or FIELDS_FILE, encoding="utf-8") as handle:
        return json.load(handle)["operations"]


def _operation(key: str) -> dict:
    try:
        return load()[key]
    except KeyError:
        raise KeyError(f"{key!r} is not an operation in {FIELDS_FILE.name}") from None


def item_shapes(key: str) -> dict[str, dict]:
    """The field maps one item of this operation may have: {variant name: fields}."""
    entry = _operation(key)
    if "fields" in entry:
        return {"": entry["fields"]}
    variants = entry["variants"]
    out: dict[str, dict] = {}
    for name, variant in variants.items():
        if "fields" in variant:
            out[name] = variant["fields"]
        else:
            out[name] = {**variants[variant["same_as"]]["fields"], **variant.get("plus", {})}
    return out


# --- (a) bodies against the model ------------------------------------------------------------


@dataclass(frozen=True)
class _Problem:
    path: str
    kind: str  # "field" | "null" | "type" | "required" | "shape"
    text: str

    def render(self) -> str:
        return f"{self.path or '<body>'}: {self.text}"


_TYPE = re.compile(r"^(?P<base>[a-z]+)(?:\((?P<fmt>[a-z-]+)\))?(?P<null>\|null)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _spec(raw: Any) -> dict:
    """A field's declaration as a dict: "string(date)|null" -> {type, format, nullable}."""
    if isinstance(raw, str):
        raw = {"type": raw}
    out = dict(raw)
    match = _TYPE.match(str(out.get("type", "any")))
    if match:
        out["type"] = match["base"]
        out["format"] = match["fmt"]
        out["nullable"] = bool(match["null"]) or out.get("nullable") is True
    return out


def _placeholder(name: str) -> re.Pattern[str] | None:
    """custom_field_%{custom_field_string_definition_id} -> custom_field_<digits>."""
    if "%{" not in name:
        return None
    parts = re.split(r"%\{[^}]*\}", name)
    return re.compile("^" + r"\d+".join(re.escape(p) for p in parts) + "$")


def _lookup(fields: dict, name: str) -> Any:
    if name in fields:
        return fields[name]
    for declared, spec in fields.items():
        pattern = _placeholder(declared)
        if pattern is not None and pattern.match(name):
            return spec
    return None


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class _Checker:
    def __init__(self, allowed: set[tuple[str, str]]) -> None:
        self.allowed = allowed

    def fields(self, value: Any, fields: dict, path: str) -> list[_Problem]:
        if not isinstance(value, dict):
            return [_Problem(path, "type", f"expected an object, got {_kind(value)}")]
        out: list[_Problem] = []
        for name, item in value.items():
            where = _join(path, name)
            declared = _lookup(fields, name)
            if declared is None:
                if ("field", where) not in self.allowed:
                    out.append(_Problem(where, "field", "served but not in the model"))
                continue
            out += self.value(item, declared, where)
        for name, declared in fields.items():
            if isinstance(declared, dict) and declared.get("required") and name not in value:
                out.append(_Problem(_join(path, name), "required", "required by the model"))
        return out

    def value(self, value: Any, raw_spec: Any, path: str) -> list[_Problem]:
        spec = _spec(raw_spec)
        if "oneOf" in spec:
            return self.one_of(value, spec["oneOf"], path)
        kind = spec.get("type", "any")
        if value is None:
            if spec.get("nullable") or ("null", path) in self.allowed:
                return []
            shown = raw_spec if isinstance(raw_spec, str) else kind
            return [_Problem(path, "null", f"null, but the model declares {shown} (no null)")]
        problem = _type_problem(value, kind, spec.get("format"))
        if problem:
            return [_Problem(path, "type", problem)]
        if "enum" in spec and value not in spec["enum"]:
            return [_Problem(path, "type", f"{value!r} is not one of {spec['enum']}")]
        if kind == "object" and "fields" in spec:
            return self.fields(value, spec["fields"], path)
        if kind == "array" and "of" in spec:
            out: list[_Problem] = []
            for element in value:
                out += self.value(element, spec["of"], f"{path}[]")
            return out
        return []

    def one_of(self, value: Any, options: list, path: str) -> list[_Problem]:
        tried = [self.value(value, option, path) for option in options]
        if any(not problems for problems in tried):
            return []
        best = min(tried, key=len)
        return [
            _Problem(p.path, p.kind, f"{p.text} (fits none of {len(options)} oneOf options)")
            for p in best
        ]

    def item(self, value: Any, shapes: dict[str, dict], path: str) -> list[_Problem]:
        tried: dict[str, list[_Problem]] = {}
        for name, fields in shapes.items():
            problems = self.fields(value, fields, path)
            if not problems:
                return []
            tried[name] = problems
        name, best = min(tried.items(), key=lambda pair: len(pair[1]))
        if not name:
            return best
        return [_Problem(p.path, p.kind, f"{p.text} (closest variant: {name})") for p in best]


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def _type_problem(value: Any, kind: str, fmt: str | None) -> str | None:
    """Why `value` is not of the declared JSON type, or None when it is."""
    got = _kind(value)
    fits = {
        "any": True,
        "string": got == "string",
        "integer": got == "integer",
        "number": got in ("integer", "number"),
        "boolean": got == "boolean",
        "object": got == "object",
        "array": got == "array",
    }.get(kind, True)
    if not fits:
        return f"expected {kind}, got {got} ({value!r:.40})"
    if got == "string" and fmt == "date" and not _is_date(value):
        return f"expected a date (YYYY-MM-DD), got {value!r}"
    if got == "string" and fmt == "date-time" and not _is_datetime(value):
        return f"expected an ISO 8601 date-time, got {value!r}"
    return None


def _is_date(text: str) -> bool:
    try:
        return bool(_DATE.match(text)) and date.fromisoformat(text) is not None
    except ValueError:
        return False


def _is_datetime(text: str) -> bool:
    if "T" not in text:
        return False
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def exceptions_for(operation: str) -> set[tuple[str, str]]:
    return {(d.kind, d.path) for d in EXCEPTIONS if d.operation == operation}


def violations(operation: str, body: Any) -> list[str]:
    """What in `body` (a parsed 200 body of `operation`) the real model does not allow.

    Each problem once, as "path: what is wrong" (paths inside one item, "[]" = any
    element of an array), so a thousand rows with the same fault give one line.
    """
    entry = _operation(operation)
    allowed = exceptions_for(operation)
    checker = _Checker(allowed)
    shapes = item_shapes(operation)
    as_list = str(entry.get("response", "")).startswith("array") or (
        isinstance(body, list) and ("list-body", "") in allowed
    )
    problems: list[_Problem] = []
    if as_list:
        if not isinstance(body, list):
            problems.append(_Problem("", "shape", f"expected a JSON array, got {_kind(body)}"))
        else:
            for element in body:
                problems += checker.item(element, shapes, "")
    elif isinstance(body, list):
        problems.append(_Problem("", "shape", "expected one JSON object, got an array"))
    else:
        problems += checker.item(body, shapes, "")
    return list(dict.fromkeys(p.render() for p in problems))


# --- (b) what the connector reads --------------------------------------------------------------


def _parts(path: str) -> list[str]:
    return [part.removesuffix("[]") for part in path.split(".") if part]


def _descend(spec: Any, name: str) -> list[Any] | None:
    """The declarations of `name` under one declaration; None = cannot look inside."""
    spec = _spec(spec)
    if "oneOf" in spec:
        found = [d for option in spec["oneOf"] for d in (_descend(option, name) or [])]
        return found
    if spec.get("type") == "array":
        return _descend(spec["of"], name) if "of" in spec else None
    if spec.get("type") in ("object", "any") and "fields" not in spec:
        return None  # free-form or not expanded: anything may be inside
    fields = spec.get("fields")
    if not isinstance(fields, dict):
        return []
    declared = _lookup(fields, name)
    return [] if declared is None else [declared]


def field_exists(operation: str, path: str, prefix: str = "") -> bool:
    """Is `path` (dotted, "[]" optional) a field of one item of `operation` (under `prefix`)?"""
    current: list[Any] = [
        {"type": "object", "fields": fields} for fields in item_shapes(operation).values()
    ]
    for name in _parts(prefix) + _parts(path):
        following: list[Any] = []
        for spec in current:
            found = _descend(spec, name)
            if found is None:
                return True
            following += found
        if not following:
            return False
        current = following
    return True


def _models_module() -> ModuleType:
    import deltek_procore.procore.models as models

    return models


def connector_models() -> dict[str, type]:
    """Every pydantic model in deltek_procore.procore.models that reads a Procore record."""
    module = _models_module()
    base = module.ProcoreModel
    return {
        name: obj
        for name, obj in vars(module).items()
        if isinstance(obj, type)
        and issubclass(obj, base)
        and obj is not base
        and obj.__module__ == module.__name__
    }


def _excused(model: type) -> frozenset[str]:
    """Keys a model may read that are no Procore field: `DERIVED` (the connector fills them
    itself) and `LEGACY_KEYS` (fallbacks for undocumented variants, which the simulator must
    never serve: see `legacy_keys`). A dotted key ("vendor.company_name") excuses that
    nested key only."""
    return frozenset(getattr(model, "DERIVED", frozenset())) | frozenset(
        getattr(model, "LEGACY_KEYS", frozenset())
    )


def legacy_keys() -> dict[str, frozenset[str]]:
    """Model name -> raw keys it reads only as a fallback for undocumented variants."""
    return {
        name: frozenset(getattr(model, "LEGACY_KEYS", frozenset()))
        for name, model in connector_models().items()
        if getattr(model, "LEGACY_KEYS", None)
    }


def _nested_models(annotation: Any, models: dict[str, type]) -> list[type]:
    """Connector models inside a field annotation (`X | None`, `list[X]`, ...)."""
    found = [m for m in models.values() if annotation is m]
    for argument in getattr(annotation, "__args__", ()) or ():
        found += _nested_models(argument, models)
    return found


def all_reads(model: type, models: dict[str, type], depth: int = 0) -> set[str]:
    """The model's reads plus those of nested models that have no source of their own
    (e.g. `wbs_code: WbsCode`), prefixed with the field they sit in. Keys the model
    excuses (DERIVED, LEGACY_KEYS) are left out."""
    excused = _excused(model)
    out = {path for path in model_reads(model) if not _is_excused(path.split("."), excused)}
    if depth >= 4:
        return out
    for name, info in model.model_fields.items():
        if name in excused:
            continue
        for nested in _nested_models(info.annotation, models):
            if nested.__name__ in MODEL_SOURCES:
                continue  # checked against its own endpoints
            out |= {f"{name}.{path}" for path in all_reads(nested, models, depth + 1)}
    return out


def unknown_reads() -> list[str]:
    """Fields the connector reads that no real model (or documented variant) has."""
    out = []
    models = connector_models()
    reachable = {
        nested.__name__
        for name in MODEL_SOURCES
        if name in models
        for info in models[name].model_fields.values()
        for nested in _nested_models(info.annotation, models)
    }
    for name in sorted(set(models) - set(MODEL_SOURCES) - set(UNCOVERED_MODELS) - reachable):
        out.append(f"{name}: no entry in MODEL_SOURCES or UNCOVERED_MODELS")
    for name, sources in MODEL_SOURCES.items():
        if name not in models:
            out.append(f"MODEL_SOURCES names {name}, which models.py no longer has")
            continue
        for path in sorted(all_reads(models[name], models)):
            if not any(field_exists(op, path, prefix) for op, prefix in sources):
                places = ", ".join(f"{op} {prefix}".strip() for op, prefix in sources)
                out.append(f"{name} reads {path!r}, which is in none of: {places}")
    for operations, paths in CONNECTOR_READS.items():
        for path in paths:
            if _excused_read(operations, path, models):
                continue
            if not any(field_exists(op, path) for op in operations):
                out.append(f"the client reads {path!r}, which is in none of: {operations}")
    return out


def _excused_read(operations: tuple[str, ...], path: str, models: dict[str, type]) -> bool:
    """Is `path` a key the model fed from these operations declares DERIVED or legacy?"""
    parts = _parts(path)
    for name, sources in MODEL_SOURCES.items():
        for operation, prefix in sources:
            head = _parts(prefix)
            if operation not in operations or parts[: len(head)] != head:
                continue
            rest = parts[len(head) :]
            if name in models and rest and _is_excused(rest, _excused(models[name])):
                return True
    return False


def _is_excused(parts: list[str], excused: frozenset[str]) -> bool:
    return any(".".join(parts[:n]) in excused for n in range(1, len(parts) + 1))


# --- reading the validators' source -----------------------------------------------------------


class _Paths(frozenset):
    """Alternative raw-record paths an expression may be (e.g. `_first(raw, "a", "b")`)."""


class _Keys(frozenset):
    """String constants an expression may be (a key, or the keys a loop walks)."""


@lru_cache(maxsize=8)
def _module_tree(module_name: str) -> ast.Module:
    return ast.parse(inspect.getsource(sys.modules[module_name]))


def _is_before_validator(node: ast.FunctionDef) -> bool:
    for decorator in node.decorator_list:
        if isinstance(decorator, ast.Call) and getattr(decorator.func, "id", "") in (
            "model_validator",
            "field_validator",
        ):
            modes = [k.value for k in decorator.keywords if k.arg == "mode"]
            if any(isinstance(m, ast.Constant) and m.value == "before" for m in modes):
                return getattr(decorator.func, "id", "") == "model_validator"
    return False


def _validators(model: type) -> list[ast.FunctionDef]:
    """The model's `before` model validators, nearest class first (overrides win)."""
    tree = _module_tree(model.__module__)
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    found: dict[str, ast.FunctionDef] = {}
    for klass in model.__mro__:
        node = classes.get(klass.__name__)
        if node is None or klass.__module__ != model.__module__:
            continue
        for item in node.body:
            if (
                isinstance(item, ast.FunctionDef)
                and _is_before_validator(item)
                and item.name not in found
            ):
                found[item.name] = item
    return list(found.values())


def model_reads(model: type) -> set[str]:
    """Raw keys (dotted paths) a model takes from a record: declared fields it does not
    overwrite, plus every key its `before` validators read."""
    tree = _module_tree(model.__module__)
    helpers = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    reads: set[tuple[str, ...]] = set()
    overwritten: set[str] = set()
    for function in _validators(model):
        params = [a.arg for a in function.args.args]
        if len(params) < 2:
            continue
        scanner = _Scanner(helpers, reads)
        scanner.block(function.body, {params[1]: _Paths({()})})
        overwritten |= _overwritten(function.body, params[1])
    for name, info in model.model_fields.items():
        alias = info.validation_alias if isinstance(info.validation_alias, str) else info.alias
        key = alias or name
        if key not in overwritten:
            reads.add((key,))
    return {".".join(path) for path in reads if path}


def _overwritten(body: list[ast.stmt], param: str) -> set[str]:
    """Keys the validator always sets (only guarded by `isinstance(param, dict)`)."""
    out: set[str] = set()

    def guard(test: ast.expr) -> bool:
        return (
            isinstance(test, ast.Call)
            and getattr(test.func, "id", "") == "isinstance"
            and bool(test.args)
            and getattr(test.args[0], "id", "") == param
        )

    def walk(statements: list[ast.stmt]) -> None:
        for statement in statements:
            if isinstance(statement, ast.Assign):
                for target in statement.targets:
                    elements = target.elts if isinstance(target, ast.Tuple) else [target]
                    for element in elements:
                        if (
                            isinstance(element, ast.Subscript)
                            and getattr(element.value, "id", "") == param
                            and isinstance(element.slice, ast.Constant)
                            and isinstance(element.slice.value, str)
                        ):
                            out.add(element.slice.value)
            elif isinstance(statement, ast.If) and guard(statement.test):
                walk(statement.body)

    walk(body)
    return out


class _Scanner:
    """Follows a validator (and the module helpers it calls) to collect the raw keys it reads.

    Tracks which local names hold the raw record or a value taken from it, and which hold
    string keys, through assignments, `for` loops over constant tuples and helper calls.
    """

    max_depth = 4

    def __init__(
        self, helpers: dict[str, ast.FunctionDef], reads: set[tuple[str, ...]], depth: int = 0
    ) -> None:
        self.helpers, self.reads, self.depth = helpers, reads, depth
        self.returned: set[tuple[str, ...]] = set()

    def block(self, statements: list[ast.stmt], env: dict[str, Any]) -> None:
        for statement in statements:
            self.statement(statement, env)

    def statement(self, node: ast.stmt, env: dict[str, Any]) -> None:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            value = self.expr(node.value, env) if node.value is not None else None
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                self.bind(target, value, node.value, env)
        elif isinstance(node, ast.For):
            walked = self.expr(node.iter, env)
            if isinstance(node.target, ast.Name):
                env[node.target.id] = walked if isinstance(walked, _Keys) else None
            self.block(node.body, env)
            self.block(node.orelse, env)
        elif isinstance(node, (ast.If, ast.While)):
            self.expr(node.test, env)
            self.block(node.body, env)
            self.block(node.orelse, env)
        elif isinstance(node, ast.With):
            for item in node.items:
                self.expr(item.context_expr, env)
            self.block(node.body, env)
        elif isinstance(node, ast.Try):
            self.block(node.body, env)
            for handler in node.handlers:
                self.block(handler.body, env)
            self.block(node.orelse, env)
            self.block(node.finalbody, env)
        elif isinstance(node, ast.Return):
            value = self.expr(node.value, env) if node.value is not None else None
            if isinstance(value, _Paths):
                self.returned |= value
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.expr(child, env)

    def bind(self, target: ast.expr, value: Any, source: ast.expr | None, env: dict) -> None:
        if isinstance(target, ast.Name):
            keeps_self = (
                isinstance(source, ast.Call)
                and isinstance(env.get(target.id), _Paths)
                and any(getattr(a, "id", None) == target.id for a in source.args)
            )
            if not keeps_self:  # `data = _copy(data)` still is the record
                env[target.id] = value if isinstance(value, (_Paths, _Keys)) else None
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self.bind(element, None, None, env)
        elif isinstance(target, ast.Subscript):
            self.expr(target.slice, env)  # a write into the record is no read

    def read(self, base: Any, key: Any) -> _Paths | None:
        if not isinstance(base, _Paths) or not isinstance(key, _Keys):
            return None
        paths = {path + (name,) for path in base for name in key}
        self.reads |= paths
        return _Paths(paths)

    def expr(self, node: ast.expr | None, env: dict[str, Any]) -> Any:
        if node is None:
            return None
        if isinstance(node, ast.Constant):
            return _Keys({node.value}) if isinstance(node.value, str) else None
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            values = [self.expr(e, env) for e in node.elts]
            if values and all(isinstance(v, _Keys) for v in values):
                return _Keys(frozenset().union(*values))
            return None
        if isinstance(node, ast.Name):
            return env.get(node.id)
        if isinstance(node, ast.Subscript):
            base = self.expr(node.value, env)
            return self.read(base, self.expr(node.slice, env))
        if isinstance(node, ast.Compare):
            left = self.expr(node.left, env)
            for op, right in zip(node.ops, node.comparators, strict=True):
                holder = self.expr(right, env)
                if isinstance(op, (ast.In, ast.NotIn)):
                    self.read(holder, left)
            return None
        if isinstance(node, ast.Call):
            return self.call(node, env)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.expr(child, env)
        return None

    def call(self, node: ast.Call, env: dict[str, Any]) -> Any:
        args = [self.expr(a, env) for a in node.args]
        keywords = {k.arg: self.expr(k.value, env) for k in node.keywords}
        func = node.func
        if isinstance(func, ast.Attribute):
            base = self.expr(func.value, env)
            if func.attr == "get" and args:
                return self.read(base, args[0])
            return None
        name = getattr(func, "id", None)
        helper = self.helpers.get(name or "")
        if helper is None or self.depth >= self.max_depth:
            return None
        inner: dict[str, Any] = {}
        params = [a.arg for a in helper.args.args]
        for param, value in zip(params, args, strict=False):
            inner[param] = value
        rest = args[len(params) :]
        if helper.args.vararg is not None:
            keys = [v for v in rest if isinstance(v, _Keys)]
            inner[helper.args.vararg.arg] = (
                _Keys(frozenset().union(*keys)) if keys and len(keys) == len(rest) else None
            )
        for key, value in keywords.items():
            if key:
                inner[key] = value
        nested = _Scanner(self.helpers, self.reads, self.depth + 1)
        nested.block(helper.body, inner)
        return _Paths(nested.returned) if nested.returned else None


def describe(problems: Iterable[str], limit: int = 40) -> str:
    """Problems as an indented block for an assertion message."""
    items = list(problems)
    shown = "\n  ".join(items[:limit])
    more = f"\n  ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"\n  {shown}{more}" if items else ""


__all__ = [
    "CONNECTOR_READS",
    "EXCEPTIONS",
    "MODEL_SOURCES",
    "Deviation",
    "all_reads",
    "describe",
    "field_exists",
    "legacy_keys",
    "item_shapes",
    "load",
    "model_reads",
    "unknown_reads",
    "violations",
]
