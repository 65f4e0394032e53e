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

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from deltek_procore.procore import ProcoreClient, ProcoreSettings
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
