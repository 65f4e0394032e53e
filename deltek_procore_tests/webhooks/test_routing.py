"""The receiver routes each event to its tenant, over real HTTP into real state stores that
share one database: per-tenant path, per-tenant Authorization value, 404 for an unknown
tenant (nothing stored), and the implicit tenant served exactly as before tenants."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from deltek_procore.sandbox.server import free_port, serve_in_thread
from deltek_procore.state import schema
from deltek_procore.state.store import StateStore
from deltek_procore.tenants import Tenant
from deltek_procore.webhooks.receiver import WEBHOOK_PATH, TenantInbox, create_app
from deltek_procore.webhooks.routing import RoutingError, tenant_inboxes, tenant_path
from deltek_procore_tests.webhooks.test_events import v2_payload

ACME_SECRET = "Bearer acme-0123456789abcdef"
BETA_SECRET = "Bearer beta-fedcba9876543210"


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[dict[str, StateStore]]:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    out = {name: StateStore(url, tenant=name) for name in ("acme", "beta")}
    yield out
    for store in out.values():
        store.dispose()


@pytest.fixture
def receiver(stores) -> Iterator[str]:
    app = create_app(
        tenants=[
            TenantInbox("acme", stores["acme"], ACME_SECRET),
            TenantInbox("beta", stores["beta"], BETA_SECRET),
        ]
    )
    server = serve_in_thread(app)
    yield server.url
    server.stop()


def _post(url: str, secret: str | None, payload: dict) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["Authorization"] = secret
    return requests.post(url, json=payload, headers=headers, timeout=10)


def _keys(store: StateStore) -> list[str]:
    return sorted(row["event_key"] for row in store.pending_events())


def _rows(store: StateStore) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(schema.webhook_inbox)).scalar()


def test_each_tenants_path_stores_into_its_own_inbox(receiver, stores) -> None:
    # the same Procore event (same id, same record) for both companies
    payload = v2_payload(9001, resource_id=4300000123, ulid=None)
    acme = _post(f"{receiver}{WEBHOOK_PATH}/acme", ACME_SECRET, payload)
    beta = _post(f"{receiver}{WEBHOOK_PATH}/beta", BETA_SECRET, payload)
    assert (acme.status_code, acme.json()["tenant"]) == (201, "acme")
    assert (beta.status_code, beta.json()["tenant"]) == (201, "beta")
    assert _keys(stores["acme"]) == _keys(stores["beta"]) == [acme.json()["key"]]
    # a retry is a duplicate in its own tenant only
    again = _post(f"{receiver}{WEBHOOK_PATH}/acme", ACME_SECRET, payload)
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert _rows(stores["acme"]) == 2  # one row per tenant in the shared table


def test_a_tenants_path_takes_only_its_own_secret(receiver, stores) -> None:
    payload = v2_payload(9002, ulid=None)
    wrong = _post(f"{receiver}{WEBHOOK_PATH}/acme", BETA_SECRET, payload)
    assert wrong.status_code == 401
    assert _post(f"{receiver}{WEBHOOK_PATH}/acme", None, payload).status_code == 401
    assert _keys(stores["acme"]) == _keys(stores["beta"]) == []


def test_todays_path_routes_by_the_secret(receiver, stores) -> None:
    first = _post(f"{receiver}{WEBHOOK_PATH}", BETA_SECRET, v2_payload(9003, ulid=None))
    assert (first.status_code, first.json()["tenant"]) == (201, "beta")
    assert _keys(stores["beta"]) == [first.json()["key"]] and _keys(stores["acme"]) == []
    unknown = _post(f"{receiver}{WEBHOOK_PATH}", "Bearer nobody", v2_payload(9004, ulid=None))
    assert unknown.status_code == 401


def test_an_unknown_tenant_gets_404_and_nothing_is_stored(receiver, stores) -> None:
    response = _post(f"{receiver}{WEBHOOK_PATH}/gamma", ACME_SECRET, v2_payload(9005, ulid=None))
    assert response.status_code == 404
    assert "gamma" in response.json()["error"]
    assert _rows(stores["acme"]) == 0


def test_tenants_must_not_share_a_secret(stores) -> None:
    with pytest.raises(ValueError, match="acme and beta have the same"):
        create_app(
            tenants=[
                TenantInbox("acme", stores["acme"], ACME_SECRET),
                TenantInbox("beta", stores["beta"], ACME_SECRET),
            ]
        )
    with pytest.raises(ValueError, match="either one inbox"):
        create_app(stores["acme"], ACME_SECRET, tenants=[])


def test_secrets_come_from_each_tenants_own_variable(stores) -> None:
    acme, beta = Tenant(name="acme"), Tenant(name="beta")
    env = {
        "DELTEK_PROCORE_WEBHOOK_SECRET": "Bearer plain-only-for-default",
        "DELTEK_PROCORE_WEBHOOK_SECRET__ACME": ACME_SECRET,
    }
    with pytest.raises(RoutingError) as info:
        tenant_inboxes([acme, beta], lambda t: stores[t.name], env)
    # names the missing variable, never a value
    assert "DELTEK_PROCORE_WEBHOOK_SECRET__BETA" in str(info.value)
    assert "plain-only" not in str(info.value) and ACME_SECRET not in str(info.value)
    env["DELTEK_PROCORE_WEBHOOK_SECRET__BETA"] = BETA_SECRET
    inboxes = tenant_inboxes([acme, beta], lambda t: stores[t.name], env)
    assert [(i.name, i.authorization, i.inbox.tenant) for i in inboxes] == [
        ("acme", ACME_SECRET, "acme"),
        ("beta", BETA_SECRET, "beta"),
    ]
    assert tenant_path(acme) == "/webhooks/procore/acme"


def test_the_implicit_tenant_keeps_todays_path_and_variable(tmp_path: Path) -> None:
    implicit = Tenant(name="default", implicit=True)
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        env = {"DELTEK_PROCORE_WEBHOOK_SECRET": ACME_SECRET}
        (inbox,) = tenant_inboxes([implicit], lambda t: store, env)
        assert tenant_path(implicit) == WEBHOOK_PATH
        server = serve_in_thread(create_app(tenants=[inbox]))
        try:
            response = _post(server.url + WEBHOOK_PATH, ACME_SECRET, v2_payload(9006, ulid=None))
        finally:
            server.stop()
        assert response.status_code == 201
        assert _keys(store) == [response.json()["key"]]
    finally:
        store.dispose()


# ---- `deltek-procore webhooks serve --all-tenants`: one receiver process for every tenant ----
TENANTS_YAML = """\
tenants:
  - name: acme
    procore_company_id: "4264"
  - name: beta
    procore_company_id: "5150"
"""


def _command_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DELTEK_", "PROCORE_"))}
    (tmp_path / "tenants.yaml").write_text(TENANTS_YAML)
    env.update(
        {
            "DELTEK_PROCORE_TENANTS": str(tmp_path / "tenants.yaml"),
            "DELTEK_PROCORE_STATE_URL": f"sqlite:///{tmp_path / 'state.db'}",
            "DAGSTER_HOME": str(tmp_path / "home"),
        }
    )
    return env


def _cli(env: dict[str, str], *argv: str, **kwargs):
    command = [sys.executable, "-m", "deltek_procore.cli", "webhooks", "serve", *argv]
    return subprocess.Popen(
        command, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, **kwargs
    )


def test_the_command_names_each_missing_tenant_secret(tmp_path: Path) -> None:
    env = _command_env(tmp_path)
    env["DELTEK_PROCORE_WEBHOOK_SECRET__ACME"] = ACME_SECRET
    process = _cli(env, "--all-tenants")
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "DELTEK_PROCORE_WEBHOOK_SECRET__BETA" in err and ACME_SECRET not in err


def test_the_command_serves_every_tenant_on_its_path(tmp_path: Path) -> None:
    env = _command_env(tmp_path)
    env["DELTEK_PROCORE_WEBHOOK_SECRET__ACME"] = ACME_SECRET
    env["DELTEK_PROCORE_WEBHOOK_SECRET__BETA"] = BETA_SECRET
    port = free_port()
    process = _cli(env, "--all-tenants", "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, process)
        payload = v2_payload(9101, ulid=None)
        assert _post(f"{base}{WEBHOOK_PATH}/acme", ACME_SECRET, payload).status_code == 201
        assert _post(f"{base}{WEBHOOK_PATH}/beta", BETA_SECRET, payload).status_code == 201
        assert _post(f"{base}{WEBHOOK_PATH}/beta", ACME_SECRET, payload).status_code == 401
        assert _post(f"{base}{WEBHOOK_PATH}/gamma", ACME_SECRET, payload).status_code == 404
    finally:
        process.terminate()
        _out, err = process.communicate(timeout=30)
    assert f"tenant acme: receiving Procore webhooks on {base}{WEBHOOK_PATH}/acme" in err
    assert f"tenant beta: receiving Procore webhooks on {base}{WEBHOOK_PATH}/beta" in err
    assert ACME_SECRET not in err and BETA_SECRET not in err
    url = env["DELTEK_PROCORE_STATE_URL"]
    for name in ("acme", "beta"):
        store = StateStore(url, tenant=name)
        try:
            assert len(store.pending_events()) == 1, name
        finally:
            store.dispose()


def _wait_healthy(base: str, process) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the receiver exited: {process.stderr.read()}")
        try:
            if requests.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError("the receiver did not answer within 60 s")
