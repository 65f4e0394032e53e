"""The CLI with a tenants file of two tenants: every command takes --tenant, picks that
tenant's store, mapping file and credentials, and refuses to guess when there are several."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from cryptography.fernet import Fernet

from deltek_procore import connections, tenants
from deltek_procore.cli import _op_name, _sandbox_tenant, build_parser, main, sandbox_exports
from deltek_procore.credentials import MASTER_KEY_ENV, CredentialStore
from deltek_procore.posting.documents import AP_KINDS
from deltek_procore.sandbox.runner import sandbox_periods, start_sandbox
from deltek_procore.state.store import StateStore
from deltek_procore_tests.test_cli import sandbox_up

ACME_PW = "acme-deltek-pw-3f9a1c77"
BETA_PW = "beta-deltek-pw-8e2d7b11"
TENANTS_YAML = """\
tenants:
  - name: acme
    procore_company_id: "1001"
    deltek_api_url: https://acme.deltekfirst.com/ACME/api
    deltek_database: ACME
    mappings: acme.mappings.yaml
  - name: beta
    procore_company_id: "2002"
    deltek_api_url: https://beta.deltekfirst.com/BETA/api
    deltek_database: BETA
    mappings: beta.mappings.yaml
"""
BAD_MAPPING = "defaults:\n  liability_code: AP\n"  # no bank_code, no offset account, no rules

#: Every sub-command but `status` (which shows every tenant) in a form that reaches its work.
COMMANDS = [
    ["sync", "--period", "2026-10"],
    ["sync", "--period", "2026-10", "--plan"],
    ["backfill", "--from", "2026-09", "--to", "2026-10"],
    ["replay", "direct_cost", "1"],
    ["replay", "direct_cost", "1", "--explain"],
    ["ignore", "direct_cost", "1"],
    ["approve", "0123abcd"],
    ["review", "list"],
    ["mappings", "check"],
    ["mappings", "suggest"],
    ["ping"],
    ["credentials", "set", "deltek"],
    ["webhooks", "serve"],
    ["sandbox", "up"],
    ["demo"],
]


def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("PROCORE_", "DELTEK_")):
            monkeypatch.delenv(name)


@pytest.fixture
def two_tenants(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    clean_environment(monkeypatch)
    (tmp_path / "tenants.yaml").write_text(TENANTS_YAML)
    monkeypatch.setenv(tenants.TENANTS_ENV, str(tmp_path / "tenants.yaml"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DELTEK_PROCORE_STATE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    monkeypatch.setenv(MASTER_KEY_ENV, Fernet.generate_key().decode())
    tenants.clear_cache()
    yield tmp_path
    tenants.clear_cache()


def tenant(name: str) -> tenants.Tenant:
    return tenants.select_tenant(name)


# ------------------------------------------------------------------ choosing the tenant


def test_every_sub_command_has_a_tenant_option() -> None:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in sub.choices.items():
        if name == "tenants":  # `tenants add NAME` names its tenant as an argument
            continue
        options = {o for action in parser._actions for o in action.option_strings}
        assert "--tenant" in options, name


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a))
def test_without_tenant_several_tenants_are_an_error_naming_them(two_tenants, argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "2 tenants are configured; choose one with --tenant (acme, beta)" in err


@pytest.mark.parametrize(
    "argv",
    [*(c for c in COMMANDS if c[0] != "sandbox"), ["status"]],  # sandbox: see below
    ids=lambda a: " ".join(a),
)
def test_an_unknown_tenant_is_refused_listing_the_configured_ones(two_tenants, argv, capsys):
    assert main([*argv, "--tenant", "gamma"]) == 2
    assert "no tenant named 'gamma'; configured: acme, beta" in capsys.readouterr().err


def test_without_a_tenants_file_the_only_tenant_is_today_s(tmp_path, monkeypatch, capsys):
    clean_environment(monkeypatch)
    monkeypatch.setenv("DELTEK_PROCORE_STATE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    tenants.clear_cache()
    assert main(["status", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"counts", "records", "review_queue", "deltek_findings"}
    assert main(["status", "--json", "--tenant", "default"]) == 0
    assert json.loads(capsys.readouterr().out) == out


# ------------------------------------------------------------------ each tenant's state


def _quarantine(name: str, record_id: int, reason: str) -> None:
    StateStore(tenant=name).add_revision(
        kind="direct_cost", record_id=record_id, content_hash=f"h{record_id}",
        status="quarantined", period="2026-10", reason=reason, amount="12.50",
    )  # fmt: skip


def test_status_groups_by_tenant_and_one_tenant_prints_today_s_shape(two_tenants, capsys):
    _quarantine("acme", 11, "acme: cost code 03-300 has no GL account")
    _quarantine("beta", 11, "beta: vendor 35 has no Deltek firm")  # the same Procore id
    _quarantine("beta", 12, "beta: project 7 has no WBS1")

    assert main(["status", "--json"]) == 0
    every = json.loads(capsys.readouterr().out)["tenants"]
    assert list(every) == ["acme", "beta"]
    assert [r["reason"] for r in every["acme"]["records"]] == [
        "acme: cost code 03-300 has no GL account"
    ]
    assert sorted(r["record_id"] for r in every["beta"]["records"]) == [11, 12]
    assert all(r["reason"].startswith("beta:") for r in every["beta"]["records"])
    assert every["acme"]["counts"] == {"direct_cost": {"quarantined": 1}}

    assert main(["status"]) == 0
    text = capsys.readouterr().out
    acme, beta = text.split("=== tenant beta ===")
    assert acme.startswith("=== tenant acme ===")
    assert "acme: cost code" in acme and "beta:" not in acme
    assert "beta: vendor 35" in beta and "acme:" not in beta

    assert main(["status", "--json", "--tenant", "beta"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert one == every["beta"]  # one tenant: today's object, no "tenants" wrapper
    assert main(["status", "--tenant", "acme"]) == 0
    assert "=== tenant" not in capsys.readouterr().out


def test_ignore_writes_to_the_chosen_tenant_only(two_tenants, capsys):
    assert main(["ignore", "direct_cost", "5", "--tenant", "beta", "--reason", "dup"]) == 0
    assert "direct_cost 5 will be ignored: dup" in capsys.readouterr().out
    assert StateStore(tenant="beta").ignored("direct_cost") == {5: "dup"}
    assert StateStore(tenant="acme").ignored("direct_cost") == {}
    assert [e["event"] for e in StateStore(tenant="beta").audit_trail("direct_cost", 5)] == [
        "ignored"
    ]
    assert StateStore(tenant="acme").audit_trail("direct_cost", 5) == []


def test_replay_reads_the_tenant_s_mapping_file(two_tenants, capsys):
    (two_tenants / "acme.mappings.yaml").write_text(BAD_MAPPING)
    assert main(["replay", "direct_cost", "1", "--explain", "--tenant", "acme"]) == 2
    err = capsys.readouterr().err
    assert "acme.mappings.yaml" in err and "bank_code" in err
    assert main(["replay", "direct_cost", "1", "--explain", "--tenant", "beta"]) == 2
    err = capsys.readouterr().err  # beta's file is absent: that file is named, not acme's
    assert "beta.mappings.yaml" in err and "acme" not in err


def test_approve_looks_for_the_plan_in_the_tenant_s_store(two_tenants, capsys):
    StateStore(tenant="acme").put_reference(
        "plan:feed1234", {"periods": ["2026-10"], "documents": 1, "total": "1.00", "kinds": []}
    )
    assert main(["approve", "feed1234", "--tenant", "beta"]) == 2
    assert "no stored plan feed1234 (tenant beta)" in capsys.readouterr().err


# ------------------------------------------------------------------ credentials per tenant


def test_credentials_set_keeps_two_tenants_secrets_apart(two_tenants, monkeypatch, capsys):
    def store(name: str, text: str) -> str:
        monkeypatch.setattr(sys, "stdin", io.StringIO(text))
        assert main(["credentials", "set", "deltek", "--tenant", name]) == 0
        return capsys.readouterr().out

    out = store(
        "acme",
        f"DELTEK_USERNAME=acme-user\nDELTEK_PASSWORD={ACME_PW}\n"
        "DELTEK_CLIENT_ID=acme-client\nDELTEK_CLIENT_SECRET=acme-client-secret-1\n",
    )
    assert out.startswith("stored 4 deltek value(s) (tenant acme), encrypted: DELTEK_CLIENT_ID")
    out += store(  # the tenant's own variable names are understood too
        "beta",
        f"DELTEK_USERNAME__BETA=beta-user\nDELTEK_PASSWORD__BETA={BETA_PW}\n"
        "DELTEK_CLIENT_ID=beta-client\nDELTEK_CLIENT_SECRET=beta-client-secret-2\n",
    )
    assert "stored 4 deltek value(s) (tenant beta)" in out
    assert ACME_PW not in out and BETA_PW not in out
    url = os.environ["DELTEK_PROCORE_STATE_URL"]
    assert CredentialStore(url, tenant="acme").get("deltek")["DELTEK_PASSWORD"] == ACME_PW
    assert CredentialStore(url, tenant="beta").get("deltek")["DELTEK_PASSWORD"] == BETA_PW
    assert CredentialStore(url, tenant="default").get("deltek") is None
    raw = (two_tenants / "state.db").read_bytes()
    assert ACME_PW.encode() not in raw and BETA_PW.encode() not in raw

    acme = connections.deltek_settings(tenant=tenant("acme"))
    beta = connections.deltek_settings(tenant=tenant("beta"))
    assert (acme.username, acme.password.get_secret_value(), acme.database) == (
        "acme-user", ACME_PW, "ACME",
    )  # fmt: skip
    assert (beta.username, beta.password.get_secret_value(), beta.database) == (
        "beta-user", BETA_PW, "BETA",
    )  # fmt: skip
    # a builder handed only the tenant's view (the Dagster resources) reads the same rows
    view = connections.deltek_settings(tenant("beta").environment())
    assert view.password.get_secret_value() == BETA_PW
    assert connections.tenant_key(tenant=tenant("acme")) != connections.tenant_key(
        tenant=tenant("beta")
    )


def test_a_tenant_without_credentials_is_told_its_own_variables(two_tenants, monkeypatch, capsys):
    monkeypatch.setenv("DELTEK_PASSWORD__ACME", ACME_PW)
    monkeypatch.setenv("PROCORE_CLIENT_SECRET__ACME", ACME_PW)
    monkeypatch.setenv("PROCORE_CLIENT_ID", "the-implicit-tenant-s-id")  # not beta's
    assert main(["ping", "--tenant", "beta", "--json"]) == 1
    out = capsys.readouterr().out
    checks = {(c["system"], c["name"]): c for c in json.loads(out)["checks"]}
    procore = checks[("procore", "configuration")]
    assert procore["detail"] == (
        "procore (tenant beta): set PROCORE_CLIENT_ID__BETA, PROCORE_CLIENT_SECRET__BETA "
        "(environment) or run `deltek-procore credentials set procore --tenant beta`"
    )
    assert "credentials set procore --tenant beta" in procore["fix"]
    deltek = checks[("deltek", "configuration")]["detail"]
    assert "DELTEK_PASSWORD__BETA" in deltek and "DELTEK_API_URL" not in deltek  # from the file
    assert ACME_PW not in out


# ------------------------------------------------------------------ the sandbox, per tenant


def test_sandbox_exports_are_suffixed_for_a_tenant_of_the_file(two_tenants) -> None:
    env = {"DELTEK_PASSWORD": "pw", "PROCORE_COMPANY_ID": "7", "OTHER": "x"}
    assert sandbox_exports(env, tenant("beta")) == {
        "DELTEK_PASSWORD__BETA": "pw", "PROCORE_COMPANY_ID__BETA": "7", "OTHER": "x",
    }  # fmt: skip
    assert sandbox_exports(env, tenants.Tenant(name="default", implicit=True)) == env
    new, note = _sandbox_tenant("gamma")  # not in the file yet: allowed, with the way to add it
    assert new.name == "gamma" and "gamma is not in" in note and "- name: gamma" in note


def test_sandbox_up_for_a_tenant_prints_its_variables(two_tenants) -> None:
    lines, code = sandbox_up(two_tenants, dict(os.environ), "--tenant", "beta")
    text = "".join(lines)
    for name in ("PROCORE_API_URL", "PROCORE_COMPANY_ID", "DELTEK_PASSWORD", "DELTEK_DATABASE"):
        assert f"export {name}__BETA=" in text
        assert f"export {name}=" not in text
    mappings = next(ln for ln in lines if ln.startswith("export DELTEK_PROCORE_MAPPINGS__BETA="))
    assert "sandbox-beta" in mappings  # its own mapping file, next to no other tenant's
    assert code == 0


def test_sync_plan_of_one_tenant_reads_its_sandbox_into_its_store(two_tenants, monkeypatch, capsys):
    box = start_sandbox(records=300, seed=5, workdir=two_tenants / "box")
    try:
        for name, value in sandbox_exports(box.env, tenant("beta")).items():
            monkeypatch.setenv(name, value)
        period = sandbox_periods(box)[-1]
        assert main(["sync", "--period", period, "--plan", "--json", "--tenant", "beta"]) == 0
        out = json.loads(capsys.readouterr().out)
    finally:
        box.stop()
    assert out["outcome"] == "PLAN" and out["periods"] == [period]
    assert StateStore(tenant="beta").staged("vendor")
    assert StateStore(tenant="acme").staged("vendor") == []
    assert main(["status", "--json"]) == 0
    every = json.loads(capsys.readouterr().out)["tenants"]
    assert every["acme"]["counts"] == {}


# ------------------------------------------------------------------ the tenant's job


def test_the_posting_steps_are_found_under_the_tenant_s_prefix() -> None:
    @dg.asset(key_prefix=["acme"])
    def deltek_ap_invoices() -> None: ...

    @dg.asset(key_prefix=["acme"])
    def deltek_commitment_journal_entries() -> None: ...

    job = dg.Definitions(
        assets=[deltek_ap_invoices, deltek_commitment_journal_entries],
        jobs=[dg.define_asset_job("acme__sync", selection="*")],
    ).resolve_job_def("acme__sync")
    assert _op_name(job, "deltek_ap_invoices") == "acme__deltek_ap_invoices"
    assert (
        _op_name(job, "deltek_commitment_journal_entries")
        == "acme__deltek_commitment_journal_entries"
    )
    from deltek_procore.definitions import defs

    assert _op_name(defs.resolve_job_def("sync"), "deltek_ap_invoices") == "deltek_ap_invoices"


def test_sync_runs_the_tenant_s_own_dagster_job(two_tenants) -> None:
    """In a fresh process (the definitions are built from the tenants file at import)."""
    box = start_sandbox(records=300, seed=5, workdir=two_tenants / "box")
    env = {**os.environ, **sandbox_exports(box.env, tenant("beta"))}
    period = sandbox_periods(box)[-1]
    try:
        done = subprocess.run(
            [sys.executable, "-m", "deltek_procore.cli", "sync", "--period", period,
             "--tenant", "beta", "--json"],
            env=env, capture_output=True, text=True, cwd=two_tenants, timeout=240,
        )  # fmt: skip
        vouchers = box.deltek.ap_vouchers()
    finally:
        box.stop()
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["outcome"].startswith("OK")
    posted = out["postings"]["deltek_ap_invoices"]["counts"]["posted"]
    assert posted == len(vouchers) > 0
    beta = StateStore(tenant="beta").ledger_rows(statuses=["posted"])
    assert len([r for r in beta if r.kind in AP_KINDS]) == posted  # in beta's ledger only
    assert StateStore(tenant="acme").ledger_rows() == []
    assert ACME_PW not in done.stdout + done.stderr
