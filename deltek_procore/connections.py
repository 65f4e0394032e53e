"""Build client settings from the configuration contract.

Environment variables win; missing values come from the encrypted credential
store (`deltek-procore credentials set ...`). Errors name the variables that are
missing, never a value.

Every path to a Procore or Deltek client builds its settings here, so the transport rule
lives here once (:func:`checked_url`): credentials only travel over https, except to a
loopback host (the sandbox, a local tunnel) or when the operator opts in with
``DELTEK_PROCORE_ALLOW_INSECURE_HTTP=1``, which is warned about on every construction.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from deltek_procore.credentials import CredentialStore, MasterKeyError
from deltek_procore.deltek.client import DeltekClient, DeltekSettings
from deltek_procore.procore.client import ProcoreClient, ProcoreSettings
from deltek_procore.state.store import default_state_url

log = logging.getLogger(__name__)

INSECURE_HTTP_ENV = "DELTEK_PROCORE_ALLOW_INSECURE_HTTP"
_TRUE = frozenset({"1", "true", "yes"})

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
    except MasterKeyError as exc:
        # The store holds credentials this key cannot read: say that, not "set X".
        raise ConfigurationError(f"{system}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the store is optional; env may suffice
        values = {k: v for k, v in env.items() if k.startswith(system.upper() + "_") and v}
        if not values:
            raise ConfigurationError(f"{system} credentials unavailable: {exc}") from None
    return values


_EXAMPLES = {
    "PROCORE_AUTH_URL": PROCORE_DEFAULTS["PROCORE_AUTH_URL"],
    "PROCORE_API_URL": PROCORE_DEFAULTS["PROCORE_API_URL"],
    "DELTEK_API_URL": "https://acme.deltekfirst.com/ACME/api",
}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def checked_url(name: str, url: str, env: Mapping[str, str] | None = None) -> str:
    """``url`` (the value of variable ``name``) if credentials may be sent to it.

    https always; http only to a loopback host (127.0.0.0/8, ::1, localhost), or anywhere
    when ``DELTEK_PROCORE_ALLOW_INSECURE_HTTP=1``, then with a warning naming the variable
    and the host. Messages name the host only: a URL may carry a user or a token.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        host = parts.hostname or ""
    except ValueError:
        host = ""
    if scheme not in ("http", "https") or not host:
        raise ConfigurationError(
            f"{name} must be an https:// URL with a host name (e.g. "
            f"{_EXAMPLES.get(name, 'https://host/path')}); set {name} to one"
        )
    if scheme == "https" or _is_loopback(host):
        return url
    if _env(env).get(INSECURE_HTTP_ENV, "").strip().lower() in _TRUE:
        log.warning(
            "%s uses plain http:// to %s (%s=1): credentials and data cross the network "
            "unencrypted",
            name,
            host,
            INSECURE_HTTP_ENV,
        )
        return url
    raise ConfigurationError(
        f"{name} uses plain http:// to {host}, which would send credentials unencrypted: set "
        f"{name} to its https:// URL (for a test server on a network you trust, "
        f"{INSECURE_HTTP_ENV}=1 allows http)"
    )


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
        auth_url=checked_url("PROCORE_AUTH_URL", values["PROCORE_AUTH_URL"], env),
        api_url=checked_url("PROCORE_API_URL", values["PROCORE_API_URL"], env),
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
        api_url=checked_url("DELTEK_API_URL", values["DELTEK_API_URL"], env),
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
