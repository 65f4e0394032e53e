"""Read-only Procore REST client for the connector (plus webhook configuration).

What it takes care of, so callers do not have to (on the shared HTTP layer,
`deltek_procore.http`):
- a client_credentials token (`auth.ProcoreClientCredentials`, a requests AuthBase),
  renewed ahead of `expires_in` and once on a 401;
- `Procore-Company-Id` on every call (service accounts need it even on /companies);
- complete, loop-proof paging (`http.paging.LinkPaginator`): `Link rel="next"` is
  followed; without it a full page means "ask for the next"; an empty or short page, or
  one that only repeats ids already seen (a server that ignores `page`), ends the
  listing; `Total` never ends it early; every page repeats the caller's filters;
  iterators are lazy;
- pacing from `X-Rate-Limit-*` (see pacing.py) before every request and every retry;
  retries by urllib3's `Retry` on the session: 429 for any method (Procore did not
  process it), waiting for Retry-After or the rate-limit reset; 5xx, timeouts and
  dropped connections for GETs only, with bounded, jittered back-off;
- the payload variants documented in docs/api/procore.md (see models.py), and the
  figures Procore's shapes leave to the reader: a change-order line's cost code from the
  contract line it changes, a v1.0 invoice item's previous figures from the previous
  application (both cached, so translation stays pure);
- a record whose detail read (line items, items, its contract) answers 404 is yielded
  marked `detail_gone` ("gone from Procore (404 on ...)") instead of ending the listing:
  translation quarantines it, every other record is read;
- detail reads overlap (`detail_concurrency`, default 4; 1 reads one at a time): Procore
  has no bulk read for line items, so the calls are the minimum and only their latency
  can be shared. Records are yielded in the listing's order with the same calls (each
  cache entry is filled by one call, see parallel.py), at most a page of records ahead;
  token, pacing, retries, counters and the connection pool are shared safely.
Secrets never reach logs, exception text or reprs.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import requests
from pydantic import BaseModel, Field, SecretStr

from deltek_procore.http.paging import LinkPaginator, Page, wanted_ids
from deltek_procore.http.retry import (
    READS,
    Backoff,
    RetryHooks,
    RetryingAdapter,
    read_retry,
)
from deltek_procore.http.secrets import scrub
from deltek_procore.http.text import parse_error_body, retry_after_seconds

from .auth import ProcoreClientCredentials
from .errors import DETAIL_GONE, ProcoreAuthError, ProcoreError, gone_reason
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
from .pacing import RateLimitPacer
from .parallel import KeyedLocks, ordered_map

log = logging.getLogger(__name__)

CommitmentKind = Literal["work_order", "purchase_order"]
DateRange = tuple[datetime | date, datetime | date]
Params = list[tuple[str, Any]]
T = TypeVar("T")

ID_CHUNK = 100  # ids per id-filtered call; keeps URLs well under proxy limits
V2_MAX_PER_PAGE = 100  # v2.0 lists page at 10 by default and at most 100
MAX_DETAIL_CONCURRENCY = 16  # Procore's spike limit makes more pointless
DIRECT_COST_BATCHES_AHEAD = 2  # a batch's bulk line read overlaps the next page's listing
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
    # detail reads (line items) in flight at once; 1 = one after the other
    detail_concurrency: int = Field(4, ge=1, le=MAX_DETAIL_CONCURRENCY)


@dataclass
class ProcoreStats:
    """Counters for run metadata and tests; `waits_s` is all time spent sleeping (summed
    over the threads reading details, so it may exceed the wall time they took).
    Threads count through `add` (a `+=` could lose a count)."""

    calls: int = 0
    retries: int = 0
    throttled_429: int = 0
    tokens: int = 0
    waits_s: float = 0.0
    pages: int = 0
    repeated_pages: int = 0
    reauths: int = 0
    gone: int = 0  # records whose detail read answered 404
    # whole listings whose rows read were compared with Procore's Total, and those that differed
    counted_listings: int = 0
    count_mismatches: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def add(self, **counts: float) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict:
        return asdict(self)


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


def _has_vendor(raw: Mapping) -> bool:
    return raw.get("vendor_id") is not None or isinstance(raw.get("vendor"), dict)


def _detail(record: dict, default: T, read: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """One detail read of a listed record, `read(*args, **kwargs)`; a 404 marks the record
    gone instead of ending the whole listing (the first 404 is the reason kept)."""
    try:
        return read(*args, **kwargs)
    except ProcoreError as exc:
        if exc.status != 404 or isinstance(exc, ProcoreAuthError):
            raise
        record.setdefault(DETAIL_GONE, gone_reason(exc))
        return default


class _Hooks(RetryHooks):
    """How the Procore client waits between retries: Retry-After, else (on a 429) the
    rate-limit reset, else back-off; never less than pacing asks. Counts every retry."""

    def __init__(self, client: ProcoreClient) -> None:
        super().__init__(
            Backoff(BACKOFF_BASE_S, BACKOFF_CAP_S, rng=client._rng), client._wait, client._clock
        )
        self._client = client

    def server_wait(self, status: int | None, headers: Mapping[str, str]) -> float | None:
        now = self.clock()
        after = retry_after_seconds(headers.get("Retry-After"), now)
        if after is not None or status != 429:
            return after
        return self._client._pacer.throttled_wait(headers, now)

    def pace(self) -> float:
        return self._client._pacer.delay(self.clock(), mine=1)  # the retried call is in flight

    def seen(self, status: int | None, headers: Mapping[str, str]) -> None:
        self._client._pacer.observe(headers, self.clock())
        if status == 429:
            self._client.stats.add(throttled_429=1)

    def retrying(self, cause: str, status: int | None, headers: Mapping[str, str]) -> None:
        stats = self._client.stats
        stats.add(retries=1, calls=1)
        log.info("Procore answered %s; retrying (retry %d of this client)", cause, stats.retries)


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
        self._auth = ProcoreClientCredentials(
            self._session,
            url=settings.auth_url,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            timeout=self._timeout(),
            clock=clock,
            counted=self._count,
        )
        self._mount()
        self._commitment_cache: dict[tuple[int, int], dict] = {}
        self._commitment_lines_cache: dict[tuple[int, int], dict[int, dict]] = {}
        self._requisition_items_cache: dict[tuple[int, int], list[dict]] = {}
        self._requisition_items_lock = threading.Lock()  # its bounded eviction
        self._commitment_kinds: dict[tuple[int, int], CommitmentKind] = {}  # from listings
        self._filling = KeyedLocks()  # one call per cache entry, whichever thread asks first

    def _mount(self) -> None:
        """urllib3 retries on the session: the API (reads; 429 for any method) and the
        token endpoint (a client-credentials grant may be asked for again)."""
        hooks = _Hooks(self)
        attempts = self.settings.max_retries
        api = read_retry(attempts, hooks, writes_retry_on={429})
        token = read_retry(attempts, hooks, methods=READS | {"POST"})
        token_url = self.settings.auth_url.split("?")[0]
        # every detail worker and the listing thread may hold a connection at once
        pool = max(requests.adapters.DEFAULT_POOLSIZE, self.settings.detail_concurrency + 2)
        adapter = RetryingAdapter(
            lambda request: token if str(request.url).split("?")[0] == token_url else api,
            pool_maxsize=pool,
        )
        for prefix in (self.settings.api_url.rstrip("/") + "/", token_url):
            self._session.mount(prefix, adapter)

    def _count(self, event: str) -> None:
        if event == "call":
            self.stats.add(calls=1)
        elif event == "token":
            self.stats.add(tokens=1)
        elif event == "reauth":
            self.stats.add(reauths=1)

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
            self.stats.add(waits_s=seconds)
            self._sleep(seconds)

    def _secrets(self) -> list[str]:
        return self._auth.secrets()

    def _timeout(self) -> tuple[float, float]:
        return (self.settings.connect_timeout, self.settings.read_timeout)

    # ------------------------------------------------------------ token

    def token_info(self) -> dict:
        """Obtain (or reuse) a token; report its lifetime, never its value."""
        token = self._auth.current()
        return {
            "token_type": token.token_type,
            "expires_in": None if token.expires_in is None else int(token.expires_in),
            "created_at": token.created_at,
            "renew_at": self._auth.renew_at(token),
        }

    # ------------------------------------------------------------ requests

    def _error(self, resp: requests.Response, method: str, path: str) -> ProcoreError:
        detail = scrub(
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
        """One API call: pacing first, then the session (token, retries, 401 re-send).

        Only reads are retried after 5xx/timeouts (a write may have landed); 429 and 401
        are retried for any method since Procore did not process those requests.
        """
        url = path if path.startswith("http") else self.settings.api_url.rstrip("/") + path
        log_path = urlsplit(url).path
        headers = {
            "Procore-Company-Id": str(self.settings.company_id),
            "Accept": "application/json",
        }
        answered: Mapping[str, str] | None = None
        try:
            # counted in flight from here, so calls sent together never share a last slot
            self._wait(self._pacer.reserve(self._clock()))
            self.stats.add(calls=1)
            resp = self._session.request(
                method,
                url,
                params=params,
                json=json_body,
                headers=headers,
                auth=self._auth,
                timeout=self._timeout(),
            )
            answered = resp.headers
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise ProcoreError(
                f"connection failed ({type(exc).__name__})", method=method, path=log_path
            ) from None
        finally:
            self._pacer.release(answered, self._clock())
        if resp.status_code >= 400:
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

    def _page(self, path: str, base: Params, number: int, size: int) -> Page:
        resp = self.request("GET", path, base + [("page", number), ("per_page", size)])
        self.stats.add(pages=1)
        try:
            items = page_items(self._json(resp, "GET", path))
        except ValueError as exc:
            raise ProcoreError(
                str(exc), status=resp.status_code, method="GET", path=urlsplit(path).path
            ) from None
        link = bool(resp.headers.get("Link"))
        following = resp.links.get("next", {}).get("url") if link else None
        return Page(items, resp.headers, next_url=following, has_link=link)

    def paginate(
        self, path: str, params: Params | None = None, *, per_page: int | None = None
    ) -> Iterator[dict]:
        """Yield every record of a listing once, page by page, with the same filters
        (see `http.paging.LinkPaginator`): an endpoint that ignores paging costs one call
        when it answers with fewer than `per_page` rows, and one more (dropped) when it
        fills a page. With an id filter, only the ids asked for are yielded."""
        base = [(k, v) for k, v in (params or []) if k not in ("page", "per_page")]

        def repeated() -> None:
            self.stats.add(repeated_pages=1)

        def counted(read: int, total: int | None) -> None:
            if total is None:
                return  # a listing without paging headers (the v1.0 change order list)
            self.stats.add(counted_listings=1)
            if read != total:
                where = urlsplit(path).path
                filters = {k: str(v) for k, v in base if k.startswith("filters")}
                self.stats.count_mismatches.append(
                    {"path": where, "filters": filters, "read": read, "total": total}
                )

        yield from LinkPaginator(
            fetch=lambda number, size: self._page(path, base, number, size),
            per_page=per_page or self.settings.per_page,
            wanted=wanted_ids(base),
            repeated=repeated,
            counted=counted,
        )

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

    def _all(self, path: str, params: Params | None = None, per_page: int | None = None) -> list:
        return list(self.paginate(path, params, per_page=per_page))

    def _gone(self, record: dict) -> dict:
        if DETAIL_GONE in record:
            self.stats.add(gone=1)
            log.warning(
                "Procore record %s: %s; it is quarantined, the listing goes on",
                record.get("id"),
                record[DETAIL_GONE],
            )
        return record

    def _details(
        self,
        records: Iterable[Any],
        read: Callable[[Any], dict],
        needs: Callable[[Any], bool] | None = None,
    ) -> Iterator[dict]:
        """`read(record)` (its detail reads) for each listed record, `detail_concurrency` at
        a time, in the listing's order, at most a page ahead; `needs` says which records
        have any detail to read."""
        workers = self.settings.detail_concurrency
        window = max(workers, self.settings.per_page)
        return ordered_map(records, read, workers=workers, window=window, needs=needs)

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
        listed = (
            {"project_id": int(project_id), **raw}
            for raw in self._unique(self._each("/rest/v1.1/requisitions", plans))
        )

        def details(record: dict) -> dict:
            if record.get("items") is None:
                record["items"] = _detail(
                    record, [], self._requisition_items_v10, project_id, to_int(record["id"])
                )
            record["items"] = _detail(
                record, record["items"], self._with_previous_figures, project_id, record
            )
            if not _has_vendor(record) and record.get("commitment_id") is not None:
                vendor_id, vendor_name = _detail(
                    record, (None, None), self._commitment_vendor, project_id, record
                )
                record["vendor_id"] = vendor_id
                record.setdefault("vendor_name", vendor_name)
            if resolve_cost_types and record.get("commitment_id") is not None:
                record["items"] = _detail(
                    record, record["items"], self._with_cost_types, project_id, record
                )
            return record

        for record in self._details(listed, details):
            yield Requisition.model_validate(self._gone(record))

    def _requisition_items_v10(self, project_id: int, requisition_id: int | None) -> list[dict]:
        """v1.0 items: contract items plus change-order items (404 = none), cached."""
        key = (int(project_id), int(requisition_id or 0))
        with self._filling.hold(("items", *key)):
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
        with self._requisition_items_lock:
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
        with self._filling.hold(("commitment", *key)):
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
        with self._filling.hold(("lines", *key)):
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
        line-item call per 100 costs (never one show call per cost). A batch's lines are
        read while the next page is listed (with `detail_concurrency` above 1)."""
        path = f"/rest/v1.1/projects/{int(project_id)}/direct_costs"
        plans = query_plans([], ids=ids, updated=updated, id_style="csv")

        def batches() -> Iterator[list[dict]]:
            batch: list[dict] = []
            for raw in self._unique(self._each(path, plans)):
                batch.append(raw)
                if len(batch) >= self.settings.per_page:
                    yield batch
                    batch = []
            if batch:
                yield batch

        def lines(batch: list[dict]) -> tuple[list[dict], dict[int, list[dict] | ProcoreError]]:
            if not with_line_items:
                return batch, {}
            need = [to_int(r["id"]) or 0 for r in batch if r.get("line_items") is None]
            return batch, self._direct_cost_lines(project_id, need)

        ahead = min(self.settings.detail_concurrency, DIRECT_COST_BATCHES_AHEAD)
        for batch, found in ordered_map(batches(), lines, workers=ahead, window=ahead):
            yield from self._direct_cost_batch(project_id, batch, found, with_line_items)

    def _direct_cost_batch(
        self,
        project_id: int,
        batch: list[dict],
        lines: dict[int, list[dict] | ProcoreError],
        with_lines: bool,
    ) -> Iterator[DirectCost]:
        for raw in batch:
            record = {"project_id": int(project_id), **raw}
            if with_lines and raw.get("line_items") is None:
                found = lines.get(to_int(raw["id"]) or 0, [])
                if isinstance(found, ProcoreError):
                    record[DETAIL_GONE] = gone_reason(found)
                    found = []
                record["line_items"] = found
            yield DirectCost.model_validate(self._gone(record))

    def _direct_cost_lines(
        self, project_id: int, cost_ids: list[int]
    ) -> dict[int, list[dict] | ProcoreError]:
        """Bulk-read lines for these costs and group them by cost.

        Lines are attributed by `direct_cost_id` (or `holder`/`direct_cost` objects) and
        filtered client-side, so a server that ignores the filter costs calls, not
        correctness. If a line cannot be attributed, that chunk falls back to the
        per-cost line-item endpoint, where a 404 is kept (as the error) for that cost.
        """
        grouped: dict[int, list[dict] | ProcoreError] = {i: [] for i in cost_ids}
        path = f"/rest/v1.0/projects/{int(project_id)}/direct_costs/line_items"
        for chunk in chunks(cost_ids):
            params: Params = [("filters[direct_cost_id][]", i) for i in chunk]
            wanted = set(chunk)
            unattributed = False
            found: dict[int, list[dict] | ProcoreError] = {i: [] for i in chunk}
            for line in self._unique(self.paginate(path, params)):
                owner = _line_owner(line)
                if owner is None:
                    unattributed = True
                    break
                if owner in wanted:
                    found[owner].append(line)  # type: ignore[union-attr]
            if unattributed:
                for cost_id in chunk:
                    one = f"/rest/v1.0/projects/{int(project_id)}/direct_costs/{cost_id}/line_items"
                    try:
                        found[cost_id] = list(self.paginate(one))
                    except ProcoreError as exc:
                        if exc.status != 404 or isinstance(exc, ProcoreAuthError):
                            raise
                        found[cost_id] = exc
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

        def listed() -> Iterator[tuple[dict, bool]]:
            for raw in self._unique(self._each(path, plans)):
                self._commitment_kinds[(int(project_id), to_int(raw["id"]) or 0)] = kind
                yield (
                    {"project_id": int(project_id), **raw, "kind": kind},
                    _wants_lines(with_line_items, raw),
                )

        def details(listed_record: tuple[dict, bool]) -> dict:
            record, wants = listed_record
            if wants:
                lines_path = f"{path}/{to_int(record['id'])}/line_items"
                record["line_items"] = _detail(record, [], self._all, lines_path, base)
            return record

        for record in self._details(listed(), details, needs=lambda pair: pair[1]):
            yield Commitment.model_validate(self._gone(record))

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
        listed = (
            ({"project_id": int(project_id), **raw}, _wants_lines(with_line_items, raw))
            for raw in self._unique(self._each(path, plans))
        )

        def details(listed_record: tuple[dict, bool]) -> dict:
            record, wants = listed_record
            if wants:
                lines_path = (
                    f"/rest/v2.0/companies/{company}/projects/{int(project_id)}"
                    f"/commitment_change_orders/{to_int(record['id'])}/line_items"
                )
                record["line_items"] = _detail(
                    record, [], self._all, lines_path, per_page=V2_MAX_PER_PAGE
                )
            if record.get("line_items"):
                record["line_items"] = _detail(
                    record,
                    record["line_items"],
                    self._with_contract_lines,
                    project_id,
                    record,
                    staged_contract,
                )
            return record

        def needs(listed_record: tuple[dict, bool]) -> bool:
            record, wants = listed_record
            return wants or bool(record.get("line_items"))

        for record in self._details(listed, details, needs):
            yield ChangeOrder.model_validate(self._gone(record))

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
        key = (int(project_id), contract_id)
        with self._filling.hold(("lines", *key)):  # one look-up (and call) per contract
            known = self._commitment_lines_cache.get(key)
            if known is None:
                staged = staged_contract(contract_id) if staged_contract else None
                if staged and staged.get("line_items"):
                    self.remember_contract_lines(project_id, contract_id, staged["line_items"])
                    known = self._commitment_lines_cache[key]
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
            exc.detail = scrub(exc.detail, [secret])
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
            self.stats.add(pages=1)
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
