"""Vendor links (dp_vendor_links): which Deltek vendor each Procore vendor posts to."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from deltek_procore.state import schema
from deltek_procore.state.common import TenantScoped, plain, upsert, utcnow


class VendorLinks(TenantScoped):
    def vendor_links(self) -> dict[int, dict[str, Any]]:
        t = schema.vendor_links
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t).where(self.mine(t)))
            return {r.procore_vendor_id: plain(r) for r in rows}

    def link_vendor(
        self, procore_vendor_id: int, deltek_vendor: str, client_id: str | None, method: str
    ) -> None:
        t = schema.vendor_links
        stmt = upsert(self.dialect, t).values(
            tenant=self.tenant,
            procore_vendor_id=int(procore_vendor_id),
            deltek_vendor=deltek_vendor,
            client_id=client_id,
            method=method,
            confirmed=method in {"override", "created"},
            created_at=utcnow(),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.tenant, t.c.procore_vendor_id],
            set_={
                "deltek_vendor": stmt.excluded.deltek_vendor,
                "client_id": stmt.excluded.client_id,
                "method": stmt.excluded.method,
            },
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)
