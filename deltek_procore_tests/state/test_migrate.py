"""Alembic migrations of the state store: a fresh database at the head, a database written
by release a990c50 (schema_version 3, no Alembic) upgraded with every row kept as tenant
`default`, older stores, concurrent first starts, and no drift between the two paths."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import subprocess
import sys

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from cryptography.fernet import Fernet

from deltek_procore.credentials import CredentialStore
from deltek_procore.state import migrate, schema
from deltek_procore.state.store import StateStore
from deltek_procore_tests.state.fixtures import release_db
from deltek_procore_tests.state.fixtures import release_v3_schema as v3


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url)


def _revision(url: str) -> str | None:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return migrate.current_revision(conn)
    finally:
        engine.dispose()


def _shape(url: str) -> dict[str, tuple]:
    """Every table's columns (name, nullable, default), primary key, unique constraints and
    indexes: what a fresh and an upgraded database must agree on."""
    engine = _engine(url)
    try:
        inspector = sa.inspect(engine)
        out = {}
        for table in sorted(inspector.get_table_names()):
            columns = {
                c["name"]: (c["nullable"], str(c.get("default") or "").strip("'"))
                for c in inspector.get_columns(table)
            }
            uniques = sorted(
                (u["name"], tuple(u["column_names"]))
                for u in inspector.get_unique_constraints(table)
            )
            indexes = sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table)
                if not i.get("duplicates_constraint")
            )
            pk = tuple(inspector.get_pk_constraint(table)["constrained_columns"])
            out[table] = (columns, pk, uniques, indexes)
        return out
    finally:
        engine.dispose()


def _release_database(url: str) -> tuple[dict[str, int], bytes]:
    key = Fernet.generate_key()
    engine = _engine(url)
    counts = release_db.build(engine, key)
    engine.dispose()
    return counts, key


def test_a_fresh_database_is_created_at_the_head(state_url) -> None:
    store = StateStore(state_url)
    assert store.schema_version() == schema.SCHEMA_VERSION == int(migrate.HEAD)
    assert _revision(state_url) == migrate.HEAD
    tables = set(sa.inspect(store.engine).get_table_names())
    assert {t.name for t in schema.metadata.sorted_tables} | {migrate.VERSION_TABLE} == tables
    assert "alembic_version" not in tables  # Dagster's own table name stays free
    assert store.migrate() == 4  # again: nothing to do
    store.dispose()


def test_a_fresh_and_an_upgraded_database_have_the_same_schema(state_url, tmp_path) -> None:
    """The head tables in schema.py and what the revisions build from the release agree."""
    StateStore(state_url).dispose()
    fresh = _shape(state_url)
    if state_url.startswith("sqlite"):
        upgraded_url = f"sqlite:///{tmp_path / 'upgraded.db'}"
    else:  # a second private schema on the same server
        upgraded_url = state_url.replace("search_path%3D", "search_path%3Dup_")
        admin = sa.create_engine(state_url.split("?")[0], isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA up_{state_url.rsplit('%3D', 1)[1]}"))
    try:
        _release_database(upgraded_url)
        StateStore(upgraded_url).dispose()
        assert _shape(upgraded_url) == fresh
        engine = _engine(upgraded_url)
        with engine.connect() as conn:
            opts = {"compare_type": True, "version_table": migrate.VERSION_TABLE}
            context = MigrationContext.configure(conn, opts=opts)
            assert compare_metadata(context, schema.metadata) == []
        engine.dispose()
    finally:
        if not state_url.startswith("sqlite"):
            with admin.connect() as conn:
                conn.execute(sa.text(f"DROP SCHEMA up_{state_url.rsplit('%3D', 1)[1]} CASCADE"))
            admin.dispose()
    pk = fresh["dp_staged"][1]
    assert pk == ("tenant", "kind", "record_id")


def test_a_release_database_is_stamped_at_the_baseline_and_keeps_every_row(state_url) -> None:
    counts, key = _release_database(state_url)
    assert _revision(state_url) is None
    before = StateStore(state_url, create=False)
    assert before.schema_version() == 3  # what status printed under the release
    before.dispose()

    store = StateStore(state_url)  # opening it upgrades it
    assert store.schema_version() == 4 and _revision(state_url) == migrate.HEAD
    with store.engine.connect() as conn:
        for table in schema.metadata.sorted_tables:
            n = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
            assert n == counts[table.name], table.name
            if "tenant" in table.c:
                tenants = set(conn.execute(sa.select(table.c.tenant).distinct()).scalars())
                assert tenants == {"default"}, table.name
        meta = conn.execute(sa.text("SELECT value FROM dp_meta WHERE key = 'schema_version'"))
        assert meta.scalar() == "4"

    # every ledger row, field by field, through the store of tenant `default`
    rows = {r.id: r for r in store.ledger_rows()}
    assert sorted(rows) == [r["id"] for r in release_db.LEDGER]
    for old in release_db.LEDGER:
        new = rows[old["id"]]
        for field in ("kind", "record_id", "revision", "content_hash", "status", "deltek_batch",
                      "deltek_key", "document", "amount", "attempts", "document_json", "run_id"):  # fmt: skip
            assert getattr(new, field) == old[field], (old["id"], field)
    assert store.latest("direct_cost")[11].revision == 2
    assert store.last_done("requisition", [11])[11].status == "adopted"
    assert store.status_counts()["direct_cost"] == {"posted": 1}
    assert {r.record_id for r in store.staged("direct_cost")} == {11}
    assert [e["event"] for e in store.audit_trail("direct_cost", 11)] == [
        "fetched", "planned", "posted", "verified"
    ]  # fmt: skip
    assert [e["event_key"] for e in store.pending_events()] == ["ev-1"]
    assert set(store.vendor_links()) == {501, 502}
    assert store.ignored("direct_cost") == {99: "paid outside"}
    [review] = store.reviews()
    assert review["code"] == "late_change" and "tenant" not in review
    assert not store.try_lease("deltek:post", "host:2:2", 60)  # the release's holder keeps it
    assert store.get_reference("vendor_map") == {"501": "V100"}
    assert store.get_cursor("webhooks:last") == "ev-2"
    assert [f["doc_key"] for f in store.findings(["2025-02"])] == ["V100|INV-21"]
    credentials = CredentialStore(store.engine, key=key, env={})
    assert credentials.get("deltek") == release_db.DELTEK_VALUES
    # new rows continue the release's ids
    assert store.add_revision(kind="direct_cost", record_id=11, content_hash="x",
                              status="staged").id == 6  # fmt: skip

    # ... and none of it is another tenant's
    other = StateStore(state_url, tenant="other")
    assert other.ledger_rows() == [] and other.latest("direct_cost") == {}
    assert other.staged("direct_cost") == [] and other.audit_trail() == []
    assert other.pending_events() == [] and other.vendor_links() == {}
    assert other.ignored("direct_cost") == {} and other.reviews(None) == []
    assert other.get_reference("vendor_map") is None and other.get_cursor("webhooks:last") is None
    assert other.findings(open_only=False) == [] and other.status_counts() == {}
    assert other.try_lease("deltek:post", "host:3:3", 60)  # its own lane
    assert CredentialStore(store.engine, key=key, env={}, tenant="other").get("deltek") is None
    other.dispose()
    store.dispose()


V1_REVIEW_QUEUE = """CREATE TABLE dp_review_queue (
    id INTEGER PRIMARY KEY, kind VARCHAR(32) NOT NULL, record_id BIGINT NOT NULL,
    posted_hash VARCHAR(64) NOT NULL, new_hash VARCHAR(64) NOT NULL, posted_amount VARCHAR(32),
    new_amount VARCHAR(32), reason TEXT NOT NULL, status VARCHAR(16) NOT NULL,
    created_at TIMESTAMP NOT NULL, CONSTRAINT uq_dp_review_change UNIQUE (kind, record_id, new_hash))"""


def test_a_version_1_store_reaches_the_baseline_then_the_head(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'v1.db'}"
    engine = _engine(url)
    v1 = [t for t in v3.metadata.sorted_tables if t.name not in ("dp_findings", "dp_review_queue")]
    v3.metadata.create_all(engine, tables=[t for t in v1 if t.name != "credentials"])
    with engine.begin() as conn:  # the tables as release 1 created them
        conn.execute(sa.text(V1_REVIEW_QUEUE))
        conn.execute(v3.meta.insert().values(key="schema_version", value="1"))
        conn.execute(v3.ledger.insert().values(release_db.LEDGER[1]))
        conn.execute(
            sa.text(
                "INSERT INTO dp_review_queue (kind, record_id, posted_hash, new_hash, reason,"
                " status, created_at) VALUES ('direct_cost', 1, 'h', 'h2', 'changed', 'open',"
                " '2026-01-01 00:00:00')"
            )
        )
    engine.dispose()
    upgraded = StateStore(url)
    assert upgraded.schema_version() == 4
    assert [r.status for r in upgraded.ledger_rows()] == ["posted"]
    assert upgraded.findings() == []
    [item] = upgraded.reviews()
    assert item["reason"] == "changed" and item["decided_by"] is None
    assert upgraded.decide_review(item["id"], "dismissed", "pat", "paid by the owner")
    assert upgraded.reviews() == []
    upgraded.dispose()


def test_credentials_alone_from_the_release_are_upgraded_with_the_state_tables(tmp_path) -> None:
    """The release's `credentials set` could run before any sync created the state tables."""
    url = f"sqlite:///{tmp_path / 'creds.db'}"
    key = Fernet.generate_key()
    engine = _engine(url)
    v3.metadata.create_all(engine, tables=[v3.credentials])
    engine.dispose()
    old = CredentialStore(url, key=key, env={})
    old._table_ready = True  # write it the release's way, into the release's table
    with old.engine.begin() as conn:
        token = Fernet(key).encrypt(b'{"system": "procore", "values": {"PROCORE_COMPANY_ID": "9"}}')
        conn.execute(
            v3.credentials.insert().values(
                name="procore", ciphertext=token.decode(), updated_at=release_db.AT
            )
        )
    assert CredentialStore(url, key=key, env={}).get("procore") == {"PROCORE_COMPANY_ID": "9"}
    assert _revision(url) == migrate.HEAD


def _open(url: str, barrier, answers) -> None:  # noqa: ANN001 - multiprocessing objects
    """One step process: wait until all are ready, open the store, answer its version."""
    try:
        barrier.wait(timeout=60)  # all imported and ready: open the store at the same moment
        store = StateStore(url)
        try:
            answers.put(store.schema_version())
        finally:
            store.dispose()
    except BaseException as exc:  # noqa: BLE001 - the parent asserts on it
        answers.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.parametrize("start", ["empty", "release"])
def test_concurrent_first_starts_migrate_once(state_url, start) -> None:
    """Several step processes open the store at the same moment: each one finds it done.
    Plain processes, not a Pool: a worker that dies fails the test instead of hanging it."""
    if start == "release":
        counts, _ = _release_database(state_url)
    context = multiprocessing.get_context("spawn")
    barrier, answers = context.Barrier(6), context.Queue()
    procs = [context.Process(target=_open, args=(state_url, barrier, answers)) for _ in range(6)]
    for proc in procs:
        proc.start()
    try:
        got = [answers.get(timeout=180) for _ in procs]
    finally:
        for proc in procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
    assert got == [4] * 6
    engine = _engine(state_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT count(*) FROM {migrate.VERSION_TABLE}")).scalar() == 1
        ledger = conn.execute(sa.text("SELECT count(*) FROM dp_ledger")).scalar()
        meta = conn.execute(sa.text("SELECT count(*) FROM dp_meta")).scalar()
    engine.dispose()
    assert ledger == (counts["dp_ledger"] if start == "release" else 0) and meta == 1


def test_operators_need_no_alembic_ini(tmp_path) -> None:
    """The migration runs from any directory, with no alembic.ini anywhere near it."""
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    code = (
        "from deltek_procore.state.store import StateStore; print(StateStore(%r).schema_version())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code % url], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "4"
    assert not list(tmp_path.glob("alembic.ini"))


def test_downgrade_below_the_tenant_revision_is_refused(tmp_path) -> None:
    from alembic import command

    url = f"sqlite:///{tmp_path / 'down.db'}"
    StateStore(url).dispose()
    engine = _engine(url)
    with engine.begin() as conn, pytest.raises(NotImplementedError, match="backup"):
        command.downgrade(migrate.alembic_config(conn), migrate.BASELINE)
    engine.dispose()
    assert _revision(url) == migrate.HEAD
