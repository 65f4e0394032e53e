"""Deltek's token flow: OAuth 2.0 password grant at `{api}/token` (docs/api/deltek.md,
Authentication), renewed with the refresh token ahead of expiry (60 s) or after a 401,
with a password grant as the fallback when the refresh is refused.

Sign-in failures are mapped to what a person must change (the OWIN error codes and
texts Vantagepoint answers with), never showing the password or secrets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import requests
from pydantic import SecretStr

from deltek_procore.http.auth import BearerTokenAuth, Token
from deltek_procore.http.text import looks_html, parse_error_body

from .errors import DeltekAuthError, DeltekError

log = logging.getLogger(__name__)

DEFAULT_LIFETIME_S = 1799.0  # Deltek's documented example, when expires_in is unreadable


class DeltekPasswordGrant(BearerTokenAuth):
    """Bearer auth for one Vantagepoint API user (`settings`: a DeltekSettings)."""

    refresh_margin_s = 60.0

    def __init__(
        self,
        session: requests.Session,
        settings: object,
        *,
        base: str,
        host: str,
        timeout: tuple[float, float],
        scrub: Callable[[str], str],
        clock: Callable[[], float] = time.time,
        counted: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(clock)
        self._session = session
        self._settings = settings
        self.url = f"{base}/token"
        self._base = base
        self._host = host
        self._timeout = timeout
        self._scrub = scrub
        self._counted = counted or (lambda _event: None)

    def renew_at(self, token: Token) -> float:
        return token.expires_at - self.refresh_margin_s

    def reauthenticated(self) -> None:
        self._counted("reauth")

    def obtain(self, stale: Token | None) -> Token:
        """Refresh grant first (when the token has a refresh token), password grant if the
        refresh is refused or there is nothing to refresh."""
        s = self._settings
        if stale is not None and stale.refresh is not None:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": stale.refresh.get_secret_value(),
                "database": s.database,
                "Client_Id": s.client_id,
                "client_secret": s.client_secret.get_secret_value(),
            }
            try:
                return self._grant(form)
            except DeltekError as exc:
                log.info("Deltek refresh grant failed (%s); signing in again", exc.message)
        return self._grant(
            {
                "Username": s.username,
                "Password": s.password.get_secret_value(),
                "grant_type": "password",
                "Integrated": "N",
                "database": s.database,
                "Client_Id": s.client_id,
                "client_secret": s.client_secret.get_secret_value(),
            }
        )

    def _grant(self, form: dict[str, str]) -> Token:
        """POST the form to /token (the session retries transient failures)."""
        self._counted("call")
        started = self._clock()
        try:
            resp = self._session.post(
                self.url, data=form, headers={"Accept": "application/json"}, timeout=self._timeout
            )
        except (requests.ConnectionError, requests.Timeout):
            raise self._auth_error(
                None,
                f"cannot reach {self._host}",
                "check DELTEK_API_URL, DNS, proxy and firewall settings",
            ) from None
        if resp.status_code >= 400:
            raise self._token_error(resp)
        try:
            data = resp.json()
        except ValueError:
            data = None
        if not isinstance(data, dict) or not data.get("access_token"):
            raise self._auth_error(
                resp.status_code,
                "DELTEK_API_URL does not look like a Vantagepoint API root (expected .../api)",
                f"{self._base}/token answered without an access token",
            )
        try:
            expires_in = float(data.get("expires_in") or DEFAULT_LIFETIME_S)
        except (TypeError, ValueError):
            expires_in = DEFAULT_LIFETIME_S
        refresh = data.get("refresh_token")
        self._counted("token")
        return Token(
            access=SecretStr(str(data["access_token"])),
            refresh=SecretStr(str(refresh)) if refresh else None,
            token_type=str(data.get("token_type") or "bearer"),
            expires_in=expires_in,
            obtained_at=started,
        )

    def _token_error(self, resp: requests.Response) -> DeltekAuthError:
        """Map the OWIN token errors to what a person must change, without the password."""
        s = self._settings
        text = resp.text or ""
        content_type = resp.headers.get("Content-Type", "")
        try:
            data = resp.json()
        except ValueError:
            data = None
        if resp.status_code == 404 or (
            not isinstance(data, dict) and looks_html(text, content_type)
        ):
            return self._auth_error(
                resp.status_code,
                "DELTEK_API_URL does not look like a Vantagepoint API root (expected .../api)",
                f"{self._base}/token answered {resp.status_code}"
                + (" with an HTML page" if looks_html(text, content_type) else ""),
            )
        code = str(data.get("error") or "").lower() if isinstance(data, dict) else ""
        detail = parse_error_body(text, content_type)
        if isinstance(data, dict) and data.get("error_description"):
            detail = str(data["error_description"])
        low = detail.lower()
        if code == "unsupported_grant_type":
            return self._auth_error(
                resp.status_code,
                "Deltek does not accept the password grant for this client",
                "enable 'Allow Password Grant Type' in Vantagepoint > Integrations > "
                "API Authorization",
            )
        if code == "invalid_client":
            return self._auth_error(
                resp.status_code,
                "Deltek rejected the API client credentials",
                "check DELTEK_CLIENT_ID and DELTEK_CLIENT_SECRET (Vantagepoint > Integrations > "
                "API Authorization; regenerating the secret invalidates the old one)",
            )
        if "user name or password" in low or "username or password" in low:
            return self._auth_error(
                resp.status_code,
                f"Deltek rejected the username or password for DELTEK_USERNAME={s.username}",
                "check DELTEK_USERNAME and DELTEK_PASSWORD",
            )
        if "database" in low:
            return self._auth_error(
                resp.status_code,
                f"Deltek did not accept the database {s.database!r}: {detail}",
                "check DELTEK_DATABASE (shown in Vantagepoint > Integrations > API Authorization)",
            )
        hint = "check the Deltek API user in Vantagepoint"
        if "update the password" in low:
            hint = (
                "the API user's password must be changed in Vantagepoint (untick forced "
                "password reset for it), then update DELTEK_PASSWORD"
            )
        elif "disabled" in low:
            hint = "re-enable the API user's login in Vantagepoint"
        return self._auth_error(
            resp.status_code,
            f"Deltek refused the sign-in for DELTEK_USERNAME={s.username}: "
            f"{detail or code or 'no reason given'}",
            hint,
        )

    def _auth_error(self, status: int | None, message: str, hint: str) -> DeltekAuthError:
        return DeltekAuthError(status, "POST", "token", self._scrub(message), hint=hint)
