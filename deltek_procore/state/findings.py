"""Period reconciliation findings (dp_findings): what Deltek shows that the ledger does not
expect, and the ledger states those findings set and later give back."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from deltek_procore.state import schema
from deltek_procore.state.common import TenantScoped, plain, utcnow


class Findings(TenantScoped):
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
                        self.mine(t),
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
                    conn.execute(
                        t.update().where(self.mine(t), t.c.id == open_rows[key].id).values(**values)
                    )
                    continue
                previous: dict[str, str] = {}
                state = {"missing": "missing", "changed": "changed"}.get(key[0])
                if state and diff.ledger_ids:
                    mine = sa.and_(self.mine(lt), lt.c.id.in_(list(diff.ledger_ids)))
                    for row in conn.execute(sa.select(lt.c.id, lt.c.status).where(mine)):
                        previous[str(row.id)] = row.status
                    conn.execute(
                        lt.update()
                        .where(mine)
                        .values(status=state, reason=diff.detail[:2000], updated_at=now)
                    )
                conn.execute(
                    t.insert().values(
                        tenant=self.tenant,
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
                conn.execute(
                    t.update().where(self.mine(t), t.c.id == row.id).values(resolved_at=now)
                )
                self._restore_states(conn, json.loads(row.previous_states or "{}"), now)
        return counts

    def _restore_states(self, conn: Any, previous: dict[str, str], now: datetime) -> None:
        lt = schema.ledger
        for row_id, status in previous.items():
            row = conn.execute(sa.select(lt).where(self.mine(lt), lt.c.id == int(row_id))).first()
            if row is None or row.status not in ("missing", "changed"):
                continue
            newest = conn.execute(
                sa.select(sa.func.max(lt.c.revision)).where(
                    self.mine(lt), lt.c.kind == row.kind, lt.c.record_id == row.record_id
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
        query = sa.select(t).where(self.mine(t)).order_by(t.c.period, t.c.id)
        if periods:
            query = query.where(t.c.period.in_(list(periods)))
        if open_only:
            query = query.where(t.c.resolved_at.is_(None))
        with self.engine.connect() as conn:
            return [plain(r) for r in conn.execute(query)]
