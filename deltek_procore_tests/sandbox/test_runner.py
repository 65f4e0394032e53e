"""start_sandbox with credentials of its own: one sandbox pair per tenant, told apart."""

from __future__ import annotations

import pytest
import requests

from deltek_procore.sandbox.runner import (
    CREDENTIAL_DEFAULTS,
    sandbox_credentials,
    start_sandbox,
)


def _procore_token(env: dict[str, str], client_id: str, secret: str) -> int:
    data = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return requests.post(env["PROCORE_AUTH_URL"], data=data, timeout=10).status_code


def _deltek_token(env: dict[str, str], creds: dict[str, str]) -> int:
    data = {
        "Username": creds["DELTEK_USERNAME"],
        "Password": creds["DELTEK_PASSWORD"],
        "grant_type": "password",
        "Integrated": "N",
        "database": env["DELTEK_DATABASE"],
        "Client_Id": creds["DELTEK_CLIENT_ID"],
        "client_secret": creds["DELTEK_CLIENT_SECRET"],
    }
    return requests.post(f"{env['DELTEK_API_URL']}/token", data=data, timeout=10).status_code


def test_own_credentials_replace_the_public_ones_on_both_simulators(tmp_path):
    creds = sandbox_credentials("acme")
    assert creds != sandbox_credentials("acme"), "secrets are random per call"
    assert set(creds) == set(CREDENTIAL_DEFAULTS)
    with start_sandbox(records=60, seed=3, workdir=tmp_path, credentials=creds) as box:
        assert {k: box.env[k] for k in creds} == creds
        env = box.env
        assert (
            _procore_token(env, creds["PROCORE_CLIENT_ID"], creds["PROCORE_CLIENT_SECRET"]) == 200
        )
        public = CREDENTIAL_DEFAULTS
        assert (
            _procore_token(env, public["PROCORE_CLIENT_ID"], public["PROCORE_CLIENT_SECRET"]) == 401
        )
        assert _deltek_token(env, creds) == 200
        assert _deltek_token(env, public) in (400, 401)


def test_default_sandbox_keeps_the_public_credentials(tmp_path):
    with start_sandbox(records=60, seed=3, workdir=tmp_path) as box:
        assert {k: box.env[k] for k in CREDENTIAL_DEFAULTS} == CREDENTIAL_DEFAULTS
        assert _deltek_token(box.env, CREDENTIAL_DEFAULTS) == 200


def test_unknown_credential_variable_is_refused(tmp_path):
    with pytest.raises(ValueError, match="DELTEK_DATABASE"):
        start_sandbox(records=60, workdir=tmp_path, credentials={"DELTEK_DATABASE": "X"})
