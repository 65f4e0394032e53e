"""Tables of the connector's own store (SQLAlchemy Core), as the newest migration leaves them.

One schema for SQLite (the embedded default) and PostgreSQL (production). Alembic migrates it
(deltek_procore/state/migrations, run by `migrate.upgrade`); a fresh database is created from
these tables and stamped at the head revision. A change here needs a new revision there (the
drift test compares the two).

Every table but `dp_meta` (deployment-wide) has a `tenant` column, first in each key and
index that identifies a row: the same Procore ids, vendor numbers and invoice numbers may
exist under two tenants (deltek_procore.tenants), and a store scoped to one never sees the
other's rows.
"""

from __future__ import annotations

import sqlalchemy as sa

SCHEMA_VERSION = 4  # 2: dp_findings; 3: review decisions; 4: tenant column, Alembic
TENANT_LENGTH = 32

metadata = sa.MetaData()


def tenant_column() -> sa.Column:
    return sa.Column("tenant", sa.String(TENANT_LENGTH), nullable=False, server_default="default")


meta = sa.Table(
    "dp_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# Procore records as last fetched; the posting assets read their period from here.
staged = sa.Table(
    "dp_staged",
    metadata,
    tenant_column(),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("record_id", sa.BigInteger, nullable=False, autoincrement=False),
    sa.Column("project_id", sa.BigInteger, nullable=True, index=True),
    sa.Column("period", sa.String(7), nullable=True, index=True),
    sa.Column("status", sa.String(40), nullable=True),
    sa.Column("updated_at", sa.String(40), nullable=True),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("tenant", "kind", "record_id", name="pk_dp_staged"),
)

# One row per Procore record revision: what was planned and what happened.
ledger = sa.Table(
    "dp_ledger",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    tenant_column(),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("record_id", sa.BigInteger, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("mapping_hash", sa.String(64), nullable=True),
    sa.Column("period", sa.String(7), nullable=True, index=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("action", sa.String(16), nullable=True),
    sa.Column("deltek_batch", sa.String(32), nullable=True),
    sa.Column("deltek_key", sa.String(64), nullable=True),
    sa.Column("deltek_vendor", sa.String(40), nullable=True),
    sa.Column("document", sa.String(200), nullable=True),  # invoice number or JE RefNo
    sa.Column("amount", sa.String(32), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("reason", sa.Text, nullable=True),
    # The voucher / JE as planned (JSON): what replay re-derives and adjustments diff against.
    sa.Column("document_json", sa.Text, nullable=True),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("tenant", "kind", "record_id", "revision", name="uq_dp_ledger_revision"),
    sa.Index("ix_dp_ledger_record", "tenant", "kind", "record_id"),
)

# Append-only: nothing ever updates or deletes a row here.
audit = sa.Table(
    "dp_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    tenant_column(),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("kind", sa.String(32), nullable=True),
    sa.Column("record_id", sa.BigInteger, nullable=True),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Index("ix_dp_audit_record", "tenant", "kind", "record_id"),
)

webhook_inbox = sa.Table(
    "dp_webhook_inbox",
    metadata,
    tenant_column(),
    sa.Column("event_key", sa.String(64), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("resource_name", sa.String(80), nullable=False),
    sa.Column("resource_id", sa.BigInteger, nullable=False),
    sa.Column("event_type", sa.String(16), nullable=False),
    sa.Column("project_id", sa.BigInteger, nullable=True),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("run_key", sa.String(120), nullable=True, index=True),
    sa.PrimaryKeyConstraint("tenant", "event_key", name="pk_dp_webhook_inbox"),
)

vendor_links = sa.Table(
    "dp_vendor_links",
    metadata,
    tenant_column(),
    sa.Column("procore_vendor_id", sa.BigInteger, nullable=False, autoincrement=False),
    sa.Column("deltek_vendor", sa.String(40), nullable=False),
    sa.Column("client_id", sa.String(40), nullable=True),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("confirmed", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("tenant", "procore_vendor_id", name="pk_dp_vendor_links"),
)

ignored = sa.Table(
    "dp_ignored",
    metadata,
    tenant_column(),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("record_id", sa.BigInteger, nullable=False, autoincrement=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("tenant", "kind", "record_id", name="pk_dp_ignored"),
)

review_queue = sa.Table(
    "dp_review_queue",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    tenant_column(),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("record_id", sa.BigInteger, nullable=False),
    sa.Column("posted_hash", sa.String(64), nullable=False),
    sa.Column("new_hash", sa.String(64), nullable=False),
    sa.Column("posted_amount", sa.String(32), nullable=True),
    sa.Column("new_amount", sa.String(32), nullable=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, default="open"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # v3: why it waits (states.Reason: late_change, deltek_differs, ...) and the decision
    sa.Column("code", sa.String(32), nullable=True),
    sa.Column("decided_by", sa.String(120), nullable=True),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("decision_reason", sa.Text, nullable=True),
    sa.UniqueConstraint("tenant", "kind", "record_id", "new_hash", name="uq_dp_review_change"),
)

# Per tenant: two tenants post at once, one tenant's runs still exclude each other.
leases = sa.Table(
    "dp_leases",
    metadata,
    tenant_column(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("tenant", "name", name="pk_dp_leases"),
)

# Reference snapshots (Deltek projects, firms, accounts; the maps) as JSON documents.
reference = sa.Table(
    "dp_reference",
    metadata,
    tenant_column(),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("tenant", "name", name="pk_dp_reference"),
)

cursors = sa.Table(
    "dp_cursors",
    metadata,
    tenant_column(),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("value", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("tenant", "name", name="pk_dp_cursors"),
)

# What the period reconciliation found in Deltek (missing, changed, duplicate, unknown).
# One open row per (period, finding, document key); resolved when Deltek agrees again.
findings = sa.Table(
    "dp_findings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    tenant_column(),
    sa.Column("period", sa.String(7), nullable=False, index=True),
    sa.Column("finding", sa.String(16), nullable=False),
    sa.Column("transtype", sa.String(2), nullable=False),
    sa.Column("doc_key", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(32), nullable=True),
    sa.Column("record_id", sa.BigInteger, nullable=True),
    sa.Column("batch", sa.String(32), nullable=True),
    sa.Column("planned", sa.String(32), nullable=True),
    sa.Column("in_deltek", sa.String(32), nullable=True),
    sa.Column("detail", sa.Text, nullable=False),
    # ledger row id -> the state it had before the finding changed it (JSON)
    sa.Column("previous_states", sa.Text, nullable=True),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_dp_findings_open", "tenant", "period", "resolved_at"),
)

# Encrypted credential sets (deltek_procore.credentials): one row per tenant and system.
credentials = sa.Table(
    "credentials",
    metadata,
    tenant_column(),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("ciphertext", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("tenant", "name", name="pk_credentials"),
)

#: Tables with a tenant column (all but dp_meta).
TENANT_TABLES = tuple(t for t in metadata.sorted_tables if "tenant" in t.c)
