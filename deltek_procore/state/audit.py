"""The append-only audit trail (dp_audit): nothing ever updates or deletes a row."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from deltek_procore.state import schema
from deltek_procore.state.common import TenantScoped, chunks, utcnow


@dataclass
class AuditEvent:
    event: str
    kind: str | None = None
    record_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class Audit(TenantScoped):
    def audit(self, events: Iterable[AuditEvent], run_id: str | None = None) -> int:
        now = utcnow()
        rows = [
            {
                "tenant": self.tenant,
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
                for chunk in chunks(rows, 1000):
                    conn.execute(schema.audit.insert(), list(chunk))
        return len(rows)

    def audit_trail(
        self, kind: str | None = None, record_id: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        t = schema.audit
        query = sa.select(t).where(self.mine(t)).order_by(t.c.id)
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
