"""Staged Procore records (dp_staged): what the posting assets read their period from."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from deltek_procore.state import schema
from deltek_procore.state.common import TenantScoped, chunks, upsert, utcnow


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


_UPDATED = ("project_id", "period", "status", "updated_at", "content_hash", "payload", "fetched_at")


class Staging(TenantScoped):
    def stage(self, records: Iterable[StagedRecord], run_id: str | None = None) -> int:
        """Insert or replace staged records; returns how many changed content.

        Each new or changed record gets a `fetched` event in the audit trail."""
        rows = [
            {
                "tenant": self.tenant,
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
            for chunk in chunks(rows):
                kinds = {r["kind"] for r in chunk}
                existing = {
                    (k, i): h
                    for k, i, h in conn.execute(
                        sa.select(table.c.kind, table.c.record_id, table.c.content_hash).where(
                            self.mine(table),
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
                                "tenant": self.tenant,
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
                stmt = upsert(self.dialect, table)
                stmt = stmt.on_conflict_do_update(
                    index_elements=[table.c.tenant, table.c.kind, table.c.record_id],
                    set_={c: getattr(stmt.excluded, c) for c in _UPDATED},
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
        query = sa.select(t).where(self.mine(t), t.c.kind == kind)
        if periods is not None:
            query = query.where(t.c.period.in_(list(periods)))
        if project_ids is not None:
            query = query.where(t.c.project_id.in_(list(project_ids)))
        out: list[StagedRecord] = []
        with self.engine.connect() as conn:
            id_chunks: Iterable[Sequence[int] | None] = (
                chunks(list(ids)) if ids is not None else [None]
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
                .where(self.mine(t), t.c.kind == kind, t.c.record_id > last)
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
            rows = conn.execute(query.where(self.mine(t), t.c.kind == kind))
            return {int(r.record_id): (r.updated_at or "", r.status, bool(r.marked)) for r in rows}

    def staged_periods(self, kinds: Sequence[str]) -> list[str]:
        t = schema.staged
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.c.period).where(self.mine(t), t.c.kind.in_(list(kinds))).distinct()
            ).scalars()
            return sorted(p for p in rows if p)


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
