"""Unit tests of DeltekClient: `responses` for shapes (no network), a scripted loopback
server for retries, which urllib3 does below what a mock sees."""

from __future__ import annotations

import json
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses
from pydantic import SecretStr
from urllib3.exceptions import MaxRetryError, NewConnectionError

from deltek_procore.deltek import (
    DeltekAmbiguousError,
    DeltekAuthError,
    DeltekClient,
    DeltekError,
    DeltekSettings,
    Filter,
    decode_post_result,
    to_decimal,
)
from deltek_procore.http.auth import Token
from deltek_procore_tests.http.scripted import (
    Drop,
    Reply,
    ScriptedServer,
    Stall,
    closed_port,
    scripted_server,
)

API = "https://acme.deltekfirst.com/ACME/api"
TOKEN_URL = f"{API}/token"
PASSWORD = "pa ss+w/rd=&Secret1"
CLIENT_SECRET = "cl/ient+secret=="
ACCESS = "access-token-AAAA"
REFRESH = "N3h/5UvLUL/LAP5/QcC8+B+vfOS3IE="
SECRETS = (PASSWORD, CLIENT_SECRET, ACCESS, REFRESH)


def settings(**changes) -> DeltekSettings:
    base = dict(
        api_url=API + "/",
        username="apiuser",
        password=PASSWORD,
        database="C0000042000P_1_ACME0000",
        client_id="sandbox+deltek/client=",
        client_secret=CLIENT_SECRET,
        max_retries=3,
    )
    base.update(changes)
    return DeltekSettings(**base)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def client(clock, sleeps):
    return DeltekClient(settings(), sleep=sleeps.append, clock=clock)


def token_ok(rsps, access=ACCESS, refresh=REFRESH, expires_in=1799):
    rsps.add(
        responses.POST,
        TOKEN_URL,
        json={
            "access_token": access,
            "token_type": "bearer",
            "expires_in": expires_in,
            "refresh_token": refresh,
        },
    )


def form(call) -> dict:
    return dict(parse_qsl(call.request.body, keep_blank_values=True, strict_parsing=True))


def query(call) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(call.request.url).query, keep_blank_values=True)


def api_calls(rsps, path: str | None = None):
    calls = [c for c in rsps.calls if not c.request.url.startswith(TOKEN_URL)]
    if path is not None:
        calls = [c for c in calls if urlsplit(c.request.url).path.endswith(path)]
    return calls


def token_calls(rsps):
    return [c for c in rsps.calls if c.request.url.startswith(TOKEN_URL)]


def refused() -> requests.ConnectionError:
    reason = NewConnectionError(None, "Failed to establish a new connection: Connection refused")
    return requests.ConnectionError(MaxRetryError(None, API, reason))


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


# ------------------------------------------------------------------ authentication


def test_password_grant_sends_every_field_form_encoded(rsps, client):
    token_ok(rsps)
    rsps.add(responses.GET, f"{API}/firm", json=[{"Vendor": "V1"}])
    assert client.firms() == [{"Vendor": "V1"}]
    sent = form(token_calls(rsps)[0])
    assert sent == {
        "Username": "apiuser",
        "Password": PASSWORD,
        "grant_type": "password",
        "Integrated": "N",
        "database": "C0000042000P_1_ACME0000",
        "Client_Id": "sandbox+deltek/client=",
        "client_secret": CLIENT_SECRET,
    }
    assert token_calls(rsps)[0].request.headers["Content-Type"] == (
        "application/x-www-form-urlencoded"
    )
    assert api_calls(rsps)[0].request.headers["Authorization"] == f"Bearer {ACCESS}"
    assert client.stats.tokens == 1


def test_token_info_has_no_secret(rsps, client, clock):
    token_ok(rsps, expires_in="3600")
    info = client.token_info()
    assert info["expires_in"] == 3600 and info["obtained_at"] == clock.now
    assert info["refreshable"] is True
    assert_no_secret(repr(info))


def test_token_refreshed_before_expiry_with_refresh_grant(rsps, client, clock):
    token_ok(rsps)
    rsps.add(responses.GET, f"{API}/project", json=[])
    client.projects()
    clock.now += 1799 - 59  # inside the 60 s margin
    token_ok(rsps, access="second-token")
    client.projects()
    assert len(token_calls(rsps)) == 2
    refresh_form = form(token_calls(rsps)[1])
    assert refresh_form == {
        "grant_type": "refresh_token",
        "refresh_token": REFRESH,
        "database": "C0000042000P_1_ACME0000",
        "Client_Id": "sandbox+deltek/client=",
        "client_secret": CLIENT_SECRET,
    }
    assert api_calls(rsps)[-1].request.headers["Authorization"] == "Bearer second-token"


def test_token_not_refreshed_while_fresh(rsps, client, clock):
    token_ok(rsps)
    rsps.add(responses.GET, f"{API}/project", json=[])
    client.projects()
    clock.now += 1799 - 61
    client.projects()
    assert len(token_calls(rsps)) == 1


def test_401_refreshes_and_retries_once(rsps, client):
    token_ok(rsps)
    rsps.add(
        responses.GET, f"{API}/firm", status=401, json={"Message": "Authorization has been denied"}
    )
    token_ok(rsps, access="fresh")
    rsps.add(responses.GET, f"{API}/firm", json=[{"Vendor": "V"}])
    assert client.firms() == [{"Vendor": "V"}]
    assert form(token_calls(rsps)[1])["grant_type"] == "refresh_token"
    assert [c.request.headers["Authorization"] for c in api_calls(rsps)] == [
        f"Bearer {ACCESS}",
        "Bearer fresh",
    ]


def test_refresh_failure_falls_back_to_password_grant(rsps, client):
    token_ok(rsps)
    rsps.add(responses.GET, f"{API}/firm", status=401)
    rsps.add(responses.POST, TOKEN_URL, status=400, json={"error": "invalid_grant"})
    token_ok(rsps, access="from-password")
    rsps.add(responses.GET, f"{API}/firm", json=[])
    assert client.firms() == []
    grants = [form(c)["grant_type"] for c in token_calls(rsps)]
    assert grants == ["password", "refresh_token", "password"]
    assert api_calls(rsps)[-1].request.headers["Authorization"] == "Bearer from-password"


def test_second_401_is_auth_error_after_exactly_two_calls(rsps, client):
    token_ok(rsps)
    rsps.add(
        responses.GET, f"{API}/firm", status=401, json={"Message": "Authorization has been denied"}
    )
    with pytest.raises(DeltekAuthError) as info:
        client.firms()
    assert len(api_calls(rsps)) == 2
    assert info.value.status == 401 and "Authorization has been denied" in str(info.value)
    assert_no_secret(str(info.value) + repr(info.value))


def test_401_on_write_is_reauthenticated_and_sent_again(rsps, client):
    token_ok(rsps)
    rsps.add(responses.POST, f"{API}/DataEntry/apControl", status=401)
    rsps.add(responses.POST, f"{API}/DataEntry/apControl", status=201, json=[{"Batch": "B1"}])
    assert client.create_ap_batch({"Batch": "B1"}) == [{"Batch": "B1"}]
    assert len(api_calls(rsps)) == 2


TOKEN_ERRORS = [
    (
        400,
        {"error": "invalid_grant", "error_description": "The user name or password is incorrect."},
        "Deltek rejected the username or password for DELTEK_USERNAME=apiuser",
        "DELTEK_PASSWORD",
    ),
    (
        400,
        {"error": "invalid_grant", "error_description": "Invalid database C0000042000P_1_ACME0000"},
        "did not accept the database",
        "check DELTEK_DATABASE",
    ),
    (
        400,
        {"error": "unsupported_grant_type"},
        "password grant",
        "enable 'Allow Password Grant Type' in Vantagepoint > Integrations > API Authorization",
    ),
    (
        400,
        {"error": "invalid_client", "error_description": "client secret is wrong"},
        "client credentials",
        "check DELTEK_CLIENT_ID and DELTEK_CLIENT_SECRET",
    ),
    (
        400,
        {
            "error": "invalid_grant",
            "error_description": "Please update the password for the API's User record in Vantagepoint.",
        },
        "Please update the password",
        "then update DELTEK_PASSWORD",
    ),
    (
        400,
        {"error": "invalid_grant", "error_description": "Your login has been disabled."},
        "Your login has been disabled.",
        "re-enable",
    ),
]


@pytest.mark.parametrize(("status", "body", "message", "hint"), TOKEN_ERRORS)
def test_token_errors_map_to_plain_messages(rsps, client, status, body, message, hint):
    rsps.add(responses.POST, TOKEN_URL, status=status, json=body)
    with pytest.raises(DeltekAuthError) as info:
        client.token_info()
    assert message in info.value.message
    assert hint in info.value.hint
    assert str(info.value).startswith("Deltek sign-in failed: ")
    assert_no_secret(str(info.value) + repr(info.value))
    assert len(token_calls(rsps)) == 1  # a 4xx at /token is not retried


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (404, "Not Found", "text/plain"),
        (404, '{"Message":"No HTTP resource was found"}', "application/json"),
        (200, "<html><title>Vantagepoint Login</title></html>", "text/html"),
        (400, "<!DOCTYPE html><html><body>Bad Request</body></html>", "text/html"),
    ],
)
def test_token_at_wrong_url_says_api_root(rsps, client, status, body, content_type):
    rsps.add(responses.POST, TOKEN_URL, status=status, body=body, content_type=content_type)
    with pytest.raises(DeltekAuthError) as info:
        client.token_info()
    assert (
        info.value.message
        == "DELTEK_API_URL does not look like a Vantagepoint API root (expected .../api)"
    )


def test_token_unreachable_host(rsps, client, sleeps):
    rsps.add(responses.POST, TOKEN_URL, body=refused())
    with pytest.raises(DeltekAuthError) as info:
        client.token_info()
    assert info.value.message == "cannot reach acme.deltekfirst.com"
    assert info.value.status is None
    assert len(token_calls(rsps)) == 1 and sleeps == []


@pytest.fixture
def live(clock, sleeps):
    """A real server standing in for Deltek at `{url}/api`, signing in by default."""
    with scripted_server() as server:
        server.script("POST", "/api/token", default=Reply(body=TOKEN_BODY))
        yield server


TOKEN_BODY = {"access_token": ACCESS, "token_type": "bearer", "expires_in": 1799,
              "refresh_token": REFRESH}  # fmt: skip


def live_client(server: ScriptedServer, clock, sleeps, **changes) -> DeltekClient:
    return DeltekClient(
        settings(api_url=f"{server.url}/api", **changes), sleep=sleeps.append, clock=clock
    )


def test_token_5xx_is_retried(live, clock, sleeps):
    live.script("POST", "/api/token", Reply(503, "busy"), Reply(body=TOKEN_BODY))
    client = live_client(live, clock, sleeps)
    assert client.token_info()["token_type"] == "bearer"
    assert len(live.calls("POST", "/api/token")) == 2 and len(sleeps) == 1


def test_token_unreachable_host_is_retried_then_plain(clock, sleeps):
    client = DeltekClient(
        settings(api_url=closed_port() + "/api"), sleep=sleeps.append, clock=clock
    )
    with pytest.raises(DeltekAuthError) as info:
        client.token_info()
    assert info.value.message.startswith("cannot reach 127.0.0.1")
    assert len(sleeps) == 3  # refused connections are retried (bounded): nothing was sent


def test_server_echoing_the_password_is_scrubbed(rsps, client):
    token_ok(rsps)
    rsps.add(
        responses.POST,
        f"{API}/firm",
        status=400,
        json={"Message": f"bad request Password={PASSWORD} token {ACCESS}"},
    )
    with pytest.raises(DeltekError) as info:
        client.create_vendor_firm(name="A", vendor="A1")
    assert "***" in info.value.message
    assert_no_secret(str(info.value) + repr(info.value))


def test_no_secret_in_client_or_settings_repr(rsps, client):
    token_ok(rsps)
    client.token_info()
    text = repr(client) + str(client) + repr(client.settings) + str(client.settings)
    text += repr(client.stats) + repr(vars(client))
    assert_no_secret(text)
    assert "acme.deltekfirst.com" in repr(client)


# ------------------------------------------------------------------ retries


def test_get_retried_on_5xx_with_bounded_jittered_backoff(live, clock, sleeps):
    live.script(
        "GET",
        "/api/project",
        Reply(503),
        Reply(502, "<html><title>502</title></html>"),
        Reply(body=[{"WBS1": "P1"}]),
    )
    client = live_client(live, clock, sleeps)
    assert client.projects() == [{"WBS1": "P1"}]
    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0
    assert client.stats.retries == 2


def test_get_gives_up_after_max_retries(live, clock, sleeps):
    live.script("GET", "/api/project", default=Reply(500, {"Message": "boom"}))
    client = live_client(live, clock, sleeps)
    with pytest.raises(DeltekError) as info:
        client.projects()
    assert not isinstance(info.value, DeltekAmbiguousError)
    assert len(live.calls("GET", "/api/project")) == 4  # 1 + max_retries
    assert info.value.status == 500 and info.value.message == "boom"
    assert len(sleeps) == 3 and all(s <= client.backoff_cap_s for s in sleeps)


def test_get_retried_on_timeout_and_dropped_connection(live, clock, sleeps):
    live.script("GET", "/api/firm", Stall(0.6), Drop(), Reply(body=[]))
    client = live_client(live, clock, sleeps, read_timeout=0.2)
    assert client.firms() == []
    assert len(live.calls("GET", "/api/firm")) == 3 and len(sleeps) == 2


def test_get_429_honours_retry_after(live, clock, sleeps):
    live.script("GET", "/api/firm", Reply(429, "", {"Retry-After": "7"}), Reply(body=[]))
    client = live_client(live, clock, sleeps)
    assert client.firms() == []
    assert sleeps == [7.0]


def test_retry_after_longer_than_the_cap_is_capped(live, clock, sleeps):
    live.script("GET", "/api/firm", Reply(503, "", {"Retry-After": "9999"}), Reply(body=[]))
    client = live_client(live, clock, sleeps)
    assert client.firms() == []
    assert sleeps == [client.max_retry_after_s]


def test_long_read_sent_as_post_is_retried_like_a_read(live, clock, sleeps):
    live.script("POST", "/api/firm", Reply(500, {"Message": "busy"}), Reply(body=[{"Name": "A"}]))
    client = live_client(live, clock, sleeps)
    flt = [Filter("Name", "A")] + [Filter("Memo", "x" * 40, opp="!=") for _ in range(60)]
    assert client.firms(flt) == [{"Name": "A"}]
    sent = live.calls("POST", "/api/firm")
    assert len(sent) == 2 and all(c.headers.get("dvp-postAsGet") == "true" for c in sent)


@pytest.mark.parametrize("failure", [Reply(500, {"Message": "deadlock"}), Drop(), Stall(0.6)])
def test_a_write_is_never_sent_twice_after_it_was_sent(live, clock, sleeps, failure):
    live.script("POST", "/api/DataEntry/apControl", failure, Reply(201, [{"Batch": "B7"}]))
    client = live_client(live, clock, sleeps, read_timeout=0.2)
    with pytest.raises(DeltekAmbiguousError) as info:
        client.create_ap_batch({"Batch": "B7"})
    assert len(live.calls("POST", "/api/DataEntry/apControl")) == 1 and sleeps == []
    assert info.value.record == "B7"


def test_a_write_that_never_connected_is_tried_again_and_not_ambiguous(clock, sleeps):
    client = DeltekClient(
        settings(api_url=closed_port() + "/api"), sleep=sleeps.append, clock=clock
    )
    client._auth._token = Token(access=SecretStr(ACCESS), obtained_at=clock.now, expires_in=1799)
    with pytest.raises(DeltekError) as info:
        client.create_je_batch({"Batch": "J1"})
    assert not isinstance(info.value, DeltekAmbiguousError) and info.value.status is None
    assert len(sleeps) == 3  # the connect retries: nothing reached Deltek, safe to repeat


def test_write_429_is_not_retried(rsps, client, sleeps):
    token_ok(rsps)
    rsps.add(responses.POST, f"{API}/DataEntry/apControl", status=429, headers={"Retry-After": "3"})
    with pytest.raises(DeltekError) as info:
        client.create_ap_batch({"Batch": "B1"})
    assert info.value.status == 429 and not isinstance(info.value, DeltekAmbiguousError)
    assert len(api_calls(rsps)) == 1 and sleeps == []


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 500, "json": {"Message": "deadlock"}},
        {"status": 502, "body": "<html><title>502 Bad Gateway</title></html>"},
        {"status": 504, "body": ""},
        {"body": requests.ReadTimeout("read timed out")},
        {"body": requests.ConnectionError("Connection reset by peer")},
    ],
)
def test_write_failure_after_send_is_ambiguous_and_never_retried(rsps, client, sleeps, failure):
    token_ok(rsps)
    rsps.add(responses.POST, f"{API}/DataEntry/apControl", **failure)
    with pytest.raises(DeltekAmbiguousError) as info:
        client.create_ap_batch({"Batch": "B7"})
    assert len(api_calls(rsps)) == 1 and sleeps == []
    assert info.value.record == "B7"
    assert "look the record up" in str(info.value)


def test_write_that_never_connected_is_not_ambiguous(rsps, client):
    token_ok(rsps)
    rsps.add(responses.POST, f"{API}/DataEntry/jeControl", body=refused())
    with pytest.raises(DeltekError) as info:
        client.create_je_batch({"Batch": "J1"})
    assert not isinstance(info.value, DeltekAmbiguousError)
    assert len(api_calls(rsps)) == 1


def test_put_post_trans_file_timeout_is_ambiguous(rsps, client):
    token_ok(rsps)
    rsps.add(responses.PUT, f"{API}/DataEntry/PostTransFile", body=requests.ReadTimeout())
    with pytest.raises(DeltekAmbiguousError):
        client.post_batch("B1", "AP", 202611)
    assert len(api_calls(rsps)) == 1


ERROR_SHAPES = [
    (
        {"json": {"Message": "Invalid Vendor 'X' on invoice 123"}},
        "Invalid Vendor 'X' on invoice 123",
    ),
    (
        {"json": {"message": "Bad", "detail": "Period 202613 is closed"}},
        "Bad; Period 202613 is closed",
    ),
    ({"json": {"error": "bad_request", "error_description": "desc"}}, "bad_request: desc"),
    ({"json": {"errors": ["a", "b"]}}, "a; b"),
    ({"json": {"errors": {"Vendor": "unknown"}}}, "Vendor: unknown"),
    ({"json": {"errors": "flat"}}, "flat"),
    ({"body": json.dumps(json.dumps({"Message": "wrapped"}))}, "wrapped"),
    ({"body": "plain words", "content_type": "text/plain"}, "plain words"),
    (
        {
            "body": "<html><head><title>Request Rejected</title></head><body>id 9</body></html>",
            "content_type": "text/html",
        },
        "Request Rejected; id 9",
    ),
    ({"body": ""}, "Bad Request"),
]


@pytest.mark.parametrize(("reply", "message"), ERROR_SHAPES)
def test_4xx_error_bodies_of_every_shape(rsps, client, reply, message):
    token_ok(rsps)
    rsps.add(responses.POST, f"{API}/DataEntry/apControl", status=400, **reply)
    with pytest.raises(DeltekError) as info:
        client.create_ap_batch({"Batch": "B1"})
    err = info.value
    assert type(err) is DeltekError
    assert (err.status, err.method, err.path, err.message) == (
        400,
        "POST",
        "DataEntry/apControl",
        message,
    )
    assert str(err).startswith(
        f"Deltek rejected POST DataEntry/apControl (400): {message} [record B1] — "
    )


def test_403_hint_names_the_role(rsps, client):
    token_ok(rsps)
    rsps.add(responses.GET, f"{API}/PSALedger/AP", status=403, json={"Message": "Forbidden"})
    with pytest.raises(DeltekError) as info:
        client.posted_ap(202611)
    assert "role" in info.value.hint


def test_html_200_is_reported_not_parsed(rsps, client):
    token_ok(rsps)
    rsps.add(
        responses.GET,
        f"{API}/firm",
        body="<html><title>Sign in</title></html>",
        content_type="text/html",
    )
    with pytest.raises(DeltekError) as info:
        client.firms()
    assert "HTML" in info.value.message and "web UI" in info.value.hint


# ------------------------------------------------------------------ listing and filters


def test_hub_listing_pages_until_a_short_page(rsps, client):
    client.page_size = 2
    token_ok(rsps)
    rsps.add(responses.GET, f"{API}/firm", json=[{"n": 1}, {"n": 2}])
    rsps.add(responses.GET, f"{API}/firm", json=[{"n": 3}, {"n": 4}])
    rsps.add(responses.GET, f"{API}/firm", json=[{"n": 5}])
    assert [r["n"] for r in client.firms()] == [1, 2, 3, 4, 5]
    pages = [dict(query(c)) for c in api_calls(rsps)]
    assert [(p["page"], p["pageSize"]) for p in pages] == [("1", "2"), ("2", "2"), ("3", "2")]
    assert all("limit" not in p and "q.maxrows" not in p for p in pages)


def test_ledger_listing_uses_q_maxrows_never_limit(rsps, client):
    client.ledger_page_size = 2
    token_ok(rsps)
    rsps.add(responses.GET, f"{API}/PSALedger/AP", json=[{"n": 1, "Amount": "1"}, {"n": 2}])
    rsps.add(responses.GET, f"{API}/PSALedger/AP", json=[])
    client.posted_ap()
    pages = [dict(query(c)) for c in api_calls(rsps)]
    assert [p["q.maxrows"] for p in pages] == ["2", "4"]
    assert all("limit" not in p for p in pages)


def test_server_ignoring_page_but_honouring_maxrows_is_read_whole(rsps, client):
    client.ledger_page_size = 2
    token_ok(rsps)
    rows = [{"PKey": str(i), "Batch": "B", "Vendor": "V", "Invoice": f"I{i}"} for i in range(3)]

    def reply(request):
        maxrows = int(dict(parse_qsl(urlsplit(request.url).query))["q.maxrows"])
        return 200, {}, json.dumps(rows[:maxrows])

    rsps.add_callback(responses.GET, f"{API}/PSALedger/AP", callback=reply)
    assert sorted(v["Invoice"] for v in client.posted_ap()) == ["I0", "I1", "I2"]


def test_server_ignoring_paging_entirely_is_an_error_not_a_truncation(rsps, client):
    client.page_size = 2
    token_ok(rsps)
    rsps.add(responses.GET, f"{API}/project", json=[{"WBS1": "A"}, {"WBS1": "B"}])
    with pytest.raises(DeltekError) as info:
        client.projects()
    assert "ignores paging" in info.value.message


def test_nasty_invoice_filter_round_trips_in_the_url(rsps, client):
    nasty = 'INV "7" & #12 50%+1 Ünï 請求'
    token_ok(rsps)
    rsps.add(responses.GET, f"{API}/DataEntry/apLanding", json=[])
    rsps.add(
        responses.GET,
        f"{API}/PSALedger/AP",
        json=[
            {"Batch": "B", "Vendor": "V&1", "Invoice": nasty, "Amount": "10.50", "Period": 202611},
            {"Batch": "B", "Vendor": "V&1", "Invoice": nasty, "Amount": "4", "Period": "202611"},
            {"Batch": "B", "Vendor": "V&1", "Invoice": "other", "Amount": "99"},
        ],
    )
    found = client.find_ap_vouchers("V&1", nasty)
    sent = dict(query(api_calls(rsps, "/PSALedger/AP")[0]))
    assert sent["filterHash[0][name]"] == "Vendor" and sent["filterHash[0][value]"] == "V&1"
    assert sent["filterHash[1][name]"] == "Invoice" and sent["filterHash[1][value]"] == nasty
    # the server here ignored the filter; the client still returns only the exact voucher
    assert found == [
        {
            "Batch": "B",
            "Posted": "Y",
            "Period": 202611,
            "PostSeq": "",
            "Lines": 2,
            "MasterPKey": "",
            "Vendor": "V&1",
            "Invoice": nasty,
            "Voucher": "",
            "Amount": Decimal("14.50"),
        }
    ]


def test_long_filter_sets_switch_to_post_as_get(rsps, client):
    token_ok(rsps)
    rsps.add(responses.POST, f"{API}/firm", json=[{"Vendor": "V0"}])
    filters = [Filter("Vendor", f"V{i}" * 20, condition="OR") for i in range(40)]
    assert client.firms(filters) == [{"Vendor": "V0"}]
    call = api_calls(rsps)[0]
    assert call.request.method == "POST"
    assert call.request.headers["dvp-postAsGet"] == "true"
    assert urlsplit(call.request.url).query == ""
    sent = dict(parse_qsl(call.request.body.decode()))
    assert sent["filterHash[39][value]"] == "V39" * 20 and sent["page"] == "1"


def test_bare_dict_and_empty_bodies_are_rows(rsps, client):
    token_ok(rsps)
    rsps.add(responses.GET, f"{API}/project", json={"WBS1": "P"})
    assert client.projects() == [{"WBS1": "P"}]
    rsps.replace(responses.GET, f"{API}/project", body="")
    assert client.projects() == []


# ------------------------------------------------------------------ firms, accounts, period


def test_find_vendor_filters_and_checks_rows(rsps, client):
    token_ok(rsps)
    rsps.add(responses.GET, f"{API}/firm", json=[{"Vendor": "ACME"}, {"Vendor": "OTHER"}])
    assert client.find_vendor(vendor="acme") == [{"Vendor": "ACME"}]
    sent = dict(query(api_calls(rsps)[0]))
    assert sent["filterHash[0][name]"] == "Vendor" and sent["filterHash[0][opp]"] == "="
    assert client.stats.lookups == 1
    with pytest.raises(ValueError):
        client.find_vendor()


def test_create_vendor_firm_posts_vendor_flags(rsps, client):
    token_ok(rsps)
    rsps.add(
        responses.POST, f"{API}/firm", status=201, json=[{"ClientID": "abc", "Vendor": "ACME"}]
    )
    row = client.create_vendor_firm(name="Acme LLC", vendor="ACME", fed_id="12-3456789")
    assert row["ClientID"] == "abc"
    body = json.loads(api_calls(rsps)[0].request.body)
    assert body == {
        "Name": "Acme LLC",
        "Vendor": "ACME",
        "VendorInd": "Y",
        "ClientInd": "N",
        "Status": "A",
        "FedID": "12-3456789",
    }
    assert client.stats.posts == 1


def test_accounts_from_configured_path_deduplicated(rsps, clock, sleeps):
    client = DeltekClient(
        settings(accounts_path="custom/accounts"), sleep=sleeps.append, clock=clock
    )
    token_ok(rsps)
    rsps.add(
        responses.GET,
        f"{API}/custom/accounts",
        json=[
            {"Account": "5100", "Period": 1},
            {"Account": "5100", "Period": 2},
            {"Account": "2000"},
        ],
    )
    assert [a["Account"] for a in client.accounts()] == ["5100", "2000"]


def test_accounts_404_is_none(rsps, client, caplog):
    token_ok(rsps)
    rsps.add(responses.GET, f"{API}/GLSummary", status=404)
    assert client.accounts() is None
    assert "chart of accounts not readable" in caplog.text


@pytest.mark.parametrize(
    "reply",
    [
        {"json": [{"RawPeriod": "202611", "Period": "Nov 2026"}]},
        {"json": {"Period": 202611}},
        {"json": 202611},
        {"json": "202611"},
    ],
)
def test_active_period_variants(rsps, client, reply):
    token_ok(rsps)
    rsps.add(responses.GET, f"{API}/Settings/ActivePeriod", **reply)
    assert client.active_period() == 202611


def test_active_period_falls_back_to_settings_period(rsps, client):
    token_ok(rsps)
    rsps.add(responses.GET, f"{API}/Settings/ActivePeriod", status=404)
    rsps.add(responses.GET, f"{API}/Settings/Period", json=[{"Period": 202610}])
    assert client.active_period() == 202610


# ------------------------------------------------------------------ batches and look-ups


def test_get_ap_batch_attaches_masters_and_details(rsps, client):
    token_ok(rsps)
    rsps.add(responses.GET, f"{API}/DataEntry/apControl/B%231", json=[{"Batch": "B#1"}])
    rsps.add(responses.GET, f"{API}/DataEntry/apMaster/B%231", json=[{"MasterPKey": "M"}])
    rsps.add(responses.GET, f"{API}/DataEntry/apDetail/B%231", json=[{"PKey": "D"}])
    control = client.get_ap_batch("B#1")
    assert control == {
        "Batch": "B#1",
        "apMaster": [{"MasterPKey": "M"}],
        "apDetail": [{"PKey": "D"}],
    }


def test_get_batch_404_is_none_and_nested_answer_is_kept(rsps, client):
    token_ok(rsps)
    rsps.add(responses.GET, f"{API}/DataEntry/apControl/GONE", status=404)
    assert client.get_ap_batch("GONE") is None
    rsps.add(
        responses.GET,
        f"{API}/DataEntry/jeControl/J1",
        json=[{"Batch": "J1", "jeMaster": [{"RefNo": "R"}], "jeDetail": []}],
    )
    assert client.get_je_batch("J1")["jeMaster"] == [{"RefNo": "R"}]
    assert not api_calls(rsps, "/jeMaster/J1")


def test_find_ap_vouchers_unposted_and_posted(rsps, client):
    token_ok(rsps)
    rsps.add(
        responses.GET,
        f"{API}/DataEntry/apLanding",
        json=[{"Batch": "B1"}, {"Batch": "B2", "Posted": "N"}, {"Batch": "B3", "Posted": "Y"}],
    )
    rsps.add(
        responses.GET,
        f"{API}/DataEntry/apMaster/B1",
        json=[{"Batch": "B1", "MasterPKey": "M1", "Vendor": "ACME", "Invoice": "INV-1"}],
    )
    rsps.add(responses.GET, f"{API}/DataEntry/apMaster/B2", json=[])
    rsps.add(
        responses.GET,
        f"{API}/PSALedger/AP",
        json=[{"Batch": "OLD", "Vendor": "ACME", "Invoice": "INV-1", "Voucher": "V9", "Amount": 5}],
    )
    found = client.find_ap_vouchers("ACME", "INV-1")
    assert [(v["Batch"], v["MasterPKey"], v["Posted"]) for v in found] == [
        ("B1", "M1", "N"),
        ("OLD", "", "Y"),
    ]
    assert found[1]["Amount"] == Decimal("5") and found[1]["Voucher"] == "V9"
    assert not api_calls(rsps, "/apMaster/B3")  # posted batches are not read
    sent = dict(query(api_calls(rsps, "/apMaster/B1")[0]))
    assert sent["filterHash[1][value]"] == "INV-1"


def test_master_filter_rejected_falls_back_to_client_side(rsps, client):
    token_ok(rsps)
    rsps.add(responses.GET, f"{API}/DataEntry/apLanding", json=[{"Batch": "B1"}, {"Batch": "B2"}])
    rows = [
        {"MasterPKey": "M1", "Vendor": "ACME", "Invoice": "INV-1"},
        {"MasterPKey": "M2", "Vendor": "ACME", "Invoice": "INV-2"},
    ]

    def reply(request):
        if "filterHash" in request.url:
            return 400, {}, json.dumps({"Message": "filterHash not supported"})
        return 200, {}, json.dumps(rows)

    rsps.add_callback(responses.GET, f"{API}/DataEntry/apMaster/B1", callback=reply)
    rsps.add_callback(responses.GET, f"{API}/DataEntry/apMaster/B2", callback=reply)
    rsps.add(responses.GET, f"{API}/PSALedger/AP", json=[])
    found = client.find_ap_vouchers("ACME", "INV-2")
    assert [(v["Batch"], v["MasterPKey"]) for v in found] == [("B1", "M2"), ("B2", "M2")]
    # once rejected, the filter is not tried again for the next batch
    assert len(api_calls(rsps, "/apMaster/B1")) == 2 and len(api_calls(rsps, "/apMaster/B2")) == 1


def test_unposted_ap_masters_one_landing_call_plus_one_per_batch(rsps, client):
    token_ok(rsps)
    rsps.add(responses.GET, f"{API}/DataEntry/apLanding", json=[{"Batch": "B1"}, {"Batch": "B2"}])
    rsps.add(
        responses.GET,
        f"{API}/DataEntry/apMaster/B1",
        json=[{"MasterPKey": "M1", "Vendor": "A", "Invoice": "1", "Amount": "2.50"}],
    )
    rsps.add(responses.GET, f"{API}/DataEntry/apMaster/B2", status=404)  # posted meanwhile
    masters = client.unposted_ap_masters()
    assert masters == [
        {
            "Batch": "B1",
            "MasterPKey": "M1",
            "Vendor": "A",
            "Invoice": "1",
            "Voucher": "",
            "Posted": "N",
            "Amount": Decimal("2.50"),
        }
    ]
    assert len(api_calls(rsps)) == 3


def test_find_je_unposted_and_posted(rsps, client):
    token_ok(rsps)
    rsps.add(responses.GET, f"{API}/DataEntry/jeLanding", json=[{"Batch": "J1"}])
    rsps.add(
        responses.GET,
        f"{API}/DataEntry/jeMaster/J1",
        json=[{"RefNo": "PC-17"}, {"RefNo": "PC-18"}],
    )
    rsps.add(
        responses.GET,
        f"{API}/PSALedger/JE",
        json=[
            {"Batch": "J0", "RefNo": "PC-17", "Amount": "100.00", "Period": 202610, "PostSeq": 4},
            {"Batch": "J0", "RefNo": "PC-17", "Amount": "-100.00", "Period": 202610, "PostSeq": 4},
        ],
    )
    found = client.find_je("PC-17")
    assert [(j["Batch"], j["RefNo"], j["Posted"]) for j in found] == [
        ("J1", "PC-17", "N"),
        ("J0", "PC-17", "Y"),
    ]
    assert found[1]["Amount"] == Decimal("100.00") and found[1]["PostSeq"] == "4"
    assert dict(query(api_calls(rsps, "/PSALedger/JE")[0]))["filterHash[0][name]"] == "RefNo"


def test_posted_ap_filters_by_period(rsps, client):
    token_ok(rsps)
    rsps.add(responses.GET, f"{API}/PSALedger/AP", json=[])
    client.posted_ap(202611)
    sent = dict(query(api_calls(rsps)[0]))
    assert (sent["filterHash[0][name]"], sent["filterHash[0][value]"]) == ("Period", "202611")


def test_delete_batch_tolerates_404(rsps, client):
    token_ok(rsps)
    rsps.add(responses.DELETE, f"{API}/DataEntry/apControl/B1", status=404)
    assert client.delete_batch("B1", "AP") is None
    rsps.add(responses.DELETE, f"{API}/DataEntry/jeControl/J1", status=500)
    with pytest.raises(DeltekAmbiguousError):
        client.delete_batch("J1", "JE")


# ------------------------------------------------------------------ posting

POST_OK = json.dumps(
    json.dumps(
        {
            "typeList": "AP|JE",
            "batchList": "B1|B1-JE",
            "retList": "1|1",
            "periodList": "202611|202611",
            "postseqList": "194|195",
            "msg": "AP file B1; 1 of 1 records posted; Posting sequence 194",
        }
    )
)


def test_post_batch_decodes_the_json_string(rsps, client):
    token_ok(rsps)
    rsps.add(responses.PUT, f"{API}/DataEntry/PostTransFile", body=POST_OK)
    result = client.post_batch("B1", "AP", 202611, company="01")
    assert result["files"] == [
        {"type": "AP", "batch": "B1", "ret": "1", "period": "202611", "postseq": "194"},
        {"type": "JE", "batch": "B1-JE", "ret": "1", "period": "202611", "postseq": "195"},
    ]
    assert "Posting sequence 194" in result["msg"]
    body = json.loads(api_calls(rsps)[0].request.body)
    assert body == {
        "parms": {
            "batch": "B1",
            "description": "deltek-procore B1",
            "period": "202611",
            "transtype": "AP",
            "clientcompany": "01",
        }
    }
    assert "clientcompany" not in json.dumps(decode_post_result(POST_OK)["files"])


def test_post_batch_failure_in_ret_list(rsps, client):
    token_ok(rsps)
    body = json.dumps(
        json.dumps(
            {
                "typeList": "AP",
                "batchList": "B1",
                "retList": "0",
                "periodList": "202611",
                "postseqList": "",
                "msg": "Period 202611 is closed",
            }
        )
    )
    rsps.add(responses.PUT, f"{API}/DataEntry/PostTransFile", body=body)
    with pytest.raises(DeltekError) as info:
        client.post_batch("B1", "AP", 202611)
    assert not isinstance(info.value, DeltekAmbiguousError)
    assert info.value.message == "Period 202611 is closed" and info.value.record == "B1"


def test_post_batch_without_result_list_is_ambiguous(rsps, client):
    token_ok(rsps)
    rsps.add(responses.PUT, f"{API}/DataEntry/PostTransFile", body="")
    with pytest.raises(DeltekAmbiguousError):
        client.post_batch("B1", "JE", 202611)


def test_decode_post_result_accepts_object_and_array():
    raw = {
        "typeList": "JE",
        "batchList": "J",
        "retList": "1",
        "periodList": "1",
        "postseqList": "2",
    }
    assert decode_post_result(raw)["files"][0]["postseq"] == "2"
    assert decode_post_result([raw])["files"][0]["batch"] == "J"
    assert decode_post_result("not json")["files"] == []


# ------------------------------------------------------------------ helpers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1,275.50", Decimal("1275.50")),
        (1275, Decimal("1275")),
        (0.1, Decimal("0.1")),
        ("", Decimal("0")),
        (None, Decimal("0")),
        (" -3 ", Decimal("-3")),
    ],
)
def test_to_decimal(value, expected):
    assert to_decimal(value) == expected


def test_to_decimal_rejects_garbage():
    with pytest.raises(ValueError):
        to_decimal("12abc")
    assert to_decimal(None, default=None) is None


def test_decimals_and_dates_are_sent_as_json(rsps, client):
    from datetime import date

    token_ok(rsps)
    rsps.add(responses.POST, f"{API}/DataEntry/apControl", status=201, json=[])
    client.create_ap_batch({"Batch": "B", "Total": Decimal("12.30"), "EndDate": date(2026, 11, 30)})
    body = json.loads(api_calls(rsps)[0].request.body)
    assert body == {"Batch": "B", "Total": 12.3, "EndDate": "2026-11-30T00:00:00.000"}
    assert api_calls(rsps)[0].request.headers["Content-Type"].startswith("application/json")
