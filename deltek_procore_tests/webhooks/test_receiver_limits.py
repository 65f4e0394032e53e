"""The receiver under slow and stalled clients, run as in production (`serve` in its own
process, so every line it logs, uvicorn's and asyncio's included, is captured).

Sixty sockets stall at each stage of a request (nothing sent, half the headers, half the
body); each is closed within a few seconds of its timeout with one log line, a real
delivery meanwhile still gets its 2xx at once, and nothing logs a traceback.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from deltek_procore.sandbox.server import free_port
from deltek_procore.webhooks.receiver import WEBHOOK_PATH, create_app, server_config
from deltek_procore_tests.webhooks.test_events import v2_payload

SECRET = "Bearer slow-client-test-0123456789abcdef"
TIMEOUT = 1.0  # header and body timeout in these tests (production default: 5 s)
SLACK = 2.5  # "within a few seconds of the timeout"

SERVER = textwrap.dedent(
    """\
    import logging, sys, threading
    from deltek_procore.webhooks.receiver import serve

    class Inbox:
        def __init__(self):
            self.keys, self.lock = set(), threading.Lock()

        def add(self, event, raw):
            with self.lock:
                new = event.key not in self.keys
                self.keys.add(event.key)
                return new

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    options = {k: float(v) if "." in v else int(v) for k, v in
               (arg.split("=") for arg in sys.argv[3:])}
    serve(Inbox(), sys.argv[1], port=int(sys.argv[2]), **options)
    """
)


@dataclass
class Receiver:
    url: str
    host: str
    port: int
    process: subprocess.Popen[str]
    log: str = field(default="")

    def stop(self) -> str:
        """Stop it (SIGTERM: uvicorn's graceful shutdown) and return everything it logged."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log = self.process.stderr.read() if self.process.stderr else ""
        return self.log


def start_receiver(tmp_path: Path, **options: float | int) -> Receiver:
    port = free_port()
    script = tmp_path / "serve_receiver.py"
    script.write_text(SERVER, encoding="utf-8")
    args = [f"{k}={v}" for k, v in options.items()]
    process = subprocess.Popen(
        [sys.executable, str(script), SECRET, str(port), *args],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    receiver = Receiver(f"http://127.0.0.1:{port}", "127.0.0.1", port, process)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"receiver exited early: {receiver.stop()}")
        try:
            if requests.get(receiver.url + "/healthz", timeout=1).status_code == 200:
                return receiver
        except requests.ConnectionError:
            time.sleep(0.05)
    receiver.stop()
    pytest.fail("receiver did not start within 20 s")


@pytest.fixture
def receiver(tmp_path) -> Iterator[Receiver]:
    running = start_receiver(tmp_path, header_timeout=TIMEOUT, body_timeout=TIMEOUT)
    try:
        yield running
    finally:
        running.stop()


def _headers(body_length: int, *, auth: str = SECRET) -> bytes:
    return (
        f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {body_length}\r\n\r\n"
    ).encode()


def _stall(sock: socket.socket, opened: float) -> tuple[float, bytes]:
    """Wait until the server closes `sock`: (seconds since it was opened, bytes received)."""
    sock.settimeout(TIMEOUT + SLACK + 5)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except TimeoutError:
        return float("inf"), received
    except ConnectionResetError:
        pass
    return time.monotonic() - opened, received


def _response(sock: socket.socket) -> bytes:
    """One whole response (headers and Content-Length body) read from `sock`."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(rest) < length:
        rest += sock.recv(4096)
    return head + b"\r\n\r\n" + rest


def event(n: int) -> dict:
    """A distinct delivery (events are keyed by their ulid)."""
    return v2_payload(n, ulid=f"01SLOWCLIENT{n:014d}")


def _post(url: str, payload: dict) -> tuple[int, float]:
    began = time.monotonic()
    response = requests.post(
        url + WEBHOOK_PATH,
        data=json.dumps(payload),
        headers={"Authorization": SECRET, "Content-Type": "application/json"},
        timeout=5,
    )
    return response.status_code, time.monotonic() - began


def test_sixty_stalled_clients_are_dropped_and_a_delivery_still_succeeds(receiver):
    body = json.dumps(event(77)).encode()
    partial_headers = _headers(len(body))[:40]  # the request line and part of a header
    stalls: list[tuple[str, socket.socket, float]] = []
    for n in range(60):
        sock = socket.create_connection((receiver.host, receiver.port), timeout=5)
        opened = time.monotonic()
        kind = ("silent", "headers", "body")[n % 3]
        if kind == "headers":
            sock.sendall(partial_headers)
        elif kind == "body":
            sock.sendall(_headers(len(body)) + body[:10])
        stalls.append((kind, sock, opened))

    # meanwhile a real delivery: stored, then recognised as a duplicate, each well within 5 s
    assert _post(receiver.url, event(77))[0] == 201
    status, took = _post(receiver.url, event(77))
    assert status == 200 and took < 1.0

    with ThreadPoolExecutor(max_workers=len(stalls)) as pool:
        results = list(pool.map(lambda s: (s[0], *_stall(s[1], s[2])), stalls))
    for _kind, sock, _opened in stalls:
        sock.close()

    for kind, closed_after, received in results:
        assert TIMEOUT * 0.9 <= closed_after <= TIMEOUT + SLACK, (kind, closed_after)
        if kind == "body":  # the app answered before closing: 408, connection not reused
            assert received.startswith(b"HTTP/1.1 408"), received[:80]
            assert b"connection: close" in received.lower()
        else:
            assert received == b"", received[:80]

    # after the storm the receiver is as good as new
    assert _post(receiver.url, event(78))[0] == 201

    log = receiver.stop()
    assert "Traceback" not in log, log
    assert log.count("did not send request headers within 1.0 s") == 40, log
    assert log.count("did not send the body within 1.0 s") == 20, log
    assert "ERROR" not in log, log
    assert SECRET.split()[-1] not in log


def test_trickling_header_bytes_does_not_extend_the_deadline(receiver):
    request = _headers(10)
    with socket.create_connection((receiver.host, receiver.port), timeout=5) as sock:
        opened = time.monotonic()
        closed_after = None
        for byte in request[:-4]:  # one byte every 0.1 s, never finishing the headers
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - opened
                break
            sock.settimeout(0.1)
            try:
                if sock.recv(1) == b"":
                    closed_after = time.monotonic() - opened
                    break
            except TimeoutError:
                pass
    assert closed_after is not None and closed_after <= TIMEOUT + SLACK, closed_after
    assert "Traceback" not in receiver.stop()


def test_kept_alive_connection_gets_a_fresh_header_deadline(receiver):
    """After one delivery on a keep-alive connection, half a second request stalls: dropped."""
    body = json.dumps(event(79)).encode()
    with socket.create_connection((receiver.host, receiver.port), timeout=5) as sock:
        sock.sendall(_headers(len(body)) + body)
        first = _response(sock)
        assert first.startswith(b"HTTP/1.1 201"), first[:80]
        assert b"connection: close" not in first.lower()  # kept alive
        sock.sendall(_headers(len(body))[:30])
        closed_after, received = _stall(sock, time.monotonic())
    assert closed_after <= TIMEOUT + SLACK and received == b""
    log = receiver.stop()
    assert log.count("did not send request headers") == 1 and "Traceback" not in log


def test_client_that_disconnects_mid_body_is_one_line(receiver):
    with socket.create_connection((receiver.host, receiver.port), timeout=5) as sock:
        sock.sendall(_headers(500) + b'{"id": 1')
        time.sleep(0.2)
    time.sleep(0.5)
    assert _post(receiver.url, event(80))[0] == 201
    log = receiver.stop()
    assert log.count("disconnected during the body") == 1, log
    assert "Traceback" not in log and "ERROR" not in log


def test_wrong_authorization_answers_401_and_closes_without_reading_the_body(receiver):
    with socket.create_connection((receiver.host, receiver.port), timeout=5) as sock:
        sock.sendall(_headers(10_000, auth="Bearer wrong") + b"{")
        closed_after, received = _stall(sock, time.monotonic())
    assert received.startswith(b"HTTP/1.1 401") and b"connection: close" in received.lower()
    assert closed_after < TIMEOUT  # at once, not at the body deadline
    assert "Traceback" not in receiver.stop()


def test_connections_beyond_the_cap_get_503_in_one_line(tmp_path):
    receiver = start_receiver(tmp_path, header_timeout=5.0, limit_concurrency=5)
    try:
        held = [socket.create_connection((receiver.host, receiver.port)) for _ in range(5)]
        time.sleep(0.2)
        status, _ = _post(receiver.url, event(81))
        for sock in held:
            sock.close()
        assert status == 503
        time.sleep(0.2)
        assert _post(receiver.url, event(81))[0] == 201  # free again once they left
    finally:
        log = receiver.stop()
    assert log.count("Exceeded concurrency limit.") == 1, log
    assert "Traceback" not in log


def test_server_config_carries_the_limits():
    config = server_config(
        create_app(object(), SECRET),  # type: ignore[arg-type]
        header_timeout=3.0,
        keep_alive=4,
        limit_concurrency=50,
    )
    assert config.timeout_keep_alive == 4 and config.limit_concurrency == 50
    assert config.h11_max_incomplete_event_size == 16 * 1024
    assert config.http.__name__ == "GuardedH11Protocol"
    with pytest.raises(ValueError, match="header_timeout"):
        server_config(create_app(object(), SECRET), header_timeout=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="body_timeout"):
        create_app(object(), SECRET, body_timeout=0)  # type: ignore[arg-type]
