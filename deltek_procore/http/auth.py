"""Bearer-token authentication as a `requests.auth.AuthBase`, one subclass per token flow.

The flow (Procore's client credentials, Deltek's password grant with refresh) says how
a token is obtained and renewed; this base keeps it, puts it on every request, renews it
ahead of expiry, and answers a 401 the way OAuth servers mean it: the token is no good,
the request was not processed, so renew once and send the same request again (as
requests' own HTTPDigestAuth does for its challenge). A second 401 is returned to the
caller, which reports it. Token values live in `SecretStr` and never appear in a repr.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from pydantic import SecretStr
from requests.auth import AuthBase

_RESENT = "_deltek_procore_resent_after_401"


@dataclass
class Token:
    access: SecretStr
    obtained_at: float  # our clock when we asked: server clock skew cannot move it
    expires_in: float | None = None  # None: unknown, rely on the 401
    refresh: SecretStr | None = None
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type name, not a secret
    created_at: int | None = None

    @property
    def expires_at(self) -> float:
        return float("inf") if self.expires_in is None else self.obtained_at + self.expires_in


class BearerTokenAuth(AuthBase):
    """Subclasses implement `obtain(stale)`: a new token (`stale` is the one being
    replaced, or None), and may override `renew_at(token)`."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._token: Token | None = None
        self._lock = threading.RLock()
        self.reauths = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(token={'set' if self._token else 'none'})"

    # -- the flow ------------------------------------------------------------------------
    def obtain(self, stale: Token | None) -> Token:
        raise NotImplementedError

    def renew_at(self, token: Token) -> float:
        return token.expires_at

    def reauthenticated(self) -> None:
        """Called after a 401 made us renew and re-send (for counters)."""

    # -- the token -----------------------------------------------------------------------
    @property
    def token(self) -> Token | None:
        return self._token

    def current(self) -> Token:
        """A usable token: the kept one, or a new one when none is kept or it is due."""
        with self._lock:
            token = self._token
            if token is None or self._clock() >= self.renew_at(token):
                token = self._token = self.obtain(token)
            return token

    def renew(self, stale_value: str) -> Token:
        """Replace the token a server refused, unless another thread already did."""
        with self._lock:
            token = self._token
            if token is not None and token.access.get_secret_value() != stale_value:
                return token
            token = self._token = self.obtain(token)
            return token

    def secrets(self) -> list[str]:
        token = self._token
        if token is None:
            return []
        values = [token.access.get_secret_value()]
        if token.refresh is not None:
            values.append(token.refresh.get_secret_value())
        return values

    # -- requests' AuthBase ----------------------------------------------------------------
    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.current().access.get_secret_value()}"
        request.register_hook("response", self._after_401)
        return request

    def _after_401(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        sent = response.request
        if response.status_code != 401 or getattr(sent, _RESENT, False):
            return response
        stale = str(sent.headers.get("Authorization", "")).removeprefix("Bearer ")
        response.content  # noqa: B018 - read the body so the connection can be reused
        response.close()
        fresh = self.renew(stale)
        self.reauths += 1
        self.reauthenticated()
        again = sent.copy()
        setattr(again, _RESENT, True)
        again.headers["Authorization"] = f"Bearer {fresh.access.get_secret_value()}"
        answer = response.connection.send(again, **kwargs)
        answer.history.append(response)
        answer.request = again
        return answer
