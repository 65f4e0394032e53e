"""A tenant column on every table but dp_meta, first in each key and index that identifies
a row. Existing rows become tenant ``default`` (the tenant of a deployment without a tenants
file). SQLite changes keys by copying each table (Alembic batch mode); PostgreSQL alters it.

Revision ID: 0004
"""

from __future__ import annotations

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# table -> (primary key after `tenant` or None, {unique name: columns}, {index name: columns})
KEYS: dict[str, tuple[tuple[str, ...] | None, dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]] = {
    "dp_staged": (("kind", "record_id"), {}, {}),
    "dp_ledger": (None, {"uq_dp_ledger_revision": ("kind", "record_id", "revision")},
                  {"ix_dp_ledger_record": ("kind", "record_id")}),
    "dp_audit": (None, {}, {"ix_dp_audit_record": ("kind", "record_id")}),
    "dp_webhook_inbox": (("event_key",), {}, {}),
    "dp_vendor_links": (("procore_vendor_id",), {}, {}),
    "dp_ignored": (("kind", "record_id"), {}, {}),
    "dp_review_queue": (None, {"uq_dp_review_change": ("kind", "record_id", "new_hash")}, {}),
    "dp_leases": (("name",), {}, {}),
    "dp_reference": (("name",), {}, {}),
    "dp_cursors": (("name",), {}, {}),
    "dp_findings": (None, {}, {"ix_dp_findings_open": ("period", "resolved_at")}),
    "credentials": (("name",), {}, {}),
}  # fmt: skip


def _tenant() -> sa.Column:
    return sa.Column("tenant", sa.String(32), nullable=False, server_default="default")


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    if not inspector.has_table("credentials"):
        # created on first use by the release's CredentialStore: absent until then
        op.create_table(
            "credentials",
            _tenant(),
            sa.Column("name", sa.String(64), nullable=False),
            sa.Column("ciphertext", sa.Text, nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("tenant", "name", name="pk_credentials"),
        )
        created = {"credentials"}
    else:
        created = set()
    for table, (pk, uniques, indexes) in KEYS.items():
        if table in created:
            continue
        old_pk = inspector.get_pk_constraint(table).get("name")
        if pk is not None and bind.dialect.name == "postgresql":
            _drop_serial(table, inspector)
        with warnings.catch_warnings():
            # SQLite batch copy: the reflected key columns are told their new key
            warnings.filterwarnings("ignore", message=".*specifies columns .* as primary_key")
            with op.batch_alter_table(table, recreate="auto") as batch:
                batch.add_column(_tenant())
                if pk is not None:
                    if bind.dialect.name != "sqlite" and old_pk:
                        batch.drop_constraint(old_pk, type_="primary")
                    batch.create_primary_key(f"pk_{table}", ["tenant", *pk])
                for name, columns in uniques.items():
                    batch.drop_constraint(name, type_="unique")
                    batch.create_unique_constraint(name, ["tenant", *columns])
                for name, columns in indexes.items():
                    batch.drop_index(name)
                    batch.create_index(name, ["tenant", *columns])
    op.execute(sa.text("UPDATE dp_meta SET value = '4' WHERE key = 'schema_version'"))


def _drop_serial(table: str, inspector: sa.Inspector) -> None:
    """PostgreSQL made the release's one-column integer key (dp_vendor_links) a serial; a
    Procore id is never generated here, and with the tenant the key is no longer one column."""
    bind = op.get_bind()
    key = inspector.get_pk_constraint(table)["constrained_columns"]
    for column in inspector.get_columns(table):
        if column["name"] not in key or "nextval(" not in str(column.get("default") or ""):
            continue
        sequence = bind.execute(
            sa.text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table, "c": column["name"]}
        ).scalar()
        op.alter_column(table, column["name"], server_default=None)
        if sequence:  # a name PostgreSQL quoted and qualified itself
            op.execute(sa.text(f"DROP SEQUENCE IF EXISTS {sequence}"))


def downgrade() -> None:
    raise NotImplementedError(
        "the tenant column cannot be removed without losing which tenant owns each row; "
        "restore the backup taken before the upgrade instead"
    )
