"""Procore webhook events: one normalised shape for every payload version.

Procore has sent several payload formats over time (see `docs/api/procore.md#webhooks`):

- v2 / v2.0: ``{"id": 598..., "ulid": "01ED...", "api_version": "v2", "event_type": "create",
  "resource_name": "...", "resource_id": 245510722, "company_id": 6452, "project_id": 219542,
  "metadata": {"source_application_id": ...}}``
- v3.0: the same plus ``"related_resources": [{"id": 1234, "name": "Direct Costs"}]`` on
  line-item resources, which names the parent record the line belongs to.
- v4.0: every value a string, ``"reason"`` instead of ``event_type`` and ``"resource_type"``
  instead of ``resource_name``, usually without ``api_version``.

Events carry ids only, never the record itself, so all the connector needs from an event is
"which record of which kind may have changed" (`affected_record`). Parsing is strict about
what that needs (a dedup key, a resource name, an integer resource id, a timestamp) and
lenient about everything else, because a 400 pauses all of Procore's deliveries to us.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

# Column sizes of the webhook inbox table (deltek_procore/state/schema.py): a value that
# cannot be stored is rejected here with a reason instead of failing in the database.
MAX_KEY_LENGTH = 64
MAX_ID = 2**63 - 1  # ids are stored as BIGINT
MAX_EVENT_TYPE_LENGTH = 16
MAX_RESOURCE_NAME_LENGTH = 80

RecordKind = Literal[
    "direct_cost",
    "work_order",
    "purchase_order",
    "change_order",
    "vendor",
    "project",
    "cost_code",
    "cost_type",
]

# Procore webhook resource name -> the kind of connector record it affects.
RESOURCES: dict[str, RecordKind] = {
    "Direct Costs": "direct_cost",
    "Direct Cost Line Items": "direct_cost",
    "Work Order Contracts": "work_order",
    "Work Order Contract Line Items": "work_order",
    "Purchase Order Contracts": "purchase_order",
    "Purchase Order Contract Line Items": "purchase_order",
    "Change Order Packages": "change_order",
    "Company Vendors": "vendor",
    "Projects": "project",
    "Cost Codes": "cost_code",
    "Line Item Types": "cost_type",
}

# Line-item resource -> the resource of the record that owns the line.
LINE_ITEM_PARENTS: dict[str, str] = {
    "Direct Cost Line Items": "Direct Costs",
    "Work Order Contract Line Items": "Work Order Contracts",
    "Purchase Order Contract Line Items": "Purchase Order Contracts",
}

_DIGITS = re.compile(r"[0-9]+")
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")


class EventError(ValueError):
    """A webhook body that cannot be turned into an event; the message says why."""


class RelatedResource(BaseModel):
    """A record related to the event's resource (v3.0+), e.g. the direct cost of a line."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str


class WebhookEvent(BaseModel):
    """One Procore webhook event, normalised across payload versions."""

    model_config = ConfigDict(frozen=True)

    key: str  # dedup key: ulid when present, else the id as a string
    resource_name: str
    resource_id: int
    event_type: str  # lowercase: create / update / delete / ...
    company_id: int | None = None
    project_id: int | None = None
    user_id: int | None = None
    timestamp: datetime
    payload_version: str  # "v2", "v2.0", "v3.0", "v4.0", ... as Procore labels it
    related_resources: list[RelatedResource] = []
    source_application_id: str | None = None

    @property
    def handled(self) -> bool:
        """Whether the connector cares about this resource at all."""
        return self.resource_name in RESOURCES


def parse_event(body: bytes, *, require_handled: bool = False) -> WebhookEvent:
    """Parse one delivery body; raises `EventError` saying what is wrong with it.

    With `require_handled`, a resource outside `RESOURCES` is an error too; by default it
    parses (the receiver answers such events 2xx "ignored" so Procore does not pause).
    """
    event = event_from_dict(load_object(body))
    if require_handled and not event.handled:
        raise EventError(unhandled_message(event.resource_name))
    return event


def unhandled_message(resource_name: str) -> str:
    return f"resource {resource_name!r} is not handled by deltek-procore"


def load_object(body: bytes) -> dict[str, Any]:
    """Decode a body that must be one JSON object."""
    try:
        value = json.loads(body)
    except UnicodeDecodeError as exc:
        raise EventError(f"body is not JSON: not valid UTF-8 ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise EventError(
            f"body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise EventError("body is not a Procore event: JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer beyond Python's digit limit
        raise EventError(f"body is not a Procore event: {exc}") from None
    if not isinstance(value, dict):
        raise EventError(f"event must be a JSON object, got {_json_type(value)}")
    return value


def event_from_dict(raw: dict[str, Any]) -> WebhookEvent:
    """Build an event from a decoded payload of any supported version."""
    metadata = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {}
    return WebhookEvent(
        key=_key(raw),
        resource_name=_resource_name(raw),
        resource_id=_required_int(raw, "resource_id"),
        event_type=_event_type(raw),
        company_id=_optional_int(raw, "company_id"),
        project_id=_optional_int(raw, "project_id"),
        user_id=_optional_int(raw, "user_id", strict=False),
        timestamp=_timestamp(raw.get("timestamp")),
        payload_version=_payload_version(raw),
        related_resources=_related(raw.get("related_resources")),
        source_application_id=_source_application(raw, metadata),
    )


def affected_record(event: WebhookEvent) -> tuple[RecordKind, int | None, int | None]:
    """(kind, record id, project id) of the connector record an event may have changed.

    A line-item event names the line, not the record: the parent id comes from
    `related_resources` (v3.0+); without it the record id is None and the caller must
    re-read the project (`project_id`) to find which record changed.
    """
    kind = RESOURCES.get(event.resource_name)
    if kind is None:
        raise EventError(unhandled_message(event.resource_name))
    if event.resource_name == "Projects":
        return kind, event.resource_id, event.resource_id
    parent = LINE_ITEM_PARENTS.get(event.resource_name)
    if parent is None:
        return kind, event.resource_id, event.project_id
    wanted = _name_key(parent)
    for related in event.related_resources:
        if _name_key(related.name) == wanted:
            return kind, related.id, event.project_id
    return kind, None, event.project_id


# --- field readers ---------------------------------------------------------------------


def _key(raw: dict[str, Any]) -> str:
    ulid = raw.get("ulid")
    if isinstance(ulid, str) and ulid.strip():
        key = ulid.strip()
    else:
        ident = raw.get("id")
        if ident is None or (isinstance(ident, str) and not ident.strip()):
            raise EventError("event has no id or ulid, so it cannot be de-duplicated")
        if isinstance(ident, bool) or not isinstance(ident, int | str):
            raise EventError(f"event id must be an integer or a string, got {_json_type(ident)}")
        key = str(ident).strip()
    if len(key) > MAX_KEY_LENGTH:
        raise EventError(f"event id/ulid is longer than {MAX_KEY_LENGTH} characters")
    if any(not ch.isprintable() for ch in key):
        raise EventError("event id/ulid holds control characters")
    return key


def _resource_name(raw: dict[str, Any]) -> str:
    value = raw.get("resource_name", raw.get("resource_type"))
    if value is None or (isinstance(value, str) and not value.strip()):
        raise EventError("event has no resource_name (v4.0: resource_type)")
    if not isinstance(value, str):
        raise EventError(f"resource_name must be a string, got {_json_type(value)}")
    name = value.strip()
    if len(name) > MAX_RESOURCE_NAME_LENGTH:
        raise EventError(f"resource_name is longer than {MAX_RESOURCE_NAME_LENGTH} characters")
    return name


def _event_type(raw: dict[str, Any]) -> str:
    value = raw.get("event_type", raw.get("reason"))
    if not isinstance(value, str) or not value.strip():
        raise EventError("event has no event_type (v4.0: reason)")
    event_type = value.strip().lower()
    if len(event_type) > MAX_EVENT_TYPE_LENGTH:
        raise EventError(f"event_type is longer than {MAX_EVENT_TYPE_LENGTH} characters")
    return event_type


def _as_int(value: Any) -> int | None:
    """An integer from an int or a digit string (v4.0 sends ids as strings); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()) and len(value.strip()) <= 19:
        value = int(value.strip())
    if isinstance(value, int) and 0 <= value <= MAX_ID:
        return value
    return None


def _required_int(raw: dict[str, Any], name: str) -> int:
    value = raw.get(name)
    if value is None or value == "":
        raise EventError(f"event has no {name}")
    number = _as_int(value)
    if number is None:
        raise EventError(f"{name} must be a non-negative integer, got {_describe(value)}")
    return number


def _optional_int(raw: dict[str, Any], name: str, *, strict: bool = True) -> int | None:
    """None when absent or empty (company-level events have no project); else an integer."""
    value = raw.get(name)
    if value is None or value == "":
        return None
    number = _as_int(value)
    if number is None and strict:
        raise EventError(f"{name} must be an integer or null, got {_describe(value)}")
    return number


def _timestamp(value: Any) -> datetime:
    if value is None or value == "":
        raise EventError("event has no timestamp")
    if not isinstance(value, str):
        raise EventError(f"timestamp must be an ISO-8601 string, got {_json_type(value)}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = _LONG_FRACTION.sub(r"\1", text)  # nanoseconds -> microseconds
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise EventError(f"timestamp {_describe(value)} is not an ISO-8601 date-time") from None
    if moment.tzinfo is None:  # Procore sends UTC; a bare time is read as UTC
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def _payload_version(raw: dict[str, Any]) -> str:
    for name in ("api_version", "payload_version"):
        value = raw.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    if "resource_type" in raw or "reason" in raw:
        return "v4.0"
    return "unspecified"


def _related(value: Any) -> list[RelatedResource]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise EventError(f"related_resources must be a list, got {_json_type(value)}")
    related = []
    for position, item in enumerate(value):
        if not isinstance(item, dict):
            raise EventError(f"related_resources[{position}] must be an object")
        ident = _as_int(item.get("id"))
        name = item.get("name", item.get("resource_name", item.get("resource_type")))
        if ident is None or not isinstance(name, str) or not name.strip():
            raise EventError(
                f"related_resources[{position}] needs an integer id and a name, "
                f"got {json.dumps(item)[:120]}"
            )
        related.append(RelatedResource(id=ident, name=name.strip()))
    return related


def _source_application(raw: dict[str, Any], metadata: dict[str, Any]) -> str | None:
    value = metadata.get("source_application_id", raw.get("source_application_id"))
    if value is None or isinstance(value, bool) or value == "":
        return None
    return str(value) if isinstance(value, int | str) else None


def _name_key(name: str) -> str:
    """Compare resource names loosely: case, spacing and a plural 's' do not matter."""
    compact = " ".join(name.lower().split())
    return compact[:-1] if compact.endswith("s") else compact


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _describe(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
