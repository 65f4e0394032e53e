"""Procore's webhooks config API is optional: without it the sync runs exactly the same.

The hooks, triggers, deliveries and resources endpoints need the service account
permission "Webhooks API", which many accounting service accounts lack; Procore then
answers 403, or 404 ("not found or no read access") (docs/api/procore.md, webhooks and
error shapes). Everything that reads hooks or deliveries turns those answers into one
sentence, `unavailable_reason`, and carries on: the nightly poll by `updated_at` covers any
event a webhook would have brought.
"""

from __future__ import annotations

from deltek_procore.procore.errors import ProcoreError

HOOK_NAMESPACE = "deltek-procore"  # the namespace of the connector's hook in Procore
UNAVAILABLE_STATUSES = frozenset({403, 404})
POLL_COVERS = "the nightly poll covers missed events"
PERMISSION_FIX = (
    "grant the service account the 'Webhooks API' permission (Standard) in Procore's "
    "Developer Managed Service Account settings"
)


def unavailable_reason(exc: BaseException) -> str | None:
    """For a 403/404 from Procore: "delivery history unavailable (403: <Procore's message>):
    the nightly poll covers missed events". None for any other failure (raise it)."""
    if not isinstance(exc, ProcoreError) or exc.status not in UNAVAILABLE_STATUSES:
        return None
    message = (exc.detail or exc.message or "no message").strip()
    return f"delivery history unavailable ({exc.status}: {message}): {POLL_COVERS}"
