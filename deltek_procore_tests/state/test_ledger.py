"""The ledger per tenant: revisions count per tenant, and no update by row id crosses over."""

from __future__ import annotations

import pytest
import sqlalchemy as sa


def test_revisions_are_numbered_per_tenant(tenants) -> None:
    acme, globex = tenants
    a1 = acme.add_revision(kind="direct_cost", record_id=7, content_hash="a1", status="posted")
    g1 = globex.add_revision(kind="direct_cost", record_id=7, content_hash="g1", status="posting")
    a2 = acme.add_revision(kind="direct_cost", record_id=7, content_hash="a2", status="review")
    assert (a1.revision, g1.revision, a2.revision) == (1, 1, 2)
    [g2, g3] = globex.add_revisions(
        [
            {"kind": "direct_cost", "record_id": 7, "content_hash": "g2", "status": "posted"},
            {"kind": "direct_cost", "record_id": 8, "content_hash": "g3", "status": "posted"},
        ]
    )
    assert (g2.revision, g3.revision) == (2, 1)
    assert acme.latest("direct_cost")[7].content_hash == "a2"
    assert globex.latest("direct_cost", [7, 8])[7].content_hash == "g2"
    assert set(acme.latest("direct_cost")) == {7}
    assert acme.last_done("direct_cost", [7, 8])[7].content_hash == "a1"
    assert [r.content_hash for r in globex.history("direct_cost", 7)] == ["g1", "g2"]
    assert [r.content_hash for r in acme.ledger_rows()] == ["a1", "a2"]
    assert acme.status_counts() == {"direct_cost": {"review": 1}}
    assert globex.status_counts() == {"direct_cost": {"posted": 2}}


def test_updates_by_row_id_never_touch_another_tenants_row(tenants) -> None:
    acme, globex = tenants
    mine = acme.add_revision(kind="requisition", record_id=3, content_hash="h", status="posting")
    theirs = globex.add_revision(
        kind="requisition", record_id=3, content_hash="h", status="posting"
    )
    # globex's store is handed acme's row id (a bug elsewhere, a forged run config): no effect
    globex.update_ledger([mine.id], status="posted")
    globex.update_ledger_rows([(mine.id, {"status": "failed"})])
    globex.bump_attempts([mine.id], "failed", "boom")
    assert acme.history("requisition", 3)[0].status == "posting"
    assert acme.history("requisition", 3)[0].attempts == 0
    acme.update_ledger([mine.id], status="posted", deltek_batch="B1")
    acme.bump_attempts([mine.id], "posted", "ok")
    assert acme.latest("requisition")[3].deltek_batch == "B1"
    assert acme.latest("requisition")[3].attempts == 1
    assert globex.latest("requisition")[3].status == "posting"
    assert globex.latest("requisition")[3].id == theirs.id


def test_the_revision_key_includes_the_tenant(tenants) -> None:
    acme, _ = tenants
    acme.add_revision(kind="direct_cost", record_id=7, content_hash="h", status="posted")
    insert = (
        "INSERT INTO dp_ledger (tenant, kind, record_id, revision, content_hash, status,"
        " attempts, created_at, updated_at) VALUES (:t, 'direct_cost', 7, 1, 'h', 'posted', 0,"
        " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
    )
    with acme.engine.begin() as conn:
        conn.execute(sa.text(insert), {"t": "globex"})  # another tenant's revision 1: fine
    with pytest.raises(sa.exc.IntegrityError):
        with acme.engine.begin() as conn:
            conn.execute(sa.text(insert), {"t": "acme"})  # acme's own revision 1 twice: refused
