"""Contract tests of the Deltek simulator over real HTTP (serve_in_thread + requests)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from deltek_procore.sandbox.deltek_sim import (
    ACCOUNTS_PATH,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_DATABASE,
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    DeltekSimulator,
)
from deltek_procore.sandbox.faults import Faults
from deltek_procore.sandbox.server import serve_in_thread
from deltek_procore_tests.sandbox.deltek_fixtures import ap_batch, deltek_seed, je_batch

WEIRD_INVOICE = 'INV "7" & #2 % Ünïcødé/ü+x'


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Api:
    """A thin HTTP helper; deliberately not the product client."""

    url: str
    sim: DeltekSimulator
    clock: FakeClock
    session: requests.Session

    @property
    def root(self) -> str:
        return f"{self.url}/SANDBOX/api"

    def token(self, **overrides: str) -> requests.Response:
        form = {
            "Username": DEFAULT_USERNAME,
            "Password": DEFAULT_PASSWORD,
            "grant_type": "password",
            "Integrated": "N",
            "database": DEFAULT_DATABASE,
            "Client_Id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET,
        }
        form.update(overrides)
        return self.session.post(f"{self.root}/token", data=form, timeout=10)

    def login(self) -> dict:
        answer = self.token()
        assert answer.status_code == 200, answer.text
        body = answer.json()
        self.session.headers["Authorization"] = f"Bearer {body['access_token']}"
        return body

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, f"{self.root}/{path}", timeout=10, **kwargs)

    def get(self, path: str, params=None) -> requests.Response:
        return self.call("GET", path, params=params)

    def rows(self, path: str, params=None) -> list[dict]:
        answer = self.get(path, params)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert isinstance(body, list)
        return body

    def post(self, path: str, body) -> requests.Response:
        return self.call("POST", path, json=body)

    def put(self, path: str, body) -> requests.Response:
        return self.call("PUT", path, json=body)

    def post_batch(self, kind: str, batch: str, transtype: str, *, as_array: bool = False):
        parms = {"batch": batch, "clientcompany": "01", "description": "test",
                 "period": "202611", "transtype": transtype}  # fmt: skip
        return self.put("DataEntry/PostTransFile", {"parms": [parms] if as_array else parms})


@pytest.fixture
def api() -> Iterator[Api]:
    clock = FakeClock()
    sim = DeltekSimulator(deltek_seed(), Faults(), clock=clock)
    server = serve_in_thread(sim.app)
    try:
        yield Api(server.url, sim, clock, requests.Session())
    finally:
        server.stop()


@pytest.fixture
def authed(api: Api) -> Api:
    api.login()
    return api


def fh(*conds: tuple[str, str, str]) -> dict[str, str]:
    """filterHash query parameters from (name, opp, value) triples."""
    params: dict[str, str] = {}
    for index, (name, opp, value) in enumerate(conds):
        params[f"filterHash[{index}][name]"] = name
        params[f"filterHash[{index}][opp]"] = opp
        params[f"filterHash[{index}][value]"] = value
        params[f"filterHash[{index}][seq]"] = str(index + 1)
    return params


def message(answer: requests.Response) -> str:
    return answer.json()["Message"]


# ---------------------------------------------------------------- authentication


def test_password_grant_gives_bearer_token_with_lowercase_keys_too(api: Api) -> None:
    answer = api.session.post(
        f"{api.root}/token",
        data={
            "username": "APIUSER",
            "password": DEFAULT_PASSWORD,
            "grant_type": "password",
            "integrated": "N",
            "DATABASE": DEFAULT_DATABASE,
            "client_id": DEFAULT_CLIENT_ID,
            "CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
        },  # fmt: skip
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 1799
    firms = api.call(
        "GET", "firm", headers={"Authorization": f"Bearer {body['access_token']}"}
    ).json()
    assert isinstance(firms, list) and len(firms) == 4


def test_no_token_is_401_with_aspnet_message(api: Api) -> None:
    answer = api.get("firm")
    assert answer.status_code == 401
    assert answer.json() == {"Message": "Authorization has been denied for this request."}


def test_refresh_grant_issues_new_token_and_is_single_use(api: Api) -> None:
    first = api.login()
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
            "database": DEFAULT_DATABASE, "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET}  # fmt: skip
    again = api.session.post(f"{api.root}/token", data=form, timeout=10)
    assert again.status_code == 200, again.text
    fresh = again.json()
    assert fresh["access_token"] != first["access_token"]
    reuse = api.session.post(f"{api.root}/token", data=form, timeout=10)
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    wrong_db = api.session.post(
        f"{api.root}/token",
        data={**form, "refresh_token": fresh["refresh_token"], "database": "nope"},
        timeout=10,
    )
    assert wrong_db.status_code == 400 and wrong_db.json()["error"] == "invalid_grant"


def test_token_expires_after_ttl_then_401_then_reauth_works(api: Api) -> None:
    api.login()
    assert api.get("firm").status_code == 200
    api.clock.now += 1799
    expired = api.get("firm")
    assert expired.status_code == 401
    assert expired.json()["Message"] == "Authorization has been denied for this request."
    api.login()
    assert api.get("firm").status_code == 200


def test_token_dies_after_n_calls_when_faulted(api: Api) -> None:
    api.sim.faults.configure(token_expire_after_calls=2)
    api.login()
    assert [api.get("firm").status_code for _ in range(3)] == [200, 200, 401]
    api.login()
    assert api.get("firm").status_code == 200


@pytest.mark.parametrize(
    ("overrides", "error", "text"),
    [
        ({"Password": "wrong"}, "invalid_grant", "The user name or password is incorrect."),
        ({"Username": "someone"}, "invalid_grant", "The user name or password is incorrect."),
        ({"database": "C999_OTHER"}, "invalid_grant", "database"),
        ({"client_secret": "wrong"}, "invalid_client", "client"),
        ({"Client_Id": "other"}, "invalid_client", "client"),
        ({"grant_type": "client_credentials"}, "unsupported_grant_type", None),
    ],
)
def test_token_errors_use_owin_shape(api: Api, overrides, error, text) -> None:
    answer = api.token(**overrides)
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"] == error
    if text:
        assert text in body["error_description"]
    assert DEFAULT_PASSWORD not in answer.text and DEFAULT_CLIENT_SECRET not in answer.text


def test_disabled_password_grant_via_admin(api: Api) -> None:
    off = api.session.post(f"{api.url}/__admin/password-grant", json={"enabled": False})
    assert off.json() == {"password_grant_enabled": False}
    answer = api.token()
    assert answer.status_code == 400 and answer.json() == {"error": "unsupported_grant_type"}
    api.session.post(f"{api.url}/__admin/password-grant", json={"enabled": True})
    assert api.token().status_code == 200


# ---------------------------------------------------------------- firms, projects, settings


def test_firm_create_is_201_with_location_and_array(authed: Api) -> None:
    answer = authed.post("firm", {"Name": "Zed Electric", "VendorInd": "Y", "Client": "ZED"})
    assert answer.status_code == 201, answer.text
    rows = answer.json()
    assert isinstance(rows, list) and len(rows) == 1
    row = rows[0]
    assert len(row["ClientID"]) == 32 and int(row["ClientID"], 16) >= 0
    assert row["Vendor"] == "ZED"  # defaults to the firm number
    assert answer.headers["Location"].endswith(f"/SANDBOX/api/firm/{row['ClientID']}")
    again = authed.rows(f"firm/{row['ClientID']}")
    assert again[0]["Name"] == "Zed Electric"
    assert any(f["Vendor"] == "ZED" for f in authed.sim.firms())


def test_firm_create_requires_name_and_unique_vendor(authed: Api) -> None:
    no_name = authed.post("firm", {"VendorInd": "Y", "Vendor": "NEW1"})
    assert no_name.status_code == 400 and "Name" in message(no_name)
    dup = authed.post("firm", {"Name": "Copycat", "VendorInd": "Y", "Vendor": "ACME"})
    assert dup.status_code == 400 and "ACME" in message(dup)
    assert len(authed.sim.firms()) == 4


def test_firm_put_is_a_patch(authed: Api) -> None:
    answer = authed.put("firm/" + "b" * 32, {"FedID": "98-7654321"})
    assert answer.status_code == 200
    row = answer.json()[0]
    assert row["FedID"] == "98-7654321" and row["Name"] == "Bolt Steel Inc"
    clash = authed.put("firm/" + "b" * 32, {"Vendor": "ACME"})
    assert clash.status_code == 400
    assert authed.get("firm/" + "f" * 32).status_code == 404


def test_projects_list_phases_with_blank_as_space(authed: Api) -> None:
    rows = authed.rows("project")
    assert len(rows) == 5
    top = [r for r in rows if r["WBS1"] == "2024001.00"][0]
    assert top["WBS2"] == " " and top["WBS3"] == " "
    phases = authed.rows("project", fh(("WBS1", "=", "2024002.00"), ("WBS2", "!=", "")))
    assert sorted(r["WBS2"] for r in phases) == ["01", "02"]
    tops = authed.rows("project", fh(("WBS2", "=", "")))
    assert len(tops) == 3
    one = authed.rows("project/2024002.00")
    assert len(one) == 1 and one[0]["SubLevel"] == "Y"


def test_settings_periods(authed: Api) -> None:
    active = authed.rows("Settings/ActivePeriod")
    assert active[0]["Period"] == 202611 and active[0]["RawPeriod"] == 202611
    periods = authed.rows("Settings/Period")
    assert periods[-1]["Period"] == 202611 and periods[-1]["ActiveCompanyClosed"] == "N"
    assert periods[0]["Period"] == 202512 and periods[0]["ActiveCompanyClosed"] == "Y"


# ---------------------------------------------------------------- GLSummary: activity, not a chart


def test_glsummary_is_activity_per_period_and_account(authed: Api) -> None:
    rows = authed.rows(ACCOUNTS_PATH)
    assert [(r["Account"], r["Period"]) for r in rows] == [
        ("2000", 202510), ("2150", 202510), ("5100", 202510), ("5100", 202511), ("5999", 202401),
    ]  # fmt: skip
    first = rows[2]
    assert set(first) == {
        "Period", "Account", "Name", "Type", "Status", "GlobalAccount", "Amount", "Debit", "Credit"
    }  # fmt: skip
    assert (first["Name"], first["Amount"], first["Debit"], first["Credit"]) == (
        "Subcontract Costs",
        2500.0,
        2500.0,
        0.0,
    )
    offset = rows[1]
    assert (offset["Amount"], offset["Debit"], offset["Credit"]) == (-300.0, 0.0, 300.0)
    assert rows[-1]["Status"] == "I"  # a retired account with old activity says so
    # 5200 is in the chart (postings to it are accepted) but has no activity: absent
    assert "5200" not in {r["Account"] for r in rows}


def test_glsummary_group_by_account_and_sum_columns(authed: Api) -> None:
    rows = authed.rows(ACCOUNTS_PATH, {"groupBy": "Account", "sumColumns": "Amount"})
    by_account = {r["Account"]: r for r in rows}
    assert set(by_account) == {"2000", "2150", "5100", "5999"}
    assert by_account["5100"]["Amount"] == 3250.0 and "Period" not in by_account["5100"]
    assert "Debit" not in by_account["5100"] and by_account["5100"]["Status"] == "A"
    periods = authed.rows(ACCOUNTS_PATH, {"groupBy": "Period", "sumColumns": "Debit,Credit"})
    assert {r["Period"]: (r["Debit"], r["Credit"]) for r in periods}[202510] == (2500.0, 2800.0)
    assert all("Account" not in r and "Name" not in r for r in periods)
    filtered = authed.rows(ACCOUNTS_PATH, fh(("Account", "=", "5100")))
    assert [r["Period"] for r in filtered] == [202510, 202511]
    bad = authed.get(ACCOUNTS_PATH, {"groupBy": "Vendor"})
    assert bad.status_code == 400 and "Vendor" in message(bad)


def test_posting_to_a_valid_account_without_activity_is_accepted_and_then_listed(
    authed: Api,
) -> None:
    batch = ap_batch("GL1", [("ACME", "GL-INV-1", [80.0, 20.0])], account="5200")
    assert authed.post("DataEntry/apControl", batch).status_code == 201
    assert authed.post_batch("ap", "GL1", "AP").status_code == 200
    rows = [r for r in authed.rows(ACCOUNTS_PATH) if r["Account"] == "5200"]
    assert [(r["Period"], r["Amount"], r["Name"]) for r in rows] == [
        (202611, 100.0, "Material Costs")
    ]
    assert authed.sim.gl_summary() == authed.rows(ACCOUNTS_PATH)


def test_posting_to_an_account_not_in_the_chart_is_a_400_naming_it(authed: Api) -> None:
    answer = authed.post(
        "DataEntry/apControl", ap_batch("GL2", [("ACME", "GL-INV-2", [5.0])], account="5201")
    )
    assert answer.status_code == 400 and "Account '5201' does not exist" in message(answer)
    assert "5201" not in {r["Account"] for r in authed.rows(ACCOUNTS_PATH)}


def test_glsummary_history_must_name_chart_accounts() -> None:
    seed = deltek_seed()
    seed["gl_history"].append({"Period": 202510, "Account": "7777", "Amount": 1})
    with pytest.raises(ValueError, match="7777"):
        DeltekSimulator(seed)


def test_journal_entry_posts_credits_as_credits(authed: Api) -> None:
    assert (
        authed.post("DataEntry/jeControl", je_batch("GLJE", "JE-GL-1", 60.0, 60.0)).status_code
        == 201
    )
    assert authed.post_batch("je", "GLJE", "JE").status_code == 200
    latest = {(r["Account"], r["Period"]): r for r in authed.rows(ACCOUNTS_PATH)}
    assert (
        latest[("2150", 202611)]["Credit"] == 60.0 and latest[("2150", 202611)]["Amount"] == -60.0
    )
    assert latest[("5100", 202611)]["Debit"] == 60.0


def test_unknown_path_is_404_and_puttransfile_does_not_exist(authed: Api) -> None:
    assert authed.put("DataEntry/PutTransFile", {"parms": {}}).status_code == 404
    assert authed.get("PurchaseOrder").status_code == 404


# ---------------------------------------------------------------- AP batches and posting


def test_ap_batch_create_readback_and_post(authed: Api) -> None:
    body = ap_batch("B0001", [("ACME", "INV-1", [100.0, 250.5]), ("BOLT-01", "INV-2", [40.0])])
    created = authed.post("DataEntry/apControl", body)
    assert created.status_code == 201, created.text
    assert created.headers["Location"].endswith("/DataEntry/apControl/B0001")
    assert isinstance(created.json(), list) and created.json()[0]["Batch"] == "B0001"
    control = authed.rows("DataEntry/apControl/B0001")[0]
    assert control["Period"] == 202611 and control["SumTotal"] == 390.5
    assert control["DiffTotal"] == 0
    masters = authed.rows("DataEntry/apMaster/B0001")
    assert [m["Invoice"] for m in masters] == ["INV-1", "INV-2"]
    assert all(m["Voucher"] for m in masters)
    assert len(authed.rows("DataEntry/apDetail/B0001")) == 3
    assert [b["Batch"] for b in authed.rows("DataEntry/apLanding")] == ["B0001"]

    answer = authed.post_batch("ap", "B0001", "AP")
    assert answer.status_code == 200, answer.text
    decoded = answer.json()
    assert isinstance(decoded, str)  # a JSON string holding JSON
    result = json.loads(decoded)
    assert result["typeList"] == "AP" and result["batchList"] == "B0001"
    assert result["retList"] == "1" and result["periodList"] == "202611"
    seq = int(result["postseqList"])
    assert "2 of 2 records posted" in result["msg"]

    ledger = authed.rows("PSALedger/AP", fh(("Batch", "=", "B0001")))
    assert len(ledger) == 3
    assert {r["PostSeq"] for r in ledger} == {seq} and {r["Period"] for r in ledger} == {202611}
    assert sorted(r["Amount"] for r in ledger) == [40.0, 100.0, 250.5]
    assert {r["Invoice"] for r in ledger} == {"INV-1", "INV-2"}
    assert {r["TransType"] for r in ledger} == {"AP"}
    assert authed.rows("DataEntry/apLanding") == []
    assert authed.get("DataEntry/apControl/B0001").status_code == 404
    vouchers = authed.sim.ap_vouchers()
    assert {v["Posted"] for v in vouchers} == {"Y"} and len(vouchers[0]["apDetail"]) == 2


def test_post_trans_file_accepts_parms_array_and_several_files(authed: Api) -> None:
    authed.post("DataEntry/apControl", ap_batch("B1", [("ACME", "A1", [10.0])]))
    authed.post("DataEntry/jeControl", je_batch("J1", "R-1", 75.0, 75.0))
    parms = [{"batch": "B1", "period": "202611", "transtype": "AP"},
             {"batch": "J1", "period": 202611, "transtype": "JE", "description": "je"}]  # fmt: skip
    answer = authed.put("DataEntry/PostTransFile", {"parms": parms})
    assert answer.status_code == 200, answer.text
    result = json.loads(answer.json())
    assert result["typeList"] == "AP|JE" and result["batchList"] == "B1|J1"
    first, second = (int(x) for x in result["postseqList"].split("|"))
    assert second == first + 1
    assert "\r\n" in result["msg"]
    je_rows = authed.rows("PSALedger/JE")
    assert sorted(r["Amount"] for r in je_rows) == [-75.0, 75.0]
    assert {r["RefNo"] for r in je_rows} == {"R-1"}


def test_post_with_array_parms_single(authed: Api) -> None:
    authed.post("DataEntry/apControl", ap_batch("B2", [("ACME", "A2", [5.0])]))
    answer = authed.post_batch("ap", "B2", "AP", as_array=True)
    assert answer.status_code == 200
    assert json.loads(answer.json())["batchList"] == "B2"


def test_control_total_mismatch_blocks_posting(authed: Api) -> None:
    authed.post("DataEntry/apControl", ap_batch("B3", [("ACME", "A3", [5.0])], total=6.0))
    answer = authed.post_batch("ap", "B3", "AP")
    assert answer.status_code == 400
    assert "control total mismatch" in message(answer)
    assert authed.rows("PSALedger/AP") == []
    fixed = authed.put("DataEntry/apControl/B3", {"Total": 5.0})
    assert fixed.status_code == 200 and fixed.json()[0]["DiffTotal"] == 0
    assert authed.post_batch("ap", "B3", "AP").status_code == 200


def test_posting_unknown_batch_or_closed_period_is_400(authed: Api) -> None:
    sim = authed.sim
    assert authed.post_batch("ap", "NOPE", "AP").status_code == 400
    authed.post("DataEntry/apControl", ap_batch("B4", [("ACME", "A4", [5.0])]))
    future = authed.put(
        "DataEntry/PostTransFile",
        {"parms": {"batch": "B4", "period": str(sim.active_period + 1), "transtype": "AP"}},
    )
    assert future.status_code == 400 and "not open" in message(future)
    sim.closed_periods.add(202610)
    closed = authed.put(
        "DataEntry/PostTransFile",
        {"parms": {"batch": "B4", "period": "202610", "transtype": "AP"}},
    )
    assert closed.status_code == 400 and "202610" in message(closed)


def test_put_control_upserts_masters_and_delete_removes_batch(authed: Api) -> None:
    authed.post("DataEntry/apControl", ap_batch("B5", [("ACME", "A5", [5.0])]))
    extra = ap_batch("B5", [("BOLT-01", "A6", [7.0])])
    extra["apMaster"][0]["MasterPKey"] = "F" * 32
    for line in extra["apDetail"]:
        line["MasterPKey"] = "F" * 32
        line["PKey"] = "EXTRA-" + line["PKey"]
    answer = authed.put("DataEntry/apControl/B5", {"Total": 12.0, "apMaster": extra["apMaster"],
                                                   "apDetail": extra["apDetail"]})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()[0]["SumTotal"] == 12.0
    assert len(authed.rows("DataEntry/apMaster/B5")) == 2
    deleted = authed.call("DELETE", "DataEntry/apControl/B5")
    assert deleted.status_code == 200
    assert authed.get("DataEntry/apControl/B5").status_code == 404
    again = authed.post("DataEntry/apControl", ap_batch("B6", [("ACME", "A5", [5.0])]))
    assert again.status_code == 201  # the invoice is free again once its batch is deleted


def test_je_batch_detail_readback_has_account_names(authed: Api) -> None:
    created = authed.post("DataEntry/jeControl", je_batch("J2", "R-2", 10.0, 10.0))
    assert created.status_code == 201, created.text
    lines = authed.rows("DataEntry/jeDetail/J2")
    debit = [line for line in lines if line["DebitAmount"] == 10.0][0]
    assert debit["AccountName"] == "Subcontract Costs" and debit["WBS1Name"]
    assert authed.rows("DataEntry/jeMaster/J2")[0]["RefNo"] == "R-2"
    assert authed.sim.journal_entries()[0]["jeDetail"][0]["Batch"] == "J2"


# ---------------------------------------------------------------- validation


def _bad_ap(**changes) -> dict:
    body = ap_batch("BAD1", [("ACME", "OK-1", [10.0]), ("ACME", "BAD-INV", [20.0])])
    master = body["apMaster"][1]
    detail = body["apDetail"][1]
    for key, value in changes.items():
        target, name = key.split("__")
        {"m": master, "d": detail, "c": body}[target][name] = value
    return body


@pytest.mark.parametrize(
    ("changes", "needles"),
    [
        ({"m__Vendor": "NOBODY"}, ["BAD-INV", "Vendor", "NOBODY"]),
        ({"m__Vendor": "OLDV"}, ["BAD-INV", "Vendor", "not an active vendor"]),
        ({"m__Vendor": "OWNERX"}, ["BAD-INV", "Vendor", "not an active vendor"]),
        ({"d__WBS1": "1999999.99"}, ["BAD-INV", "WBS1", "does not exist"]),
        ({"d__WBS1": "2019009.00"}, ["BAD-INV", "WBS1", "not active"]),
        ({"d__WBS1": "2024002.00"}, ["BAD-INV", "WBS2", "required"]),
        ({"d__WBS1": "2024002.00", "d__WBS2": "02"}, ["BAD-INV", "WBS2", "not active"]),
        ({"d__WBS1": "2024002.00", "d__WBS2": "77"}, ["BAD-INV", "WBS2", "does not exist"]),
        ({"d__Account": "8888"}, ["BAD-INV", "Account", "8888"]),
        ({"d__Account": "5999"}, ["BAD-INV", "Account", "not active"]),
        ({"d__MasterPKey": "0" * 32}, ["apDetail", "MasterPKey", "no apMaster"]),
        ({"m__Invoice": "OK-1"}, ["OK-1", "twice"]),
        ({"c__Period": 202701}, ["Period", "202701", "not open"]),
        ({"c__Period": "202612"}, ["Period", "202612", "not open"]),
        ({"d__Amount": "abc"}, ["BAD-INV", "Amount"]),
    ],
)
def test_one_bad_voucher_fails_whole_batch(authed: Api, changes, needles) -> None:
    answer = authed.post("DataEntry/apControl", _bad_ap(**changes))
    assert answer.status_code == 400, answer.text
    text = message(answer)
    for needle in needles:
        assert needle in text
    assert authed.rows("DataEntry/apLanding") == []
    assert authed.sim.ap_vouchers() == []


def test_batch_name_rules(authed: Api) -> None:
    long = authed.post("DataEntry/apControl", ap_batch("X" * 33, [("ACME", "L1", [1.0])]))
    assert long.status_code == 400 and "32" in message(long)
    assert authed.post("DataEntry/apControl", ap_batch("X" * 32, [("ACME", "L1", [1.0])])).ok
    dup = authed.post("DataEntry/apControl", ap_batch("X" * 32, [("ACME", "L2", [1.0])]))
    assert dup.status_code == 400 and "already exists (unposted)" in message(dup)
    assert authed.post_batch("ap", "X" * 32, "AP").status_code == 200
    dup_posted = authed.post("DataEntry/apControl", ap_batch("X" * 32, [("ACME", "L3", [1.0])]))
    assert dup_posted.status_code == 400 and "already exists (posted)" in message(dup_posted)


def test_duplicate_vendor_invoice_on_other_voucher_unposted_and_posted(authed: Api) -> None:
    assert authed.post("DataEntry/apControl", ap_batch("D1", [("ACME", "INV-9", [1.0])])).ok
    again = authed.post("DataEntry/apControl", ap_batch("D2", [("ACME", "INV-9", [2.0])]))
    assert again.status_code == 400
    assert "INV-9" in message(again) and "D1" in message(again)
    other_vendor = authed.post("DataEntry/apControl", ap_batch("D3", [("BOLT-01", "INV-9", [2])]))
    assert other_vendor.status_code == 201
    authed.post_batch("ap", "D1", "AP")
    posted = authed.post("DataEntry/apControl", ap_batch("D4", [("ACME", "INV-9", [2.0])]))
    assert posted.status_code == 400 and "INV-9" in message(posted)


def test_je_must_balance_per_refno(authed: Api) -> None:
    answer = authed.post("DataEntry/jeControl", je_batch("J3", "R-3", 100.0, 99.99))
    assert answer.status_code == 400
    assert "R-3" in message(answer) and "balanced" in message(answer)
    assert authed.rows("DataEntry/jeLanding") == []


def test_je_detail_without_master_is_rejected(authed: Api) -> None:
    body = je_batch("J4", "R-4", 5.0, 5.0)
    body["jeDetail"][1]["RefNo"] = "R-404"
    answer = authed.post("DataEntry/jeControl", body)
    assert answer.status_code == 400 and "R-404" in message(answer)


# ---------------------------------------------------------------- listing and filtering


def _many_vouchers(api: Api, count: int, batch: str = "P1") -> None:
    vouchers = [("ACME", f"INV-{i:04d}", [float(i)]) for i in range(1, count + 1)]
    assert api.post("DataEntry/apControl", ap_batch(batch, vouchers)).status_code == 201


def test_paging_page_pagesize_offset_and_maxrows(authed: Api) -> None:
    _many_vouchers(authed, 25)
    path = "DataEntry/apMaster/P1"
    page2 = authed.rows(path, {"page": 2, "pageSize": 10})
    assert [m["Invoice"] for m in page2] == [f"INV-{i:04d}" for i in range(11, 21)]
    last = authed.rows(path, {"page": 3, "pageSize": 10})
    assert len(last) == 5
    offset = authed.rows(path, {"offset": 20, "q.maxrows": 3})
    assert [m["Invoice"] for m in offset] == ["INV-0021", "INV-0022", "INV-0023"]
    assert len(authed.rows(path, {"q.maxrows": 4})) == 4
    assert authed.get(path, {"limit": 5}).status_code == 500
    assert authed.get("DataEntry/apLanding", {"limit": 5}).status_code == 500
    assert authed.get("PSALedger/AP", {"limit": 5}).status_code == 500
    assert len(authed.rows("firm", {"limit": 2})) == 2  # hubs accept limit


def test_field_filter_and_order(authed: Api) -> None:
    _many_vouchers(authed, 5)
    rows = authed.rows("DataEntry/apDetail/P1", {"fieldFilter": "PKey,Amount", "order": "Amount_D"})
    assert all(set(r) == {"PKey", "Amount"} for r in rows)
    assert [r["Amount"] for r in rows] == [5.0, 4.0, 3.0, 2.0, 1.0]
    firms = authed.rows("firm", {"fieldFilter": "Name,Vendor", "order": "Name"})
    assert [f["Name"] for f in firms][0] == "Acme Concrete LLC"
    bad = authed.get("firm", fh(("NoSuchColumn", "=", "x")))
    assert bad.status_code == 400


def test_filterhash_exact_match_on_awkward_invoice_numbers(authed: Api) -> None:
    tricky = [WEIRD_INVOICE, WEIRD_INVOICE[:-1], 'INV "7"', "INV %", "inv-1", "INV-1", "INV_1"]
    vouchers = [("ACME", inv, [float(n + 1)]) for n, inv in enumerate(tricky)]
    assert authed.post("DataEntry/apControl", ap_batch("F1", vouchers)).status_code == 201
    for invoice in tricky:
        rows = authed.rows("DataEntry/apMaster/F1", fh(("Invoice", "=", invoice)))
        assert [r["Invoice"] for r in rows] == [invoice]
    assert authed.post_batch("ap", "F1", "AP").status_code == 200
    for invoice in tricky:
        params = fh(("Vendor", "=", "ACME"), ("Invoice", "=", invoice))
        rows = authed.rows("PSALedger/AP", params)
        assert [r["Invoice"] for r in rows] == [invoice]
    like = authed.rows("PSALedger/AP", fh(("Invoice", "like", "INV%")))
    assert len(like) == 6  # everything but "inv-1": case matters
    underscore = authed.rows("PSALedger/AP", fh(("Invoice", "like", "INV_1")))
    assert sorted(r["Invoice"] for r in underscore) == ["INV-1", "INV_1"]
    literal = authed.rows("PSALedger/AP", fh(("Invoice", "like", "%Ünïcødé%")))
    assert len(literal) == 2


def test_filterhash_operators(authed: Api) -> None:
    _many_vouchers(authed, 6)
    path = "DataEntry/apDetail/P1"
    assert len(authed.rows(path, fh(("Amount", ">=", "4")))) == 3
    assert len(authed.rows(path, fh(("Amount", "gt", "4")))) == 2
    assert len(authed.rows(path, fh(("Amount", "<", "2")))) == 1
    assert len(authed.rows(path, fh(("Amount", "le", "2")))) == 2
    assert len(authed.rows(path, fh(("Amount", "ne", "2")))) == 5
    assert len(authed.rows(path, fh(("Amount", "eq", "2.00")))) == 1
    assert len(authed.rows(path, fh(("Amount", "in", "1,3,5")))) == 3
    either = fh(("Amount", "=", "1"), ("Amount", "=", "6"))
    either["filterHash[1][condition]"] = "OR"
    assert len(authed.rows(path, either)) == 2
    assert authed.get(path, fh(("Amount", "~", "1"))).status_code == 400


def test_post_as_get_with_form_body(authed: Api) -> None:
    _many_vouchers(authed, 3)
    authed.post_batch("ap", "P1", "AP")
    answer = authed.session.post(
        f"{authed.root}/PSALedger/AP",
        data=fh(("Invoice", "=", "INV-0002")),
        headers={"dvp-postAsGet": "true"},
        timeout=10,
    )
    assert answer.status_code == 200
    assert [r["Invoice"] for r in answer.json()] == ["INV-0002"]
    assert authed.sim.call_counts()["POST PSALedger/AP"] == 1


# ---------------------------------------------------------------- faults


def test_lost_response_commits_then_answers_502_html(authed: Api) -> None:
    authed.sim.faults.configure(rate_lost_response=1.0)
    answer = authed.post("DataEntry/apControl", ap_batch("L1", [("ACME", "LOST-1", [9.0])]))
    assert answer.status_code == 502
    assert answer.headers["content-type"].startswith("text/html") and "Bad Gateway" in answer.text
    authed.sim.faults.configure(rate_lost_response=0.0)
    assert authed.rows("DataEntry/apControl/L1")[0]["Batch"] == "L1"
    retry = authed.post("DataEntry/apControl", ap_batch("L1", [("ACME", "LOST-1", [9.0])]))
    assert retry.status_code == 400  # a blind retry is refused: the batch exists


def test_hidden_amounts_read_back_as_zero_but_are_stored(authed: Api) -> None:
    authed.post("DataEntry/apControl", ap_batch("H1", [("ACME", "H-1", [123.45])]))
    authed.session.post(f"{authed.url}/__admin/faults", json={"hide_amounts": True})
    detail = authed.rows("DataEntry/apDetail/H1")[0]
    assert detail["Amount"] == 0 and detail["NetAmount"] == 0 and detail["PaymentAmount"] == 0
    assert authed.rows("DataEntry/apControl/H1")[0]["Total"] == 0
    assert authed.sim.ap_vouchers()[0]["apDetail"][0]["Amount"] == 123.45
    assert authed.post_batch("ap", "H1", "AP").status_code == 200  # totals still match inside
    assert authed.rows("PSALedger/AP")[0]["Amount"] == 0
    assert authed.sim.ledger("AP")[0]["Amount"] == 123.45


def test_429_and_5xx_faults(authed: Api) -> None:
    authed.sim.faults.configure(rate_429=1.0, burst_429=1)
    answer = authed.get("firm")
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "1"
    authed.sim.faults.configure(rate_429=0.0, rate_5xx=1.0)
    assert authed.get("firm").status_code in (500, 502, 503)
    authed.sim.faults.reset()
    assert authed.get("firm").status_code == 200


def test_latency_is_added(authed: Api) -> None:
    authed.sim.faults.configure(latency_ms=150)
    started = time.monotonic()
    authed.get("firm")
    assert time.monotonic() - started >= 0.15


def test_admin_state_and_calls(authed: Api) -> None:
    authed.get("firm")
    authed.get("firm")
    calls = authed.session.get(f"{authed.url}/__admin/calls").json()
    assert calls["GET firm"] == 2 and calls["POST token"] == 1
    state = authed.session.get(f"{authed.url}/__admin/state").json()
    assert state["active_period"] == 202611 and len(state["firms"]) == 4
    assert DEFAULT_PASSWORD not in json.dumps(state)
    bad = authed.session.post(f"{authed.url}/__admin/faults", json={"nonsense": 1})
    assert bad.status_code == 400


# ---------------------------------------------------------------- scale


def test_ten_thousand_vouchers_keep_lookups_fast(authed: Api) -> None:
    for part in range(10):
        vouchers = [("ACME", f"S{part}-{i:04d}", [1.0]) for i in range(1000)]
        answer = authed.post("DataEntry/apControl", ap_batch(f"S{part}", vouchers))
        assert answer.status_code == 201
        assert authed.post_batch("ap", f"S{part}", "AP").status_code == 200
    started = time.perf_counter()
    rows = authed.rows("PSALedger/AP", fh(("Vendor", "=", "ACME"), ("Invoice", "=", "S7-0123")))
    lookup = time.perf_counter() - started
    assert [r["Invoice"] for r in rows] == ["S7-0123"]
    assert lookup < 0.1
    started = time.perf_counter()
    dup = authed.post("DataEntry/apControl", ap_batch("S99", [("ACME", "S3-0999", [1.0])]))
    assert dup.status_code == 400 and time.perf_counter() - started < 0.1
    assert len(authed.sim.ap_vouchers()) == 10_000


# ---------------------------------------------------------------- the shared sandbox seed


def test_real_sandbox_seed_loads_and_a_voucher_posts() -> None:
    seed = pytest.importorskip("deltek_procore.sandbox.seed")
    data = seed.build(records=200)
    sim = DeltekSimulator(data.deltek)
    vendor = next(f for f in data.deltek["firms"] if f["VendorInd"] == "Y" and f["Status"] == "A")
    project = next(
        p
        for p in data.deltek["projects"]
        if p["Status"] == "A" and p.get("SubLevel") != "Y" and not str(p["WBS2"]).strip()
    )
    account = next(a for a in data.deltek["accounts"] if a["Status"] == "A")
    with serve_in_thread(sim.app) as server:
        api = Api(server.url, sim, FakeClock(), requests.Session())
        api.login()
        assert len(api.rows("firm")) == len(data.deltek["firms"])
        body = ap_batch(
            "SEED1",
            [(vendor["Vendor"], "SEED-INV-1", [12.5])],
            wbs=(project["WBS1"], " ", " "),
            account=account["Account"],
        )
        assert api.post("DataEntry/apControl", body).status_code == 201
        assert api.post_batch("ap", "SEED1", "AP").status_code == 200
        assert api.rows("PSALedger/AP")[0]["WBS1"] == project["WBS1"]
