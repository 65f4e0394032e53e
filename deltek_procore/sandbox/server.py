"""Run an ASGI app on a loopback port in a background thread.

The simulators, the webhook receiver and the tests all need "start this app,
give me its URL, stop it cleanly"; this is the one place that does it.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

import uvicorn


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass
class RunningServer:
    """An app being served; `url` has no trailing slash."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread = field(repr=False)

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_in_thread(app, host: str = "127.0.0.1", port: int | None = None) -> RunningServer:
    """Start `app` with uvicorn in a daemon thread and wait until it accepts connections."""
    port = port or free_port(host)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, name=f"asgi-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"server on {host}:{port} failed to start")
        if time.monotonic() > deadline:
            raise RuntimeError(f"server on {host}:{port} did not start within 15 s")
        time.sleep(0.01)
    return RunningServer(url=f"http://{host}:{port}", server=server, thread=thread)
