"""Register the connector's webhook hook and triggers in Procore, idempotently.

Run it as often as you like: it reuses the hook of our namespace that already points at the
destination URL and creates only the triggers that are missing.

Coverage gap, by Procore's design: the webhook resource list has no Requisitions /
Subcontractor Invoices resource and no Commitment Change Orders resource (see
`docs/api/procore.md#resource-names`). Subcontractor invoices and commitment change orders therefore
reach Deltek through the `nightly_reconciliation` schedule (and any sync run), which polls
`filters[updated_at]`, never through a webhook. The same schedule catches events Procore
discarded after pausing a failing endpoint for 12 h.

Webhooks are optional: without the "Webhooks API" permission Procore answers 403/404, and
registration reports that (with the permission to grant) instead of raising.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import SecretStr

from deltek_procore.procore.errors import ProcoreError
from deltek_procore.webhooks.access import HOOK_NAMESPACE, PERMISSION_FIX, unavailable_reason

logger = logging.getLogger(__name__)

_MASK = re.compile(r"(?:\*|\u2022|\u2026|\.\.\.)+")

Trigger = tuple[str, str]  # (resource_name, event_type)

# create + update on every record the connector posts or maps; delete where a deletion
# can affect what was posted (the sensor routes it to review, never to a silent reversal).
# Company Vendors and Projects have no delete trigger in Procore's resource list.
DEFAULT_TRIGGERS: tuple[Trigger, ...] = (
    ("Direct Costs", "create"),
    ("Direct Costs", "update"),
    ("Direct Costs", "delete"),
    ("Work Order Contracts", "create"),
    ("Work Order Contracts", "update"),
    ("Work Order Contracts", "delete"),
    ("Purchase Order Contracts", "create"),
    ("Purchase Order Contracts", "update"),
    ("Purchase Order Contracts", "delete"),
    ("Change Order Packages", "create"),
    ("Change Order Packages", "update"),
    ("Change Order Packages", "delete"),
    ("Company Vendors", "create"),
    ("Company Vendors", "update"),
    ("Projects", "create"),
    ("Projects", "update"),
)

# Optional: an amount edited on a line may only fire the line-item resource. Add these to
# `resources` to hear about it sooner; without related_resources (payload v3.0+) each such
# event makes the sensor re-read the whole project, so they are not on by default.
LINE_ITEM_TRIGGERS: tuple[Trigger, ...] = tuple(
    (name, event_type)
    for name in (
        "Direct Cost Line Items",
        "Work Order Contract Line Items",
        "Purchase Order Contract Line Items",
    )
    for event_type in ("create", "update", "delete")
)


class WebhookClient(Protocol):
    """The part of `ProcoreClient` this module uses."""

    def webhook_hooks(self) -> list[dict]: ...

    def create_hook(self, namespace: str, destination_url: str, authorization: str) -> dict: ...

    def create_trigger(self, hook_id: int, resource_name: str, event_type: str) -> dict: ...


@dataclass(frozen=True)
class RegistrationResult:
    """What `register_webhooks` found and did. Holds no secret."""

    hook_id: int | None
    hook_created: bool
    triggers_created: list[Trigger] = field(default_factory=list)
    triggers_existing: list[Trigger] = field(default_factory=list)
    triggers_failed: list[tuple[str, str, str]] = field(default_factory=list)  # + reason
    warnings: list[str] = field(default_factory=list)
    unavailable: str | None = None  # the webhooks config API refused us (403/404)

    @property
    def ok(self) -> bool:
        return not self.triggers_failed and self.unavailable is None

    def summary(self) -> str:
        if self.unavailable:
            return f"no hook registered: {self.unavailable}\nto use webhooks, {PERMISSION_FIX}"
        verb = "created" if self.hook_created else "reused"
        text = (
            f"hook {self.hook_id} {verb}; triggers: {len(self.triggers_created)} created, "
            f"{len(self.triggers_existing)} already present, {len(self.triggers_failed)} failed"
        )
        return "\n".join([text, *self.warnings])


def register_webhooks(
    client: WebhookClient,
    destination_url: str,
    authorization: str | SecretStr,
    namespace: str = HOOK_NAMESPACE,
    resources: Iterable[Trigger] = DEFAULT_TRIGGERS,
) -> RegistrationResult:
    """Make sure one hook of `namespace` delivers to `destination_url` with every trigger.

    `authorization` is the Authorization header value Procore will send (the receiver's
    configured secret). A trigger Procore refuses (e.g. a resource not enabled for the
    company) is reported in `triggers_failed`; the others are still created. Without the
    "Webhooks API" permission (403/404) nothing is registered and `unavailable` says why.
    """
    secret = (
        authorization.get_secret_value() if isinstance(authorization, SecretStr) else authorization
    )
    if not secret:
        raise ValueError("the webhook Authorization value must not be empty")
    wanted = _unique_triggers(resources)
    warnings: list[str] = []
    try:
        hook = find_hook(client.webhook_hooks(), namespace, destination_url)
        created = hook is None
        if hook is None:
            hook = _unwrap(client.create_hook(namespace, destination_url, secret))
            logger.info("created Procore webhook hook %s for %s", hook.get("id"), destination_url)
        elif not _same_authorization(hook, secret):
            warnings.append(
                f"hook {hook.get('id')} sends a different Authorization header than the one "
                "configured for the receiver; update it in Procore or every delivery gets 401"
            )
        hook_id = int(hook["id"])
        present = _existing_triggers(client, hook, hook_id)
    except ProcoreError as exc:
        reason = unavailable_reason(exc)
        if reason is None:
            raise
        logger.warning("webhooks not registered: %s", reason)
        return RegistrationResult(hook_id=None, hook_created=False, unavailable=reason)
    made: list[Trigger] = []
    existing: list[Trigger] = []
    failed: list[tuple[str, str, str]] = []
    for resource_name, event_type in wanted:
        if (resource_name, event_type) in present:
            existing.append((resource_name, event_type))
            continue
        try:
            client.create_trigger(hook_id, resource_name, event_type)
        except Exception as exc:  # one refused trigger must not stop the others
            logger.warning("trigger %s/%s not created: %s", resource_name, event_type, exc)
            failed.append((resource_name, event_type, str(exc)))
            continue
        made.append((resource_name, event_type))
    return RegistrationResult(
        hook_id=hook_id,
        hook_created=created,
        triggers_created=made,
        triggers_existing=existing,
        triggers_failed=failed,
        warnings=warnings,
    )


def find_hook(
    hooks: Iterable[Mapping[str, Any]], namespace: str, destination_url: str
) -> dict | None:
    """The first hook of our namespace delivering to this URL (trailing '/' ignored)."""
    target = _normal_url(destination_url)
    for hook in hooks:
        hook = _unwrap(hook)
        if (
            hook.get("namespace") == namespace
            and _normal_url(hook.get("destination_url")) == target
        ):
            return hook
    return None


def _unique_triggers(resources: Iterable[Trigger]) -> list[Trigger]:
    seen: dict[Trigger, None] = {}
    for resource_name, event_type in resources:
        seen[(resource_name.strip(), event_type.strip().lower())] = None
    return list(seen)


def _existing_triggers(client: Any, hook: Mapping[str, Any], hook_id: int) -> set[Trigger]:
    """Triggers already on the hook: from the hook itself, else from the client if it can list them."""
    triggers = hook.get("triggers")
    if triggers is None:
        lister = getattr(client, "webhook_triggers", None)
        triggers = lister(hook_id) if callable(lister) else []
    present: set[Trigger] = set()
    for trigger in triggers or []:
        trigger = _unwrap(trigger)
        name, event_type = trigger.get("resource_name"), trigger.get("event_type")
        if isinstance(name, str) and isinstance(event_type, str):
            # the OAS spells event types CREATE/UPDATE/DELETE, payloads lowercase
            present.add((name.strip(), event_type.strip().lower()))
    return present


def _same_authorization(hook: Mapping[str, Any], secret: str) -> bool:
    """Procore echoes the header masked (last 5 characters); compare what is visible."""
    headers = hook.get("destination_headers") or {}
    shown = next(
        (v for k, v in headers.items() if isinstance(k, str) and k.lower() == "authorization"),
        None,
    )
    if not isinstance(shown, str) or not shown:
        return True  # nothing to compare against
    visible = _MASK.split(shown)[-1]  # what follows the last run of mask characters
    return not visible or secret.endswith(visible)


def _unwrap(value: Any) -> dict:
    """v2.0 config endpoints wrap records as {"data": {...}}; v1.0 does not."""
    if isinstance(value, Mapping) and isinstance(value.get("data"), Mapping):
        return dict(value["data"])
    return dict(value) if isinstance(value, Mapping) else {}


def _normal_url(url: Any) -> str:
    return url.strip().rstrip("/") if isinstance(url, str) else ""
