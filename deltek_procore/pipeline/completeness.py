"""Provable completeness: what should be in Deltek but is not, and what Procore never sent.

Three independent questions, each answered from a source the connector does not control:
- `read_counts`: did each Procore listing yield as many rows as Procore's own `Total` for
  the same filters? Paging never trusts `Total` (`http.paging`); this check does, as a
  second count to compare with, so a read cut short (a truncated page taken for the last)
  or a count that disagrees fails instead of passing silently;
- `missing_from_ledger`: approved Procore records (as staged) that have no ledger row,
  i.e. no sync has even decided about them (quarantined records do have a row);
- `undelivered_events`: Procore's own delivery history for our hook, failing and
  discarded, cross-checked against what the receiver stored. That history is optional:
  `check_deliveries` reports a 403/404 from the webhooks config API as "delivery history
  unavailable" instead of failing (see `deltek_procore.webhooks.access`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from deltek_procore.pipeline.ingest import POSTABLE_KINDS, IngestResult
from deltek_procore.pipeline.postings import CheckOutcome
from deltek_procore.pipeline.triggers import stored_event_keys
from deltek_procore.posting.translate import bills_this_period, is_eligible
from deltek_procore.procore.errors import ProcoreError
from deltek_procore.procore.models import Requisition
from deltek_procore.state.store import StateStore
from deltek_procore.webhooks.access import HOOK_NAMESPACE, unavailable_reason
from deltek_procore.webhooks.events import EventError, event_from_dict

# Statuses that can be approved spend for some kind: cheap pre-filter before parsing.
APPROVED_STATUSES = frozenset(
    {"approved", "approved_as_noted", "Approved", "Complete", "Partially Received"}
    | {"Received", "Closed"}
)


def read_counts(results: IngestResult | Sequence[IngestResult], *, shown: int = 5) -> CheckOutcome:
    """The rows each listing of an ingest read against the `Total` Procore announced."""
    results = [results] if isinstance(results, IngestResult) else list(results)
    kinds = ", ".join(r.kind for r in results)
    counted = sum(r.counted for r in results)
    mismatches = [m for r in results for m in r.count_mismatches]
    if not mismatches:
        if not counted:
            return CheckOutcome(True, f"{kinds}: no listing announced a Total to compare")
        return CheckOutcome(True, f"{kinds}: {counted} listing(s) read exactly Procore's Total")
    parts = []
    for m in mismatches[:shown]:
        filters = ", ".join(f"{k}={v}" for k, v in sorted(m["filters"].items()))
        parts.append(
            f"{m['path']}{f' ({filters})' if filters else ''}: read {m['read']}, "
            f"Procore's Total {m['total']}"
        )
    more = len(mismatches) - shown
    short = (
        "; the cursor stays, the next run reads them again"
        if any(r.short_read for r in results)
        else ""
    )
    return CheckOutcome(
        False,
        f"{kinds}: {len(mismatches)} of {counted} listing(s) differ from Procore's count{short}: "
        + "; ".join(parts)
        + (f"; and {more} more" if more > 0 else ""),
    )


@dataclass(frozen=True)
class Gap:
    """A staged Procore record the ledger does not account for."""

    kind: str
    record_id: int
    period: str | None
    status: str | None
    reason: str

    def row(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "record_id": self.record_id,
            "period": self.period or "",
            "status": self.status or "",
            "reason": self.reason,
        }


def missing_from_ledger(
    store: StateStore,
    periods: Sequence[str] | None = None,
    *,
    kinds: Sequence[str] = POSTABLE_KINDS,
    direct_cost_types: Sequence[str] = ("invoice",),
    changed: bool = False,
) -> list[Gap]:
    """Approved staged records of `periods` (None = all) without any ledger row.

    With `changed`, also records whose staged content differs from the newest ledger
    revision (edited or voided in Procore since the last sync decided about them).
    Records on the ignore list are never gaps.
    """
    rules = SimpleNamespace(direct_cost_types=tuple(direct_cost_types))
    gaps: list[Gap] = []
    for kind in kinds:
        ignored = store.ignored(kind)
        # a page of staged records at a time: memory stays flat at any size
        for staged in _pages(store.iter_staged(kind, periods=periods), PAGE):
            ledger = store.latest(kind, [r.record_id for r in staged])
            gaps += _gaps(kind, staged, ledger, ignored, rules, changed)
    return gaps


PAGE = 500  # staged records held at once (a requisition with its items is ~20 kB)


def _pages(records: Iterable[Any], size: int) -> Iterator[list[Any]]:
    page: list[Any] = []
    for record in records:
        page.append(record)
        if len(page) >= size:
            yield page
            page = []
    if page:
        yield page


def _gaps(
    kind: str,
    staged: Sequence[Any],
    ledger: Mapping[int, Any],
    ignored: Mapping[int, str],
    rules: Any,
    changed: bool,
) -> list[Gap]:
    gaps: list[Gap] = []
    for rec in staged:
        if rec.record_id in ignored:
            continue
        latest = ledger.get(rec.record_id)
        if latest is None:
            if (
                rec.status in APPROVED_STATUSES
                and is_eligible(kind, _Fields(rec.payload), rules)
                and has_amount(kind, rec.payload)
            ):
                gaps.append(
                    Gap(kind, rec.record_id, rec.period, rec.status, "approved, no ledger row")
                )
        elif changed and latest.content_hash != rec.content_hash:
            gaps.append(
                Gap(
                    kind,
                    rec.record_id,
                    rec.period,
                    rec.status,
                    f"changed in Procore since the ledger's {latest.status} revision",
                )
            )
    return gaps


def has_amount(kind: str, payload: Mapping[str, Any]) -> bool:
    """False for an approved invoice that bills nothing this period: translation skips it
    ("nothing billed") without a ledger row, so it is no gap. Stored materials are a
    balance: an item that only carries them forward bills nothing."""
    if kind != "requisition":
        return True
    try:
        return bills_this_period(Requisition.model_validate({"id": 0, **payload}))
    except ValueError:
        return True  # unreadable: translation quarantines it, which leaves a ledger row


class _Fields:
    """Attribute access over a staged payload: eligibility without parsing the model."""

    def __init__(self, payload: Mapping[str, Any]):
        self._payload = payload

    def __getattr__(self, name: str) -> Any:
        return self._payload.get(name)


def gaps_by_kind(gaps: Iterable[Gap]) -> dict[str, dict[int, str]]:
    """{kind: {record id: period}}, the shape `triggers.reconciliation_plans` takes."""
    out: dict[str, dict[int, str]] = {}
    for gap in gaps:
        if gap.period:
            out.setdefault(gap.kind, {})[gap.record_id] = gap.period
    return out


# ---- webhook deliveries ------------------------------------------------------------------
@dataclass(frozen=True)
class UndeliveredEvent:
    """A Procore event that never reached the receiver (discarded) or has not yet (failing)."""

    key: str
    resource_name: str
    resource_id: int | None
    event_type: str
    project_id: int | None
    outcome: str  # "discarded" (Procore gave up) or "failing" (still retrying)
    attempts: int
    last_status: int | None
    last_error: str | None
    last_attempt_at: str | None

    def row(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "resource": self.resource_name,
            "resource_id": self.resource_id or 0,
            "event_type": self.event_type,
            "outcome": self.outcome,
            "attempts": self.attempts,
            "last_response": str(self.last_status or self.last_error or ""),
            "last_attempt_at": self.last_attempt_at or "",
        }


def event_key(event: Mapping[str, Any]) -> str | None:
    """The inbox's dedup key of a delivered event: ulid, else id (as the receiver stores)."""
    try:
        return event_from_dict(dict(event)).key
    except (EventError, ValueError, TypeError):
        ulid, ident = event.get("ulid"), event.get("id")
        return str(ulid or ident) if (ulid or ident) is not None else None


def undelivered_events(
    procore_client: Any,
    hook_id: int,
    store: StateStore | None = None,
    *,
    received: Callable[[Iterable[str]], set[str]] | None = None,
) -> list[UndeliveredEvent]:
    """Events of `hook_id` with failing or discarded deliveries that never arrived.

    "Arrived" means the receiver stored the key (`store`, or any `received(keys)` look-up);
    without either, an event counts as arrived when a later delivery succeeded.
    """
    attempts: dict[str, list[dict[str, Any]]] = {}
    events: dict[str, Mapping[str, Any]] = {}
    for status in ("failing", "discarded"):
        for delivery in procore_client.deliveries(hook_id, status):
            event = delivery.get("event") or {}
            key = event_key(event) or str(delivery.get("event_id") or "")
            if not key:
                continue
            events.setdefault(key, event)
            attempts.setdefault(key, []).append(delivery)
    if not events:
        return []
    if received is None and store is not None:
        received = lambda keys: stored_event_keys(store, keys)  # noqa: E731
    if received is not None:
        arrived = received(events)
    else:
        arrived = {
            event_key(d.get("event") or {}) or ""
            for d in procore_client.deliveries(hook_id, "successful")
        }
    out = []
    for key, event in events.items():
        if key in arrived:
            continue
        tries = sorted(attempts[key], key=lambda d: str(d.get("completed_at") or ""))
        last = tries[-1]
        outcome = "discarded" if any(d.get("outcome") == "discarded" for d in tries) else "failing"
        out.append(
            UndeliveredEvent(
                key=key,
                resource_name=str(event.get("resource_name") or event.get("resource_type") or ""),
                resource_id=_int(event.get("resource_id")),
                event_type=str(event.get("event_type") or event.get("reason") or "").lower(),
                project_id=_int(event.get("project_id")),
                outcome=outcome,
                attempts=len(tries),
                last_status=_int(last.get("response_status")),
                last_error=last.get("response_error") or _short(last.get("response_body")),
                last_attempt_at=last.get("completed_at"),
            )
        )
    return sorted(out, key=lambda e: (e.outcome, e.last_attempt_at or "", e.key))


@dataclass(frozen=True)
class DeliveryCheck:
    """Procore's delivery history for our hooks, or why it cannot be read."""

    hooks: list[int]
    missing: list[UndeliveredEvent]
    unavailable: str | None = None  # "delivery history unavailable (403: ...): ..."


def check_deliveries(
    procore_client: Any, store: StateStore | None = None, namespace: str = HOOK_NAMESPACE
) -> DeliveryCheck:
    """Every undelivered event of our hooks; a 403/404 (no "Webhooks API" permission)
    comes back as `unavailable`, any other Procore failure is raised."""
    try:
        hooks = hook_ids(procore_client, namespace)
        missing = [e for hook in hooks for e in undelivered_events(procore_client, hook, store)]
    except ProcoreError as exc:
        reason = unavailable_reason(exc)
        if reason is None:
            raise
        return DeliveryCheck(hooks=[], missing=[], unavailable=reason)
    return DeliveryCheck(hooks=hooks, missing=missing)


def hook_ids(procore_client: Any, namespace: str = HOOK_NAMESPACE) -> list[int]:
    """Our hooks (the namespace `deltek-procore webhooks register` uses)."""
    out = []
    for hook in procore_client.webhook_hooks(namespace):
        hook = hook.get("data", hook) if isinstance(hook, Mapping) else {}
        if hook.get("namespace", namespace) == namespace and hook.get("id") is not None:
            out.append(int(hook["id"]))
    return sorted(set(out))


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _short(value: Any) -> str | None:
    if not value:
        return None
    text = value if isinstance(value, str) else json.dumps(value)
    return text[:120]
