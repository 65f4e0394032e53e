"""Build client settings from the configuration contract.

Environment variables win; missing values come from the encrypted credential
store (`deltek-procore credentials set ...`). Errors name the variables that are
missing, never a value.

Every path to a Procore or Deltek client builds its settings here, so the transport rule
lives here once (:func:`checked_url`): credentials only travel over https, except to a
loopback host (the sandbox, a local tunnel) or when the operator opts in with
``DELTEK_PROCORE_ALLOW_INSECURE_HTTP=1``, which is warned about on every construction.

Each builder takes an optional ``tenant`` (:class:`deltek_procore.tenants.Tenant`): values then
come from ``tenant.environment()`` (its file entry and its ``<VAR>__<TENANT>`` variables) and
from the credential store's rows of that tenant, and errors name that tenant's variables.
Without one, the environment is read as it is (today's single company).
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from deltek_procore.credentials import CredentialStore, MasterKeyError
from deltek_procore.deltek.client import DeltekClient, DeltekSettings
from deltek_procore.procore.client import (
    MAX_DETAIL_CONCURRENCY,
    ProcoreClient,
    ProcoreSettings,
)
from deltek_procore.state.store import default_state_url
from deltek_procore.tenants import DEFAULT_TENANT, TENANT_NAME_ENV, Tenant

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


def tenant_environment(
    tenant: Tenant | None, env: Mapping[str, str] | None = None
) -> Mapping[str, str]:
    """The environment as ``tenant`` sees it; the environment itself without a tenant or for
    the implicit one (today's single company reads exactly what it read before)."""
    env = _env(env)
    if tenant is None or tenant.implicit or env.get(TENANT_NAME_ENV) == tenant.name:
        return env  # (a view of this tenant already: not derived twice)
    return tenant.environment(env)


def _tenant_of(view: Mapping[str, str], tenant: Tenant | None) -> Tenant | None:
    """``tenant``, else the tenant ``view`` is of (Tenant.environment() names it)."""
    if tenant is not None or not view.get(TENANT_NAME_ENV):
        return tenant
    return Tenant(name=view[TENANT_NAME_ENV])


def variable(name: str, tenant: Tenant | None) -> str:
    """The variable an operator sets for ``tenant``: the plain name for the implicit tenant,
    ``<NAME>__<TENANT>`` for a tenant of the tenants file."""
    return name if tenant is None or tenant.implicit else name + tenant.suffix()


def _store_command(system: str, tenant: Tenant | None) -> str:
    more = "" if tenant is None or tenant.implicit else f" --tenant {tenant.name}"
    return f"`deltek-procore credentials set {system}{more}`"


def resolved(
    system: str, env: Mapping[str, str] | None = None, *, tenant: Tenant | None = None
) -> dict[str, str]:
    """``system``'s credential values: the (tenant's) environment over its stored set."""
    view = tenant_environment(tenant, env)
    return _resolved(system, view, _tenant_of(view, tenant))


def _resolved(system: str, view: Mapping[str, str], tenant: Tenant | None) -> dict[str, str]:
    try:
        store = CredentialStore(
            default_state_url(dict(view)), env=view, tenant=_tenant_name(tenant)
        )
        values = store.resolve(system, view)  # type: ignore[arg-type]
    except MasterKeyError as exc:
        # The store holds credentials this key cannot read: say that, not "set X".
        raise ConfigurationError(f"{_label(system, tenant)}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the store is optional; env may suffice
        values = {k: v for k, v in view.items() if k.startswith(system.upper() + "_") and v}
        if not values:
            raise ConfigurationError(
                f"{_label(system, tenant)} credentials unavailable: {exc}"
            ) from None
    return values


def _tenant_name(tenant: Tenant | None) -> str:
    return DEFAULT_TENANT if tenant is None else tenant.name


def _label(system: str, tenant: Tenant | None) -> str:
    return system if tenant is None or tenant.implicit else f"{system} (tenant {tenant.name})"


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


def _require(
    values: Mapping[str, str], names: tuple[str, ...], system: str, tenant: Tenant | None
) -> None:
    missing = [variable(n, tenant) for n in names if not values.get(n)]
    if missing:
        raise ConfigurationError(
            f"{_label(system, tenant)}: set {', '.join(missing)} (environment) or run "
            f"{_store_command(system, tenant)}"
        )


def procore_settings(
    env: Mapping[str, str] | None = None, *, tenant: Tenant | None = None
) -> ProcoreSettings:
    view = tenant_environment(tenant, env)
    tenant = _tenant_of(view, tenant)
    values = {**PROCORE_DEFAULTS, **_resolved("procore", view, tenant)}
    _require(
        values,
        ("PROCORE_CLIENT_ID", "PROCORE_CLIENT_SECRET", "PROCORE_COMPANY_ID"),
        "procore",
        tenant,
    )
    try:
        company = int(values["PROCORE_COMPANY_ID"])
    except ValueError:
        raise ConfigurationError(
            f"{variable('PROCORE_COMPANY_ID', tenant)} must be a number"
        ) from None
    return ProcoreSettings(
        auth_url=_url("PROCORE_AUTH_URL", values, view, tenant),
        api_url=_url("PROCORE_API_URL", values, view, tenant),
        client_id=values["PROCORE_CLIENT_ID"],
        client_secret=values["PROCORE_CLIENT_SECRET"],
        company_id=company,
        **_detail_concurrency(view),
    )


DETAIL_CONCURRENCY_ENV = "PROCORE_DETAIL_CONCURRENCY"


def _detail_concurrency(view: Mapping[str, str]) -> dict[str, int]:
    """`PROCORE_DETAIL_CONCURRENCY` (deployment-wide): Procore detail reads in flight at once."""
    raw = (view.get(DETAIL_CONCURRENCY_ENV) or "").strip()
    if not raw:
        return {}
    top = MAX_DETAIL_CONCURRENCY
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= top:
        raise ConfigurationError(
            f"{DETAIL_CONCURRENCY_ENV} must be a whole number from 1 (one detail read at a "
            f"time) to {top}; unset it for the default"
        )
    return {"detail_concurrency": value}


def _url(name: str, values: Mapping[str, str], view: Mapping[str, str], tenant: Tenant | None):
    return checked_url(variable(name, tenant), values[name], view)


def deltek_settings(
    env: Mapping[str, str] | None = None, *, tenant: Tenant | None = None
) -> DeltekSettings:
    view = tenant_environment(tenant, env)
    tenant = _tenant_of(view, tenant)
    values = _resolved("deltek", view, tenant)
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
        tenant,
    )
    return DeltekSettings(
        api_url=_url("DELTEK_API_URL", values, view, tenant),
        username=values["DELTEK_USERNAME"],
        password=values["DELTEK_PASSWORD"],
        database=values["DELTEK_DATABASE"],
        client_id=values["DELTEK_CLIENT_ID"],
        client_secret=values["DELTEK_CLIENT_SECRET"],
        accounts_path=view.get("DELTEK_ACCOUNTS_PATH") or "GLSummary",
    )


def procore_client(
    env: Mapping[str, str] | None = None, *, tenant: Tenant | None = None
) -> ProcoreClient:
    return ProcoreClient(procore_settings(env, tenant=tenant))


def deltek_client(
    env: Mapping[str, str] | None = None, *, tenant: Tenant | None = None
) -> DeltekClient:
    return DeltekClient(deltek_settings(env, tenant=tenant))


def tenant_key(env: Mapping[str, str] | None = None, *, tenant: Tenant | None = None) -> str:
    """Names the Deltek tenant (API root and database of ``tenant``'s Deltek) for leases and
    run-queue limits (no secret in it)."""
    view = tenant_environment(tenant, env)
    try:
        values = _resolved("deltek", view, _tenant_of(view, tenant))
    except ConfigurationError:
        values = dict(view)
    url = values.get("DELTEK_API_URL") or "unconfigured"
    database = values.get("DELTEK_DATABASE") or ""
    return f"{url.rstrip('/').lower()}|{database}"
