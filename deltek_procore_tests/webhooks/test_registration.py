"""Idempotent hook/trigger registration, against a fake with the ProcoreClient's methods."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from deltek_procore.webhooks.events import RESOURCES
from deltek_procore.webhooks.registration import (
    DEFAULT_TRIGGERS,
    LINE_ITEM_TRIGGERS,
    find_hook,
    register_webhooks,
)

SECRET = "Bearer hook-secret-abcde"
URL = "https://connector.example.com/webhooks/procore"


class FakeProcore:
    """Procore's webhook config API in memory, masking the Authorization like Procore does."""

    def __init__(self, *, list_triggers: bool = True, refuse: set[str] = frozenset()) -> None:
        self.hooks: list[dict] = []
        self.triggers: dict[int, list[dict]] = {}
        self.created_hooks = 0
        self.created_triggers = 0
        self.refuse = refuse
        if not list_triggers:
            self.webhook_triggers = None  # type: ignore[assignment]

    def webhook_hooks(self) -> list[dict]:
        return [dict(h) for h in self.hooks]

    def webhook_triggers(self, hook_id: int) -> list[dict]:
        return [dict(t) for t in self.triggers.get(hook_id, [])]

    def create_hook(self, namespace: str, destination_url: str, authorization: str) -> dict:
        self.created_hooks += 1
        hook = {
            "id": 100 + len(self.hooks),
            "api_version": "v2",
            "namespace": namespace,
            "destination_url": destination_url,
            "destination_headers": {"Authorization": "\u2026" + authorization[-5:]},
        }
        self.hooks.append(hook)
        self.triggers[hook["id"]] = []
        return dict(hook)

    def create_trigger(self, hook_id: int, resource_name: str, event_type: str) -> dict:
        if resource_name in self.refuse:
            raise RuntimeError(f"422 resource {resource_name} is not available")
        self.created_triggers += 1
        trigger = {
            "id": self.created_triggers,
            "webhook_hook_id": hook_id,
            "resource_name": resource_name,
            "event_type": event_type,
        }
        self.triggers[hook_id].append(trigger)
        return trigger


def test_first_run_creates_hook_and_every_trigger():
    fake = FakeProcore()
    result = register_webhooks(fake, URL, SECRET)
    assert result.hook_created
    assert result.ok
    assert result.hook_id == 100
    assert result.triggers_created == list(DEFAULT_TRIGGERS)
    assert result.triggers_existing == []
    stored = {(t["resource_name"], t["event_type"]) for t in fake.triggers[100]}
    assert stored == set(DEFAULT_TRIGGERS)
    assert fake.hooks[0]["namespace"] == "deltek-procore"


def test_second_run_reuses_everything():
    fake = FakeProcore()
    register_webhooks(fake, URL, SECRET)
    again = register_webhooks(fake, URL + "/", SecretStr(SECRET))  # trailing slash is the same
    assert not again.hook_created
    assert again.hook_id == 100
    assert again.triggers_created == []
    assert sorted(again.triggers_existing) == sorted(DEFAULT_TRIGGERS)
    assert fake.created_hooks == 1
    assert fake.created_triggers == len(DEFAULT_TRIGGERS)
    assert again.warnings == []


def test_only_missing_triggers_created_and_case_insensitive_match():
    fake = FakeProcore()
    fake.create_hook("deltek-procore", URL, SECRET)
    fake.triggers[100].append({"resource_name": "Direct Costs", "event_type": "CREATE"})
    fake.triggers[100].append({"resource_name": "Projects", "event_type": "update"})
    result = register_webhooks(fake, URL, SECRET)
    assert not result.hook_created
    assert set(result.triggers_existing) == {("Direct Costs", "create"), ("Projects", "update")}
    assert len(result.triggers_created) == len(DEFAULT_TRIGGERS) - 2
    assert ("Direct Costs", "create") not in result.triggers_created


def test_triggers_embedded_in_hook_listing_are_used():
    fake = FakeProcore(list_triggers=False)
    fake.hooks.append(
        {
            "id": 7,
            "namespace": "deltek-procore",
            "destination_url": URL,
            "triggers": [{"resource_name": "Company Vendors", "event_type": "update"}],
        }
    )
    fake.triggers[7] = []
    result = register_webhooks(fake, URL, SECRET, resources=[("Company Vendors", "update")])
    assert result.triggers_existing == [("Company Vendors", "update")]
    assert fake.created_triggers == 0


def test_other_namespace_or_destination_not_reused():
    fake = FakeProcore()
    fake.create_hook("someone-else", URL, SECRET)
    fake.create_hook("deltek-procore", "https://old.example.com/hook", SECRET)
    result = register_webhooks(fake, URL, SECRET)
    assert result.hook_created
    assert result.hook_id == 102
    assert find_hook(fake.webhook_hooks(), "deltek-procore", URL)["id"] == 102


def test_v2_wrapped_hook_records_are_unwrapped():
    hooks = [{"data": {"id": 9, "namespace": "deltek-procore", "destination_url": URL}}]
    assert find_hook(hooks, "deltek-procore", URL)["id"] == 9


def test_mismatched_authorization_warns_without_leaking_secret():
    fake = FakeProcore()
    fake.create_hook("deltek-procore", URL, "Bearer an-older-secret-zzzzz")
    result = register_webhooks(fake, URL, SECRET, resources=[("Projects", "update")])
    assert len(result.warnings) == 1
    assert "401" in result.warnings[0]
    assert SECRET not in result.summary()
    assert "abcde" not in repr(result)


def test_matching_masked_authorization_gives_no_warning():
    fake = FakeProcore()
    fake.hooks.append(
        {
            "id": 5,
            "namespace": "deltek-procore",
            "destination_url": URL,
            "destination_headers": {"authorization": "****abcde"},
        }
    )
    fake.triggers[5] = []
    result = register_webhooks(fake, URL, SECRET, resources=[("Projects", "update")])
    assert result.warnings == []


def test_refused_trigger_reported_others_still_created():
    fake = FakeProcore(refuse={"Change Order Packages"})
    result = register_webhooks(fake, URL, SECRET)
    assert not result.ok
    assert {(r, e) for r, e, _ in result.triggers_failed} == {
        ("Change Order Packages", "create"),
        ("Change Order Packages", "update"),
        ("Change Order Packages", "delete"),
    }
    assert len(result.triggers_created) == len(DEFAULT_TRIGGERS) - 3
    assert "3 failed" in result.summary()


def test_empty_secret_refused():
    with pytest.raises(ValueError, match="must not be empty"):
        register_webhooks(FakeProcore(), URL, "")


def test_default_triggers_cover_handled_resources_only():
    names = {name for name, _ in DEFAULT_TRIGGERS + LINE_ITEM_TRIGGERS}
    assert names <= set(RESOURCES)
    assert ("Company Vendors", "delete") not in DEFAULT_TRIGGERS
    assert not any("Requisition" in n or "Subcontractor Invoice" in n for n in names)
