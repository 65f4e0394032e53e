"""Unit tests of the Procore client: `responses` for shapes and paging (no network), a
scripted loopback server for retries (they live in urllib3, below what a mock sees);
time is a fake clock that only moves when the client sleeps."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
import requests
import responses

from deltek_procore.procore import ProcoreAuthError, ProcoreClient, ProcoreError, ProcoreSettings
from deltek_procore.procore.client import query_plans
from deltek_procore.procore.errors import parse_error_body
from deltek_procore.procore.pacing import RateLimitPacer
from deltek_procore_tests.http.scripted import Drop, Reply, ScriptedServer, Stall, scripted_server

AUTH = "https://login.example.test/oauth/token"
API = "https://api.example.test"
SECRET = "s3cr3t-value-never-shown"
COMPANY = 4264800


class FakeClock:
    """Time that only moves when the client sleeps (or the test says so)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_client(clock: FakeClock, **overrides) -> ProcoreClient:
    settings = ProcoreSettings(
        auth_url=AUTH,
        api_url=API,
        client_id="cid",
        client_secret=SECRET,
        company_id=COMPANY,
        **overrides,
    )
    return ProcoreClient(settings, sleep=clock.sleep, clock=clock)


def query(request) -> dict[str, list[str]]:
    return parse_qs(urlsplit(request.url).query)


class FakeProcore:
    """Token endpoint plus list endpoints that page, filter and record every call."""

    def __init__(self, rsps: responses.RequestsMock, *, expires_in: int | None = 5400) -> None:
        self.rsps = rsps
        self.issued: list[str] = []
        self.token_forms: list[dict] = []
        self.expires_in = expires_in
        self.calls: dict[str, list[dict[str, list[str]]]] = {}
        self.headers_seen: list[dict] = []
        rsps.add_callback("POST", AUTH, callback=self._token)

    def _token(self, request):
        self.token_forms.append(dict(parse_qsl(request.body)))
        token = f"tok-{len(self.issued) + 1}"
        self.issued.append(token)
        body = {"access_token": token, "token_type": "bearer"}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return 200, {}, json.dumps(body)

    def listing(
        self,
        path: str,
        records: list[dict],
        *,
        style: str = "link",
        wrap: Callable[[list[dict]], object] = lambda page: page,
        ignore_per_page: bool = False,
        extra_headers: dict | None = None,
    ) -> None:
        """Serve `records` at path (regex-escaped) with one pagination style."""

        def callback(request):
            self.headers_seen.append(dict(request.headers))
            q = query(request)
            self.calls.setdefault(path, []).append(q)
            rows = records
            if "filters[id][]" in q or "filters[id]" in q:
                raw_ids = q.get("filters[id][]", []) + q.get("filters[id]", [])
                wanted = {int(x) for v in raw_ids for x in v.split(",")}
                rows = [r for r in rows if int(r["id"]) in wanted]
            if "filters[status]" in q:
                rows = [r for r in rows if r.get("status") == q["filters[status]"][0]]
            page = int(q.get("page", ["1"])[0])
            per = int(q.get("per_page", ["100"])[0])
            chunk = rows if ignore_per_page else rows[(page - 1) * per : page * per]
            headers = dict(extra_headers or {})
            last = max(1, -(-len(rows) // per))
            if style == "link":
                links = [f'<{API}{path}?page=1&per_page={per}>; rel="first"']
                if page < last:
                    links.append(f'<{API}{path}?page={page + 1}&per_page={per}>; rel="next"')
                headers["Link"] = ", ".join(links)
            elif style == "total":
                headers.update({"Total": str(len(rows)), "Per-Page": str(per)})
            elif style == "lying_total":  # a Total lower than the truth, and no Link
                headers.update({"Total": str(len(rows) // 2), "Per-Page": str(per)})
            return 200, headers, json.dumps(wrap(chunk))

        self.rsps.add_callback("GET", re.compile(re.escape(API + path) + r"(\?.*)?$"), callback)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def fake(rsps) -> FakeProcore:
    return FakeProcore(rsps)


# ---------------------------------------------------------------- token and headers


def test_token_form_body_and_company_header_on_every_call(fake, clock):
    fake.listing("/rest/v1.0/companies", [{"id": COMPANY, "name": "GC"}])
    fake.listing("/rest/v1.0/projects", [{"id": 1, "name": "A"}, {"id": 2, "name": "B"}])
    client = make_client(clock)
    assert [c.name for c in client.companies()] == ["GC"]
    assert [p.id for p in client.projects()] == [1, 2]
    assert fake.token_forms == [
        {"grant_type": "client_credentials", "client_id": "cid", "client_secret": SECRET}
    ]
    assert len(fake.headers_seen) == 2
    for headers in fake.headers_seen:
        assert headers["Procore-Company-Id"] == str(COMPANY)
        assert headers["Authorization"] == "Bearer tok-1"
    info = client.token_info()
    assert info["expires_in"] == 5400 and info["created_at"] is None
    assert "tok-1" not in repr(info) and SECRET not in repr(info)
    assert client.stats.tokens == 1


def test_token_renewed_ahead_of_expiry_from_expires_in(fake, clock):
    fake.listing("/rest/v1.0/projects", [{"id": 1}])
    client = make_client(clock)
    list(client.projects())
    clock.now += 4800  # 600 s left of 5400: more than the 10 % lead -> keep
    list(client.projects())
    assert len(fake.issued) == 1
    clock.now += 100  # 500 s left (< 540 = 10 %) -> renew before the call
    list(client.projects())
    assert len(fake.issued) == 2
    assert fake.headers_seen[-1]["Authorization"] == "Bearer tok-2"


def test_short_lived_token_uses_its_own_lifetime(rsps, clock):
    fake = FakeProcore(rsps, expires_in=100)  # lead = min(max(60, 10), 50) = 50 s
    fake.listing("/rest/v1.0/projects", [{"id": 1}])
    client = make_client(clock)
    list(client.projects())
    clock.now += 40
    list(client.projects())
    assert len(fake.issued) == 1
    clock.now += 15
    list(client.projects())
    assert len(fake.issued) == 2


def test_401_triggers_exactly_one_reauth(fake, rsps, clock):
    answers = iter([(401, {}, '{"errors":"The access token is invalid"}'), (200, {}, "[]")])
    rsps.add_callback("GET", re.compile(API + "/rest/v1.0/projects.*"), lambda r: next(answers))
    client = make_client(clock)
    assert list(client.projects()) == []
    assert len(fake.issued) == 2 and client.stats.reauths == 1


def test_401_after_reauth_is_a_clear_auth_error(fake, rsps, clock):
    rsps.add(
        "GET",
        re.compile(API + "/rest/v1.0/projects.*"),
        json={"errors": "The access token is invalid"},
        status=401,
    )
    client = make_client(clock)
    with pytest.raises(ProcoreAuthError) as info:
        list(client.projects())
    err = info.value
    assert err.status == 401 and err.method == "GET" and err.path == "/rest/v1.0/projects"
    assert "login-sandbox" in str(err) and "The access token is invalid" in str(err)
    assert len(fake.issued) == 2  # one original, one re-auth, no loop


def test_token_endpoint_error_never_leaks_the_secret(rsps, clock):
    body = {"error": "invalid_client", "error_description": f"unknown client {SECRET}"}
    rsps.add("POST", AUTH, json=body, status=401)
    client = make_client(clock)
    with pytest.raises(ProcoreAuthError) as info:
        client.token_info()
    err = info.value
    assert "invalid_client" in str(err) and "unknown client" in str(err)
    for text in (str(err), repr(err), err.detail, repr(client), repr(client.settings)):
        assert SECRET not in text
    assert "PROCORE_CLIENT_SECRET" in str(err)


def test_token_response_without_access_token(rsps, clock):
    rsps.add("POST", AUTH, json={"hello": 1})
    with pytest.raises(ProcoreAuthError, match="without an access_token"):
        make_client(clock).token_info()


# ---------------------------------------------------------------- rate limits and retries


@pytest.fixture
def live(clock) -> ScriptedServer:
    """A real server with a token endpoint; `client(server)` talks to it."""
    with scripted_server() as server:
        server.script(
            "POST",
            "/oauth/token",
            default=Reply(body={"access_token": "tok-1", "token_type": "bearer"}),
        )
        yield server


def live_client(server: ScriptedServer, clock: FakeClock, **overrides) -> ProcoreClient:
    settings = ProcoreSettings(
        auth_url=f"{server.url}/oauth/token",
        api_url=server.url,
        client_id="cid",
        client_secret=SECRET,
        company_id=COMPANY,
        **overrides,
    )
    return ProcoreClient(settings, sleep=clock.sleep, clock=clock)


PROJECTS = "/rest/v1.0/projects"


def test_429_with_retry_after_waits_that_long(live, clock):
    live.script(
        "GET",
        PROJECTS,
        Reply(429, "You have surpassed the max number of requests", {"Retry-After": "7"}),
        Reply(body=[]),
    )
    client = live_client(live, clock)
    assert list(client.projects()) == []
    assert clock.sleeps == [7.0]
    assert client.stats.throttled_429 == 1 and client.stats.retries == 1


def test_429_without_retry_after_waits_until_reset(live, clock):
    reset = int(clock.now) + 12
    headers = {
        "X-Rate-Limit-Limit": "25",
        "X-Rate-Limit-Remaining": "0",
        "X-Rate-Limit-Reset": str(reset),
    }
    live.script("GET", PROJECTS, Reply(429, "slow down", headers), Reply(body=[]))
    client = live_client(live, clock)
    list(client.projects())
    assert clock.now >= reset + 1  # waited for the reset (+ margin), not a guess
    assert clock.sleeps[0] == pytest.approx(reset - 1_700_000_000.0 + 1.0)


def test_persistent_429_gives_up_after_max_retries(live, clock):
    live.script("GET", PROJECTS, default=Reply(429, "too many"))
    client = live_client(live, clock, max_retries=3)
    with pytest.raises(ProcoreError) as info:
        list(client.projects())
    assert info.value.status == 429 and client.stats.throttled_429 == 4
    assert client.stats.retries == 3
    assert len(live.calls("GET", PROJECTS)) == 4


def test_a_write_answered_429_is_sent_again(live, clock):
    """Procore did not process a 429: a write is as safe to repeat as a read."""
    hooks = "/rest/v1.0/webhooks/hooks"
    live.script("POST", hooks, Reply(429, "slow", {"Retry-After": "2"}), Reply(201, {"id": 8}))
    client = live_client(live, clock)
    assert client.create_hook("acme-sync", "https://x/events", "Bearer hook-secret") == {"id": 8}
    assert len(live.calls("POST", hooks)) == 2 and clock.sleeps == [2.0]


def test_5xx_retries_are_bounded(live, clock):
    live.script("GET", PROJECTS, default=Reply(503, "<h1>oops</h1>"))
    client = live_client(live, clock, max_retries=4)
    with pytest.raises(ProcoreError) as info:
        list(client.projects())
    assert info.value.status == 503
    assert len(live.calls("GET", PROJECTS)) == 5  # first try + 4 retries
    assert len(clock.sleeps) == 4
    # jittered exponential back-off: attempt n waits within [base * 2**(n-1) / 2, base * 2**(n-1)]
    for attempt, slept in enumerate(clock.sleeps, start=1):
        assert 0.25 * 2 ** (attempt - 1) <= slept <= 0.5 * 2 ** (attempt - 1)


def test_5xx_then_success(live, clock):
    live.script("GET", PROJECTS, Reply(500, "boom"), Reply(502, "bad gw"), Reply(body=[{"id": 3}]))
    client = live_client(live, clock)
    assert [p.id for p in client.projects()] == [3]
    assert client.stats.retries == 2


def test_dropped_connections_and_timeouts_are_retried_for_get(live, clock):
    live.script("GET", PROJECTS, Drop(), Stall(0.6), Reply(body=[]))
    client = live_client(live, clock, read_timeout=0.2)
    assert list(client.projects()) == []
    assert client.stats.retries == 2 and len(live.calls("GET", PROJECTS)) == 3


def test_a_dropped_write_is_not_sent_again(live, clock):
    hooks = "/rest/v1.0/webhooks/hooks"
    live.script("POST", hooks, Drop(), Reply(201, {"id": 8}))
    client = live_client(live, clock)
    with pytest.raises(ProcoreError) as info:
        client.create_hook("acme-sync", "https://x/events", "Bearer hook-secret")
    assert info.value.status is None and len(live.calls("POST", hooks)) == 1


def test_401_resends_the_request_once_with_a_fresh_token(live, clock):
    live.script(
        "POST",
        "/oauth/token",
        Reply(body={"access_token": "tok-1"}),
        Reply(body={"access_token": "tok-2"}),
    )
    live.script(
        "GET", PROJECTS, Reply(401, {"errors": "The access token is invalid"}), Reply(body=[])
    )
    client = live_client(live, clock)
    assert list(client.projects()) == []
    sent = [c.headers["Authorization"] for c in live.calls("GET", PROJECTS)]
    assert sent == ["Bearer tok-1", "Bearer tok-2"] and client.stats.reauths == 1


def test_post_is_not_retried_after_5xx(fake, rsps, clock):
    rsps.add("POST", API + "/rest/v1.0/webhooks/hooks", body="boom", status=500)
    client = make_client(clock)
    with pytest.raises(ProcoreError) as info:
        client.create_hook("acme-sync", "https://x/events", "Bearer hook-secret")
    assert info.value.status == 500
    assert len([c for c in rsps.calls if c.request.url.startswith(API)]) == 1


def test_pacing_sleeps_until_reset_when_remaining_is_low(fake, rsps, clock):
    reset = int(clock.now) + 8
    low = {
        "X-Rate-Limit-Limit": "25",
        "X-Rate-Limit-Remaining": "2",
        "X-Rate-Limit-Reset": str(reset),
    }
    rsps.add("GET", re.compile(API + "/rest/v1.0/projects.*"), json=[], headers=low)
    client = make_client(clock, min_remaining=2)
    list(client.projects())
    assert clock.sleeps == []  # nothing known before the first response
    list(client.projects())
    assert clock.sleeps == [pytest.approx(reset - 1_700_000_000.0 + 1.0)]
    assert client.stats.waits_s == pytest.approx(clock.sleeps[0])


def test_pacer_spreads_calls_below_low_water_and_not_above():
    pacer = RateLimitPacer(min_remaining=2)
    now = 1_700_000_000.0
    pacer.observe(
        {
            "X-Rate-Limit-Limit": "3600",
            "X-Rate-Limit-Remaining": "3000",
            "X-Rate-Limit-Reset": str(int(now) + 3000),
        },
        now,
    )
    assert pacer.delay(now) == 0.0
    pacer.observe(
        {
            "X-Rate-Limit-Limit": "3600",
            "X-Rate-Limit-Remaining": "602",
            "X-Rate-Limit-Reset": str(int(now) + 3000),
        },
        now,
    )
    assert pacer.delay(now) == pytest.approx(3000 / 600)
    assert pacer.delay(now + 3001) == 0.0  # the window has reset


# ---------------------------------------------------------------- pagination and filters


def test_link_pagination_repeats_filters_on_every_page(fake, clock):
    records = [{"id": i, "status": "approved", "items": []} for i in range(1, 251)]
    fake.listing("/rest/v1.1/requisitions", records, style="link")
    client = make_client(clock)
    got = list(client.requisitions(77, status="approved", resolve_cost_types=False))
    assert [r.id for r in got] == list(range(1, 251))
    calls = fake.calls["/rest/v1.1/requisitions"]
    assert [c["page"] for c in calls] == [["1"], ["2"], ["3"]]
    for c in calls:
        assert c["project_id"] == ["77"] and c["filters[status]"] == ["approved"]
        assert c["view"] == ["items"] and c["per_page"] == ["100"]


def test_total_header_pagination_reads_until_a_short_page(fake, clock):
    fake.listing("/rest/v1.0/vendors", [{"id": i} for i in range(250)], style="total")
    client = make_client(clock)
    assert len(list(client.vendors())) == 250
    assert len(fake.calls["/rest/v1.0/vendors"]) == 3


def test_a_lying_total_without_link_loses_nothing(fake, clock):
    # Total says 125 of 250: stopping at Total would drop half the records.
    fake.listing("/rest/v1.0/vendors", [{"id": i} for i in range(250)], style="lying_total")
    client = make_client(clock)
    assert [v.id for v in client.vendors()] == list(range(250))
    assert [c["page"] for c in fake.calls["/rest/v1.0/vendors"]] == [["1"], ["2"], ["3"]]


def test_short_page_pagination_without_headers(fake, clock):
    fake.listing("/rest/v1.0/line_item_types", [{"id": i} for i in range(150)], style="none")
    client = make_client(clock)
    assert len(list(client.cost_types())) == 150
    assert len(fake.calls["/rest/v1.0/line_item_types"]) == 2


def test_server_capping_per_page_lower_is_still_read_to_the_end(rsps, fake, clock):
    rows = [{"id": i} for i in range(120)]

    def capped(request):  # asks 100, gets 50 with Per-Page: 50 and no Link
        page = int(query(request)["page"][0])
        return 200, {"Per-Page": "50"}, json.dumps(rows[(page - 1) * 50 : page * 50])

    rsps.add_callback("GET", re.compile(API + r"/rest/v1.0/line_item_types.*"), capped)
    assert len(list(make_client(clock).cost_types())) == 120


def test_endpoint_that_ignores_paging_costs_one_extra_call_at_most(fake, clock):
    fake.listing(
        "/rest/v1.0/projects/5/billing_periods",
        [{"id": i, "status": "open"} for i in range(150)],
        style="none",
        ignore_per_page=True,
    )
    client = make_client(clock)
    assert [p.id for p in client.billing_periods(5)] == list(range(150))  # no duplicates
    # page 1 was more than full, so page 2 was asked: it repeated page 1 and was dropped.
    assert len(fake.calls["/rest/v1.0/projects/5/billing_periods"]) == 2
    assert client.stats.repeated_pages == 1


CO_LIST = "/rest/v1.0/projects/9/commitment_change_orders"


@pytest.mark.parametrize(("rows", "calls"), [(7, 1), (100, 2)])
def test_change_order_list_ignoring_paging_costs_one_call(fake, clock, rows, calls):
    # The v1.0 CO list documents no paging: it answers every row, whatever page is asked,
    # with no Total, Per-Page or Link header.
    records = [{"id": i, "contract_id": 41, "status": "draft"} for i in range(1, rows + 1)]
    fake.listing(CO_LIST, records, style="none", ignore_per_page=True)
    client = make_client(clock)
    got = list(client.change_orders(9, with_line_items=False))
    assert [c.id for c in got] == list(range(1, rows + 1))
    assert len(fake.calls[CO_LIST]) == calls  # fewer than per_page: one; a full page: two


def test_change_order_list_answered_as_one_object(fake, rsps, clock):
    rsps.add(
        "GET",
        re.compile(re.escape(API + CO_LIST) + r"(\?.*)?$"),
        json={"id": 5, "contract_id": 41, "status": "draft", "type": "CommitmentChangeOrder"},
    )
    (co,) = list(make_client(clock).change_orders(9, with_line_items=False))
    assert co.id == 5 and co.contract_id == 41


def test_iterators_are_lazy(fake, clock):
    fake.listing("/rest/v1.0/vendors", [{"id": i} for i in range(300)])
    client = make_client(clock)
    first = next(iter(client.vendors()))
    assert first.id == 0
    assert len(fake.calls["/rest/v1.0/vendors"]) == 1


def test_id_lists_are_chunked_and_empty_means_none(fake, clock):
    fake.listing("/rest/v1.0/vendors", [{"id": i} for i in range(1, 301)])
    client = make_client(clock)
    assert list(client.vendors(ids=[])) == []
    assert "/rest/v1.0/vendors" not in fake.calls
    got = list(client.vendors(ids=list(range(1, 251))))
    assert len(got) == 250
    sizes = [len(c["filters[id][]"]) for c in fake.calls["/rest/v1.0/vendors"]]
    assert sizes == [100, 100, 50]


def test_an_ignored_id_filter_yields_only_the_ids_asked_for(rsps, fake, clock):
    rows = [{"id": i, "status": "approved", "items": []} for i in range(1, 31)]
    seen: list[dict] = []

    def everything(request):  # answers every requisition whatever filters[id] says
        seen.append(query(request))
        return 200, {}, json.dumps(rows)

    rsps.add_callback("GET", re.compile(API + r"/rest/v1.1/requisitions.*"), everything)
    got = list(make_client(clock).requisitions(9, ids=[3, 7], resolve_cost_types=False))
    assert [r.id for r in got] == [3, 7]
    assert [q["filters[id]"] for q in seen] == [["3,7"]]  # csv, as the endpoint documents


def test_updated_filter_is_an_iso_z_range(fake, clock):
    fake.listing("/rest/v1.0/vendors", [])
    client = make_client(clock)
    start = datetime(2026, 9, 30, 22, 0, tzinfo=timezone.utc)
    list(client.vendors(updated=(start, datetime(2026, 10, 1, 1, 30))))
    (call,) = fake.calls["/rest/v1.0/vendors"]
    assert call["filters[updated_at]"] == ["2026-09-30T22:00:00Z...2026-10-01T01:30:00Z"]


def test_query_plans_split_statuses_and_chunks():
    plans = list(
        query_plans([("project_id", 1)], status=["approved", "approved_as_noted"], ids=range(150))
    )
    assert len(plans) == 4
    assert {dict(p)["filters[status]"] for p in plans} == {"approved", "approved_as_noted"}


# ---------------------------------------------------------------- resources


def test_requisitions_each_status_separately_and_deduplicated(fake, clock):
    records = [
        {"id": 1, "status": "approved", "items": []},
        {"id": 2, "status": "approved_as_noted", "items": []},
        {"id": 3, "status": "draft", "items": []},
    ]
    fake.listing("/rest/v1.1/requisitions", records)
    client = make_client(clock)
    got = list(client.requisitions(9, status=["approved", "approved_as_noted", "approved"]))
    assert [r.id for r in got] == [1, 2]
    statuses = [c["filters[status]"] for c in fake.calls["/rest/v1.1/requisitions"]]
    assert statuses == [["approved"], ["approved_as_noted"]]
    assert all(r.project_id == 9 for r in got)


def test_requisition_v10_payload_gets_items_and_vendor(fake, rsps, clock):
    v10 = {"id": 11, "commitment_id": 41, "status": "approved", "summary": {}}
    fake.listing("/rest/v1.1/requisitions", [v10])
    fake.listing(
        "/rest/v1.0/requisitions/11/contract_items",
        [{"id": 1, "line_item_id": 500, "work_completed_this_period": "10.00"}],
    )
    rsps.add(
        "GET",
        re.compile(API + "/rest/v1.0/requisitions/11/change_order_items.*"),
        json={"errors": "not found"},
        status=404,
    )
    rsps.add(
        "GET",
        re.compile(API + r"/rest/v1.0/work_order_contracts/41\?.*"),
        json={"id": 41, "vendor": {"id": 47, "company": "Courier"}},
    )
    rsps.add(
        "GET",
        re.compile(API + r"/rest/v1.0/purchase_order_contracts/41\?.*"),
        json={"errors": "nope"},
        status=404,
    )
    fake.listing(
        "/rest/v1.0/work_order_contracts/41/line_items",
        [{"id": 500, "cost_code": {"id": 1472}, "line_item_type": {"id": 3, "code": "S"}}],
    )
    client = make_client(clock)
    (req,) = list(client.requisitions(9))
    assert (req.vendor_id, req.vendor_name) == (47, "Courier")
    (item,) = req.items
    assert item.work_completed_this_period == Decimal("10.00")
    assert (item.line_item_type_id, item.cost_code_id) == (3, 1472)


def test_direct_costs_lines_in_bulk_not_per_cost(fake, rsps, clock):
    costs = [{"id": i, "vendor": "ABC", "vendor_id": 5, "amount": "3.00"} for i in range(1, 151)]
    lines = [
        {
            "id": 1000 + i * 2 + k,
            "direct_cost_id": i,
            "amount": "1.50",
            "cost_code": {"id": 7, "full_code": "03-300"},
            "line_item_type": {"id": 2, "code": "M"},
        }
        for i in range(1, 151)
        for k in range(2)
    ]
    fake.listing("/rest/v1.1/projects/9/direct_costs", costs)

    def line_callback(request):
        q = query(request)
        fake.calls.setdefault("lines", []).append(q)
        wanted = {int(x) for x in q["filters[direct_cost_id][]"]}
        rows = [x for x in lines if x["direct_cost_id"] in wanted]
        page, per = int(q["page"][0]), int(q["per_page"][0])
        link = f'<{API}/x?page=1>; rel="first"'
        if page * per < len(rows):
            link += f', <{API}/x?page={page + 1}>; rel="next"'
        headers = {"Total": str(len(rows)), "Link": link}
        return 200, headers, json.dumps(rows[(page - 1) * per : page * per])

    rsps.add_callback(
        "GET", re.compile(API + r"/rest/v1.0/projects/9/direct_costs/line_items.*"), line_callback
    )
    client = make_client(clock)
    got = list(client.direct_costs(9))
    assert len(got) == 150
    assert all(len(c.line_items) == 2 for c in got)
    assert all(sum(x.amount for x in c.line_items) == c.grand_total for c in got)
    assert got[0].line_items[0].cost_code == "03-300" and got[0].vendor_name == "ABC"
    show_calls = [c for c in rsps.calls if re.search(r"/direct_costs/\d+", c.request.url)]
    assert show_calls == []
    assert len(fake.calls["/rest/v1.1/projects/9/direct_costs"]) == 2
    assert len(fake.calls["lines"]) == 3  # chunk of 100 costs: 200 lines = 2 pages; 50: 1


def test_direct_cost_lines_fall_back_per_cost_when_unattributed(fake, clock):
    fake.listing("/rest/v1.1/projects/9/direct_costs", [{"id": 1, "grand_total": "2"}])
    fake.listing("/rest/v1.0/projects/9/direct_costs/line_items", [{"id": 5, "amount": "2"}])
    fake.listing("/rest/v1.0/projects/9/direct_costs/1/line_items", [{"id": 5, "amount": "2"}])
    (cost,) = list(make_client(clock).direct_costs(9))
    assert [x.id for x in cost.line_items] == [5]
    assert len(fake.calls["/rest/v1.0/projects/9/direct_costs/1/line_items"]) == 1


def test_direct_cost_show_shape_keeps_its_lines(fake, clock):
    show = {"id": 1, "vendor": {"id": 5, "name": "ABC"}, "line_items": [{"id": 9, "amount": 1}]}
    fake.listing("/rest/v1.1/projects/9/direct_costs", [show])
    (cost,) = list(make_client(clock).direct_costs(9))
    assert cost.vendor_id == 5 and [x.id for x in cost.line_items] == [9]
    assert "/rest/v1.0/projects/9/direct_costs/line_items" not in fake.calls


def test_commitments_with_line_items_and_title_case_status(fake, clock):
    fake.listing(
        "/rest/v1.0/purchase_order_contracts",
        [
            {
                "id": 41,
                "status": "Approved",
                "vendor": {"id": 47, "company": "C"},
                "grand_total": "2",
            }
        ],
    )
    fake.listing(
        "/rest/v1.0/purchase_order_contracts/41/line_items",
        [{"id": 1, "amount": "2.0", "cost_code": {"id": 3}, "line_item_type": {"id": 4}}],
    )
    client = make_client(clock)
    (c,) = list(client.commitments(9, "purchase_order", status="Approved"))
    assert c.kind == "purchase_order" and c.status == "Approved" and c.vendor_name == "C"
    assert [(x.cost_code_id, x.line_item_type_id, x.amount) for x in c.line_items] == [
        (3, 4, Decimal("2.0"))
    ]
    assert fake.calls["/rest/v1.0/purchase_order_contracts"][0]["filters[status]"] == ["Approved"]
    with pytest.raises(ValueError):
        list(client.commitments(9, "subcontract"))  # type: ignore[arg-type]


def not_found(rsps, path: str) -> None:
    rsps.add(
        "GET",
        re.compile(re.escape(API + path) + r"(\?.*)?$"),
        json={"message": "Not Found", "exception": "ActiveRecord::RecordNotFound"},
        status=404,
    )


def test_a_contract_whose_lines_answer_404_is_marked_gone_and_the_listing_goes_on(
    fake, rsps, clock
):
    """Deleted between the listing and the line read: that record says so, the rest read."""
    fake.listing(
        "/rest/v1.0/work_order_contracts",
        [{"id": i, "status": "Approved", "vendor": {"id": 47}} for i in (41, 42, 43)],
    )
    fake.listing("/rest/v1.0/work_order_contracts/41/line_items", [{"id": 1, "amount": "2"}])
    not_found(rsps, "/rest/v1.0/work_order_contracts/42/line_items")
    fake.listing("/rest/v1.0/work_order_contracts/43/line_items", [{"id": 3, "amount": "5"}])
    client = make_client(clock)
    got = {c.id: c for c in client.commitments(9, "work_order")}
    assert sorted(got) == [41, 42, 43]
    gone = (got[42].model_extra or {}).get("detail_gone")
    assert gone == "gone from Procore (404 on GET /rest/v1.0/work_order_contracts/42/line_items)"
    assert got[42].line_items == [] and client.stats.gone == 1
    assert all("detail_gone" not in (got[i].model_extra or {}) for i in (41, 43))
    assert [x.id for x in got[43].line_items] == [3]


def test_change_order_lines_and_v10_requisition_items_answering_404_mark_their_record(
    fake, rsps, clock
):
    fake.listing(
        "/rest/v1.0/projects/9/commitment_change_orders",
        [{"id": 5, "contract_id": 41, "status": "approved"}],
        style="none",
    )
    rsps.add(
        "GET",
        re.compile(re.escape(API + V2_LINES.format(5)) + r"(\?.*)?$"),
        json={"error": {"code": "NOT_FOUND", "message": "gone", "details": []}},
        status=404,
    )
    fake.listing(
        "/rest/v1.1/requisitions",
        [{"id": 7, "status": "approved", "commitment_id": 41, "vendor_id": 47}],
    )
    not_found(rsps, "/rest/v1.0/requisitions/7/contract_items")
    client = make_client(clock)
    (order,) = client.change_orders(9)
    assert "404 on GET /rest/v2.0/" in order.model_extra["detail_gone"]
    (req,) = client.requisitions(9, resolve_cost_types=False)
    assert req.model_extra["detail_gone"].endswith("/rest/v1.0/requisitions/7/contract_items)")


def test_a_404_on_the_listing_itself_still_fails_the_read(fake, rsps, clock):
    not_found(rsps, "/rest/v1.0/work_order_contracts")
    with pytest.raises(ProcoreError) as info:
        list(make_client(clock).commitments(9, "work_order"))
    assert info.value.status == 404


V2_LINES = f"/rest/v2.0/companies/{COMPANY}/projects/9/commitment_change_orders/{{}}/line_items"


def contract_line(line_id: int, code_id: int, full_code: str, type_id: int, code: str) -> dict:
    """A v1.0 work/purchase order contract line item, as Procore's model has it."""
    return {
        "id": line_id,
        "amount": "1000.00",
        "description": f"line {line_id}",
        "cost_code": {"id": code_id, "full_code": full_code, "name": "x", "code": "300"},
        "line_item_type": {"id": type_id, "code": code, "name": "Subcontract"},
        "wbs_code": {"id": 1, "flat_code": f"{full_code}.{code}", "description": "x"},
        "holder": {"id": 41, "holder_type": "WorkOrderContract"},
        "quantity": "1.0",
        "unit_cost": "1000.00",
        "extended_type": "manual",
        "position": 1,
    }


def co_line(line_id: str, contract_line_id: str | None, flat_code: str = "03-300.S") -> dict:
    """A v2.0 change order line item (string ids, number quantity, no cost code)."""
    return {
        "id": line_id,
        "amount": "12.50",
        "description": "extra",
        "quantity": 1,
        "unit_cost": "12.50",
        "uom": "ls",
        "extended_type": "manual",
        "position": 1,
        "tax_code_id": None,
        "commitment_line_item_id": contract_line_id,
        "prime_line_item_id": None,
        "wbs_code_id": "1",
        "wbs_code": {"id": "1", "flat_code": flat_code, "description": "x"},
        "work_breakdown_structure": {},
    }


def serve_change_orders(fake: FakeProcore, lines_by_co: dict[int, list[dict]]) -> None:
    records = [
        {"id": co, "contract_id": 41, "status": "approved", "grand_total": "12.50"}
        for co in lines_by_co
    ]
    fake.listing(CO_LIST, records, style="none", ignore_per_page=True)
    for co, lines in lines_by_co.items():
        fake.listing(V2_LINES.format(co), lines, wrap=lambda page: {"data": page})


def test_change_order_lines_take_cost_code_from_the_referenced_contract_line(fake, rsps, clock):
    serve_change_orders(
        fake, {5: [co_line("77", "502"), co_line("78", "500")], 6: [co_line("79", "502")]}
    )
    rsps.add(  # the contract is a purchase order: the work order path answers 404
        "GET",
        re.compile(API + r"/rest/v1.0/work_order_contracts/41/line_items.*"),
        json={"errors": "not found"},
        status=404,
    )
    fake.listing(
        "/rest/v1.0/purchase_order_contracts/41/line_items",
        [
            contract_line(500, 1, "01-000", 9, "L"),
            contract_line(501, 2, "03-300", 7, "S"),
            contract_line(502, 3, "26-050", 8, "M"),
        ],
    )
    client = make_client(clock, per_page=5)
    five, six = list(client.change_orders(9))
    assert [x.id for x in five.line_items] == [77, 78]
    referenced = five.line_items[0].contract_line
    assert (referenced.id, referenced.cost_code_id, referenced.line_item_type_id) == (502, 3, 8)
    assert (referenced.cost_code, referenced.line_item_type_code) == ("26-050", "M")
    assert five.line_items[1].contract_line.id == 500  # each line its own contract line
    assert six.line_items[0].contract_line.id == 502
    assert "cost_code_id" not in five.line_items[0].model_dump()  # Procore sends none
    # one read of the contract's lines for both change orders (cached)
    assert len(fake.calls["/rest/v1.0/purchase_order_contracts/41/line_items"]) == 1
    # v2 pages at 10 by default: the client asks for the maximum, 100
    assert fake.calls[V2_LINES.format(5)][0]["per_page"] == ["100"]


def test_change_order_lines_use_the_staged_contract_lines_without_a_call(fake, clock):
    serve_change_orders(fake, {5: [co_line("77", "501"), co_line("78", "999")]})
    staged = {  # a staged Commitment payload (model dump): flat ids, full code as text
        "id": 41,
        "kind": "work_order",
        "line_items": [
            {"id": 500, "cost_code_id": 1, "cost_code": "01-000", "line_item_type_id": 9},
            {"id": 501, "cost_code_id": 2, "cost_code": "03-300", "line_item_type_id": 7},
        ],
    }
    asked: list[int] = []
    client = make_client(clock)

    def lookup(contract_id: int) -> dict | None:
        asked.append(contract_id)
        return staged

    (co,) = list(client.change_orders(9, staged_contract=lookup))
    assert co.line_items[0].contract_line.cost_code_id == 2
    assert co.line_items[1].contract_line is None  # not a line of this contract
    assert asked == [41]
    assert not any("_contracts/41" in path for path in fake.calls)


def test_staged_contract_without_lines_costs_one_call_on_its_own_path(fake, clock):
    serve_change_orders(fake, {5: [co_line("77", "501")]})
    fake.listing(
        "/rest/v1.0/purchase_order_contracts/41/line_items",
        [contract_line(501, 2, "03-300", 7, "S")],
    )
    client = make_client(clock)
    lookup = lambda _id: {"id": 41, "kind": "purchase_order", "line_items": []}  # noqa: E731
    (co,) = list(client.change_orders(9, staged_contract=lookup))
    assert co.line_items[0].contract_line.line_item_type_id == 7
    assert len(fake.calls["/rest/v1.0/purchase_order_contracts/41/line_items"]) == 1
    assert "/rest/v1.0/work_order_contracts/41/line_items" not in fake.calls


def test_change_order_ids_are_one_integer_filter_per_call(fake, clock):
    fake.listing(CO_LIST, [{"id": i, "contract_id": 41} for i in (1, 2, 3)], style="none")
    client = make_client(clock)
    got = list(client.change_orders(9, ids=[1, 3], with_line_items=False))
    assert [c.id for c in got] == [1, 3]
    assert [c["filters[id]"] for c in fake.calls[CO_LIST]] == [["1"], ["3"]]


def g703_item(item_id: int, **amounts: str) -> dict:
    """A v1.0 contract item (no "_from_previous" figures), line 500, cost code 1472."""
    base = {
        "id": item_id,
        "item_type": "contract_item",
        "cost_code_id": 1472,
        "line_item_id": 500,
        "description_of_work": "Rebar",
        "work_completed_from_previous_application": "0.00",
        "work_completed_this_period": "0.00",
        "materials_presently_stored": "0.00",
        "materials_moved": "0.00",
        "total_completed_and_stored_to_date": "0.00",
        "work_completed_retainage_retained_this_period": "0.00",
        "work_completed_retainage_released_this_period": "0.00",
        "materials_stored_retainage_currently_retained": "0.00",
        "materials_stored_retainage_released_this_period": "0.00",
        "materials_retainage_retained_moved": "0.00",
    }
    return {**base, **amounts}


def test_v10_items_get_the_previous_applications_figures(fake, rsps, clock):
    # The v1.1 list answered without items: items come from v1.0, which lacks the
    # previous application's figures; the client copies them from that application.
    fake.listing(
        "/rest/v1.1/requisitions",
        [
            {"id": 11, "previous_requisition_id": None, "status": "approved", "vendor_id": 5},
            {"id": 12, "previous_requisition_id": 11, "status": "approved", "vendor_id": 5},
            {"id": 13, "previous_requisition_id": 12, "status": "approved", "vendor_id": 5},
        ],
    )
    stored = g703_item(
        1,
        materials_presently_stored="1000.00",
        total_completed_and_stored_to_date="1000.00",
        materials_stored_retainage_currently_retained="100.00",
    )
    carried = dict(stored, id=2)
    installed = g703_item(
        3,
        work_completed_this_period="1000.00",
        materials_moved="1000.00",
        total_completed_and_stored_to_date="1000.00",
        materials_retainage_retained_moved="100.00",
    )
    for rid, item in ((11, stored), (12, carried), (13, installed)):
        fake.listing(f"/rest/v1.0/requisitions/{rid}/contract_items", [item])
        rsps.add(
            "GET",
            re.compile(API + rf"/rest/v1.0/requisitions/{rid}/change_order_items.*"),
            json={"errors": "not found"},
            status=404,
        )
    client = make_client(clock)
    first, second, third = list(client.requisitions(9, resolve_cost_types=False))
    gross = [r.items[0].gross_billed() for r in (first, second, third)]
    held = [r.items[0].retainage_held() for r in (first, second, third)]
    assert gross == [Decimal("1000.00"), Decimal("0.00"), Decimal("0.00")]  # billed once
    assert held == [Decimal("100.00"), Decimal("0.00"), Decimal("0.00")]
    assert second.items[0].materials_presently_stored_from_previous_progress == Decimal("1000")
    assert second.items[0].model_extra["previous_figures_from"] == 11
    for rid in (11, 12, 13):  # each application's items read once (the cache serves the next)
        assert len(fake.calls[f"/rest/v1.0/requisitions/{rid}/contract_items"]) == 1


def test_v10_item_without_a_previous_application_to_read_stays_unknown(fake, rsps, clock):
    # previous_requisition_id absent (not null): nothing says this is the first one.
    fake.listing("/rest/v1.1/requisitions", [{"id": 12, "status": "approved", "vendor_id": 5}])
    fake.listing(
        "/rest/v1.0/requisitions/12/contract_items",
        [g703_item(2, materials_presently_stored="1000.00")],
    )
    rsps.add(
        "GET",
        re.compile(API + r"/rest/v1.0/requisitions/12/change_order_items.*"),
        json={"errors": "not found"},
        status=404,
    )
    (req,) = list(make_client(clock).requisitions(9, resolve_cost_types=False))
    assert req.items[0].gross_billed() is None  # translation quarantines it


def test_vendor_business_id_is_read(fake, clock):
    fake.listing(
        "/rest/v1.0/vendors",
        [{"id": 35, "name": "Test Vendor", "business_id": "12-3456789", "origin_code": None}],
    )
    (vendor,) = list(make_client(clock).vendors())
    assert vendor.business_id == "12-3456789"


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        ('{"errors": "Project not permitted"}', "application/json", "Project not permitted"),
        (
            '{"errors": {"invoice_number": ["has already been taken"]}}',
            "application/json",
            "invoice_number: has already been taken",
        ),
        (
            '{"message": "Validation failed", "error": "amount invalid"}',
            "application/json",
            "Validation failed; amount invalid",
        ),
        (
            '{"error": {"code": "BAD_REQUEST", "message": "bad id", "details": ["id"]}}',
            "application/json",
            "[BAD_REQUEST] bad id; id",
        ),
        (
            '{"error": "invalid_grant", "error_description": "expired"}',
            "application/json",
            "invalid_grant: expired",
        ),
        (
            '{"code": 401, "message": "Unauthorized", "reason": "token"}',
            "application/json",
            "Unauthorized; token",
        ),
        (
            "You have surpassed the max number of requests for an hour.",
            "text/plain",
            "You have surpassed the max number of requests for an hour.",
        ),
        (
            "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
            "text/html",
            "502 Bad Gateway; nginx",
        ),
        (
            "<html><body><h1>Service   Unavailable</h1></body></html>",
            "text/html",
            "Service Unavailable",
        ),
        ("", "text/plain", ""),
    ],
)
def test_error_bodies_are_parsed(body, content_type, expected):
    assert parse_error_body(body, content_type) == expected


@pytest.mark.parametrize(
    ("status", "body", "hint_word"),
    [
        (403, {"errors": "App is not connected to this company"}, "permitted projects"),
        (404, {"message": "Not Found", "exception": "ActiveRecord"}, "no read access"),
        (422, {"errors": {"amount": ["must be positive"]}}, "business rule"),
    ],
)
def test_http_errors_carry_status_path_detail_and_hint(fake, rsps, clock, status, body, hint_word):
    rsps.add("GET", re.compile(API + "/rest/v1.0/projects.*"), json=body, status=status)
    with pytest.raises(ProcoreError) as info:
        list(make_client(clock).projects())
    err = info.value
    assert (err.status, err.method, err.path) == (status, "GET", "/rest/v1.0/projects")
    assert hint_word in str(err) and err.detail
    assert "company_id" not in err.path  # no query string in the path


def test_network_failure_error_is_plain(fake, rsps, clock):
    rsps.add("GET", re.compile(API + "/rest/v1.0/projects.*"), body=requests.ConnectionError("x"))
    with pytest.raises(ProcoreError) as info:
        list(make_client(clock, max_retries=1).projects())
    assert info.value.status is None and "could not be reached" in str(info.value)


def test_secret_and_token_absent_from_every_error(fake, rsps, clock):
    rsps.add(
        "GET",
        re.compile(API + "/rest/v1.0/projects.*"),
        json={"errors": "bad token tok-1 and tok-2"},
        status=401,
    )
    client = make_client(clock)
    with pytest.raises(ProcoreError) as info:
        list(client.projects())
    text = str(info.value) + repr(info.value) + repr(client) + str(client.settings)
    assert SECRET not in text and "tok-2" not in text


# ---------------------------------------------------------------- webhooks


def test_webhook_hook_and_trigger_bodies(fake, rsps, clock):
    seen = []

    def created(request):
        seen.append(json.loads(request.body))
        return 201, {}, json.dumps({"id": len(seen), "namespace": "acme-sync"})

    rsps.add_callback("POST", API + "/rest/v1.0/webhooks/hooks", callback=created)
    rsps.add_callback("POST", API + "/rest/v1.0/webhooks/hooks/1/triggers", callback=created)
    fake.listing("/rest/v1.0/webhooks/hooks", [{"id": 1, "namespace": "acme-sync"}])
    client = make_client(clock)
    hook = client.create_hook("acme-sync", "https://x/events", "Bearer hook-secret")
    client.create_trigger(hook["id"], "Direct Costs", "update")
    assert seen[0]["hook"]["destination_headers"] == {"Authorization": "Bearer hook-secret"}
    assert seen[0]["company_id"] == COMPANY and seen[0]["hook"]["namespace"] == "acme-sync"
    assert seen[1]["trigger"] == {"resource_name": "Direct Costs", "event_type": "update"}
    assert [h["id"] for h in client.webhook_hooks()] == [1]


def test_deliveries_follow_the_page_start_cursor(fake, rsps, clock):
    # Deliveries have no id of their own, only the event's (Procore's delivery model).
    deliveries = [{"event_id": 9000 + i, "outcome": "ok"} for i in range(1, 251)]
    starts = []

    def callback(request):
        q = query(request)
        start = int(q.get("page_start", ["0"])[0])
        starts.append(start)
        assert q["filters[status]"] == ["failing"]
        rows = [d for d in deliveries if d["event_id"] > start][: int(q["page_size"][0])]
        return 200, {}, json.dumps(rows)

    rsps.add_callback(
        "GET", re.compile(API + r"/rest/v1.0/webhooks/hooks/3/deliveries.*"), callback
    )
    got = make_client(clock).deliveries(3, "failing")
    assert [d["event_id"] for d in got] == [9000 + i for i in range(1, 251)]
    assert starts == [0, 9100, 9200]


def test_hook_authorization_is_redacted_from_errors(fake, rsps, clock):
    rsps.add(
        "POST",
        API + "/rest/v1.0/webhooks/hooks",
        json={"errors": {"destination_headers": ["Bearer hook-secret-123 is too short"]}},
        status=422,
    )
    with pytest.raises(ProcoreError) as info:
        make_client(clock).create_hook("acme-sync", "https://x/events", "Bearer hook-secret-123")
    assert "hook-secret-123" not in str(info.value) + repr(info.value)
    assert "too short" in str(info.value) and info.value.args == (info.value.message,)
