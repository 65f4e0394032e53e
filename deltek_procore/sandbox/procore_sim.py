"""A local Procore API, faithful to docs/api/procore.md, over the seeded sandbox data.

It serves the parts of Procore the connector reads (OAuth client credentials, company
and project reference data, subcontractor invoices, direct costs, commitments, change
orders) and the webhooks configuration API, with Procore's quirks kept on purpose:
`Procore-Company-Id` enforcement, page/per_page with Total/Per-Page/Link headers (but
none on the v1.0 change order list, which documents no paging and answers every row
whatever page is asked), `filters[...]` including `a...b` ranges, list vs show shapes,
Title Case commitment statuses, X-Rate-Limit-* headers on every response, and
at-least-once webhooks. Every body has the fields of Procore's real response model and
no others (docs/api/procore-fields.json; deltek_procore/sandbox/contract.py checks it).
Faults (latency, 429, 5xx, stalls, token expiry, webhook drop/duplicate/reorder) come
from the shared `Faults` object and can be switched while it runs.

The simulator owns `data.procore` and mutates it in place through `set_record`.
Routes under `/__admin` are not Procore: they let tests and operators steer the fake.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import math
import random
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl, unquote

import requests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from deltek_procore.sandbox.faults import Faults
from deltek_procore.sandbox.seed import (
    PROCORE_CLIENT_ID,
    PROCORE_CLIENT_SECRET,
    USER_ID,
    SandboxData,
    money,
)

JSON = dict[str, Any]
Clock = Callable[[], float]

MISSING_COMPANY_TEXT = (
    "Missing Procore-Company-Id header! Each call your application makes to the Procore "
    "API must include the Procore-Company-Id header with the id of the company it acts on."
)
RATE_LIMIT_TEXT = (
    "You have surpassed the max number of requests for an hour. "
    "Please wait until your limit resets."
)
INVALID_CLIENT_TEXT = (
    "Client authentication failed due to unknown client, no client authentication "
    "included, or unsupported authentication method."
)
INVALID_TOKEN_TEXT = "The access token is invalid"  # noqa: S105 - an error message

# Webhook resource names (docs/api/procore.md#resource-names): no requisitions, no change orders.
PROJECT_RESOURCES = (
    "Direct Costs",
    "Direct Cost Line Items",
    "Work Order Contracts",
    "Work Order Contract Line Items",
    "Purchase Order Contracts",
    "Purchase Order Contract Line Items",
    "Change Order Packages",
    "Potential Change Orders",
    "Contract Payments",
    "Payment Applications",
    "Cost Codes",
    "Sub Jobs",
    "Project Vendors",
    "Prime Contracts",
)
COMPANY_RESOURCES = (
    "Projects",
    "Company Vendors",
    "Line Item Types",
    "Standard Cost Codes",
    "ERP Requests",
)
HOOK_RESOURCE = {
    "direct_costs": "Direct Costs",
    "work_order_contracts": "Work Order Contracts",
    "purchase_order_contracts": "Purchase Order Contracts",
    "vendors": "Company Vendors",
    "projects": "Projects",
    "cost_codes": "Cost Codes",
    "line_item_types": "Line Item Types",
}
HOOK_LINE_RESOURCE = {
    "direct_costs": "Direct Cost Line Items",
    "work_order_contracts": "Work Order Contract Line Items",
    "purchase_order_contracts": "Purchase Order Contract Line Items",
}
RESOURCE_ALIASES = {
    "requisition": "requisitions",
    "subcontractor_invoices": "requisitions",
    "direct_cost": "direct_costs",
    "work_order_contract": "work_order_contracts",
    "purchase_order_contract": "purchase_order_contracts",
    "commitment_change_order": "commitment_change_orders",
    "change_orders": "commitment_change_orders",
    "vendor": "vendors",
    "project": "projects",
}
PROJECT_SCOPED = (
    "cost_codes",
    "billing_periods",
    "requisitions",
    "direct_costs",
    "work_order_contracts",
    "purchase_order_contracts",
    "commitment_change_orders",
)
DELIVERY_STATUS = {
    "any": None,
    "successful": {"ok", "retried"},
    "failing": {"failed"},
    "discarded": {"discarded"},
}
FILTER_KEY = re.compile(r"^filters?\[(\w+)\](\[\])?$")
NAMESPACE = re.compile(r"^[a-z0-9-]+$")
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
DEFAULT_PER_PAGE, MAX_PER_PAGE = 100, 10_000


class ApiError(Exception):
    """An HTTP error answer, raised anywhere below a route and rendered once."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}

    def response(self) -> Response:
        if isinstance(self.body, str):
            return PlainTextResponse(self.body, self.status, headers=self.headers)
        return JSONResponse(self.body, self.status, headers=self.headers)


def _not_found(what: str = "Record") -> ApiError:
    return ApiError(404, {"errors": f"{what} not found"})


# --- pure helpers -------------------------------------------------------------------------


def iso_utc(epoch: float, micro: bool = False) -> str:
    moment = datetime.fromtimestamp(epoch, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _bound(text: str, upper: bool) -> str:
    """A range end as a sortable UTC stamp; a bare date covers its whole day."""
    text = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        date.fromisoformat(text)
        return f"{text}T23:59:59Z" if upper else f"{text}T00:00:00Z"
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_range(name: str, value: str) -> tuple[str, str]:
    """`start...end` -> (low, high) UTC stamps; anything else is Procore's 400."""
    if "..." not in value:
        raise ApiError(
            400,
            {
                "errors": f"filters[{name}] must be a range of the form "
                f"start...end, e.g. 2024-01-01...2024-01-31"
            },
        )
    low, _, high = value.partition("...")
    try:
        return _bound(low, False), _bound(high, True)
    except ValueError as exc:
        raise ApiError(400, {"errors": f"filters[{name}] has an invalid date: {value}"}) from exc


def parse_filters(request: Request) -> dict[str, list[str]]:
    """`filters[x]=1`, `filters[x][]=1&filters[x][]=2` and `filter[x]` into name -> values."""
    out: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        match = FILTER_KEY.match(key)
        if match:
            out.setdefault(match.group(1), []).append(value)
    return out


def _int_values(values: list[str]) -> set[int]:
    try:
        return {int(part) for value in values for part in value.split(",") if part.strip()}
    except ValueError as exc:
        raise ApiError(400, {"errors": f"invalid id filter: {values}"}) from exc


def _int_param(request: Request, name: str, required: bool = True) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        if required:
            raise ApiError(400, {"errors": f"Missing required parameter: {name}"})
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise ApiError(400, {"errors": f"{name} must be an integer"}) from exc


def _to_v2(value: Any, key: str = "") -> Any:
    """REST v2.0 answers carry string ids."""
    if isinstance(value, dict):
        return {k: _to_v2(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_v2(v, key) for v in value]
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and (key == "id" or key.endswith("_id"))
    ):
        return str(value)
    return value


def _ulid(epoch: float, rng: random.Random) -> str:
    number = (int(epoch * 1000) << 80) | rng.getrandbits(80)
    return "".join(CROCKFORD[(number >> shift) & 31] for shift in range(125, -1, -5))


def _mask(headers: dict[str, str]) -> dict[str, str]:
    """Procore echoes the Authorization header masked down to its last 5 characters."""
    return {k: ("…" + v[-5:] if k.lower() == "authorization" else v) for k, v in headers.items()}


def _cents(text: str) -> int:
    negative = text.strip().startswith("-")
    whole, _, frac = text.strip().lstrip("-").partition(".")
    value = int(whole or 0) * 100 + int((frac + "00")[:2])
    return -value if negative else value


# --- rate limiting ------------------------------------------------------------------------


@dataclass
class _Window:
    length: float
    limit: int
    start: float = 0.0
    count: int = 0

    def roll(self, now: float) -> None:
        if now >= self.start + self.length:
            self.start, self.count = now, 0

    @property
    def reset(self) -> int:
        return math.ceil(self.start + self.length)


class RateLimiter:
    """Hourly and spike windows per (client, company); headers describe the nearer limit."""

    def __init__(self, hourly: int, spike: int, spike_window_s: float, clock: Clock) -> None:
        self.hourly, self.spike, self.spike_window_s, self.clock = (
            hourly,
            spike,
            spike_window_s,
            clock,
        )
        self.windows: dict[tuple[str, str], tuple[_Window, _Window]] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self.windows.clear()

    def hit(self, key: tuple[str, str], count: bool = True) -> tuple[bool, dict[str, str]]:
        """Count one request; (allowed, headers). Rejected requests are not counted."""
        now = self.clock()
        with self._lock:
            pair = self.windows.get(key)
            if pair is None:
                pair = self.windows[key] = (
                    _Window(3600, self.hourly, now),
                    _Window(self.spike_window_s, self.spike, now),
                )
            for window in pair:
                window.roll(now)
            full = [w for w in pair if w.count >= w.limit]
            allowed = not full
            if allowed and count:
                for window in pair:
                    window.count += 1
            if full:
                nearest = max(full, key=lambda w: w.reset)
            else:
                nearest = min(pair, key=lambda w: (w.limit - w.count, -w.length))
            headers = {
                "X-Rate-Limit-Limit": str(nearest.limit),
                "X-Rate-Limit-Remaining": str(max(0, nearest.limit - nearest.count)),
                "X-Rate-Limit-Reset": str(nearest.reset),
            }
            if not allowed:
                headers["Retry-After"] = str(max(1, math.ceil(nearest.reset - now)))
        return allowed, headers

    def snapshot(self) -> dict:
        with self._lock:
            return {
                f"{k[0]}|{k[1]}": {"hourly": w[0].count, "spike": w[1].count}
                for k, w in self.windows.items()
            }


# --- tokens --------------------------------------------------------------------------------


@dataclass
class _Token:
    client_id: str
    created_at: int
    expires_in: int
    calls: int = 0

    def __repr__(self) -> str:  # never show the token itself
        return f"_Token(client_id={self.client_id!r}, created_at={self.created_at})"


def _client_credentials(request: Request, body: bytes) -> dict[str, str]:
    """grant_type/client_id/client_secret from form, multipart, JSON, query or Basic auth."""
    fields: dict[str, str] = dict(request.query_params)
    ctype = request.headers.get("content-type", "").lower()
    if body:
        if "json" in ctype:
            try:
                parsed = json.loads(body)
            except ValueError as exc:
                raise ApiError(
                    400, {"error": "invalid_request", "error_description": "Malformed JSON body."}
                ) from exc
            if isinstance(parsed, dict):
                fields.update({k: str(v) for k, v in parsed.items() if v is not None})
        elif "multipart/form-data" in ctype:
            message = BytesParser(policy=HTTP).parsebytes(
                b"Content-Type: " + request.headers["content-type"].encode() + b"\r\n\r\n" + body
            )
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if name:
                    payload = part.get_payload(decode=True) or b""
                    fields[str(name)] = payload.decode("utf-8", "replace").strip()
        else:
            fields.update(dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)))
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            user, _, password = base64.b64decode(auth[6:].strip()).decode().partition(":")
        except ValueError as exc:
            raise ApiError(
                401, {"error": "invalid_client", "error_description": INVALID_CLIENT_TEXT}
            ) from exc
        fields.setdefault("client_id", unquote(user))
        fields.setdefault("client_secret", unquote(password))
    return fields


# --- the simulator -----------------------------------------------------------------------


@dataclass
class _Ctx:
    token: _Token | None
    company_id: int | None


class ProcoreSimulator:
    """The fake Procore: `app` is the ASGI app, the rest is the Python inspection API."""

    missing_company_status = 400  # docs show the text, not the code; 403 is also plausible

    def __init__(
        self,
        data: SandboxData,
        faults: Faults | None = None,
        *,
        token_ttl: int = 5400,
        hourly_limit: int = 3600,
        spike_limit: int = 25,
        spike_window_s: int = 10,
        clock: Clock = time.time,
        webhook_retry_backoff_s: float = 0.5,
        webhook_max_attempts: int = 5,
        webhook_timeout_s: float = 5.0,
        client_id: str = PROCORE_CLIENT_ID,
        client_secret: str = PROCORE_CLIENT_SECRET,
        webhooks_permission: bool = True,
    ) -> None:
        self.data = data
        # False: the service account lacks the "Webhooks API" permission (see _webhooks_access)
        self.webhooks_permission = webhooks_permission
        self.faults = faults or Faults()
        self.token_ttl = token_ttl
        self.clock = clock
        self.limiter = RateLimiter(hourly_limit, spike_limit, spike_window_s, clock)
        self.webhook_retry_backoff_s = webhook_retry_backoff_s
        self.webhook_max_attempts = webhook_max_attempts
        self.webhook_timeout_s = webhook_timeout_s
        self._client_id, self._client_secret = client_id, client_secret
        self._tokens: dict[str, _Token] = {}
        self._lock = threading.RLock()
        self._rng = random.Random(4242)
        self._index()
        self.hooks: dict[int, JSON] = {}
        self.triggers: dict[int, JSON] = {}
        self.webhook_deliveries: list[JSON] = []
        self.changes: list[JSON] = []
        self._queue: list[tuple[int, JSON]] = []
        self._pending = 0
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None
        self._stopping = False
        self.app = Starlette(
            routes=self._routes(),
            exception_handlers={404: self._unknown_path, 405: self._unknown_path},
        )

    # indexes -------------------------------------------------------------------------
    def _index(self) -> None:
        procore = self.data.procore
        self.by_id: dict[str, dict[int, JSON]] = {
            key: {r["id"]: r for r in rows} for key, rows in procore.items()
        }
        self.by_project: dict[str, dict[int, list[JSON]]] = {}
        for key in PROJECT_SCOPED:
            groups: dict[int, list[JSON]] = {}
            for record in sorted(procore.get(key, []), key=lambda r: r["id"]):
                groups.setdefault(record["project_id"], []).append(record)
            self.by_project[key] = groups
        self.commitment_kind: dict[int, str] = {}
        for key in ("work_order_contracts", "purchase_order_contracts"):
            for record in procore.get(key, []):
                self.commitment_kind[record["id"]] = key
        self.company_ids = {c["id"] for c in procore.get("companies", [])}
        self._dc_line_cache: dict[int, list[JSON]] = {}
        latest = max(
            (r.get("updated_at") or "" for rows in procore.values() for r in rows), default=""
        )
        self._last_stamp = parse_stamp(latest) if latest else 0.0

    # routes --------------------------------------------------------------------------
    def _routes(self) -> list[Route]:
        api = self._endpoint
        r: list[Route] = [
            Route("/oauth/token", api(self._token, auth=False, company=False), methods=["POST"]),
            Route("/oauth/token/info", api(self._token_info, company=False), methods=["GET"]),
            Route("/oauth/revoke", api(self._revoke, auth=False, company=False), methods=["POST"]),
            Route("/rest/v1.0/me", api(self._me, company=False), methods=["GET"]),
            Route("/rest/v1.0/companies", api(self._companies, company=False), methods=["GET"]),
        ]
        get = [
            ("/rest/v1.0/projects", self._projects),
            ("/rest/v1.1/projects", self._projects),
            ("/rest/v1.0/projects/{id:int}", self._project),
            ("/rest/v1.1/projects/{id:int}", self._project),
            ("/rest/v1.0/companies/{company_id:int}/projects", self._company_projects),
            ("/rest/v1.0/vendors", self._vendors),
            ("/rest/v1.0/vendors/{id:int}", self._vendor),
            ("/rest/v1.0/companies/{company_id:int}/vendors", self._vendors),
            ("/rest/v1.0/cost_codes", self._cost_codes),
            ("/rest/v1.0/cost_codes/{id:int}", self._cost_code),
            ("/rest/v1.0/line_item_types", self._line_item_types),
            ("/rest/v1.0/line_item_types/{id:int}", self._line_item_type),
            ("/rest/v1.0/projects/{project_id:int}/billing_periods", self._billing_periods),
            ("/rest/v1.0/requisitions", self._requisitions_v10),
            ("/rest/v1.1/requisitions", self._requisitions_v11),
            ("/rest/v1.0/requisitions/{id:int}", self._requisition_v10),
            ("/rest/v1.1/requisitions/{id:int}", self._requisition_v11),
            ("/rest/v1.0/requisitions/{id:int}/contract_items", self._requisition_items),
            ("/rest/v1.0/requisitions/{id:int}/detail", self._requisition_detail),
            ("/rest/v1.0/requisitions/{id:int}/contract_detail_items", self._requisition_empty),
            ("/rest/v1.0/requisitions/{id:int}/change_order_items", self._requisition_empty),
            ("/rest/v1.0/commitments", self._commitments),
            ("/rest/v1.0/commitments/{id:int}", self._commitment_any),
            ("/rest/v1.0/projects/{project_id:int}/commitment_change_orders", self._change_orders),
            (
                "/rest/v1.0/projects/{project_id:int}/commitment_change_orders/{id:int}",
                self._change_order,
            ),
            (
                "/rest/v2.0/companies/{company_id:int}/projects/{project_id:int}"
                "/commitment_change_orders/{id:int}/line_items",
                self._change_order_lines,
            ),
            ("/rest/v1.0/webhooks/resources", self._hook_resources),
            ("/rest/v1.0/webhooks/hooks/{id:int}/deliveries", self._deliveries),
        ]
        for version in ("v1.0", "v1.1"):
            base = f"/rest/{version}/projects/{{project_id:int}}/direct_costs"
            get += [
                (base, self._direct_costs),
                (f"{base}/line_items", self._dc_lines),
                (f"{base}/{{id:int}}", self._direct_cost),
                (f"{base}/{{id:int}}/line_items", self._direct_cost_lines),
            ]
        for key in ("work_order_contracts", "purchase_order_contracts"):
            base = f"/rest/v1.0/{key}"
            get += [
                (base, self._contract_list(key)),
                (f"{base}/{{id:int}}", self._contract_show(key)),
                (f"{base}/{{id:int}}/line_items", self._contract_lines(key)),
            ]
        r += [Route(path, api(handler), methods=["GET"]) for path, handler in get]
        r += [
            Route("/rest/v1.0/webhooks/hooks", api(self._hooks), methods=["GET", "POST"]),
            Route(
                "/rest/v1.0/webhooks/hooks/{id:int}",
                api(self._hook),
                methods=["GET", "PATCH", "PUT", "DELETE"],
            ),
            Route(
                "/rest/v1.0/webhooks/hooks/{id:int}/triggers",
                api(self._hook_triggers),
                methods=["GET", "POST"],
            ),
            Route(
                "/rest/v1.0/webhooks/hooks/{id:int}/triggers/{trigger_id:int}",
                api(self._hook_trigger),
                methods=["GET", "DELETE"],
            ),
            Route("/__admin/state", self._admin_state, methods=["GET"]),
            Route("/__admin/faults", self._admin_faults, methods=["POST"]),
            Route("/__admin/records/{resource}/{id:int}", self._admin_record, methods=["POST"]),
            Route("/__admin/reset-rate-limits", self._admin_reset_limits, methods=["POST"]),
        ]
        return r

    async def _unknown_path(self, request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        return JSONResponse(
            {"errors": "Not Found" if status == 404 else "Method Not Allowed"}, status
        )

    def _endpoint(
        self, handler: Callable[..., Response | Any], *, auth: bool = True, company: bool = True
    ) -> Callable[[Request], Any]:
        """Faults, rate limit, token, company header, then the handler under the lock."""

        async def endpoint(request: Request) -> Response:
            key = self._limit_key(request, auth)
            fault = await self._inject_faults()
            if fault is not None:
                _, headers = self.limiter.hit(key, count=False)
                fault.headers.update({**headers, **fault.headers})
                return fault.response()
            allowed, headers = self.limiter.hit(key)
            if not allowed:
                return PlainTextResponse(RATE_LIMIT_TEXT, 429, headers=headers)
            try:
                ctx = _Ctx(
                    self._authorise(request) if auth else None,
                    self._company(request) if company else None,
                )
                body = await request.body()
                with self._lock:
                    result = handler(request, body, ctx)
                response = result if isinstance(result, Response) else JSONResponse(result)
            except ApiError as error:
                response = error.response()
            for name, value in headers.items():
                response.headers[name] = value
            return response

        return endpoint

    def _limit_key(self, request: Request, auth: bool) -> tuple[str, str]:
        company = request.headers.get("procore-company-id", "")
        if not auth:
            return ("oauth", "")
        token = self._tokens.get(_bearer(request) or "")
        return (token.client_id if token else "anonymous", company)

    async def _inject_faults(self) -> ApiError | None:
        faults = self.faults
        await faults.delay()
        if faults.stall():
            faults.count("stall")
            await asyncio.sleep(faults.settings.timeout_s)
        status = faults.pick_5xx()
        if status is not None:
            faults.count(f"http_{status}")
            if status == 500:
                return ApiError(500, {"errors": "Internal Server Error"})
            extra = {"Retry-After": "1"} if status == 503 else {}
            return ApiError(
                status,
                f"<html><body><h1>{status} Service Temporarily Unavailable</h1></body></html>",
                extra,
            )
        if faults.take_429():
            faults.count("http_429")
            return ApiError(
                429, RATE_LIMIT_TEXT, {"X-Rate-Limit-Remaining": "0", "Retry-After": "1"}
            )
        return None

    def _authorise(self, request: Request) -> _Token:
        raw = _bearer(request)
        token = self._tokens.get(raw or "")
        limit = self.faults.settings.token_expire_after_calls
        invalid = ApiError(
            401,
            {"errors": INVALID_TOKEN_TEXT},
            {
                "WWW-Authenticate": 'Bearer realm="Doorkeeper", error="invalid_token", '
                'error_description="The access token is invalid"'
            },
        )
        if token is None:
            raise invalid
        if self.clock() >= token.created_at + token.expires_in or (limit and token.calls >= limit):
            self.faults.count("token_expired")
            self._tokens.pop(raw or "", None)
            raise invalid
        token.calls += 1
        return token

    def _company(self, request: Request) -> int:
        raw = request.headers.get("procore-company-id")
        if not raw:
            raise ApiError(self.missing_company_status, {"errors": MISSING_COMPANY_TEXT})
        try:
            company_id = int(raw)
        except ValueError as exc:
            raise ApiError(403, {"errors": "App is not connected to this company"}) from exc
        if company_id not in self.company_ids:
            raise ApiError(403, {"errors": "App is not connected to this company"})
        for source in (
            request.query_params.get("company_id"),
            request.path_params.get("company_id"),
        ):
            if source not in (None, "") and str(source) != str(company_id):
                raise ApiError(403, {"errors": "Procore-Company-Id does not match company_id"})
        return company_id

    # oauth --------------------------------------------------------------------------
    def _token(self, request: Request, body: bytes, ctx: _Ctx) -> Response:
        fields = _client_credentials(request, body)
        grant = fields.get("grant_type", "")
        if grant in ("authorization_code", "refresh_token"):
            return JSONResponse(
                {
                    "error": "invalid_grant",
                    "error_description": "The provided authorization grant is invalid, expired, "
                    "revoked, does not match the redirection URI used in the "
                    "authorization request, or was issued to another client.",
                },
                400,
            )
        if grant != "client_credentials":
            return JSONResponse(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "The authorization grant type is not supported by the "
                    "authorization server.",
                },
                400,
            )
        if not (
            secrets.compare_digest(fields.get("client_id", ""), self._client_id)
            and secrets.compare_digest(fields.get("client_secret", ""), self._client_secret)
        ):
            return JSONResponse(
                {"error": "invalid_client", "error_description": INVALID_CLIENT_TEXT}, 401
            )
        raw = "sbx." + secrets.token_urlsafe(32)
        token = _Token(self._client_id, int(self.clock()), self.token_ttl)
        self._tokens[raw] = token
        return JSONResponse(
            {
                "access_token": raw,
                "token_type": "bearer",
                "expires_in": token.expires_in,
                "created_at": token.created_at,
            },
            headers={"Cache-Control": "no-store"},
        )

    def _token_info(self, request: Request, body: bytes, ctx: _Ctx) -> JSON:
        token = ctx.token
        assert token is not None
        left = max(0, int(token.created_at + token.expires_in - self.clock()))
        return {
            "resource_owner_id": None,
            "scopes": [],
            "expires_in_seconds": left,
            "application": {"uid": token.client_id},
            "created_at": token.created_at,
        }

    def _revoke(self, request: Request, body: bytes, ctx: _Ctx) -> JSON:
        fields = _client_credentials(request, body)
        self._tokens.pop(fields.get("token", ""), None)
        return {}

    def _me(self, request: Request, body: bytes, ctx: _Ctx) -> JSON:
        return {
            "id": USER_ID,
            "login": f"{self._client_id}@dmsa.procore.example",
            "name": "Sandbox Service Account",
        }

    def _companies(self, request: Request, body: bytes, ctx: _Ctx) -> Response:
        return self._page(request, self.data.procore["companies"], _strip_project)

    # reference data -----------------------------------------------------------------
    def _projects(self, request: Request, body: bytes, ctx: _Ctx) -> Response:
        _int_param(request, "company_id")
        rows = self._filtered(request, self.data.procore["projects"], "projects")
        return self._page(request, rows, _strip_project)

    def _company_projects(self, request: Request, body: bytes, ctx: _Ctx) -> Response:
        rows = self._filtered(request, self.data.procore["projects"], "projects")
        return self._page(
            request,
            rows,
            lambda p: {
                k: p[k]
                for k in (
                    "id",
                    "name",
                    "display_name",
                    "project_number",
                    "active",
                    "origin_id",
                    "updated_at",
                )
            },
        )

    def _project(self, request: Request, body: bytes, ctx: _Ctx) -> JSON:
        _int_param(request, "company_id")
        return _strip_project(self._record("projects", request.path_params["id"]))

    def _vendors(self, request: Request, body: bytes, ctx: _Ctx) -> Response:
        if "company_id" not in request.path_params:
            _int_param(request, "company_id")
        return self._page(
            request,
            self._filtered(request, self.data.procore["vendors"], "vendors"),
            _strip_project,
        )

    def _vendor(self, request: Request, body: bytes, ctx: _Ctx) -> JSON:
        _int_param(request, "company_id")
        return _strip_project(self._record("vendors", request.path_params["id"]))

    def _cost_codes(self, request: Request, body: bytes, ctx: _Ctx) -> Response:
        rows = self._project_rows(request, "cost_codes")
        return self._page(request, self._filtered(request, rows, "cost_codes"), _strip_project)

    def _cost_code(self, request: Request, body: bytes, ctx: _Ctx) -> JSON:
        return _strip_project(self._record("cost_codes", request.path_params["id"]))

    def _line_item_types(self, request: Request, body: bytes, ctx: _Ctx) -> Response:
        company = _int_param(request, "company_id", required=False)
        project = _int_param(request, "project_id", required=False)
        if company is None and project is None:
            raise ApiError(400, {"errors": "Missing required parameter: company_id or project_id"})
        if project is not None and project not in self.by_id["projects"]:
            raise _not_found("Project")
        rows = self._filtered(request, self.data.procore["line_item_types"], "line_item_types")
        return self._page(request, rows, _strip_project)

    def _line_item_type(self, request: Request, body: bytes, ctx: _Ctx) -> JSON:
        return _strip_project(self._record("line_item_types", request.path_params["id"]))

    def _billing_periods(self, request: Request, body: bytes, ctx: _Ctx) -> Response:
        rows = self._project_rows(request, "billing_periods")
        return self._page(request, self._filtered(request, rows, "billing_periods"))

    # requisitions --------------------------------------------------------------------
    def _requisitions_v10(self, request: Request, body: bytes, ctx: _Ctx) -> Response:
        rows = self._filtered(request, self._project_rows(request, "requisitions"), "requisitions")
        return self._page(request, rows, _requisition_v10)

    def _requisitions_v11(self, request: Request, body: bytes, ctx: _Ctx) -> Response:
        view = request.query_params.get("view", "default")
        shape = _requisition_view(view)
        rows = self._filtered(request, self._project_rows(request, "requisitions"), "requisitions")
        return self._page(request, rows, shape)

    def _requisition_v10(self, request: Request, body: bytes, ctx: _Ctx) -> JSON:
        return _requisition_v10(self._project_record(request, "requisitions"))

    def _requisition_v11(self, request: Request, body: bytes, ctx: _Ctx) -> JSON:
        shape = _requisition_view(request.query_params.get("view", "extended"))
        return shape(self._project_record(request, "requisitions"))

    def _requisition_items(self, request: Request, body: bytes, ctx: _Ctx) -> Response:
        record = self._detail_record(request, "requisitions")
        return self._page(request, record["items"], _contract_item_v10)

    def _requisition_detail(self, request: Request, body: bytes, ctx: _Ctx) -> list[JSON]:
        """G703 detail rows, one per item: the /detail model (no paging declared)."""
        record = self._project_record(request, "requisitions")
        return [_detail_row(item) for item in record["items"]]

    def _requisition_empty(self, request: Request, body: bytes, ctx: _Ctx) -> Response:
        self._project_record(request, "requisitions")
        return self._page(request, [])

    # direct costs --------------------------------------------------------------------
    def _direct_costs(self, request: Request, body: bytes, ctx: _Ctx) -> Response:
        rows = self._filtered(request, self._project_rows(request, "direct_costs"), "direct_costs")
        return self._page(request, rows, _direct_cost_list)

    def _direct_cost(self, request: Request, body: bytes, ctx: _Ctx) -> JSON:
        return _strip_project(self._project_record(request, "direct_costs"))

    def _direct_cost_lines(self, request: Request, body: bytes, ctx: _Ctx) -> Response:
        record = self._detail_record(request, "direct_costs")
        lines = [_dc_line_listed(line, record) for line in record["line_items"]]
        return self._page(request, self._filtered(request, lines, "line_items"))

    def _dc_lines(self, request: Request, body: bytes, ctx: _Ctx) -> Response:
        """Project-wide direct cost lines; `filters[direct_cost_id]` uses the id index."""
        filters = parse_filters(request)
        wanted = filters.pop("direct_cost_id", None)
        if wanted is not None:
            project = self._project_id(request)
            table = self.by_id["direct_costs"]
            costs = [
                table[i]
                for i in sorted(_int_values(wanted))
                if i in table and table[i]["project_id"] == project
            ]
            lines = [_dc_line_listed(line, cost) for cost in costs for line in cost["line_items"]]
        else:
            lines = self._project_dc_lines(self._project_id(request))
        return self._page(request, _apply_filters(lines, filters, "line_items", self))

    def _project_dc_lines(self, project: int) -> list[JSON]:
        """Flattened lines per project, cached until a direct cost of it changes."""
        lines = self._dc_line_cache.get(project)
        if lines is None:
            lines = self._dc_line_cache[project] = [
                _dc_line_listed(line, cost)
                for cost in self.by_project["direct_costs"].get(project, [])
                for line in cost["line_items"]
            ]
        return lines

    # commitments ----------------------------------------------------------------------
    def _contract_list(self, key: str) -> Callable[..., Response]:
        def handler(request: Request, body: bytes, ctx: _Ctx) -> Response:
            rows = self._filtered(request, self._project_rows(request, key), "commitments")
            return self._page(request, rows, _commitment_list)

        return handler

    def _contract_show(self, key: str) -> Callable[..., JSON]:
        def handler(request: Request, body: bytes, ctx: _Ctx) -> JSON:
            return _strip_project(self._project_record(request, key))

        return handler

    def _contract_lines(self, key: str) -> Callable[..., Response]:
        def handler(request: Request, body: bytes, ctx: _Ctx) -> Response:
            record = self._detail_record(request, key)
            return self._page(request, self._filtered(request, record["line_items"], "line_items"))

        return handler

    def _commitments(self, request: Request, body: bytes, ctx: _Ctx) -> Response:
        project = self._project_id(request)
        rows = sorted(
            self.by_project["work_order_contracts"].get(project, [])
            + self.by_project["purchase_order_contracts"].get(project, []),
            key=lambda r: r["id"],
        )
        rows = self._filtered(request, rows, "commitments")
        return self._page(
            request, rows, lambda r: {**_commitment_list(r), "type": _commitment_type(r)}
        )

    def _commitment_any(self, request: Request, body: bytes, ctx: _Ctx) -> JSON:
        kind = self.commitment_kind.get(request.path_params["id"])
        if kind is None:
            raise _not_found("Commitment")
        record = self._project_record(request, kind)
        return {**_strip_project(record), "type": _commitment_type(record)}

    # change orders ---------------------------------------------------------------------
    def _change_orders(self, request: Request, body: bytes, ctx: _Ctx) -> list[JSON]:
        """Every matching change order at once: this list documents no page/per_page and
        sends no Total/Per-Page/Link, whatever page is asked for (docs/api/procore.md#paging)."""
        rows = self._filtered(
            request, self._project_rows(request, "commitment_change_orders"), "change_orders"
        )
        return [_change_order_v1(r) for r in rows]

    def _change_order(self, request: Request, body: bytes, ctx: _Ctx) -> JSON:
        return _change_order_v1(self._project_record(request, "commitment_change_orders"))

    def _change_order_lines(self, request: Request, body: bytes, ctx: _Ctx) -> Response:
        try:
            record = self._detail_record(request, "commitment_change_orders")
        except ApiError as error:
            raise ApiError(
                404,
                {"error": {"code": "NOT_FOUND", "message": error.body["errors"], "details": []}},
            ) from error
        lines = [_to_v2(line) for line in record["line_items"]]
        return self._page(request, lines, envelope=True, default=10, cap=100)

    # shared list plumbing ------------------------------------------------------------
    def _project_id(self, request: Request) -> int:
        project = request.path_params.get("project_id")
        if project is None:
            project = _int_param(request, "project_id")
        if project not in self.by_id["projects"]:
            raise _not_found("Project")
        return project

    def _project_rows(self, request: Request, key: str) -> list[JSON]:
        return self.by_project[key].get(self._project_id(request), [])

    def _record(self, key: str, record_id: int) -> JSON:
        record = self.by_id[key].get(record_id)
        if record is None:
            raise _not_found()
        return record

    def _project_record(self, request: Request, key: str) -> JSON:
        project = self._project_id(request)
        record = self._record(key, request.path_params["id"])
        if record.get("project_id") != project:
            raise _not_found()
        return record

    def _detail_record(self, request: Request, key: str) -> JSON:
        """A record whose details (line items, items) are read; the `missing_details`
        fault answers 404 for the ids it lists, as for a record deleted since it was listed."""
        record = self._project_record(request, key)
        if str(record["id"]) in self.faults.listed("missing_details"):
            self.faults.count("detail_404")
            raise _not_found()
        return record

    def _filtered(self, request: Request, rows: list[JSON], kind: str) -> list[JSON]:
        filters = parse_filters(request)
        ids = filters.pop("id", None)
        if ids is not None:
            wanted = _int_values(ids)
            rows = [r for r in rows if r["id"] in wanted]
        rows = _apply_filters(rows, filters, kind, self)
        return _sort(rows, request.query_params.get("sort"))

    def _page(
        self,
        request: Request,
        rows: list[JSON],
        shape: Callable[[JSON], JSON] | None = None,
        *,
        envelope: bool = False,
        default: int = DEFAULT_PER_PAGE,
        cap: int = MAX_PER_PAGE,
    ) -> Response:
        """One page plus Total, Per-Page and Link, as Procore pages list actions."""
        try:
            page = max(1, int(request.query_params.get("page", 1)))
            per_page = int(request.query_params.get("per_page", default))
        except ValueError as exc:
            raise ApiError(400, {"errors": "page and per_page must be integers"}) from exc
        per_page = min(max(1, per_page), cap)
        total = len(rows)
        last = max(1, math.ceil(total / per_page))
        chunk = rows[(page - 1) * per_page : page * per_page]
        items = [shape(r) for r in chunk] if shape else [dict(r) for r in chunk]
        links = []
        if page > 1:
            links.append(("first", 1))
            links.append(("prev", min(page - 1, last)))
        links.append(("last", last))
        if page < last:
            links.append(("next", page + 1))
        link = ", ".join(
            f'<{request.url.include_query_params(page=n, per_page=per_page)}>; rel="{rel}"'
            for rel, n in links
        )
        headers = {"Total": str(total), "Per-Page": str(per_page), "Link": link}
        if self.faults.settings.lying_total:  # fault: a Total lower than the truth, no Link
            headers = {"Total": str(total // 2), "Per-Page": str(per_page)}
        if self.faults.settings.short_pages and items:  # fault: a truncated page, no Link
            items = items[:-1]
            headers = {"Total": str(total), "Per-Page": str(per_page)}
        return JSONResponse({"data": items} if envelope else items, headers=headers)

    # webhooks config -------------------------------------------------------------------
    def _scope(self, request: Request, body: JSON, ctx: _Ctx) -> tuple[int | None, int | None]:
        company = body.get("company_id") or request.query_params.get("company_id")
        project = body.get("project_id") or request.query_params.get("project_id")
        if project not in (None, ""):
            project_id = int(project)
            if project_id not in self.by_id["projects"]:
                raise _not_found("Project")
            return None, project_id
        if company in (None, ""):
            raise ApiError(400, {"errors": "Missing required parameter: company_id or project_id"})
        if int(company) != ctx.company_id:
            raise ApiError(403, {"errors": "Procore-Company-Id does not match company_id"})
        return int(company), None

    # INVENTED words: Procore documents a 403 for a missing permission and a 404 for "not
    # found or no read access", both with an {"errors": ...} body (docs/api/procore.md,
    # error shapes), but not their text.
    WEBHOOKS_REFUSALS = {
        403: {"errors": "You do not have permission to access the Webhooks API"},
        404: {"errors": "Not Found"},
    }

    def _webhooks_access(self) -> None:
        """The config API needs the "Webhooks API" permission (docs/api/procore.md, webhooks)."""
        settings = self.faults.settings
        if self.webhooks_permission and not settings.webhooks_forbidden:
            return
        status = settings.webhooks_forbidden_status
        self.faults.count(f"webhooks_{status}")
        raise ApiError(status, self.WEBHOOKS_REFUSALS[status])

    def _hooks(self, request: Request, body: bytes, ctx: _Ctx) -> Any:
        self._webhooks_access()
        payload = _json_body(body) if request.method == "POST" else {}
        company, project = self._scope(request, payload, ctx)
        if request.method == "GET":
            namespace = request.query_params.get("namespace")
            return [
                self._hook_view(h)
                for h in self.hooks.values()
                if h["owned_by_company_id"] == company
                and h["owned_by_project_id"] == project
                and (namespace is None or h["namespace"] == namespace)
            ]
        spec = payload.get("hook") or {}
        errors: dict[str, list[str]] = {}
        namespace = str(spec.get("namespace") or "")
        if not NAMESPACE.match(namespace):
            errors["namespace"] = ["is invalid (use lowercase letters, digits and dashes)"]
        if not str(spec.get("destination_url") or "").startswith(("http://", "https://")):
            errors["destination_url"] = ["is invalid"]
        headers = spec.get("destination_headers") or {}
        if not isinstance(headers, dict):
            errors["destination_headers"] = ["must be an object"]
        if errors:
            raise ApiError(422, {"errors": errors})
        hook_id = max(self.hooks, default=0) + 1
        self.hooks[hook_id] = {
            "id": hook_id,
            "api_version": spec.get("api_version") or "v2",
            "namespace": namespace,
            "destination_url": spec["destination_url"],
            # header names kept as sent: Procore may echo `authorization` in lower case
            "destination_headers": {str(k): str(v) for k, v in headers.items()},
            "owned_by_company_id": company,
            "owned_by_project_id": project,
            "owned_by_user_id": USER_ID,
        }
        return JSONResponse(self._hook_view(self.hooks[hook_id]), 201)

    def _hook_view(self, hook: JSON) -> JSON:
        """A hook is owned by a company or a project: the other owner id is left out, as the
        model declares the owner ids as integers (no null)."""
        shown = {k: v for k, v in hook.items() if v is not None}
        return {**shown, "destination_headers": _mask(hook["destination_headers"])}

    def _hook(self, request: Request, body: bytes, ctx: _Ctx) -> Any:
        self._webhooks_access()
        hook = self.hooks.get(request.path_params["id"])
        if hook is None:
            raise _not_found("Hook")
        if request.method == "DELETE":
            del self.hooks[hook["id"]]
            for trigger_id in [
                t["id"] for t in self.triggers.values() if t["webhook_hook_id"] == hook["id"]
            ]:
                del self.triggers[trigger_id]
            return Response(status_code=204)
        if request.method in ("PATCH", "PUT"):
            spec = _json_body(body).get("hook") or {}
            for field in ("destination_url", "namespace", "api_version"):
                if spec.get(field):
                    hook[field] = str(spec[field])
            if isinstance(spec.get("destination_headers"), dict):
                hook["destination_headers"] = {
                    str(k): str(v) for k, v in spec["destination_headers"].items()
                }
        return self._hook_view(hook)

    @staticmethod
    def _trigger_view(trigger: JSON) -> JSON:
        """Triggers are stored lower case (as events carry them) and read back upper case,
        as Procore's trigger model declares CREATE|UPDATE|DELETE. Ids the trigger lacks (no
        resource_id: every record; company or project scope) are left out, not null."""
        shown = {k: v for k, v in trigger.items() if v is not None}
        return {**shown, "event_type": str(trigger["event_type"]).upper()}

    def _hook_triggers(self, request: Request, body: bytes, ctx: _Ctx) -> Any:
        self._webhooks_access()
        hook = self.hooks.get(request.path_params["id"])
        if hook is None:
            raise _not_found("Hook")
        if request.method == "GET":
            return [
                self._trigger_view(t)
                for t in self.triggers.values()
                if t["webhook_hook_id"] == hook["id"]
            ]
        spec = _json_body(body).get("trigger") or {}
        name = spec.get("resource_name")
        event = str(spec.get("event_type") or "").lower()
        allowed = PROJECT_RESOURCES + COMPANY_RESOURCES
        errors = {}
        if name not in allowed:
            errors["resource_name"] = [f"is not a webhook resource: {name!r}"]
        if event not in ("create", "update", "delete"):
            errors["event_type"] = ["must be one of create, update, delete"]
        if errors:
            raise ApiError(422, {"errors": errors})
        trigger_id = max(self.triggers, default=0) + 1
        self.triggers[trigger_id] = {
            "id": trigger_id,
            "webhook_hook_id": hook["id"],
            "resource_name": name,
            "resource_id": spec.get("resource_id"),
            "event_type": event,
            "company_id": hook["owned_by_company_id"],
            "project_id": hook["owned_by_project_id"],
            "user_id": USER_ID,
        }
        return JSONResponse(self._trigger_view(self.triggers[trigger_id]), 201)

    def _hook_trigger(self, request: Request, body: bytes, ctx: _Ctx) -> Any:
        self._webhooks_access()
        trigger = self.triggers.get(request.path_params["trigger_id"])
        if trigger is None or trigger["webhook_hook_id"] != request.path_params["id"]:
            raise _not_found("Trigger")
        if request.method == "DELETE":
            del self.triggers[trigger["id"]]
            return Response(status_code=204)
        return self._trigger_view(trigger)

    def _hook_resources(self, request: Request, body: bytes, ctx: _Ctx) -> list[JSON]:
        self._webhooks_access()
        company = request.query_params.get("company_id")
        project = request.query_params.get("project_id")
        if not company and not project:
            raise ApiError(400, {"errors": "Missing required parameter: company_id or project_id"})
        names = PROJECT_RESOURCES if project else PROJECT_RESOURCES + COMPANY_RESOURCES
        return [
            {
                "resource_name": n,
                "event_types": ["create", "update", "delete"]
                if n not in ("Projects", "Company Vendors")
                else ["create", "update"],
            }
            for n in names
        ]

    def _deliveries(self, request: Request, body: bytes, ctx: _Ctx) -> list[JSON]:
        """Delivery rows as Procore's model has them: no id of their own, only `event_id`.

        `page_start` is the `event_id` of the previous page's last row. One event's rows
        (its attempts, stored one after another) are never split across pages, so a page
        may run past `page_size` to finish an event (INVENTED: the docs only say "last id of
        the previous page"; this is the reading under which no row is skipped).
        """
        self._webhooks_access()
        hook_id = request.path_params["id"]
        if hook_id not in self.hooks:
            raise _not_found("Hook")
        wanted = (
            request.query_params.get("filters[status]")
            or request.query_params.get("filter[status]")
            or "any"
        )
        if wanted not in DELIVERY_STATUS:
            raise ApiError(
                400,
                {"errors": "filters[status] must be one of any, successful, failing, discarded"},
            )
        outcomes = DELIVERY_STATUS[wanted]
        try:
            size = min(max(1, int(request.query_params.get("page_size", 100))), 1000)
            raw_start = request.query_params.get("page_start")
            start = int(raw_start) if raw_start not in (None, "") else None
        except ValueError as exc:
            raise ApiError(400, {"errors": "page_size and page_start must be integers"}) from exc
        rows = [
            d
            for d in self.webhook_deliveries
            if d["hook_id"] == hook_id and (outcomes is None or d["outcome"] in outcomes)
        ]
        first = 0
        if start is not None:
            after = [i for i, d in enumerate(rows) if d["event_id"] == start]
            if not after:
                raise ApiError(
                    400, {"errors": "page_start must be the event_id of a listed delivery"}
                )
            first = after[-1] + 1
        end = min(first + size, len(rows))
        while 0 < end < len(rows) and rows[end]["event_id"] == rows[end - 1]["event_id"]:
            end += 1
        return [self._delivery_view(d) for d in rows[first:end]]

    @staticmethod
    def _delivery_view(delivery: JSON) -> JSON:
        """A stored row as the API shows it: without the simulator's own row id and hook id."""
        return {k: v for k, v in delivery.items() if k not in ("id", "hook_id")}

    # admin ----------------------------------------------------------------------------
    async def _admin_state(self, request: Request) -> Response:
        records = request.query_params.get("records") in ("1", "true", "yes")
        return JSONResponse(self.state(records=records))

    async def _admin_faults(self, request: Request) -> Response:
        try:
            changes = json.loads(await request.body() or b"{}")
            if not isinstance(changes, dict):
                raise ValueError("body must be a JSON object of FaultSettings fields")
            if changes.pop("reset", False):
                self.faults.reset()
            self.faults.configure(**changes)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"errors": str(exc)}, 400)
        return JSONResponse(self.faults.as_dict())

    async def _admin_record(self, request: Request) -> Response:
        try:
            changes = json.loads(await request.body() or b"{}")
            record = self.set_record(
                request.path_params["resource"], request.path_params["id"], changes
            )
        except KeyError as exc:
            return JSONResponse({"errors": f"unknown record: {exc.args[0]}"}, 404)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"errors": str(exc)}, 400)
        return JSONResponse(record)

    async def _admin_reset_limits(self, request: Request) -> Response:
        self.limiter.reset()
        return JSONResponse({"ok": True})

    # Python API -------------------------------------------------------------------------
    def set_record(self, resource: str, record_id: int, changes: dict) -> dict:
        """A Procore user edits a record: apply, bump updated_at, fire webhooks (update)."""
        key = RESOURCE_ALIASES.get(resource, resource)
        if key not in self.by_id:
            raise KeyError(f"{resource}/{record_id}")
        if not isinstance(changes, dict):
            raise TypeError("changes must be an object")
        forbidden = sorted({"id", "project_id", "line_items"} & set(changes))
        if forbidden:
            raise ValueError(f"cannot change {', '.join(forbidden)} through set_record")
        with self._lock:
            record = self.by_id[key].get(int(record_id))
            if record is None:
                raise KeyError(f"{resource}/{record_id}")
            stamp = self._next_stamp()
            changes = dict(changes)
            changed_lines: list[JSON] = []
            if "grand_total" in changes and record.get("line_items"):
                changes["grand_total"] = money(_cents(str(changes["grand_total"])))
                changed_lines.append(_rebalance(record, changes["grand_total"], stamp))
                if "revised_contract" in record:
                    changes.setdefault("revised_contract", changes["grand_total"])
            if key == "vendors" and "name" in changes:
                changes.setdefault("company", changes["name"])
            record.update(changes)
            record["updated_at"] = stamp
            if key == "direct_costs":
                self._dc_line_cache.pop(record["project_id"], None)
            self.changes.append(
                {"resource": key, "id": record["id"], "changes": changes, "updated_at": stamp}
            )
            events = self._events(key, record, changed_lines, "update")
            snapshot = copy.deepcopy(record)
        self._enqueue(events)
        return snapshot

    def state(self, records: bool = False) -> dict:
        """Everything a test may want to look at; secrets (tokens, auth headers) masked."""
        with self._lock:
            out = {
                "counts": {k: len(v) for k, v in self.data.procore.items()},
                "faults": self.faults.as_dict(),
                "tokens": len(self._tokens),
                "rate_limits": self.limiter.snapshot(),
                "hooks": [self._hook_view(h) for h in self.hooks.values()],
                "triggers": list(self.triggers.values()),
                "webhook_deliveries": [dict(d) for d in self.webhook_deliveries],
                "pending_webhooks": self._pending,
                "changes": list(self.changes),
            }
            if records:
                out["procore"] = copy.deepcopy(self.data.procore)
        return out

    def flush_webhooks(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event was delivered, retried out or discarded."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self) -> None:
        """Stop the webhook worker (queued events are abandoned)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._worker is not None:
            self._worker.join(5)

    def _next_stamp(self) -> str:
        """updated_at after every seeded time and every earlier edit, on whole seconds."""
        now = float(int(self.clock()))
        self._last_stamp = max(now, self._last_stamp + 1)
        return iso_utc(self._last_stamp)

    # webhook delivery -------------------------------------------------------------------
    def _events(
        self, key: str, record: JSON, lines: list[JSON], kind: str
    ) -> list[tuple[int, JSON]]:
        names = []
        if key in HOOK_RESOURCE:
            names.append((HOOK_RESOURCE[key], record["id"]))
        if key in HOOK_LINE_RESOURCE:
            names += [(HOOK_LINE_RESOURCE[key], line["id"]) for line in lines]
        project = record["id"] if key == "projects" else record.get("project_id")
        company_level = HOOK_RESOURCE.get(key) in COMPANY_RESOURCES
        company_id = next(iter(self.company_ids), None)
        out = []
        for name, resource_id in names:
            for trigger in self.triggers.values():
                hook = self.hooks.get(trigger["webhook_hook_id"])
                if (
                    hook is None
                    or trigger["resource_name"] != name
                    or trigger["event_type"] != kind
                ):
                    continue
                if trigger.get("resource_id") not in (None, resource_id):
                    continue
                if hook["owned_by_project_id"] is not None and (
                    company_level or hook["owned_by_project_id"] != project
                ):
                    continue
                now = self.clock()
                event_project = None if company_level else project
                out.append(
                    (
                        hook["id"],
                        {
                            "id": self._rng.getrandbits(63),
                            "ulid": _ulid(now, self._rng),
                            "timestamp": iso_utc(now, micro=True),
                            "api_version": hook["api_version"],
                            "event_type": kind,
                            "resource_name": name,
                            "resource_id": resource_id,
                            "company_id": company_id,
                            "project_id": event_project,
                            "user_id": USER_ID,
                            "metadata": {
                                "source_user_id": USER_ID,
                                "source_company_id": company_id,
                                "source_project_id": event_project,
                                "source_operation_id": None,
                                "source_application_id": None,
                            },
                        },
                    )
                )
        return out

    def _enqueue(self, events: Iterable[tuple[int, JSON]]) -> None:
        events = list(events)
        if not events:
            return
        with self._cond:
            self._queue.extend(events)
            self._pending += len(events)
            if self._worker is None or not self._worker.is_alive():
                self._stopping = False
                self._worker = threading.Thread(
                    target=self._work, name="procore-webhooks", daemon=True
                )
                self._worker.start()
            self._cond.notify_all()

    def _work(self) -> None:
        session = requests.Session()
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                batch, self._queue = self._queue, []
            if self.faults.settings.webhook_reorder:
                with self._lock:
                    self._rng.shuffle(batch)
            for hook_id, event in batch:
                try:
                    self._deliver(session, hook_id, event)
                finally:
                    with self._cond:
                        self._pending -= 1
                        self._cond.notify_all()

    def _deliver(self, session: requests.Session, hook_id: int, event: JSON) -> None:
        if self.faults.chance(self.faults.settings.webhook_drop):
            self.faults.count("webhook_drop")
            self._record_delivery(
                hook_id,
                event,
                "discarded",
                None,
                None,
                "dropped before delivery (fault: webhook_drop)",
                "",
            )
            return
        copies = 1
        if self.faults.chance(self.faults.settings.webhook_duplicate):
            self.faults.count("webhook_duplicate")
            copies = 2
        for _ in range(copies):
            self._attempts(session, hook_id, event)

    def _attempts(self, session: requests.Session, hook_id: int, event: JSON) -> None:
        """Retry with exponential back-off; later events wait, as on Procore."""
        for attempt in range(1, self.webhook_max_attempts + 1):
            with self._lock:
                hook = self.hooks.get(hook_id)
                hook = dict(hook) if hook else None
            if hook is None or self._stopping:
                return
            started = self.clock()
            status, error, body, headers = None, None, "", {}
            try:
                response = session.post(
                    hook["destination_url"],
                    data=json.dumps(event).encode(),
                    headers={
                        "Content-Type": "application/json",
                        "User-Agent": "Procore-Webhooks (sandbox)",
                        **hook["destination_headers"],
                    },
                    timeout=self.webhook_timeout_s,
                )
                status, body = response.status_code, response.text[:2000]
                headers = dict(response.headers)
            except requests.RequestException as exc:
                error = type(exc).__name__
            ok = status is not None and 200 <= status < 300
            if ok:
                outcome = "ok" if attempt == 1 else "retried"
            else:
                outcome = "failed" if attempt < self.webhook_max_attempts else "discarded"
            self._record_delivery(hook_id, event, outcome, status, error, body, headers, started)
            if ok:
                return
            if attempt < self.webhook_max_attempts:
                time.sleep(self.webhook_retry_backoff_s * 2 ** (attempt - 1))

    def _record_delivery(
        self,
        hook_id: int,
        event: JSON,
        outcome: str,
        status: int | None,
        error: str | None,
        body: str,
        headers: dict | None = None,
        started: float | None = None,
    ) -> None:
        now = self.clock()
        row = {
            "hook_id": hook_id,
            "event": event,
            "event_id": event["id"],
            "outcome": outcome,
            "started_at": iso_utc(started if started is not None else now, micro=True),
            "completed_at": iso_utc(now, micro=True),
            "response_headers": headers or {},
            "response_body": body,
        }
        if status is not None:  # no answer (connection error, drop): no status field
            row["response_status"] = status
        if error is not None:
            row["response_error"] = error
        with self._lock:
            row["id"] = len(self.webhook_deliveries) + 1
            self.webhook_deliveries.append(row)


# --- shapes -------------------------------------------------------------------------------


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


def _json_body(body: bytes) -> JSON:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError as exc:
        raise ApiError(400, {"errors": "Malformed JSON body"}) from exc
    if not isinstance(parsed, dict):
        raise ApiError(400, {"errors": "Body must be a JSON object"})
    return parsed


def _strip_project(record: JSON) -> JSON:
    return {k: v for k, v in record.items() if k != "project_id"}


V10_REQUISITION_DROP = {"vendor_id", "items", "item_packages", "summary_text"}
V11_LIST_DROP = {"items", "item_packages"}


def _requisition_v10(record: JSON) -> JSON:
    return {k: v for k, v in record.items() if k not in V10_REQUISITION_DROP}


def _requisition_view(view: str) -> Callable[[JSON], JSON]:
    if view not in ("default", "extended", "items", "action_policy"):
        raise ApiError(
            400, {"errors": "view must be one of default, extended, items, action_policy"}
        )
    if view in ("extended", "items"):
        return dict
    # default and action_policy: one model for every view, items only in extended/items
    return lambda r: {k: v for k, v in r.items() if k not in V11_LIST_DROP}


# v1.1 item fields the v1.0 contract_items model does not have
V10_ITEM_DROP = {
    "materials_presently_stored_from_previous_progress",
    "total_completed_and_stored_to_date_from_previous",
    "materials_stored_retainage_new_materials",
    "gross_amount",
    "net_amount",
}


def _contract_item_v10(item: JSON) -> JSON:
    return {k: v for k, v in item.items() if k not in V10_ITEM_DROP}


def _detail_row(item: JSON) -> JSON:
    """A /detail row from a v1.1 G703 item: the same figures plus retainage balances.

    work retainage now = before + retained this period + moved from stored - released;
    stored retainage before = now - new + moved + released.
    """
    cents = {k: _cents(v) for k, v in item.items() if isinstance(v, str) and _is_money(v)}
    work_now = (
        cents["work_completed_retainage_from_previous_application"]
        + cents["work_completed_retainage_retained_this_period"]
        + cents["materials_retainage_retained_moved"]
        - cents["work_completed_retainage_released_this_period"]
    )
    stored_now = cents["materials_stored_retainage_currently_retained"]
    stored_before = (
        stored_now
        - cents["materials_stored_retainage_new_materials"]
        + cents["materials_retainage_retained_moved"]
        + cents["materials_stored_retainage_released_this_period"]
    )
    work_before = cents["work_completed_retainage_from_previous_application"]
    copied = (
        "id",
        "cost_code_id",
        "description_of_work",
        "scheduled_value",
        "work_completed_from_previous_application",
        "work_completed_this_period",
        "materials_presently_stored",
        "total_completed_and_stored_to_date",
        "total_completed_and_stored_to_date_percent",
        "work_completed_retainage_from_previous_application",
        "work_completed_retainage_retained_this_period",
        "work_completed_retainage_released_this_period",
        "work_completed_retainage_percent_this_period",
        "materials_stored_retainage_currently_retained",
        "materials_stored_retainage_released_this_period",
        "materials_stored_retainage_percent_this_period",
        "materials_moved",
        "materials_retainage_retained_moved",
    )
    return {
        **{k: item[k] for k in copied if k in item},
        "item_number": item["position"],
        "item_type": item.get("item_type", "contract_item"),
        "balance_to_finish": money(
            cents["scheduled_value"] - cents["total_completed_and_stored_to_date"]
        ),
        "work_completed_retainage_currently_retained": money(work_now),
        "materials_stored_retainage_from_previous_application": money(stored_before),
        "materials_stored_retainage_retained_this_period": item[
            "materials_stored_retainage_new_materials"
        ],
        "total_retainage_currently_retained": money(work_now + stored_now),
        "total_retainage_from_previous_application": money(work_before + stored_before),
    }


def _is_money(text: str) -> bool:
    return bool(re.fullmatch(r"-?\d+\.\d{2}", text))


def _direct_cost_list(record: JSON) -> JSON:
    """List items: vendor as the name string, amount = grand total, no line items."""
    out = {k: v for k, v in record.items() if k not in ("line_items", "project", "project_id")}
    if record.get("vendor_name") is not None:
        out["vendor"] = record["vendor_name"]
    out["amount"] = record["grand_total"]
    return out


def _dc_line_listed(line: JSON, cost: JSON) -> JSON:
    """A direct cost line as the project-wide line list has it: its cost is the holder."""
    return {
        **line,
        "holder": {"id": cost["id"], "holder_type": "DirectCost"},
        "project": dict(cost["project"]),
    }


def _commitment_list(record: JSON) -> JSON:
    out = {k: v for k, v in record.items() if k not in ("line_items", "project_id")}
    vendor = record.get("vendor")
    if vendor:
        out["vendor"] = {"id": vendor["id"], "company": vendor["company"]}
    return out


def _change_order_v1(record: JSON) -> JSON:
    """v1.0 change order bodies carry no line items (they come from v2.0) and no project."""
    return {k: v for k, v in record.items() if k not in ("line_items", "project_id")}


def _commitment_type(record: JSON) -> str:
    return "WorkOrderContract" if record["number"].startswith("SC") else "PurchaseOrderContract"


def _rebalance(record: JSON, total: str, stamp: str) -> JSON:
    """Keep line items summing to the new grand total by adjusting the last line."""
    lines = record["line_items"]
    others = sum(_cents(line["amount"]) for line in lines[:-1])
    last = lines[-1]
    amount = money(_cents(total) - others)
    for field in ("amount", "total_amount", "extended_amount"):
        if field in last:
            last[field] = amount
    if "updated_at" in last:  # v2.0 change order lines have no timestamps
        last["updated_at"] = stamp
    return last


def _sort(rows: list[JSON], spec: str | None) -> list[JSON]:
    if not spec:
        return rows
    rows = list(rows)
    for field in reversed([f.strip() for f in spec.split(",") if f.strip()]):
        name = field.lstrip("-")
        rows.sort(
            key=lambda r, n=name: (r.get(n) is None, r.get(n) if r.get(n) is not None else ""),
            reverse=field.startswith("-"),
        )
    return rows


RANGE_FIELDS = {"updated_at", "created_at"}
ALLOWED_FILTERS = {
    "projects": {"by_status", "created_at", "updated_at", "origin_id"},
    "vendors": {"origin_id", "search", "created_at", "updated_at"},
    "cost_codes": {"origin_id"},
    "line_item_types": {"origin_id"},
    "billing_periods": set(),
    "requisitions": {
        "commitment_id",
        "period_id",
        "status",
        "created_at",
        "updated_at",
        "origin_id",
    },
    "direct_costs": {
        "origin_id",
        "invoice_number",
        "created_at",
        "updated_at",
        "payment_date",
        "received_date",
    },
    "line_items": {
        "direct_cost_id",
        "cost_code_id",
        "line_item_type_id",
        "created_at",
        "updated_at",
    },
    "commitments": {
        "status",
        "created_at",
        "updated_at",
        "include_deleted",
        "origin_id",
        "vendor_id",
    },
    "change_orders": {
        "batch_id",
        "contract_id",
        "vendor_id",
        "executed",
        "status",
        "created_at",
        "updated_at",
    },
}
DATE_FIELDS = {"received_date", "payment_date", "direct_cost_date", "billing_date", "contract_date"}


def _apply_filters(
    rows: list[JSON], filters: dict[str, list[str]], kind: str, sim: ProcoreSimulator
) -> list[JSON]:
    """Equality / range / array filters Procore documents; unknown names are ignored."""
    allowed = ALLOWED_FILTERS.get(kind, set())
    for name, values in filters.items():
        if name not in allowed:
            continue  # Procore ignores filters an action does not document
        if name in RANGE_FIELDS or name in DATE_FIELDS:
            low, high = parse_range(name, values[0])
            if name in DATE_FIELDS:
                low, high = low[:10], high[:10]
                rows = [r for r in rows if r.get(name) and low <= r[name] <= high]
            else:
                rows = [r for r in rows if r.get(name) and low <= r[name] <= high]
        elif name == "include_deleted":
            continue
        elif name == "by_status":
            wanted = values[0].lower()
            if wanted != "all":
                rows = [r for r in rows if bool(r.get("active")) == (wanted == "active")]
        elif name == "search":
            needle = values[0].lower()
            rows = [r for r in rows if needle in (r.get("name") or "").lower()]
        elif name == "vendor_id":
            wanted_ids = _int_values(values)
            rows = [r for r in rows if _vendor_of(r, sim) in wanted_ids]
        else:
            wanted_text = {
                part for v in values for part in (v.split(",") if name.endswith("_id") else [v])
            }
            rows = [r for r in rows if _field_text(r, name) in wanted_text]
    if kind == "commitments" and "include_deleted" not in filters:
        rows = [r for r in rows if not r.get("deleted_at")]
    elif kind == "commitments" and filters["include_deleted"][0] == "only":
        rows = [r for r in rows if r.get("deleted_at")]
    return rows


def _field_text(record: JSON, name: str) -> str | None:
    value = record.get(name)
    if value is None and name.endswith("_id"):
        nested = record.get(name[:-3])
        value = nested.get("id") if isinstance(nested, dict) else None
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _vendor_of(record: JSON, sim: ProcoreSimulator) -> int | None:
    if record.get("vendor_id") is not None:
        return record["vendor_id"]
    vendor = record.get("vendor")
    if isinstance(vendor, dict):
        return vendor.get("id")
    contract_id = record.get("contract_id")
    if contract_id is not None:
        kind = sim.commitment_kind.get(contract_id)
        contract = sim.by_id[kind].get(contract_id) if kind else None
        if contract and contract.get("vendor"):
            return contract["vendor"]["id"]
    return None
