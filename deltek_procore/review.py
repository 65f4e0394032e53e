"""What a person decides: the review queue, and the audit of every human action.

A record waits in review when the connector will not decide alone: a posted invoice
edited in Procore under `late_change_policy: review`, or a document Deltek already holds
under the record's key with other lines. A person then

- approves: the next plan of that record posts the adjusting (or reversing) document,
  or adopts what Deltek holds; `approve` runs that plan at once for the one record;
- dismisses: Deltek stays as it is; the waiting revision is closed (`ignored`) with the
  person's reason, and the record waits again only if it changes in Procore once more.

Every human action (ignore, undo, approve, dismiss, replay) is an audit event naming the
operator (`--by`, default the OS user) and the reason.
"""

from __future__ import annotations

import getpass
from typing import Any

from deltek_procore.state.states import State
from deltek_procore.state.store import AuditEvent, StateStore


class ReviewError(ValueError):
    """The review item does not exist or is not open; the message says which."""


def operator(by: str | None = None) -> str:
    if by and by.strip():
        return by.strip()
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (a container): say so rather than fail
        return "unknown-operator"


def record_action(
    store: StateStore,
    event: str,
    kind: str | None,
    record_id: int | None,
    by: str,
    reason: str,
    **detail: Any,
) -> None:
    store.audit([AuditEvent(event, kind, record_id, {"by": by, "reason": reason, **detail})])


def open_items(store: StateStore) -> list[dict[str, Any]]:
    return store.reviews("open")


def _open_item(store: StateStore, review_id: int) -> dict[str, Any]:
    item = store.review(review_id)
    if item is None:
        raise ReviewError(f"no review item {review_id}; `deltek-procore review list` shows them")
    if item["status"] != "open":
        raise ReviewError(
            f"review item {review_id} is {item['status']} already "
            f"(by {item.get('decided_by') or '-'}: {item.get('decision_reason') or '-'})"
        )
    return item


def show(store: StateStore, review_id: int) -> dict[str, Any]:
    """The item, the record's ledger revisions and its audit trail, for a person to decide."""
    item = store.review(review_id)
    if item is None:
        raise ReviewError(f"no review item {review_id}; `deltek-procore review list` shows them")
    kind, record_id = item["kind"], int(item["record_id"])
    return {
        "item": item,
        "ledger": [
            {
                "revision": r.revision,
                "status": r.status,
                "amount": r.amount,
                "document": r.document,
                "batch": r.deltek_batch,
                "reason": r.reason,
            }
            for r in store.history(kind, record_id)
        ],
        "audit": store.audit_trail(kind, record_id)[-20:],
    }


def approve(store: StateStore, review_id: int, by: str, reason: str) -> dict[str, Any]:
    item = _open_item(store, review_id)
    if not store.decide_review(review_id, "approved", by, reason):
        raise ReviewError(f"review item {review_id} was decided by someone else meanwhile")
    record_action(
        store, "review_approved", item["kind"], int(item["record_id"]), by, reason,
        review_id=review_id, code=item.get("code"),
    )  # fmt: skip
    return item


def dismiss(store: StateStore, review_id: int, by: str, reason: str) -> dict[str, Any]:
    """Close the item and the revision that waits for it; Deltek is left as it is."""
    if not reason.strip():
        raise ReviewError("dismissing needs a reason (--reason), so the next person knows why")
    item = _open_item(store, review_id)
    if not store.decide_review(review_id, "dismissed", by, reason):
        raise ReviewError(f"review item {review_id} was decided by someone else meanwhile")
    kind, record_id = item["kind"], int(item["record_id"])
    latest = store.latest(kind, [record_id]).get(record_id)
    if latest is not None and latest.status == State.REVIEW:
        store.update_ledger(
            [latest.id],
            status=str(State.IGNORED),
            reason=f"dismissed in review by {by}: {reason}",
        )
    record_action(
        store, "review_dismissed", kind, record_id, by, reason,
        review_id=review_id, code=item.get("code"),
    )  # fmt: skip
    return item
