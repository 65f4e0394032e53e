"""Dagster resources: one per external system, each a thin handle on a plain client.

Credentials never pass through Dagster config (which the UI shows): the resources resolve
them at run time from the environment or the encrypted store (`connections`). One resource serves every
tenant: each call names its tenant (None = the implicit one, today's environment) and gets
that tenant's client, store or mapping, built from ``tenant.environment()`` and cached per
tenant name for the run.
"""

from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from deltek_procore import connections
from deltek_procore.mapping.config import MappingFile, load_mapping
from deltek_procore.state.store import StateStore, default_state_url, redact_url
from deltek_procore.tenants import Tenant


def _own(tenant: Tenant | None) -> bool:
    """A tenant of the tenants file; the implicit one reads the environment as before."""
    return tenant is not None and not tenant.implicit


def _name(tenant: Tenant | None) -> str:
    return "default" if tenant is None else tenant.name


class ProcoreResource(dg.ConfigurableResource):
    """Procore (read-only): the client-credentials service account of a tenant's company."""

    _clients: dict = PrivateAttr(default_factory=dict)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._clients = {}

    def client(self, tenant: Tenant | None = None) -> Any:
        name = _name(tenant)
        if name not in self._clients:
            self._clients[name] = (
                connections.procore_client(tenant=tenant)
                if _own(tenant)
                else connections.procore_client()
            )
        return self._clients[name]


class DeltekResource(dg.ConfigurableResource):
    """A tenant's Deltek Vantagepoint database (password grant)."""

    _clients: dict = PrivateAttr(default_factory=dict)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._clients = {}

    def client(self, tenant: Tenant | None = None) -> Any:
        name = _name(tenant)
        if name not in self._clients:
            self._clients[name] = (
                connections.deltek_client(tenant=tenant)
                if _own(tenant)
                else connections.deltek_client()
            )
        return self._clients[name]

    def tenant(self, tenant: Tenant | None = None) -> str:
        """The Deltek database's key (API root | database) for leases; no secret in it."""
        return connections.tenant_key(tenant=tenant) if _own(tenant) else connections.tenant_key()


class StateStoreResource(dg.ConfigurableResource):
    """The connector's own database; empty url = DELTEK_PROCORE_STATE_URL or SQLite default.
    One database for every tenant; each store it hands out is scoped to its tenant."""

    url: str = ""
    _stores: dict = PrivateAttr(default_factory=dict)

    def store(self, tenant: Tenant | None = None) -> StateStore:
        name = _name(tenant)
        if name not in self._stores:
            self._stores[name] = StateStore(self.url or default_state_url(), tenant=name)
        return self._stores[name]

    def describe(self) -> str:
        return redact_url(self.url or default_state_url())


class MappingResource(dg.ConfigurableResource):
    """The mapping file: `path` if set, else the tenant's (DELTEK_PROCORE_MAPPINGS as the
    tenant sees it, default mappings.yaml)."""

    path: str = ""

    def load(self, tenant: Tenant | None = None) -> MappingFile:
        return load_mapping(self.path or None, tenant.environment() if _own(tenant) else None)
