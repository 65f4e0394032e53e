"""Deltek errors that say what failed and what to do, whatever shape the body had.

Vantagepoint documents no error body. Seen or plausible: ASP.NET `{"Message"}`,
`{"message","detail"}`, OWIN token errors `{"error","error_description"}`,
`{"errors": ...}` in list/dict/string form, a JSON-encoded string, plain text, and HTML
pages from a gateway. `parse_error_body` (shared with the Procore client,
`deltek_procore.http.text`) turns each into one readable line.
"""

from __future__ import annotations

from deltek_procore.http.text import parse_error_body

__all__ = [
    "DeltekAmbiguousError",
    "DeltekAuthError",
    "DeltekError",
    "default_hint",
    "parse_error_body",
]

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
