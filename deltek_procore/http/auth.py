"""Bearer-token authentication as a `requests.auth.AuthBase`, one subclass per token flow.

The flow (Procore's client credentials, Deltek's password grant with refresh) says how
a token is obtained and renewed; this base keeps it, puts it on every request, renews it
ahead of expiry, and answers a 401 the way OAuth servers mean it: the token is no good,
the request was not processed, so renew once and send the same request again (as
requests' own HTTPDigestAuth does for its challenge). A second 401 on a token this
request renewed itself is returned to the caller, which reports it. Requests sent at once
(threads) share the token: one renewal serves them all; a re-sent request refused on a
token that another thread renewed, or that some request was answered with (it worked,
then ran out while requests were in flight), is sent again with the current token, a
bounded number of times. Token values live in `SecretStr` and never appear in a repr.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from pydantic import SecretStr
from requests.auth import AuthBase

_RESENT = "_deltek_procore_resent_after_401"
MAX_RESENDS = 3  # re-sends of one request after 401s, however the token was renewed


@dataclass
class Token:
    access: SecretStr
    obtained_at: float  # our clock when we asked: server clock skew cannot move it
    expires_in: float | None = None  # None: unknown, rely on the 401
    refresh: SecretStr | None = None
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type name, not a secret
    created_at: int | None = None
    worked: bool = field(default=False, repr=False, compare=False)  # a server accepted it

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
        return self._renew(stale_value)[0]

    def _renew(self, stale_value: str) -> tuple[Token, bool]:
        """(the token to use now, whether this call obtained it)."""
        with self._lock:
            token = self._token
            if token is not None and token.access.get_secret_value() != stale_value:
                return token, False
            token = self._token = self.obtain(token)
            return token, True

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

    def _accepted(self, request: requests.PreparedRequest) -> None:
        """A non-401 answer: the token it was sent with works (if it is the current one)."""
        used = str(request.headers.get("Authorization", "")).removeprefix("Bearer ")
        with self._lock:
            token = self._token
            if token is not None and not token.worked and token.access.get_secret_value() == used:
                token.worked = True

    def _after_401(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        sent = response.request
        if response.status_code != 401:
            self._accepted(sent)
            return response
        if getattr(sent, _RESENT, False):
            return response
        answer = response
        for _ in range(MAX_RESENDS):
            refused = answer.request
            stale = str(refused.headers.get("Authorization", "")).removeprefix("Bearer ")
            answer.content  # noqa: B018 - read the body so the connection can be reused
            answer.close()
            fresh, renewed_here = self._renew(stale)
            with self._lock:
                self.reauths += 1
            self.reauthenticated()
            again = sent.copy()
            setattr(again, _RESENT, True)
            again.headers["Authorization"] = f"Bearer {fresh.access.get_secret_value()}"
            following = response.connection.send(again, **kwargs)
            following.history.extend([*answer.history, answer])
            following.request = again
            answer = following
            if answer.status_code != 401:
                self._accepted(again)
                break
            if renewed_here and not fresh.worked:
                break  # a token this request obtained, refused before it ever worked: report
        return answer
