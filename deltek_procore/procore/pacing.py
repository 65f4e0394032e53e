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
with Retry-After resets the pacer (the server said when to come back).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

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
class RateLimitPacer:
    min_remaining: int = 2
    low_water: float = 0.2
    margin_s: float = 1.0
    min_sleep_s: float = 0.05
    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None

    def observe(self, headers: Mapping[str, str], now: float) -> None:
        """Remember the latest budget; missing headers leave the old state alone.

        An answer with Retry-After says itself when to come back: the retry waits that
        long, and the budget it reports (often "0 left until the hourly reset") is not
        taken as a reason to wait longer than the server asked."""
        if retry_after_seconds(headers.get("Retry-After"), now) is not None:
            self.limit = self.remaining = self.reset_at = None
            return
        limit = _number(headers.get("X-Rate-Limit-Limit"))
        remaining = _number(headers.get("X-Rate-Limit-Remaining"))
        reset = _number(headers.get("X-Rate-Limit-Reset"))
        if remaining is None or reset is None:
            return
        self.limit = int(limit) if limit is not None else None
        self.remaining = int(remaining)
        self.reset_at = reset if reset >= _EPOCH_FLOOR else now + reset

    def delay(self, now: float) -> float:
        """Seconds to wait before the next request (0 = go now)."""
        if self.remaining is None or self.reset_at is None:
            return 0.0
        left = self.reset_at - now
        if left <= 0:
            return 0.0
        if self.remaining <= self.min_remaining:
            return left + self.margin_s
        if self.limit and self.remaining < self.limit * self.low_water:
            spread = left / (self.remaining - self.min_remaining)
            return spread if spread >= self.min_sleep_s else 0.0
        return 0.0

    def throttled_wait(self, headers: Mapping[str, str], now: float) -> float | None:
        """How long a 429 asks us to wait; None when the response does not say."""
        after = retry_after_seconds(headers.get("Retry-After"), now)
        if after is not None:
            return after
        self.observe(headers, now)
        if self.reset_at is not None and self.reset_at > now:
            return self.reset_at - now + self.margin_s
        return None
