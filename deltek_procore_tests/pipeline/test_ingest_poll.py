"""A poll reads line items again only for records whose stamp moved (pipeline/ingest.py).

Against the Procore simulator: a contract or change order that a poll brings back with
the same updated_at and status keeps the lines staged with it (no call, same content
hash); one that changed is read again; a read by ids (a webhook) always reads lines.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
import requests

from deltek_procore.pipeline.ingest import (
    LINES_WANTED,
    NIGHTLY_OVERLAP,
    ingest_projects,
    parse,
    reconcile_window,
)
from deltek_procore.procore import ProcoreClient, ProcoreSettings
from deltek_procore.procore.errors import DETAIL_GONE
from deltek_procore.sandbox import seed
from deltek_procore.sandbox.procore_sim import ProcoreSimulator
from deltek_procore.sandbox.server import serve_in_thread
from deltek_procore.state.store import StateStore

KINDS = ("work_order", "purchase_order", "change_order")
EVERYTHING = (datetime(2000, 1, 1, tzinfo=timezone.utc), datetime.now(timezone.utc) + timedelta(1))


class RecordingSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        self.paths.append(urlsplit(url).path)
        return super().request(method, url, *args, **kwargs)


@pytest.fixture
def sim():
    simulator = ProcoreSimulator(
        seed.build(records=200, seed=11), hourly_limit=1_000_000, spike_limit=1_000_000
    )
    server = serve_in_thread(simulator.app)
    yield server.url, simulator
    server.stop()
    simulator.close()


def client_for(url: str) -> tuple[ProcoreClient, RecordingSession]:
    session = RecordingSession()
    settings = ProcoreSettings(
        auth_url=f"{url}/oauth/token",
        api_url=url,
        client_id=seed.PROCORE_CLIENT_ID,
        client_secret=seed.PROCORE_CLIENT_SECRET,
        company_id=seed.PROCORE_COMPANY_ID,
    )
    return ProcoreClient(settings, session=session), session


def line_reads(session: RecordingSession) -> Counter:
    return Counter(p for p in session.paths if p.endswith("/line_items"))


def hashes(store: StateStore) -> dict[tuple[str, int], str]:
    return {(k, r.record_id): r.content_hash for k in KINDS for r in store.staged(k)}


def poll(url: str, store: StateStore, projects: list[int], **kwargs) -> Counter:
    client, session = client_for(url)  # a new run: nothing cached in the client
    for kind in KINDS:
        ingest_projects(client, store, kind, projects, **kwargs)
    return line_reads(session)


def test_a_poll_reads_lines_only_where_the_stamp_moved(sim, tmp_path) -> None:
    url, simulator = sim
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    projects = [p["id"] for p in simulator.data.procore["projects"]]
    first = poll(url, store, projects)
    assert sum(first.values()) > 0
    staged = hashes(store)
    orders = [parse("change_order", r.payload) for r in store.staged("change_order")]
    linked = {(co.id, ln.id) for co in orders for ln in co.line_items if ln.contract_line}
    assert linked, "the seed must hold change orders on contract lines"

    # everything comes back unchanged: no line read, nothing restaged, links kept
    assert poll(url, store, projects, window=EVERYTHING) == Counter()
    assert hashes(store) == staged
    orders = [parse("change_order", r.payload) for r in store.staged("change_order")]
    assert {(co.id, ln.id) for co in orders for ln in co.line_items if ln.contract_line} == linked

    # one contract edited in Procore: its lines, and only its, are read again
    contract = next(
        r
        for r in simulator.data.procore["work_order_contracts"]
        if r["status"] in LINES_WANTED["work_order"] and r.get("line_items")
    )
    simulator.set_record("work_order_contracts", contract["id"], {"title": "renamed"})
    again = poll(url, store, projects, window=EVERYTHING)
    assert again == Counter({f"/rest/v1.0/work_order_contracts/{contract['id']}/line_items": 1})
    (row,) = store.staged("work_order", ids=[contract["id"]])
    assert row.payload["title"] == "renamed" and row.payload["line_items"]

    # a read by ids (a webhook: maybe for one line item) reads the lines whatever the stamp
    client, session = client_for(url)
    ingest_projects(client, store, "work_order", projects, ids=[contract["id"]])
    assert sum(line_reads(session).values()) == 1


def test_a_record_whose_lines_were_gone_is_read_again_by_the_next_poll(sim, tmp_path) -> None:
    url, simulator = sim
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    projects = [p["id"] for p in simulator.data.procore["projects"]]
    contract = next(
        r
        for r in simulator.data.procore["purchase_order_contracts"]
        if r["status"] in LINES_WANTED["purchase_order"] and r.get("line_items")
    )
    simulator.faults.configure(missing_details=str(contract["id"]))
    poll(url, store, projects)
    (gone,) = store.staged("purchase_order", ids=[contract["id"]])
    assert DETAIL_GONE in gone.payload and not gone.payload["line_items"]
    # its change orders take their cost codes from its lines: gone with them
    orders = {r.record_id for r in store.staged("change_order") if DETAIL_GONE in r.payload}

    simulator.faults.configure(missing_details="")  # answered again; no stamp moved
    again = poll(url, store, projects, window=EVERYTHING)
    path = f"/rest/v1.0/purchase_order_contracts/{contract['id']}/line_items"
    assert again.pop(path) == 1
    assert {int(p.split("/")[-2]) for p in again} == orders
    (row,) = store.staged("purchase_order", ids=[contract["id"]])
    assert DETAIL_GONE not in row.payload and row.payload["line_items"]
    assert not [r for r in store.staged("change_order") if DETAIL_GONE in r.payload]


def test_the_nightly_window_starts_a_day_before_the_cursor_or_two_periods_back() -> None:
    now = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)
    cursor = datetime(2026, 11, 30, 2, 0, tzinfo=timezone.utc)
    start, end = reconcile_window(now, since=cursor.isoformat())
    assert start == cursor - NIGHTLY_OVERLAP and end > now
    old = datetime(2026, 6, 1, tzinfo=timezone.utc)  # a long pause: from the cursor, not less
    assert reconcile_window(now, since=old.isoformat())[0] == old - NIGHTLY_OVERLAP
    assert reconcile_window(now)[0] == datetime(2026, 9, 30, 2, 0, tzinfo=timezone.utc)
