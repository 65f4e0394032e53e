"""`BearerTokenAuth`: renew ahead of expiry; a 401 renews once and re-sends the request."""

from __future__ import annotations

import threading
import time

import requests
from pydantic import SecretStr

from deltek_procore.http.auth import BearerTokenAuth, Token
from deltek_procore_tests.http.scripted import Reply, scripted_server


class Counting(BearerTokenAuth):
    def __init__(self, clock) -> None:
        super().__init__(clock)
        self.issued = 0

    def obtain(self, stale):
        self.issued += 1
        return Token(SecretStr(f"tok-{self.issued}"), obtained_at=self._clock(), expires_in=100)

    def renew_at(self, token: Token) -> float:
        return token.expires_at - 10


def test_a_401_renews_the_token_once_and_sends_the_same_request_again():
    now = [0.0]
    auth = Counting(lambda: now[0])
    with scripted_server() as server:
        server.script("POST", "/w", Reply(401, {"errors": "expired"}), Reply(201, {"id": 1}))
        resp = requests.post(f"{server.url}/w", json={"a": 1}, auth=auth)
        sent = server.calls("POST", "/w")
    assert resp.status_code == 201 and resp.json() == {"id": 1}
    assert [c.headers["Authorization"] for c in sent] == ["Bearer tok-1", "Bearer tok-2"]
    assert sent[0].body == sent[1].body == b'{"a": 1}'
    assert auth.reauths == 1 and resp.history[0].status_code == 401


def test_a_second_401_is_returned_not_looped():
    auth = Counting(lambda: 0.0)
    with scripted_server() as server:
        server.script("GET", "/x", default=Reply(401))
        resp = requests.get(f"{server.url}/x", auth=auth)
        assert resp.status_code == 401 and len(server.calls("GET", "/x")) == 2
    assert auth.issued == 2


def test_the_token_is_renewed_ahead_of_expiry_and_never_shown():
    now = [0.0]
    auth = Counting(lambda: now[0])
    assert auth.current().access.get_secret_value() == "tok-1"
    now[0] = 89.0
    assert auth.current().access.get_secret_value() == "tok-1"
    now[0] = 90.0  # 10 s before expiry
    assert auth.current().access.get_secret_value() == "tok-2"
    assert "tok-" not in repr(auth) and "tok-" not in repr(auth.token)


def test_threads_asking_at_once_for_a_due_token_share_one_renewal():
    now = [0.0]

    class Slow(Counting):
        def obtain(self, stale):
            time.sleep(0.05)  # a token round trip: the other threads arrive meanwhile
            return super().obtain(stale)

    auth = Slow(lambda: now[0])
    assert auth.current().access.get_secret_value() == "tok-1"
    now[0] = 95.0  # due
    gate = threading.Barrier(8)
    seen: list[str] = []

    def ask() -> None:
        gate.wait()
        seen.append(auth.current().access.get_secret_value())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert auth.issued == 2 and seen == ["tok-2"] * 8
