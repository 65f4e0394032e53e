"""Without the "Webhooks API" permission nothing that reads hooks or deliveries fails.

Against the real Procore simulator over HTTP, with the real ProcoreClient: the webhooks
config API answers 403 (or 404) when the sandbox runs without the permission or the fault
switch is on, and registration, completeness and the Dagster check report it and go on.
"""

from __future__ import annotations

import dagster as dg
import pytest
import requests

from deltek_procore.defs.checks import webhook_deliveries
from deltek_procore.defs.resources import ProcoreResource, StateStoreResource
from deltek_procore.pipeline.completeness import check_deliveries
from deltek_procore.procore.client import ProcoreClient, ProcoreSettings
from deltek_procore.procore.errors import ProcoreError
from deltek_procore.sandbox import seed
from deltek_procore.sandbox.faults import Faults, FaultSettings
from deltek_procore.sandbox.procore_sim import ProcoreSimulator
from deltek_procore.sandbox.server import serve_in_thread
from deltek_procore.webhooks.access import PERMISSION_FIX, unavailable_reason
from deltek_procore.webhooks.registration import DEFAULT_TRIGGERS, register_webhooks

SECRET = "Bearer sandbox-hook-secret-12345"
DESTINATION = "http://127.0.0.1:9/webhooks/procore"  # never called: no record is edited
PATHS = (
    "/rest/v1.0/webhooks/hooks",
    "/rest/v1.0/webhooks/hooks/1",
    "/rest/v1.0/webhooks/hooks/1/triggers",
    "/rest/v1.0/webhooks/hooks/1/triggers/1",
    "/rest/v1.0/webhooks/hooks/1/deliveries",
    "/rest/v1.0/webhooks/resources",
)


@pytest.fixture(scope="module")
def data() -> seed.SandboxData:
    return seed.build(records=120)


@pytest.fixture
def procore(data):
    """(simulator, base URL) of a Procore simulator with the permission, faults switchable."""
    sim = ProcoreSimulator(data, Faults(), spike_limit=1000)
    with serve_in_thread(sim.app) as server:
        yield sim, server.url
    sim.close()


def client_for(url: str) -> ProcoreClient:
    return ProcoreClient(
        ProcoreSettings(
            auth_url=f"{url}/oauth/token",
            api_url=url,
            client_id=seed.PROCORE_CLIENT_ID,
            client_secret=seed.PROCORE_CLIENT_SECRET,
            company_id=seed.PROCORE_COMPANY_ID,
            max_retries=1,
        )
    )


def raw_get(url: str, path: str) -> requests.Response:
    """One GET with a fresh token, outside the product client (to see the raw answer)."""
    creds = {
        "grant_type": "client_credentials",
        "client_id": seed.PROCORE_CLIENT_ID,
        "client_secret": seed.PROCORE_CLIENT_SECRET,
    }
    token = requests.post(f"{url}/oauth/token", data=creds, timeout=10).json()["access_token"]
    headers = {
        "Authorization": f"Bearer {token}",
        "Procore-Company-Id": str(seed.PROCORE_COMPANY_ID),
    }
    params = {"company_id": seed.PROCORE_COMPANY_ID}
    return requests.get(f"{url}{path}", headers=headers, params=params, timeout=10)


# ---------------------------------------------------------------- the simulator


def test_without_permission_every_webhooks_config_path_is_403_with_procore_body(data) -> None:
    sim = ProcoreSimulator(data, webhooks_permission=False)
    with serve_in_thread(sim.app) as server:
        for path in PATHS:
            answer = raw_get(server.url, path)
            assert answer.status_code == 403, path
            assert answer.json() == {
                "errors": "You do not have permission to access the Webhooks API"
            }
        assert raw_get(server.url, "/rest/v1.0/vendors").status_code == 200  # the rest works
    assert sim.faults.counters["webhooks_403"] == len(PATHS)


def test_fault_switch_at_run_time_and_the_404_variant(procore) -> None:
    sim, url = procore
    assert raw_get(url, "/rest/v1.0/webhooks/hooks").status_code == 200
    answer = requests.post(
        f"{url}/__admin/faults",
        json={"webhooks_forbidden": True, "webhooks_forbidden_status": 404},
        timeout=10,
    )
    assert answer.status_code == 200
    assert answer.json()["settings"]["webhooks_forbidden"] is True
    refused = raw_get(url, "/rest/v1.0/webhooks/hooks")
    assert refused.status_code == 404 and refused.json() == {"errors": "Not Found"}
    requests.post(f"{url}/__admin/faults", json={"webhooks_forbidden": False}, timeout=10)
    assert raw_get(url, "/rest/v1.0/webhooks/hooks").status_code == 200


def test_fault_settings_refuse_bad_values(procore) -> None:
    _sim, url = procore
    for body, word in (
        ({"webhooks_forbidden_status": 500}, "403 or 404"),
        ({"webhooks_forbidden": "false"}, "true or false"),
    ):
        answer = requests.post(f"{url}/__admin/faults", json=body, timeout=10)
        assert answer.status_code == 400 and word in answer.json()["errors"]
    with pytest.raises(ValueError, match="403 or 404"):
        Faults().configure(webhooks_forbidden_status=401)


def test_triggers_read_back_upper_case_and_deliveries_have_no_id(procore) -> None:
    sim, url = procore
    client = client_for(url)
    hook = client.create_hook("deltek-procore", DESTINATION, SECRET)
    created = client.create_trigger(hook["id"], "Direct Costs", "update")
    assert created["event_type"] == "UPDATE"
    assert [t["event_type"] for t in client.webhook_triggers(hook["id"])] == ["UPDATE"]
    assert set(hook) == {  # a company hook: no project owner (not null: the model has no null)
        "id", "api_version", "namespace", "destination_url", "destination_headers",
        "owned_by_company_id", "owned_by_user_id",
    }  # fmt: skip
    # two events, three rows for the first (retries), as the worker would record them
    for event_id, outcome in ((11, "failed"), (11, "failed"), (11, "retried"), (22, "ok")):
        sim._record_delivery(  # noqa: SLF001 - seed the history without a live endpoint
            hook["id"], {"id": event_id}, outcome, 500 if outcome == "failed" else 200, None, ""
        )
    rows = client.deliveries(hook["id"], "any", page_size=1)
    assert [r["event_id"] for r in rows] == [11, 11, 11, 22]
    assert all("id" not in r and "hook_id" not in r for r in rows)


# ---------------------------------------------------------------- the connector


def test_registration_reports_the_missing_permission_and_registers_nothing(procore) -> None:
    sim, url = procore
    sim.faults.configure(webhooks_forbidden=True)
    result = register_webhooks(client_for(url), DESTINATION, SECRET)
    assert not result.ok and result.hook_id is None and result.triggers_created == []
    assert result.unavailable == (
        "delivery history unavailable (403: You do not have permission to access the "
        "Webhooks API): the nightly poll covers missed events"
    )
    assert PERMISSION_FIX in result.summary() and SECRET not in result.summary()
    assert sim.hooks == {}


def test_registration_is_idempotent_against_upper_case_trigger_event_types(procore) -> None:
    sim, url = procore
    first = register_webhooks(client_for(url), DESTINATION, SECRET)
    assert first.ok and len(first.triggers_created) == len(DEFAULT_TRIGGERS)
    again = register_webhooks(client_for(url), DESTINATION, SECRET)
    assert (again.hook_id, again.hook_created) == (first.hook_id, False)
    assert again.triggers_created == [] and len(again.triggers_existing) == len(DEFAULT_TRIGGERS)
    assert len(sim.triggers) == len(DEFAULT_TRIGGERS)


def test_other_failures_are_not_mistaken_for_a_missing_permission(procore) -> None:
    sim, url = procore
    sim.faults.configure(rate_5xx=1.0)
    with pytest.raises(ProcoreError) as caught:
        register_webhooks(client_for(url), DESTINATION, SECRET)
    assert caught.value.status in (500, 502, 503)
    assert unavailable_reason(caught.value) is None


@pytest.mark.parametrize("status_code", [403, 404])
def test_completeness_reports_history_unavailable(procore, tmp_path, status_code) -> None:
    from deltek_procore.state.store import StateStore

    sim, url = procore
    client = client_for(url)
    client.create_hook("deltek-procore", DESTINATION, SECRET)
    sim.faults.configure(webhooks_forbidden=True, webhooks_forbidden_status=status_code)
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        found = check_deliveries(client, store)
    finally:
        store.dispose()
    assert found.hooks == [] and found.missing == []
    assert found.unavailable.startswith(f"delivery history unavailable ({status_code}: ")
    assert found.unavailable.endswith("the nightly poll covers missed events")


def _check(url: str, tmp_path, monkeypatch) -> dg.AssetCheckResult:
    """Run the Dagster check with its real resources; the Procore client is the product's,
    built with one retry so a failing Procore answers fast."""
    from deltek_procore import connections

    monkeypatch.setattr(connections, "procore_client", lambda: client_for(url))
    state = StateStoreResource(url=f"sqlite:///{tmp_path / 'state.db'}")
    return webhook_deliveries(procore=ProcoreResource(), state=state)


def test_check_passes_with_a_warning_when_forbidden(procore, tmp_path, monkeypatch) -> None:
    sim, url = procore
    sim.faults.configure(webhooks_forbidden=True)
    result = _check(url, tmp_path, monkeypatch)
    assert result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert result.description == (
        "delivery history unavailable (403: You do not have permission to access the "
        "Webhooks API): the nightly poll covers missed events"
    )
    assert result.metadata["detail"].value == result.description


def test_check_that_cannot_read_procore_warns_instead_of_raising(
    procore, tmp_path, monkeypatch
) -> None:
    sim, url = procore
    sim.faults.configure(rate_5xx=1.0)
    result = _check(url, tmp_path, monkeypatch)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert result.description.startswith("delivery history could not be read (5")
    assert result.description.endswith("the nightly poll covers missed events")


def test_faults_object_carries_the_switch() -> None:
    settings = FaultSettings(webhooks_forbidden=True, webhooks_forbidden_status=404)
    assert Faults(settings).as_dict()["settings"]["webhooks_forbidden_status"] == 404


def test_cli_sandbox_up_without_webhooks_permission(tmp_path) -> None:
    """`deltek-procore sandbox up --no-webhooks-permission` starts, says so, and answers 403."""
    import os
    import signal
    import subprocess
    import sys

    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path),
        "DELTEK_PROCORE_STATE_URL": f"sqlite:///{tmp_path / 'state.db'}",
    }
    command = [sys.executable, "-m", "deltek_procore.cli", "sandbox", "up", "--records", "100"]
    proc = subprocess.Popen(
        [*command, "--no-webhooks-permission"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("# webhook receiver"):
                break
        exports = dict(
            line[len("export ") :].strip().replace("'", "").split("=", 1)
            for line in lines
            if line.startswith("export ")
        )
        assert "no 'Webhooks API' permission" in lines[-1] and "no hook registered" in lines[-1]
        answer = raw_get(exports["PROCORE_API_URL"], "/rest/v1.0/webhooks/hooks")
        assert answer.status_code == 403
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
