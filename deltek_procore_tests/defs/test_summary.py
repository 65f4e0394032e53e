"""The daily summary reaches people: a real local SMTP server and a local webhook receive it,
after a real sync left quarantined records; with no notifier it stays in the UI."""

from __future__ import annotations

import json
import socket
import threading
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from deltek_procore.defs.summary import daily_summary_job
from deltek_procore.pipeline import daily_summary
from deltek_procore_tests.defs.sync_harness import harness


class Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    with harness(tmp_path_factory.mktemp("summary"), mp, records=300, receiver=False) as h:
        h.sync()
        yield h, mp
    mp.undo()


def run_summary(h) -> object:
    from deltek_procore.definitions import defs

    result = defs.resolve_job_def(daily_summary_job.name).execute_in_process(instance=h.instance)
    assert result.success
    [mat] = result.asset_materializations_for_node("daily_summary")
    return mat.metadata


def test_the_summary_lists_what_waits_per_project_and_reason(synced) -> None:
    h, _mp = synced
    built = daily_summary.build(h.store)
    quarantined = [r for r in h.store.ledger_rows(statuses=["quarantined"])]
    assert (
        built.counts().get("quarantined") == len({(r.kind, r.record_id) for r in quarantined}) > 0
    )
    assert all(g.project and g.reason for g in built.groups)
    assert "| quarantined |" in built.markdown()


def test_the_summary_reaches_a_local_smtp_server(synced, tmp_path: Path) -> None:
    h, mp = synced
    inbox = Inbox()
    with socket.socket() as probe:  # a free port: aiosmtpd's ready check cannot use port 0
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        mp.setenv("DELTEK_PROCORE_NOTIFY_SMTP_HOST", "127.0.0.1")
        mp.setenv("DELTEK_PROCORE_NOTIFY_SMTP_PORT", str(port))
        mp.setenv(
            "DELTEK_PROCORE_NOTIFY_SMTP_TO", "ap@keystone.example, controller@keystone.example"
        )
        metadata = run_summary(h)
    finally:
        controller.stop()
        mp.delenv("DELTEK_PROCORE_NOTIFY_SMTP_HOST")
    [raw] = inbox.messages
    mail = message_from_bytes(raw)
    assert mail["Subject"].startswith("deltek-procore:") and "wait" in mail["Subject"]
    body = mail.get_payload(decode=True).decode()
    some = h.store.ledger_rows(statuses=["quarantined"])[0]
    assert f"{some.kind} " in body and "quarantined" in body
    assert metadata["sent"].value.startswith("smtp: ok")


def test_the_summary_reaches_a_slack_compatible_webhook(synced) -> None:
    h, mp = synced
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's hook name
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/services/T000/B000/secretpart"
        mp.setenv("DELTEK_PROCORE_NOTIFY_WEBHOOK_URL", url)
        metadata = run_summary(h)
    finally:
        server.shutdown()
        mp.delenv("DELTEK_PROCORE_NOTIFY_WEBHOOK_URL")
    assert received and "| quarantined |" in received[0]["text"]
    assert "secretpart" not in metadata["sent"].value


def test_without_a_notifier_the_summary_is_in_the_ui_only(synced) -> None:
    h, _mp = synced
    metadata = run_summary(h)
    assert metadata["sent"].value == "no notifier configured (UI only)"
    assert "quarantined" in metadata["summary"].value
