"""urllib3's Retry as mounted by `RetryingAdapter`, over real sockets: what is sent again,
what never is, and how long each wait is."""

from __future__ import annotations

import random

import pytest
import requests

from deltek_procore.http.retry import (
    READS,
    Backoff,
    RetryHooks,
    RetryingAdapter,
    never_sent,
    read_retry,
)
from deltek_procore_tests.http.scripted import Drop, Reply, Stall, closed_port, scripted_server


class Recorder(RetryHooks):
    def __init__(self) -> None:
        super().__init__(Backoff(0.5, 4.0, rng=random.Random(1)), self._sleep, lambda: 1e9)
        self.sleeps: list[float] = []
        self.causes: list[str] = []
        self.paced = 0.0

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def retrying(self, cause, status, headers) -> None:
        self.causes.append(cause)

    def pace(self) -> float:
        return self.paced


def session(hooks: RetryHooks, attempts: int = 3, **kwargs) -> requests.Session:
    reads = read_retry(attempts, hooks, **kwargs)
    posted_reads = read_retry(attempts, hooks, methods=READS | {"POST"})
    s = requests.Session()
    s.mount(
        "http://",
        RetryingAdapter(lambda r: posted_reads if r.headers.get("X-Read") else reads),
    )
    return s


@pytest.fixture
def server():
    with scripted_server() as srv:
        yield srv


def test_get_is_retried_on_5xx_drops_and_stalls_with_growing_waits(server):
    server.script("GET", "/x", Reply(503), Drop(), Stall(0.5), Reply(body=[1]))
    hooks = Recorder()
    resp = session(hooks).get(f"{server.url}/x", timeout=(2, 0.2))
    assert resp.json() == [1] and len(server.calls("GET", "/x")) == 4
    assert hooks.causes[0] == "HTTP 503" and len(hooks.causes) == 3
    for attempt, slept in enumerate(hooks.sleeps, start=1):  # equal jitter, capped
        ceiling = min(4.0, 0.5 * 2 ** (attempt - 1))
        assert ceiling / 2 <= slept <= ceiling


def test_the_bound_returns_the_last_answer(server):
    server.script("GET", "/x", default=Reply(500, "boom"))
    hooks = Recorder()
    resp = session(hooks, attempts=2).get(f"{server.url}/x")
    assert resp.status_code == 500 and len(server.calls("GET", "/x")) == 3


@pytest.mark.parametrize("failure", [Reply(500), Reply(429, headers={"Retry-After": "1"}), Drop()])
def test_a_sent_write_is_never_sent_again(server, failure):
    server.script("POST", "/w", failure, Reply(201))
    hooks = Recorder()
    try:
        resp = session(hooks).post(f"{server.url}/w", json={"a": 1}, timeout=(2, 0.5))
    except requests.ConnectionError as exc:
        assert not never_sent(exc)  # it was sent: the outcome is unknown
    else:
        assert resp.status_code == failure.status
    assert len(server.calls("POST", "/w")) == 1 and hooks.sleeps == []


def test_a_status_that_proves_nothing_was_processed_is_retried_for_writes(server):
    server.script("POST", "/w", Reply(429, headers={"Retry-After": "3"}), Reply(201))
    hooks = Recorder()
    resp = session(hooks, writes_retry_on={429}).post(f"{server.url}/w", json={})
    assert resp.status_code == 201 and hooks.sleeps == [3.0]


def test_a_read_sent_as_post_gets_the_read_policy(server):
    server.script("POST", "/r", Reply(502), Reply(body=[]))
    hooks = Recorder()
    resp = session(hooks).post(f"{server.url}/r", data="q=1", headers={"X-Read": "1"})
    assert resp.status_code == 200 and len(server.calls("POST", "/r")) == 2


def test_a_connection_never_made_is_retried_for_any_method_and_known_as_never_sent():
    hooks = Recorder()
    with pytest.raises(requests.ConnectionError) as info:
        session(hooks, attempts=2).post(closed_port() + "/w", json={})
    assert never_sent(info.value) and len(hooks.sleeps) == 2


def test_the_wait_is_what_the_server_asked_but_never_less_than_pacing(server):
    server.script("GET", "/x", Reply(503, headers={"Retry-After": "2"}), Reply(body=[]))
    hooks = Recorder()
    hooks.paced = 5.0
    session(hooks).get(f"{server.url}/x")
    assert hooks.sleeps == [5.0]
    hooks.backoff.max_server_wait_s = 1.0  # and a server's wish is capped
    hooks.paced = 0.0
    server.script("GET", "/x", Reply(503, headers={"Retry-After": "999"}), Reply(body=[]))
    session(hooks).get(f"{server.url}/x")
    assert hooks.sleeps[-1] == 1.0
