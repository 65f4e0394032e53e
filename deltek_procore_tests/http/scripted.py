"""A real HTTP server on loopback that answers from a script: retries are tested over
real sockets, through urllib3's own retry loop (a mock library cannot drop a connection
or stall a read).

Each request takes the next step of the script for its method and path (else the
default): `Reply` answers, `Drop` closes the connection without a response (the client
sees a reset after sending), `Stall` waits before answering (a read timeout).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON; str/bytes as is
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Drop:
    """Read the request, then close the socket without a word."""


@dataclass
class Stall:
    seconds: float
    then: Reply = field(default_factory=Reply)


@dataclass
class Seen:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode()))


class ScriptedServer:
    def __init__(self) -> None:
        self.scripts: dict[tuple[str, str], deque] = defaultdict(deque)
        self.defaults: dict[tuple[str, str], Any] = {}
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                seen = Seen(
                    self.command,
                    parts.path,
                    parse_qsl(parts.query, keep_blank_values=True),
                    dict(self.headers),
                    body,
                )
                step = server._next(seen)
                if isinstance(step, Drop):
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if isinstance(step, Stall):
                    time.sleep(step.seconds)
                    step = step.then
                self._reply(step)

            def _reply(self, reply: Reply) -> None:
                body = reply.body
                headers = dict(reply.headers)
                if isinstance(body, (dict, list)):
                    data = json.dumps(body).encode()
                    headers.setdefault("Content-Type", "application/json")
                elif isinstance(body, str):
                    data = body.encode()
                else:
                    data = body or b""
                try:
                    self.send_response(reply.status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (a stall longer than its timeout)

            do_GET = do_POST = do_PUT = do_DELETE = _handle  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def script(self, method: str, path: str, *steps: Any, default: Any = None) -> None:
        with self._lock:
            self.scripts[(method.upper(), path)].extend(steps)
            if default is not None:
                self.defaults[(method.upper(), path)] = default

    def calls(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        return [
            s
            for s in self.seen
            if (method is None or s.method == method) and (path is None or s.path == path)
        ]

    def _next(self, seen: Seen) -> Any:
        key = (seen.method, seen.path)
        with self._lock:
            self.seen.append(seen)
            queue = self.scripts.get(key)
            if queue:
                return queue.popleft()
            return self.defaults.get(key, Reply(404, {"errors": f"no script for {key}"}))

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def scripted_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    try:
        yield server
    finally:
        server.stop()


def closed_port() -> str:
    """A loopback URL nothing listens on: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
