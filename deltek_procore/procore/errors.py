"""Errors raised by the Procore client.

Procore's v1.x error bodies are not standardised (JSON in half a dozen shapes, plain
text on 429, HTML from gateways); the one parser both clients share
(`deltek_procore.http.text.parse_error_body`) turns each into a sentence a person can
read, and every error carries a hint about what to check next.
"""

from __future__ import annotations

from collections.abc import Iterable

from deltek_procore.http.secrets import scrub
from deltek_procore.http.text import parse_error_body

__all__ = [
    "DETAIL_GONE",
    "ProcoreAuthError",
    "ProcoreError",
    "gone_reason",
    "hint_for",
    "parse_error_body",
    "redact",
]

_HINTS: dict[int, str] = {
    400: "the request was rejected as malformed; check filter values (date filters must be "
    "'start...end' ranges)",
    401: "check PROCORE_CLIENT_ID / PROCORE_CLIENT_SECRET and that PROCORE_AUTH_URL matches the "
    "environment the app lives in (login.procore.com for production, login-sandbox.procore.com "
    "for the developer sandbox)",
    403: "the app is not connected to this company, the project is not among the service "
    "account's permitted projects, or the tool is disabled / lacks permission in the app "
    "manifest; ask a Procore company admin",
    404: "the record does not exist or the service account has no read access to it (Procore "
    "answers 404 for both); check the project is permitted for the app",
    406: "the request asked for fields Procore does not know",
    409: "a record with the same origin_id already exists",
    422: "Procore refused the values (business rule); see the detail",
    429: "the rate limit stayed exhausted after all retries; try later or lower concurrency",
}


def hint_for(status: int | None) -> str:
    """A next step for a person, by HTTP status (None = network failure)."""
    if status is None:
        return (
            "Procore could not be reached; check PROCORE_API_URL / PROCORE_AUTH_URL and the network"
        )
    if status in _HINTS:
        return _HINTS[status]
    if status >= 500:
        return (
            "Procore had a server-side failure that persisted through all retries; try again later"
        )
    return "see the detail"


def redact(text: str, secrets: Iterable[str]) -> str:
    """Remove secret values a server might echo back (raw, URL-encoded or base64)."""
    return scrub(text, secrets)


DETAIL_GONE = "detail_gone"  # set on a listed record whose detail read answered 404


def gone_reason(exc: ProcoreError) -> str:
    """Why a record cannot be read whole: Procore answers 404 for records deleted since
    they were listed (and for records the service account may no longer read)."""
    return f"gone from Procore (404 on {exc.method} {exc.path})"


class ProcoreError(Exception):
    """A Procore call that failed for good (after any retries the client allows).

    `path` never contains the query string, so filter values and credentials passed as
    parameters cannot leak into logs through it.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str = "",
        path: str = "",
        detail: str = "",
        hint: str | None = None,
    ) -> None:
        self.status = status
        self.method = method
        self.path = path
        self.detail = detail
        self.hint = hint if hint is not None else hint_for(status)
        self.message = message
        super().__init__(message)  # str() is built from the fields; args hold no detail

    def __str__(self) -> str:
        where = f"Procore {self.method} {self.path}".rstrip()
        status = f"HTTP {self.status}" if self.status is not None else "no HTTP response"
        text = f"{where} failed ({status}): {self.message}"
        if self.detail and self.detail not in self.message:
            text += f" - {self.detail}"
        if self.hint:
            text += f". What to do: {self.hint}"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, method={self.method!r}, "
            f"path={self.path!r}, detail={self.detail!r})"
        )


class ProcoreAuthError(ProcoreError):
    """The token could not be obtained, or the API kept refusing a fresh token."""
