"""The tenants file: parsing with errors that name the field, the environment each tenant
sees (its own suffixed variables, never another's), and the names it keeps in Dagster."""

from __future__ import annotations

import pytest

from deltek_procore import tenants
from deltek_procore.tenants import TenantsFileError, load_tenants, select_tenant


@pytest.fixture(autouse=True)
def _fresh():
    tenants.clear_cache()
    yield
    tenants.clear_cache()


def write(tmp_path, text: str) -> dict[str, str]:
    path = tmp_path / "tenants.yaml"
    path.write_text(text)
    return {tenants.TENANTS_ENV: str(path)}


def test_without_a_file_one_implicit_default_tenant_keeps_todays_names():
    (only,) = load_tenants({})
    assert only.name == "default" and only.implicit
    assert only.key_prefix == [] and only.dagster_name("sync") == "sync"
    assert select_tenant(None, {}) == only


def test_a_default_entry_keeps_todays_names_and_others_are_prefixed(tmp_path):
    env = write(tmp_path, "tenants:\n  - name: default\n  - name: second\n")
    default, second = load_tenants(env)
    assert default.key_prefix == [] and default.dagster_name("sync") == "sync"
    assert second.key_prefix == ["second"] and second.dagster_name("sync") == "second__sync"


def test_each_tenant_sees_its_own_variables_and_never_anothers(tmp_path):
    env = write(
        tmp_path,
        "tenants:\n  - name: acme\n    procore_company_id: 42\n    mappings: acme.yaml\n"
        "  - name: bolt\n",
    )
    env |= {
        "DELTEK_PASSWORD": "plain",  # belongs to a tenant named default only
        "DELTEK_PASSWORD__BOLT": "bolt-secret",
        "DELTEK_PASSWORD__ACME": "acme-secret",
        "DELTEK_PROCORE_STATE_URL": "sqlite:///shared.db",  # deployment-wide
    }
    acme, bolt = load_tenants(env)
    seen_a, seen_b = acme.environment(env), bolt.environment(env)
    assert seen_a["DELTEK_PASSWORD"] == "acme-secret" and seen_b["DELTEK_PASSWORD"] == "bolt-secret"
    assert "bolt-secret" not in seen_a.values() and "acme-secret" not in seen_b.values()
    assert "plain" not in seen_a.values() and "plain" not in seen_b.values()
    assert seen_a["PROCORE_COMPANY_ID"] == "42" and "PROCORE_COMPANY_ID" not in seen_b
    assert seen_a["DELTEK_PROCORE_MAPPINGS"] == str(tmp_path / "acme.yaml")  # relative to file
    assert seen_a["DELTEK_PROCORE_STATE_URL"] == seen_b["DELTEK_PROCORE_STATE_URL"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tenants: []\n", "name at least one tenant"),
        ("tenants:\n  - name: Acme\n", "tenants.0.name"),
        ("tenants:\n  - name: a\n  - name: a\n", "must be unique: a"),
        ("tenants:\n  - name: a\n    colour: red\n", "tenants.0.colour"),
        ("tenants:\n  - name: a\n    start_month: 2024\n", "tenants.0.start_month"),
        ("tenants: [\n", "not valid YAML"),
    ],
)
def test_a_bad_file_names_the_file_and_the_field(tmp_path, text, message):
    env = write(tmp_path, text)
    with pytest.raises(TenantsFileError, match="tenants.yaml") as err:
        load_tenants(env)
    assert message in str(err.value)


def test_choosing_a_tenant_lists_them_when_the_choice_is_ambiguous_or_unknown(tmp_path):
    env = write(tmp_path, "tenants:\n  - name: acme\n  - name: bolt\n")
    with pytest.raises(TenantsFileError, match=r"choose one with --tenant \(acme, bolt\)"):
        select_tenant(None, env)
    with pytest.raises(TenantsFileError, match="no tenant named 'zeta'; configured: acme, bolt"):
        select_tenant("zeta", env)
    assert select_tenant("bolt", env).name == "bolt"
    missing = {tenants.TENANTS_ENV: str(tmp_path / "absent.yaml")}
    with pytest.raises(TenantsFileError, match="no such file"):
        load_tenants(missing)
