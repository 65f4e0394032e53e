"""What waits for a person today: quarantined, in review, failed, missing or changed in Deltek.

Grouped per project and reason, with amounts, so the AP clerk sees in one message what to
fix and where. Plain data and markdown; sending it is `deltek_procore.notify`'s job.

A deployment of several tenants gets one summary grouped by tenant (:func:`build_tenants`);
with one tenant it is that tenant's summary, word for word.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from deltek_procore.posting.documents import AP_KINDS, JE_KINDS
from deltek_procore.state.states import State
from deltek_procore.state.store import StateStore
from deltek_procore.tenants import Tenant, load_tenants

WAITING = (
    State.QUARANTINED,
    State.REVIEW,
    State.FAILED,
    State.ABORTED,
    State.MISSING,
    State.CHANGED,
)
WHAT_TO_DO = {
    "quarantined": "fix the reason (mapping file, Procore or Deltek), the next sync posts it",
    "review": "`deltek-procore review list`, then approve or dismiss",
    "failed": "retried by the next sync; `status` shows Deltek's answer",
    "aborted": "failed 5 times: fix the cause, then `deltek-procore replay KIND ID`",
    "missing": "deleted or rejected in Deltek: `deltek-procore replay KIND ID` posts it again",
    "changed": "edited in Deltek after posting: compare, then correct Deltek or Procore",
}


def _amount(text: Any) -> Decimal:
    try:
        return Decimal(str(text)) if text not in (None, "") else Decimal("0.00")
    except (InvalidOperation, ValueError):
        return Decimal("0.00")


@dataclass
class Group:
    state: str
    project: str
    reason: str
    count: int = 0
    amount: Decimal = Decimal("0.00")
    records: list[str] = field(default_factory=list)


@dataclass
class DailySummary:
    groups: list[Group]

    @property
    def total(self) -> int:
        return sum(g.count for g in self.groups)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for g in self.groups:
            out[g.state] += g.count
        return dict(out)

    def subject(self) -> str:
        if not self.total:
            return "deltek-procore: nothing waits for a person"
        parts = ", ".join(f"{n} {s}" for s, n in sorted(self.counts().items()))
        return f"deltek-procore: {self.total} record(s) wait ({parts})"

    def markdown(self, limit: int = 100) -> str:
        if not self.total:
            return "Nothing waits: every approved record is in Deltek as planned."
        lines = [
            "| state | project | reason | records | amount | examples |",
            "|---|---|---|---:|---:|---|",
        ]
        for g in self.groups[:limit]:
            reason = g.reason.replace("|", "/").replace("\n", " ")
            lines.append(
                f"| {g.state} | {g.project} | {reason} | {g.count} | {g.amount} "
                f"| {', '.join(g.records[:3])} |"
            )
        if len(self.groups) > limit:
            lines.append(
                f"\n... and {len(self.groups) - limit} more groups (`deltek-procore status`)"
            )
        lines.append("")
        lines.extend(
            f"- **{state}**: {WHAT_TO_DO[state]}"
            for state in sorted(self.counts())
            if state in WHAT_TO_DO
        )
        return "\n".join(lines)

    def text(self) -> str:
        """The same as plain text, for e-mail."""
        if not self.total:
            return "Nothing waits: every approved record is in Deltek as planned.\n"
        out = [self.subject(), ""]
        for g in self.groups:
            out.append(
                f"{g.state:<12} {g.project:<30} {g.count:>5}  {g.amount:>14}  {g.reason}"
                f"  (e.g. {', '.join(g.records[:3])})"
            )
        out.append("")
        out.extend(f"{s}: {WHAT_TO_DO[s]}" for s in sorted(self.counts()) if s in WHAT_TO_DO)
        return "\n".join(out) + "\n"


def _project_names(store: StateStore) -> dict[int, str]:
    names: dict[int, str] = {}
    for rec in store.staged("project"):
        p = rec.payload
        number, name = p.get("project_number"), p.get("name")
        names[rec.record_id] = " ".join(str(x) for x in (number, name) if x) or str(rec.record_id)
    return names


def build(store: StateStore, kinds: Sequence[str] = (*AP_KINDS, *JE_KINDS)) -> DailySummary:
    """The newest revision of every record that waits, grouped per state, project, reason."""
    names = _project_names(store)
    waiting = [str(s) for s in WAITING]
    groups: dict[tuple[str, str, str], Group] = {}
    for kind in kinds:
        newest = store.latest(kind)
        rows = [r for r in newest.values() if r.status in waiting]
        staged = {s.record_id: s for s in store.staged(kind, ids=[r.record_id for r in rows])}
        for row in rows:
            rec = staged.get(row.record_id)
            project = names.get(rec.project_id, str(rec.project_id)) if rec else "?"
            reason = (row.reason or row.status).strip()
            key = (row.status, project, reason)
            group = groups.setdefault(key, Group(row.status, project, reason))
            group.count += 1
            group.amount += _amount(row.amount)
            group.records.append(f"{kind} {row.record_id}")
    order = {str(s): i for i, s in enumerate(WAITING)}
    ranked = sorted(groups.values(), key=lambda g: (order[g.state], g.project, -g.count))
    return DailySummary(ranked)


@dataclass
class TenantSummaries:
    """Every tenant's summary, in tenants-file order; the same face as :class:`DailySummary`
    (subject, markdown, text, counts), so the Dagster asset and the notifiers take either."""

    by_tenant: dict[str, DailySummary]

    @property
    def total(self) -> int:
        return sum(s.total for s in self.by_tenant.values())

    def _only(self) -> DailySummary | None:
        return next(iter(self.by_tenant.values())) if len(self.by_tenant) == 1 else None

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for summary in self.by_tenant.values():
            for state, n in summary.counts().items():
                out[state] += n
        return dict(out)

    def subject(self) -> str:
        only = self._only()
        if only is not None:
            return only.subject()
        if not self.total:
            return "deltek-procore: nothing waits for a person"
        parts = ", ".join(f"{name} {s.total}" for name, s in self.by_tenant.items() if s.total)
        return f"deltek-procore: {self.total} record(s) wait ({parts})"

    def markdown(self, limit: int = 100) -> str:
        only = self._only()
        if only is not None:
            return only.markdown(limit)
        return "\n\n".join(
            f"### tenant {name}: {s.total} waiting\n\n{s.markdown(limit)}"
            for name, s in self.by_tenant.items()
        )

    def text(self) -> str:
        only = self._only()
        if only is not None:
            return only.text()
        out = [self.subject(), ""]
        for name, summary in self.by_tenant.items():
            out += [f"=== tenant {name} ===", summary.text()]
        return "\n".join(out)


def build_tenants(
    stores: Mapping[str, StateStore], kinds: Sequence[str] = (*AP_KINDS, *JE_KINDS)
) -> TenantSummaries:
    """One summary per tenant (``stores``: each tenant's scoped store), grouped by tenant."""
    return TenantSummaries({name: build(store, kinds) for name, store in stores.items()})


def build_every_tenant(
    url: str | None = None,
    env: Mapping[str, str] | None = None,
    tenants: Sequence[Tenant] | None = None,
) -> TenantSummaries:
    """The summary of every configured tenant, from the state database at ``url``."""
    tenants = load_tenants(env) if tenants is None else tenants
    return build_tenants({t.name: StateStore(url, tenant=t.name) for t in tenants})
