"""The Procore client against the Procore simulator over real HTTP, with and without faults.

Both the simulator and the client run on one shared fake clock that only moves when
the client sleeps, so rate-limit waits, token lifetimes and back-off cost no real time.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
import requests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from deltek_procore.procore import ProcoreClient, ProcoreSettings, RequisitionItem
from deltek_procore.sandbox import seed
from deltek_procore.sandbox.faults import Faults, FaultSettings
from deltek_procore.sandbox.server import serve_in_thread

procore_sim = pytest.importorskip("deltek_procore.sandbox.procore_sim")

RECORDS = 600


class SharedClock:
    """Simulated time for both sides; thread-safe because uvicorn runs in a thread."""

    def __init__(self, start: float = 1_790_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.slept = 0.0

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds
            self.slept += seconds


def _settings(url: str, **overrides) -> ProcoreSettings:
    return ProcoreSettings(
        auth_url=f"{url}/oauth/token",
        api_url=url,
        client_id=seed.PROCORE_CLIENT_ID,
        client_secret=seed.PROCORE_CLIENT_SECRET,
        company_id=seed.PROCORE_COMPANY_ID,
        **overrides,
    )


@contextmanager
def _serve_sim(faults: Faults | None, clock, **limits) -> Iterator[tuple[object, str]]:
    sim = procore_sim.ProcoreSimulator(seed.build(records=RECORDS), faults, clock=clock, **limits)
    server = serve_in_thread(sim.app)
    try:
        yield sim, server.url
    finally:
        server.stop()
        sim.close()


@contextmanager
def _serve(faults: Faults | None, clock: SharedClock, **limits) -> Iterator[str]:
    with _serve_sim(faults, clock, **limits) as (_sim, url):
        yield url


def read_everything(client: ProcoreClient, project_ids: list[int]) -> dict[str, list]:
    """Every record of the five posting resources, in read order (duplicates kept)."""
    out: dict[str, list] = {
        k: [] for k in ("requisitions", "direct_costs", "commitments", "change_orders")
    }
    for pid in project_ids:
        out["requisitions"].extend(client.requisitions(pid))
        out["direct_costs"].extend(client.direct_costs(pid))
        for kind in ("work_order", "purchase_order"):
            out["commitments"].extend(client.commitments(pid, kind))
        out["change_orders"].extend(client.change_orders(pid))
    return out


def _by_id(records: list) -> dict[int, object]:
    return {r.id: r for r in records}


@pytest.fixture(scope="module")
def clean_read() -> tuple[dict[str, list], list[int], seed.SandboxData]:
    clock = SharedClock()
    with _serve(None, clock) as url:
        client = ProcoreClient(_settings(url, per_page=40), sleep=clock.sleep, clock=clock)
        project_ids = [p.id for p in client.projects()]
        result = read_everything(client, project_ids)
    return result, project_ids, seed.build(records=RECORDS)


def test_clean_read_matches_the_seed(clean_read):
    result, project_ids, data = clean_read
    assert sorted(project_ids) == sorted(p["id"] for p in data.procore["projects"])
    expected = {
        "requisitions": data.procore["requisitions"],
        "direct_costs": data.procore["direct_costs"],
        "commitments": data.procore["work_order_contracts"]
        + data.procore["purchase_order_contracts"],
        "change_orders": data.procore["commitment_change_orders"],
    }
    for name, rows in expected.items():
        ids = [r.id for r in result[name]]
        assert len(ids) == len(set(ids)), f"{name}: a record was read twice"
        assert sorted(ids) == sorted(r["id"] for r in rows), name
        lines_read = sum(
            len(r.items if name == "requisitions" else r.line_items) for r in result[name]
        )
        lines_seed = sum(len(r.get("items") or r.get("line_items") or []) for r in rows)
        assert lines_read == lines_seed, f"{name}: line items lost or duplicated"
    for cost in result["direct_costs"]:
        assert sum(x.amount for x in cost.line_items) == cost.grand_total
    commitment_kinds = Counter(c.kind for c in result["commitments"])
    assert commitment_kinds["work_order"] == len(data.procore["work_order_contracts"])


def test_faulty_read_equals_the_clean_read(clean_read):
    clean, project_ids, _data = clean_read
    clock = SharedClock()
    faults = Faults(
        FaultSettings(
            rate_429=0.04,
            burst_429=3,
            rate_5xx=0.1,
            token_expire_after_calls=7,
            rate_timeout=0.01,
            timeout_s=1.0,
            seed=11,
        )
    )
    with _serve(faults, clock, spike_limit=6, spike_window_s=10) as url:
        client = ProcoreClient(
            _settings(url, per_page=40, read_timeout=0.3, max_retries=8),
            sleep=clock.sleep,
            clock=clock,
        )
        faulty = read_everything(client, project_ids)
    for name, records in clean.items():
        ids = [r.id for r in faulty[name]]
        assert len(ids) == len(set(ids)), f"{name}: a record was read twice under faults"
        assert _by_id(faulty[name]) == _by_id(records), f"{name}: faulty read differs"
    stats = client.stats
    assert stats.throttled_429 > 0, "no 429 was injected: the test proves nothing"
    assert stats.reauths > 0 and stats.tokens > 1
    assert stats.retries > stats.throttled_429  # 5xx / timeouts were retried too
    assert stats.waits_s > 0 and clock.slept == pytest.approx(stats.waits_s)


def test_approved_requisitions_read_each_status_separately(clean_read):
    clean, project_ids, _data = clean_read
    clock = SharedClock()
    with _serve(None, clock) as url:
        client = ProcoreClient(_settings(url), sleep=clock.sleep, clock=clock)
        approved = [
            r
            for pid in project_ids
            for r in client.requisitions(pid, status=["approved", "approved_as_noted"])
        ]
    expected = {
        r.id for r in clean["requisitions"] if r.status in ("approved", "approved_as_noted")
    }
    assert {r.id for r in approved} == expected and len(approved) == len(expected)
    assert all(r.items for r in approved)


def test_webhook_configuration_and_deliveries_cursor():
    received: list[str | None] = []

    async def receiver(request: Request) -> Response:
        received.append(request.headers.get("authorization"))
        return Response(status_code=204)

    app = Starlette(routes=[Route("/events", receiver, methods=["POST"])])
    with serve_in_thread(app) as sink, _serve_sim(None, time.time) as (sim, url):
        client = ProcoreClient(_settings(url))
        hook = client.create_hook("keystone-sync", f"{sink.url}/events", "Bearer hook-token-xyz")
        trigger = client.create_trigger(hook["id"], "Direct Costs", "update")
        assert trigger["webhook_hook_id"] == hook["id"]
        listed = client.webhook_hooks()
        assert [h["id"] for h in listed] == [hook["id"]]
        assert "hook-token-xyz" not in str(listed)  # Procore echoes it masked
        assert [t["id"] for t in client.webhook_triggers(hook["id"])] == [trigger["id"]]
        cost_ids = [c["id"] for c in seed.build(records=RECORDS).procore["direct_costs"][:5]]
        for cost_id in cost_ids:
            sim.set_record("direct_costs", cost_id, {"description": "edited"})
        assert sim.flush_webhooks(10)
        deliveries = client.deliveries(hook["id"], "any", page_size=2)
    assert received and set(received) == {"Bearer hook-token-xyz"}
    ids = [d["event_id"] for d in deliveries]  # deliveries have no id of their own
    assert len(ids) == len(set(ids)) >= len(cost_ids)  # cursor neither repeats nor stops early
    assert client.stats.pages >= 3


# ---------------------------------------------------------------- the real shapes, end to end


class RecordingSession(requests.Session):
    """A real session that notes the path of every GET."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        if method.upper() == "GET":
            self.paths.append(urlsplit(url).path)
        return super().request(method, url, *args, **kwargs)


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    with _serve(None, time.time) as url:
        yield url


def _contract_kinds(data: seed.SandboxData) -> dict[int, str]:
    return {
        **{c["id"]: "work_order" for c in data.procore["work_order_contracts"]},
        **{c["id"]: "purchase_order" for c in data.procore["purchase_order_contracts"]},
    }


def test_change_order_lines_find_the_contract_line_they_change(clean_read):
    result, _ids, data = clean_read
    first_line = {
        c["id"]: c["line_items"][0]["id"]
        for key in ("work_order_contracts", "purchase_order_contracts")
        for c in data.procore[key]
        if c.get("line_items")
    }
    wbs_only = set(data.summary["wbs_only_change_orders"])
    non_first = 0
    resolved = 0
    for co in result["change_orders"]:
        for line in co.line_items:
            if line.commitment_line_item_id is None:
                assert line.contract_line is None and line.flat_code
                continue
            ref = line.contract_line
            assert ref is not None and ref.id == line.commitment_line_item_id, (co.id, line.id)
            assert ref.cost_code_id is not None and ref.line_item_type_id is not None
            resolved += 1
            non_first += ref.id != first_line.get(co.contract_id)
        if co.id in wbs_only:
            assert all(line.contract_line is None for line in co.line_items)
    assert resolved and non_first, "no CO line changes a contract line other than the first"


def test_contract_lines_cost_one_call_per_contract_and_the_co_list_one_per_project(sim_url):
    data = seed.build(records=RECORDS)
    kinds = _contract_kinds(data)
    session = RecordingSession()
    client = ProcoreClient(_settings(sim_url), session=session)
    project_ids = [p.id for p in client.projects()]
    staged = lambda cid: {"id": cid, "kind": kinds.get(cid), "line_items": []}  # noqa: E731
    cos = [co for pid in project_ids for co in client.change_orders(pid, staged_contract=staged)]
    assert cos
    lines_calls = Counter(
        p for p in session.paths if p.endswith("/line_items") and "_contracts/" in p
    )
    assert lines_calls and max(lines_calls.values()) == 1  # cached, on the contract's own path
    contracts = {
        co.contract_id for co in cos if any(x.commitment_line_item_id for x in co.line_items)
    }
    assert len(lines_calls) == len(contracts)
    list_calls = [p for p in session.paths if p.endswith("/commitment_change_orders")]
    assert len(list_calls) == len(project_ids)  # the list ignores paging: one call each
    assert client.stats.repeated_pages == 0


def test_stored_materials_chain_is_billed_once_and_pays_what_procore_says(sim_url):
    data = seed.build(records=RECORDS)
    chain = data.summary["stored_materials_chain"]
    project = next(
        c["project_id"]
        for key in ("work_order_contracts", "purchase_order_contracts")
        for c in data.procore[key]
        if c["id"] == chain["commitment_id"]
    )
    client = ProcoreClient(_settings(sim_url))
    by_id = {r.id: r for r in client.requisitions(project, ids=chain["requisition_ids"])}
    reqs = [by_id[rid] for rid in chain["requisition_ids"]]
    assert [r.status for r in reqs] == ["approved"] * 3
    items = [
        next(i for i in r.items if i.id == iid)
        for r, iid in zip(reqs, chain["item_ids"], strict=True)
    ]
    stored = [i.materials_presently_stored for i in items]
    assert (
        stored[0] > 0 and stored[1] == stored[0] and stored[2] < stored[1]
    )  # stored, carried, installed
    # over the chain, the line bills its total to date once: no month re-bills the stored balance
    billed = sum(i.gross_billed() for i in items)
    assert billed == items[-1].total_completed_and_stored_to_date - (
        items[0].total_completed_and_stored_to_date_from_previous
    )
    assert items[1].gross_billed() == items[1].work_completed_this_period
    for req in reqs:
        gross = sum(i.gross_billed() for i in req.items)
        held = sum(i.retainage_held() for i in req.items)
        assert gross - held == req.current_payment_due, req.id


def test_v10_items_filled_from_the_previous_application_agree_with_v11(sim_url):
    data = seed.build(records=RECORDS)
    chain = data.summary["stored_materials_chain"]
    project = next(
        r["project_id"]
        for r in data.procore["requisitions"]
        if r["id"] == chain["requisition_ids"][0]
    )
    client = ProcoreClient(_settings(sim_url))
    v11 = {r.id: r for r in client.requisitions(project, ids=chain["requisition_ids"])}
    for rid in chain["requisition_ids"]:
        raw = next(r for r in data.procore["requisitions"] if r["id"] == rid)
        v10_items = client._requisition_items_v10(project, rid)
        assert all("total_completed_and_stored_to_date_from_previous" not in i for i in v10_items)
        header = {k: v for k, v in raw.items() if k != "items"}
        filled = client._with_previous_figures(project, {**header, "items": v10_items})
        got = {i["line_item_id"]: RequisitionItem.model_validate(i) for i in filled}
        for item in v11[rid].items:
            assert got[item.line_item_id].gross_billed() == item.gross_billed(), (rid, item.id)
            assert got[item.line_item_id].retainage_held() == item.retainage_held(), (rid, item.id)
