"""Errors raised by the Procore client.

Procore's v1.x error bodies are not standardised (JSON in half a dozen shapes, plain
text on 429, HTML from gateways), so one parser turns all of them into a sentence a
person can read, and every error carries a hint about what to check next.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

_MAX_DETAIL = 300

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


def _flatten(value: object) -> str:
    """Render nested error values (strings, lists, field maps) as one line."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        parts = []
        for key, inner in value.items():
            text = _flatten(inner)
            parts.append(f"{key}: {text}" if text else str(key))
        return "; ".join(p for p in parts if p)
    if isinstance(value, (list, tuple)):
        return ", ".join(t for t in (_flatten(v) for v in value) if t)
    return str(value)


def _from_json(data: object) -> str:
    """Pick the human part out of the known Procore error JSON shapes."""
    if not isinstance(data, dict):
        return _flatten(data)
    err = data.get("error")
    if isinstance(err, dict):  # v2.0: {"error": {"code", "message", "details"}}
        code = err.get("code")
        message = _flatten(err.get("message"))
        details = _flatten(err.get("details"))
        text = " ".join(p for p in (f"[{code}]" if code else "", message) if p)
        return f"{text} ({details})" if details else text
    if "errors" in data:  # {"errors": "..."} or {"errors": {field: [...]}}
        return _flatten(data["errors"])
    if "error_description" in data:  # OAuth: {"error", "error_description"}
        code = _flatten(err)
        desc = _flatten(data["error_description"])
        return f"{code}: {desc}" if code else desc
    message = _flatten(data.get("message"))
    extra = _flatten(err) or _flatten(data.get("reason")) or _flatten(data.get("exception"))
    if message and extra and extra != message:
        return f"{message} ({extra})"
    if message or extra:
        return message or extra
    return _flatten(data)


_TAGS = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.I | re.S)
_SCRIPT = re.compile(r"<(script|style)[^>]*>.*?</\1>", re.I | re.S)


def _from_html(text: str) -> str:
    title = _TITLE.search(text)
    if title and title.group(1).strip():
        return _SPACE.sub(" ", title.group(1)).strip()
    return _SPACE.sub(" ", _TAGS.sub(" ", _SCRIPT.sub(" ", text))).strip()


def parse_error_body(body: str | bytes | None, content_type: str | None = None) -> str:
    """Turn any error body into one short plain-text sentence."""
    if body is None:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = text.strip()
    if not text:
        return ""
    if text[0] in "{[" or "json" in (content_type or ""):
        try:
            detail = _from_json(json.loads(text))
        except ValueError:
            detail = text
    elif text.startswith("<") or "html" in (content_type or ""):
        detail = _from_html(text)
    else:
        detail = _SPACE.sub(" ", text)
    if len(detail) > _MAX_DETAIL:
        detail = detail[: _MAX_DETAIL - 1] + "…"
    return detail


def redact(text: str, secrets: Iterable[str]) -> str:
    """Remove secret values a server might echo back (e.g. in an OAuth error)."""
    for secret in secrets:
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, "***")
    return text


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
