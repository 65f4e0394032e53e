"""The sync ledger (dp_ledger): one row per Procore record revision, what was planned for it
and what happened. Row ids are global; every read and update by id is still scoped to the
store's tenant."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from deltek_procore.state import schema
from deltek_procore.state.common import (
    DONE_STATES,
    IN_DELTEK_STATES,
    TenantScoped,
    chunks,
    utcnow,
)


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


class Ledger(TenantScoped):
    def _newest(self, *where: Any):
        """(kind, record_id, rev) of the newest revision of each of this tenant's records."""
        t = schema.ledger
        return (
            sa.select(t.c.kind, t.c.record_id, sa.func.max(t.c.revision).label("rev"))
            .where(self.mine(t), *where)
            .group_by(t.c.kind, t.c.record_id)
        )

    def latest(self, kind: str, record_ids: Sequence[int] | None = None) -> dict[int, LedgerRow]:
        """The newest revision of each record of `kind` (optionally only `record_ids`)."""
        t = schema.ledger
        newest = self._newest(t.c.kind == kind)
        if record_ids is not None:
            out: dict[int, LedgerRow] = {}
            for chunk in chunks(list(record_ids)):
                sub = newest.where(t.c.record_id.in_(list(chunk))).subquery()
                out.update(self._ledger_join(sub))
            return out
        return self._ledger_join(newest.subquery())

    def last_done(self, kind: str, record_ids: Sequence[int]) -> dict[int, LedgerRow]:
        """The newest revision that reached Deltek (posted, adopted or adjusted)."""
        t = schema.ledger
        out: dict[int, LedgerRow] = {}
        for chunk in chunks(list(record_ids)):
            sub = self._newest(
                t.c.kind == kind,
                t.c.record_id.in_(list(chunk)),
                t.c.status.in_(IN_DELTEK_STATES),
            ).subquery()
            out.update(self._ledger_join(sub))
        return out

    def _ledger_join(self, sub) -> dict[int, LedgerRow]:
        t = schema.ledger
        query = sa.select(t).join(sub, _same_revision(t, sub)).where(self.mine(t))
        with self.engine.connect() as conn:
            return {row.record_id: _ledger_row(row) for row in conn.execute(query)}

    def history(self, kind: str, record_id: int) -> list[LedgerRow]:
        t = schema.ledger
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t)
                .where(self.mine(t), t.c.kind == kind, t.c.record_id == int(record_id))
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
        query = sa.select(t).where(self.mine(t))
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
                    self.mine(t),
                    t.c.kind == values["kind"],
                    t.c.record_id == int(values["record_id"]),
                )
            ).scalar()
            row = {
                "attempts": 0,
                **values,
                "tenant": self.tenant,
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
            for chunk in chunks(list(rows)):
                keys = {(r["kind"], int(r["record_id"])) for r in chunk}
                current: dict[tuple[str, int], int] = {}
                for kind in {k for k, _ in keys}:
                    ids = [rid for k, rid in keys if k == kind]
                    for rid, rev in conn.execute(
                        sa.select(t.c.record_id, sa.func.max(t.c.revision))
                        .where(self.mine(t), t.c.kind == kind, t.c.record_id.in_(ids))
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
                            "tenant": self.tenant,
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
                    .where(self.mine(t), t.c.id == sa.bindparam("_row_id"))
                    .values({c: sa.bindparam(f"v_{c}") for c in (*cols, "updated_at")})
                )
                for chunk in chunks(params):
                    conn.execute(stmt, list(chunk))

    def update_ledger(self, row_ids: Sequence[int], **values: Any) -> None:
        if not row_ids:
            return
        t = schema.ledger
        values["updated_at"] = utcnow()
        with self.engine.begin() as conn:
            for chunk in chunks(list(row_ids)):
                conn.execute(
                    t.update().where(self.mine(t), t.c.id.in_(list(chunk))).values(**values)
                )

    def bump_attempts(self, row_ids: Sequence[int], status: str, reason: str) -> None:
        t = schema.ledger
        with self.engine.begin() as conn:
            for chunk in chunks(list(row_ids)):
                conn.execute(
                    t.update()
                    .where(self.mine(t), t.c.id.in_(list(chunk)))
                    .values(
                        attempts=t.c.attempts + 1, status=status, reason=reason, updated_at=utcnow()
                    )
                )

    def status_counts(self, periods: Sequence[str] | None = None) -> dict[str, dict[str, int]]:
        """{kind: {status: n}} over each record's newest revision."""
        t = schema.ledger
        newest = self._newest().subquery()
        query = (
            sa.select(t.c.kind, t.c.status, sa.func.count())
            .join(newest, _same_revision(t, newest))
            .where(self.mine(t))
            .group_by(t.c.kind, t.c.status)
        )
        if periods:
            query = query.where(t.c.period.in_(list(periods)))
        out: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for kind, status, n in conn.execute(query):
                out.setdefault(kind, {})[status] = n
        return out


def _same_revision(t: sa.Table, sub: Any) -> sa.ColumnElement[bool]:
    return sa.and_(
        t.c.kind == sub.c.kind, t.c.record_id == sub.c.record_id, t.c.revision == sub.c.rev
    )


def _ledger_row(row: Any) -> LedgerRow:
    m = row._mapping
    return LedgerRow(**{k: m[k] for k in LedgerRow.__dataclass_fields__})
