"""The connector's state store: one object over staged records, ledger, audit trail, inbox,
leases, vendor links and reviews, each concern in its own module of this package.

Plain SQLAlchemy Core over one engine. SQLite by default (a file under DAGSTER_HOME),
PostgreSQL when `DELTEK_PROCORE_STATE_URL` says so. Bulk methods take and return plain
dataclasses so the posting layer stays testable. A store is scoped to one tenant: it reads
and writes only that tenant's rows, so several tenants share one database safely.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from deltek_procore.state import migrate as _migrations
from deltek_procore.state import schema  # noqa: F401 - re-exported: callers use store.schema
from deltek_procore.state.audit import Audit, AuditEvent
from deltek_procore.state.common import (
    DONE_STATES,
    IN_DELTEK_STATES,
    RECORD_STATES,
    default_state_url,
    redact_url,
    utcnow,
)
from deltek_procore.state.cursors import Cursors
from deltek_procore.state.findings import Findings
from deltek_procore.state.inbox import Inbox
from deltek_procore.state.leases import Leases, lease_holder
from deltek_procore.state.ledger import Ledger, LedgerRow
from deltek_procore.state.links import VendorLinks
from deltek_procore.state.reviews import Reviews
from deltek_procore.state.schema import SCHEMA_VERSION, TENANT_LENGTH
from deltek_procore.state.staging import StagedRecord, Staging

__all__ = [
    "DONE_STATES",
    "IN_DELTEK_STATES",
    "RECORD_STATES",
    "SCHEMA_VERSION",
    "AuditEvent",
    "LedgerRow",
    "StagedRecord",
    "StateStore",
    "default_state_url",
    "lease_holder",
    "redact_url",
    "utcnow",
]


class StateStore(Staging, Cursors, Ledger, Audit, Inbox, Leases, VendorLinks, Reviews, Findings):
    """All reads and writes of the connector's own database, for one tenant."""

    def __init__(self, url: str | None = None, *, create: bool = True, tenant: str = "default"):
        if not tenant or len(tenant) > TENANT_LENGTH:
            raise ValueError(f"tenant must be 1 to {TENANT_LENGTH} characters, not {tenant!r}")
        self.url = url or default_state_url()
        #: the tenant every read and write of this store is scoped to (deltek_procore.tenants)
        self.tenant = tenant
        kwargs: dict[str, Any] = {"future": True}
        if self.url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 60}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine = sa.create_engine(self.url, **kwargs)
        if self.url.startswith("sqlite"):
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        if create:
            self.migrate()

    def __repr__(self) -> str:
        scope = "" if self.tenant == "default" else f", tenant={self.tenant!r}"
        return f"StateStore({redact_url(self.url)}{scope})"

    def dispose(self) -> None:
        self.engine.dispose()

    # ---- schema -------------------------------------------------------------------------
    def migrate(self) -> int:
        """Bring the tables to the newest Alembic revision (deltek_procore.state.migrate);
        safe to run from several processes at once. Returns the schema version."""
        return _migrations.upgrade(self.engine)

    def schema_version(self) -> int:
        """The revision the database is at (0 before any table exists)."""
        with self.engine.connect() as conn:
            return _migrations.schema_version(conn)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.close()
