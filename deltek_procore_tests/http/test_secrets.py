"""No form of a secret leaves the process: not raw, not URL-encoded, not base64; not in an
exception, not in a log line, not in the Dagster event log."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from urllib.parse import quote, quote_plus

import dagster as dg
import pytest

from deltek_procore.http.secrets import MASK, encoded_forms, scrub
from deltek_procore.procore import ProcoreAuthError, ProcoreClient, ProcoreSettings
from deltek_procore_tests.http.scripted import Reply, ScriptedServer, scripted_server

SECRET = "s3cr3t+value/with=chars&more"


def forms(secret: str) -> list[str]:
    raw = secret.encode()
    return [
        secret,
        quote(secret, safe=""),
        quote(secret, safe="").lower(),
        quote_plus(secret),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ]


@pytest.mark.parametrize("form", forms(SECRET))
def test_every_spelling_of_a_secret_is_masked(form):
    text = f'{{"error": "invalid_client", "echo": "client_secret={form}"}}'
    assert form not in scrub(text, [SECRET]) and MASK in scrub(text, [SECRET])


@pytest.mark.parametrize("prefix", ["", "c", "ci", "cid:", "client-id-1:"])
def test_a_secret_inside_a_base64_value_is_masked_wherever_it_sits(prefix):
    blob = base64.b64encode(f"{prefix}{SECRET}".encode()).decode()  # e.g. an HTTP Basic header
    cleaned = scrub(f"Authorization: Basic {blob}", [SECRET])
    assert cleaned != f"Authorization: Basic {blob}"
    for core in encoded_forms(SECRET):
        assert core not in cleaned


def test_short_values_are_not_secrets_to_mask():
    assert scrub("a b c", ["a", "", None]) == "a b c"


def leaks(text: str) -> list[str]:
    return [form for form in forms(SECRET) if form in text]


def echoing_token_endpoint(server: ScriptedServer) -> None:
    """Procore's token endpoint answering 400 with the URL-encoded secret echoed back."""
    body = {
        "error": "invalid_request",
        "error_description": f"bad request body client_id=cid&client_secret={quote(SECRET, safe='')}",
    }
    server.script("POST", "/oauth/token", default=Reply(400, body))


def settings(url: str) -> ProcoreSettings:
    return ProcoreSettings(
        auth_url=f"{url}/oauth/token",
        api_url=url,
        client_id="cid",
        client_secret=SECRET,
        company_id=4264800,
    )


def test_a_procore_400_echoing_the_secret_reaches_no_exception_and_no_log(caplog):
    caplog.set_level(logging.DEBUG)
    with scripted_server() as server:
        echoing_token_endpoint(server)
        client = ProcoreClient(settings(server.url), sleep=lambda _s: None)
        with pytest.raises(ProcoreAuthError) as info:
            list(client.projects())
    err = info.value
    assert "invalid_request" in str(err) and MASK in err.detail
    assert leaks(str(err) + repr(err) + err.detail + repr(client)) == []
    assert leaks("\n".join(r.getMessage() for r in caplog.records)) == []


def test_nor_the_dagster_event_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from deltek_procore.definitions import defs

    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with scripted_server() as server:
        echoing_token_endpoint(server)
        for key, value in {
            "PROCORE_AUTH_URL": f"{server.url}/oauth/token",
            "PROCORE_API_URL": server.url,
            "PROCORE_CLIENT_ID": "cid",
            "PROCORE_CLIENT_SECRET": SECRET,
            "PROCORE_COMPANY_ID": "4264800",
            "DAGSTER_HOME": str(home),
            "DELTEK_PROCORE_STATE_URL": f"sqlite:///{tmp_path / 'state.db'}",
        }.items():
            monkeypatch.setenv(key, value)
        with dg.DagsterInstance.get() as instance:
            result = defs.resolve_job_def("sync").execute_in_process(
                instance=instance,
                asset_selection=[dg.AssetKey("procore_vendors")],
                raise_on_error=False,
                run_config={
                    "ops": {"procore_vendors": {"config": {"full": True}}},
                },
            )
            assert not result.success
            events = instance.all_logs(result.run_id)
    failures = [e for e in events if e.dagster_event and e.dagster_event.is_step_failure]
    assert failures, "the step should have failed on the token"
    text = "\n".join(repr(e) for e in events)  # messages, step failures with their errors
    assert "could not obtain an access token" in text and MASK in text  # the echo, masked
    assert leaks(text) == []
