"""Replay one record, or explain it: re-derive its voucher / JE from the stored input.

`explain` writes nothing. It re-translates the staged Procore record with the
current mapping, shows every ledger revision (with the mapping hash it was
planned under) and the audit trail, and says why the record was posted, adopted,
skipped or quarantined, and what a sync would do with it now.
"""

from __future__ import annotations

from typing import Any

from deltek_procore import connections
from deltek_procore.mapping.config import load_mapping, mapping_hash
from deltek_procore.pipeline.ingest import parse
from deltek_procore.pipeline.postings import settings_from
from deltek_procore.pipeline.reference import mapping_context
from deltek_procore.posting.documents import JournalEntry, Quarantine, Voucher
from deltek_procore.posting.plan import Candidate, plan
from deltek_procore.posting.translate import translate
from deltek_procore.state.store import StateStore
from deltek_procore.tenants import DEFAULT_TENANT, Tenant

WHY = {
    "posted": "posted by this connector",
    "adopted": "found already in Deltek by the look-up (same vendor + invoice, or RefNo); "
    "adopted, not posted again",
    "adjusted": "a late change, posted as an adjusting document for the difference",
    "quarantined": "held back until a person fixes the reason",
    "failed": "Deltek could not be reached or did not confirm; the next sync looks it up and retries",
    "aborted": "failed too many times; fix the cause, then `deltek-procore replay` it",
    "review": "changed after posting; waiting for a person (late_change_policy: review)",
    "ignored": "on the ignore list",
    "missing": "the period reconciliation found it missing in Deltek (batch deleted or rejected "
    "there); `deltek-procore replay` looks it up again and posts it once",
    "changed": "the period reconciliation found it changed in Deltek (amount, account or "
    "project); a person must decide",
    "posting": "a post was started and not confirmed (crash or lost answer); the next sync "
    "looks it up in Deltek before posting",
}


def _load(kind: str, record_id: int, store: StateStore) -> tuple[Any, Any]:
    staged = store.staged(kind, ids=[record_id])
    if not staged:
        raise ValueError(
            f"{kind} {record_id} is not in the state store; run a sync first or check the id"
        )
    return staged[0], parse(kind, staged[0].payload)


def _store(store: StateStore | None, tenant: Tenant | None) -> StateStore:
    return store or StateStore(tenant=tenant.name if tenant else DEFAULT_TENANT)


def _mapping(tenant: Tenant | None) -> Any:
    """The tenant's mapping file (its DELTEK_PROCORE_MAPPINGS, else mappings.yaml)."""
    return load_mapping(env=connections.tenant_environment(tenant))


def explain(
    kind: str, record_id: int, store: StateStore | None = None, *, tenant: Tenant | None = None
) -> str:
    store = _store(store, tenant)
    mapping = _mapping(tenant)
    digest = mapping_hash(mapping)
    staged, record = _load(kind, record_id, store)
    ctx = mapping_context(store, mapping, digest)
    out = [
        f"{kind} {record_id}: period {staged.period}, Procore status {staged.status}, "
        f"content hash {staged.content_hash[:12]}",
        "",
        "Re-derived now from the stored record and the current mapping "
        f"(mapping hash {digest[:12]}):",
    ]
    doc = translate(kind, record, ctx)
    out.extend(_describe(doc))
    rows = plan(
        [Candidate(kind, record, staged.content_hash, staged.period)],
        ctx,
        store,
        settings_from(mapping),
    )
    out.append(f"\nA sync now would: {rows[0].action} ({rows[0].reason})")
    history = store.history(kind, record_id)
    out.append(f"\nLedger ({len(history)} revision(s)):")
    for row in history:
        same = "current mapping" if row.mapping_hash == digest else "an older mapping"
        out.append(
            f"  rev {row.revision}: {row.status} ({row.action or '-'}), amount {row.amount or '-'}, "
            f"batch {row.deltek_batch or '-'}, key {row.deltek_key or '-'}, planned under {same}"
        )
        if row.reason:
            out.append(f"         reason: {row.reason}")
    if history:
        last = history[-1]
        out.append(f"\nWhy: {WHY.get(last.status, last.status)}.")
    trail = store.audit_trail(kind, record_id)
    out.append(f"\nAudit trail ({len(trail)} event(s), newest last):")
    for event in trail[-20:]:
        out.append(
            f"  {event['at']:%Y-%m-%d %H:%M:%S} {event['event']:<12} run {event['run_id'] or '-'} {event['detail']}"
        )
    return "\n".join(out)


def _describe(doc: Voucher | JournalEntry | Quarantine) -> list[str]:
    if isinstance(doc, Quarantine):
        return [f"  quarantine: {doc.reason}"]
    if isinstance(doc, Voucher):
        head = f"  AP voucher: vendor {doc.vendor}, invoice {doc.invoice!r}, date {doc.invoice_date}, total {doc.total}"
        lines = [
            f"    WBS {ln.charge.wbs1 or '-'}/{ln.charge.wbs2 or '-'}/{ln.charge.wbs3 or '-'}  "
            f"account {ln.charge.account}  {ln.amount:>14}  {ln.description}"
            for ln in doc.lines
        ]
        return [head, *lines]
    head = f"  journal entry: RefNo {doc.ref_no}, date {doc.trans_date}, debits {doc.total}, balanced {doc.balanced}"
    lines = [
        f"    WBS {ln.charge.wbs1 or '-'}/{ln.charge.wbs2 or '-'}  account {ln.charge.account}  "
        f"Dr {ln.debit:>12}  Cr {ln.credit:>12}  {ln.description}"
        for ln in doc.lines
    ]
    return [head, *lines]


def replay(
    kind: str, record_id: int, store: StateStore | None = None, *, tenant: Tenant | None = None
) -> str:
    """Run the write protocol for this one record now (never posts twice: it looks up first),
    with ``tenant``'s Deltek, mapping file and store."""
    from deltek_procore.pipeline.postings import run_postings

    store = _store(store, tenant)
    staged, _record = _load(kind, record_id, store)
    latest = store.latest(kind, [record_id]).get(record_id)
    if latest is not None and latest.status in ("aborted", "failed"):
        store.update_ledger([latest.id], status="failed", attempts=0)
    report = run_postings(
        store=store,
        deltek=connections.deltek_client(tenant=tenant),
        mapping=_mapping(tenant),
        kinds=[kind],
        periods=[staged.period],
        tenant=connections.tenant_key(tenant=tenant),
        ids=[record_id],
        release=frozenset({(kind, int(record_id))}),
    )
    results = report.outcome.results if report.outcome else []
    mine = [r for r in results if int(r["record_id"]) == record_id]
    if not mine:
        return f"{kind} {record_id}: nothing to do"
    r = mine[0]
    return f"{r['status']}: {kind} {record_id} {r.get('document', '')} {r.get('amount', '')} — {r['reason']}"
