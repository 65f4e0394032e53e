"""Malformed and hostile webhook deliveries against the real receiver and a real inbox.

Each request must get a clear 4xx (never a 5xx: Procore pauses every delivery to an
endpoint that answers 5xx and retries the bad one for hours), must store nothing,
and must not disturb the next good event.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from deltek_procore.sandbox.server import serve_in_thread
from deltek_procore.state.store import StateStore
from deltek_procore.webhooks.receiver import DEFAULT_MAX_BODY, WEBHOOK_PATH, create_app

SECRET = "Bearer hostile-input-test-0123456789"
PARSER_BUG = (
    "webhooks/events.py load_object (~line 132) catches only JSONDecodeError/UnicodeDecodeError:"
    " json.loads raises RecursionError (deep nesting) or ValueError (an integer literal over"
    " 4300 digits), which escapes as a 500"
)
RANGE_BUG = (
    "webhooks/events.py _as_int (~line 208) has no upper bound: an id beyond BIGINT passes"
    " parsing, the inbox insert fails and the receiver answers 503, so Procore pauses all"
    " deliveries and retries the bad event for hours"
)
_ids = itertools.count(1)


@dataclass
class Receiver:
    url: str
    store: StateStore

    def post(self, body: bytes | str, *, auth: str | None = SECRET, **headers: str):
        data = body.encode("utf-8") if isinstance(body, str) else body
        sent = {"Content-Type": "application/json", **headers}
        if auth is not None:
            sent["Authorization"] = auth
        return requests.post(self.url + WEBHOOK_PATH, data=data, headers=sent, timeout=10)


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    folder: Path = tmp_path_factory.mktemp("inbox")
    store = StateStore(f"sqlite:///{folder / 'state.db'}")
    server = serve_in_thread(create_app(store, SECRET))
    try:
        yield Receiver(server.url, store)
    finally:
        server.stop()
        store.dispose()


def event(**changes: object) -> dict:
    """A valid v2 delivery for a handled resource, with a fresh id."""
    number = next(_ids)
    payload: dict = {
        "id": 7_000_000 + number,
        "ulid": f"01HOSTILE{number:017d}",
        "timestamp": "2026-03-04T05:06:07.123456Z",
        "api_version": "v2",
        "event_type": "update",
        "resource_name": "Direct Costs",
        "resource_id": 4_300_000_001 + number,
        "company_id": 4264800,
        "project_id": 2780001,
    }
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not ...}


def rejected(receiver: Receiver, body: bytes | str, status: int, words: str, **kw) -> None:
    """The delivery gets `status` with an error naming `words`; the inbox is unchanged."""
    before = receiver.store.inbox_count()
    resp = receiver.post(body, **kw)
    assert resp.status_code == status, (resp.status_code, resp.text[:300])
    assert words.lower() in resp.json()["error"].lower(), resp.json()
    assert receiver.store.inbox_count() == before
    good = receiver.post(json.dumps(event()))  # and the next real event still goes in
    assert good.status_code == 201, good.text
    assert receiver.store.inbox_count() == before + 1


# ---- authentication ---------------------------------------------------------------------------
def test_missing_authorization_is_401_and_nothing_read(receiver: Receiver) -> None:
    rejected(receiver, json.dumps(event()), 401, "authorization", auth=None)


@pytest.mark.parametrize(
    "auth",
    ["", "Bearer", SECRET + " ", SECRET.lower(), "Basic " + SECRET, SECRET[:-1], "Bearer \u00e9"],
)
def test_wrong_authorization_is_401(receiver: Receiver, auth: str) -> None:
    header = auth.encode("utf-8").decode("latin-1")  # what goes on the wire, byte for byte
    rejected(receiver, json.dumps(event()), 401, "authorization", auth=header)


# ---- not an event -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"", "not JSON"),
        (b"\x00", "not JSON"),
        (b'{"id": 1\x00}', "not JSON"),
        (b"\xff\xfe{}", "not JSON"),
        (b"\xc3\x28{}", "not valid UTF-8"),
        (b"{'id': 1}", "not JSON"),
        (b"[]", "JSON object"),
        (b'"Direct Costs"', "JSON object"),
        (b"12", "JSON object"),
        (b"null", "JSON object"),
        (b"{}", "no id or ulid"),
        (b'{"id": 1, "id": {"nested": true}}', "id must be"),
    ],
)
def test_not_an_event_is_400(receiver: Receiver, body: bytes, words: str) -> None:
    rejected(receiver, body, 400, words)


@pytest.mark.parametrize("depth", [2_000, 100_000])
def test_deeply_nested_json_is_400(receiver: Receiver, depth: int) -> None:
    """Nesting beyond what the JSON parser recurses into must not crash the receiver."""
    rejected(receiver, "[" * depth + "]" * depth, 400, "JSON")


def test_deeply_nested_value_inside_a_valid_event_is_400(receiver: Receiver) -> None:
    body = json.dumps(event())[:-1] + ', "metadata": ' + "[" * 50_000 + "]" * 50_000 + "}"
    rejected(receiver, body, 400, "JSON")


def test_body_of_one_megabyte_is_413(receiver: Receiver) -> None:
    body = json.dumps(event(padding="x" * (1024 * 1024)))
    assert len(body) > DEFAULT_MAX_BODY
    rejected(receiver, body, 413, "larger than")


def test_declared_length_that_is_not_a_number_is_400(receiver: Receiver) -> None:
    before = receiver.store.inbox_count()
    with requests.Session() as session:
        request = requests.Request(
            "POST",
            receiver.url + WEBHOOK_PATH,
            data=json.dumps(event()).encode(),
            headers={"Authorization": SECRET, "Content-Type": "application/json"},
        ).prepare()
        request.headers["Content-Length"] = "12abc"
        try:
            resp = session.send(request, timeout=10)
        except requests.ConnectionError:
            resp = None  # refusing the connection outright is a fine answer too
    if resp is not None:
        assert 400 <= resp.status_code < 500, resp.status_code
    assert receiver.store.inbox_count() == before


# ---- wrong types and absurd values -------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"resource_id": [1, 2]}, "resource_id must be"),
        ({"resource_id": {"id": 1}}, "resource_id must be"),
        ({"resource_id": -5}, "resource_id must be"),
        ({"resource_id": 1.5}, "resource_id must be"),
        ({"resource_id": True}, "resource_id must be"),
        ({"resource_id": "12; DROP TABLE dp_webhook_inbox"}, "resource_id must be"),
        ({"resource_id": ...}, "no resource_id"),
        ({"project_id": "two"}, "project_id must be"),
        ({"timestamp": 1712345678}, "timestamp must be"),
        ({"timestamp": "yesterday"}, "not an ISO-8601"),
        ({"timestamp": ...}, "no timestamp"),
        ({"event_type": 7}, "no event_type"),
        ({"event_type": "update" * 10}, "event_type is longer"),
        ({"resource_name": ["Direct Costs"]}, "resource_name must be"),
        ({"resource_name": "D" * 500}, "resource_name is longer"),
        ({"id": 1.5, "ulid": None}, "id must be"),
        ({"id": None, "ulid": None}, "no id or ulid"),
        ({"ulid": "U" * 65}, "longer than"),
        ({"related_resources": "Direct Costs"}, "related_resources must be"),
        ({"related_resources": [{"id": "x", "name": 3}]}, "related_resources[0]"),
    ],
)
def test_wrong_types_are_400(receiver: Receiver, changes: dict, words: str) -> None:
    rejected(receiver, json.dumps(event(**changes)), 400, words)


@pytest.mark.parametrize(
    "number",
    [10**20, 2**63, 10**400],
    ids=["beyond-bigint", "2**63", "400-digits"],
)
def test_huge_resource_id_is_400_not_a_database_error(receiver: Receiver, number: int) -> None:
    """A number the inbox column cannot hold must be refused, not answered 503."""
    rejected(receiver, json.dumps(event(resource_id=number)), 400, "resource_id")


def test_huge_number_literal_is_400(receiver: Receiver) -> None:
    """More digits than Python converts by default (4300) must not crash the parser."""
    body = json.dumps(event())[:-1] + ', "company_id": ' + "9" * 5000 + "}"
    rejected(receiver, body, 400, "")


def test_huge_float_and_nan_are_refused(receiver: Receiver) -> None:
    for literal in ("1e999", "NaN", "-Infinity"):
        body = json.dumps(event())[:-1] + f', "resource_id": {literal}' + "}"
        rejected(receiver, body, 400, "resource_id")


# ---- unicode and null bytes --------------------------------------------------------------------
def test_unknown_unicode_resource_is_ignored_and_not_stored(receiver: Receiver) -> None:
    before = receiver.store.inbox_count()
    resp = receiver.post(json.dumps(event(resource_name="Dîrect Cøsts ✓")))
    assert resp.status_code == 202 and resp.json()["status"] == "ignored"
    assert receiver.store.inbox_count() == before


def test_null_byte_in_resource_name_is_ignored_not_stored(receiver: Receiver) -> None:
    before = receiver.store.inbox_count()
    resp = receiver.post(json.dumps(event(resource_name="Direct\u0000Costs")))
    assert resp.status_code == 202
    assert receiver.store.inbox_count() == before


NUL_BUG = (
    "webhooks/events.py _key (~line 170) accepts a NUL character in id/ulid; PostgreSQL text"
    " cannot hold it, so on the production store the insert fails and the receiver answers 503"
)


def test_null_byte_in_event_key_is_400(receiver: Receiver) -> None:
    rejected(receiver, json.dumps(event(ulid="01H\u0000EVIL")), 400, "ulid")


@pytest.mark.postgres
def test_null_byte_in_event_key_on_postgres_is_4xx_not_503(pg_url: str) -> None:
    store = StateStore(pg_url)
    server = serve_in_thread(create_app(store, SECRET))
    try:
        rejected(Receiver(server.url, store), json.dumps(event(ulid="01H\u0000EVIL")), 400, "")
    finally:
        server.stop()
        store.dispose()


def test_unicode_everywhere_in_a_valid_event_is_stored_once(receiver: Receiver) -> None:
    body = event(
        ulid="01HÜNÏCÖDË✓ΩЖ漢字",
        event_type="UPDATE",
        metadata={"note": "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \u202e override", "user": "Müller"},
    )
    before = receiver.store.inbox_count()
    first = receiver.post(json.dumps(body, ensure_ascii=False))
    second = receiver.post(json.dumps(body))  # same event, escaped differently
    assert first.status_code == 201 and second.status_code == 200
    assert receiver.store.inbox_count() == before + 1
    stored = [e for e in receiver.store.pending_events() if e["event_key"] == body["ulid"]]
    assert len(stored) == 1 and json.loads(stored[0]["payload"])["metadata"]["user"] == "Müller"
