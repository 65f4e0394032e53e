"""The webhook receiver over real HTTP: auth, limits, parsing, dedup, failures, concurrency."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from pydantic import SecretStr

from deltek_procore.sandbox.server import serve_in_thread
from deltek_procore.webhooks.events import WebhookEvent
from deltek_procore.webhooks.receiver import WEBHOOK_PATH, create_app
from deltek_procore_tests.webhooks.test_events import v2_payload, v3_payload, v4_payload

SECRET = "Bearer s3cr3t-webhook-value-0123456789"


class MemoryInbox:
    """The inbox contract in memory: first add of a key wins, later adds are duplicates."""

    def __init__(self) -> None:
        self.events: dict[str, tuple[WebhookEvent, dict]] = {}
        self.calls = 0
        self._lock = threading.Lock()

    def add(self, event: WebhookEvent, raw: dict) -> bool:
        with self._lock:
            self.calls += 1
            if event.key in self.events:
                return False
            self.events[event.key] = (event, raw)
            return True


class BrokenInbox:
    def add(self, event: WebhookEvent, raw: dict) -> bool:
        raise RuntimeError("database is locked")


class SlowInbox(MemoryInbox):
    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def add(self, event: WebhookEvent, raw: dict) -> bool:
        time.sleep(self.delay)
        return super().add(event, raw)


Start = Callable[..., str]


@pytest.fixture
def start() -> Iterator[Start]:
    """start(inbox, **options) -> base URL of a running receiver; all stopped afterwards."""
    servers = []

    def _start(inbox, authorization: str | SecretStr = SECRET, **options) -> str:
        server = serve_in_thread(create_app(inbox, authorization, **options))
        servers.append(server)
        return server.url

    yield _start
    for server in servers:
        server.stop()


def post(
    url: str,
    payload: object,
    *,
    auth: str | None = SECRET,
    session: requests.Session | None = None,
    **kwargs,
) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization"] = auth
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return (session or requests).post(
        url + WEBHOOK_PATH, data=data, headers=headers, timeout=10, **kwargs
    )


@pytest.mark.parametrize(
    ("payload", "version"),
    [
        (v2_payload(1, version="v2"), "v2"),
        (v2_payload(2, version="v2.0", ulid=None), "v2.0"),
        (v3_payload(3), "v3.0"),
        (v4_payload("01JMYXC7T1Z0000000000000V4"), "v4.0"),
    ],
    ids=["v2", "v2.0", "v3.0", "v4.0"],
)
def test_each_payload_version_is_stored_once(start, payload, version):
    inbox = MemoryInbox()
    url = start(inbox)
    first = post(url, payload)
    assert first.status_code == 201
    assert first.json()["status"] == "stored"
    assert len(inbox.events) == 1
    (event, raw) = next(iter(inbox.events.values()))
    assert raw == payload  # the raw delivery is kept for audit / replay
    assert first.json()["key"] == event.key
    assert event.payload_version == version
    assert post(url, payload).status_code == 200  # a second delivery is a duplicate
    assert len(inbox.events) == 1


def test_duplicate_answered_200_and_not_stored_twice(start):
    inbox = MemoryInbox()
    url = start(inbox)
    payload = v2_payload(10)
    assert post(url, payload).status_code == 201
    again = post(url, payload)
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "key": payload["ulid"]}
    assert len(inbox.events) == 1
    assert inbox.calls == 2


@pytest.mark.parametrize(
    "auth", [None, "", "Bearer wrong", SECRET + "x", SECRET[:-1], "bearer" + SECRET[6:]]
)
def test_missing_or_wrong_authorization_is_401_and_nothing_stored(start, auth):
    inbox = MemoryInbox()
    url = start(inbox)
    response = post(url, v2_payload(), auth=auth)
    assert response.status_code == 401
    assert "error" in response.json()
    assert inbox.calls == 0


def test_secretstr_authorization_accepted(start):
    inbox = MemoryInbox()
    url = start(inbox, SecretStr(SECRET))
    assert post(url, v2_payload()).status_code == 201
    assert post(url, v2_payload(11, ulid="other"), auth="nope").status_code == 401


def test_empty_configured_secret_refused():
    with pytest.raises(ValueError, match="must not be empty"):
        create_app(MemoryInbox(), "  ")


def test_non_ascii_header_is_rejected_not_crashing(start):
    inbox = MemoryInbox()
    url = start(inbox)
    response = post(url, v2_payload(), auth="Bearer caf\u00e9".encode().decode("latin-1"))
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "body is not JSON"),
        (b"[]", "event must be a JSON object"),
        (json.dumps({**v2_payload(), "resource_id": "abc"}).encode(), "resource_id must be"),
        (json.dumps({**v2_payload(), "timestamp": "soon"}).encode(), "not an ISO-8601"),
    ],
)
def test_invalid_body_is_400_with_reason(start, body, message):
    inbox = MemoryInbox()
    url = start(inbox)
    response = post(url, body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert inbox.calls == 0


def test_oversized_body_by_content_length_is_413(start):
    inbox = MemoryInbox()
    url = start(inbox, max_body=1024)
    payload = {**v2_payload(), "padding": "x" * 2000}
    response = post(url, payload)
    assert response.status_code == 413
    assert "1024" in response.json()["error"]
    assert inbox.calls == 0


def test_oversized_chunked_body_is_413(start):
    """No Content-Length: the bytes actually read are counted."""
    inbox = MemoryInbox()
    url = start(inbox, max_body=1024)
    body = json.dumps({**v2_payload(), "padding": "x" * 4000}).encode()

    def chunks():
        for i in range(0, len(body), 500):
            yield body[i : i + 500]

    response = requests.post(
        url + WEBHOOK_PATH,
        data=chunks(),
        headers={"Authorization": SECRET, "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 413
    assert inbox.calls == 0


def test_chunked_body_within_limit_is_stored(start):
    inbox = MemoryInbox()
    url = start(inbox, max_body=4096)
    body = json.dumps(v2_payload(12)).encode()
    response = requests.post(
        url + WEBHOOK_PATH,
        data=iter([body[:50], body[50:]]),
        headers={"Authorization": SECRET},
        timeout=10,
    )
    assert response.status_code == 201
    assert len(inbox.events) == 1


def test_default_body_limit_accepts_normal_event_rejects_huge(start):
    inbox = MemoryInbox()
    url = start(inbox)
    assert post(url, v2_payload(13)).status_code == 201
    huge = {**v2_payload(14, ulid="huge"), "padding": "x" * (256 * 1024)}
    assert post(url, huge).status_code == 413
    assert list(inbox.events) == [v2_payload(13)["ulid"]]


def test_unknown_resource_is_202_ignored_and_not_stored(start):
    inbox = MemoryInbox()
    url = start(inbox)
    response = post(url, v2_payload(resource_name="RFIs"))
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    assert "resource 'RFIs' is not handled by deltek-procore" in response.json()["reason"]
    assert inbox.calls == 0


def test_unknown_resource_status_configurable(start):
    inbox = MemoryInbox()
    url = start(inbox, unhandled_status=422)
    response = post(url, v4_payload(resource_type="Submittals"))
    assert response.status_code == 422
    assert response.json() == {"error": "resource 'Submittals' is not handled by deltek-procore"}
    assert inbox.calls == 0


def test_inbox_error_is_503(start):
    url = start(BrokenInbox())
    response = post(url, v2_payload())
    assert response.status_code == 503
    assert "retry" in response.json()["error"]


def test_slow_inbox_answers_503_before_procore_gives_up(start):
    inbox = SlowInbox(delay=1.0)
    url = start(inbox, inbox_timeout=0.2)
    began = time.monotonic()
    response = post(url, v2_payload(15))
    elapsed = time.monotonic() - began
    assert response.status_code == 503
    assert elapsed < 0.8
    # the abandoned insert still lands; Procore's retry is then a duplicate, nothing lost
    deadline = time.monotonic() + 5
    while not inbox.events and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(inbox.events) == [v2_payload(15)["ulid"]]


def test_healthz_and_wrong_method(start):
    url = start(MemoryInbox())
    assert requests.get(url + "/healthz", timeout=5).json() == {"status": "ok"}
    assert requests.get(url + WEBHOOK_PATH, timeout=5).status_code == 405


def test_concurrent_deliveries_each_stored_exactly_once(start):
    """200 distinct events, each delivered twice (Procore is at-least-once), from 8 threads."""
    inbox = MemoryInbox()
    url = start(inbox)
    payloads = []
    for n in range(200):
        if n % 3 == 0:
            payloads.append(v2_payload(1000 + n, ulid=f"01CONCURRENT{n:014d}"))
        elif n % 3 == 1:
            payloads.append(v3_payload(2000 + n))
        else:
            payloads.append(v4_payload(f"01V4CONCURRENT{n:012d}", resource_id=str(n)))
    deliveries = payloads + payloads[::-1]
    local = threading.local()

    def deliver(payload: dict) -> int:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return post(url, payload, session=local.session).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(deliver, deliveries))

    assert statuses.count(201) == 200
    assert statuses.count(200) == 200
    assert len(inbox.events) == 200
    assert inbox.calls == 400
    expected_keys = {p.get("ulid") or str(p["id"]) for p in payloads}
    assert set(inbox.events) == expected_keys
    for key, (event, raw) in inbox.events.items():
        assert event.key == key
        assert (raw.get("ulid") or str(raw["id"])) == key  # raw matches its event


def test_secret_never_in_responses_or_logs(start, caplog):
    caplog.set_level(logging.DEBUG)
    url = start(MemoryInbox(), max_body=2048)
    broken = start(BrokenInbox())
    responses = [
        post(url, v2_payload(20)),  # 201
        post(url, v2_payload(20)),  # 200
        post(url, v2_payload(21, ulid="u21", resource_name="RFIs")),  # 202
        post(url, b"{oops"),  # 400
        post(url, v2_payload(22), auth=SECRET + "-wrong"),  # 401
        post(url, v2_payload(23), auth=None),  # 401
        post(url, {**v2_payload(24), "pad": "x" * 4096}),  # 413
        post(broken, v2_payload(25)),  # 503
        requests.get(url + WEBHOOK_PATH, headers={"Authorization": SECRET}, timeout=5),  # 405
        requests.get(url + "/nowhere", headers={"Authorization": SECRET}, timeout=5),  # 404
    ]
    statuses = [r.status_code for r in responses]
    assert statuses == [201, 200, 202, 400, 401, 401, 413, 503, 405, 404]
    token = SECRET.split()[-1]
    for response in responses:
        assert token not in response.text
        assert all(token not in value for value in response.headers.values())
    assert caplog.records  # the receiver did log; none of it holds the secret
    assert token not in caplog.text


def test_declared_content_length_refused_before_reading(start):
    """A huge Content-Length is refused at once, without waiting for bytes that never come."""
    inbox = MemoryInbox()
    url = start(inbox, max_body=1024)
    host, port = url.removeprefix("http://").split(":")
    request = (
        f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {SECRET}\r\n"
        "Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n{"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        answer = sock.recv(4096).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413")
    assert inbox.calls == 0
