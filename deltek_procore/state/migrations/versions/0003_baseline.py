"""Baseline: the state tables of schema_version 3 (release a990c50), the last before Alembic.

A database that release wrote is stamped here, not run through it. On an empty database, or
one of schema_version 1 or 2, this creates whatever table is missing and adds the review
decision columns of version 3, so every older store reaches the same baseline. Frozen: the
tables as they were then, not as deltek_procore.state.schema has them now.

Revision ID: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = None
branch_labels = None
depends_on = None

v3 = sa.MetaData()
_TS = sa.DateTime(timezone=True)

sa.Table("dp_meta", v3, sa.Column("key", sa.String(64), primary_key=True),
         sa.Column("value", sa.Text, nullable=False))  # fmt: skip
sa.Table(
    "dp_staged", v3,
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("record_id", sa.BigInteger, primary_key=True),
    sa.Column("project_id", sa.BigInteger, index=True),
    sa.Column("period", sa.String(7), index=True),
    sa.Column("status", sa.String(40)), sa.Column("updated_at", sa.String(40)),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("payload", sa.Text, nullable=False), sa.Column("fetched_at", _TS, nullable=False),
)  # fmt: skip
sa.Table(
    "dp_ledger", v3,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("record_id", sa.BigInteger, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("mapping_hash", sa.String(64)), sa.Column("period", sa.String(7), index=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("action", sa.String(16)), sa.Column("deltek_batch", sa.String(32)),
    sa.Column("deltek_key", sa.String(64)), sa.Column("deltek_vendor", sa.String(40)),
    sa.Column("document", sa.String(200)), sa.Column("amount", sa.String(32)),
    sa.Column("attempts", sa.Integer, nullable=False), sa.Column("reason", sa.Text),
    sa.Column("document_json", sa.Text), sa.Column("run_id", sa.String(64)),
    sa.Column("created_at", _TS, nullable=False), sa.Column("updated_at", _TS, nullable=False),
    sa.UniqueConstraint("kind", "record_id", "revision", name="uq_dp_ledger_revision"),
    sa.Index("ix_dp_ledger_record", "kind", "record_id"),
)  # fmt: skip
sa.Table(
    "dp_audit", v3,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", _TS, nullable=False), sa.Column("run_id", sa.String(64)),
    sa.Column("kind", sa.String(32)), sa.Column("record_id", sa.BigInteger),
    sa.Column("event", sa.String(32), nullable=False), sa.Column("detail", sa.Text),
    sa.Index("ix_dp_audit_record", "kind", "record_id"),
)  # fmt: skip
sa.Table(
    "dp_webhook_inbox", v3,
    sa.Column("event_key", sa.String(64), primary_key=True),
    sa.Column("received_at", _TS, nullable=False),
    sa.Column("resource_name", sa.String(80), nullable=False),
    sa.Column("resource_id", sa.BigInteger, nullable=False),
    sa.Column("event_type", sa.String(16), nullable=False),
    sa.Column("project_id", sa.BigInteger), sa.Column("payload", sa.Text, nullable=False),
    sa.Column("run_key", sa.String(120), index=True),
)  # fmt: skip
sa.Table(
    "dp_vendor_links", v3,
    sa.Column("procore_vendor_id", sa.BigInteger, primary_key=True),
    sa.Column("deltek_vendor", sa.String(40), nullable=False),
    sa.Column("client_id", sa.String(40)), sa.Column("method", sa.String(16), nullable=False),
    sa.Column("confirmed", sa.Boolean, nullable=False),
    sa.Column("created_at", _TS, nullable=False),
)  # fmt: skip
sa.Table(
    "dp_ignored", v3,
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("record_id", sa.BigInteger, primary_key=True),
    sa.Column("reason", sa.Text, nullable=False), sa.Column("created_at", _TS, nullable=False),
)  # fmt: skip


def _decision_columns() -> tuple[sa.Column, ...]:  # added by version 3
    return (sa.Column("code", sa.String(32)), sa.Column("decided_by", sa.String(120)),
            sa.Column("decided_at", _TS), sa.Column("decision_reason", sa.Text))  # fmt: skip


sa.Table(
    "dp_review_queue", v3,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("record_id", sa.BigInteger, nullable=False),
    sa.Column("posted_hash", sa.String(64), nullable=False),
    sa.Column("new_hash", sa.String(64), nullable=False),
    sa.Column("posted_amount", sa.String(32)), sa.Column("new_amount", sa.String(32)),
    sa.Column("reason", sa.Text, nullable=False), sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    *_decision_columns(),
    sa.UniqueConstraint("kind", "record_id", "new_hash", name="uq_dp_review_change"),
)  # fmt: skip
sa.Table(
    "dp_leases", v3, sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)  # fmt: skip
sa.Table(
    "dp_reference", v3, sa.Column("name", sa.String(120), primary_key=True),
    sa.Column("payload", sa.Text, nullable=False), sa.Column("updated_at", _TS, nullable=False),
)  # fmt: skip
sa.Table("dp_cursors", v3, sa.Column("name", sa.String(120), primary_key=True),
         sa.Column("value", sa.Text, nullable=False))  # fmt: skip
sa.Table(
    "dp_findings", v3,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("period", sa.String(7), nullable=False, index=True),
    sa.Column("finding", sa.String(16), nullable=False),
    sa.Column("transtype", sa.String(2), nullable=False),
    sa.Column("doc_key", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(32)), sa.Column("record_id", sa.BigInteger),
    sa.Column("batch", sa.String(32)), sa.Column("planned", sa.String(32)),
    sa.Column("in_deltek", sa.String(32)), sa.Column("detail", sa.Text, nullable=False),
    sa.Column("previous_states", sa.Text), sa.Column("first_seen", _TS, nullable=False),
    sa.Column("last_seen", _TS, nullable=False), sa.Column("resolved_at", _TS),
    sa.Index("ix_dp_findings_open", "period", "resolved_at"),
)  # fmt: skip


def upgrade() -> None:
    bind = op.get_bind()
    v3.create_all(bind, checkfirst=True)
    have = {c["name"] for c in sa.inspect(bind).get_columns("dp_review_queue")}
    for column in _decision_columns():
        if column.name not in have:  # a version 1 or 2 store
            op.add_column("dp_review_queue", column)
    meta = v3.tables["dp_meta"]
    version = meta.c.key == "schema_version"
    if bind.execute(sa.select(meta.c.value).where(version)).first() is None:
        op.execute(meta.insert().values(key="schema_version", value="3"))
    else:
        op.execute(meta.update().where(version).values(value="3"))


def downgrade() -> None:
    raise NotImplementedError("the baseline has no earlier revision to go back to")
