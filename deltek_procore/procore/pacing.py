"""Client-side pacing from Procore's X-Rate-Limit-* headers.

Procore sends `X-Rate-Limit-Limit`, `-Remaining` and `-Reset` (Unix epoch seconds) on
every response, describing whichever limit (10 s spike or hourly) will bite first.

Algorithm (applied before every request, using the headers of the latest response):

1. No headers seen, or the window already reset -> go.
2. `remaining <= min_remaining` -> sleep until `reset + margin` (the margin covers
   Reset being rounded to whole seconds). Going on would only earn a 429.
3. `remaining` below `low_water` (20 %) of the limit -> spread the rest evenly:
   sleep `(reset - now) / (remaining - min_remaining)`, skipped when under 50 ms.
   A long sync therefore slows down smoothly instead of hitting the wall, and leaves
   headroom for other runs sharing the company's budget.
4. Otherwise -> go at full speed; short syncs are not slowed at all.

A 429 waits for `Retry-After` when present, else until `Reset` (+ margin); an answer
with Retry-After resets the pacer (the server said when to come back) and holds every
request back until then.

Concurrent requests (the client's detail reads overlap) share one pacer, so it is safe for
threads and counts what is in flight: `reserve` before sending (the request is counted),
`release` with its answer. The budget a request may spend is `remaining - in flight`, so
requests sent together never spend the same last calls; spreading schedules one slot
after another instead of every thread sleeping the same interval. Answers arriving out of
order cannot raise the budget: within one window (same limit, same reset) the lowest
`remaining` seen wins, and an answer from a window older than the one known is ignored.
Windows are kept per limit (Procore's headers switch between the spike and the hourly
limit, whichever bites first). With one request at a time all this is today's algorithm.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from deltek_procore.http.text import retry_after_seconds

__all__ = ["RateLimitPacer", "retry_after_seconds"]

# Values below this are a delta in seconds, not an epoch timestamp.
_EPOCH_FLOOR = 1_000_000_000


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None


@dataclass
class _Window:
    limit: int | None
    remaining: int
    reset_at: float


@dataclass
class RateLimitPacer:
    min_remaining: int = 2
    low_water: float = 0.2
    margin_s: float = 1.0
    min_sleep_s: float = 0.05
    in_flight: int = 0  # requests reserved and not yet released
    blocked_until: float | None = None  # a Retry-After holds everyone back until then
    _windows: dict[int | None, _Window] = field(default_factory=dict, repr=False)
    _last_slot: float = field(default=0.0, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    # the latest window observed (what a single-threaded reader of the headers would keep)
    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None

    def observe(self, headers: Mapping[str, str], now: float) -> None:
        """Remember the latest budget; missing headers leave the old state alone.

        An answer with Retry-After says itself when to come back: the retry waits that
        long, and the budget it reports (often "0 left until the hourly reset") is not
        taken as a reason to wait longer than the server asked."""
        after = retry_after_seconds(headers.get("Retry-After"), now)
        with self._lock:
            if after is not None:
                self._windows.clear()
                self.limit = self.remaining = self.reset_at = None
                until = now + after
                self.blocked_until = max(self.blocked_until or until, until)
                return
            limit = _number(headers.get("X-Rate-Limit-Limit"))
            remaining = _number(headers.get("X-Rate-Limit-Remaining"))
            reset = _number(headers.get("X-Rate-Limit-Reset"))
            if remaining is None or reset is None:
                return
            seen = _Window(
                int(limit) if limit is not None else None,
                int(remaining),
                reset if reset >= _EPOCH_FLOOR else now + reset,
            )
            known = self._windows.get(seen.limit)
            if known is not None and known.reset_at > now:
                if seen.reset_at < known.reset_at:
                    return  # an answer from an older window, overtaken on the way
                if seen.reset_at == known.reset_at:
                    seen.remaining = min(seen.remaining, known.remaining)
            self._windows[seen.limit] = seen
            self.limit, self.remaining, self.reset_at = seen.limit, seen.remaining, seen.reset_at

    def delay(self, now: float, *, mine: int = 0) -> float:
        """Seconds to wait before the next request (0 = go now); `mine` of the requests in
        flight are the caller's own (a retry waits while its request is counted)."""
        with self._lock:
            wall, spread = self._waits(now, self.in_flight - mine)
            return max(wall, spread)

    def reserve(self, now: float) -> float:
        """Count one request in flight and return how long it must wait before it is sent
        (spread requests get consecutive slots). Pair with `release`."""
        with self._lock:
            wall, spread = self._waits(now, self.in_flight)
            if spread > 0:
                slot = max(now, self._last_slot) + spread
                self._last_slot = slot
                spread = slot - now
            self.in_flight += 1
            return max(wall, spread)

    def release(self, headers: Mapping[str, str] | None, now: float) -> None:
        """The reserved request answered (`headers`) or failed (None)."""
        with self._lock:
            if headers is not None:
                self.observe(headers, now)
            self.in_flight = max(0, self.in_flight - 1)

    def _waits(self, now: float, in_flight: int) -> tuple[float, float]:
        """(wait for a window to reset, spreading interval) given `in_flight` others."""
        wall = 0.0
        spread = 0.0
        if self.blocked_until is not None:
            if self.blocked_until > now:
                wall = self.blocked_until - now
            else:
                self.blocked_until = None
        for key, window in list(self._windows.items()):
            left = window.reset_at - now
            if left <= 0:
                del self._windows[key]  # that window has reset
                continue
            budget = window.remaining - max(0, in_flight)
            if budget <= self.min_remaining:
                wall = max(wall, left + self.margin_s)
            elif window.limit and budget < window.limit * self.low_water:
                interval = left / (budget - self.min_remaining)
                if interval >= self.min_sleep_s:
                    spread = max(spread, interval)
        return wall, spread

    def throttled_wait(self, headers: Mapping[str, str], now: float) -> float | None:
        """How long a 429 asks us to wait; None when the response does not say."""
        after = retry_after_seconds(headers.get("Retry-After"), now)
        if after is not None:
            return after
        self.observe(headers, now)
        limit = _number(headers.get("X-Rate-Limit-Limit"))
        with self._lock:
            window = self._windows.get(int(limit) if limit is not None else None)
            reset_at = window.reset_at if window is not None else self.reset_at
        if reset_at is not None and reset_at > now:
            return reset_at - now + self.margin_s
        return None
