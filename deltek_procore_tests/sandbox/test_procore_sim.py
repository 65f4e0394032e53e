"""Contract tests of the Procore simulator over real HTTP (uvicorn in a thread + requests)."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator

import pytest
import requests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from deltek_procore.sandbox import seed
from deltek_procore.sandbox.faults import Faults
from deltek_procore.sandbox.procore_sim import ProcoreSimulator
from deltek_procore.sandbox.server import RunningServer, serve_in_thread

COMPANY = str(seed.PROCORE_COMPANY_ID)
CREDS = {
    "grant_type": "client_credentials",
    "client_id": seed.PROCORE_CLIENT_ID,
    "client_secret": seed.PROCORE_CLIENT_SECRET,
}
RATE_HEADERS = ("X-Rate-Limit-Limit", "X-Rate-Limit-Remaining", "X-Rate-Limit-Reset")


class FakeClock:
    def __init__(self, now: float = 1_790_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def data() -> seed.SandboxData:
    return seed.build(1500, seed=11)


@pytest.fixture(scope="module")
def served(data: seed.SandboxData) -> Iterator[tuple[ProcoreSimulator, RunningServer]]:
    """Read-only tests share one simulator with a roomy spike limit."""
    sim = ProcoreSimulator(data, spike_limit=100_000, hourly_limit=1_000_000)
    with serve_in_thread(sim.app) as server:
        yield sim, server
    sim.close()


def _token(url: str) -> str:
    response = requests.post(f"{url}/oauth/token", data=CREDS, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Procore-Company-Id": COMPANY}


@pytest.fixture(scope="module")
def api(served: tuple[ProcoreSimulator, RunningServer]) -> tuple[str, dict[str, str]]:
    url = served[1].url
    return url, _headers(_token(url))


def _project(data: seed.SandboxData, index: int = 0) -> int:
    return data.procore["projects"][index]["id"]


# --- auth -------------------------------------------------------------------------------


def test_token_accepts_form_multipart_json_and_basic(served) -> None:
    url = served[1].url
    multipart = {k: (None, v) for k, v in CREDS.items()}
    basic = base64.b64encode(
        f"{seed.PROCORE_CLIENT_ID}:{seed.PROCORE_CLIENT_SECRET}".encode()
    ).decode()
    answers = [
        requests.post(f"{url}/oauth/token", data=CREDS, timeout=10),
        requests.post(f"{url}/oauth/token", files=multipart, timeout=10),
        requests.post(f"{url}/oauth/token", json=CREDS, timeout=10),
        requests.post(
            f"{url}/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}"},
            timeout=10,
        ),
    ]
    tokens = set()
    for response in answers:
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token_type"] == "bearer" and body["expires_in"] == 5400
        assert isinstance(body["created_at"], int) and "refresh_token" not in body
        tokens.add(body["access_token"])
    assert len(tokens) == 4


def test_unknown_client_is_invalid_client(served) -> None:
    response = requests.post(
        f"{served[1].url}/oauth/token", data={**CREDS, "client_secret": "wrong"}, timeout=10
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.json()["error_description"].startswith(
        "Client authentication failed due to unknown client"
    )
    assert "wrong" not in response.text


def test_token_expires_by_ttl_and_by_call_count_then_reauth_works(data) -> None:
    clock = FakeClock()
    faults = Faults()
    sim = ProcoreSimulator(data, faults, token_ttl=100, clock=clock, spike_limit=1000)
    with serve_in_thread(sim.app) as server:
        token = _token(server.url)
        me = f"{server.url}/rest/v1.0/me"
        assert requests.get(me, headers=_headers(token), timeout=10).status_code == 200
        info = requests.get(
            f"{server.url}/oauth/token/info", headers=_headers(token), timeout=10
        ).json()
        assert info["expires_in_seconds"] == 100
        assert info["application"]["uid"] == seed.PROCORE_CLIENT_ID
        clock.now += 101
        expired = requests.get(me, headers=_headers(token), timeout=10)
        assert expired.status_code == 401
        assert expired.json() == {"errors": "The access token is invalid"}
        assert all(h in expired.headers for h in RATE_HEADERS)
        fresh = _token(server.url)
        assert requests.get(me, headers=_headers(fresh), timeout=10).status_code == 200
        faults.configure(token_expire_after_calls=2)
        limited = _token(server.url)
        codes = [
            requests.get(me, headers=_headers(limited), timeout=10).status_code for _ in range(3)
        ]
        assert codes == [200, 200, 401]
    sim.close()


def test_company_header_rules(api, data) -> None:
    url, headers = api
    bare = {"Authorization": headers["Authorization"]}
    assert (
        requests.get(f"{url}/rest/v1.0/companies", headers=bare, timeout=10).json()[0]["id"]
        == seed.PROCORE_COMPANY_ID
    )
    assert requests.get(f"{url}/rest/v1.0/me", headers=bare, timeout=10).status_code == 200
    missing = requests.get(
        f"{url}/rest/v1.0/projects", params={"company_id": COMPANY}, headers=bare, timeout=10
    )
    assert missing.status_code in (400, 403)
    assert missing.json()["errors"].startswith("Missing Procore-Company-Id header!")
    wrong = requests.get(
        f"{url}/rest/v1.0/projects",
        params={"company_id": 1},
        headers={**bare, "Procore-Company-Id": "1"},
        timeout=10,
    )
    assert wrong.status_code == 403
    no_param = requests.get(f"{url}/rest/v1.0/projects", headers=headers, timeout=10)
    assert no_param.status_code == 400


# --- lists, paging, filters ---------------------------------------------------------------


def _links(header: str) -> dict[str, str]:
    return {rel: link for link, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', header)}


def test_paging_walks_every_page_with_total_per_page_and_link(api, data) -> None:
    url, headers = api
    project = _project(data)
    expected = sorted(d["id"] for d in data.procore["direct_costs"] if d["project_id"] == project)
    first = requests.get(
        f"{url}/rest/v1.1/projects/{project}/direct_costs",
        params={"per_page": 7},
        headers=headers,
        timeout=10,
    )
    assert first.headers["Total"] == str(len(expected))
    assert first.headers["Per-Page"] == "7"
    links = _links(first.headers["Link"])
    assert set(links) == {"next", "last"}
    last_page = -(-len(expected) // 7)
    assert f"page={last_page}" in links["last"]
    seen = [d["id"] for d in first.json()]
    pages = 1
    response = first
    while "next" in _links(response.headers["Link"]):
        response = requests.get(
            _links(response.headers["Link"])["next"], headers=headers, timeout=10
        )
        seen += [d["id"] for d in response.json()]
        pages += 1
    assert seen == expected and pages == last_page
    assert set(_links(response.headers["Link"])) == {"first", "prev", "last"}
    default = requests.get(
        f"{url}/rest/v1.1/projects/{project}/direct_costs",
        headers=headers,
        params={"per_page": 999_999},
        timeout=10,
    )
    assert default.headers["Per-Page"] == "10000"


def test_updated_at_range_and_single_date_rejected(api, data) -> None:
    url, headers = api
    project = _project(data, 1)
    rows = [r for r in data.procore["requisitions"] if r["project_id"] == project]
    expected = sorted(r["id"] for r in rows if "2025-06-01" <= r["updated_at"][:10] <= "2025-08-31")
    params = {
        "project_id": project,
        "filters[updated_at]": "2025-06-01...2025-08-31",
        "per_page": 1000,
    }
    got = requests.get(f"{url}/rest/v1.1/requisitions", params=params, headers=headers, timeout=10)
    assert got.status_code == 200
    assert sorted(r["id"] for r in got.json()) == expected and expected
    iso = requests.get(
        f"{url}/rest/v1.1/requisitions",
        headers=headers,
        timeout=10,
        params={
            **params,
            "filters[updated_at]": "2025-06-01T00:00:00Z...2025-08-31T23:59:59+00:00",
        },
    )
    assert sorted(r["id"] for r in iso.json()) == expected
    single = requests.get(
        f"{url}/rest/v1.1/requisitions",
        headers=headers,
        timeout=10,
        params={**params, "filters[updated_at]": "2025-06-01"},
    )
    assert single.status_code == 400
    assert "must be a range" in single.json()["errors"]


def test_id_array_filter_and_status_filter(api, data) -> None:
    url, headers = api
    project = _project(data)
    rows = [r for r in data.procore["requisitions"] if r["project_id"] == project]
    wanted = [rows[0]["id"], rows[3]["id"], rows[-1]["id"]]
    got = requests.get(
        f"{url}/rest/v1.1/requisitions",
        headers=headers,
        timeout=10,
        params=[("project_id", project)] + [("filters[id][]", i) for i in wanted],
    )
    assert [r["id"] for r in got.json()] == sorted(wanted)
    approved = requests.get(
        f"{url}/rest/v1.1/requisitions",
        headers=headers,
        timeout=10,
        params={"project_id": project, "filters[status]": "approved", "per_page": 10000},
    ).json()
    assert approved and {r["status"] for r in approved} == {"approved"}
    assert len(approved) == sum(1 for r in rows if r["status"] == "approved")


def test_requisition_versions_and_views(api, data) -> None:
    url, headers = api
    project = _project(data)
    params = {"project_id": project, "per_page": 5}
    v10 = requests.get(
        f"{url}/rest/v1.0/requisitions", params=params, headers=headers, timeout=10
    ).json()[0]
    assert "items" not in v10 and "vendor_id" not in v10 and "summary" in v10
    plain = requests.get(
        f"{url}/rest/v1.1/requisitions", params=params, headers=headers, timeout=10
    ).json()[0]
    assert "items" not in plain and "vendor_id" in plain
    full = requests.get(
        f"{url}/rest/v1.1/requisitions",
        params={**params, "view": "extended"},
        headers=headers,
        timeout=10,
    ).json()[0]
    assert full["items"] and "line_item_type_id" not in full["items"][0]
    items = requests.get(
        f"{url}/rest/v1.0/requisitions/{full['id']}/contract_items",
        params={"project_id": project},
        headers=headers,
        timeout=10,
    ).json()
    assert [i["id"] for i in items] == [i["id"] for i in full["items"]]
    other = _project(data, 2)
    hidden = requests.get(
        f"{url}/rest/v1.1/requisitions/{full['id']}",
        params={"project_id": other},
        headers=headers,
        timeout=10,
    )
    assert hidden.status_code == 404 and "errors" in hidden.json()


def _money(text: str) -> int:
    return round(float(text) * 100)


def test_requisition_item_views_agree(api, data) -> None:
    """v1.1 items, v1.0 contract_items and /detail rows: each its own model, same figures."""
    url, headers = api
    chain = data.summary["stored_materials_chain"]
    by_id = {r["id"]: r for r in data.procore["requisitions"]}
    for rid in chain["requisition_ids"]:
        project = by_id[rid]["project_id"]
        full = requests.get(
            f"{url}/rest/v1.1/requisitions",
            params={"project_id": project, "view": "items", "filters[id]": rid},
            headers=headers,
            timeout=10,
        ).json()[0]
        v10 = requests.get(
            f"{url}/rest/v1.0/requisitions/{rid}/contract_items",
            params={"project_id": project},
            headers=headers,
            timeout=10,
        ).json()
        detail = requests.get(
            f"{url}/rest/v1.0/requisitions/{rid}/detail",
            params={"project_id": project},
            headers=headers,
            timeout=10,
        )
        assert detail.status_code == 200 and "Total" not in detail.headers
        rows = detail.json()
        assert [i["id"] for i in v10] == [i["id"] for i in full["items"]] == [r["id"] for r in rows]
        for item, old, row in zip(full["items"], v10, rows, strict=True):
            for absent in (
                "materials_presently_stored_from_previous_progress",
                "total_completed_and_stored_to_date_from_previous",
                "materials_stored_retainage_new_materials",
            ):
                assert absent not in old and absent not in row
            assert "materials_stored_retainage_retained_this_period" not in item
            assert "materials_stored_retainage_retained_this_period" not in old
            assert "line_item_id" not in row and row["item_number"] == item["position"]
            for key in (
                "work_completed_this_period",
                "materials_presently_stored",
                "materials_moved",
            ):
                assert item[key] == old[key] == row[key]
            new = (
                _money(item["materials_presently_stored"])
                - _money(item["materials_presently_stored_from_previous_progress"])
                + _money(item["materials_moved"])
            )
            assert _money(row["materials_stored_retainage_retained_this_period"]) * 10 == new
            assert _money(row["materials_stored_retainage_from_previous_application"]) * 10 == (
                _money(item["materials_presently_stored_from_previous_progress"])
            )
            work_now = _money(row["work_completed_retainage_currently_retained"])
            assert work_now == (
                _money(item["work_completed_retainage_from_previous_application"])
                + _money(item["work_completed_retainage_retained_this_period"])
                + _money(item["materials_retainage_retained_moved"])
            )
            assert _money(row["total_retainage_currently_retained"]) == work_now + _money(
                item["materials_stored_retainage_currently_retained"]
            )
            assert _money(row["balance_to_finish"]) == _money(item["scheduled_value"]) - _money(
                item["total_completed_and_stored_to_date"]
            )


def test_direct_cost_list_and_show_shapes(api, data) -> None:
    url, headers = api
    project = _project(data)
    listed = requests.get(
        f"{url}/rest/v1.1/projects/{project}/direct_costs",
        params={"per_page": 50},
        headers=headers,
        timeout=10,
    ).json()
    sample = next(d for d in listed if d.get("vendor_id"))
    assert isinstance(sample["vendor"], str) and sample["vendor"] == sample["vendor_name"]
    assert sample["amount"] == sample["grand_total"] and "line_items" not in sample
    assert not any("project" in d or "project_id" in d for d in listed)
    shown = requests.get(
        f"{url}/rest/v1.0/projects/{project}/direct_costs/{sample['id']}",
        headers=headers,
        timeout=10,
    ).json()
    assert shown["vendor"] == {"id": sample["vendor_id"], "name": sample["vendor_name"]}
    assert shown["line_items"] and sample["id"] > 2**32
    assert shown["project"] == {"id": project, "name": data.procore["projects"][0]["name"]}
    for line in shown["line_items"]:  # nested references only, no flat ids
        assert {"cost_code", "line_item_type", "wbs_code"} <= set(line)
        assert not {"cost_code_id", "line_item_type_id", "direct_cost_id", "holder"} & set(line)
    ids = [listed[0]["id"], listed[1]["id"]]
    lines = requests.get(
        f"{url}/rest/v1.0/projects/{project}/direct_costs/line_items",
        params=[("filters[direct_cost_id][]", i) for i in ids],
        headers=headers,
        timeout=10,
    ).json()
    assert {li["holder"]["id"] for li in lines} == set(ids)
    assert {li["holder"]["holder_type"] for li in lines} == {"DirectCost"}
    assert not any("direct_cost_id" in li or "cost_code_id" in li for li in lines)
    for cost in listed[:2]:
        total = sum(
            round(float(li["amount"]) * 100) for li in lines if li["holder"]["id"] == cost["id"]
        )
        assert total == round(float(cost["grand_total"]) * 100)
    one = requests.get(
        f"{url}/rest/v1.0/projects/{project}/direct_costs/line_items",
        params={"filters[direct_cost_id]": ids[0]},
        headers=headers,
        timeout=10,
    ).json()
    assert {li["holder"]["id"] for li in one} == {ids[0]}


def test_commitments_title_case_and_vendor_company(api, data) -> None:
    url, headers = api
    project = _project(data)
    base = f"{url}/rest/v1.0/work_order_contracts"
    approved = requests.get(
        base,
        params={"project_id": project, "filters[status]": "Approved"},
        headers=headers,
        timeout=10,
    ).json()
    assert approved and {c["status"] for c in approved} == {"Approved"}
    assert set(approved[0]["vendor"]) == {"id", "company"} and "line_items" not in approved[0]
    lower = requests.get(
        base,
        params={"project_id": project, "filters[status]": "approved"},
        headers=headers,
        timeout=10,
    ).json()
    assert lower == []
    lines = requests.get(
        f"{base}/{approved[0]['id']}/line_items",
        params={"project_id": project},
        headers=headers,
        timeout=10,
    ).json()
    assert lines and lines[0]["holder"]["holder_type"] == "WorkOrderContract"
    for line in lines:
        assert {"cost_code", "line_item_type"} <= set(line)
        assert not {"cost_code_id", "line_item_type_id", "project_id"} & set(line)
    unified = requests.get(
        f"{url}/rest/v1.0/commitments",
        params={"project_id": project, "per_page": 10000},
        headers=headers,
        timeout=10,
    ).json()
    assert {c["type"] for c in unified} == {"WorkOrderContract", "PurchaseOrderContract"}
    statuses = {c["status"] for c in unified}
    assert statuses & {"Out For Bid", "Partially Received", "Approved"}


def test_change_orders_and_v2_line_items(api, data) -> None:
    url, headers = api
    lines_of = {
        line["id"]: (contract["id"], position)
        for key in ("work_order_contracts", "purchase_order_contracts")
        for contract in data.procore[key]
        for position, line in enumerate(contract["line_items"], 1)
    }
    order = next(
        o
        for o in data.procore["commitment_change_orders"]
        if any(lines_of.get(li["commitment_line_item_id"], (0, 1))[1] > 1 for li in o["line_items"])
    )
    project = order["project_id"]
    listed = requests.get(
        f"{url}/rest/v1.0/projects/{project}/commitment_change_orders",
        params={"filters[contract_id]": order["contract_id"]},
        headers=headers,
        timeout=10,
    ).json()
    assert order["id"] in {o["id"] for o in listed}
    assert not any("line_items" in o or "project_id" in o for o in listed)
    lines = requests.get(
        f"{url}/rest/v2.0/companies/{COMPANY}/projects/{project}/commitment_change_orders/"
        f"{order['id']}/line_items",
        headers=headers,
        timeout=10,
    )
    body = lines.json()
    assert lines.status_code == 200 and set(body) == {"data"}
    served = body["data"]
    assert [li["id"] for li in served] == [str(li["id"]) for li in order["line_items"]]
    for line in served:  # no cost code, no cost type: the contract line it changes has them
        assert not {"cost_code", "cost_code_id", "line_item_type", "line_item_type_id"} & set(line)
        assert "contract_line_item_id" not in line and line["prime_line_item_id"] is None
        assert isinstance(line["commitment_line_item_id"], str)
        assert isinstance(line["quantity"], float) and isinstance(line["position"], int)
        assert (
            line["wbs_code"]["id"] == line["wbs_code_id"] and "." in line["wbs_code"]["flat_code"]
        )
        contract_id, _position = lines_of[int(line["commitment_line_item_id"])]
        assert contract_id == order["contract_id"]
    assert any(lines_of[int(li["commitment_line_item_id"])][1] > 1 for li in served)


def test_change_order_list_ignores_paging_and_sends_no_paging_headers(api, data) -> None:
    url, headers = api
    project = _project(data)
    expected = sorted(
        o["id"] for o in data.procore["commitment_change_orders"] if o["project_id"] == project
    )
    assert len(expected) > 3
    base = f"{url}/rest/v1.0/projects/{project}/commitment_change_orders"
    for params in ({}, {"per_page": 2}, {"page": 2, "per_page": 2}, {"page": 99}):
        response = requests.get(base, params=params, headers=headers, timeout=10)
        assert response.status_code == 200
        assert [o["id"] for o in response.json()] == expected, params
        assert not {"Total", "Per-Page", "Link"} & set(response.headers), params
    approved = requests.get(
        base, params={"filters[status]": "approved"}, headers=headers, timeout=10
    ).json()
    assert approved and {o["status"] for o in approved} == {"approved"}


def test_v2_change_order_lines_page_at_ten_by_default(api, data) -> None:
    url, headers = api
    order = max(data.procore["commitment_change_orders"], key=lambda o: len(o["line_items"]))
    count = len(order["line_items"])
    assert count >= 2
    path = (
        f"{url}/rest/v2.0/companies/{COMPANY}/projects/{order['project_id']}"
        f"/commitment_change_orders/{order['id']}/line_items"
    )
    first = requests.get(path, headers=headers, timeout=10)
    assert first.headers["Per-Page"] == "10" and first.headers["Total"] == str(count)
    assert 'rel="last"' in first.headers["Link"]
    capped = requests.get(path, params={"per_page": 500}, headers=headers, timeout=10)
    assert capped.headers["Per-Page"] == "100"
    small = requests.get(path, params={"per_page": 1, "page": 2}, headers=headers, timeout=10)
    assert [li["id"] for li in small.json()["data"]] == [str(order["line_items"][1]["id"])]
    assert 'rel="prev"' in small.headers["Link"]


def test_rate_limit_headers_everywhere_and_429_on_spike(data) -> None:
    clock = FakeClock()
    sim = ProcoreSimulator(data, spike_limit=3, spike_window_s=10, clock=clock)
    with serve_in_thread(sim.app) as server:
        headers = _headers(_token(server.url))
        me = f"{server.url}/rest/v1.0/me"
        answers = [requests.get(me, headers=headers, timeout=10) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert [a.headers["X-Rate-Limit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
        limited = answers[-1]
        assert limited.text.startswith("You have surpassed the max number of requests")
        assert limited.headers["X-Rate-Limit-Limit"] == "3"
        assert int(limited.headers["X-Rate-Limit-Reset"]) == int(clock.now) + 10
        assert 1 <= int(limited.headers["Retry-After"]) <= 10
        clock.now += 11
        assert requests.get(me, headers=headers, timeout=10).status_code == 200
        requests.post(f"{server.url}/__admin/reset-rate-limits", timeout=10)
        for _ in range(3):
            bad = requests.get(f"{server.url}/rest/v1.0/projects", headers=headers, timeout=10)
            assert bad.status_code == 400 and all(h in bad.headers for h in RATE_HEADERS)
    sim.close()


def test_faults_5xx_and_stall(data) -> None:
    faults = Faults()
    sim = ProcoreSimulator(data, faults, spike_limit=1000)
    with serve_in_thread(sim.app) as server:
        headers = _headers(_token(server.url))
        faults.configure(rate_5xx=1.0)
        broken = requests.get(f"{server.url}/rest/v1.0/me", headers=headers, timeout=10)
        assert broken.status_code in (500, 502, 503)
        answer = requests.post(
            f"{server.url}/__admin/faults",
            json={"rate_5xx": 0, "rate_timeout": 1.0, "timeout_s": 0.3},
            timeout=10,
        )
        assert answer.status_code == 200
        started = time.monotonic()
        slow = requests.get(f"{server.url}/rest/v1.0/me", headers=headers, timeout=10)
        assert slow.status_code == 200 and time.monotonic() - started >= 0.3
        unknown = requests.post(f"{server.url}/__admin/faults", json={"bogus": 1}, timeout=10)
        assert unknown.status_code == 400 and "bogus" in unknown.json()["errors"]
    sim.close()


# --- set_record and webhooks -------------------------------------------------------------


class Receiver:
    """A tiny webhook endpoint that records what it gets and answers `status`."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.events: list[tuple[dict, dict]] = []

        async def hook(request: Request) -> JSONResponse:
            self.events.append((dict(request.headers), await request.json()))
            return JSONResponse({"ok": True}, self.status)

        self.app = Starlette(routes=[Route("/events", hook, methods=["POST"])])


@pytest.fixture()
def world(data) -> Iterator[tuple[ProcoreSimulator, str, dict[str, str], Receiver, str]]:
    fresh = seed.build(300, seed=5)
    faults = Faults()
    sim = ProcoreSimulator(
        fresh, faults, spike_limit=1000, webhook_retry_backoff_s=0.01, webhook_max_attempts=3
    )
    receiver = Receiver()
    with serve_in_thread(sim.app) as server, serve_in_thread(receiver.app) as sink:
        yield sim, server.url, _headers(_token(server.url)), receiver, f"{sink.url}/events"
    sim.close()


def _hook(url: str, headers: dict[str, str], destination: str, resource: str) -> int:
    created = requests.post(
        f"{url}/rest/v1.0/webhooks/hooks",
        headers=headers,
        timeout=10,
        json={
            "company_id": seed.PROCORE_COMPANY_ID,
            "hook": {
                "api_version": "v2",
                "namespace": "sandbox-sync",
                "destination_url": destination,
                "destination_headers": {"Authorization": "Bearer hook-s3cret"},
            },
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["destination_headers"]["Authorization"] == "…3cret"
    assert "hook-s3cret" not in created.text
    trigger = requests.post(
        f"{url}/rest/v1.0/webhooks/hooks/{created.json()['id']}/triggers",
        headers=headers,
        timeout=10,
        json={
            "company_id": seed.PROCORE_COMPANY_ID,
            "api_version": "v2",
            "trigger": {"resource_name": resource, "event_type": "update"},
        },
    )
    assert trigger.status_code == 201, trigger.text
    return created.json()["id"]


def test_set_record_fires_webhook_with_configured_authorization(world) -> None:
    sim, url, headers, receiver, destination = world
    _hook(url, headers, destination, "Direct Costs")
    cost = sim.data.procore["direct_costs"][0]
    before = cost["updated_at"]
    changed = sim.set_record("direct_costs", cost["id"], {"grand_total": "1200.00"})
    assert changed["updated_at"] > before
    assert sum(round(float(li["amount"]) * 100) for li in changed["line_items"]) == 120000
    assert sim.flush_webhooks(10)
    assert len(receiver.events) == 1
    sent_headers, event = receiver.events[0]
    assert sent_headers["authorization"] == "Bearer hook-s3cret"
    assert event["resource_name"] == "Direct Costs" and event["resource_id"] == cost["id"]
    assert event["event_type"] == "update" and event["project_id"] == cost["project_id"]
    assert event["company_id"] == seed.PROCORE_COMPANY_ID and len(event["ulid"]) == 26
    assert set(event["metadata"]) >= {"source_user_id", "source_application_id"}
    shown = requests.get(
        f"{url}/rest/v1.0/projects/{cost['project_id']}/direct_costs/{cost['id']}",
        headers=headers,
        timeout=10,
    ).json()
    assert shown["grand_total"] == "1200.00"
    updated = requests.get(
        f"{url}/rest/v1.0/projects/{cost['project_id']}/direct_costs",
        headers=headers,
        params={"filters[updated_at]": f"{changed['updated_at']}...{changed['updated_at']}"},
        timeout=10,
    ).json()
    assert [d["id"] for d in updated] == [cost["id"]]
    lines = requests.get(
        f"{url}/rest/v1.0/projects/{cost['project_id']}/direct_costs/line_items",
        headers=headers,
        timeout=10,
        params={"filters[updated_at]": f"{changed['updated_at']}...{changed['updated_at']}"},
    ).json()
    assert [li["id"] for li in lines] == [changed["line_items"][-1]["id"]]
    assert lines[0]["amount"] == changed["line_items"][-1]["amount"]
    # requisitions have no webhook resource: an edit is silent
    sim.set_record(
        "requisitions", sim.data.procore["requisitions"][0]["id"], {"status": "approved"}
    )
    assert sim.flush_webhooks(5) and len(receiver.events) == 1


def test_duplicate_and_dropped_deliveries(world) -> None:
    sim, url, headers, receiver, destination = world
    hook_id = _hook(url, headers, destination, "Work Order Contracts")
    contract = sim.data.procore["work_order_contracts"][0]
    sim.faults.configure(webhook_duplicate=1.0)
    answer = requests.post(
        f"{url}/__admin/records/work_order_contracts/{contract['id']}",
        json={"status": "Void"},
        timeout=10,
    )
    assert answer.status_code == 200 and answer.json()["status"] == "Void"
    assert sim.flush_webhooks(10)
    assert len(receiver.events) == 2
    assert receiver.events[0][1]["id"] == receiver.events[1][1]["id"]
    sim.faults.configure(webhook_duplicate=0.0, webhook_drop=1.0)
    sim.set_record("work_order_contracts", contract["id"], {"status": "Approved"})
    assert sim.flush_webhooks(10)
    assert len(receiver.events) == 2
    base = f"{url}/rest/v1.0/webhooks/hooks/{hook_id}/deliveries"
    dropped = requests.get(
        base,
        params={"company_id": COMPANY, "filters[status]": "discarded"},
        headers=headers,
        timeout=10,
    ).json()
    assert len(dropped) == 1 and dropped[0]["event"]["resource_id"] == contract["id"]
    ok = requests.get(
        base,
        params={"company_id": COMPANY, "filter[status]": "successful"},
        headers=headers,
        timeout=10,
    ).json()
    assert [d["outcome"] for d in ok] == ["ok", "ok"]
    # deliveries carry no id, only event_id (the page_start cursor); a page never splits the
    # rows of one event, so both copies of the duplicated event come on the first page
    first = {"filters[status]": "successful", "page_size": 1}
    paged = requests.get(base, params=first, headers=headers, timeout=10).json()
    assert [d["event_id"] for d in paged] == [ok[0]["event_id"]] * 2 and "id" not in paged[0]
    after = {**first, "page_start": ok[0]["event_id"]}
    assert requests.get(base, params=after, headers=headers, timeout=10).json() == []


def test_failing_endpoint_is_retried_then_discarded(world) -> None:
    sim, url, headers, receiver, destination = world
    hook_id = _hook(url, headers, destination, "Company Vendors")
    receiver.status = 500
    vendor = sim.data.procore["vendors"][0]
    sim.set_record("vendors", vendor["id"], {"name": "Renamed Vendor"})
    assert sim.flush_webhooks(10)
    outcomes = [d["outcome"] for d in sim.webhook_deliveries if d["hook_id"] == hook_id]
    assert outcomes == ["failed", "failed", "discarded"]
    assert len(receiver.events) == 3 and receiver.events[0][1]["project_id"] is None
    receiver.status = 200
    sim.set_record("vendors", vendor["id"], {"is_active": False})
    assert sim.flush_webhooks(10)
    failing = requests.get(
        f"{url}/rest/v1.0/webhooks/hooks/{hook_id}/deliveries",
        params={"filters[status]": "failing"},
        headers=headers,
        timeout=10,
    ).json()
    assert [d["response_status"] for d in failing] == [500, 500]
    state = requests.get(f"{url}/__admin/state", timeout=10).json()
    assert state["hooks"][0]["destination_headers"]["Authorization"] != "Bearer hook-s3cret"
    assert state["changes"][-1]["resource"] == "vendors"


def test_admin_record_unknown_is_404_and_trigger_names_are_checked(world) -> None:
    sim, url, headers, _receiver, destination = world
    assert (
        requests.post(
            f"{url}/__admin/records/direct_costs/1", json={"status": "approved"}, timeout=10
        ).status_code
        == 404
    )
    hook_id = _hook(url, headers, destination, "Projects")
    bad = requests.post(
        f"{url}/rest/v1.0/webhooks/hooks/{hook_id}/triggers",
        headers=headers,
        timeout=10,
        json={"trigger": {"resource_name": "Requisitions", "event_type": "update"}},
    )
    assert bad.status_code == 422
    resources = requests.get(
        f"{url}/rest/v1.0/webhooks/resources",
        params={"company_id": COMPANY},
        headers=headers,
        timeout=10,
    ).json()
    names = {r["resource_name"] for r in resources}
    assert "Direct Costs" in names and "Requisitions" not in names
    assert not any("Commitment Change Order" in n for n in names)
