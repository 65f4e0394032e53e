"""The state store on SQLite and on PostgreSQL: staging, ledger revisions, audit, inbox, leases."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from deltek_procore.state.store import AuditEvent, StagedRecord, StateStore, redact_url


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path) -> StateStore:
    url = (
        f"sqlite:///{tmp_path / 's.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    s = StateStore(url)
    yield s
    s.dispose()


def staged(rid: int, h: str, period: str = "2025-01") -> StagedRecord:
    return StagedRecord(
        "direct_cost", rid, {"id": rid, "v": h}, h, project_id=1, period=period, status="approved"
    )


def test_schema_is_created_versioned_and_migrate_is_idempotent(store: StateStore) -> None:
    assert store.schema_version() == 4
    assert store.migrate() == 4
    tables = set(sa.inspect(store.engine).get_table_names())
    assert {"dp_ledger", "dp_audit", "dp_staged", "dp_webhook_inbox", "dp_leases"} <= tables
    assert "dp_findings" in tables


def test_stage_upserts_and_counts_changes(store: StateStore) -> None:
    assert store.stage([staged(1, "a"), staged(2, "b")]) == 2
    assert store.stage([staged(1, "a"), staged(2, "c", "2025-02")]) == 1
    rows = {r.record_id: r for r in store.staged("direct_cost")}
    assert rows[2].content_hash == "c" and rows[2].period == "2025-02"
    assert [r.record_id for r in store.staged("direct_cost", periods=["2025-01"])] == [1]
    assert [r.record_id for r in store.staged("direct_cost", ids=[2])] == [2]


def test_ledger_revisions_latest_and_last_done(store: StateStore) -> None:
    first = store.add_revision(kind="direct_cost", record_id=7, content_hash="h1", status="posting")
    store.update_ledger([first.id], status="posted", deltek_batch="B1")
    second = store.add_revision(
        kind="direct_cost", record_id=7, content_hash="h2", status="quarantined", reason="x"
    )
    assert (first.revision, second.revision) == (1, 2)
    assert store.latest("direct_cost", [7])[7].status == "quarantined"
    assert store.last_done("direct_cost", [7])[7].revision == 1
    assert store.status_counts() == {"direct_cost": {"quarantined": 1}}
    with pytest.raises(sa.exc.IntegrityError):
        with store.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO dp_ledger (kind, record_id, revision, content_hash, status, attempts, created_at, updated_at)"
                    " VALUES ('direct_cost', 7, 1, 'h', 'posted', 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )


def test_audit_is_append_only_and_ordered(store: StateStore) -> None:
    store.audit(
        [AuditEvent("fetch", "direct_cost", 1, {"n": 1}), AuditEvent("post", "direct_cost", 1)],
        "run-1",
    )
    store.audit([AuditEvent("posted", "direct_cost", 1, {"batch": "B"})], "run-2")
    trail = store.audit_trail("direct_cost", 1)
    assert [e["event"] for e in trail] == ["fetch", "post", "posted"]
    assert trail[2]["run_id"] == "run-2" and trail[2]["detail"] == {"batch": "B"}


def test_inbox_stores_each_event_once_even_concurrently(store: StateStore) -> None:
    events = [
        SimpleNamespace(
            key=f"k{i}",
            resource_name="Direct Costs",
            resource_id=i,
            event_type="update",
            project_id=1,
        )
        for i in range(40)
    ]
    results: list[bool] = []
    lock = threading.Lock()

    def add_all() -> None:
        for event in events:
            new = store.add(event, {"id": event.key})
            with lock:
                results.append(new)

    threads = [threading.Thread(target=add_all) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 40 and store.inbox_count() == 40
    pending = store.pending_events()
    store.mark_events([p["event_key"] for p in pending[:10]], "run-key-1")
    assert len(store.pending_events()) == 30


def test_leases_exclude_a_second_holder_until_released(store: StateStore) -> None:
    assert store.try_lease("deltek:t", "host:1:a", 60)
    assert not store.try_lease("deltek:t", "otherhost:2:b", 60)
    assert store.try_lease("deltek:t", "host:1:a", 60)  # re-entrant for its holder
    store.release_lease("deltek:t", "host:1:a")
    assert store.try_lease("deltek:t", "otherhost:2:b", 60)
    assert store.try_lease("expired", "x:1:1", -1) and store.try_lease("expired", "y:2:2", 60)


def test_repr_hides_the_password() -> None:
    assert "s3cret" not in redact_url("postgresql+psycopg2://u:s3cret@h/db")


def test_the_lease_heartbeat_renews_a_lease_held_longer_than_its_ttl(store: StateStore) -> None:
    with store.lease("deltek:beat", ttl_s=0.6, poll_s=0.05) as holder:
        threading.Event().wait(1.5)  # more than twice the ttl
        assert not store.try_lease("deltek:beat", "otherhost:9:z", 60), "lease expired"
    assert store.try_lease("deltek:beat", "otherhost:9:z", 60)
    assert holder != "otherhost:9:z"


def finding(kind: str, key: str, ids: tuple[int, ...], what: str = "missing"):
    from deltek_procore.posting.reconcile import Difference
    from deltek_procore.state.states import Finding

    return Difference(Finding(what), "2025-01", "AP", key, f"{what} in Deltek", "direct_cost",
                      7, "PCAP202501X", ids)  # fmt: skip


def test_findings_set_the_ledger_state_and_restore_it_once_deltek_agrees(
    store: StateStore,
) -> None:
    row = store.add_revision(kind="direct_cost", record_id=7, content_hash="h", status="posted")
    counts = store.record_findings("2025-01", [finding("direct_cost", "V|I", (row.id,))])
    assert counts == {"new": 1, "open": 1, "resolved": 0}
    assert store.latest("direct_cost", [7])[7].status == "missing"
    assert store.record_findings("2025-01", [finding("direct_cost", "V|I", (row.id,))])["new"] == 0
    [open_finding] = store.findings(["2025-01"])
    assert open_finding["finding"] == "missing" and open_finding["record_id"] == 7
    assert store.record_findings("2025-01", [])["resolved"] == 1
    assert store.latest("direct_cost", [7])[7].status == "posted"
    assert store.findings(["2025-01"]) == []
    assert len(store.findings(["2025-01"], open_only=False)) == 1


def test_a_resolved_finding_supersedes_a_revision_replaced_since(store: StateStore) -> None:
    old = store.add_revision(kind="direct_cost", record_id=8, content_hash="h", status="posted")
    store.record_findings("2025-01", [finding("direct_cost", "V|J", (old.id,))])
    store.add_revision(kind="direct_cost", record_id=8, content_hash="h", status="posted")
    store.record_findings("2025-01", [])
    assert [r.status for r in store.history("direct_cost", 8)] == ["superseded", "posted"]
