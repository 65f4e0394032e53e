"""Dagster resources: one per external system, each a thin handle on a plain client.

Credentials never pass through Dagster config (which the UI shows): the
resources resolve them at run time from the environment or the encrypted store.
"""

from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from deltek_procore import connections
from deltek_procore.mapping.config import MappingFile, load_mapping
from deltek_procore.state.store import StateStore, default_state_url, redact_url


class ProcoreResource(dg.ConfigurableResource):
    """Procore (read-only): client-credentials service account of one company."""

    _client: Any = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._client = None

    def client(self) -> Any:
        if self._client is None:
            self._client = connections.procore_client()
        return self._client


class DeltekResource(dg.ConfigurableResource):
    """Deltek Vantagepoint tenant (password grant)."""

    _client: Any = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._client = None

    def client(self) -> Any:
        if self._client is None:
            self._client = connections.deltek_client()
        return self._client

    def tenant(self) -> str:
        return connections.tenant_key()


class StateStoreResource(dg.ConfigurableResource):
    """The connector's own database; empty url = DELTEK_PROCORE_STATE_URL or SQLite default."""

    url: str = ""
    _store: Any = PrivateAttr(default=None)

    def store(self) -> StateStore:
        if self._store is None:
            self._store = StateStore(self.url or default_state_url())
        return self._store

    def describe(self) -> str:
        return redact_url(self.url or default_state_url())


class MappingResource(dg.ConfigurableResource):
    """The mapping file (DELTEK_PROCORE_MAPPINGS, default mappings.yaml)."""

    path: str = ""

    def load(self) -> MappingFile:
        return load_mapping(self.path or None)
