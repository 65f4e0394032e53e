"""Build client settings from the configuration contract.

Environment variables win; missing values come from the encrypted credential
store (`deltek-procore credentials set ...`). Errors name the variables that are
missing, never a value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from deltek_procore.credentials import CredentialStore
from deltek_procore.deltek.client import DeltekClient, DeltekSettings
from deltek_procore.procore.client import ProcoreClient, ProcoreSettings
from deltek_procore.state.store import default_state_url

PROCORE_DEFAULTS = {
    "PROCORE_AUTH_URL": "https://login.procore.com/oauth/token",
    "PROCORE_API_URL": "https://api.procore.com",
}


class ConfigurationError(Exception):
    """Configuration is missing or wrong; the message says which variable to set."""


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def resolved(system: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    env = _env(env)
    try:
        store = CredentialStore(default_state_url(dict(env)), env=env)
        values = store.resolve(system, env)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - the store is optional; env may suffice
        values = {k: v for k, v in env.items() if k.startswith(system.upper() + "_") and v}
        if not values:
            raise ConfigurationError(f"{system} credentials unavailable: {exc}") from None
    return values


def _require(values: Mapping[str, str], names: tuple[str, ...], system: str) -> None:
    missing = [n for n in names if not values.get(n)]
    if missing:
        raise ConfigurationError(
            f"{system}: set {', '.join(missing)} (environment) or run "
            f"`deltek-procore credentials set {system}`"
        )


def procore_settings(env: Mapping[str, str] | None = None) -> ProcoreSettings:
    values = {**PROCORE_DEFAULTS, **resolved("procore", env)}
    _require(
        values, ("PROCORE_CLIENT_ID", "PROCORE_CLIENT_SECRET", "PROCORE_COMPANY_ID"), "procore"
    )
    try:
        company = int(values["PROCORE_COMPANY_ID"])
    except ValueError:
        raise ConfigurationError("PROCORE_COMPANY_ID must be a number") from None
    return ProcoreSettings(
        auth_url=values["PROCORE_AUTH_URL"],
        api_url=values["PROCORE_API_URL"],
        client_id=values["PROCORE_CLIENT_ID"],
        client_secret=values["PROCORE_CLIENT_SECRET"],
        company_id=company,
    )


def deltek_settings(env: Mapping[str, str] | None = None) -> DeltekSettings:
    values = resolved("deltek", env)
    _require(
        values,
        (
            "DELTEK_API_URL",
            "DELTEK_USERNAME",
            "DELTEK_PASSWORD",
            "DELTEK_DATABASE",
            "DELTEK_CLIENT_ID",
            "DELTEK_CLIENT_SECRET",
        ),
        "deltek",
    )
    return DeltekSettings(
        api_url=values["DELTEK_API_URL"],
        username=values["DELTEK_USERNAME"],
        password=values["DELTEK_PASSWORD"],
        database=values["DELTEK_DATABASE"],
        client_id=values["DELTEK_CLIENT_ID"],
        client_secret=values["DELTEK_CLIENT_SECRET"],
        accounts_path=_env(env).get("DELTEK_ACCOUNTS_PATH") or "GLSummary",
    )


def procore_client(env: Mapping[str, str] | None = None) -> ProcoreClient:
    return ProcoreClient(procore_settings(env))


def deltek_client(env: Mapping[str, str] | None = None) -> DeltekClient:
    return DeltekClient(deltek_settings(env))


def tenant_key(env: Mapping[str, str] | None = None) -> str:
    """Names the Deltek tenant for leases and run-queue limits (no secret in it)."""
    try:
        values = resolved("deltek", env)
    except ConfigurationError:
        values = dict(_env(env))
    url = values.get("DELTEK_API_URL") or "unconfigured"
    database = values.get("DELTEK_DATABASE") or ""
    return f"{url.rstrip('/').lower()}|{database}"
