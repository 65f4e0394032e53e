"""Ingest against the Procore simulator: change orders find their contract lines."""

from __future__ import annotations

from collections import Counter
from urllib.parse import urlsplit

import pytest
import requests

from deltek_procore.pipeline.completeness import read_counts
from deltek_procore.pipeline.ingest import ingest_projects, parse
from deltek_procore.procore import ProcoreClient, ProcoreSettings
from deltek_procore.sandbox import seed
from deltek_procore.sandbox.procore_sim import ProcoreSimulator
from deltek_procore.sandbox.server import serve_in_thread
from deltek_procore.state.store import StateStore


class RecordingSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        self.paths.append(urlsplit(url).path)
        return super().request(method, url, *args, **kwargs)


@pytest.fixture(scope="module")
def sim():
    simulator = ProcoreSimulator(seed.build(records=200))
    server = serve_in_thread(simulator.app)
    yield server.url, simulator
    server.stop()
    simulator.close()


def client_for(url: str, concurrency: int = 4) -> tuple[ProcoreClient, RecordingSession]:
    session = RecordingSession()
    settings = ProcoreSettings(
        auth_url=f"{url}/oauth/token",
        api_url=url,
        client_id=seed.PROCORE_CLIENT_ID,
        client_secret=seed.PROCORE_CLIENT_SECRET,
        company_id=seed.PROCORE_COMPANY_ID,
        detail_concurrency=concurrency,
    )
    return ProcoreClient(settings, session=session), session


def contract_line_reads(session: RecordingSession) -> Counter:
    return Counter(p for p in session.paths if "_contracts/" in p and p.endswith("/line_items"))


def test_change_orders_use_staged_contract_lines_and_read_only_the_missing(sim, tmp_path):
    url, _simulator = sim
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    client, _ = client_for(url)
    projects = [p.id for p in client.projects()]
    for kind in ("work_order", "purchase_order"):
        ingest_projects(client, store, kind, projects, full=True)
    with_lines = {
        r.record_id
        for kind in ("work_order", "purchase_order")
        for r in store.staged(kind)
        if r.payload.get("line_items")
    }

    fresh, session = client_for(url)  # a new run: nothing cached in the client
    ingest_projects(fresh, store, "change_order", projects, full=True)
    orders = [parse("change_order", r.payload) for r in store.staged("change_order")]
    needing = {
        co.contract_id
        for co in orders
        if any(line.commitment_line_item_id is not None for line in co.line_items)
    }
    assert needing, "the seed must hold change orders on contract lines"
    reads = contract_line_reads(session)
    assert needing & with_lines and needing - with_lines  # both paths exercised
    # contracts staged with their lines cost nothing; any other costs one read
    assert {int(p.split("/")[4]) for p in reads} == needing - with_lines
    assert all(count == 1 for count in reads.values())
    for co in orders:
        for line in co.line_items:
            if line.commitment_line_item_id is not None:
                assert line.contract_line is not None, (co.id, line.id)
                assert line.contract_line.id == line.commitment_line_item_id


@pytest.mark.parametrize(
    ("fault", "complete"),
    [(None, True), ("lying_total", True), ("short_pages", False)],
)
def test_each_listing_is_counted_against_procores_total(sim, tmp_path, fault, complete):
    """A truncated page taken for the last one reads fewer rows than Procore counted: the
    check fails naming the listing and the cursor stays, so the next run reads them again.
    A Total lower than the truth is also a difference, but nothing was lost."""
    url, simulator = sim
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    client, _ = client_for(url)
    projects = [p.id for p in client.projects()]
    if fault:
        setattr(simulator.faults.settings, fault, True)
    try:
        result = ingest_projects(client, store, "direct_cost", projects, full=True)
    finally:
        if fault:
            setattr(simulator.faults.settings, fault, False)
    outcome = read_counts(result)
    reference = StateStore(f"sqlite:///{tmp_path / 'reference.db'}")
    truth = ingest_projects(client_for(url)[0], reference, "direct_cost", projects, full=True)
    truth = truth.fetched
    assert result.counted >= len(projects)  # the cost list and its line listing per project
    if fault is None:
        assert outcome.passed and result.fetched == truth
        assert "listing(s) read exactly Procore's Total" in outcome.detail
    else:
        assert not outcome.passed and "/direct_costs" in outcome.detail
        assert "Procore's Total" in outcome.detail
    assert (result.fetched == truth) is complete
    assert (store.get_cursor("procore:direct_cost") is not None) is complete
    assert result.short_read is (not complete)


POSTABLE = ("requisition", "direct_cost", "work_order", "purchase_order", "change_order")


def test_parallel_detail_reads_stage_the_same_records_with_the_same_calls(tmp_path):
    """One detail read at a time and four at once: the same staged payloads, the same calls
    per path, on the full read and on the poll after it (which reads lines only for records
    that changed, and takes change order lines from contracts staged meanwhile). A simulator
    of its own without the spike limit: the calls are compared, not paced."""
    simulator = ProcoreSimulator(seed.build(records=200), hourly_limit=10**6, spike_limit=10**6)
    server = serve_in_thread(simulator.app)
    try:
        staged, calls = _read_twice(server.url, tmp_path)
    finally:
        server.stop()
        simulator.close()
    assert staged[0] == staged[1] and len(staged[0]) > 100
    assert calls[0] == calls[1]
    assert sum(n for p, n in calls[1].items() if p.endswith("/line_items")) > 10


def _read_twice(url: str, tmp_path) -> tuple[list[dict], list[Counter]]:
    """Full read then poll, with concurrency 1 and 4: staged records and calls of each."""
    staged: list[dict] = []
    calls: list[Counter] = []
    for concurrency in (1, 4):
        store = StateStore(f"sqlite:///{tmp_path / f'state{concurrency}.db'}")
        client, session = client_for(url, concurrency)
        projects = [p.id for p in client.projects()]
        for kind in POSTABLE:
            ingest_projects(client, store, kind, projects, full=True)
        poll, poll_session = client_for(url, concurrency)
        for kind in POSTABLE:
            ingest_projects(poll, store, kind, projects)
        staged.append(
            {
                (kind, r.record_id): (r.content_hash, r.payload)
                for kind in POSTABLE
                for r in store.staged(kind)
            }
        )
        calls.append(Counter(session.paths) + Counter("poll " + p for p in poll_session.paths))
        assert client.stats.tokens == 1 and poll.stats.tokens == 1
    return staged, calls
