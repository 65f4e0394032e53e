"""`deltek-procore ping` against the real sandbox over HTTP, one broken setting at a time."""

from __future__ import annotations

import json
import socket
import uuid
from decimal import Decimal

import pytest

from deltek_procore import ping
from deltek_procore.connections import deltek_settings
from deltek_procore.deltek.client import DeltekClient
from deltek_procore.ping import (
    Check,
    PingReport,
    judge_amounts,
    network_problem,
    procore_environment_problem,
    render,
    run_ping,
)
from deltek_procore.sandbox.procore_sim import ProcoreSimulator
from deltek_procore.sandbox.runner import start_sandbox
from deltek_procore.sandbox.server import serve_in_thread

TIMEOUT = 3.0


@pytest.fixture
def box(tmp_path):
    sandbox = start_sandbox(records=300, workdir=tmp_path)
    yield sandbox
    sandbox.stop()


@pytest.fixture
def env(box, tmp_path) -> dict[str, str]:
    # DAGSTER_HOME keeps the credential store look-up inside the test's folder.
    return {**box.env, "DAGSTER_HOME": str(tmp_path)}


def status(report: PingReport, system: str, name: str) -> str | None:
    check = report.find(system, name)  # type: ignore[arg-type]
    return None if check is None else check.status


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def override(app, path: str, status_code: int, body: object, headers: dict | None = None):
    """ASGI wrapper answering `path` itself, to play a Procore admin's settings."""
    payload = json.dumps(body).encode()
    extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]

    async def wrapped(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == path:
            await send(
                {
                    "type": "http.response.start",
                    "status": status_code,
                    "headers": [(b"content-type", b"application/json"), *extra],
                }
            )
            await send({"type": "http.response.body", "body": payload})
            return
        await app(scope, receive, send)

    return wrapped


def serve_procore(box, path: str, status_code: int, body: object, headers=None):
    sim = ProcoreSimulator(box.data)
    return serve_in_thread(override(sim.app, path, status_code, body, headers))


def post_one_voucher(box, env, account: str | None = None) -> Decimal:
    """Post a voucher straight through the Deltek client, as a finished sync would."""
    client = DeltekClient(deltek_settings(env))
    seed = box.data.deltek
    vendor = next(f for f in seed["firms"] if f.get("VendorInd") == "Y" and f["Status"] == "A")
    project = next(
        p
        for p in seed["projects"]
        if p["Status"] == "A" and not str(p.get("WBS2") or "").strip() and p["SubLevel"] != "Y"
    )
    account = next(
        a
        for a in seed["accounts"]
        if (a["Account"] == account if account else str(a["Account"]).startswith("5"))
        and a["Status"] == "A"
    )
    period = client.active_period()
    batch = "PING" + uuid.uuid4().hex[:12].upper()
    master = uuid.uuid4().hex
    amount = Decimal("1234.56")
    control = {
        "Batch": batch,
        "Description": "ping test",
        "Period": period,
        "Total": amount,
        "Posted": "N",
        "apMaster": [
            {"Batch": batch, "MasterPKey": master, "Vendor": vendor["Vendor"],
             "Invoice": "PING-1", "InvoiceDate": "2026-11-03T00:00:00.000",
             "TransDate": "2026-11-03T00:00:00.000", "LiabCode": "AP", "BankCode": "OPER",
             "PayTerms": "Next", "Seq": 1}
        ],
        "apDetail": [
            {"Batch": batch, "MasterPKey": master, "PKey": uuid.uuid4().hex, "Seq": 1,
             "Description": "concrete", "WBS1": project["WBS1"], "WBS2": " ", "WBS3": " ",
             "Account": account["Account"], "Amount": amount}
        ],
    }  # fmt: skip
    client.create_ap_batch(control)
    client.post_batch(batch, "AP", period, company=seed.get("company"))
    return amount


# ---------------------------------------------------------------- against the sandbox


def test_all_green_against_the_sandbox(env):
    report = run_ping(env, timeout=TIMEOUT)
    assert report.ok, render(report, colour=False)
    assert report.failures == []
    expected = {
        "procore": ["configuration", "token", "company", "permitted projects", "vendors",
                    "cost types", "cost codes", "subcontractor invoices", "direct costs",
                    "work order contracts", "purchase order contracts",
                    "commitment change orders", "webhooks"],
        "deltek": ["configuration", "token", "tenant", "firm hub", "project hub",
                   "GL accounts", "amount visibility"],
    }  # fmt: skip
    for system, names in expected.items():
        assert [c.name for c in report.by_system(system)] == names  # type: ignore[arg-type]
    assert "expires in 5400 s" in report.find("procore", "token").detail
    assert report.find("procore", "permitted projects").detail.startswith("6 permitted: ")
    assert "active period 2026-11" in report.find("deltek", "tenant").detail
    # GLSummary lists accounts with activity: the seeded 5400 is valid but unused so far
    accounts = report.find("deltek", "GL accounts")
    assert accounts.ok is True, accounts.detail
    assert "10 account(s) with activity in GLSummary" in accounts.detail
    assert "7 confirmed (2150, 2160, 5100, 5200, 5300, 5310, 5500)" in accounts.detail
    assert "1 not yet used in Deltek (5400)" in accounts.detail
    webhooks = report.find("procore", "webhooks")
    assert webhooks.ok is True and "no deltek-procore hook registered" in webhooks.detail
    # A fresh sandbox has posted nothing: said as a warning, not a failure.
    visibility = report.find("deltek", "amount visibility")
    assert visibility.ok is None and "nothing posted" in visibility.detail
    text = render(report, colour=False)
    assert "FAIL" not in text and "\033[" not in text
    assert "All checks passed" in text


def test_wrong_deltek_password_is_named_and_never_printed(env):
    wrong = "Hunter2-wrong-" + uuid.uuid4().hex
    report = run_ping({**env, "DELTEK_PASSWORD": wrong}, timeout=TIMEOUT)
    assert not report.ok
    token = report.find("deltek", "token")
    assert token.ok is False
    assert "username or password" in token.detail
    assert "DELTEK_PASSWORD" in token.fix
    assert status(report, "deltek", "tenant") is None  # nothing further tried
    assert status(report, "procore", "token") == "OK"  # the other side is unaffected
    text = render(report, colour=False)
    assert wrong not in text and wrong not in repr(report)
    assert "What to fix:" in text and "1 check(s) failed" in text


def test_wrong_procore_secret(env):
    wrong = "not-the-secret-" + uuid.uuid4().hex
    report = run_ping({**env, "PROCORE_CLIENT_SECRET": wrong}, timeout=TIMEOUT)
    assert not report.ok
    token = report.find("procore", "token")
    assert token.ok is False
    assert "refused the app's client credentials (HTTP 401)" in token.detail
    assert "invalid_client" in token.detail
    assert "PROCORE_CLIENT_SECRET" in token.fix and "login-sandbox.procore.com" in token.fix
    assert status(report, "procore", "company") is None
    assert wrong not in render(report)
    assert status(report, "deltek", "token") == "OK"


@pytest.mark.parametrize("path", ["/WRONG/api", "/SANDBOX/web"])
def test_wrong_tenant_url(env, path):
    root = env["DELTEK_API_URL"].rsplit("/SANDBOX/api", 1)[0]
    report = run_ping({**env, "DELTEK_API_URL": root + path}, timeout=TIMEOUT)
    token = report.find("deltek", "token")
    assert token.ok is False and not report.ok
    assert "DELTEK_API_URL does not look like a Vantagepoint API root" in token.detail
    if not path.endswith("/api"):
        assert report.find("deltek", "configuration").ok is None


def test_wrong_database(env):
    report = run_ping({**env, "DELTEK_DATABASE": "C0000042000P_1_WRONG"}, timeout=TIMEOUT)
    token = report.find("deltek", "token")
    assert token.ok is False
    assert "database 'C0000042000P_1_WRONG'" in token.detail
    assert "DELTEK_DATABASE" in token.fix


def test_disabled_password_grant(box, env):
    box.deltek.set_password_grant(False)
    report = run_ping(env, timeout=TIMEOUT)
    token = report.find("deltek", "token")
    assert token.ok is False and not report.ok
    assert "password grant" in token.detail
    assert "Allow Password Grant Type" in token.fix


def test_unreachable_hosts(env):
    port = closed_port()
    broken = {
        **env,
        "DELTEK_API_URL": f"http://127.0.0.1:{port}/SANDBOX/api",
        "PROCORE_AUTH_URL": f"http://127.0.0.1:{port}/oauth/token",
    }
    report = run_ping(broken, timeout=TIMEOUT)
    assert not report.ok
    for system, variable in (("deltek", "DELTEK_API_URL"), ("procore", "PROCORE_AUTH_URL")):
        token = report.find(system, "token")
        assert token.ok is False
        assert token.detail == f"connection refused by 127.0.0.1:{port}: nothing is listening there"
        assert variable in token.fix
    assert report.elapsed_s < 10


def test_deltek_timeout_is_told_apart_from_refusal(box, env):
    box.deltek.faults.configure(rate_timeout=1.0, timeout_s=2.0)
    report = run_ping(env, timeout=0.3)
    token = report.find("deltek", "token")
    assert token.ok is False
    assert "accepts connections but did not answer within 0.3 s" in token.detail


def test_hidden_amounts_after_a_posted_voucher(box, env):
    post_one_voucher(box, env)
    visible = run_ping(env, timeout=TIMEOUT).find("deltek", "amount visibility")
    assert visible.ok is True and "posted AP ledger" in visible.detail

    box.deltek.faults.configure(hide_amounts=True)
    report = run_ping(env, timeout=TIMEOUT)
    check = report.find("deltek", "amount visibility")
    assert check.ok is False and not report.ok
    assert check.detail.startswith(
        "amounts read back as 0: the API user's role cannot see amount fields; grant field "
        "visibility (checked 1 row(s) of the posted AP ledger"
    )
    assert "field visibility" in check.fix


def test_unposted_voucher_is_inspected_when_nothing_is_posted(box, env):
    client = DeltekClient(deltek_settings(env))
    seed = box.data.deltek
    vendor = next(f for f in seed["firms"] if f.get("VendorInd") == "Y" and f["Status"] == "A")
    account = next(a for a in seed["accounts"] if str(a["Account"]).startswith("5"))
    batch, master = "PINGU" + uuid.uuid4().hex[:10].upper(), uuid.uuid4().hex
    client.create_ap_batch(
        {"Batch": batch, "Description": "ping", "Period": client.active_period(),
         "Total": Decimal("50"), "Posted": "N",
         "apMaster": [{"Batch": batch, "MasterPKey": master, "Vendor": vendor["Vendor"],
                       "Invoice": "PING-U", "InvoiceDate": "2026-11-03T00:00:00.000",
                       "TransDate": "2026-11-03T00:00:00.000", "LiabCode": "AP",
                       "BankCode": "OPER", "PayTerms": "Next", "Seq": 1}],
         "apDetail": [{"Batch": batch, "MasterPKey": master, "PKey": uuid.uuid4().hex,
                       "Seq": 1, "Description": "x", "WBS1": "", "WBS2": "", "WBS3": "",
                       "Account": account["Account"], "Amount": Decimal("50")}]}
    )  # fmt: skip
    box.deltek.faults.configure(hide_amounts=True)
    check = run_ping(env, timeout=TIMEOUT).find("deltek", "amount visibility")
    assert check.ok is False
    assert check.detail.startswith("amounts read back as 0")
    assert f"of the unposted AP voucher lines of batch {batch}" in check.detail


def test_accounts_path_404_is_a_warning(env):
    report = run_ping({**env, "DELTEK_ACCOUNTS_PATH": "NoSuchAccounts"}, timeout=TIMEOUT)
    check = report.find("deltek", "GL accounts")
    assert check.ok is None
    assert "Deltek checks every account when a batch posts" in check.detail
    assert report.ok  # a warning does not fail ping


def test_an_inactive_mapped_account_is_a_warning_and_unused_ones_are_not(box, env, tmp_path):
    text = box.mappings_path.read_text().replace('account: "5500"', 'account: "5950"')
    assert '"5950"' in text
    mapping = tmp_path / "inactive.yaml"
    mapping.write_text(text)
    report = run_ping({**env, "DELTEK_PROCORE_MAPPINGS": str(mapping)}, timeout=TIMEOUT)
    check = report.find("deltek", "GL accounts")
    assert check.ok is None, check.detail
    assert "1 inactive in Deltek (5950)" in check.detail
    assert "1 not yet used in Deltek (5400)" in check.detail
    assert "reactivate" in check.fix and report.ok


def test_a_missing_mapping_file_is_a_warning(env, tmp_path):
    missing = tmp_path / "nowhere.yaml"
    report = run_ping({**env, "DELTEK_PROCORE_MAPPINGS": str(missing)}, timeout=TIMEOUT)
    check = report.find("deltek", "GL accounts")
    assert check.ok is None and "mapping file not found" in check.detail
    assert "mappings check" in check.fix


def test_posted_account_becomes_confirmed(box, env):
    post_one_voucher(box, env, account="5400")
    check = run_ping(env, timeout=TIMEOUT).find("deltek", "GL accounts")
    assert "8 confirmed" in check.detail and "0 not yet used in Deltek" in check.detail


@pytest.mark.parametrize(("status_code", "word"), [(403, "permission"), (404, "Not Found")])
def test_webhooks_forbidden_is_a_warning_naming_the_permission(box, env, status_code, word):
    box.procore.faults.configure(webhooks_forbidden=True, webhooks_forbidden_status=status_code)
    report = run_ping(env, timeout=TIMEOUT)
    check = report.find("procore", "webhooks")
    assert check.ok is None
    assert check.detail.startswith(f"delivery history unavailable ({status_code}: ")
    assert word in check.detail and "the nightly poll covers missed events" in check.detail
    assert check.fix == (
        "grant the service account the 'Webhooks API' permission (Standard) in Procore's "
        "Developer Managed Service Account settings"
    )
    assert report.ok  # webhooks are optional: ping still passes
    assert "'Webhooks API' permission" in render(report, colour=False, width=200)


def test_sandbox_without_webhooks_permission_starts_and_ping_says_so(tmp_path):
    from deltek_procore.state.store import StateStore

    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    sandbox = start_sandbox(
        records=300, workdir=tmp_path, webhooks_permission=False, receiver_store=store
    )
    try:
        assert sandbox.hook_id is None and "'Webhooks API'" in sandbox.webhook_note
        assert sandbox.procore.hooks == {}
        report = run_ping({**sandbox.env, "DAGSTER_HOME": str(tmp_path)}, timeout=TIMEOUT)
        check = report.find("procore", "webhooks")
        assert check.ok is None and check.detail.startswith("delivery history unavailable (403")
        assert "'Webhooks API' permission (Standard)" in check.fix
    finally:
        sandbox.stop()
        store.dispose()


def test_ping_json_carries_every_check(env, monkeypatch, capsys):
    from deltek_procore.cli import main

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["ping", "--json", "--timeout", str(TIMEOUT)]) == 0
    out = json.loads(capsys.readouterr().out)
    checks = {(c["system"], c["name"]): c for c in out["checks"]}
    assert out["ok"] is True
    assert checks[("deltek", "GL accounts")]["status"] == "OK"
    assert "not yet used in Deltek (5400)" in checks[("deltek", "GL accounts")]["detail"]
    assert env["PROCORE_CLIENT_SECRET"] not in json.dumps(out)


def test_wrong_company_id(env):
    report = run_ping({**env, "PROCORE_COMPANY_ID": "999"}, timeout=TIMEOUT)
    company = report.find("procore", "company")
    assert company.ok is False
    assert "company 999 is not among the companies" in company.detail
    assert "PROCORE_COMPANY_ID" in company.fix


def test_no_permitted_projects(box, env):
    server = serve_procore(box, "/rest/v1.0/projects", 200, [], {"Total": "0"})
    try:
        report = run_ping(
            {**env, "PROCORE_API_URL": server.url, "PROCORE_AUTH_URL": f"{server.url}/oauth/token"},
            timeout=TIMEOUT,
        )
    finally:
        server.stop()
    check = report.find("procore", "permitted projects")
    assert check.ok is False and not report.ok
    assert check.fix == ping.NO_PROJECTS_FIX
    assert "App Management permitted projects" in check.fix
    assert status(report, "procore", "cost codes") is None  # no project to try


def test_disabled_tool_is_named(box, env):
    project_id = box.data.procore["projects"][0]["id"]
    path = f"/rest/v1.1/projects/{project_id}/direct_costs"
    server = serve_procore(box, path, 403, {"errors": "You do not have access to this tool"})
    try:
        report = run_ping(
            {**env, "PROCORE_API_URL": server.url, "PROCORE_AUTH_URL": f"{server.url}/oauth/token"},
            timeout=TIMEOUT,
        )
    finally:
        server.stop()
    check = report.find("procore", "direct costs")
    assert check.ok is False
    assert "(HTTP 403)" in check.detail and "Direct Costs tool" in check.detail
    assert status(report, "procore", "subcontractor invoices") == "OK"


def test_missing_configuration(tmp_path):
    report = run_ping({"DAGSTER_HOME": str(tmp_path)}, timeout=TIMEOUT)
    assert not report.ok
    for system in ("procore", "deltek"):
        config = report.find(system, "configuration")  # type: ignore[arg-type]
        assert config.ok is False and f"credentials set {system}" in config.fix
        assert len(report.by_system(system)) == 1  # type: ignore[arg-type]


# ---------------------------------------------------------------- pure parts


def test_judge_amounts():
    ok, detail, _ = judge_amounts("ledger", [Decimal("0"), Decimal("12.50")])
    assert ok is True and "1 of 2 non-zero" in detail
    ok, detail, fix = judge_amounts("ledger", [Decimal("0"), Decimal("0")])
    assert ok is False and "amounts read back as 0" in detail and fix
    assert judge_amounts("ledger", [None, None])[0] is None


def test_procore_environment_mismatch():
    problem = procore_environment_problem(
        "https://login-sandbox.procore.com/oauth/token", "https://api.procore.com"
    )
    assert problem and "developer sandbox login" in problem and "production API" in problem
    assert (
        procore_environment_problem(
            "https://login-sandbox.procore.com/oauth/token", "https://sandbox.procore.com"
        )
        is None
    )
    assert procore_environment_problem("http://127.0.0.1:1/oauth/token", "http://x") is None


def test_dns_failure_is_named(monkeypatch):
    def no_dns(*_args, **_kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(ping.socket, "getaddrinfo", no_dns)
    detail, fix = network_problem("https://acme.example/ACME/api", "DELTEK_API_URL", 1, "x")
    assert detail == "the host name acme.example does not resolve (DNS lookup failed)"
    assert "DELTEK_API_URL" in fix


def test_render_lists_fixes_and_colours_only_when_asked():
    report = PingReport(
        checks=[
            Check("procore", "token", True, "token obtained"),
            Check("deltek", "token", False, "Deltek rejected the password", "check it"),
            Check("deltek", "GL accounts", None, "404", "set DELTEK_ACCOUNTS_PATH"),
        ]
    )
    plain = render(report, colour=False, width=100)
    lines = plain.splitlines()
    assert lines[0].split() == ["SYSTEM", "CHECK", "STATUS", "DETAIL"]
    assert "What to fix:" in plain
    assert "  - [FAIL] deltek token: check it" in lines
    assert "  - [WARN] deltek GL accounts: set DELTEK_ACCOUNTS_PATH" in lines
    assert "1 check(s) failed, 1 warning(s)" in plain
    assert "\033[" not in plain
    assert "\033[31mFAIL" in render(report, colour=True, width=100)


def test_report_scrubs_secrets(tmp_path):
    secret = "s3cr3t-value-xyz"
    check = ping._scrubbed(Check("deltek", "token", False, f"echo {secret}", secret), [secret])
    assert secret not in check.detail + check.fix and "***" in check.detail
