"""Procore's token flow: OAuth client credentials (docs/api/procore.md, Auth).

A form POST of client_id/client_secret to the token URL; the answer has no refresh
token, so renewal is asking again: ahead of `expires_in` (10 % of the lifetime, at least
60 s, at most half of it) and once after a 401. Lifetimes are measured from our own
clock when we asked, so server clock skew and `created_at` cannot shorten or extend them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
from pydantic import SecretStr

from deltek_procore.http.auth import BearerTokenAuth, Token
from deltek_procore.http.secrets import scrub
from deltek_procore.http.text import parse_error_body

from .errors import ProcoreAuthError

CREDENTIALS_HINT = (
    "check PROCORE_CLIENT_ID / PROCORE_CLIENT_SECRET and that PROCORE_AUTH_URL belongs to the "
    "app's environment (login.procore.com vs login-sandbox.procore.com); credentials are not "
    "shared between them"
)


def _int(value: Any) -> int | None:
    try:
        return None if value in (None, "") else int(float(value))
    except (TypeError, ValueError):
        return None


class ProcoreClientCredentials(BearerTokenAuth):
    """Bearer auth for a Procore service account (Developer Managed Service Account)."""

    def __init__(
        self,
        session: requests.Session,
        *,
        url: str,
        client_id: str,
        client_secret: SecretStr,
        timeout: tuple[float, float],
        clock: Callable[[], float] = time.time,
        counted: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(clock)
        self._session = session
        self.url = url
        self._client_id = client_id
        self._client_secret = client_secret
        self._timeout = timeout
        self._counted = counted or (lambda _event: None)

    def renew_at(self, token: Token) -> float:
        if token.expires_in is None:
            return float("inf")  # lifetime unknown: rely on the 401 re-auth
        lead = min(max(60.0, 0.1 * token.expires_in), 0.5 * token.expires_in)
        return token.obtained_at + token.expires_in - lead

    def secrets(self) -> list[str]:
        return [self._client_secret.get_secret_value(), *super().secrets()]

    def reauthenticated(self) -> None:
        self._counted("reauth")

    def obtain(self, stale: Token | None) -> Token:
        """POST client_credentials as a form (Procore's documented request)."""
        path = urlsplit(self.url).path or "/oauth/token"
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret.get_secret_value(),
        }
        started = self._clock()
        self._counted("call")
        try:
            resp = self._session.post(
                self.url, data=form, headers={"Accept": "application/json"}, timeout=self._timeout
            )
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise ProcoreAuthError(
                f"token endpoint unreachable ({type(exc).__name__})", method="POST", path=path
            ) from None
        if resp.status_code >= 400:
            detail = scrub(
                parse_error_body(resp.text, resp.headers.get("Content-Type")), self.secrets()
            )
            raise ProcoreAuthError(
                "could not obtain an access token",
                status=resp.status_code,
                method="POST",
                path=path,
                detail=detail,
                hint=CREDENTIALS_HINT if resp.status_code in (400, 401) else None,
            )
        try:
            body = resp.json()
            value = body["access_token"]
        except (ValueError, KeyError, TypeError):
            raise ProcoreAuthError(
                "token endpoint answered without an access_token",
                status=resp.status_code,
                method="POST",
                path=path,
                hint="check PROCORE_AUTH_URL points at the OAuth token endpoint",
            ) from None
        self._counted("token")
        return Token(
            access=SecretStr(str(value)),
            obtained_at=started,
            expires_in=_int(body.get("expires_in")),
            created_at=_int(body.get("created_at")),
            token_type=str(body.get("token_type") or "bearer"),
        )
