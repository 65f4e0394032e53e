"""Fault injection shared by both simulators, switchable while they run.

A `Faults` object is plain mutable state; the simulators consult it on every
request (`before_request`) and on writes (`lose_response`). Tests flip it through
the Python API, operators through `POST /__admin/faults` on either simulator.
Every probability is drawn from a seeded RNG so a chaos run can be repeated.
"""

from __future__ import annotations

import asyncio
import random
import threading
from dataclasses import asdict, dataclass, field, fields


@dataclass
class FaultSettings:
    latency_ms: float = 0.0  # added to every API request
    latency_jitter_ms: float = 0.0
    rate_429: float = 0.0  # probability of a 429 burst starting on a request
    burst_429: int = 1  # how many consecutive requests a 429 burst covers
    rate_5xx: float = 0.0  # probability of a 500/502/503 before the request is handled
    rate_timeout: float = 0.0  # probability the server stalls `timeout_s` before answering
    timeout_s: float = 35.0
    rate_lost_response: float = 0.0  # writes: commit, then answer 502 as a gateway would
    # Deltek writes answered 200 with an empty (or a garbled, non-JSON) body; whether the
    # write was saved is `hollow_success_saves` (False: nothing saved, the worst case).
    rate_empty_success: float = 0.0
    rate_garbled_success: float = 0.0
    hollow_success_saves: bool = False
    token_expire_after_calls: int = 0  # 0 = never; else tokens die after N authorised calls
    hide_amounts: bool = False  # Deltek: amounts read back as 0 (field-level security)
    webhook_drop: float = 0.0
    webhook_duplicate: float = 0.0
    webhook_reorder: bool = False
    # Procore: the webhooks config API (hooks, triggers, deliveries, resources) refuses the
    # service account, as when it lacks the "Webhooks API" permission; 403, or 404 ("not
    # found or no read access"), per webhooks_forbidden_status.
    webhooks_forbidden: bool = False
    webhooks_forbidden_status: int = 403
    # Procore: list pages send a Total lower than the truth (half) and no Link header, so
    # only "a full page means ask for the next" reads the list to its end.
    lying_total: bool = False
    # Procore: every list page loses its last row and sends no Link (Total stays true), as a
    # proxy truncating a page would: the reader takes a short page for the last one, and only
    # comparing the rows read with Procore's Total shows the read was not complete.
    short_pages: bool = False
    # Procore: the detail reads (line items, items) of these record ids (comma-separated)
    # answer 404, as for a record deleted between its listing and its detail read.
    missing_details: str = ""
    # Deltek: POST firm for these vendor numbers or firm names (comma-separated) always
    # answers 500 and saves nothing: a firm that cannot be created.
    failing_firms: str = ""
    seed: int = 7


FORBIDDEN_STATUSES = (403, 404)


@dataclass
class Faults:
    settings: FaultSettings = field(default_factory=FaultSettings)
    _rng: random.Random = field(default_factory=lambda: random.Random(7), repr=False)
    _burst_left: int = field(default=0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    counters: dict[str, int] = field(default_factory=dict)

    def configure(self, **changes: object) -> FaultSettings:
        """Change some settings; unknown names are an error, not a silent no-op."""
        known = {f.name for f in fields(FaultSettings)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(unknown)}")
        status = changes.get("webhooks_forbidden_status")
        if status is not None and status not in FORBIDDEN_STATUSES:
            raise ValueError(f"webhooks_forbidden_status must be 403 or 404, not {status!r}")
        for key, value in changes.items():
            if isinstance(getattr(self.settings, key), bool) and not isinstance(value, bool):
                raise ValueError(f"{key} must be true or false, not {value!r}")
        with self._lock:
            for key, value in changes.items():
                current = getattr(self.settings, key)
                setattr(self.settings, key, type(current)(value))
            if "seed" in changes:
                self._rng = random.Random(self.settings.seed)
        return self.settings

    def reset(self) -> None:
        with self._lock:
            self.settings = FaultSettings()
            self._rng = random.Random(self.settings.seed)
            self._burst_left = 0

    def as_dict(self) -> dict:
        return {"settings": asdict(self.settings), "counters": dict(self.counters)}

    def count(self, name: str) -> None:
        with self._lock:
            self.counters[name] = self.counters.get(name, 0) + 1

    def chance(self, probability: float) -> bool:
        if probability <= 0:
            return False
        with self._lock:
            return self._rng.random() < probability

    async def delay(self) -> None:
        s = self.settings
        if s.latency_ms or s.latency_jitter_ms:
            with self._lock:
                jitter = self._rng.uniform(0, s.latency_jitter_ms) if s.latency_jitter_ms else 0.0
            await asyncio.sleep((s.latency_ms + jitter) / 1000.0)

    def take_429(self) -> bool:
        """True while a simulated 429 burst is running."""
        with self._lock:
            if self._burst_left > 0:
                self._burst_left -= 1
                return True
        if self.chance(self.settings.rate_429):
            with self._lock:
                self._burst_left = max(0, self.settings.burst_429 - 1)
            return True
        return False

    def pick_5xx(self) -> int | None:
        if self.chance(self.settings.rate_5xx):
            with self._lock:
                return self._rng.choice((500, 502, 503))
        return None

    def stall(self) -> bool:
        return self.chance(self.settings.rate_timeout)

    def lose_response(self) -> bool:
        return self.chance(self.settings.rate_lost_response)

    def listed(self, name: str) -> frozenset[str]:
        """The comma-separated values of a text setting, as a set."""
        value = str(getattr(self.settings, name) or "")
        return frozenset(part.strip() for part in value.split(",") if part.strip())

    def hollow_success(self) -> str | None:
        """'empty' or 'garbled' when this write is answered 200 with no usable body."""
        if self.chance(self.settings.rate_empty_success):
            return "empty"
        if self.chance(self.settings.rate_garbled_success):
            return "garbled"
        return None
