"""What every part of the state store shares: the URL helpers, the per-tenant scope, the
upsert and chunking helpers, and the ledger's state sets."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from deltek_procore.state.states import DONE, IN_DELTEK, State

# Final ledger states: nothing more will be written to Deltek for this revision.
DONE_STATES = frozenset(str(s) for s in DONE)
RECORD_STATES = tuple(str(s) for s in State)
IN_DELTEK_STATES = tuple(str(s) for s in IN_DELTEK)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def default_state_url(env: dict[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    if env.get("DELTEK_PROCORE_STATE_URL"):
        return env["DELTEK_PROCORE_STATE_URL"]
    home = Path(env.get("DAGSTER_HOME") or Path.cwd() / ".dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'deltek_procore_state.db'}"


def redact_url(url: str) -> str:
    """A state URL fit for logs: any password replaced."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL we cannot parse is shown as its scheme only
        return url.split(":", 1)[0] + "://…"


def chunks(items: Sequence, size: int = 500) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def upsert(dialect: str, table: sa.Table):
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"state store supports SQLite and PostgreSQL, not {dialect}")


def plain(row: Any) -> dict[str, Any]:
    """A row as a dict without its tenant (the store it came from already says which)."""
    out = dict(row._mapping)
    out.pop("tenant", None)
    return out


class TenantScoped:
    """The part every concern of the store builds on: one engine, one tenant. Each query
    filters on ``self.mine(table)`` and each insert carries ``tenant=self.tenant``, so a store
    never reads or changes another tenant's rows."""

    engine: sa.Engine
    tenant: str

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def mine(self, table: sa.Table) -> sa.ColumnElement[bool]:
        return table.c.tenant == self.tenant
