"""`deltek-procore tenants add|list` and the tenants-file editing behind it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deltek_procore.cli import main
from deltek_procore.state.store import StateStore
from deltek_procore.tenant_admin import add_tenant, secret_variables, tenants_file_path
from deltek_procore.tenants import (
    TENANT_VARIABLES,
    TENANTS_ENV,
    TenantsFileError,
    clear_cache,
    load_tenants,
)

ACME = {
    "name": "acme",
    "procore_company_id": "4264",
    "deltek_api_url": "https://acme.deltekfirst.com/ACME/api",
    "deltek_database": "ACME",
}


def _names(path: Path) -> list[str]:
    clear_cache()
    return [t.name for t in load_tenants({TENANTS_ENV: str(path)})]


def test_first_add_keeps_todays_tenant_as_default(tmp_path):
    path = tmp_path / "tenants.yaml"
    tenant = add_tenant(path, {**ACME, "mappings": "acme.yaml", "start_month": "2025-01"})
    assert _names(path) == ["default", "acme"]
    assert tenant.mappings == str(tmp_path / "acme.yaml")
    assert tenant.start_month == "2025-01" and tenant.procore_company_id == "4264"
    assert not tenant.implicit and tenant.key_prefix == ["acme"]
    (default, _) = load_tenants({TENANTS_ENV: str(path)})
    # `default` has no fields: it reads today's un-suffixed variables, as before the file
    env = {"DELTEK_PASSWORD": "today", "DELTEK_PASSWORD__ACME": "acme's"}
    assert default.environment(env)["DELTEK_PASSWORD"] == "today"
    assert tenant.environment(env)["DELTEK_PASSWORD"] == "acme's"


def test_add_appends_and_keeps_the_operators_comments_and_layout(tmp_path):
    path = tmp_path / "tenants.yaml"
    path.write_text("# our companies\ntenants:\n- name: first   # the old one\n")
    add_tenant(path, ACME)
    text = path.read_text()
    assert text.startswith("# our companies\ntenants:\n- name: first   # the old one\n")
    assert "\n- name: acme\n  procore_company_id: '4264'\n" in text
    assert _names(path) == ["first", "acme"]


def test_duplicate_or_invalid_tenant_leaves_the_file_unchanged(tmp_path):
    path = tmp_path / "tenants.yaml"
    add_tenant(path, ACME)
    before = path.read_text()
    with pytest.raises(TenantsFileError, match="'acme' exists already"):
        add_tenant(path, ACME)
    with pytest.raises(ValueError, match="lower case"):
        add_tenant(path, {**ACME, "name": "Bolt Co"})
    with pytest.raises(ValueError, match="start_month"):
        add_tenant(path, {**ACME, "name": "bolt", "start_month": "July"})
    assert path.read_text() == before
    fresh = tmp_path / "none.yaml"
    with pytest.raises(ValueError):
        add_tenant(fresh, {"name": "x y"})
    assert not fresh.exists()


def test_file_path_is_the_variable_else_dagster_home(tmp_path):
    assert tenants_file_path({TENANTS_ENV: "/etc/t.yaml"}) == Path("/etc/t.yaml")
    assert tenants_file_path({"DAGSTER_HOME": str(tmp_path)}) == tmp_path / "tenants.yaml"


def test_cli_add_without_sandbox_names_the_secrets_and_writes_none(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.delenv(TENANTS_ENV, raising=False)
    assert main(["tenants", "add", "acme", "--procore-company-id", "4264"]) == 2
    assert "--deltek-api-url, --deltek-database required" in capsys.readouterr().err
    code = main(
        ["tenants", "add", "acme", "--procore-company-id", "4264", "--deltek-api-url",
         ACME["deltek_api_url"], "--deltek-database", "ACME", "--timezone", "America/Chicago"]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    path = tmp_path / "tenants.yaml"
    assert f"added tenant acme to {path}" in out
    clear_cache()
    (acme,) = [t for t in load_tenants({TENANTS_ENV: str(path)}) if t.name == "acme"]
    for variable in secret_variables(acme):
        assert variable in out
        assert variable.rsplit("__", 1)[0] in TENANT_VARIABLES
    monkeypatch.setenv(TENANTS_ENV, str(path))
    clear_cache()
    assert main(["tenants", "list"]) == 0
    listed = capsys.readouterr().out
    assert "default" in listed and "acme" in listed and "ACME" in listed


def test_cli_add_sandbox_tenant_syncs_beside_default(tmp_path):
    """The README's one command: a second demo company with its own sandbox and credentials,
    in the tenants file beside `default`, synced; its rows are its own in the state store."""
    home = tmp_path / "home"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in TENANT_VARIABLES and not k.startswith(("DAGSTER_", "DELTEK_PROCORE_"))
    }
    env["DAGSTER_HOME"] = str(home)
    args = ["tenants", "add", "second", "--sandbox", "--records", "150"]
    done = subprocess.run(
        [sys.executable, "-m", "deltek_procore.cli", *args],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr[-3000:]  # 1: quarantines are not failures
    assert "second's Deltek sandbox now holds" in done.stdout, done.stdout[-2000:]
    assert "DELTEK_PROCORE_TENANTS=" in done.stdout
    path = home / "tenants.yaml"
    assert _names(path) == ["default", "second"]
    for text in (path.read_text(), done.stdout, done.stderr):
        assert "-secret-" not in text and "-password-" not in text  # sandbox_credentials' shape
    url = f"sqlite:///{home / 'deltek_procore_state.db'}"
    second, default = StateStore(url, tenant="second"), StateStore(url, tenant="default")
    try:
        assert [r for r in second.ledger_rows() if r.status == "posted"]
        assert default.ledger_rows() == []
    finally:
        second.dispose()
        default.dispose()
