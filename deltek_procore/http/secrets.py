"""Secrets never leave the process in text: one scrubber for both clients.

A server may echo what it was sent: the raw value, its URL-encoded form (a form body or
a query string quoted back), or base64 (an HTTP Basic header, a token blob). `Scrubber`
replaces every such form of every secret it knows with `***`, in exception messages and
in log records alike.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterable
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_SECRET = 4  # shorter values would blank ordinary words
_MIN_B64_CORE = 6


def encoded_forms(secret: str) -> set[str]:
    """Every spelling of `secret` a server might send back."""
    if len(secret) < MIN_SECRET:
        return set()
    forms = {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}
    forms |= {f.lower() for f in forms if "%" in f}  # %2B and %2b are the same byte
    raw = secret.encode("utf-8")
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode("ascii")
        forms |= {whole, whole.rstrip("=")}
        forms |= _b64_cores(raw, encode)
    return {f for f in forms if f}


def _b64_cores(raw: bytes, encode: Callable[[bytes], bytes]) -> set[str]:
    """The part of the base64 text that is the same wherever `raw` sits in a longer value
    (e.g. `client_id:secret` in a Basic header): for each of the three alignments, the
    characters that encode bytes of `raw` only."""
    cores = set()
    for shift in range(3):
        text = encode(b"\0" * shift + raw).decode("ascii").rstrip("=")
        start = -(-shift * 4 // 3)  # first character free of the padding bytes
        usable = (shift + len(raw)) // 3 * 4  # characters of complete 3-byte groups
        core = text[start:usable] if shift else text[:usable]
        if len(core) >= _MIN_B64_CORE:
            cores.add(core)
    return cores


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every form of every secret replaced by `***`."""
    if not text:
        return text
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            forms |= encoded_forms(secret)
    for form in sorted(forms, key=len, reverse=True):  # longest first: no half-masked value
        if form in text:
            text = text.replace(form, MASK)
    return text


class Scrubber:
    """Scrubs the current secrets of one client (the token changes; ask each time)."""

    def __init__(self, secrets: Callable[[], Iterable[str | None]]) -> None:
        self._secrets = secrets

    def __call__(self, text: str) -> str:
        return scrub(text, self._secrets())

    def log_filter(self) -> logging.Filter:
        """A logging filter that scrubs records (message and arguments) of this client."""
        return _ScrubFilter(self)


class _ScrubFilter(logging.Filter):
    def __init__(self, scrubber: Scrubber) -> None:
        super().__init__()
        self._scrubber = scrubber

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is logging's problem, not ours
            return True
        clean = self._scrubber(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True
