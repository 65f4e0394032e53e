"""Client settings from the environment: the transport rule and the master-key message.

Every path to a client (the Dagster resources, `ping`, the CLI) builds its settings in
`connections`, so these tests go through the same functions those callers use.
"""

from __future__ import annotations

import logging
import os

import pytest
from cryptography.fernet import Fernet

from deltek_procore import connections
from deltek_procore.connections import (
    INSECURE_HTTP_ENV,
    ConfigurationError,
    checked_url,
    deltek_settings,
    procore_settings,
)
from deltek_procore.credentials import KEY_FILE_NAME, MASTER_KEY_ENV, CredentialStore
from deltek_procore.ping import check_deltek, check_procore

SECRET = "s3cr3t-client-value-7a6b5c"
PASSWORD = "pw-hunter2-" + SECRET


def procore_env(**over: str) -> dict[str, str]:
    env = {
        "PROCORE_CLIENT_ID": "client-abc",
        "PROCORE_CLIENT_SECRET": SECRET,
        "PROCORE_COMPANY_ID": "4264800",
        "PROCORE_AUTH_URL": "https://login.procore.com/oauth/token",
        "PROCORE_API_URL": "https://api.procore.com",
    }
    return {**env, **over}


def deltek_env(**over: str) -> dict[str, str]:
    env = {
        "DELTEK_API_URL": "https://acme.deltekfirst.com/ACME/api",
        "DELTEK_USERNAME": "apiuser",
        "DELTEK_PASSWORD": PASSWORD,
        "DELTEK_DATABASE": "ACME",
        "DELTEK_CLIENT_ID": "vp-client",
        "DELTEK_CLIENT_SECRET": SECRET,
    }
    return {**env, **over}


def _settings(variable: str, env: dict[str, str]):
    return procore_settings(env) if variable.startswith("PROCORE") else deltek_settings(env)


def _env_with(variable: str, url: str, **extra: str) -> dict[str, str]:
    base = procore_env if variable.startswith("PROCORE") else deltek_env
    return base(**{variable: url}, **extra)


VARIABLES = ("PROCORE_AUTH_URL", "PROCORE_API_URL", "DELTEK_API_URL")


# ------------------------------------------------------------------ http refused


@pytest.mark.parametrize("variable", VARIABLES)
def test_plain_http_to_a_remote_host_is_refused_naming_the_variable(variable):
    env = _env_with(variable, f"http://user:{SECRET}@erp.example.com/ACME/api?token={SECRET}")
    with pytest.raises(ConfigurationError) as caught:
        _settings(variable, env)
    message = str(caught.value)
    assert message.startswith(f"{variable} uses plain http:// to erp.example.com")
    assert f"set {variable} to its https:// URL" in message
    assert f"{INSECURE_HTTP_ENV}=1" in message  # the way out for a trusted test server
    assert SECRET not in message and PASSWORD not in message


@pytest.mark.parametrize("variable", VARIABLES)
@pytest.mark.parametrize(
    "host", ["127.0.0.1:8080", "127.10.20.30", "localhost:9000", "LOCALHOST", "[::1]:8443"]
)
def test_plain_http_to_loopback_is_allowed_without_a_warning(variable, host, caplog):
    caplog.set_level(logging.DEBUG, logger="deltek_procore.connections")
    url = f"http://{host}/ACME/api"
    settings = _settings(variable, _env_with(variable, url))
    attribute = "auth_url" if variable == "PROCORE_AUTH_URL" else "api_url"
    assert getattr(settings, attribute) == url
    assert not caplog.records


@pytest.mark.parametrize("host", ["128.0.0.1", "10.0.0.5", "[::2]", "localhost.example.com"])
def test_hosts_that_only_look_local_are_not_loopback(host):
    with pytest.raises(ConfigurationError, match="uses plain http://"):
        checked_url("DELTEK_API_URL", f"http://{host}/ACME/api", {})


@pytest.mark.parametrize("variable", VARIABLES)
def test_override_allows_http_and_warns_once_per_construction(variable, caplog):
    caplog.set_level(logging.DEBUG, logger="deltek_procore.connections")
    env = _env_with(variable, f"http://user:{SECRET}@erp.example.com/x", **{INSECURE_HTTP_ENV: "1"})
    build = (
        connections.procore_client if variable.startswith("PROCORE") else connections.deltek_client
    )
    for run in (1, 2):  # every run (every client construction) says it again
        build(env)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == run
    text = warnings[0].getMessage()
    assert variable in text and "erp.example.com" in text and INSECURE_HTTP_ENV in text
    assert SECRET not in caplog.text and PASSWORD not in caplog.text and "user:" not in caplog.text


@pytest.mark.parametrize("value", ["0", "", "no", "false"])
def test_override_must_be_switched_on_explicitly(value):
    env = deltek_env(DELTEK_API_URL="http://erp.example.com/ACME/api", **{INSECURE_HTTP_ENV: value})
    with pytest.raises(ConfigurationError, match="DELTEK_API_URL uses plain http://"):
        deltek_settings(env)


@pytest.mark.parametrize(
    "url", ["ftp://erp.example.com/api", "erp.example.com/ACME/api", "https:///nohost", "  "]
)
def test_url_without_scheme_or_host_is_refused(url):
    with pytest.raises(ConfigurationError) as caught:
        checked_url("DELTEK_API_URL", url, {})
    assert str(caught.value).startswith("DELTEK_API_URL must be an https:// URL")
    assert "https://acme.deltekfirst.com/ACME/api" in str(caught.value)


def test_https_is_accepted_silently(caplog):
    caplog.set_level(logging.DEBUG, logger="deltek_procore.connections")
    assert procore_settings(procore_env()).api_url == "https://api.procore.com"
    assert deltek_settings(deltek_env()).api_url == "https://acme.deltekfirst.com/ACME/api"
    assert not caplog.records


def test_defaults_are_https_and_pass():
    env = procore_env()
    del env["PROCORE_AUTH_URL"], env["PROCORE_API_URL"]
    settings = procore_settings(env)
    assert settings.auth_url.startswith("https://") and settings.api_url.startswith("https://")


def test_procore_detail_concurrency_defaults_to_four_and_is_set_by_its_variable():
    assert procore_settings(procore_env()).detail_concurrency == 4
    assert procore_settings(procore_env(PROCORE_DETAIL_CONCURRENCY="1")).detail_concurrency == 1
    for wrong in ("0", "17", "four"):
        with pytest.raises(ConfigurationError, match="PROCORE_DETAIL_CONCURRENCY must be"):
            procore_settings(procore_env(PROCORE_DETAIL_CONCURRENCY=wrong))


def test_stored_http_url_is_refused_too(tmp_path):
    """A URL from the encrypted store goes through the same rule as one from the environment."""
    key = Fernet.generate_key().decode()
    state = f"sqlite:///{tmp_path / 'state.db'}"
    base = {"DELTEK_PROCORE_STATE_URL": state, MASTER_KEY_ENV: key}
    CredentialStore(state, env=base).set("deltek", {"DELTEK_API_URL": "http://erp.example.com/api"})
    env = {**base, **deltek_env()}
    del env["DELTEK_API_URL"]
    with pytest.raises(ConfigurationError, match="DELTEK_API_URL uses plain http:// to erp"):
        deltek_settings(env)


@pytest.mark.parametrize(
    ("check", "env", "variable"),
    [
        (check_procore, procore_env(PROCORE_API_URL="http://api.example.com"), "PROCORE_API_URL"),
        (check_deltek, deltek_env(DELTEK_API_URL="http://erp.example.com/A/api"), "DELTEK_API_URL"),
    ],
)
def test_ping_reports_the_refusal_as_its_configuration_check(check, env, variable):
    checks = check(env, timeout=1.0)
    assert len(checks) == 1  # stopped before any request
    assert checks[0].name == "configuration" and checks[0].ok is False
    assert checks[0].detail.startswith(f"{variable} uses plain http://")


# ------------------------------------------------------------------ wrong master key


def _stored(tmp_path, system: str, values: dict[str, str]) -> dict[str, str]:
    """Store `values` with a fresh key; returns the base env (state URL + that key)."""
    state = f"sqlite:///{tmp_path / 'state.db'}"
    env = {"DELTEK_PROCORE_STATE_URL": state, MASTER_KEY_ENV: Fernet.generate_key().decode()}
    CredentialStore(state, env=env).set(system, values)  # type: ignore[arg-type]
    return env


def test_wrong_master_key_is_reported_as_such_not_as_a_missing_variable(tmp_path):
    env = _stored(tmp_path, "procore", {"PROCORE_CLIENT_SECRET": SECRET})
    wrong = Fernet.generate_key().decode()
    # the environment supplies the rest; only the secret lives in the store
    run_env = {
        **procore_env(),
        MASTER_KEY_ENV: wrong,
        "DELTEK_PROCORE_STATE_URL": env["DELTEK_PROCORE_STATE_URL"],
    }
    del run_env["PROCORE_CLIENT_SECRET"]
    with pytest.raises(ConfigurationError) as caught:
        procore_settings(run_env)
    message = str(caught.value)
    assert f"{MASTER_KEY_ENV} does not decrypt the stored procore credentials" in message
    assert f"set {MASTER_KEY_ENV} to the key they were stored with" in message
    assert "`deltek-procore credentials set procore`" in message
    assert "set PROCORE_CLIENT_SECRET" not in message
    for secret in (SECRET, wrong, env[MASTER_KEY_ENV]):
        assert secret not in message


def test_wrong_key_file_names_the_file(tmp_path):
    state = f"sqlite:///{tmp_path / 'state.db'}"
    home = tmp_path / "home"
    CredentialStore(state, env={"DAGSTER_HOME": str(home)}).set("deltek", {"DELTEK_PASSWORD": "x"})
    (home / KEY_FILE_NAME).write_bytes(Fernet.generate_key())  # the key file was replaced
    env = {**deltek_env(), "DELTEK_PROCORE_STATE_URL": state, "DAGSTER_HOME": str(home)}
    del env["DELTEK_PASSWORD"]
    with pytest.raises(ConfigurationError) as caught:
        deltek_settings(env)
    message = str(caught.value)
    assert f"the key file {home / KEY_FILE_NAME} does not decrypt the stored deltek" in message
    assert "restore the key file they were stored with" in message
    assert "`deltek-procore credentials set deltek`" in message
    assert "set DELTEK_PASSWORD" not in message
    assert (home / KEY_FILE_NAME).read_text().strip() not in message


def test_malformed_master_key_is_named_as_malformed(tmp_path):
    env = _stored(tmp_path, "deltek", {"DELTEK_PASSWORD": PASSWORD})
    bogus = "not-a-fernet-key-" + SECRET
    run_env = {
        **deltek_env(),
        MASTER_KEY_ENV: bogus,
        "DELTEK_PROCORE_STATE_URL": env["DELTEK_PROCORE_STATE_URL"],
    }
    del run_env["DELTEK_PASSWORD"]
    with pytest.raises(ConfigurationError) as caught:
        deltek_settings(run_env)
    message = str(caught.value)
    assert f"{MASTER_KEY_ENV} is malformed: not a valid Fernet key" in message
    assert "deltek-procore credentials set" in message
    assert "set DELTEK_PASSWORD" not in message
    assert bogus not in message and SECRET not in message


def test_ping_shows_the_master_key_problem(tmp_path):
    env = _stored(tmp_path, "procore", {"PROCORE_CLIENT_SECRET": SECRET})
    run_env = {**procore_env(), **env, MASTER_KEY_ENV: Fernet.generate_key().decode()}
    del run_env["PROCORE_CLIENT_SECRET"]
    (check,) = check_procore(run_env, timeout=1.0)
    assert check.ok is False and f"{MASTER_KEY_ENV} does not decrypt" in check.detail


# ------------------------------------------------------------------ tenants


@pytest.fixture
def acme(tmp_path, monkeypatch):
    from deltek_procore import tenants

    for name in list(os.environ):
        if name.startswith(("PROCORE_", "DELTEK_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DELTEK_PROCORE_STATE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    monkeypatch.setenv(MASTER_KEY_ENV, Fernet.generate_key().decode())
    (tmp_path / "tenants.yaml").write_text(
        "tenants:\n  - name: acme\n    deltek_api_url: https://acme.deltekfirst.com/ACME/api\n"
        "    deltek_database: ACME\n  - name: beta\n"
    )
    monkeypatch.setenv(tenants.TENANTS_ENV, str(tmp_path / "tenants.yaml"))
    tenants.clear_cache()
    yield tenants.select_tenant("acme")
    tenants.clear_cache()


def test_the_implicit_tenant_is_told_today_s_variable_names():
    from deltek_procore.tenants import Tenant

    for tenant in (None, Tenant(name="default", implicit=True)):
        with pytest.raises(ConfigurationError) as caught:
            deltek_settings({}, tenant=tenant)
        assert str(caught.value).startswith(
            "deltek: set DELTEK_API_URL, DELTEK_USERNAME, DELTEK_PASSWORD, DELTEK_DATABASE, "
            "DELTEK_CLIENT_ID, DELTEK_CLIENT_SECRET (environment) or run "
            "`deltek-procore credentials set deltek`"
        )


def test_a_tenant_reads_its_suffixed_variables_and_never_the_plain_ones(acme, monkeypatch):
    for name, value in deltek_env().items():
        monkeypatch.setenv(name, value)  # the plain set: the implicit tenant's, not acme's
    with pytest.raises(ConfigurationError) as caught:
        deltek_settings(tenant=acme)
    message = str(caught.value)
    assert message == (
        "deltek (tenant acme): set DELTEK_USERNAME__ACME, DELTEK_PASSWORD__ACME, "
        "DELTEK_CLIENT_ID__ACME, DELTEK_CLIENT_SECRET__ACME (environment) or run "
        "`deltek-procore credentials set deltek --tenant acme`"
    )
    for name, value in deltek_env(DELTEK_PASSWORD="acme-" + PASSWORD).items():
        monkeypatch.setenv(name + "__ACME", value)
    monkeypatch.setenv("DELTEK_API_URL__ACME", "http://erp.example.com/ACME/api")
    with pytest.raises(ConfigurationError, match=r"^DELTEK_API_URL__ACME uses plain http://"):
        deltek_settings(tenant=acme)
    monkeypatch.delenv("DELTEK_API_URL__ACME")
    settings = deltek_settings(tenant=acme)
    assert settings.password.get_secret_value() == "acme-" + PASSWORD
    assert settings.api_url == "https://acme.deltekfirst.com/ACME/api"  # from the tenants file
    # the view alone (as the Dagster resources pass it) is read the same way
    assert deltek_settings(acme.environment()).password.get_secret_value() == "acme-" + PASSWORD
    assert connections.tenant_key(tenant=acme) == "https://acme.deltekfirst.com/acme/api|ACME"
    from deltek_procore.tenants import select_tenant

    assert connections.tenant_key(tenant=select_tenant("beta")) == "unconfigured|"
