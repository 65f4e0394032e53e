"""Contract tests: the Procore simulator serves Procore's real shapes, and the connector
reads only fields Procore's real models have (docs/api/procore-fields.json)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import requests
from pydantic import model_validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from deltek_procore.procore.models import ProcoreModel
from deltek_procore.sandbox import contract, seed
from deltek_procore.sandbox.procore_sim import ProcoreSimulator
from deltek_procore.sandbox.server import serve_in_thread

COMPANY = seed.PROCORE_COMPANY_ID
Bodies = dict[str, list[Any]]


def _receiver() -> Starlette:
    async def hook(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/events", hook, methods=["POST"])])


class Api:
    def __init__(self, url: str) -> None:
        token = requests.post(
            f"{url}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": seed.PROCORE_CLIENT_ID,
                "client_secret": seed.PROCORE_CLIENT_SECRET,
            },
            timeout=10,
        ).json()["access_token"]
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}", "Procore-Company-Id": str(COMPANY)}

    def get(self, path: str, **params: Any) -> Any:
        response = requests.get(
            f"{self.url}{path}", params=params, headers=self.headers, timeout=30
        )
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        return response.json()

    def post(self, path: str, body: dict) -> Any:
        response = requests.post(f"{self.url}{path}", json=body, headers=self.headers, timeout=10)
        assert response.status_code == 201, (path, response.status_code, response.text[:300])
        return response.json()


def _samples(rows: list[dict], *wanted: int) -> list[dict]:
    """A few records: the first, the last, and the deliberate ones by id."""
    picked = {r["id"]: r for r in rows[:2] + rows[-1:] if rows}
    picked.update({r["id"]: r for r in rows if r["id"] in wanted})
    return list(picked.values())


def _collect(api: Api, data: seed.SandboxData, sim: ProcoreSimulator, sink: str) -> Bodies:
    """One or more served bodies per operation in procore-fields.json, with the query views
    the connector uses (requisitions: view=items)."""
    c = contract
    p = data.procore
    out: Bodies = {key: [] for key in c.load()}
    out[c.COMPANIES].append(api.get("/rest/v1.0/companies"))
    out[c.PROJECTS].append(api.get("/rest/v1.0/projects", company_id=COMPANY, per_page=1000))
    out[c.VENDORS].append(api.get("/rest/v1.0/vendors", company_id=COMPANY, per_page=1000))
    out[c.LINE_ITEM_TYPES].append(api.get("/rest/v1.0/line_item_types", company_id=COMPANY))
    chain = data.summary["stored_materials_chain"] or {}
    special_orders = (
        data.summary["wbs_only_change_orders"] + data.summary["unresolvable_change_orders"]
    )
    for project in p["projects"]:
        pid = project["id"]
        out[c.COST_CODES].append(api.get("/rest/v1.0/cost_codes", project_id=pid, per_page=1000))
        out[c.REQUISITIONS].append(
            api.get("/rest/v1.1/requisitions", project_id=pid, view="items", per_page=1000)
        )
        out[c.REQUISITIONS].append(api.get("/rest/v1.1/requisitions", project_id=pid))
        out[c.DIRECT_COSTS].append(
            api.get(f"/rest/v1.1/projects/{pid}/direct_costs", per_page=1000)
        )
        out[c.DIRECT_COST_LINES].append(
            api.get(f"/rest/v1.0/projects/{pid}/direct_costs/line_items", per_page=1000)
        )
        for kind, list_op in (("work_order", c.WORK_ORDERS), ("purchase_order", c.PURCHASE_ORDERS)):
            out[list_op].append(
                api.get(f"/rest/v1.0/{kind}_contracts", project_id=pid, per_page=1000)
            )
        out[c.CHANGE_ORDERS].append(api.get(f"/rest/v1.0/projects/{pid}/commitment_change_orders"))
    requisitions = [r for r in p["requisitions"]]
    for req in _samples(requisitions, *chain.get("requisition_ids", [])):
        for op, suffix in (
            (c.REQUISITION_ITEMS, "contract_items"),
            (c.REQUISITION_DETAIL, "detail"),
        ):
            out[op].append(
                api.get(
                    f"/rest/v1.0/requisitions/{req['id']}/{suffix}", project_id=req["project_id"]
                )
            )
    payroll = [d["id"] for d in p["direct_costs"] if d["direct_cost_type"] == "payroll"][:1]
    for cost in _samples(p["direct_costs"], *payroll):
        out[c.DIRECT_COST].append(
            api.get(f"/rest/v1.1/projects/{cost['project_id']}/direct_costs/{cost['id']}")
        )
    for kind, show_op, lines_op in (
        ("work_order", c.WORK_ORDER, c.WORK_ORDER_LINES),
        ("purchase_order", c.PURCHASE_ORDER, c.PURCHASE_ORDER_LINES),
    ):
        for record in _samples(p[f"{kind}_contracts"]):
            base = f"/rest/v1.0/{kind}_contracts/{record['id']}"
            out[show_op].append(api.get(base, project_id=record["project_id"]))
            out[lines_op].append(api.get(f"{base}/line_items", project_id=record["project_id"]))
    for order in _samples(p["commitment_change_orders"], *special_orders):
        pid = order["project_id"]
        out[c.CHANGE_ORDER].append(
            api.get(f"/rest/v1.0/projects/{pid}/commitment_change_orders/{order['id']}")
        )
        out[c.CHANGE_ORDER_LINES].append(
            api.get(
                f"/rest/v2.0/companies/{COMPANY}/projects/{pid}"
                f"/commitment_change_orders/{order['id']}/line_items",
                per_page=100,
            )
        )
    hook = api.post(
        "/rest/v1.0/webhooks/hooks",
        {
            "company_id": COMPANY,
            "hook": {
                "api_version": "v2",
                "namespace": "contract-test",
                "destination_url": sink,
                "destination_headers": {"Authorization": "Bearer contract-test-secret"},
            },
        },
    )
    api.post(
        f"/rest/v1.0/webhooks/hooks/{hook['id']}/triggers",
        {
            "company_id": COMPANY,
            "trigger": {"resource_name": "Direct Costs", "event_type": "update"},
        },
    )
    cost = p["direct_costs"][0]
    sim.set_record("direct_costs", cost["id"], {"description": "edited for the contract test"})
    assert sim.flush_webhooks(10)
    out[c.HOOKS].append(api.get("/rest/v1.0/webhooks/hooks", company_id=COMPANY))
    out[c.TRIGGERS].append(
        api.get(f"/rest/v1.0/webhooks/hooks/{hook['id']}/triggers", company_id=COMPANY)
    )
    out[c.DELIVERIES].append(
        api.get(f"/rest/v1.0/webhooks/hooks/{hook['id']}/deliveries", company_id=COMPANY)
    )
    return out


@pytest.fixture(scope="module")
def data() -> seed.SandboxData:
    return seed.build(400, seed=7)


@pytest.fixture(scope="module")
def bodies(data: seed.SandboxData) -> Iterator[Bodies]:
    world = copy.deepcopy(data)  # the webhook step edits a record
    sim = ProcoreSimulator(
        world, spike_limit=100_000, hourly_limit=1_000_000, webhook_retry_backoff_s=0.01
    )
    with serve_in_thread(sim.app) as server, serve_in_thread(_receiver()) as sink:
        yield _collect(Api(server.url), world, sim, f"{sink.url}/events")
    sim.close()


def test_every_operation_in_the_fields_file_is_requested(bodies: Bodies) -> None:
    missing = [key for key, served in bodies.items() if not served]
    assert not missing, f"operations never requested: {missing}"
    empty = [key for key, served in bodies.items() if not any(_rows(key, b) for b in served)]
    assert not empty, f"operations that only returned empty bodies: {empty}"


def _rows(key: str, body: Any) -> list:
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        return body["data"]
    return body if isinstance(body, list) else [body]


@pytest.mark.parametrize("operation", sorted(contract.load()))
def test_served_bodies_fit_the_real_model(bodies: Bodies, operation: str) -> None:
    found: list[str] = []
    for body in bodies[operation]:
        found += contract.violations(operation, body)
    found = list(dict.fromkeys(found))
    assert not found, f"{operation} serves what Procore's model lacks:{contract.describe(found)}"


def test_connector_reads_only_real_fields() -> None:
    unknown = contract.unknown_reads()
    assert not unknown, (
        f"the connector reads fields Procore does not send:{contract.describe(unknown)}"
    )


def test_legacy_fallback_keys_are_never_served(bodies: Bodies) -> None:
    """A model may read a legacy key as a fallback (LEGACY_KEYS), but the simulator must
    not serve it, or the sandbox would exercise the fallback instead of the real path."""
    served: list[str] = []
    for model, keys in contract.legacy_keys().items():
        for operation, prefix in contract.MODEL_SOURCES.get(model, ()):
            for body in bodies[operation]:
                for item in _items_at(_rows(operation, body), prefix):
                    served += [f"{model}: {operation} {prefix} {k}" for k in keys if _has(item, k)]
    assert not served, sorted(set(served))


def _has(item: dict, dotted: str) -> bool:
    head, _, rest = dotted.partition(".")
    if head not in item:
        return False
    value = item[head]
    if not rest:
        return True
    values = value if isinstance(value, list) else [value]
    return any(isinstance(v, dict) and _has(v, rest) for v in values)


def _items_at(rows: list, prefix: str) -> list[dict]:
    items = [r for r in rows if isinstance(r, dict)]
    for part in contract._parts(prefix):
        items = [x for r in items for x in (r.get(part) or []) if isinstance(x, dict)]
    return items


def test_every_exception_is_sourced_and_still_needed(bodies: Bodies) -> None:
    assert len(contract.EXCEPTIONS) <= 5, "EXCEPTIONS should stay tiny"
    operations = contract.load()
    saved = contract.EXCEPTIONS
    try:
        for deviation in saved:
            assert deviation.operation in operations, deviation
            assert deviation.source and (
                "docs/api/" in deviation.source or "client" in deviation.source
            )
            contract.EXCEPTIONS = tuple(d for d in saved if d is not deviation)
            found = [
                v
                for body in bodies[deviation.operation]
                for v in contract.violations(deviation.operation, body)
            ]
            assert found, f"no served body needs {deviation}: drop it"
    finally:
        contract.EXCEPTIONS = saved


# --- the validator itself -------------------------------------------------------------------


def test_an_invented_field_is_named(bodies: Bodies) -> None:
    vendors = copy.deepcopy(bodies[contract.VENDORS][0])
    vendors[0]["tax_id"] = "12-3456789"
    assert contract.violations(contract.VENDORS, vendors) == ["tax_id: served but not in the model"]
    lines = copy.deepcopy(next(b for b in bodies[contract.CHANGE_ORDER_LINES] if b["data"]))
    lines["data"][0]["cost_code_id"] = "80598001"
    assert contract.violations(contract.CHANGE_ORDER_LINES, lines) == [
        "data[].cost_code_id: served but not in the model"
    ]
    requisitions = copy.deepcopy(
        next(b for b in bodies[contract.REQUISITIONS] if b and b[0].get("items"))
    )
    requisitions[0]["items"][0]["materials_stored_retainage_retained_this_period"] = "1.00"
    assert contract.violations(contract.REQUISITIONS, requisitions) == [
        "items[].materials_stored_retainage_retained_this_period: served but not in the model"
    ]


def test_wrong_types_nulls_enums_and_dates_are_caught(bodies: Bodies) -> None:
    lines = copy.deepcopy(next(b for b in bodies[contract.CHANGE_ORDER_LINES] if b["data"]))
    line = lines["data"][0]
    line.update(quantity="1.0", id=int(line["id"]), uom=None, extended_type="typed")
    found = contract.violations(contract.CHANGE_ORDER_LINES, lines)
    assert any(v.startswith("data[].quantity: expected number, got string") for v in found)
    assert any(v.startswith("data[].id: expected string, got integer") for v in found)
    assert any(v.startswith("data[].uom: null") for v in found)
    assert any(v.startswith("data[].extended_type: 'typed' is not one of") for v in found)
    costs = copy.deepcopy(next(b for b in bodies[contract.DIRECT_COSTS] if b))
    costs[0]["direct_cost_date"] = "2026-13-01"
    costs[0]["created_at"] = "yesterday"
    found = contract.violations(contract.DIRECT_COSTS, costs)
    assert "direct_cost_date: expected a date (YYYY-MM-DD), got '2026-13-01'" in found
    assert "created_at: expected an ISO 8601 date-time, got 'yesterday'" in found
    assert contract.violations(contract.DIRECT_COSTS, {"id": 1}) == [
        "<body>: expected a JSON array, got object"
    ]


def test_variants_and_one_of() -> None:
    base = {"id": 1, "contract_id": 2, "status": "approved", "grand_total": "1.00"}
    extended = {**base, "change_events": [{"id": 3, "number": "001"}]}
    assert contract.violations(contract.CHANGE_ORDER, base) == []
    assert contract.violations(contract.CHANGE_ORDER, extended) == []
    odd = {**base, "line_items": []}
    assert contract.violations(contract.CHANGE_ORDER, odd) == [
        "line_items: served but not in the model (closest variant: Default4 (view=default))"
    ]
    compact = {"id": 9, "line_items": [{"id": 1, "cost_code": {"id": 5, "name": "Concrete"}}]}
    full = {"id": 9, "line_items": [{"id": 1, "cost_code": {"id": 5, "full_code": "03-300"}}]}
    neither = {"id": 9, "line_items": [{"id": 1, "cost_code": {"id": 5, "flat": "x"}}]}
    assert contract.violations(contract.DIRECT_COST, compact) == []
    assert contract.violations(contract.DIRECT_COST, full) == []
    assert contract.violations(contract.DIRECT_COST, neither) == [
        "line_items[].cost_code.flat: served but not in the model (fits none of 2 oneOf options)"
    ]


def test_field_exists_and_model_reads() -> None:
    assert contract.field_exists(contract.REQUISITIONS, "items[].materials_moved")
    assert contract.field_exists(contract.REQUISITIONS, "materials_moved", prefix="items[]")
    assert not contract.field_exists(contract.REQUISITIONS, "items[].cost_code.id")
    assert contract.field_exists(contract.CHANGE_ORDER_LINES, "data[].wbs_code.flat_code")
    assert not contract.field_exists(contract.VENDORS, "tax_id")
    assert contract.field_exists(contract.DIRECT_COST, "line_items[].cost_code.full_code")
    models = contract.connector_models()
    assert {"id", "business_id", "name"} <= contract.model_reads(models["Vendor"])


def _pick(raw: dict, *keys: str) -> Any:
    for key in keys:
        if raw.get(key) is not None:
            return raw[key]
    return None


class _Probe(ProcoreModel):
    """A model whose reads are known, to test the source reading itself."""

    DERIVED: ClassVar[frozenset[str]] = frozenset({"made"})
    LEGACY_KEYS: ClassVar[frozenset[str]] = frozenset({"owner", "holder.kind"})

    id: int
    made: int | None = None
    kept: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        data = dict(data)
        holder = _pick(data, "holder", "owner")
        if isinstance(holder, dict):
            data["made"] = holder.get("id") or holder.get("kind")
        for key in ("x", "y"):
            if key in data:
                data.pop(key)
        if data.get("kept") is None:
            data["kept"] = data["summary"]["text"]
        return data


def test_model_reads_follow_helpers_loops_and_nesting() -> None:
    reads = contract.model_reads(_Probe)
    assert reads == {
        "id",
        "kept",
        "made",  # read as a declared field too: only an unconditional overwrite is no read
        "holder",
        "owner",
        "holder.id",
        "owner.id",
        "holder.kind",
        "owner.kind",
        "x",
        "y",
        "summary",
        "summary.text",
    }
    models = {"_Probe": _Probe}
    left = contract.all_reads(_Probe, models)
    assert "made" not in left and "owner" not in left and "owner.id" not in left
    assert "holder.kind" not in left and {"holder", "holder.id", "summary.text"} <= left
