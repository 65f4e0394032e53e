"""Procore webhook receiver: authenticates, parses and stores events; never posts to Deltek."""

from deltek_procore.webhooks.events import (
    RESOURCES,
    EventError,
    RelatedResource,
    WebhookEvent,
    affected_record,
    event_from_dict,
    parse_event,
)
from deltek_procore.webhooks.receiver import WEBHOOK_PATH, Inbox, TenantInbox, create_app, serve
from deltek_procore.webhooks.registration import (
    DEFAULT_TRIGGERS,
    LINE_ITEM_TRIGGERS,
    RegistrationResult,
    register_webhooks,
)

__all__ = [
    "DEFAULT_TRIGGERS",
    "LINE_ITEM_TRIGGERS",
    "RESOURCES",
    "WEBHOOK_PATH",
    "EventError",
    "Inbox",
    "RegistrationResult",
    "RelatedResource",
    "TenantInbox",
    "WebhookEvent",
    "affected_record",
    "create_app",
    "event_from_dict",
    "parse_event",
    "register_webhooks",
    "serve",
]
