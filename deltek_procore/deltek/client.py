"""Deltek Vantagepoint REST client: sign-in, firms, projects, accounts, AP and JE batches.

Rules this client keeps (see docs/api/deltek.md), on the shared HTTP layer
(`deltek_procore.http`):
- OAuth2 password grant at `{api}/token` (`auth.DeltekPasswordGrant`, a requests
  AuthBase); the refresh token is used before the access token runs out or after a 401,
  with a password grant as the fallback; a call is sent again once after
  re-authentication, a second 401 is a `DeltekAuthError`.
- Reads are retried by urllib3's `Retry` on the session on 5xx, timeouts, dropped
  connections and 429 (honouring `Retry-After`), with bounded, jittered back-off. Writes
  are never blindly retried: only a connection that was never made is tried again (no
  byte reached Deltek); when a write was sent and its outcome is unknown the client
  raises `DeltekAmbiguousError`, and the caller looks the record up before sending again.
- Bodies are bare JSON arrays (a dict is accepted too); numbers may be strings, so rows
  are returned as Deltek sent them and `to_decimal` converts where a caller needs money.
- No secret ever reaches a log line, an exception or a repr (raw, URL-encoded, base64).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import requests
from pydantic import BaseModel, SecretStr
from urllib3.util.retry import Retry

from deltek_procore.http.paging import PageSizePaginator, PagingIgnored
from deltek_procore.http.retry import (
    READS,
    Backoff,
    RetryHooks,
    RetryingAdapter,
    never_sent,
    read_retry,
)
from deltek_procore.http.secrets import Scrubber
from deltek_procore.http.text import looks_html
from deltek_procore.http.text import to_decimal as shared_to_decimal

from .auth import DeltekPasswordGrant
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
    max_retries: int = 6


@dataclass
class DeltekStats:
    calls: int = 0  # HTTP requests answered (token requests included)
    retries: int = 0  # repeated requests: read retries, 429 waits, post-401 repeats
    tokens: int = 0  # tokens obtained (password or refresh grant)
    posts: int = 0  # writes sent (creates, PostTransFile, deletes)
    lookups: int = 0  # find_* calls


# --------------------------------------------------------------------------- helpers


def to_decimal(value: object, default: Decimal | None = Decimal("0")) -> Decimal | None:
    """Money as Decimal whether Deltek sent 1275, 1275.5, "1275.50" or "1,275.50".

    None and "" give `default`; anything else unparseable is a ValueError, because a
    silently wrong amount is worse than a stopped run (`http.text.to_decimal`).
    """
    return shared_to_decimal(value, default)


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


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class _Hooks(RetryHooks):
    """How the Deltek client waits between retries (Retry-After, capped; else jittered
    back-off) and what it counts."""

    def __init__(self, client: DeltekClient) -> None:
        super().__init__(
            Backoff(
                client.backoff_base_s,
                client.backoff_cap_s,
                max_server_wait_s=client.max_retry_after_s,
                rng=client._rng,
            ),
            client._sleep,
            client._clock,
        )
        self._client = client

    def retrying(self, cause: str, status: int | None, headers: Mapping[str, str]) -> None:
        self._client.stats.retries += 1
        self._client.stats.calls += 1
        log.info("Deltek answered %s; retrying", cause)


# --------------------------------------------------------------------------- client


class DeltekClient:
    """One Vantagepoint tenant. Thread-safe for token handling; share one per tenant."""

    page_size = 500  # hubs (firm, project, GLSummary) and landing lists
    ledger_page_size = 1000  # DataEntry masters/details and PSALedger
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
        self._rng = random.Random()
        self._scrub = Scrubber(self._secrets)
        self._auth = DeltekPasswordGrant(
            self._session,
            settings,
            base=self._base,
            host=self._host,
            timeout=self._timeout,
            scrub=self._scrub,
            clock=clock,
            counted=self._count,
        )
        self._mount()
        self._master_filters_work = {"ap": True, "je": True}

    def _mount(self) -> None:
        """urllib3 retries on the session: reads (GET, and a read sent as POST with
        dvp-postAsGet) on 429, 5xx and network errors; the token grant likewise; writes
        only when the connection was never made (nothing reached Deltek)."""
        hooks = _Hooks(self)
        attempts = self.settings.max_retries
        reads = read_retry(attempts, hooks)
        posted_reads = read_retry(attempts, hooks, methods=READS | {"POST"})
        token_url = self._auth.url

        def choose(request: requests.PreparedRequest) -> Retry:
            if str(request.url).split("?")[0] == token_url:
                return posted_reads
            if request.headers.get("dvp-postAsGet") == "true":
                return posted_reads
            return reads

        self._session.mount(self._base + "/", RetryingAdapter(choose))

    def _count(self, event: str) -> None:
        if event == "call":
            self.stats.calls += 1
        elif event == "token":
            self.stats.tokens += 1
        elif event == "reauth":
            self.stats.retries += 1

    def _secrets(self) -> list[str]:
        return [
            self.settings.password.get_secret_value(),
            self.settings.client_secret.get_secret_value(),
            *self._auth.secrets(),
        ]

    def __repr__(self) -> str:
        return (
            f"DeltekClient(api_url={self._base!r}, username={self.settings.username!r}, "
            f"database={self.settings.database!r})"
        )

    # ----------------------------------------------------------------- authentication

    def token_info(self) -> dict:
        """Sign in if needed; what a person may see about the token (never the token)."""
        token = self._auth.current()
        return {
            "token_type": token.token_type,
            "expires_in": token.expires_in,
            "obtained_at": token.obtained_at,
            "expires_at": token.expires_at,
            "refreshable": token.refresh is not None,
        }

    # ----------------------------------------------------------------------- transport

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, object]] | None = None,
        body: object = None,
        record: str | None = None,
    ) -> Any:
        """One API call (token, retries and the 401 re-send live in the session); returns
        the decoded JSON (or None). A write whose outcome is unknown (a 5xx, a timeout or
        a dropped connection after sending) is a `DeltekAmbiguousError`."""
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
        started = time.monotonic()
        self.stats.calls += 1
        try:
            resp = self._session.request(
                send_method,
                send_url,
                data=data,
                headers=headers,
                auth=self._auth,
                timeout=self._timeout,
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            what = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
            reason = f"{what} talking to {self._host}"
            if is_read or never_sent(exc):
                raise DeltekError(None, method, path, reason, record) from None
            raise DeltekAmbiguousError(None, method, path, reason, record) from None
        status = resp.status_code
        log.debug(
            "Deltek %s %s -> %s in %.0f ms",
            method,
            path,
            status,
            (time.monotonic() - started) * 1000,
        )
        if status == 401:
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
        if status >= 500:
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
        if looks_html(text, _ctype(resp)):
            raise DeltekError(
                resp.status_code,
                method,
                path,
                "expected JSON, got an HTML page: "
                + self._scrub(parse_error_body(text, "text/html")),
                record,
                "DELTEK_API_URL may point at the Vantagepoint web UI instead of its API root",
            )
        return text

    def _rows(self, method: str, path: str, **kwargs: Any) -> list[dict]:
        return as_rows(self._call(method, path, **kwargs))

    def _list(self, path: str, filters: Iterable[Filter] | None = None) -> list[dict]:
        """Every row of a list (see `http.paging.PageSizePaginator`: pageSize/page until a
        short page; q.maxrows, never limit, on DataEntry and PSALedger)."""
        ledger = path.lower().startswith(("dataentry/", "psaledger/"))
        where = filter_params(filters)
        pages = PageSizePaginator(
            fetch=lambda params: self._rows("GET", path, params=params + where),
            size=self.ledger_page_size if ledger else self.page_size,
            maxrows=ledger,
        )
        try:
            return pages.read()
        except PagingIgnored as exc:
            raise DeltekError(
                200,
                "GET",
                path,
                str(exc),
                hint="narrow the request with filters so it fits in one page",
            ) from None

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

    def ledger_lines(self, transtype: TransType, filters: list[Filter] | None = None) -> list[dict]:
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
