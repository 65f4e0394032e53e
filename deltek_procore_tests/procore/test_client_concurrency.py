"""Detail reads in parallel against the Procore simulator over real HTTP: the same records in
the same order with the same calls as one at a time, overlapping for real, within the spike
limit, one token, and a failing detail read still belongs to its record alone.

A small ASGI gate in front of the simulator counts what the server saw: every request by path
and query, the statuses it answered, the most requests in flight at once; it can also answer
chosen paths itself (a 404 for a gone contract, one 500).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from starlette.responses import JSONResponse

from deltek_procore.procore import ProcoreClient
from deltek_procore.sandbox import seed
from deltek_procore.sandbox.faults import Faults, FaultSettings
from deltek_procore.sandbox.server import serve_in_thread
from deltek_procore_tests.procore.test_client_sandbox import (
    RECORDS,
    SharedClock,
    _settings,
    read_everything,
)

procore_sim = pytest.importorskip("deltek_procore.sandbox.procore_sim")

UNLIMITED = {"spike_limit": 1_000_000, "hourly_limit": 1_000_000}


class Gate:
    """ASGI middleware: what the server saw, and canned answers for chosen paths."""

    def __init__(self, app, answers: dict[str, list[int]] | None = None) -> None:
        self.app = app
        self.answers = {path: list(codes) for path, codes in (answers or {}).items()}
        self.hits: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.in_flight = 0
        self.most = 0
        self._lock = threading.Lock()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        with self._lock:
            self.hits[f"{path}?{scope['query_string'].decode()}"] += 1
            codes = self.answers.get(path)
            canned = (codes.pop(0) if len(codes) > 1 else codes[0]) if codes else None
            if canned == 0:  # 0 = forward from here on
                canned = None
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)

        async def noted(message) -> None:
            if message["type"] == "http.response.start":
                with self._lock:
                    self.statuses[message["status"]] += 1
            await send(message)

        try:
            if canned is not None:
                await JSONResponse({"errors": "canned"}, canned)(scope, receive, noted)
            else:
                await self.app(scope, receive, noted)
        finally:
            with self._lock:
                self.in_flight -= 1


@contextmanager
def gated(
    clock=time.time, latency_ms: float = 0.0, answers=None, **limits
) -> Iterator[tuple[Gate, str, object]]:
    faults = Faults(FaultSettings(latency_ms=latency_ms)) if latency_ms else None
    sim = procore_sim.ProcoreSimulator(seed.build(records=RECORDS), faults, clock=clock, **limits)
    gate = Gate(sim.app, answers)
    server = serve_in_thread(gate)
    try:
        yield gate, server.url, sim
    finally:
        server.stop()
        sim.close()


def _read(url: str, concurrency: int, clock=None) -> tuple[ProcoreClient, dict[str, list]]:
    kwargs = {} if clock is None else {"sleep": clock.sleep, "clock": clock}
    client = ProcoreClient(_settings(url, per_page=40, detail_concurrency=concurrency), **kwargs)
    project_ids = [p.id for p in client.projects()]
    return client, read_everything(client, project_ids)


@pytest.fixture(scope="module")
def one_at_a_time() -> tuple[Counter, dict[str, list]]:
    """The reference: every record read with one detail read at a time, and its calls."""
    with gated(**UNLIMITED) as (gate, url, _sim):
        client, records = _read(url, 1)
    assert gate.most == 1 and client.stats.tokens == 1
    return gate.hits, records


def _same_records(records: dict[str, list], reference: dict[str, list]) -> None:
    for name, expected in reference.items():
        assert [r.id for r in records[name]] == [r.id for r in expected], f"{name}: order"
        assert records[name] == expected, f"{name}: content"


def test_four_at_a_time_read_the_same_records_in_order_with_the_same_calls(one_at_a_time):
    hits, reference = one_at_a_time
    with gated(latency_ms=20, **UNLIMITED) as (gate, url, _sim):
        client, records = _read(url, 4)
    _same_records(records, reference)
    assert gate.hits == hits  # every endpoint, every query: not one call more or less
    assert gate.most > 1, "detail reads never overlapped"
    assert gate.most <= 4 + 1  # the workers plus the listing thread
    assert client.stats.tokens == 1 and gate.hits["/oauth/token?"] == 1
    assert client.stats.calls == sum(hits.values())


def test_overlapping_reads_stay_inside_the_spike_limit(one_at_a_time):
    _hits, reference = one_at_a_time
    clock = SharedClock()
    with gated(clock, latency_ms=5, spike_limit=8, spike_window_s=10) as (gate, url, _sim):
        client, records = _read(url, 4, clock)
    _same_records(records, reference)
    assert gate.most > 1, "detail reads never overlapped"
    assert client.stats.waits_s > 0, "the spike limit was never reached: the test proves nothing"
    assert gate.statuses[429] == 0 and client.stats.throttled_429 == 0


def test_tokens_renewed_once_per_expiry_not_once_per_thread(one_at_a_time):
    _hits, reference = one_at_a_time
    faults = Faults(FaultSettings(token_expire_after_calls=25))
    sim = procore_sim.ProcoreSimulator(seed.build(records=RECORDS), faults, **UNLIMITED)
    server = serve_in_thread(sim.app)
    try:
        client, records = _read(server.url, 4)
    finally:
        server.stop()
        sim.close()
    _same_records(records, reference)
    stats = client.stats
    assert stats.reauths > 0, "no token ran out: the test proves nothing"
    # each token serves 25 calls; a renewal per thread that saw the 401 would need ~4x
    assert stats.tokens <= stats.calls // 25 + 2


def _a_postable_contract_with_lines() -> tuple[int, str]:
    data = seed.build(records=RECORDS)
    contract = next(
        c
        for c in data.procore["work_order_contracts"]
        if c.get("line_items") and c["status"] == "Approved"
    )
    return contract["id"], f"/rest/v1.0/work_order_contracts/{contract['id']}/line_items"


def _gone(records: dict[str, list]) -> dict[tuple[str, int], str]:
    return {
        (name, r.id): r.model_extra["detail_gone"]
        for name, rs in records.items()
        for r in rs
        if "detail_gone" in (r.model_extra or {})
    }


def test_a_404_on_one_detail_read_quarantines_only_the_records_that_need_it(one_at_a_time):
    """The contract's lines are gone: the contract, and the invoices and change orders that
    take their cost codes from those lines, are marked gone; exactly as one at a time."""
    _hits, reference = one_at_a_time
    contract_id, path = _a_postable_contract_with_lines()
    gone: list[dict] = []
    for concurrency in (1, 4):
        with gated(answers={path: [404]}, **UNLIMITED) as (_gate, url, _sim):
            client, records = _read(url, concurrency)
        gone.append(_gone(records))
        assert client.stats.gone == len(gone[-1])
        assert gone[-1][("commitments", contract_id)] == f"gone from Procore (404 on GET {path})"
        kept = {n: [r for r in rs if (n, r.id) not in gone[-1]] for n, rs in records.items()}
        _same_records(
            kept, {n: [r for r in rs if (n, r.id) not in gone[-1]] for n, rs in reference.items()}
        )
    assert gone[0] == gone[1]
    assert len(gone[1]) < sum(len(rs) for rs in reference.values()) / 10  # only those


def test_a_500_on_one_detail_read_retries_only_that_call(one_at_a_time):
    hits, reference = one_at_a_time
    data = seed.build(records=RECORDS)
    order = next(c for c in data.procore["commitment_change_orders"] if c["status"] == "approved")
    path = (
        f"/rest/v2.0/companies/{seed.PROCORE_COMPANY_ID}/projects/{order['project_id']}"
        f"/commitment_change_orders/{order['id']}/line_items"
    )
    with gated(answers={path: [500, 0]}, **UNLIMITED) as (gate, url, _sim):
        client, records = _read(url, 4)
    _same_records(records, reference)
    retried = [key for key in gate.hits if key.startswith(path + "?")]
    assert len(retried) == 1 and gate.hits[retried[0]] == hits[retried[0]] + 1
    assert gate.hits - Counter({retried[0]: 1}) == hits  # nothing else was read again
    assert client.stats.retries == 1 and gate.statuses[500] == 1
