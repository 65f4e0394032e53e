"""The connector's state store: staged records, ledger, audit trail, inbox, leases.

Plain SQLAlchemy Core over one engine. SQLite by default (a file under
DAGSTER_HOME), PostgreSQL when `DELTEK_PROCORE_STATE_URL` says so. Bulk methods
take and return plain dataclasses so the posting layer stays testable.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from deltek_procore.state import schema
from deltek_procore.state.schema import SCHEMA_VERSION
from deltek_procore.state.states import DONE, IN_DELTEK, State

log = logging.getLogger(__name__)

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


@dataclass
class StagedRecord:
    kind: str
    record_id: int
    payload: dict[str, Any]
    content_hash: str
    project_id: int | None = None
    period: str | None = None
    status: str | None = None
    updated_at: str | None = None


@dataclass
class LedgerRow:
    id: int
    kind: str
    record_id: int
    revision: int
    content_hash: str
    status: str
    period: str | None = None
    mapping_hash: str | None = None
    action: str | None = None
    deltek_batch: str | None = None
    deltek_key: str | None = None
    deltek_vendor: str | None = None
    document: str | None = None
    amount: str | None = None
    attempts: int = 0
    reason: str | None = None
    document_json: str | None = None
    run_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def done(self) -> bool:
        return self.status in DONE_STATES


@dataclass
class AuditEvent:
    event: str
    kind: str | None = None
    record_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def _chunks(items: Sequence, size: int = 500) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class StateStore:
    """All reads and writes of the connector's own database."""

    def __init__(
        self, url: str | None = None, *, create: bool = True, tenant: str = "default"
    ):
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

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def __repr__(self) -> str:
        return f"StateStore({redact_url(self.url)})"

    def dispose(self) -> None:
        self.engine.dispose()

    # ---- schema -------------------------------------------------------------------------
    def migrate(self) -> int:
        """Create missing tables and record the schema version; safe to run concurrently."""
        for attempt in range(5):
            try:
                return self._migrate()
            except (sa.exc.OperationalError, IntegrityError):
                # SQLite has no advisory lock: two processes creating a new file race on
                # CREATE TABLE / the version row. The loser retries and finds it done.
                if self.dialect == "postgresql" or attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
        return SCHEMA_VERSION

    def _migrate(self) -> int:
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(424242)"))
            schema.metadata.create_all(conn, checkfirst=True)
            row = conn.execute(
                sa.select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")
            ).first()
            # A new database gets today's tables from create_all: nothing to migrate.
            current = int(row[0]) if row else SCHEMA_VERSION
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS.get(version, ()):
                    conn.execute(sa.text(statement))
            if row is None:
                conn.execute(
                    schema.meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION))
                )
            elif current < SCHEMA_VERSION:
                conn.execute(
                    schema.meta.update()
                    .where(schema.meta.c.key == "schema_version")
                    .values(value=str(SCHEMA_VERSION))
                )
        return SCHEMA_VERSION

    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")
            ).first()
        return int(row[0]) if row else 0

    # ---- staging ------------------------------------------------------------------------
    def stage(self, records: Iterable[StagedRecord], run_id: str | None = None) -> int:
        """Insert or replace staged records; returns how many changed content.

        Each new or changed record gets a `fetched` event in the audit trail."""
        rows = [
            {
                "kind": r.kind,
                "record_id": int(r.record_id),
                "project_id": r.project_id,
                "period": r.period,
                "status": r.status,
                "updated_at": r.updated_at,
                "content_hash": r.content_hash,
                "payload": json.dumps(r.payload, default=str, separators=(",", ":")),
                "fetched_at": utcnow(),
            }
            for r in records
        ]
        if not rows:
            return 0
        table = schema.staged
        changed = 0
        with self.engine.begin() as conn:
            for chunk in _chunks(rows):
                kinds = {r["kind"] for r in chunk}
                existing = {
                    (k, i): h
                    for k, i, h in conn.execute(
                        sa.select(table.c.kind, table.c.record_id, table.c.content_hash).where(
                            table.c.kind.in_(kinds),
                            table.c.record_id.in_([r["record_id"] for r in chunk]),
                        )
                    )
                }
                fresh = [
                    r
                    for r in chunk
                    if existing.get((r["kind"], r["record_id"])) != r["content_hash"]
                ]
                changed += len(fresh)
                if fresh:
                    now = utcnow()
                    conn.execute(
                        schema.audit.insert(),
                        [
                            {
                                "at": now,
                                "run_id": run_id,
                                "kind": r["kind"],
                                "record_id": r["record_id"],
                                "event": "fetched",
                                "detail": json.dumps(
                                    {
                                        "status": r["status"],
                                        "updated_at": r["updated_at"],
                                        "content_hash": r["content_hash"][:12],
                                        "new": (r["kind"], r["record_id"]) not in existing,
                                    }
                                ),
                            }
                            for r in fresh
                        ],
                    )
                stmt = _upsert(self.dialect, table)
                stmt = stmt.on_conflict_do_update(
                    index_elements=[table.c.kind, table.c.record_id],
                    set_={
                        c: getattr(stmt.excluded, c)
                        for c in (
                            "project_id",
                            "period",
                            "status",
                            "updated_at",
                            "content_hash",
                            "payload",
                            "fetched_at",
                        )
                    },
                )
                conn.execute(stmt, list(chunk))
        return changed

    def staged(
        self,
        kind: str,
        *,
        periods: Sequence[str] | None = None,
        ids: Sequence[int] | None = None,
        project_ids: Sequence[int] | None = None,
    ) -> list[StagedRecord]:
        t = schema.staged
        query = sa.select(t).where(t.c.kind == kind)
        if periods is not None:
            query = query.where(t.c.period.in_(list(periods)))
        if project_ids is not None:
            query = query.where(t.c.project_id.in_(list(project_ids)))
        out: list[StagedRecord] = []
        with self.engine.connect() as conn:
            id_chunks: Iterable[Sequence[int] | None] = (
                _chunks(list(ids)) if ids is not None else [None]
            )
            for chunk in id_chunks:
                q = query if chunk is None else query.where(t.c.record_id.in_(list(chunk)))
                for row in conn.execute(q.order_by(t.c.record_id)):
                    out.append(_staged_row(row))
        return out

    def iter_staged(
        self, kind: str, *, periods: Sequence[str] | None = None, page: int = 2000
    ) -> Iterator[StagedRecord]:
        """Like `staged`, one page at a time (keyset on record_id): flat memory at any size."""
        t = schema.staged
        last = -1
        while True:
            query = (
                sa.select(t)
                .where(t.c.kind == kind, t.c.record_id > last)
                .order_by(t.c.record_id)
                .limit(page)
            )
            if periods is not None:
                query = query.where(t.c.period.in_(list(periods)))
            with self.engine.connect() as conn:
                rows = conn.execute(query).fetchall()
            for row in rows:
                yield _staged_row(row)
            if len(rows) < page:
                return
            last = rows[-1].record_id

    def staged_stamps(
        self, kind: str, marker: str | None = None
    ) -> dict[int, tuple[str, str | None, bool]]:
        """record id -> (updated_at, status, marked) of every staged record of `kind`,
        without the payloads: what a poll compares Procore's answer with. `marked`: the
        payload has the key `marker` (e.g. a record whose details were gone)."""
        t = schema.staged
        flag = t.c.payload.like(f'%"{marker}"%') if marker else sa.false()
        query = sa.select(t.c.record_id, t.c.updated_at, t.c.status, flag.label("marked"))
        with self.engine.connect() as conn:
            rows = conn.execute(query.where(t.c.kind == kind))
            return {int(r.record_id): (r.updated_at or "", r.status, bool(r.marked)) for r in rows}

    def staged_periods(self, kinds: Sequence[str]) -> list[str]:
        t = schema.staged
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.c.period).where(t.c.kind.in_(list(kinds))).distinct()
            ).scalars()
            return sorted(p for p in rows if p)

    def get_cursor(self, name: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(schema.cursors.c.value).where(schema.cursors.c.name == name)
            ).first()
        return row[0] if row else None

    def set_cursor(self, name: str, value: str) -> None:
        stmt = _upsert(self.dialect, schema.cursors).values(name=name, value=value)
        stmt = stmt.on_conflict_do_update(
            index_elements=[schema.cursors.c.name], set_={"value": stmt.excluded.value}
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def put_reference(self, name: str, payload: Any) -> None:
        t = schema.reference
        stmt = _upsert(self.dialect, t).values(
            name=name, payload=json.dumps(payload, default=str), updated_at=utcnow()
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.name],
            set_={"payload": stmt.excluded.payload, "updated_at": stmt.excluded.updated_at},
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def get_reference(self, name: str, default: Any = None) -> Any:
        t = schema.reference
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.c.payload).where(t.c.name == name)).first()
        return json.loads(row[0]) if row else default

    # ---- ledger -------------------------------------------------------------------------
    def latest(self, kind: str, record_ids: Sequence[int] | None = None) -> dict[int, LedgerRow]:
        """The newest revision of each record of `kind` (optionally only `record_ids`)."""
        t = schema.ledger
        newest = (
            sa.select(t.c.kind, t.c.record_id, sa.func.max(t.c.revision).label("rev"))
            .where(t.c.kind == kind)
            .group_by(t.c.kind, t.c.record_id)
        )
        if record_ids is not None:
            out: dict[int, LedgerRow] = {}
            for chunk in _chunks(list(record_ids)):
                sub = newest.where(t.c.record_id.in_(list(chunk))).subquery()
                out.update(self._ledger_join(sub))
            return out
        return self._ledger_join(newest.subquery())

    def last_done(self, kind: str, record_ids: Sequence[int]) -> dict[int, LedgerRow]:
        """The newest revision that reached Deltek (posted, adopted or adjusted)."""
        t = schema.ledger
        out: dict[int, LedgerRow] = {}
        for chunk in _chunks(list(record_ids)):
            sub = (
                sa.select(t.c.kind, t.c.record_id, sa.func.max(t.c.revision).label("rev"))
                .where(
                    t.c.kind == kind,
                    t.c.record_id.in_(list(chunk)),
                    t.c.status.in_(IN_DELTEK_STATES),
                )
                .group_by(t.c.kind, t.c.record_id)
                .subquery()
            )
            out.update(self._ledger_join(sub))
        return out

    def _ledger_join(self, sub) -> dict[int, LedgerRow]:
        t = schema.ledger
        query = sa.select(t).join(
            sub,
            sa.and_(
                t.c.kind == sub.c.kind, t.c.record_id == sub.c.record_id, t.c.revision == sub.c.rev
            ),
        )
        with self.engine.connect() as conn:
            return {row.record_id: _ledger_row(row) for row in conn.execute(query)}

    def history(self, kind: str, record_id: int) -> list[LedgerRow]:
        t = schema.ledger
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t)
                .where(t.c.kind == kind, t.c.record_id == int(record_id))
                .order_by(t.c.revision)
            )
            return [_ledger_row(r) for r in rows]

    def ledger_rows(
        self,
        *,
        kinds: Sequence[str] | None = None,
        periods: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
    ) -> list[LedgerRow]:
        t = schema.ledger
        query = sa.select(t)
        if kinds:
            query = query.where(t.c.kind.in_(list(kinds)))
        if periods:
            query = query.where(t.c.period.in_(list(periods)))
        if statuses:
            query = query.where(t.c.status.in_(list(statuses)))
        with self.engine.connect() as conn:
            return [_ledger_row(r) for r in conn.execute(query.order_by(t.c.id))]

    def add_revision(self, **values: Any) -> LedgerRow:
        """Insert the next revision of a record; the unique key stops two writers."""
        t = schema.ledger
        now = utcnow()
        with self.engine.begin() as conn:
            current = conn.execute(
                sa.select(sa.func.max(t.c.revision)).where(
                    t.c.kind == values["kind"], t.c.record_id == int(values["record_id"])
                )
            ).scalar()
            row = {
                "attempts": 0,
                **values,
                "revision": (current or 0) + 1,
                "created_at": now,
                "updated_at": now,
            }
            result = conn.execute(t.insert().values(**row))
            row["id"] = result.inserted_primary_key[0]
        return LedgerRow(**{k: row.get(k) for k in LedgerRow.__dataclass_fields__})

    def add_revisions(self, rows: Sequence[dict[str, Any]]) -> list[LedgerRow]:
        """Bulk `add_revision`: one transaction, one statement per chunk; order preserved."""
        t = schema.ledger
        out: list[LedgerRow] = []
        now = utcnow()
        with self.engine.begin() as conn:
            for chunk in _chunks(list(rows)):
                keys = {(r["kind"], int(r["record_id"])) for r in chunk}
                current: dict[tuple[str, int], int] = {}
                for kind in {k for k, _ in keys}:
                    ids = [rid for k, rid in keys if k == kind]
                    for rid, rev in conn.execute(
                        sa.select(t.c.record_id, sa.func.max(t.c.revision))
                        .where(t.c.kind == kind, t.c.record_id.in_(ids))
                        .group_by(t.c.record_id)
                    ):
                        current[(kind, rid)] = rev
                values = []
                for r in chunk:
                    key = (r["kind"], int(r["record_id"]))
                    current[key] = current.get(key, 0) + 1
                    values.append(
                        {
                            "attempts": 0,
                            **r,
                            "revision": current[key],
                            "created_at": now,
                            "updated_at": now,
                        }
                    )
                result = conn.execute(
                    t.insert().returning(t.c.id, sort_by_parameter_order=True), values
                )
                for value, (row_id,) in zip(values, result.all(), strict=True):
                    value["id"] = row_id
                    out.append(
                        LedgerRow(**{k: value.get(k) for k in LedgerRow.__dataclass_fields__})
                    )
        return out

    def update_ledger_rows(self, updates: Sequence[tuple[int, dict[str, Any]]]) -> None:
        """Bulk per-row updates (each row its own values; same columns per call)."""
        if not updates:
            return
        t = schema.ledger
        now = utcnow()
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row_id, values in updates:
            cols = tuple(sorted(values))
            by_columns.setdefault(cols, []).append(
                {"_row_id": row_id, **{f"v_{k}": v for k, v in values.items()}, "v_updated_at": now}
            )
        with self.engine.begin() as conn:
            for cols, params in by_columns.items():
                stmt = (
                    t.update()
                    .where(t.c.id == sa.bindparam("_row_id"))
                    .values({c: sa.bindparam(f"v_{c}") for c in (*cols, "updated_at")})
                )
                for chunk in _chunks(params):
                    conn.execute(stmt, list(chunk))

    def update_ledger(self, row_ids: Sequence[int], **values: Any) -> None:
        if not row_ids:
            return
        t = schema.ledger
        values["updated_at"] = utcnow()
        with self.engine.begin() as conn:
            for chunk in _chunks(list(row_ids)):
                conn.execute(t.update().where(t.c.id.in_(list(chunk))).values(**values))

    def bump_attempts(self, row_ids: Sequence[int], status: str, reason: str) -> None:
        t = schema.ledger
        with self.engine.begin() as conn:
            for chunk in _chunks(list(row_ids)):
                conn.execute(
                    t.update()
                    .where(t.c.id.in_(list(chunk)))
                    .values(
                        attempts=t.c.attempts + 1, status=status, reason=reason, updated_at=utcnow()
                    )
                )

    def status_counts(self, periods: Sequence[str] | None = None) -> dict[str, dict[str, int]]:
        """{kind: {status: n}} over each record's newest revision."""
        t = schema.ledger
        newest = (
            sa.select(t.c.kind, t.c.record_id, sa.func.max(t.c.revision).label("rev"))
            .group_by(t.c.kind, t.c.record_id)
            .subquery()
        )
        query = (
            sa.select(t.c.kind, t.c.status, sa.func.count())
            .join(
                newest,
                sa.and_(
                    t.c.kind == newest.c.kind,
                    t.c.record_id == newest.c.record_id,
                    t.c.revision == newest.c.rev,
                ),
            )
            .group_by(t.c.kind, t.c.status)
        )
        if periods:
            query = query.where(t.c.period.in_(list(periods)))
        out: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for kind, status, n in conn.execute(query):
                out.setdefault(kind, {})[status] = n
        return out

    # ---- audit --------------------------------------------------------------------------
    def audit(self, events: Iterable[AuditEvent], run_id: str | None = None) -> int:
        now = utcnow()
        rows = [
            {
                "at": now,
                "run_id": run_id,
                "kind": e.kind,
                "record_id": e.record_id,
                "event": e.event,
                "detail": json.dumps(e.detail, default=str, sort_keys=True) if e.detail else None,
            }
            for e in events
        ]
        if rows:
            with self.engine.begin() as conn:
                for chunk in _chunks(rows, 1000):
                    conn.execute(schema.audit.insert(), list(chunk))
        return len(rows)

    def audit_trail(
        self, kind: str | None = None, record_id: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        t = schema.audit
        query = sa.select(t).order_by(t.c.id)
        if kind is not None:
            query = query.where(t.c.kind == kind)
        if record_id is not None:
            query = query.where(t.c.record_id == int(record_id))
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [
                {
                    "at": r.at,
                    "run_id": r.run_id,
                    "kind": r.kind,
                    "record_id": r.record_id,
                    "event": r.event,
                    "detail": json.loads(r.detail) if r.detail else {},
                }
                for r in conn.execute(query)
            ]

    # ---- webhook inbox ------------------------------------------------------------------
    def add(self, event: Any, raw: dict[str, Any]) -> bool:
        """Store a webhook event once (dedup on its key); True when it was new."""
        row = {
            "event_key": str(event.key),
            "received_at": utcnow(),
            "resource_name": event.resource_name,
            "resource_id": int(event.resource_id),
            "event_type": event.event_type,
            "project_id": event.project_id,
            "payload": json.dumps(raw, default=str),
        }
        stmt = _upsert(self.dialect, schema.webhook_inbox).values(**row)
        stmt = stmt.on_conflict_do_nothing(index_elements=[schema.webhook_inbox.c.event_key])
        with self.engine.begin() as conn:
            result = conn.execute(stmt)
        return bool(result.rowcount)

    def pending_events(self, limit: int = 10_000) -> list[dict[str, Any]]:
        t = schema.webhook_inbox
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t).where(t.c.run_key.is_(None)).order_by(t.c.received_at).limit(limit)
            )
            return [dict(r._mapping) for r in rows]

    def mark_events(self, keys: Sequence[str], run_key: str) -> None:
        t = schema.webhook_inbox
        with self.engine.begin() as conn:
            for chunk in _chunks(list(keys)):
                conn.execute(
                    t.update().where(t.c.event_key.in_(list(chunk))).values(run_key=run_key)
                )

    def inbox_count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.count()).select_from(schema.webhook_inbox)
            ).scalar()

    # ---- vendor links, ignore list, review queue ----------------------------------------
    def vendor_links(self) -> dict[int, dict[str, Any]]:
        t = schema.vendor_links
        with self.engine.connect() as conn:
            return {r.procore_vendor_id: dict(r._mapping) for r in conn.execute(sa.select(t))}

    def link_vendor(
        self, procore_vendor_id: int, deltek_vendor: str, client_id: str | None, method: str
    ) -> None:
        t = schema.vendor_links
        stmt = _upsert(self.dialect, t).values(
            procore_vendor_id=int(procore_vendor_id),
            deltek_vendor=deltek_vendor,
            client_id=client_id,
            method=method,
            confirmed=method in {"override", "created"},
            created_at=utcnow(),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.procore_vendor_id],
            set_={
                "deltek_vendor": stmt.excluded.deltek_vendor,
                "client_id": stmt.excluded.client_id,
                "method": stmt.excluded.method,
            },
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def ignore(self, kind: str, record_id: int, reason: str) -> None:
        t = schema.ignored
        stmt = _upsert(self.dialect, t).values(
            kind=kind, record_id=int(record_id), reason=reason, created_at=utcnow()
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.kind, t.c.record_id], set_={"reason": stmt.excluded.reason}
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def unignore(self, kind: str, record_id: int) -> bool:
        t = schema.ignored
        with self.engine.begin() as conn:
            result = conn.execute(
                t.delete().where(t.c.kind == kind, t.c.record_id == int(record_id))
            )
        return bool(result.rowcount)

    def ignored(self, kind: str) -> dict[int, str]:
        t = schema.ignored
        with self.engine.connect() as conn:
            return {
                r.record_id: r.reason
                for r in conn.execute(sa.select(t.c.record_id, t.c.reason).where(t.c.kind == kind))
            }

    def add_review(self, **values: Any) -> bool:
        t = schema.review_queue
        stmt = _upsert(self.dialect, t).values(status="open", created_at=utcnow(), **values)
        stmt = stmt.on_conflict_do_nothing(index_elements=[t.c.kind, t.c.record_id, t.c.new_hash])
        with self.engine.begin() as conn:
            return bool(conn.execute(stmt).rowcount)

    def reviews(
        self, status: str | None = "open", *, kind: str | None = None, record_id: int | None = None
    ) -> list[dict[str, Any]]:
        t = schema.review_queue
        query = sa.select(t).order_by(t.c.id)
        if status:
            query = query.where(t.c.status == status)
        if kind is not None:
            query = query.where(t.c.kind == kind)
        if record_id is not None:
            query = query.where(t.c.record_id == int(record_id))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def review(self, review_id: int) -> dict[str, Any] | None:
        t = schema.review_queue
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t).where(t.c.id == int(review_id))).first()
        return dict(row._mapping) if row else None

    def decide_review(self, review_id: int, decision: str, by: str, reason: str) -> bool:
        """approve | dismiss an open review item; False when it is not open."""
        if decision not in ("approved", "dismissed"):
            raise ValueError(f"decision must be approved or dismissed, not {decision!r}")
        t = schema.review_queue
        with self.engine.begin() as conn:
            result = conn.execute(
                t.update()
                .where(t.c.id == int(review_id), t.c.status == "open")
                .values(
                    status=decision,
                    decided_by=by[:120],
                    decided_at=utcnow(),
                    decision_reason=reason,
                )
            )
            return bool(result.rowcount)

    def review_decisions(self, kind: str, record_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The newest decided review item per record (approved or dismissed)."""
        t = schema.review_queue
        out: dict[int, dict[str, Any]] = {}
        for chunk in _chunks(list(record_ids)):
            query = (
                sa.select(t)
                .where(
                    t.c.kind == kind,
                    t.c.record_id.in_(list(chunk)),
                    t.c.status.in_(("approved", "dismissed")),
                )
                .order_by(t.c.id)
            )
            with self.engine.connect() as conn:
                for row in conn.execute(query):
                    out[row.record_id] = dict(row._mapping)
        return out

    def close_reviews(self, kind: str, record_id: int, why: str) -> None:
        """Open items of a record that a run settled on its own (e.g. policy switched)."""
        t = schema.review_queue
        with self.engine.begin() as conn:
            conn.execute(
                t.update()
                .where(t.c.kind == kind, t.c.record_id == int(record_id), t.c.status == "open")
                .values(status="resolved", decided_at=utcnow(), decision_reason=why)
            )

    # ---- reconciliation findings --------------------------------------------------------
    def record_findings(
        self, period: str, differences: Sequence[Any], transtypes: Sequence[str] = ("AP", "JE")
    ) -> dict[str, int]:
        """Replace the open findings of `period` (for `transtypes`) with `differences`
        (reconcile.Difference).

        A missing or changed document's ledger rows take that state (their previous state
        is kept on the finding); a finding no longer seen is resolved and its rows get
        their state back, or `superseded` when a newer revision has replaced them."""
        t, lt = schema.findings, schema.ledger
        now = utcnow()
        seen: set[tuple[str, str]] = set()
        counts = {"new": 0, "open": 0, "resolved": 0}
        with self.engine.begin() as conn:
            open_rows = {
                (r.finding, r.doc_key): r
                for r in conn.execute(
                    sa.select(t).where(
                        t.c.period == period,
                        t.c.resolved_at.is_(None),
                        t.c.transtype.in_(list(transtypes)),
                    )
                )
            }
            for diff in differences:
                key = (str(diff.finding), diff.key[:200])
                if key in seen:
                    continue
                seen.add(key)
                counts["open"] += 1
                values = {
                    "transtype": diff.transtype,
                    "kind": diff.kind,
                    "record_id": diff.record_id,
                    "batch": (diff.batch or None) and diff.batch[:32],
                    "planned": None if diff.planned is None else str(diff.planned),
                    "in_deltek": None if diff.in_deltek is None else str(diff.in_deltek),
                    "detail": diff.detail,
                    "last_seen": now,
                }
                if key in open_rows:
                    conn.execute(t.update().where(t.c.id == open_rows[key].id).values(**values))
                    continue
                previous: dict[str, str] = {}
                state = {"missing": "missing", "changed": "changed"}.get(key[0])
                if state and diff.ledger_ids:
                    ids = list(diff.ledger_ids)
                    for row in conn.execute(
                        sa.select(lt.c.id, lt.c.status).where(lt.c.id.in_(ids))
                    ):
                        previous[str(row.id)] = row.status
                    conn.execute(
                        lt.update()
                        .where(lt.c.id.in_(ids))
                        .values(status=state, reason=diff.detail[:2000], updated_at=now)
                    )
                conn.execute(
                    t.insert().values(
                        period=period,
                        finding=key[0],
                        doc_key=key[1],
                        previous_states=json.dumps(previous) if previous else None,
                        first_seen=now,
                        **values,
                    )
                )
                counts["new"] += 1
            for key, row in open_rows.items():
                if key in seen:
                    continue
                counts["resolved"] += 1
                conn.execute(t.update().where(t.c.id == row.id).values(resolved_at=now))
                self._restore_states(conn, json.loads(row.previous_states or "{}"), now)
        return counts

    def _restore_states(self, conn: Any, previous: dict[str, str], now: datetime) -> None:
        lt = schema.ledger
        for row_id, status in previous.items():
            row = conn.execute(sa.select(lt).where(lt.c.id == int(row_id))).first()
            if row is None or row.status not in ("missing", "changed"):
                continue
            newest = conn.execute(
                sa.select(sa.func.max(lt.c.revision)).where(
                    lt.c.kind == row.kind, lt.c.record_id == row.record_id
                )
            ).scalar()
            restored = status if newest == row.revision else "superseded"
            conn.execute(
                lt.update()
                .where(lt.c.id == row.id)
                .values(status=restored, reason="Deltek agrees again", updated_at=now)
            )

    def findings(
        self, periods: Sequence[str] | None = None, *, open_only: bool = True
    ) -> list[dict[str, Any]]:
        t = schema.findings
        query = sa.select(t).order_by(t.c.period, t.c.id)
        if periods:
            query = query.where(t.c.period.in_(list(periods)))
        if open_only:
            query = query.where(t.c.resolved_at.is_(None))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # ---- leases -------------------------------------------------------------------------
    def try_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        """Take `name` if free, expired, or held by a dead process on this host."""
        t = schema.leases
        now = time.time()
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:n))"), {"n": name})
            row = conn.execute(sa.select(t).where(t.c.name == name)).first()
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            t.insert().values(name=name, holder=holder, expires_at=now + ttl_s)
                        )
                    return True
                except IntegrityError:
                    return False
            if row.holder == holder or row.expires_at < now or _holder_is_dead(row.holder):
                conn.execute(
                    t.update()
                    .where(t.c.name == name, t.c.holder == row.holder)
                    .values(holder=holder, expires_at=now + ttl_s)
                )
                return True
            return False

    def release_lease(self, name: str, holder: str) -> None:
        t = schema.leases
        with self.engine.begin() as conn:
            conn.execute(t.delete().where(t.c.name == name, t.c.holder == holder))

    @contextmanager
    def lease(self, name: str, *, ttl_s: float = 900, wait_s: float = 1800, poll_s: float = 0.5):
        """Hold `name` for the block; waits for another holder. A heartbeat renews the
        lease every ttl/3 while the block runs, so it never expires under a live run."""
        holder = lease_holder()
        deadline = time.monotonic() + wait_s
        while not self.try_lease(name, holder, ttl_s):
            if time.monotonic() > deadline:
                raise TimeoutError(f"another sync holds '{name}'; gave up after {wait_s:.0f} s")
            time.sleep(poll_s)
        stop = threading.Event()

        def heartbeat() -> None:
            while not stop.wait(ttl_s / 3):
                try:
                    if not self.try_lease(name, holder, ttl_s):
                        log.error("lease %s was taken over while this run held it", name)
                        return
                except Exception as exc:  # noqa: BLE001 - a missed beat is retried next time
                    log.warning("could not renew lease %s: %s", name, exc)

        beat = threading.Thread(target=heartbeat, name=f"lease:{name}", daemon=True)
        beat.start()
        try:
            yield holder
        finally:
            stop.set()
            beat.join(timeout=5)
            self.release_lease(name, holder)


def lease_holder() -> str:
    import threading

    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _holder_is_dead(holder: str) -> bool:
    try:
        host, pid, _ = holder.split(":", 2)
        if host != socket.gethostname():
            return False
        os.kill(int(pid), 0)
        return False
    except ProcessLookupError:
        return True
    except (ValueError, PermissionError):
        return False


def _upsert(dialect: str, table: sa.Table):
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"state store supports SQLite and PostgreSQL, not {dialect}")


def _staged_row(row: Any) -> StagedRecord:
    return StagedRecord(
        kind=row.kind,
        record_id=row.record_id,
        payload=json.loads(row.payload),
        content_hash=row.content_hash,
        project_id=row.project_id,
        period=row.period,
        status=row.status,
        updated_at=row.updated_at,
    )


def _ledger_row(row: Any) -> LedgerRow:
    m = row._mapping
    return LedgerRow(**{k: m[k] for k in LedgerRow.__dataclass_fields__})


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.close()


# version -> SQL statements that bring the previous version's tables up to it.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (),
    2: (),  # a new table only (dp_findings)
    3: tuple(
        f"ALTER TABLE dp_review_queue ADD COLUMN {column}"
        for column in (
            "code VARCHAR(32)",
            "decided_by VARCHAR(120)",
            "decided_at TIMESTAMP",
            "decision_reason TEXT",
        )
    ),
}
