"""Retries inside the HTTP layer: urllib3's `Retry`, mounted on the requests session.

urllib3 already knows which failures are safe to repeat: a connection that was never
made (nothing reached the server) for any method, a read error or a listed status only
for the methods in `allowed_methods` (reads). What it leaves to us, and `BackoffRetry`
adds, is how long to wait: the server's Retry-After (or a rate-limit reset the client
knows), else bounded exponential back-off with jitter, never less than what the
client's own pacing asks; with an injectable sleep so tests and simulations wait no
real time. `RetryingAdapter` picks the policy per request, because one URL may take a
read sent as POST (Deltek's `dvp-postAsGet`) or a token grant, which may be repeated.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from requests import ConnectTimeout, PreparedRequest
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError
from urllib3.util.retry import Retry

from .text import retry_after_seconds

READS = frozenset({"GET", "HEAD", "OPTIONS"})
RETRYABLE_5XX = frozenset({500, 502, 503, 504})


@dataclass
class Backoff:
    """Exponential back-off with "equal jitter": attempt n waits between half and all of
    min(cap, base * 2**(n-1)), so retries spread out but never hammer right away."""

    base_s: float = 0.5
    cap_s: float = 30.0
    max_server_wait_s: float = 3600.0  # the longest Retry-After / reset honoured
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        ceiling = min(self.cap_s, self.base_s * 2 ** max(0, attempt - 1))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)


class RetryHooks:
    """What a client plugs into every retry: how to sleep, what the server asked for,
    its own pacing, and its counters. The defaults do plain back-off."""

    def __init__(
        self,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.backoff = backoff or Backoff()
        self.sleep = sleep
        self.clock = clock

    def server_wait(self, status: int | None, headers: Mapping[str, str]) -> float | None:
        """Seconds the server asked to wait (Retry-After), or None."""
        return retry_after_seconds(headers.get("Retry-After"), self.clock())

    def pace(self) -> float:
        """Extra seconds the client's own pacing wants before the next request."""
        return 0.0

    def retrying(self, cause: str, status: int | None, headers: Mapping[str, str]) -> None:
        """Called once per retry, before the wait (counters, pacing state)."""

    def seen(self, status: int | None, headers: Mapping[str, str]) -> None:
        """Called for every answer urllib3 considered retrying, even the last one."""

    def wait_for(self, attempt: int, status: int | None, headers: Mapping[str, str]) -> float:
        wait = self.server_wait(status, headers) if status is not None else None
        if wait is None:
            wait = self.backoff.delay(attempt)
        wait = min(wait, self.backoff.max_server_wait_s)
        return max(wait, self.pace())


class BackoffRetry(Retry):
    """urllib3 `Retry` whose waits come from `RetryHooks`.

    `writes_retry_on`: statuses that prove the server did not process the request (e.g.
    Procore's 429), retried for every method; any other status is retried for reads only.
    """

    hooks: RetryHooks
    writes_retry_on: frozenset[int]

    def __init__(
        self,
        *args: Any,
        hooks: RetryHooks | None = None,
        writes_retry_on: Collection[int] = (),
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("raise_on_status", False)  # the client turns the answer into an error
        kwargs.setdefault("respect_retry_after_header", True)
        super().__init__(*args, **kwargs)
        self.hooks = hooks or RetryHooks()
        self.writes_retry_on = frozenset(writes_retry_on)

    def new(self, **kw: Any) -> BackoffRetry:
        retry = super().new(**kw)
        retry.hooks = self.hooks
        retry.writes_retry_on = self.writes_retry_on
        return retry

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if status_code in self.writes_retry_on and status_code in self.status_forcelist:
            return True
        return super().is_retry(method, status_code, has_retry_after)

    def increment(self, method=None, url=None, response=None, error=None, _pool=None,
                  _stacktrace=None):  # fmt: skip
        if response is not None:
            self.hooks.seen(response.status, response.headers)
        return super().increment(method, url, response, error, _pool, _stacktrace)

    def sleep(self, response: Any = None) -> None:
        status = getattr(response, "status", None) if response is not None else None
        headers: Mapping[str, str] = response.headers if response is not None else {}
        last = self.history[-1] if self.history else None
        cause = (
            f"HTTP {status}"
            if status is not None
            else type(last.error).__name__
            if last is not None and last.error
            else "error"
        )
        self.hooks.retrying(cause, status, headers)
        wait = self.hooks.wait_for(len(self.history), status, headers)
        if wait > 0:
            self.hooks.sleep(wait)


def read_retry(
    attempts: int,
    hooks: RetryHooks,
    *,
    statuses: Collection[int] = RETRYABLE_5XX | {429},
    writes_retry_on: Collection[int] = (),
    methods: Collection[str] = READS,
) -> BackoffRetry:
    """Reads: `attempts` retries each for connection errors, read errors and statuses.
    Other methods: only connections never made, and `writes_retry_on`."""
    return BackoffRetry(
        total=None,
        connect=attempts,
        read=attempts,
        status=attempts,
        other=0,
        redirect=0,
        allowed_methods=frozenset(m.upper() for m in methods),
        status_forcelist=frozenset(statuses),
        hooks=hooks,
        writes_retry_on=writes_retry_on,
    )


def never_sent(exc: BaseException) -> bool:
    """True when the connection was never made, so no byte of the request left: a write
    that failed this way did not happen (requests' ConnectTimeout, or urllib3's
    NewConnectionError anywhere in the chain of causes)."""
    if isinstance(exc, ConnectTimeout):
        return True
    seen: set[int] = set()
    stack: list[object] = [exc]
    while stack:
        item = stack.pop()
        if id(item) in seen or item is None:
            continue
        seen.add(id(item))
        if isinstance(item, NewConnectionError):
            return True
        if isinstance(item, BaseException):
            stack.extend(item.args)
            stack.extend([item.__cause__, item.__context__, getattr(item, "reason", None)])
    return False


class RetryingAdapter(HTTPAdapter):
    """An HTTPAdapter whose urllib3 `Retry` is chosen per request by `choose`."""

    def __init__(self, choose: Callable[[PreparedRequest], Retry], **kwargs: Any) -> None:
        self._choose = choose
        self._local = threading.local()
        super().__init__(**kwargs)

    @property  # type: ignore[override]
    def max_retries(self) -> Retry:
        chosen = getattr(self._local, "retry", None)
        return chosen if chosen is not None else self._default_retry

    @max_retries.setter
    def max_retries(self, value: Retry) -> None:
        self._default_retry = value

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        self._local.retry = self._choose(request)
        try:
            return super().send(request, *args, **kwargs)
        finally:
            self._local.retry = None
