"""What a person decides: the ignore list (dp_ignored) and the review queue
(dp_review_queue). Review ids are global; reading or deciding one is scoped to the tenant."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from deltek_procore.state import schema
from deltek_procore.state.common import TenantScoped, chunks, plain, upsert, utcnow


class Reviews(TenantScoped):
    def ignore(self, kind: str, record_id: int, reason: str) -> None:
        t = schema.ignored
        stmt = upsert(self.dialect, t).values(
            tenant=self.tenant,
            kind=kind,
            record_id=int(record_id),
            reason=reason,
            created_at=utcnow(),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.tenant, t.c.kind, t.c.record_id],
            set_={"reason": stmt.excluded.reason},
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def unignore(self, kind: str, record_id: int) -> bool:
        t = schema.ignored
        with self.engine.begin() as conn:
            result = conn.execute(
                t.delete().where(self.mine(t), t.c.kind == kind, t.c.record_id == int(record_id))
            )
        return bool(result.rowcount)

    def ignored(self, kind: str) -> dict[int, str]:
        t = schema.ignored
        query = sa.select(t.c.record_id, t.c.reason).where(self.mine(t), t.c.kind == kind)
        with self.engine.connect() as conn:
            return {r.record_id: r.reason for r in conn.execute(query)}

    def add_review(self, **values: Any) -> bool:
        t = schema.review_queue
        stmt = upsert(self.dialect, t).values(
            status="open", created_at=utcnow(), **values, tenant=self.tenant
        )
        stmt = stmt.on_conflict_do_nothing(
            index_elements=[t.c.tenant, t.c.kind, t.c.record_id, t.c.new_hash]
        )
        with self.engine.begin() as conn:
            return bool(conn.execute(stmt).rowcount)

    def reviews(
        self, status: str | None = "open", *, kind: str | None = None, record_id: int | None = None
    ) -> list[dict[str, Any]]:
        t = schema.review_queue
        query = sa.select(t).where(self.mine(t)).order_by(t.c.id)
        if status:
            query = query.where(t.c.status == status)
        if kind is not None:
            query = query.where(t.c.kind == kind)
        if record_id is not None:
            query = query.where(t.c.record_id == int(record_id))
        with self.engine.connect() as conn:
            return [plain(r) for r in conn.execute(query)]

    def review(self, review_id: int) -> dict[str, Any] | None:
        t = schema.review_queue
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t).where(self.mine(t), t.c.id == int(review_id))).first()
        return plain(row) if row else None

    def decide_review(self, review_id: int, decision: str, by: str, reason: str) -> bool:
        """approve | dismiss an open review item; False when it is not open."""
        if decision not in ("approved", "dismissed"):
            raise ValueError(f"decision must be approved or dismissed, not {decision!r}")
        t = schema.review_queue
        with self.engine.begin() as conn:
            result = conn.execute(
                t.update()
                .where(self.mine(t), t.c.id == int(review_id), t.c.status == "open")
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
        for chunk in chunks(list(record_ids)):
            query = (
                sa.select(t)
                .where(
                    self.mine(t),
                    t.c.kind == kind,
                    t.c.record_id.in_(list(chunk)),
                    t.c.status.in_(("approved", "dismissed")),
                )
                .order_by(t.c.id)
            )
            with self.engine.connect() as conn:
                for row in conn.execute(query):
                    out[row.record_id] = plain(row)
        return out

    def close_reviews(self, kind: str, record_id: int, why: str) -> None:
        """Open items of a record that a run settled on its own (e.g. policy switched)."""
        t = schema.review_queue
        with self.engine.begin() as conn:
            conn.execute(
                t.update()
                .where(
                    self.mine(t),
                    t.c.kind == kind,
                    t.c.record_id == int(record_id),
                    t.c.status == "open",
                )
                .values(status="resolved", decided_at=utcnow(), decision_reason=why)
            )
