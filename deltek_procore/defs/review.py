"""review_decision: approve or dismiss a review item from the Dagster UI (Launchpad config),
the same as `deltek-procore review approve|dismiss ID`. One job per tenant: its op decides in
that tenant's store only."""

# No `from __future__ import annotations`: Dagster reads resource annotations at runtime.
from typing import Any

import dagster as dg

from deltek_procore import review
from deltek_procore.defs.resources import StateStoreResource
from deltek_procore.defs.scope import TENANT_NAME_TAG, TenantScope


class ReviewDecision(dg.Config):
    """review_id: from `deltek-procore review list` or the daily summary; decision: approve or
    dismiss; by: who decides (audit trail); reason: why (required to dismiss)."""

    review_id: int
    decision: str = "approve"
    by: str
    reason: str = ""


def decide(context: Any, config: ReviewDecision, store: Any) -> dict:
    """Record one audited decision (the op's body)."""
    if config.decision not in ("approve", "dismiss"):
        raise dg.Failure(f"decision must be approve or dismiss, not {config.decision!r}")
    try:
        if config.decision == "dismiss":
            item = review.dismiss(store, config.review_id, config.by, config.reason)
        else:
            item = review.approve(store, config.review_id, config.by, config.reason or "approved")
    except review.ReviewError as exc:
        raise dg.Failure(str(exc)) from None
    context.log.info(
        f"{config.decision}d review {config.review_id} ({item['kind']} {item['record_id']}) "
        f"by {config.by}; an approved item posts on the next sync of its month"
    )
    return {"review_id": config.review_id, "kind": item["kind"], "record_id": item["record_id"]}


def build_review_job(scope: TenantScope) -> dg.JobDefinition:
    """The tenant's review job; its op is `decide_review` (implicit) or `<tenant>__decide_review`."""
    tenant = scope.tenant

    @dg.op(
        name=scope.name("decide_review"),
        description="Record a person's decision on a review item, audited with their name.",
    )
    def decide_review(
        context: dg.OpExecutionContext, config: ReviewDecision, state: StateStoreResource
    ) -> dict:
        return decide(context, config, state.store(tenant))

    @dg.job(
        name=scope.name("review_decision"),
        tags={} if tenant.implicit else {TENANT_NAME_TAG: tenant.name},
        description="Approve or dismiss one review item (run config: review_id, decision, by).",
    )
    def review_decision() -> None:
        decide_review()

    return review_decision


def __getattr__(name: str) -> Any:
    if name == "review_decision":  # the implicit tenant's, as before tenants
        from deltek_procore.defs.tenant import implicit_parts

        return implicit_parts().review_job
    raise AttributeError(name)
