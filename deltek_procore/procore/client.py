"""Read-only Procore REST client for the connector (plus webhook configuration).

What it takes care of, so callers do not have to:
- a client_credentials token, renewed ahead of `expires_in` and once on a 401;
- `Procore-Company-Id` on every call (service accounts need it even on /companies);
- complete, loop-proof paging: `Link rel="next"` is followed; without it a full page
  means "ask for the next"; an empty or short page, or one that only repeats ids already
  seen (a server that ignores `page`), ends the listing; `Total` never ends it early;
  every page repeats the caller's filters; iterators are lazy;
- pacing from `X-Rate-Limit-*` (see pacing.py), 429 waits, and full-jitter exponential
  back-off on 5xx / timeouts / connection errors for GETs only;
- the payload variants documented in docs/api/procore.md (see models.py), and the
  figures Procore's shapes leave to the reader: a change-order line's cost code from the
  contract line it changes, a v1.0 invoice item's previous figures from the previous
  application (both cached, so translation stays pure).
Secrets never reach logs, exception text or reprs.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import requests
from pydantic import BaseModel, SecretStr

from .errors import ProcoreAuthError, ProcoreError, parse_error_body, redact
from .models import (
    BillingPeriod,
    ChangeOrder,
    Commitment,
    CommitmentLine,
    Company,
    ContractLineRef,
    CostCode,
    CostType,
    DirectCost,
    Project,
    Requisition,
    RequisitionItem,
    Vendor,
    to_decimal,
    to_int,
)
from .pacing import RateLimitPacer, retry_after_seconds

log = logging.getLogger(__name__)

CommitmentKind = Literal["work_order", "purchase_order"]
DateRange = tuple[datetime | date, datetime | date]
Params = list[tuple[str, Any]]

RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})
ID_CHUNK = 100  # ids per id-filtered call; keeps URLs well under proxy limits
V2_MAX_PER_PAGE = 100  # v2.0 lists page at 10 by default and at most 100
PREVIOUS_ITEMS_CACHE = 2000  # requisitions whose items are kept for their successor
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0
_COMMITMENT_TYPES = {"WorkOrderContract": "work_order", "PurchaseOrderContract": "purchase_order"}
_KINDS = ("work_order", "purchase_order")
# How each list spells an id filter (docs/api/procore.md#filters).
IdStyle = Literal["csv", "multi", "single"]


class ProcoreSettings(BaseModel):
    auth_url: str
    api_url: str
    client_id: str
    client_secret: SecretStr
    company_id: int
    connect_timeout: float = 5
    read_timeout: float = 30
    max_retries: int = 6
    per_page: int = 100
    min_remaining: int = 2


@dataclass
class ProcoreStats:
    """Counters for run metadata and tests; `waits_s` is all time spent sleeping."""

    calls: int = 0
    retries: int = 0
    throttled_429: int = 0
    tokens: int = 0
    waits_s: float = 0.0
    pages: int = 0
    repeated_pages: int = 0
    reauths: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Token:
    value: SecretStr
    expires_in: int | None
    created_at: int | None
    obtained_at: float
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type name, not a secret

    @property
    def renew_at(self) -> float:
        """Renew with 10 % (at least 60 s, at most half the lifetime) still left."""
        if self.expires_in is None:
            return float("inf")  # lifetime unknown: rely on the 401 re-auth
        lead = min(max(60.0, 0.1 * self.expires_in), 0.5 * self.expires_in)
        return self.obtained_at + self.expires_in - lead


# ---------------------------------------------------------------- small pure helpers


def iso_z(value: datetime | date) -> str:
    """ISO-8601 in UTC with a Z (naive datetimes are taken as UTC); dates stay dates."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.isoformat()


def range_filter(updated: DateRange) -> str:
    """Procore date filters must be ranges: `start...end`."""
    start, end = updated
    return f"{iso_z(start)}...{iso_z(end)}"


def chunks(ids: Iterable[int], size: int = ID_CHUNK) -> Iterator[list[int]]:
    batch: list[int] = []
    for value in ids:
        batch.append(int(value))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def query_plans(
    base: Params,
    *,
    status: str | Iterable[str] | None = None,
    ids: Iterable[int] | None = None,
    updated: DateRange | None = None,
    status_key: str = "filters[status]",
    id_style: IdStyle = "multi",
) -> Iterator[Params]:
    """One parameter list per list call: each status separately x each id chunk.

    `ids=None` means "all"; an empty id list means "none" and yields no call. The id
    filter is spelled as the endpoint documents it: `filters[id]=1,2` ("csv"),
    `filters[id][]=1&filters[id][]=2` ("multi") or one `filters[id]=1` per call ("single").
    """
    common = list(base)
    if updated is not None:
        common.append(("filters[updated_at]", range_filter(updated)))
    statuses: list[str | None]
    if status is None:
        statuses = [None]
    elif isinstance(status, str):
        statuses = [status]
    else:
        statuses = list(dict.fromkeys(status))
    size = 1 if id_style == "single" else ID_CHUNK
    id_chunks: list[list[int] | None] = [None] if ids is None else list(chunks(ids, size))
    for one_status in statuses:
        for id_chunk in id_chunks:
            params = list(common)
            if one_status is not None:
                params.append((status_key, one_status))
            if id_chunk is not None:
                params.extend(_id_filter(id_chunk, id_style))
            yield params


def _id_filter(ids: list[int], style: IdStyle) -> Params:
    if style == "multi":
        return [("filters[id][]", i) for i in ids]
    return [("filters[id]", ",".join(str(i) for i in ids))]


def parse_link_next(link: str | None) -> str | None:
    """The URL of rel="next" in an RFC 8288 Link header, if any."""
    if not link:
        return None
    for part in link.split(","):
        pieces = part.split(";")
        url = pieces[0].strip()
        rels = [p.strip() for p in pieces[1:]]
        if (
            url.startswith("<")
            and url.endswith(">")
            and any(r.replace(" ", "") in ('rel="next"', "rel=next") for r in rels)
        ):
            return url[1:-1]
    return None


def next_page(
    headers: Mapping[str, str],
    page: int,
    per_page: int,
    count: int,
    next_url: str | None = None,
) -> int | None:
    """Which page to read next, or None when this one was the last.

    A `Link` header is the authority: its rel="next" (passed as `next_url`, else parsed
    from `headers`) is followed, and a Link without one marks the last page. Without a
    Link, a full page may have a successor: ask for it (a short or empty page is the
    last). "Full" is our `per_page`, or the server's `Per-Page` when it caps lower.
    `Total` is never used to stop: a Total lower than the truth must not lose records.
    Repeated pages (a server that ignores `page`) are caught by the caller.
    """
    if count == 0:
        return None
    link = headers.get("Link")
    if link:
        url = next_url if next_url is not None else parse_link_next(link)
        if not url:
            return None
        wanted = parse_qs(urlsplit(url).query).get("page")
        target = _page_number(wanted[0]) if wanted else None
        return target if target is not None and target > page else page + 1
    capped = _page_number(headers.get("Per-Page"))
    full = min(per_page, capped) if capped else per_page
    return page + 1 if count >= full else None


def _page_number(value: Any) -> int | None:
    try:
        number = to_int(value)
    except ValueError:
        return None
    return number if number is not None and number > 0 else None


def page_items(payload: Any) -> list[dict]:
    """A page is a bare list (v1.x), {"data": [...]} (v2.0), or (a documented variant of
    the v1.0 change order list) one record object instead of a list."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        data = payload.get("data", payload)
        if isinstance(data, list):
            return data
        if isinstance(data, dict) and "id" in data:
            return [data]
    raise ValueError("expected a JSON list, an object with a 'data' list, or one record")


def _wanted_ids(params: Params) -> set[str] | None:
    """The record keys an id filter asks for (`filters[id]=1,2` or `filters[id][]=1`)."""
    ids = [
        part.strip()
        for key, value in params
        if key in ("filters[id]", "filters[id][]")
        for part in str(value).split(",")
        if part.strip()
    ]
    return {f"id:{i}" for i in ids} if ids else None


def record_key(raw: Any) -> str:
    """What makes two listed rows the same row: the id, else the whole row."""
    if isinstance(raw, Mapping) and raw.get("id") is not None:
        return f"id:{raw['id']}"
    return "row:" + json.dumps(raw, sort_keys=True, default=str)


def _has_vendor(raw: Mapping) -> bool:
    return raw.get("vendor_id") is not None or isinstance(raw.get("vendor"), dict)


# ---------------------------------------------------------------- the client


class ProcoreClient:
    """Procore API access for one company (service account)."""

    def __init__(
        self,
        settings: ProcoreSettings,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.stats = ProcoreStats()
        self._session = session or requests.Session()
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._pacer = RateLimitPacer(min_remaining=settings.min_remaining)
        self._token: _Token | None = None
        self._token_lock = threading.RLock()
        self._commitment_cache: dict[tuple[int, int], dict] = {}
        self._commitment_lines_cache: dict[tuple[int, int], dict[int, dict]] = {}
        self._requisition_items_cache: dict[tuple[int, int], list[dict]] = {}
        self._commitment_kinds: dict[tuple[int, int], CommitmentKind] = {}  # from listings

    def __repr__(self) -> str:
        return (
            f"ProcoreClient(api_url={self.settings.api_url!r}, company_id={self.settings.company_id}, "
            f"client_id={self.settings.client_id!r})"
        )

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> ProcoreClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ waiting

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self.stats.waits_s += seconds
            self._sleep(seconds)

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform(0, min(cap, base * 2**attempt))."""
        return self._rng.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * (2**attempt)))

    def _secrets(self) -> list[str]:
        values = [self.settings.client_secret.get_secret_value()]
        if self._token is not None:
            values.append(self._token.value.get_secret_value())
        return values

    def _timeout(self) -> tuple[float, float]:
        return (self.settings.connect_timeout, self.settings.read_timeout)

    # ------------------------------------------------------------ token

    def _fetch_token(self) -> _Token:
        """POST client_credentials as a form (Procore's documented request)."""
        url = self.settings.auth_url
        path = urlsplit(url).path or "/oauth/token"
        form = {
            "grant_type": "client_credentials",
            "client_id": self.settings.client_id,
            "client_secret": self.settings.client_secret.get_secret_value(),
        }
        failures = throttles = 0
        while True:
            started = self._clock()
            try:
                self.stats.calls += 1
                resp = self._session.post(
                    url, data=form, headers={"Accept": "application/json"}, timeout=self._timeout()
                )
            except (requests.Timeout, requests.ConnectionError) as exc:
                if failures < self.settings.max_retries:
                    failures += 1
                    self.stats.retries += 1
                    self._wait(self._backoff(failures))
                    continue
                raise ProcoreAuthError(
                    f"token endpoint unreachable ({type(exc).__name__})", method="POST", path=path
                ) from None
            if resp.status_code == 429 and throttles < self.settings.max_retries:
                throttles += 1
                self.stats.throttled_429 += 1
                self.stats.retries += 1
                wait = self._pacer.throttled_wait(resp.headers, self._clock())
                self._wait(wait if wait is not None else self._backoff(throttles))
                continue
            if resp.status_code in RETRYABLE_STATUSES and failures < self.settings.max_retries:
                failures += 1
                self.stats.retries += 1
                self._wait(self._backoff(failures))
                continue
            if resp.status_code >= 400:
                detail = redact(
                    parse_error_body(resp.text, resp.headers.get("Content-Type")), self._secrets()
                )
                hint = None
                if resp.status_code in (400, 401):
                    hint = (
                        "check PROCORE_CLIENT_ID / PROCORE_CLIENT_SECRET and that PROCORE_AUTH_URL "
                        "belongs to the app's environment (login.procore.com vs "
                        "login-sandbox.procore.com); credentials are not shared between them"
                    )
                raise ProcoreAuthError(
                    "could not obtain an access token",
                    status=resp.status_code,
                    method="POST",
                    path=path,
                    detail=detail,
                    hint=hint,
                )
            return self._parse_token(resp, started, path)

    def _parse_token(self, resp: requests.Response, started: float, path: str) -> _Token:
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
        self.stats.tokens += 1
        # `expires_in` is the lifetime left when issued; measure it from our own clock
        # (when we asked), so server clock skew and `created_at` cannot shorten or extend it.
        return _Token(
            value=SecretStr(str(value)),
            expires_in=to_int(body.get("expires_in")),
            created_at=to_int(body.get("created_at")),
            obtained_at=started,
            token_type=str(body.get("token_type") or "bearer"),
        )

    def _access_token(self) -> str:
        with self._token_lock:
            if self._token is None or self._clock() >= self._token.renew_at:
                self._token = self._fetch_token()
            return self._token.value.get_secret_value()

    def _drop_token(self, stale: str) -> None:
        with self._token_lock:
            if self._token is not None and self._token.value.get_secret_value() == stale:
                self._token = None

    def token_info(self) -> dict:
        """Obtain (or reuse) a token; report its lifetime, never its value."""
        self._access_token()
        token = self._token
        assert token is not None
        return {
            "token_type": token.token_type,
            "expires_in": token.expires_in,
            "created_at": token.created_at,
            "renew_at": token.renew_at,
        }

    # ------------------------------------------------------------ requests

    def _error(self, resp: requests.Response, method: str, path: str) -> ProcoreError:
        detail = redact(
            parse_error_body(resp.text, resp.headers.get("Content-Type")), self._secrets()
        )
        reason = resp.reason or "request failed"
        if resp.status_code == 401:
            return ProcoreAuthError(
                "access token rejected even after re-authenticating",
                status=401,
                method=method,
                path=path,
                detail=detail,
            )
        return ProcoreError(
            reason, status=resp.status_code, method=method, path=path, detail=detail
        )

    def request(
        self,
        method: str,
        path: str,
        params: Params | Mapping[str, Any] | None = None,
        json_body: Any = None,
    ) -> requests.Response:
        """One API call with pacing, token handling and the retry policy.

        Only GETs are retried after 5xx/timeouts (a write may have landed); 429 and 401
        are retried for any method since Procore did not process those requests.
        """
        url = path if path.startswith("http") else self.settings.api_url.rstrip("/") + path
        log_path = urlsplit(url).path
        retry_failures = method.upper() in ("GET", "HEAD")
        failures = throttles = 0
        reauthed = False
        while True:
            self._wait(self._pacer.delay(self._clock()))
            token = self._access_token()
            headers = {
                "Authorization": f"Bearer {token}",
                "Procore-Company-Id": str(self.settings.company_id),
                "Accept": "application/json",
            }
            try:
                self.stats.calls += 1
                resp = self._session.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    headers=headers,
                    timeout=self._timeout(),
                )
            except (requests.Timeout, requests.ConnectionError) as exc:
                if retry_failures and failures < self.settings.max_retries:
                    failures += 1
                    self.stats.retries += 1
                    self._wait(self._backoff(failures))
                    continue
                raise ProcoreError(
                    f"connection failed ({type(exc).__name__})", method=method, path=log_path
                ) from None
            now = self._clock()
            self._pacer.observe(resp.headers, now)
            status = resp.status_code
            if status == 401 and not reauthed:
                reauthed = True
                self.stats.reauths += 1
                self._drop_token(token)
                continue
            if status == 429:
                self.stats.throttled_429 += 1
                if throttles < self.settings.max_retries:
                    throttles += 1
                    self.stats.retries += 1
                    wait = self._pacer.throttled_wait(resp.headers, now)
                    self._wait(wait if wait is not None else self._backoff(throttles))
                    continue
            if status in RETRYABLE_STATUSES and retry_failures:
                if failures < self.settings.max_retries:
                    failures += 1
                    self.stats.retries += 1
                    after = retry_after_seconds(resp.headers.get("Retry-After"), now)
                    self._wait(after if after is not None else self._backoff(failures))
                    continue
            if status >= 400:
                raise self._error(resp, method, log_path)
            return resp

    def _json(self, resp: requests.Response, method: str, path: str) -> Any:
        try:
            return resp.json()
        except ValueError:
            raise ProcoreError(
                "response is not JSON",
                status=resp.status_code,
                method=method,
                path=urlsplit(path).path,
                hint="check PROCORE_API_URL points at the Procore API",
            ) from None

    def get_json(self, path: str, params: Params | Mapping[str, Any] | None = None) -> Any:
        return self._json(self.request("GET", path, params), "GET", path)

    def paginate(
        self, path: str, params: Params | None = None, *, per_page: int | None = None
    ) -> Iterator[dict]:
        """Yield every record of a listing once, page by page, with the same filters.

        Ends on an empty or short page (see `next_page`) or on a page that only repeats
        rows already seen: an endpoint that ignores paging costs one call when it answers
        with fewer than `per_page` rows, and one more (dropped) when it fills a page. With
        an id filter, only the ids asked for are yielded, and the read ends once all came.
        """
        size = per_page or self.settings.per_page
        base = [(k, v) for k, v in (params or []) if k not in ("page", "per_page")]
        seen: set[str] = set()
        wanted = _wanted_ids(base)
        page = 1
        while True:
            resp = self.request("GET", path, base + [("page", page), ("per_page", size)])
            self.stats.pages += 1
            try:
                items = page_items(self._json(resp, "GET", path))
            except ValueError as exc:
                raise ProcoreError(
                    str(exc), status=resp.status_code, method="GET", path=urlsplit(path).path
                ) from None
            fresh = []
            for item in items:
                key = record_key(item)
                if key not in seen:
                    seen.add(key)
                    fresh.append(item)
            if items and not fresh:
                self.stats.repeated_pages += 1
                return
            # An id filter the server ignored brings other records: only the asked ones count.
            yield from (
                x
                for x in fresh
                if wanted is None
                or not isinstance(x, Mapping)
                or x.get("id") is None
                or record_key(x) in wanted
            )
            if wanted is not None and wanted <= seen:
                return  # every id asked for has come: an id filter bounds the listing
            link = resp.links.get("next", {}).get("url") if resp.headers.get("Link") else None
            following = next_page(resp.headers, page, size, len(items), next_url=link)
            if following is None:
                return
            page = following

    def _unique(self, records: Iterable[dict]) -> Iterator[dict]:
        """Drop repeats (a record moving between pages or matching two status calls)."""
        seen: set[int] = set()
        for raw in records:
            key = to_int(raw.get("id"))
            if key is not None:
                if key in seen:
                    continue
                seen.add(key)
            yield raw

    def _each(
        self, path: str, plans: Iterable[Params], per_page: int | None = None
    ) -> Iterator[dict]:
        for params in plans:
            yield from self.paginate(path, params, per_page=per_page)

    # ------------------------------------------------------------ reference data

    def companies(self) -> list[Company]:
        return [Company.model_validate(r) for r in self.paginate("/rest/v1.0/companies")]

    def projects(self, *, by_status: str | None = None) -> Iterator[Project]:
        """Projects the service account may see (`by_status`: All|Active|Inactive)."""
        params: Params = [("company_id", self.settings.company_id)]
        if by_status:
            params.append(("filters[by_status]", by_status))
        for raw in self._unique(self.paginate("/rest/v1.0/projects", params)):
            yield Project.model_validate(raw)

    def vendors(
        self, ids: list[int] | None = None, updated: DateRange | None = None
    ) -> Iterator[Vendor]:
        plans = query_plans([("company_id", self.settings.company_id)], ids=ids, updated=updated)
        for raw in self._unique(self._each("/rest/v1.0/vendors", plans)):
            yield Vendor.model_validate(raw)

    def cost_codes(self, project_id: int) -> Iterator[CostCode]:
        for raw in self._unique(
            self.paginate("/rest/v1.0/cost_codes", [("project_id", project_id)])
        ):
            yield CostCode.model_validate({"project_id": project_id, **raw})

    def cost_types(self) -> Iterator[CostType]:
        params: Params = [("company_id", self.settings.company_id)]
        for raw in self._unique(self.paginate("/rest/v1.0/line_item_types", params)):
            yield CostType.model_validate(raw)

    def billing_periods(self, project_id: int) -> Iterator[BillingPeriod]:
        path = f"/rest/v1.0/projects/{int(project_id)}/billing_periods"
        for raw in self._unique(self.paginate(path)):
            yield BillingPeriod.model_validate(raw)

    # ------------------------------------------------------------ requisitions

    def requisitions(
        self,
        project_id: int,
        *,
        status: str | list[str] | None = None,
        ids: list[int] | None = None,
        updated: DateRange | None = None,
        resolve_cost_types: bool = True,
    ) -> Iterator[Requisition]:
        """Subcontractor invoices (v1.1 with items); each status is its own call.

        A v1.0-shaped record (no `items`) gets its items from the v1.0 item endpoints
        and its vendor from its commitment. v1.0 items lack the figures of the previous
        application that this period's amounts need; they are copied from the previous
        application's item for the same contract line (`previous_requisition_id`, cached).
        Items carry no cost type in Procore; with `resolve_cost_types` it (and a missing
        cost code) is taken from the commitment line the item bills (`line_item_id`), one
        cached call per commitment.
        """
        base: Params = [("project_id", int(project_id)), ("view", "items")]
        plans = query_plans(base, status=status, ids=ids, updated=updated, id_style="csv")
        for raw in self._unique(self._each("/rest/v1.1/requisitions", plans)):
            record = {"project_id": int(project_id), **raw}
            if raw.get("items") is None:
                record["items"] = self._requisition_items_v10(project_id, to_int(raw["id"]))
            record["items"] = self._with_previous_figures(project_id, record)
            if not _has_vendor(record) and record.get("commitment_id") is not None:
                vendor_id, vendor_name = self._commitment_vendor(project_id, record)
                record["vendor_id"] = vendor_id
                record.setdefault("vendor_name", vendor_name)
            if resolve_cost_types and record.get("commitment_id") is not None:
                record["items"] = self._with_cost_types(project_id, record)
            yield Requisition.model_validate(record)

    def _requisition_items_v10(self, project_id: int, requisition_id: int | None) -> list[dict]:
        """v1.0 items: contract items plus change-order items (404 = none), cached."""
        key = (int(project_id), int(requisition_id or 0))
        cached = self._requisition_items_cache.get(key)
        if cached is not None:
            return [dict(i) for i in cached]
        items: list[dict] = []
        params: Params = [("project_id", int(project_id))]
        for suffix in ("contract_items", "change_order_items"):
            path = f"/rest/v1.0/requisitions/{requisition_id}/{suffix}"
            try:
                items.extend(self.paginate(path, params))
            except ProcoreError as exc:
                if exc.status != 404 or suffix == "contract_items":
                    raise
        self._remember_items(key, items)
        return [dict(i) for i in items]

    def _remember_items(self, key: tuple[int, int], items: list[dict]) -> None:
        if len(self._requisition_items_cache) >= PREVIOUS_ITEMS_CACHE:
            self._requisition_items_cache.pop(next(iter(self._requisition_items_cache)))
        self._requisition_items_cache[key] = [dict(i) for i in items]

    def _with_previous_figures(self, project_id: int, record: Mapping) -> list[dict]:
        """Fill the previous application's figures into items that lack them (v1.0).

        For each such item: stored materials, total to date and stored-materials
        retainage of the previous application's item on the same contract line. The
        first application (no previous_requisition_id, and either a null one or
        application number 1) had nothing before. An item still lacking them is
        quarantined by translation, not guessed here.
        """
        items = [dict(i) for i in record.get("items") or []]
        missing = [i for i in items if _lacks_previous(i)]
        if not missing:
            return items
        previous_id = to_int(record.get("previous_requisition_id"))
        first = previous_id is None and (
            "previous_requisition_id" in record or _is_number_one(record.get("number"))
        )
        previous: dict[tuple[Any, Any], dict] = {}
        if previous_id is not None:
            for prev in self._requisition_items_v10(project_id, previous_id):
                previous.setdefault(_item_line_key(prev), prev)
        for item in missing:
            before = previous.get(_item_line_key(item))
            if before is not None:
                _copy_previous(item, RequisitionItem.model_validate(before))
                item["previous_figures_from"] = previous_id
            elif (first or previous_id is not None) and _nothing_before(item):
                # a line the previous application did not bill (or the first application)
                _copy_previous(item, None)
                item["previous_figures_from"] = previous_id
        return items

    def _commitment_raw(self, project_id: int, commitment_id: int, type_name: Any) -> dict:
        key = (int(project_id), int(commitment_id))
        if key not in self._commitment_cache:
            kind = _COMMITMENT_TYPES.get(str(type_name))
            kinds = [kind] if kind else list(_KINDS)
            for index, one in enumerate(kinds):
                path = f"/rest/v1.0/{one}_contracts/{int(commitment_id)}"
                try:
                    raw = self.get_json(path, [("project_id", int(project_id))])
                except ProcoreError as exc:
                    if exc.status == 404 and index + 1 < len(kinds):
                        continue
                    raise
                self._commitment_cache[key] = {"kind": one, **raw}
                break
        return self._commitment_cache[key]

    def _commitment_vendor(self, project_id: int, record: Mapping) -> tuple[Any, Any]:
        raw = self._commitment_raw(
            project_id, to_int(record["commitment_id"]) or 0, record.get("commitment_type")
        )
        model = Commitment.model_validate(raw)
        return model.vendor_id, model.vendor_name

    def contract_lines(
        self, project_id: int, contract_id: int, kind: CommitmentKind | None = None
    ) -> dict[int, dict]:
        """A contract's line items by id: one call per contract, cached for the client's
        life. Without `kind` (given, or seen when this client listed the contract), the
        work order path is tried first, then the purchase order one."""
        key = (int(project_id), int(contract_id))
        if key not in self._commitment_lines_cache:
            kind = kind or self._commitment_kinds.get(key)
            kinds = [kind] if kind else list(_KINDS)
            for index, one in enumerate(kinds):
                path = f"/rest/v1.0/{one}_contracts/{int(contract_id)}/line_items"
                try:
                    lines = list(self.paginate(path, [("project_id", int(project_id))]))
                except ProcoreError as exc:
                    if exc.status == 404 and index + 1 < len(kinds):
                        continue
                    raise
                self.remember_contract_lines(project_id, contract_id, lines)
                break
        return self._commitment_lines_cache[key]

    def remember_contract_lines(
        self, project_id: int, contract_id: int, lines: Iterable[Mapping]
    ) -> None:
        """Lines already known (e.g. staged with the contract): no call needed for them."""
        self._commitment_lines_cache[(int(project_id), int(contract_id))] = {
            to_int(x["id"]) or 0: dict(x) for x in lines
        }

    def _commitment_lines(
        self, project_id: int, commitment_id: int, type_name: Any
    ) -> dict[int, dict]:
        return self.contract_lines(project_id, commitment_id, _COMMITMENT_TYPES.get(str(type_name)))

    def _with_cost_types(self, project_id: int, record: Mapping) -> list[dict]:
        items = [dict(i) for i in record.get("items") or []]
        missing = [
            i
            for i in items
            if i.get("line_item_type_id") is None
            and not isinstance(i.get("line_item_type"), dict)
            and i.get("line_item_id") is not None
        ]
        if not missing:
            return items
        lines = self._commitment_lines(
            project_id, to_int(record["commitment_id"]) or 0, record.get("commitment_type")
        )
        for item in missing:
            line = lines.get(to_int(item["line_item_id"]) or 0)
            if line is None:
                continue
            model = CommitmentLine.model_validate(line)
            item["line_item_type_id"] = model.line_item_type_id
            if item.get("cost_code_id") is None and not isinstance(item.get("cost_code"), dict):
                item["cost_code_id"] = model.cost_code_id
        return items

    # ------------------------------------------------------------ direct costs

    def direct_costs(
        self,
        project_id: int,
        *,
        ids: list[int] | None = None,
        updated: DateRange | None = None,
        with_line_items: bool = True,
    ) -> Iterator[DirectCost]:
        """Direct costs with their lines: one list call per page of costs plus one bulk
        line-item call per 100 costs (never one show call per cost)."""
        path = f"/rest/v1.1/projects/{int(project_id)}/direct_costs"
        plans = query_plans([], ids=ids, updated=updated, id_style="csv")
        batch: list[dict] = []
        for raw in self._unique(self._each(path, plans)):
            batch.append(raw)
            if len(batch) >= self.settings.per_page:
                yield from self._direct_cost_batch(project_id, batch, with_line_items)
                batch = []
        if batch:
            yield from self._direct_cost_batch(project_id, batch, with_line_items)

    def _direct_cost_batch(
        self, project_id: int, batch: list[dict], with_lines: bool
    ) -> Iterator[DirectCost]:
        lines: dict[int, list[dict]] = {}
        if with_lines:
            need = [to_int(r["id"]) or 0 for r in batch if r.get("line_items") is None]
            lines = self._direct_cost_lines(project_id, need)
        for raw in batch:
            record = {"project_id": int(project_id), **raw}
            if with_lines and raw.get("line_items") is None:
                record["line_items"] = lines.get(to_int(raw["id"]) or 0, [])
            yield DirectCost.model_validate(record)

    def _direct_cost_lines(self, project_id: int, cost_ids: list[int]) -> dict[int, list[dict]]:
        """Bulk-read lines for these costs and group them by cost.

        Lines are attributed by `direct_cost_id` (or `holder`/`direct_cost` objects) and
        filtered client-side, so a server that ignores the filter costs calls, not
        correctness. If a line cannot be attributed, that chunk falls back to the
        per-cost line-item endpoint.
        """
        grouped: dict[int, list[dict]] = {i: [] for i in cost_ids}
        path = f"/rest/v1.0/projects/{int(project_id)}/direct_costs/line_items"
        for chunk in chunks(cost_ids):
            params: Params = [("filters[direct_cost_id][]", i) for i in chunk]
            wanted = set(chunk)
            unattributed = False
            found: dict[int, list[dict]] = {i: [] for i in chunk}
            for line in self._unique(self.paginate(path, params)):
                owner = _line_owner(line)
                if owner is None:
                    unattributed = True
                    break
                if owner in wanted:
                    found[owner].append(line)
            if unattributed:
                for cost_id in chunk:
                    one = f"/rest/v1.0/projects/{int(project_id)}/direct_costs/{cost_id}/line_items"
                    found[cost_id] = list(self.paginate(one))
            grouped.update(found)
        return grouped

    # ------------------------------------------------------------ commitments

    def commitments(
        self,
        project_id: int,
        kind: CommitmentKind,
        *,
        status: str | list[str] | None = None,
        ids: list[int] | None = None,
        updated: DateRange | None = None,
        with_line_items: bool | Callable[[dict], bool] = True,
    ) -> Iterator[Commitment]:
        """Work order (subcontract) or purchase order contracts; status as Procore spells
        it (Title Case, e.g. "Approved").

        Line items cost one call per contract (Procore has no bulk endpoint for them), so
        `with_line_items` may be a predicate on the raw record: lines are read only where
        it says so (e.g. only for contracts that can post)."""
        if kind not in ("work_order", "purchase_order"):
            raise ValueError("kind must be 'work_order' or 'purchase_order'")
        path = f"/rest/v1.0/{kind}_contracts"
        base: Params = [("project_id", int(project_id))]
        plans = query_plans(base, status=status, ids=ids, updated=updated, id_style="csv")
        for raw in self._unique(self._each(path, plans)):
            record = {"project_id": int(project_id), **raw, "kind": kind}
            self._commitment_kinds[(int(project_id), to_int(raw["id"]) or 0)] = kind
            if _wants_lines(with_line_items, raw):
                lines_path = f"{path}/{to_int(raw['id'])}/line_items"
                record["line_items"] = list(self.paginate(lines_path, base))
            yield Commitment.model_validate(record)

    def change_orders(
        self,
        project_id: int,
        *,
        status: str | list[str] | None = None,
        ids: list[int] | None = None,
        updated: DateRange | None = None,
        with_line_items: bool | Callable[[dict], bool] = True,
        staged_contract: Callable[[int], Mapping | None] | None = None,
    ) -> Iterator[ChangeOrder]:
        """Commitment change orders (v1.0 list, which ignores paging); lines from v2.0.

        A CO line carries no cost code or cost type; each line gets `contract_line`, the
        contract line it changes (`commitment_line_item_id`), from the contract's line
        items: those staged with the contract (`staged_contract(contract_id)` returns the
        staged payload, or None), else one cached call per contract.
        """
        path = f"/rest/v1.0/projects/{int(project_id)}/commitment_change_orders"
        plans = query_plans([], status=status, ids=ids, updated=updated, id_style="single")
        company = self.settings.company_id
        for raw in self._unique(self._each(path, plans)):
            record = {"project_id": int(project_id), **raw}
            if _wants_lines(with_line_items, raw):
                lines_path = (
                    f"/rest/v2.0/companies/{company}/projects/{int(project_id)}"
                    f"/commitment_change_orders/{to_int(raw['id'])}/line_items"
                )
                record["line_items"] = list(self.paginate(lines_path, per_page=V2_MAX_PER_PAGE))
            if record.get("line_items"):
                record["line_items"] = self._with_contract_lines(
                    project_id, record, staged_contract
                )
            yield ChangeOrder.model_validate(record)

    def _with_contract_lines(
        self,
        project_id: int,
        record: Mapping,
        staged_contract: Callable[[int], Mapping | None] | None,
    ) -> list[dict]:
        lines = [dict(x) for x in record.get("line_items") or []]
        contract_id = to_int(ChangeOrder.model_validate({**record, "line_items": []}).contract_id)
        wanted = [x for x in lines if to_int(x.get("commitment_line_item_id")) is not None]
        if contract_id is None or not wanted:
            return lines
        known = self._commitment_lines_cache.get((int(project_id), contract_id))
        if known is None:
            staged = staged_contract(contract_id) if staged_contract else None
            if staged and staged.get("line_items"):
                self.remember_contract_lines(project_id, contract_id, staged["line_items"])
                known = self._commitment_lines_cache[(int(project_id), contract_id)]
            else:
                kind = staged.get("kind") if staged else None
                known = self.contract_lines(
                    project_id, contract_id, kind if kind in _KINDS else None
                )
        for line in wanted:
            found = known.get(to_int(line["commitment_line_item_id"]) or 0)
            line["contract_line"] = (
                ContractLineRef.of(CommitmentLine.model_validate(found)).model_dump(mode="json")
                if found is not None
                else None
            )
        return lines

    # ------------------------------------------------------------ webhooks

    def webhook_hooks(self, namespace: str | None = None) -> list[dict]:
        params: Params = [("company_id", self.settings.company_id)]
        if namespace:
            params.append(("namespace", namespace))
        return list(self.paginate("/rest/v1.0/webhooks/hooks", params))

    def create_hook(
        self,
        namespace: str,
        destination_url: str,
        authorization: str | SecretStr,
        api_version: str = "v2",
    ) -> dict:
        """Create a company-level hook; Procore sends `authorization` as the Authorization
        header of every delivery (its only authentication)."""
        secret = (
            authorization.get_secret_value()
            if isinstance(authorization, SecretStr)
            else authorization
        )
        body = {
            "company_id": self.settings.company_id,
            "hook": {
                "api_version": api_version,
                "namespace": namespace,
                "destination_url": destination_url,
                "destination_headers": {"Authorization": secret},
            },
        }
        path = "/rest/v1.0/webhooks/hooks"
        try:
            return self._json(self.request("POST", path, json_body=body), "POST", path)
        except ProcoreError as exc:  # a validation error may echo the header back
            exc.detail = redact(exc.detail, [secret])
            raise

    def create_trigger(
        self, hook_id: int, resource_name: str, event_type: str, api_version: str = "v2"
    ) -> dict:
        body = {
            "company_id": self.settings.company_id,
            "api_version": api_version,
            "trigger": {"resource_name": resource_name, "event_type": event_type},
        }
        path = f"/rest/v1.0/webhooks/hooks/{int(hook_id)}/triggers"
        return self._json(self.request("POST", path, json_body=body), "POST", path)

    def webhook_triggers(self, hook_id: int) -> list[dict]:
        path = f"/rest/v1.0/webhooks/hooks/{int(hook_id)}/triggers"
        return list(self.paginate(path, [("company_id", self.settings.company_id)]))

    def deliveries(self, hook_id: int, status: str = "any", page_size: int = 100) -> list[dict]:
        """Delivery history, following the `page_start` cursor: the `event_id` of the last
        delivery of the page (deliveries have no `id` of their own)."""
        path = f"/rest/v1.0/webhooks/hooks/{int(hook_id)}/deliveries"
        out: list[dict] = []
        cursor: Any = None
        while True:
            params: Params = [
                ("company_id", self.settings.company_id),
                ("filters[status]", status),
                ("page_size", page_size),
            ]
            if cursor is not None:
                params.append(("page_start", cursor))
            items = page_items(self.get_json(path, params))
            self.stats.pages += 1
            out.extend(items)
            if len(items) < page_size:
                return out
            last = items[-1]
            following = last.get("event_id")
            if following is None or following == cursor:
                return out
            cursor = following


def _line_owner(line: Mapping) -> int | None:
    """Which direct cost a bulk-listed line belongs to."""
    owner = to_int(line.get("direct_cost_id"))
    if owner is not None:
        return owner
    for key in ("direct_cost", "holder"):
        holder = line.get(key)
        if isinstance(holder, dict) and holder.get("id") is not None:
            return to_int(holder["id"])
    return None


def _wants_lines(with_line_items: bool | Callable[[dict], bool], raw: dict) -> bool:
    """Fetch a record's line items? Not when they came inline or the caller says no."""
    if raw.get("line_items") is not None:
        return False
    return with_line_items(raw) if callable(with_line_items) else bool(with_line_items)


# ---------------------------------------------------------------- requisition item helpers

_PREVIOUS_FIGURES = (
    # (this item's field, the previous application item's field)
    ("materials_presently_stored_from_previous_progress", "materials_presently_stored"),
    ("total_completed_and_stored_to_date_from_previous", "total_completed_and_stored_to_date"),
    (
        "materials_stored_retainage_from_previous_application",
        "materials_stored_retainage_currently_retained",
    ),
)


def _lacks_previous(raw: Mapping) -> bool:
    return RequisitionItem.model_validate(raw).previous_figures_missing()


def _item_line_key(raw: Mapping) -> tuple[Any, Any]:
    """Items of two applications match on the contract (or change order) line they bill."""
    line = to_int(raw.get("line_item_id"))
    if line is None:
        return ("item", to_int(raw.get("id")))
    return (str(raw.get("item_type") or "contract_item"), line)


def _is_number_one(value: Any) -> bool:
    try:
        return to_int(value) == 1
    except ValueError:
        return False


def _nothing_before(raw: Mapping) -> bool:
    """No work billed on this line before: it had no previous figures to carry."""
    previous_work = to_decimal(raw.get("work_completed_from_previous_application"))
    return previous_work is None or previous_work == 0


def _copy_previous(item: dict, before: RequisitionItem | None) -> None:
    for mine, theirs in _PREVIOUS_FIGURES:
        if item.get(mine) is not None:
            continue
        value = Decimal(0) if before is None else getattr(before, theirs)
        if value is not None:
            item[mine] = str(value)
