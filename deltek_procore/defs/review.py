"""review_decision: approve or dismiss a review item from the Dagster UI (Launchpad config),
the same as `deltek-procore review approve|dismiss ID`."""

# No `from __future__ import annotations`: Dagster reads resource annotations at runtime.
import dagster as dg

from deltek_procore import review
from deltek_procore.defs.resources import StateStoreResource


class ReviewDecision(dg.Config):
    """review_id: from `deltek-procore review list` or the daily summary; decision: approve or
    dismiss; by: who decides (audit trail); reason: why (required to dismiss)."""

    review_id: int
    decision: str = "approve"
    by: str
    reason: str = ""


@dg.op(description="Record a person's decision on a review item, audited with their name.")
def decide_review(
    context: dg.OpExecutionContext, config: ReviewDecision, state: StateStoreResource
) -> dict:
    store = state.store()
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


@dg.job(description="Approve or dismiss one review item (run config: review_id, decision, by).")
def review_decision() -> None:
    decide_review()
