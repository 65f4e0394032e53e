"""Tables of the connector's own store (SQLAlchemy Core).

One schema for SQLite (the embedded default) and PostgreSQL (production). The
program creates and migrates it itself: `SCHEMA_VERSION` is stored in
`dp_meta`, and `migrate()` applies each step once, in order.
"""

from __future__ import annotations

import sqlalchemy as sa

SCHEMA_VERSION = 3  # 2: dp_findings (period reconciliation); 3: review decisions

metadata = sa.MetaData()

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
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("record_id", sa.BigInteger, primary_key=True),
    sa.Column("project_id", sa.BigInteger, nullable=True, index=True),
    sa.Column("period", sa.String(7), nullable=True, index=True),
    sa.Column("status", sa.String(40), nullable=True),
    sa.Column("updated_at", sa.String(40), nullable=True),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
)

# One row per Procore record revision: what was planned and what happened.
ledger = sa.Table(
    "dp_ledger",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
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
    sa.UniqueConstraint("kind", "record_id", "revision", name="uq_dp_ledger_revision"),
    sa.Index("ix_dp_ledger_record", "kind", "record_id"),
)

# Append-only: nothing ever updates or deletes a row here.
audit = sa.Table(
    "dp_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("kind", sa.String(32), nullable=True),
    sa.Column("record_id", sa.BigInteger, nullable=True),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Index("ix_dp_audit_record", "kind", "record_id"),
)

webhook_inbox = sa.Table(
    "dp_webhook_inbox",
    metadata,
    sa.Column("event_key", sa.String(64), primary_key=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("resource_name", sa.String(80), nullable=False),
    sa.Column("resource_id", sa.BigInteger, nullable=False),
    sa.Column("event_type", sa.String(16), nullable=False),
    sa.Column("project_id", sa.BigInteger, nullable=True),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("run_key", sa.String(120), nullable=True, index=True),
)

vendor_links = sa.Table(
    "dp_vendor_links",
    metadata,
    sa.Column("procore_vendor_id", sa.BigInteger, primary_key=True),
    sa.Column("deltek_vendor", sa.String(40), nullable=False),
    sa.Column("client_id", sa.String(40), nullable=True),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("confirmed", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

ignored = sa.Table(
    "dp_ignored",
    metadata,
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("record_id", sa.BigInteger, primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

review_queue = sa.Table(
    "dp_review_queue",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
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
    sa.UniqueConstraint("kind", "record_id", "new_hash", name="uq_dp_review_change"),
)

leases = sa.Table(
    "dp_leases",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)

# Reference snapshots (Deltek projects, firms, accounts; the maps) as JSON documents.
reference = sa.Table(
    "dp_reference",
    metadata,
    sa.Column("name", sa.String(120), primary_key=True),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

cursors = sa.Table(
    "dp_cursors",
    metadata,
    sa.Column("name", sa.String(120), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# What the period reconciliation found in Deltek (missing, changed, duplicate, unknown).
# One open row per (period, finding, document key); resolved when Deltek agrees again.
findings = sa.Table(
    "dp_findings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
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
    sa.Index("ix_dp_findings_open", "period", "resolved_at"),
)
