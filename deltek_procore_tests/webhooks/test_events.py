"""Parsing every Procore webhook payload version into one event shape."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from deltek_procore.webhooks.events import (
    RESOURCES,
    EventError,
    affected_record,
    event_from_dict,
    parse_event,
)


def v2_payload(
    event_id: int = 5982324300946918154,
    *,
    version: str = "v2",
    resource_name: str = "Purchase Order Contracts",
    resource_id: int = 245510722,
    event_type: str = "create",
    ulid: str | None = "01EDPD2J6SBY1163N77H95GW09",
) -> dict:
    """A v2 / v2.0 delivery as in Procore's docs (v3.0 adds related_resources)."""
    payload = {
        "id": event_id,
        "timestamp": "2020-07-20T15:22:01.353581Z",
        "api_version": version,
        "event_type": event_type,
        "resource_name": resource_name,
        "resource_id": resource_id,
        "company_id": 6452,
        "project_id": 219542,
        "user_id": 1469242,
        "metadata": {
            "source_user_id": 1469242,
            "source_company_id": 6452,
            "source_project_id": 219542,
            "source_operation_id": None,
            "source_application_id": None,
        },
    }
    if ulid is not None:
        payload["ulid"] = ulid
    return payload


def v3_payload(
    event_id: int = 7000000000000000001,
    *,
    resource_name: str = "Direct Cost Line Items",
    resource_id: int = 379913,
    parent: tuple[int, str] | None = (1234, "Direct Costs"),
) -> dict:
    payload = v2_payload(
        event_id, version="v3.0", resource_name=resource_name, resource_id=resource_id, ulid=None
    )
    payload["related_resources"] = [{"id": parent[0], "name": parent[1]}] if parent else []
    return payload


def v4_payload(
    key: str = "01JMYXC7T1Z0000000000000AB",
    *,
    resource_type: str = "Direct Cost Line Items",
    resource_id: str = "379913",
    reason: str = "update",
) -> dict:
    """v4.0: every value a string, reason/resource_type instead of event_type/resource_name."""
    return {
        "id": key,
        "timestamp": "2025-02-25T18:04:11.123456789Z",
        "reason": reason,
        "company_id": "8",
        "project_id": "6778",
        "user_id": "5447",
        "resource_type": resource_type,
        "resource_id": resource_id,
    }


def encode(payload: object) -> bytes:
    return json.dumps(payload).encode()


def test_v2_event_uses_ulid_as_key_and_keeps_ids():
    event = parse_event(encode(v2_payload()))
    assert event.key == "01EDPD2J6SBY1163N77H95GW09"
    assert event.resource_name == "Purchase Order Contracts"
    assert event.resource_id == 245510722
    assert event.event_type == "create"
    assert (event.company_id, event.project_id, event.user_id) == (6452, 219542, 1469242)
    assert event.timestamp == datetime(2020, 7, 20, 15, 22, 1, 353581, tzinfo=timezone.utc)
    assert event.payload_version == "v2"
    assert event.related_resources == []
    assert event.source_application_id is None


def test_v2_0_label_and_id_key_without_ulid():
    event = parse_event(encode(v2_payload(42, version="v2.0", ulid=None)))
    assert event.key == "42"
    assert event.payload_version == "v2.0"


def test_v3_event_carries_related_parent():
    event = parse_event(encode(v3_payload()))
    assert event.payload_version == "v3.0"
    assert [(r.id, r.name) for r in event.related_resources] == [(1234, "Direct Costs")]
    assert affected_record(event) == ("direct_cost", 1234, 219542)


def test_v4_event_all_strings_normalised():
    event = parse_event(encode(v4_payload(reason="UPDATE")))
    assert event.key == "01JMYXC7T1Z0000000000000AB"
    assert event.payload_version == "v4.0"
    assert event.resource_name == "Direct Cost Line Items"
    assert event.resource_id == 379913
    assert event.event_type == "update"
    assert (event.company_id, event.project_id, event.user_id) == (8, 6778, 5447)
    # nanoseconds are cut to microseconds rather than rejected
    assert event.timestamp == datetime(2025, 2, 25, 18, 4, 11, 123456, tzinfo=timezone.utc)


def test_event_is_frozen():
    event = parse_event(encode(v2_payload()))
    with pytest.raises(ValidationError):
        event.resource_id = 1  # type: ignore[misc]


def test_company_level_event_without_project():
    payload = v2_payload(resource_name="Company Vendors", resource_id=35)
    del payload["project_id"]
    event = parse_event(encode(payload))
    assert event.project_id is None
    assert affected_record(event) == ("vendor", 35, None)


def test_v4_empty_project_id_is_none():
    payload = v4_payload(resource_type="Company Vendors", resource_id="35")
    payload["project_id"] = ""
    assert parse_event(encode(payload)).project_id is None


def test_source_application_id_read_from_metadata():
    payload = v2_payload()
    payload["metadata"]["source_application_id"] = "abc-client"
    assert parse_event(encode(payload)).source_application_id == "abc-client"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "body is not JSON"),
        (b"\xff\xfe", "body is not JSON"),
        (b"[1, 2]", "event must be a JSON object, got an array"),
        (b'"text"', "event must be a JSON object, got a string"),
    ],
)
def test_body_errors(body, message):
    with pytest.raises(EventError, match=message):
        parse_event(body)


def _without(payload: dict, *names: str) -> dict:
    return {k: v for k, v in payload.items() if k not in names}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (_without(v2_payload(), "id", "ulid"), "no id or ulid"),
        ({**_without(v2_payload(), "ulid"), "id": True}, "event id must be"),
        ({**v2_payload(), "ulid": "x" * 65}, "longer than 64"),
        (_without(v2_payload(), "resource_name"), "no resource_name"),
        ({**v2_payload(), "resource_name": "  "}, "no resource_name"),
        ({**v2_payload(), "resource_name": 7}, "resource_name must be a string"),
        ({**v2_payload(), "resource_id": "abc"}, "resource_id must be a non-negative integer"),
        ({**v2_payload(), "resource_id": 1.5}, "resource_id must be a non-negative integer"),
        ({**v2_payload(), "resource_id": -3}, "resource_id must be a non-negative integer"),
        (_without(v2_payload(), "resource_id"), "no resource_id"),
        (_without(v2_payload(), "event_type"), "no event_type"),
        ({**v2_payload(), "timestamp": "yesterday"}, "is not an ISO-8601 date-time"),
        ({**v2_payload(), "timestamp": 1595258521}, "timestamp must be an ISO-8601 string"),
        (_without(v2_payload(), "timestamp"), "no timestamp"),
        ({**v2_payload(), "project_id": "p-1"}, "project_id must be an integer or null"),
        ({**v2_payload(), "related_resources": [{"id": "x"}]}, r"related_resources\[0\]"),
        (_without(v4_payload(), "resource_type"), r"no resource_name \(v4.0: resource_type\)"),
        ({**v4_payload(), "resource_id": "12a"}, "resource_id must be a non-negative integer"),
    ],
)
def test_field_errors_are_specific(payload, message):
    with pytest.raises(EventError, match=message):
        event_from_dict(payload)


def test_unknown_resource_parses_unless_required():
    body = encode(v2_payload(resource_name="RFIs"))
    event = parse_event(body)
    assert not event.handled
    with pytest.raises(EventError, match="resource 'RFIs' is not handled by deltek-procore"):
        parse_event(body, require_handled=True)
    with pytest.raises(EventError, match="not handled"):
        affected_record(event)


@pytest.mark.parametrize(
    ("resource", "kind"),
    [
        ("Direct Costs", "direct_cost"),
        ("Work Order Contracts", "work_order"),
        ("Purchase Order Contracts", "purchase_order"),
        ("Change Order Packages", "change_order"),
        ("Cost Codes", "cost_code"),
    ],
)
def test_record_resources_name_themselves(resource, kind):
    event = parse_event(encode(v2_payload(resource_name=resource, resource_id=99)))
    assert RESOURCES[resource] == kind
    assert affected_record(event) == (kind, 99, 219542)


def test_projects_event_names_the_project():
    payload = _without(v2_payload(resource_name="Projects", resource_id=777), "project_id")
    assert affected_record(event_from_dict(payload)) == ("project", 777, 777)


def test_line_item_without_parent_asks_for_project_reread():
    event = parse_event(encode(v2_payload(resource_name="Work Order Contract Line Items")))
    assert affected_record(event) == ("work_order", None, 219542)
    v4 = parse_event(encode(v4_payload()))
    assert affected_record(v4) == ("direct_cost", None, 6778)


def test_line_item_parent_picked_by_name_among_several_related():
    payload = v3_payload(resource_name="Purchase Order Contract Line Items", parent=None)
    payload["related_resources"] = [
        {"id": 219542, "name": "Projects"},
        {"id": 555, "name": "purchase order contract"},  # case / plural tolerated
    ]
    assert affected_record(event_from_dict(payload)) == ("purchase_order", 555, 219542)


def test_line_item_related_to_other_resource_does_not_guess():
    payload = v3_payload(resource_name="Direct Cost Line Items", parent=(9, "Work Order Contracts"))
    assert affected_record(event_from_dict(payload)) == ("direct_cost", None, 219542)
