"""The webhook inbox (dp_webhook_inbox): each event stored once per tenant (dedup on its
key), claimed by the run that handles it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from deltek_procore.state import schema
from deltek_procore.state.common import TenantScoped, chunks, plain, upsert, utcnow


class Inbox(TenantScoped):
    def add(self, event: Any, raw: dict[str, Any]) -> bool:
        """Store a webhook event once (dedup on its key); True when it was new."""
        t = schema.webhook_inbox
        row = {
            "tenant": self.tenant,
            "event_key": str(event.key),
            "received_at": utcnow(),
            "resource_name": event.resource_name,
            "resource_id": int(event.resource_id),
            "event_type": event.event_type,
            "project_id": event.project_id,
            "payload": json.dumps(raw, default=str),
        }
        stmt = upsert(self.dialect, t).values(**row)
        stmt = stmt.on_conflict_do_nothing(index_elements=[t.c.tenant, t.c.event_key])
        with self.engine.begin() as conn:
            result = conn.execute(stmt)
        return bool(result.rowcount)

    def pending_events(self, limit: int = 10_000) -> list[dict[str, Any]]:
        t = schema.webhook_inbox
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t)
                .where(self.mine(t), t.c.run_key.is_(None))
                .order_by(t.c.received_at)
                .limit(limit)
            )
            return [plain(r) for r in rows]

    def mark_events(self, keys: Sequence[str], run_key: str) -> None:
        t = schema.webhook_inbox
        with self.engine.begin() as conn:
            for chunk in chunks(list(keys)):
                conn.execute(
                    t.update()
                    .where(self.mine(t), t.c.event_key.in_(list(chunk)))
                    .values(run_key=run_key)
                )

    def inbox_count(self) -> int:
        t = schema.webhook_inbox
        with self.engine.connect() as conn:
            query = sa.select(sa.func.count()).select_from(t).where(self.mine(t))
            return conn.execute(query).scalar()

    def events_for_run(self, run_key: str) -> list[dict[str, Any]]:
        """Inbox rows claimed by `run_key` (to re-request a run that never started)."""
        t = schema.webhook_inbox
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t).where(self.mine(t), t.c.run_key == run_key).order_by(t.c.event_key)
            )
            return [plain(r) for r in rows]

    def stored_event_keys(self, keys: Iterable[str]) -> set[str]:
        """Which of `keys` the receiver stored (whatever became of them since)."""
        t = schema.webhook_inbox
        found: set[str] = set()
        with self.engine.connect() as conn:
            for chunk in chunks(sorted(set(keys))):
                query = sa.select(t.c.event_key).where(self.mine(t), t.c.event_key.in_(chunk))
                found.update(conn.execute(query).scalars())
        return found
