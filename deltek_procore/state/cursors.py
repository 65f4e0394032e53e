"""Poll cursors (dp_cursors) and reference snapshots (dp_reference): small named values."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from deltek_procore.state import schema
from deltek_procore.state.common import TenantScoped, upsert, utcnow


class Cursors(TenantScoped):
    def get_cursor(self, name: str) -> str | None:
        t = schema.cursors
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.c.value).where(self.mine(t), t.c.name == name)).first()
        return row[0] if row else None

    def set_cursor(self, name: str, value: str) -> None:
        t = schema.cursors
        stmt = upsert(self.dialect, t).values(tenant=self.tenant, name=name, value=value)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.tenant, t.c.name], set_={"value": stmt.excluded.value}
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def put_reference(self, name: str, payload: Any) -> None:
        t = schema.reference
        stmt = upsert(self.dialect, t).values(
            tenant=self.tenant,
            name=name,
            payload=json.dumps(payload, default=str),
            updated_at=utcnow(),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.tenant, t.c.name],
            set_={"payload": stmt.excluded.payload, "updated_at": stmt.excluded.updated_at},
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def get_reference(self, name: str, default: Any = None) -> Any:
        t = schema.reference
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.c.payload).where(self.mine(t), t.c.name == name)).first()
        return json.loads(row[0]) if row else default
