"""Deltek errors that say what failed and what to do, whatever shape the body had.

Vantagepoint documents no error body. Seen or plausible: ASP.NET `{"Message"}`,
`{"message","detail"}`, OWIN token errors `{"error","error_description"}`,
`{"errors": ...}` in list/dict/string form, a JSON-encoded string, plain text, and HTML
pages from a gateway. `parse_error_body` turns each into one readable line.
"""

from __future__ import annotations

import html
import json
import re

_MAX_MESSAGE = 500

_PRIMARY_KEYS = ("Message", "message", "error_description", "title", "error", "Error")
_EXTRA_KEYS = (
    "detail",
    "Detail",
    "errors",
    "Errors",
    "ModelState",
    "ExceptionMessage",
    "MessageDetail",
)

_STATUS_HINTS = {
    400: "Deltek refused the data; fix what the message names (nothing was written)",
    401: "the Deltek token was refused; check the API user and its password",
    403: "the API user's role lacks access to this hub or transaction type; grant it in "
    "Vantagepoint > Settings > Security > Roles",
    404: "no such record or path on this Deltek tenant",
    409: "the record changed or already exists in Deltek; read it back before retrying",
    429: "Deltek is throttling calls; wait and retry",
}


class DeltekError(Exception):
    """A Deltek call failed; `message` is the server's reason, `hint` what to do about it."""

    def __init__(
        self,
        status: int | None,
        method: str,
        path: str,
        message: str,
        record: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.status = status
        self.method = method.upper()
        self.path = path.lstrip("/")
        self.message = message or "no details given"
        self.record = record
        self.hint = hint if hint is not None else default_hint(status)
        super().__init__(self.message)

    def _what(self) -> str:
        where = f"{self.method} {self.path}"
        if self.status is None:
            return f"Deltek call {where} failed"
        return f"Deltek rejected {where} ({self.status})"

    def __str__(self) -> str:
        text = f"{self._what()}: {self.message}"
        if self.record:
            text += f" [record {self.record}]"
        return f"{text} — {self.hint}" if self.hint else text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, method={self.method!r}, "
            f"path={self.path!r}, message={self.message!r}, record={self.record!r})"
        )

    def __reduce__(self):  # keep pickling (Dagster ships exceptions between processes)
        return (
            type(self),
            (self.status, self.method, self.path, self.message, self.record, self.hint),
        )


class DeltekAuthError(DeltekError):
    """Signing in to Deltek failed, or a fresh token was refused again."""

    def _what(self) -> str:
        return "Deltek sign-in failed"


class DeltekAmbiguousError(DeltekError):
    """A write was sent but its outcome is unknown; look the record up before retrying."""

    def __init__(
        self,
        status: int | None,
        method: str,
        path: str,
        message: str,
        record: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(
            status,
            method,
            path,
            message,
            record,
            hint
            or "the write may or may not have been applied; look the record up in Deltek "
            "before sending it again",
        )

    def _what(self) -> str:
        status = f" ({self.status})" if self.status is not None else ""
        return f"Outcome unknown for Deltek {self.method} {self.path}{status}"


def default_hint(status: int | None) -> str | None:
    if status is None:
        return "check DELTEK_API_URL and the network path to Deltek"
    if status >= 500:
        return "Deltek had a server error; retry later"
    return _STATUS_HINTS.get(status)


def parse_error_body(body: str | bytes | None, content_type: str = "") -> str:
    """One readable line from an error body of any shape ("" when there is nothing)."""
    if body is None:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = text.strip()
    if not text:
        return ""
    value: object = text
    # A JSON-encoded string may wrap JSON again (PostTransFile does this on success).
    for _ in range(3):
        if not isinstance(value, str):
            break
        try:
            value = json.loads(value)
        except ValueError:
            break
    if isinstance(value, str):
        return _shorten(_from_text(value, content_type))
    return _shorten(_from_json(value))


def _from_json(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return _join(_from_json(item) for item in value)
    if isinstance(value, dict):
        parts: list[str] = []
        for key in _PRIMARY_KEYS:
            if value.get(key):
                field = value.get("field") or value.get("Field") or value.get("property")
                text = _from_json(value[key])
                parts.append(f"{field}: {text}" if isinstance(field, str) and field else text)
                break
        for key in _EXTRA_KEYS:
            if value.get(key):
                parts.append(_from_mapping_or_json(value[key]))
        if parts:
            return _join(parts)
        return _from_mapping_or_json(value)
    return str(value)


def _from_mapping_or_json(value: object) -> str:
    """`{"Vendor": ["is invalid"]}` -> "Vendor: is invalid"."""
    if isinstance(value, dict) and not any(key in value for key in _PRIMARY_KEYS):
        return _join(f"{key}: {_from_json(item)}" for key, item in value.items())
    return _from_json(value)


def _join(parts) -> str:
    seen: list[str] = []
    for part in parts:
        part = part.strip()
        if part and part not in seen:
            seen.append(part)
    return "; ".join(seen)


def _from_text(text: str, content_type: str) -> str:
    if "html" in content_type.lower() or re.search(r"<\s*(html|!doctype|body|title)\b", text, re.I):
        return _from_html(text)
    return " ".join(text.split())


def _from_html(page: str) -> str:
    """Title plus the visible text of a gateway page, without markup."""
    match = re.search(r"<title[^>]*>(.*?)</title>", page, re.I | re.S)
    title = " ".join(html.unescape(match.group(1)).split()) if match else ""
    body = re.sub(r"<(script|style|head)\b.*?</\1\s*>", " ", page, flags=re.I | re.S)
    body = re.sub(r"<[^>]+>", " ", body)
    body = " ".join(html.unescape(body).split())
    if title and body.startswith(title):
        body = body[len(title) :].strip()
    return _join([title, body[:200]])


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"
