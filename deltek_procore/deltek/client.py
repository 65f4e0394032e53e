"""Deltek Vantagepoint REST client: sign-in, firms, projects, accounts, AP and JE batches.

Rules this client keeps (see docs/api/deltek.md):
- OAuth2 password grant at `{api}/token`; the refresh token is used before the access
  token runs out or after a 401, with a password grant as the fallback; a call is
  repeated once after re-authentication, a second 401 is a `DeltekAuthError`.
- Reads are retried on 5xx, timeouts, dropped connections and 429 (honouring
  `Retry-After`). Writes are never retried: when a write was sent and its outcome is
  unknown the client raises `DeltekAmbiguousError`; the caller looks the record up first.
- Bodies are bare JSON arrays (a dict is accepted too); numbers may be strings, so rows
  are returned as Deltek sent them and `to_decimal` converts where a caller needs money.
- No secret ever reaches a log line, an exception or a repr.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import requests
from pydantic import BaseModel, SecretStr
from urllib3.exceptions import NewConnectionError

from .errors import (
    DeltekAmbiguousError,
    DeltekAuthError,
    DeltekError,
    parse_error_body,
)
from .filters import Filter, encode_params, filter_params, matches, needs_post_as_get

log = logging.getLogger(__name__)

TransType = Literal["AP", "JE"]

_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json; charset=utf-8"


class DeltekSettings(BaseModel):
    """Connection settings for one Vantagepoint tenant (`api_url` ends in `/api`)."""

    api_url: str
    username: str
    password: SecretStr
    database: str
    client_id: str
    client_secret: SecretStr
    accounts_path: str = "GLSummary"
    connect_timeout: float = 5
    read_timeout: float = 60
    max_retries: int = 4


@dataclass
class DeltekStats:
    calls: int = 0  # HTTP requests answered (token requests included)
    retries: int = 0  # repeated requests: read retries, 429 waits, post-401 repeats
    tokens: int = 0  # tokens obtained (password or refresh grant)
    posts: int = 0  # writes sent (creates, PostTransFile, deletes)
    lookups: int = 0  # find_* calls


@dataclass
class _Token:
    access: SecretStr
    refresh: SecretStr | None
    token_type: str
    expires_in: float
    obtained_at: float

    @property
    def expires_at(self) -> float:
        return self.obtained_at + self.expires_in


# --------------------------------------------------------------------------- helpers


def to_decimal(value: object, default: Decimal | None = Decimal("0")) -> Decimal | None:
    """Money as Decimal whether Deltek sent 1275, 1275.5, "1275.50" or "1,275.50".

    None and "" give `default`; anything else unparseable is a ValueError, because a
    silently wrong amount is worse than a stopped run.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise ValueError(f"not an amount: {value!r}")
    if isinstance(value, float):
        return Decimal(repr(value))
    try:
        return Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None


def as_rows(value: object) -> list[dict]:
    """Deltek answers with a bare array, sometimes an object or a JSON-encoded string."""
    for _ in range(3):
        if not isinstance(value, str):
            break
        try:
            value = json.loads(value)
        except ValueError:
            return []
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [row for row in value if isinstance(row, dict)]
    return []


def decode_post_result(value: object) -> dict:
    """PostTransFile's answer -> {"files": [{type,batch,ret,period,postseq}], "msg", "raw"}.

    The answer is a JSON-encoded string holding an object of pipe-delimited parallel
    lists, one entry per posted file (posting one file may post others, e.g. a JE).
    """
    for _ in range(3):
        if not isinstance(value, str):
            break
        try:
            value = json.loads(value)
        except ValueError:
            return {"files": [], "msg": value, "raw": value}
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, dict):
        return {"files": [], "msg": "" if value is None else str(value), "raw": value}
    columns = {
        "type": "typeList",
        "batch": "batchList",
        "ret": "retList",
        "period": "periodList",
        "postseq": "postseqList",
    }
    split = {key: _pipe_list(_get_ci(value, src)) for key, src in columns.items()}
    count = max((len(items) for items in split.values()), default=0)
    files = [
        {key: (items[i] if i < len(items) else "") for key, items in split.items()}
        for i in range(count)
    ]
    msg = _get_ci(value, "msg")
    return {"files": files, "msg": "" if msg is None else str(msg), "raw": value}


def _pipe_list(value: object) -> list[str]:
    if value is None or value == "":
        return []
    return [part.strip() for part in str(value).split("|")]


def _get_ci(row: dict, key: str) -> Any:
    """Dict lookup that tolerates Deltek's inconsistent key case."""
    if key in row:
        return row[key]
    lowered = key.lower()
    for name, item in row.items():
        if isinstance(name, str) and name.lower() == lowered:
            return item
    return None


def _seg(value: str) -> str:
    """One URL path segment, every reserved character escaped."""
    return quote(str(value), safe="")


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.000")
    if isinstance(value, date):
        return value.strftime("%Y-%m-%dT00:00:00.000")
    raise TypeError(f"cannot send {type(value).__name__} to Deltek")


def _never_sent(exc: BaseException) -> bool:
    """True when the connection was never made, so no request reached Deltek."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    seen: set[int] = set()
    stack: list[object] = [exc]
    while stack:
        item = stack.pop()
        if id(item) in seen or item is None:
            continue
        seen.add(id(item))
        if isinstance(item, NewConnectionError):
            return True
        if isinstance(item, BaseException):
            stack.extend(item.args)
            stack.extend([item.__cause__, item.__context__, getattr(item, "reason", None)])
    return False


def _looks_html(text: str, content_type: str) -> bool:
    head = text.lstrip()[:200].lower()
    return "html" in content_type.lower() or head.startswith(("<!doctype", "<html"))


def _retry_after(header: str | None, now: float) -> float | None:
    if not header:
        return None
    header = header.strip()
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(header).timestamp() - now)
    except (TypeError, ValueError):
        return None


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# --------------------------------------------------------------------------- client


class DeltekClient:
    """One Vantagepoint tenant. Thread-safe for token handling; share one per tenant."""

    page_size = 500  # hubs (firm, project, GLSummary) and landing lists
    ledger_page_size = 1000  # DataEntry masters/details and PSALedger
    refresh_margin_s = 60.0
    backoff_base_s = 0.5
    backoff_cap_s = 20.0
    max_retry_after_s = 120.0

    def __init__(
        self,
        settings: DeltekSettings,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.stats = DeltekStats()
        self._session = session or requests.Session()
        self._sleep = sleep
        self._clock = clock
        self._base = settings.api_url.rstrip("/")
        self._host = urlsplit(self._base).netloc or self._base
        self._timeout = (settings.connect_timeout, settings.read_timeout)
        self._token: _Token | None = None
        self._lock = threading.RLock()
        self._rng = random.Random()
        self._master_filters_work = {"ap": True, "je": True}

    def __repr__(self) -> str:
        return (
            f"DeltekClient(api_url={self._base!r}, username={self.settings.username!r}, "
            f"database={self.settings.database!r})"
        )

    # ----------------------------------------------------------------- authentication

    def token_info(self) -> dict:
        """Sign in if needed; what a person may see about the token (never the token)."""
        token = self._current_token()
        return {
            "token_type": token.token_type,
            "expires_in": token.expires_in,
            "obtained_at": token.obtained_at,
            "expires_at": token.expires_at,
            "refreshable": token.refresh is not None,
        }

    def _current_token(self) -> _Token:
        with self._lock:
            token = self._token
            if token is None:
                return self._password_grant()
            if self._clock() >= token.expires_at - self.refresh_margin_s:
                return self._renew(token)
            return token

    def _renew(self, stale: _Token | None) -> _Token:
        """Refresh grant first, password grant if that fails; skip if another call renewed."""
        with self._lock:
            current = self._token
            if current is not None and current is not stale:
                return current
            if current is not None and current.refresh is not None:
                form = {
                    "grant_type": "refresh_token",
                    "refresh_token": current.refresh.get_secret_value(),
                    "database": self.settings.database,
                    "Client_Id": self.settings.client_id,
                    "client_secret": self.settings.client_secret.get_secret_value(),
                }
                try:
                    return self._grant(form)
                except DeltekError as exc:
                    log.info("Deltek refresh grant failed (%s); signing in again", exc.message)
            return self._password_grant()

    def _password_grant(self) -> _Token:
        s = self.settings
        form = {
            "Username": s.username,
            "Password": s.password.get_secret_value(),
            "grant_type": "password",
            "Integrated": "N",
            "database": s.database,
            "Client_Id": s.client_id,
            "client_secret": s.client_secret.get_secret_value(),
        }
        return self._grant(form)

    def _grant(self, form: dict[str, str]) -> _Token:
        """POST the form to /token (retrying transient failures) and keep the token."""
        url = f"{self._base}/token"
        failures = 0
        while True:
            try:
                resp = self._session.post(
                    url, data=form, headers={"Accept": "application/json"}, timeout=self._timeout
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                refused = _never_sent(exc) and not isinstance(exc, requests.ConnectTimeout)
                if not refused and failures < self.settings.max_retries:
                    failures += 1
                    self._wait(failures)
                    continue
                raise self._auth_error(
                    None,
                    f"cannot reach {self._host}",
                    "check DELTEK_API_URL, DNS, proxy and firewall settings",
                ) from None
            self.stats.calls += 1
            status = resp.status_code
            if (status == 429 or status >= 500) and failures < self.settings.max_retries:
                failures += 1
                self.stats.retries += 1
                wait = _retry_after(resp.headers.get("Retry-After"), self._clock())
                if wait is None:
                    self._wait(failures, counted=False)
                else:
                    self._sleep(min(wait, self.max_retry_after_s))
                continue
            if status >= 400:
                raise self._token_error(resp)
            return self._keep_token(resp)

    def _keep_token(self, resp: requests.Response) -> _Token:
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
            expires_in = float(data.get("expires_in") or 1799)
        except (TypeError, ValueError):
            expires_in = 1799.0
        refresh = data.get("refresh_token")
        token = _Token(
            access=SecretStr(str(data["access_token"])),
            refresh=SecretStr(str(refresh)) if refresh else None,
            token_type=str(data.get("token_type") or "bearer"),
            expires_in=expires_in,
            obtained_at=self._clock(),
        )
        self._token = token
        self.stats.tokens += 1
        return token

    def _token_error(self, resp: requests.Response) -> DeltekAuthError:
        """Map the OWIN token errors to what a person must change, without the password."""
        s = self.settings
        text = resp.text or ""
        content_type = resp.headers.get("Content-Type", "")
        try:
            data = resp.json()
        except ValueError:
            data = None
        if resp.status_code == 404 or (
            not isinstance(data, dict) and _looks_html(text, content_type)
        ):
            return self._auth_error(
                resp.status_code,
                "DELTEK_API_URL does not look like a Vantagepoint API root (expected .../api)",
                f"{self._base}/token answered {resp.status_code}"
                + (" with an HTML page" if _looks_html(text, content_type) else ""),
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

    # ----------------------------------------------------------------------- transport

    def _scrub(self, text: str) -> str:
        """Blank any secret a server (or we) might have echoed into a message."""
        secrets = [self.settings.password.get_secret_value()]
        secrets.append(self.settings.client_secret.get_secret_value())
        token = self._token
        if token is not None:
            secrets.append(token.access.get_secret_value())
            if token.refresh is not None:
                secrets.append(token.refresh.get_secret_value())
        for secret in secrets:
            if secret and len(secret) >= 4:
                text = text.replace(secret, "***")
                encoded = quote(secret, safe="")
                if encoded != secret:
                    text = text.replace(encoded, "***")
        return text

    def _wait(self, attempt: int, counted: bool = True) -> None:
        if counted:
            self.stats.retries += 1
        delay = min(self.backoff_cap_s, self.backoff_base_s * 2 ** (attempt - 1))
        self._sleep(delay * (0.5 + self._rng.random() / 2))

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, object]] | None = None,
        body: object = None,
        record: str | None = None,
    ) -> Any:
        """One API call with the retry rules above; returns the decoded JSON (or None)."""
        method = method.upper()
        path = path.lstrip("/")
        url = f"{self._base}/{path}"
        query = encode_params(params) if params else ""
        headers = {"Accept": "application/json"}
        send_method, send_url, data = method, url + (f"?{query}" if query else ""), None
        if body is not None:
            data = json.dumps(body, default=_json_default).encode("utf-8")
            headers["Content-Type"] = _JSON
        elif method == "GET" and query and needs_post_as_get(url, query):
            send_method, send_url, data = "POST", url, query.encode("ascii")
            headers["Content-Type"] = _FORM
            headers["dvp-postAsGet"] = "true"
        is_read = method == "GET"
        failures = throttles = 0
        reauthenticated = False
        while True:
            token = self._current_token()
            headers["Authorization"] = f"Bearer {token.access.get_secret_value()}"
            started = time.monotonic()
            try:
                resp = self._session.request(
                    send_method, send_url, data=data, headers=headers, timeout=self._timeout
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                what = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
                reason = f"{what} talking to {self._host}"
                if is_read and failures < self.settings.max_retries:
                    failures += 1
                    log.info("Deltek %s %s %s; retry %d", method, path, what, failures)
                    self._wait(failures)
                    continue
                if is_read or _never_sent(exc):
                    raise DeltekError(None, method, path, reason, record) from None
                raise DeltekAmbiguousError(None, method, path, reason, record) from None
            self.stats.calls += 1
            status = resp.status_code
            log.debug(
                "Deltek %s %s -> %s in %.0f ms",
                method,
                path,
                status,
                (time.monotonic() - started) * 1000,
            )
            if status == 401:
                if reauthenticated:
                    raise DeltekAuthError(
                        401,
                        method,
                        path,
                        self._scrub(
                            "Deltek refused a freshly issued token: "
                            + (parse_error_body(resp.text, _ctype(resp)) or "no reason given")
                        ),
                        record,
                        "the API user may lack API access, a licence or a role for this "
                        "resource; check it in Vantagepoint",
                    )
                reauthenticated = True
                self.stats.retries += 1
                self._renew(token)
                continue
            if status == 429 and is_read and throttles < 2 * self.settings.max_retries:
                throttles += 1
                self.stats.retries += 1
                wait = _retry_after(resp.headers.get("Retry-After"), self._clock())
                if wait is None:
                    wait = min(self.backoff_cap_s, self.backoff_base_s * 2**throttles)
                log.info("Deltek throttled %s %s; waiting %.1f s", method, path, wait)
                self._sleep(min(wait, self.max_retry_after_s))
                continue
            if status >= 500:
                if is_read and failures < self.settings.max_retries:
                    failures += 1
                    log.info("Deltek %s %s answered %s; retry %d", method, path, status, failures)
                    self._wait(failures)
                    continue
                error_cls = DeltekError if is_read else DeltekAmbiguousError
                raise error_cls(status, method, path, self._message(resp), record)
            if status >= 400:
                raise DeltekError(status, method, path, self._message(resp), record)
            return self._decode(resp, method, path, record)

    def _message(self, resp: requests.Response) -> str:
        text = parse_error_body(resp.content, _ctype(resp))
        return self._scrub(text or (resp.reason or f"HTTP {resp.status_code}"))

    def _decode(self, resp: requests.Response, method: str, path: str, record: str | None) -> Any:
        if not resp.content or not resp.content.strip():
            return None
        try:
            return resp.json()
        except ValueError:
            pass
        text = resp.text
        if _looks_html(text, _ctype(resp)):
            raise DeltekError(
                resp.status_code,
                method,
                path,
                "expected JSON, got an HTML page: " + parse_error_body(text, "text/html"),
                record,
                "DELTEK_API_URL may point at the Vantagepoint web UI instead of its API root",
            )
        return text

    def _rows(self, method: str, path: str, **kwargs: Any) -> list[dict]:
        return as_rows(self._call(method, path, **kwargs))

    def _list(self, path: str, filters: Iterable[Filter] | None = None) -> list[dict]:
        """Every row of a list, paging with pageSize/page until a short page.

        DataEntry and PSALedger answer 500 to `limit`; there `q.maxrows` is sent as well,
        set to the rows needed so far, which is right whether the server applies it per
        page or before paging. A server that ignores `page` is detected (the first row
        repeats) and either re-read whole (when it honours q.maxrows) or reported.
        """
        ledger = path.lower().startswith(("dataentry/", "psaledger/"))
        size = self.ledger_page_size if ledger else self.page_size
        where = filter_params(filters)
        rows: list[dict] = []
        page = 1
        while True:
            params: list[tuple[str, object]] = [("pageSize", size), ("page", page)]
            if ledger:
                params.append(("q.maxrows", size * page))
            batch = self._rows("GET", path, params=params + where)
            if page > 1 and batch and rows and batch[0] == rows[0]:
                if len(batch) <= size:
                    raise DeltekError(
                        200,
                        "GET",
                        path,
                        f"the server ignores paging and returned only the first {len(batch)} rows",
                        hint="narrow the request with filters so it fits in one page",
                    )
                rows = batch  # page ignored, q.maxrows honoured: this is rows 1..n
                if len(batch) < size * page:
                    return rows
            else:
                rows.extend(batch)
                if len(batch) < size:
                    return rows
            page += 1

    def _get_or_none(self, path: str, record: str | None = None) -> list[dict] | None:
        try:
            return self._rows("GET", path, record=record)
        except DeltekError as exc:
            if exc.status == 404:
                return None
            raise

    # ------------------------------------------------------------------ firms, projects

    def firms(self, filters: list[Filter] | None = None) -> list[dict]:
        rows = self._list("firm", filters)
        return [row for row in rows if matches(row, filters or [])]

    def find_vendor(
        self, *, vendor: str | None = None, name: str | None = None, fed_id: str | None = None
    ) -> list[dict]:
        """Firms matching every given key exactly (vendor number, name, tax id)."""
        filters = [
            Filter(column, value)
            for column, value in (("Vendor", vendor), ("Name", name), ("FedID", fed_id))
            if value is not None
        ]
        if not filters:
            raise ValueError("find_vendor needs vendor, name or fed_id")
        self.stats.lookups += 1
        return self.firms(filters)

    def create_vendor_firm(self, *, name: str, vendor: str, fed_id: str | None = None) -> dict:
        """POST a firm flagged as vendor; returns the created row (read back if not echoed)."""
        body: dict[str, object] = {
            "Name": name,
            "Vendor": vendor,
            "VendorInd": "Y",
            "ClientInd": "N",
            "Status": "A",
        }
        if fed_id:
            body["FedID"] = fed_id
        self.stats.posts += 1
        rows = self._rows("POST", "firm", body=body, record=f"vendor {vendor}")
        if rows:
            return rows[0]
        found = self.find_vendor(vendor=vendor)
        if not found:
            raise DeltekAmbiguousError(
                200,
                "POST",
                "firm",
                "the firm was not echoed and cannot be read back",
                f"vendor {vendor}",
            )
        return found[0]

    def projects(self) -> list[dict]:
        return self._list("project")

    def accounts(self) -> list[dict] | None:
        """Chart of accounts from `accounts_path` (one row per account); None if unreadable."""
        path = self.settings.accounts_path.strip("/")
        try:
            rows = self._list(path)
        except DeltekError as exc:
            if exc.status == 404:
                log.warning(
                    "Deltek %s answered 404: chart of accounts not readable; validating "
                    "against the mapping file only",
                    path,
                )
                return None
            raise
        seen: dict[str, dict] = {}
        for row in rows:
            account = _get_ci(row, "Account")
            if account is None:
                continue
            seen.setdefault(str(account).strip(), row)
        return list(seen.values())

    def active_period(self) -> int:
        """The active accounting period as YYYYPP (Settings/ActivePeriod, else Settings/Period)."""
        for path in ("Settings/ActivePeriod", "Settings/Period"):
            try:
                value = self._call("GET", path)
            except DeltekError as exc:
                if exc.status == 404:
                    continue
                raise
            period = _period_from(value)
            if period is not None:
                return period
        raise DeltekError(
            None,
            "GET",
            "Settings/ActivePeriod",
            "no active period could be read",
            hint="check that the API user's role can read Settings",
        )

    # --------------------------------------------------------------------- batches

    def create_ap_batch(self, control: dict) -> list[dict]:
        """POST DataEntry/apControl with nested apMaster/apDetail; never retried."""
        return self._create_batch("ap", control)

    def create_je_batch(self, control: dict) -> list[dict]:
        """POST DataEntry/jeControl with nested jeMaster/jeDetail; never retried."""
        return self._create_batch("je", control)

    def get_ap_batch(self, batch: str) -> dict | None:
        return self._get_batch("ap", batch)

    def get_je_batch(self, batch: str) -> dict | None:
        return self._get_batch("je", batch)

    def batch_details(self, batch: str, transtype: TransType) -> list[dict]:
        """Only the detail lines of an unposted batch (one call): read-back and existence.

        An unknown batch answers no lines (404 or an empty list), so "no lines" means
        Deltek holds nothing under that name.
        """
        tt = _tt(transtype)
        try:
            return self._list(f"DataEntry/{tt}Detail/{_seg(batch)}")
        except DeltekError as exc:
            if exc.status == 404:
                return []
            raise

    def ap_landing(self) -> list[dict]:
        return self._list("DataEntry/apLanding")

    def je_landing(self) -> list[dict]:
        return self._list("DataEntry/jeLanding")

    def delete_batch(self, batch: str, transtype: TransType) -> None:
        """DELETE an unposted batch; one that is already gone is not an error."""
        tt = _tt(transtype)
        self.stats.posts += 1
        try:
            self._call("DELETE", f"DataEntry/{tt}Control/{_seg(batch)}", record=batch)
        except DeltekError as exc:
            if exc.status == 404 and not isinstance(exc, DeltekAmbiguousError):
                return
            raise

    def post_batch(
        self,
        batch: str,
        transtype: TransType,
        period: int,
        company: str | None = None,
        description: str | None = None,
    ) -> dict:
        """Post an unposted file to the ledger; DeltekError unless every file reports 1."""
        parms: dict[str, str] = {
            "batch": batch,
            "description": (description or f"deltek-procore {batch}")[:40],
            "period": str(period),
            "transtype": transtype.upper(),
        }
        if company:
            parms["clientcompany"] = company
        self.stats.posts += 1
        path = "DataEntry/PostTransFile"
        result = decode_post_result(self._call("PUT", path, body={"parms": parms}, record=batch))
        files = result["files"]
        if not files or not any(f["ret"] for f in files):
            raise DeltekAmbiguousError(
                200,
                "PUT",
                path,
                "posting answered without a result list: " + (result["msg"] or "empty answer"),
                batch,
            )
        failed = [f for f in files if f["ret"] != "1"]
        if failed:
            raise DeltekError(
                200,
                "PUT",
                path,
                self._scrub(result["msg"] or f"retList={'|'.join(f['ret'] for f in files)}"),
                batch,
                "Deltek did not post the file; open it in Transaction Center to see why "
                "(closed period, control total, unapproved vendor)",
            )
        return result

    def _create_batch(self, tt: str, control: dict) -> list[dict]:
        self.stats.posts += 1
        batch = control.get("Batch")
        return self._rows(
            "POST", f"DataEntry/{tt}Control", body=control, record=str(batch) if batch else None
        )

    def _get_batch(self, tt: str, batch: str) -> dict | None:
        rows = self._get_or_none(f"DataEntry/{tt}Control/{_seg(batch)}", record=batch)
        if not rows:
            return None
        control = dict(rows[0])
        for part in ("Master", "Detail"):
            key = f"{tt}{part}"
            if not isinstance(control.get(key), list):
                try:
                    control[key] = self._list(f"DataEntry/{key}/{_seg(batch)}")
                except DeltekError as exc:
                    if exc.status != 404:
                        raise
                    control[key] = []
        return control

    # ------------------------------------------------------------------ look-ups

    def find_ap_vouchers(self, vendor: str, invoice: str) -> list[dict]:
        """Vouchers for vendor+invoice, unposted (landing+apMaster) and posted (PSALedger/AP)."""
        self.stats.lookups += 1
        filters = [Filter("Vendor", vendor), Filter("Invoice", invoice)]
        found = [
            _ap_master(row, batch)
            for batch in self._unposted_batches("ap")
            for row in self._batch_masters("ap", batch, filters)
        ]
        return found + self.posted_ap(filters=filters)

    def find_je(self, ref_no: str) -> list[dict]:
        """Journal entries with this RefNo, unposted (jeMaster) and posted (PSALedger/JE)."""
        self.stats.lookups += 1
        filters = [Filter("RefNo", ref_no)]
        found = [
            _je_master(row, batch)
            for batch in self._unposted_batches("je")
            for row in self._batch_masters("je", batch, filters)
        ]
        return found + self.posted_je(filters=filters)

    def unposted_batches(self, transtype: TransType) -> list[str]:
        """Names of the unposted batches of a transaction type (the landing list)."""
        return self._unposted_batches(_tt(transtype))

    def batch_masters(self, batch: str, transtype: TransType) -> list[dict]:
        """The masters of one unposted batch, normalised (Vendor/Invoice or RefNo)."""
        tt = _tt(transtype)
        shape = _ap_master if tt == "ap" else _je_master
        return [shape(row, batch) for row in self._batch_masters(tt, batch, None)]

    def ledger_lines(
        self, transtype: TransType, filters: list[Filter] | None = None
    ) -> list[dict]:
        """Posted ledger lines (PSALedger), one row per line, as Deltek sends them."""
        return self._ledger(_tt(transtype).upper(), None, filters)

    def unposted_ap_masters(self) -> list[dict]:
        """Every voucher master of every unposted AP batch (one call per batch)."""
        return [
            _ap_master(row, batch)
            for batch in self._unposted_batches("ap")
            for row in self._batch_masters("ap", batch, None)
        ]

    def unposted_je_masters(self) -> list[dict]:
        return [
            _je_master(row, batch)
            for batch in self._unposted_batches("je")
            for row in self._batch_masters("je", batch, None)
        ]

    def posted_ap(
        self, period: int | None = None, filters: list[Filter] | None = None
    ) -> list[dict]:
        """Posted vouchers (PSALedger/AP lines grouped per voucher, Amount summed)."""
        return _group_posted(self._ledger("AP", period, filters), _ap_key, _ap_posted)

    def posted_je(
        self, period: int | None = None, filters: list[Filter] | None = None
    ) -> list[dict]:
        """Posted journal entries (PSALedger/JE lines grouped per Batch+RefNo)."""
        return _group_posted(self._ledger("JE", period, filters), _je_key, _je_posted)

    def _ledger(self, tt: str, period: int | None, filters: list[Filter] | None) -> list[dict]:
        where = list(filters or [])
        if period is not None:
            where.append(Filter("Period", period))
        rows = self._list(f"PSALedger/{tt}", where)
        return [row for row in rows if matches(row, where)]

    def _unposted_batches(self, tt: str) -> list[str]:
        batches: list[str] = []
        for row in self._list(f"DataEntry/{tt}Landing"):
            batch = _get_ci(row, "Batch")
            if _blank(batch) or str(_get_ci(row, "Posted") or "N").upper() == "Y":
                continue
            if batch not in batches:
                batches.append(str(batch))
        return batches

    def _batch_masters(self, tt: str, batch: str, filters: list[Filter] | None) -> list[dict]:
        """Masters of one batch; filterHash when the server takes it, always checked here."""
        path = f"DataEntry/{tt}Master/{_seg(batch)}"
        try:
            if filters and self._master_filters_work[tt]:
                try:
                    rows = self._list(path, filters)
                except DeltekError as exc:
                    if exc.status is None or exc.status in (401, 403, 404):
                        raise
                    log.info("Deltek %s rejects filterHash (%s); filtering here", path, exc.status)
                    self._master_filters_work[tt] = False
                    rows = self._list(path)
            else:
                rows = self._list(path)
        except DeltekError as exc:
            if exc.status == 404:  # posted or deleted since the landing list was read
                return []
            raise
        return [row for row in rows if matches(row, filters or [])]


# ------------------------------------------------------------------ normalisation


def _ctype(resp: requests.Response) -> str:
    return resp.headers.get("Content-Type", "")


def _tt(transtype: str) -> str:
    code = str(transtype).strip().lower()
    if not code.isalpha() or len(code) != 2:
        raise ValueError(f"transaction type must be a two-letter code, not {transtype!r}")
    return code


def _period_from(value: object) -> int | None:
    """YYYYPP from a bare number, a JSON string, or a row with RawPeriod/Period."""
    scalar = _period_from_scalar(value.strip('" ') if isinstance(value, str) else value)
    if scalar is not None:
        return scalar
    rows = as_rows(value)
    # Settings/Period may list several periods: the open one is the active one.
    rows.sort(key=lambda row: str(_get_ci(row, "ActiveCompanyClosed") or "N").upper() == "Y")
    for row in rows:
        for key in ("RawPeriod", "Period", "ActivePeriod"):
            found = _period_from_scalar(_get_ci(row, key))
            if found is not None:
                return found
    return None


def _period_from_scalar(value: object) -> int | None:
    if value is None or isinstance(value, (bool, dict, list)):
        return None
    text = str(value).strip()
    return int(text) if text.isdigit() and len(text) == 6 else None


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def _ap_master(row: dict, batch: str) -> dict:
    out = {
        "Batch": _text(_get_ci(row, "Batch")) or batch,
        "MasterPKey": _text(_get_ci(row, "MasterPKey")),
        "Vendor": _text(_get_ci(row, "Vendor")),
        "Invoice": _text(_get_ci(row, "Invoice")),
        "Voucher": _text(_get_ci(row, "Voucher")),
        "Posted": "N",
    }
    for key in ("Amount", "InvoiceAmount"):
        if not _blank(_get_ci(row, key)):
            out["Amount"] = to_decimal(_get_ci(row, key))
            break
    return out


def _je_master(row: dict, batch: str) -> dict:
    return {
        "Batch": _text(_get_ci(row, "Batch")) or batch,
        "RefNo": _text(_get_ci(row, "RefNo")),
        "Description": _text(_get_ci(row, "Description")),
        "Posted": "N",
    }


def _ap_key(row: dict) -> tuple:
    return tuple(
        _text(_get_ci(row, k)).casefold() for k in ("Batch", "Vendor", "Invoice", "Voucher")
    )


def _je_key(row: dict) -> tuple:
    return tuple(_text(_get_ci(row, k)).casefold() for k in ("Batch", "RefNo"))


def _group_posted(
    rows: list[dict], key: Callable[[dict], tuple], build: Callable[[list[dict]], dict]
) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    return [build(lines) for lines in groups.values()]


def _posted_common(first: dict, lines: list[dict]) -> dict:
    return {
        "Batch": _text(_get_ci(first, "Batch")),
        "Posted": "Y",
        "Period": _period_from_scalar(_get_ci(first, "Period")),
        "PostSeq": _text(_get_ci(first, "PostSeq")),
        "Lines": len(lines),
    }


def _ap_posted(lines: list[dict]) -> dict:
    """All ledger lines of one voucher (distribution and tax) summed into Amount."""
    first = lines[0]
    out = _posted_common(first, lines)
    out.update(
        MasterPKey=_text(_get_ci(first, "MasterPKey")),
        Vendor=_text(_get_ci(first, "Vendor")),
        Invoice=_text(_get_ci(first, "Invoice")),
        Voucher=_text(_get_ci(first, "Voucher")),
        Amount=sum((to_decimal(_get_ci(line, "Amount")) for line in lines), Decimal("0")),
    )
    return out


def _je_posted(lines: list[dict]) -> dict:
    """Amount = debit total (DebitAmount when given, else the positive signed amounts)."""
    first = lines[0]
    out = _posted_common(first, lines)
    debits = Decimal("0")
    for line in lines:
        debit = _get_ci(line, "DebitAmount")
        if not _blank(debit):
            debits += to_decimal(debit)
        else:
            amount = to_decimal(_get_ci(line, "Amount"))
            debits += amount if amount > 0 else Decimal("0")
    out.update(RefNo=_text(_get_ci(first, "RefNo")), Amount=debits)
    return out


__all__ = [
    "DeltekClient",
    "DeltekSettings",
    "DeltekStats",
    "as_rows",
    "decode_post_result",
    "to_decimal",
]
