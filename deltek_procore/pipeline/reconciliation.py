"""Reconcile one accounting month: the ledger against what Deltek shows.

Run by the `deltek_reconciliation` asset (every sync of that month and the nightly
schedule). Reads Deltek's unposted batches and posted ledger (`posting.lookup`), lets
`posting.reconcile` compare, and records the findings: a missing or changed document's
ledger rows take the state `missing` / `changed`, which `status` lists and the plan
respects (nothing is re-posted without `replay` or `on_missing: repost`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from deltek_procore.posting.documents import AP_KINDS, JE_KINDS, document_from_json
from deltek_procore.posting.lookup import DeltekHoldings
from deltek_procore.posting.periods import deltek_period
from deltek_procore.posting.reconcile import Expected, Reconciliation, reconcile
from deltek_procore.posting.verify import ap_key, net_lines, planned_lines
from deltek_procore.state.states import IN_DELTEK, State
from deltek_procore.state.store import LedgerRow, StateStore

WATCHED = tuple(str(s) for s in (*IN_DELTEK, State.MISSING, State.CHANGED))


def transtype_of_kind(kind: str) -> str:
    return "AP" if kind in AP_KINDS else "JE"


def row_key(row: LedgerRow) -> str | None:
    """The Deltek document key a ledger row placed: vendor|invoice, or the JE RefNo."""
    if not row.document:
        return None
    if transtype_of_kind(row.kind) == "AP":
        return ap_key(row.deltek_vendor, row.document) if row.deltek_vendor else None
    return row.document


def expected_from_ledger(
    store: StateStore, kinds: Sequence[str], period: str
) -> tuple[list[Expected], set[tuple[str, str]]]:
    """Per record: every key it placed in Deltek and its lines as last posted; plus the
    keys of every ledger row of the period, whatever its state."""
    rows = store.ledger_rows(kinds=kinds, periods=[period])
    known: set[tuple[str, str]] = set()
    by_record: dict[tuple[str, int], list[LedgerRow]] = defaultdict(list)
    for row in rows:
        key = row_key(row)
        if key:
            known.add((transtype_of_kind(row.kind), key))
        if row.status in WATCHED:
            by_record[(row.kind, row.record_id)].append(row)
    expected: list[Expected] = []
    for (kind, record_id), placed in sorted(by_record.items()):
        placed.sort(key=lambda r: r.revision)
        newest = placed[-1]
        if not newest.document_json:
            continue
        doc = document_from_json(newest.document_json)
        keys = tuple(dict.fromkeys(k for k in (row_key(r) for r in placed) if k))
        expected.append(
            Expected(
                kind=kind,
                record_id=record_id,
                period=period,
                transtype=transtype_of_kind(kind),
                keys=keys,
                lines=net_lines(planned_lines(doc)),
                ledger_ids=tuple(r.id for r in placed),
                amount=doc.total,
            )
        )
    return expected, known


def reconcile_period(
    store: StateStore,
    deltek: Any,
    period: str,
    *,
    kinds: Sequence[str] = (*AP_KINDS, *JE_KINDS),
    holdings: DeltekHoldings | None = None,
    record: bool = True,
) -> Reconciliation:
    """Compare and (with `record`) store the findings of `period` for `kinds`."""
    holdings = holdings or DeltekHoldings(deltek, [period])
    transtypes = sorted({transtype_of_kind(k) for k in kinds})
    for transtype in transtypes:
        holdings.load(transtype)
    expected, known = expected_from_ledger(store, kinds, period)
    held = [h for t in transtypes for h in holdings.documents(t)]
    result = reconcile(period, deltek_period(period), expected, held, known)
    if record:
        store.record_findings(period, result.differences, transtypes)
    return result
