"""Tenants: each pair (Procore company <-> Deltek database) one deployment serves.

Without a tenants file (``DELTEK_PROCORE_TENANTS``), today's environment variables define one
tenant named ``default``: nothing an operator of a single company uses changes, and its Dagster
asset keys carry no prefix. With the file, each tenant is built from its entry plus the
environment variables named for it (``<VARIABLE>__<TENANT>``, e.g. ``DELTEK_PASSWORD__ACME``);
the contract's un-suffixed per-tenant variables then apply only to a tenant named ``default``,
so one company's secret can never reach another's runs. Deployment-wide variables (the state
URL, ``DAGSTER_HOME``, the master key, the insecure-HTTP opt-in) are shared by all tenants.

The file (YAML)::

    tenants:
      - name: acme                   # short name: lower case, digits, underscore
        procore_company_id: "4264"
        deltek_api_url: https://acme.deltekfirst.com/ACME/api
        deltek_database: ACME
        mappings: acme.mappings.yaml # relative to this file
        start_month: "2024-01"
        nightly_cron: "0 2 * * *"
        timezone: America/Chicago
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

TENANTS_ENV = "DELTEK_PROCORE_TENANTS"
#: Set in the view :meth:`Tenant.environment` returns for a tenant of the file: which tenant
#: the view is of, so a builder handed only the view (connections.procore_client(env)) still
#: scopes stored credentials and names variables for that tenant.
TENANT_NAME_ENV = "DELTEK_PROCORE_TENANT"
DEFAULT_TENANT = "default"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,30}$")

#: Contract variables that belong to one tenant (credentials, endpoints, its mapping file and
#: calendar). Everything else in the environment is deployment-wide.
TENANT_VARIABLES: tuple[str, ...] = (
    "PROCORE_AUTH_URL",
    "PROCORE_API_URL",
    "PROCORE_CLIENT_ID",
    "PROCORE_CLIENT_SECRET",
    "PROCORE_COMPANY_ID",
    "DELTEK_API_URL",
    "DELTEK_USERNAME",
    "DELTEK_PASSWORD",
    "DELTEK_DATABASE",
    "DELTEK_CLIENT_ID",
    "DELTEK_CLIENT_SECRET",
    "DELTEK_ACCOUNTS_PATH",
    "DELTEK_PROCORE_MAPPINGS",
    "DELTEK_PROCORE_START_MONTH",
    "DELTEK_PROCORE_NIGHTLY_CRON",
    "DELTEK_PROCORE_TIMEZONE",
    "DELTEK_PROCORE_WEBHOOK_SECRET",
)

#: Tenant-file fields and the contract variable each one sets.
_FIELD_VARIABLES = {
    "procore_company_id": "PROCORE_COMPANY_ID",
    "procore_api_url": "PROCORE_API_URL",
    "procore_auth_url": "PROCORE_AUTH_URL",
    "deltek_api_url": "DELTEK_API_URL",
    "deltek_database": "DELTEK_DATABASE",
    "mappings": "DELTEK_PROCORE_MAPPINGS",
    "start_month": "DELTEK_PROCORE_START_MONTH",
    "nightly_cron": "DELTEK_PROCORE_NIGHTLY_CRON",
    "timezone": "DELTEK_PROCORE_TIMEZONE",
}


class TenantsFileError(Exception):
    """The tenants file is missing or invalid; the message names the file and the field."""


class Tenant(BaseModel):
    """One Procore company and the Deltek database its spend posts to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    procore_company_id: str | None = None
    procore_api_url: str | None = None
    procore_auth_url: str | None = None
    deltek_api_url: str | None = None
    deltek_database: str | None = None
    mappings: str | None = None
    start_month: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}$")
    nightly_cron: str | None = None
    timezone: str | None = None
    #: True for the tenant today's environment defines when there is no tenants file.
    implicit: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(
                f"tenant name {value!r}: use lower case letters, digits and '_' "
                "(start with a letter, at most 31 characters)"
            )
        return value

    @field_validator("procore_company_id", mode="before")
    @classmethod
    def _company(cls, value: Any) -> Any:
        return None if value is None else str(value)

    @property
    def keeps_todays_names(self) -> bool:
        """The implicit tenant, and a tenants-file entry named ``default``: a single-company
        deployment that adds a second company keeps its asset keys, job names and with them
        its run history, materializations and partition status in the UI."""
        return self.implicit or self.name == DEFAULT_TENANT

    @property
    def key_prefix(self) -> list[str]:
        """Dagster asset-key prefix: none for ``default`` (today's keys stay), else the name."""
        return [] if self.keeps_todays_names else [self.name]

    def dagster_name(self, base: str) -> str:
        """A job, schedule or sensor name for this tenant: today's name for ``default``,
        ``<tenant>__<base>`` otherwise (Dagster names allow only [A-Za-z0-9_])."""
        return base if self.keeps_todays_names else f"{self.name}__{base}"

    def suffix(self) -> str:
        return "__" + self.name.upper()

    def environment(self, env: Mapping[str, str] | None = None) -> dict[str, str]:
        """The configuration contract as this tenant sees it: deployment-wide variables, the
        file's fields, then ``<VARIABLE>__<TENANT>`` overrides. The implicit tenant and a tenant
        named ``default`` also see the un-suffixed per-tenant variables."""
        env = os.environ if env is None else env
        own_plain = self.implicit or self.name == DEFAULT_TENANT
        suffixed = re.compile(r"__[A-Z][A-Z0-9_]*$")
        out = {
            k: v
            for k, v in env.items()
            if not suffixed.search(k) and (own_plain or k not in TENANT_VARIABLES)
        }
        for field_name, variable in _FIELD_VARIABLES.items():
            value = getattr(self, field_name)
            if value is not None:
                out[variable] = value
        for variable in TENANT_VARIABLES:
            value = env.get(variable + self.suffix())
            if value:
                out[variable] = value
        if not self.implicit:
            out[TENANT_NAME_ENV] = self.name
        return out


class TenantsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenants: list[Tenant]


def tenants_path(env: Mapping[str, str] | None = None) -> Path | None:
    env = os.environ if env is None else env
    value = env.get(TENANTS_ENV)
    return Path(value) if value else None


def load_tenants(env: Mapping[str, str] | None = None) -> list[Tenant]:
    """The deployment's tenants, in file order (the implicit ``default`` without a file)."""
    path = tenants_path(env)
    if path is None:
        return [Tenant(name=DEFAULT_TENANT, implicit=True)]
    return list(_load_file(str(path.resolve())))


@lru_cache(maxsize=8)
def _load_file(path: str) -> tuple[Tenant, ...]:
    file = Path(path)
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TenantsFileError(f"{TENANTS_ENV}={path}: no such file") from None
    except yaml.YAMLError as exc:
        raise TenantsFileError(f"{path}: not valid YAML ({exc})") from None
    try:
        parsed = TenantsFile.model_validate(raw or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise TenantsFileError(f"{path}: {where}: {first['msg']}") from None
    if not parsed.tenants:
        raise TenantsFileError(f"{path}: tenants: name at least one tenant")
    names = [t.name for t in parsed.tenants]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise TenantsFileError(f"{path}: tenant names must be unique: {', '.join(dupes)}")
    out = []
    for tenant in parsed.tenants:
        if tenant.mappings and not Path(tenant.mappings).is_absolute():
            tenant = tenant.model_copy(update={"mappings": str(file.parent / tenant.mappings)})
        out.append(tenant)
    return tuple(out)


def clear_cache() -> None:
    """Forget parsed tenants files (tests write several)."""
    _load_file.cache_clear()


def select_tenant(name: str | None, env: Mapping[str, str] | None = None) -> Tenant:
    """The tenant a command acts on: the one named, else the only one, else an error that
    lists them."""
    tenants = load_tenants(env)
    if name is None:
        if len(tenants) == 1:
            return tenants[0]
        raise TenantsFileError(
            f"{len(tenants)} tenants are configured; choose one with --tenant "
            f"({', '.join(t.name for t in tenants)})"
        )
    for tenant in tenants:
        if tenant.name == name:
            return tenant
    raise TenantsFileError(
        f"no tenant named {name!r}; configured: {', '.join(t.name for t in tenants)}"
    )


def iter_tenants(env: Mapping[str, str] | None = None) -> Iterator[Tenant]:
    yield from load_tenants(env)
