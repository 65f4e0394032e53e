"""A local Deltek Vantagepoint REST API, faithful to docs/api/deltek.md.

Why it exists: the connector must be developed and tested against something that
behaves like a real Vantagepoint tenant -- OAuth password grant with expiring
tokens, bare JSON arrays, filterHash look-ups, DataEntry batches that post into
PSALedger, business-rule 400s -- without a tenant. Everything lives in memory,
keyed by Batch / (Vendor, Invoice) / RefNo so that tens of thousands of vouchers
keep every look-up a dict access.

Behaviour the Deltek documents do not pin down is INVENTED here and marked
"INVENTED" in comments: every 400/404/500 body text, the chart-of-accounts path,
auto-numbering of firms and vouchers, the filterHash condition semantics.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import operator
import os
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from deltek_procore.sandbox.faults import Faults

# No Deltek document lists the chart of accounts over REST. `GLSummary` (the default of
# DELTEK_ACCOUNTS_PATH) is an activity summary: rows per Period x Account with the amounts
# posted, plus the account's Name, Type, Status and GlobalAccount (docs/api/deltek.md, GL
# accounts). A valid account with no postings yet is absent from it. The simulator's real
# chart (table CA, what postings are validated against) is listed nowhere, as on a tenant.
ACCOUNTS_PATH = "GLSummary"
GL_GROUP_COLUMNS = ("Period", "Account")  # what `groupBy` may name
GL_SUM_COLUMNS = ("Amount", "Debit", "Credit")  # what `sumColumns` may name
GL_ACCOUNT_COLUMNS = ("Name", "Type", "Status", "GlobalAccount")  # joined from CA by Account

# Sandbox credentials (same values as deltek_procore/sandbox/seed.py).
DEFAULT_USERNAME = "apiuser"
DEFAULT_PASSWORD = "sandbox-deltek-password"  # noqa: S105 - public sandbox constant
DEFAULT_DATABASE = "C0000042000P_1_SANDBOX0000"
DEFAULT_CLIENT_ID = "sandbox+deltek/client="
DEFAULT_CLIENT_SECRET = "sandbox-deltek-client-secret"  # noqa: S105 - public sandbox constant

MONEY_FIELDS = frozenset(
    {
        "Amount",
        "NetAmount",
        "PaymentAmount",
        "DebitAmount",
        "CreditAmount",
        "Debit",
        "Credit",
        "Total",
        "CreditsTotal",
        "SumTotal",
        "DiffTotal",
    }
)
DENIED = {"Message": "Authorization has been denied for this request."}
SERVER_ERROR = {"Message": "An error has occurred."}  # ASP.NET's generic 500 text
GATEWAY_HTML = (
    "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{code} {reason}</h1></center>\r\n</body>\r\n</html>\r\n"
)
_REASONS = {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}

# Column defaults per resource: rows are normalised to these so every row has every
# column (as a SQL table would) and a filter on an unknown column can be refused.
FIRM_COLUMNS: dict[str, Any] = {
    "ClientID": "", "Client": "", "Name": "", "Status": "A", "ClientInd": "N",
    "VendorInd": "N", "Vendor": "", "Type": "", "Category": "", "SortName": "",
    "FedID": "", "TypeOfTIN": "", "Org": "", "ExportInd": "N", "WebSite": "", "Memo": "",
    "PrimaryAddress1": "", "PrimaryCity": "", "PrimaryState": "", "PrimaryZip": "",
    "PrimaryCountry": "", "PrimaryPhone": "", "PrimaryEmail": "", "CreateDate": "",
    "ModDate": "",
}  # fmt: skip
PROJECT_COLUMNS: dict[str, Any] = {
    "WBS1": "", "WBS2": " ", "WBS3": " ", "Name": "", "LongName": "", "ChargeType": "R",
    "SubLevel": "N", "Status": "A", "Org": "", "ClientID": "", "ProjMgr": "",
    "Principal": "", "Supervisor": "", "Fee": 0, "StartDate": "", "EndDate": "",
    "ProjectCurrencyCode": "USD", "ModDate": "",
}  # fmt: skip
ACCOUNT_COLUMNS: dict[str, Any] = {
    "Account": "", "Name": "", "Type": 0, "Status": "A", "GlobalAccount": "N",
    "Detail": "N", "AccountCurrencyCode": "USD",
}  # fmt: skip
AP_CONTROL_COLUMNS: dict[str, Any] = {
    "Batch": "", "Description": "", "Recurring": "N", "EndDate": "",
    "DefaultCurrencyCode": "USD", "Total": 0.0, "DefaultLiab": "", "DefaultBank": "",
    "DefaultDate": "", "Selected": "N", "Posted": "N", "Creator": "", "Period": 0,
    "Company": "", "PostPeriod": 0, "PostSeq": 0, "SubmittedBy": "", "VoucheredFromPO": "N",
}  # fmt: skip
AP_MASTER_COLUMNS: dict[str, Any] = {
    "Batch": "", "MasterPKey": "", "Vendor": "", "InvoiceDate": "", "Invoice": "",
    "TransDate": "", "LiabCode": "", "BankCode": "", "PayTerms": "Next", "PayDate": "",
    "Address": "<Default>", "Posted": "N", "Seq": 0, "Voucher": "", "CurrencyCode": "USD",
    "PaymentCurrencyCode": "USD", "Status": "N", "Description": "",
}  # fmt: skip
AP_DETAIL_COLUMNS: dict[str, Any] = {
    "Batch": "", "MasterPKey": "", "PKey": "", "Seq": 0, "Description": "", "WBS1": "",
    "WBS2": " ", "WBS3": " ", "Account": "", "Amount": 0.0, "SuppressBill": "N",
    "NetAmount": 0.0, "PONumber": "", "PaymentAmount": 0.0, "ExpenseCode": "",
    "OriginatingVendor": "", "CreateAsset": "N",
}  # fmt: skip
JE_CONTROL_COLUMNS: dict[str, Any] = {
    "Batch": "", "Description": "", "Recurring": "N", "EndDate": "",
    "DefaultCurrencyCode": "USD", "Total": 0.0, "CreditsTotal": 0.0, "AllowTaxEntries": "N",
    "Selected": "N", "Posted": "N", "Creator": "", "Period": 0, "Company": "",
    "Reverse": "N", "PostPeriod": 0, "PostSeq": 0,
}  # fmt: skip
JE_MASTER_COLUMNS: dict[str, Any] = {
    "Batch": "", "RefNo": "", "TransDate": "", "Description": "", "Type": "3",
    "UpdateBilled": "N", "Posted": "N", "Seq": 0, "CurrencyCode": "USD", "Status": "N",
    "Diary": "", "DiaryNo": 0,
}  # fmt: skip
JE_DETAIL_COLUMNS: dict[str, Any] = {
    "Batch": "", "RefNo": "", "PKey": "", "Seq": 0, "Description": "", "WBS1": "",
    "WBS2": " ", "WBS3": " ", "Account": "", "DebitAmount": 0.0, "CreditAmount": 0.0,
    "SuppressBill": "N", "LinkCompany": "",
}  # fmt: skip
LEDGER_COLUMNS: dict[str, Any] = {
    "Batch": "", "Period": 0, "PostSeq": 0, "PKey": "", "WBS1": "", "WBS2": " ",
    "WBS3": " ", "Account": "", "Org": "", "TransType": "", "SubType": "", "RefNo": "",
    "TransDate": "", "Desc1": "", "Desc2": "", "Amount": 0.0, "Vendor": "", "Voucher": "",
    "Invoice": "", "PONumber": "", "Company": "",
}  # fmt: skip
LEDGER_INDEXED = ("Batch", "PostSeq", "PKey", "RefNo", "Vendor", "Voucher", "Invoice")
KINDS = {
    "ap": {
        "control": AP_CONTROL_COLUMNS, "master": AP_MASTER_COLUMNS,
        "detail": AP_DETAIL_COLUMNS, "mkey": "MasterPKey", "label": "Invoice",
        "title": "Accounts Payable Vouchers",
    },
    "je": {
        "control": JE_CONTROL_COLUMNS, "master": JE_MASTER_COLUMNS,
        "detail": JE_DETAIL_COLUMNS, "mkey": "RefNo", "label": "RefNo",
        "title": "Journal Entries",
    },
}  # fmt: skip


class ApiError(Exception):
    """An HTTP error answer; raised anywhere in a handler, rendered by the dispatcher."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
        self.headers = headers or {}


def bad_request(message: str) -> ApiError:
    # INVENTED: Deltek documents no 400 body; ASP.NET Web API's {"Message": ...} is used.
    return ApiError(400, {"Message": message})


def not_found(message: str) -> ApiError:
    return ApiError(404, {"Message": message})  # INVENTED body


# ---------------------------------------------------------------- small pure helpers


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def norm_wbs(value: Any, level: int) -> str:
    """Blank WBS2/WBS3 read back as one space (as Deltek returns them); blank WBS1 as ''."""
    if is_blank(value):
        return " " if level > 1 else ""
    return str(value)


def to_decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value if value not in (None, "") else 0))
    except InvalidOperation as exc:
        raise ValueError(f"{value!r} is not a number") from exc


def money(value: Any, where: str) -> float:
    try:
        return float(to_decimal(value).quantize(Decimal("0.01")))
    except ValueError:
        raise bad_request(f"{where} must be a number, got {value!r}.") from None


def as_int(value: Any, where: str) -> int:
    if value in (None, ""):
        return 0
    try:
        return int(str(value).strip())
    except ValueError:
        raise bad_request(f"{where} must be an integer, got {value!r}.") from None


def hex32() -> str:
    return uuid.uuid4().hex


def fill(row: dict, columns: dict[str, Any]) -> dict:
    """A copy of `row` with every schema column present (defaults for the missing ones)."""
    out = {name: copy.copy(default) for name, default in columns.items()}
    out.update(row)
    return out


def ci_get(row: dict, name: str) -> Any:
    """Column look-up ignoring case, as SQL column names do."""
    if name in row:
        return row[name]
    lower = name.lower()
    for key, value in row.items():
        if key.lower() == lower:
            return value
    return None


def hide_money(value: Any) -> Any:
    """Zero every money field in a response, as field-level security does (gotcha 1)."""
    if isinstance(value, list):
        return [hide_money(item) for item in value]
    if isinstance(value, dict):
        return {
            k: (0 if k in MONEY_FIELDS and isinstance(v, int | float) else hide_money(v))
            for k, v in value.items()
        }
    return value


def period_bounds(period: int) -> tuple[str, str]:
    """First and last day of a calendar-month period YYYYPP (12 periods a year assumed)."""
    year, month = divmod(period, 100)
    start = datetime(year, month, 1)
    nxt = datetime(year + (month == 12), month % 12 + 1, 1)
    end = datetime.fromordinal(nxt.toordinal() - 1)
    fmt = "%Y-%m-%dT00:00:00.000"
    return start.strftime(fmt), end.strftime(fmt)


def previous_period(period: int) -> int:
    year, month = divmod(period, 100)
    return (year - 1) * 100 + 12 if month == 1 else period - 1


# ---------------------------------------------------------------- listing / filterHash

_EQ = {"=", "==", "eq"}
_OPS = _EQ | {"!=", "<>", "ne", ">", "gt", ">=", "ge", "<", "lt", "<=", "le", "like", "in"}
_OPS |= {"not like", "notlike"}
_ORDERING: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt, "gt": operator.gt, ">=": operator.ge, "ge": operator.ge,
    "<": operator.lt, "lt": operator.lt, "<=": operator.le, "le": operator.le,
}  # fmt: skip
_FH_KEY = re.compile(r"^filterhash\[(\d+)\]\[([a-z]+)\]$", re.IGNORECASE)


@dataclass(frozen=True)
class Cond:
    """One filterHash entry."""

    name: str
    value: str
    opp: str = "="
    condition: str = "AND"
    seq: int = 0


@dataclass
class ListQuery:
    conds: list[Cond] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=list)  # (column, descending)
    fields: list[str] = field(default_factory=list)
    start: int = 0
    count: int | None = None


def parse_filter_hash(params: list[tuple[str, str]]) -> list[Cond]:
    """filterHash[i][name|value|opp|condition|seq|type|tablename] -> ordered conditions."""
    parts: dict[int, dict[str, str]] = {}
    for key, value in params:
        match = _FH_KEY.match(key)
        if match:
            parts.setdefault(int(match.group(1)), {})[match.group(2).lower()] = value
    conds = []
    for index in sorted(parts):
        part = parts[index]
        if "name" not in part:
            raise bad_request(f"filterHash[{index}] has no name.")
        opp = part.get("opp", "=").strip().lower() or "="
        if opp not in _OPS:
            raise bad_request(f"filterHash[{index}]: unknown operator {part.get('opp')!r}.")
        condition = (part.get("condition") or "AND").strip().upper()
        if condition not in ("AND", "OR"):
            raise bad_request(f"filterHash[{index}]: condition must be AND or OR.")
        seq = as_int(part.get("seq"), f"filterHash[{index}][seq]") or index
        conds.append(Cond(part["name"], part.get("value", ""), opp, condition, seq))
    conds.sort(key=lambda c: c.seq)
    return conds


def like_to_regex(pattern: str) -> re.Pattern[str]:
    """SQL LIKE: % = any run, _ = one character, everything else literal."""
    out = []
    for char in pattern:
        out.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
    return re.compile("".join(out), re.DOTALL)


def _as_number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        return None


def compare(row_value: Any, cond: Cond) -> bool:
    """Does one row value satisfy one condition? Strings compare exactly (case too)."""
    opp, target = cond.opp, cond.value
    if opp in ("like", "not like", "notlike"):
        hit = like_to_regex(target).fullmatch("" if row_value is None else str(row_value))
        return bool(hit) if opp == "like" else not hit
    if opp == "in":
        return any(compare(row_value, Cond(cond.name, v, "=")) for v in target.split(","))
    if isinstance(row_value, int | float) and not isinstance(row_value, bool):
        number = _as_number(target)
        left: Any = Decimal(str(row_value))
        right: Any = number if number is not None else target
        if number is None:
            left = str(row_value)
    else:
        left = "" if row_value is None else str(row_value)
        right = target
        if is_blank(left) and is_blank(right):
            left = right = ""  # "" and " " are the same blank WBS
    if opp in _EQ:
        return left == right
    if opp in ("!=", "<>", "ne"):
        return left != right
    try:
        return bool(_ORDERING[opp](left, right))
    except TypeError:
        return False


def row_matches(row: dict, conds: list[Cond]) -> bool:
    """Left-to-right: each entry's `condition` joins it to what came before (INVENTED)."""
    result = True
    for index, cond in enumerate(conds):
        hit = compare(ci_get(row, cond.name), cond)
        if index == 0:
            result = hit
        elif cond.condition == "OR":
            result = result or hit
        else:
            result = result and hit
    return result


def _param(params: dict[str, str], name: str) -> str | None:
    value = params.get(name.lower())
    return None if value is None or value.strip() == "" else value.strip()


def _positive(params: dict[str, str], name: str) -> int | None:
    raw = _param(params, name)
    if raw is None:
        return None
    value = as_int(raw, name)
    if value <= 0:
        raise bad_request(f"{name} must be greater than zero.")
    return value


def parse_order(text: str | None) -> list[tuple[str, bool]]:
    """`Col_D` / `Col_A` / `Col desc` / `Col`, comma separated."""
    if not text:
        return []
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        words = part.split()
        if len(words) == 2 and words[1].lower() in ("asc", "desc"):
            out.append((words[0], words[1].lower() == "desc"))
        elif part[-2:].upper() in ("_D", "_A"):
            out.append((part[:-2], part[-2:].upper() == "_D"))
        else:
            out.append((part, False))
    return out


def parse_list_query(pairs: list[tuple[str, str]], *, limit_fails: bool) -> ListQuery:
    """Paging/sorting/field/filter parameters (docs/api/deltek.md#listing-paging-and-filters)."""
    params = {k.lower(): v for k, v in pairs}
    if limit_fails and _param(params, "limit") is not None:
        # DataEntry and PSALedger answer 500 to `limit`
        # (docs/api/deltek.md#listing-paging-and-filters).
        raise ApiError(500, SERVER_ERROR)
    size = _positive(params, "pageSize") or _positive(params, "limit")
    maxrows = _positive(params, "q.maxrows")
    page = _positive(params, "page")
    offset = _param(params, "offset")
    if offset is not None:
        start = as_int(offset, "offset")
        if start < 0:
            raise bad_request("offset must not be negative.")
    elif page and size:
        start = (page - 1) * size
    else:
        start = 0
    count = min(x for x in (size, maxrows) if x) if (size or maxrows) else None
    fields = [f.strip() for f in (params.get("fieldfilter") or "").split(",") if f.strip()]
    return ListQuery(
        parse_filter_hash(pairs), parse_order(params.get("order")), fields, start, count
    )


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    return (1, "" if value is None else str(value))


def project_fields(rows: list[dict], names: list[str]) -> list[dict]:
    if not names:
        return rows
    out = []
    for row in rows:
        lower = {k.lower(): k for k in row}
        out.append({lower[n.lower()]: row[lower[n.lower()]] for n in names if n.lower() in lower})
    return out


def apply_query(rows: Iterable[dict], query: ListQuery, columns: Iterable[str]) -> list[dict]:
    """Filter, sort, page and trim rows; returns copies of the page only."""
    known = {c.lower() for c in columns}
    for name in [c.name for c in query.conds] + [o[0] for o in query.order] + query.fields:
        if name.lower() not in known:
            raise bad_request(f"Invalid column name '{name}'.")  # INVENTED text
    selected = [r for r in rows if row_matches(r, query.conds)] if query.conds else list(rows)
    for name, descending in reversed(query.order):
        selected.sort(key=lambda r, n=name: _sort_key(ci_get(r, n)), reverse=descending)
    end = None if query.count is None else query.start + query.count
    page = [dict(r) for r in selected[query.start : end]]
    return project_fields(page, query.fields)


# ---------------------------------------------------------------- state records


@dataclass
class BatchRec:
    """One DataEntry file: control row, masters keyed by MasterPKey/RefNo, detail lines."""

    kind: str
    control: dict
    masters: dict[str, dict]
    details: list[dict]
    sum_total: Decimal = Decimal(0)  # sum of detail Amount (AP) / DebitAmount (JE)

    @property
    def posted(self) -> bool:
        return self.control.get("Posted") == "Y"

    def lines_of(self, key: str) -> list[dict]:
        mkey = KINDS[self.kind]["mkey"]
        return [d for d in self.details if d.get(mkey) == key]


@dataclass
class Ledger:
    """Append-only posted rows with equality indexes for look-ups by Invoice, Batch, ..."""

    rows: list[dict] = field(default_factory=list)
    index: dict[str, dict[str, list[dict]]] = field(
        default_factory=lambda: {c.lower(): {} for c in LEDGER_INDEXED}
    )

    def add(self, row: dict) -> None:
        self.rows.append(row)
        for column in LEDGER_INDEXED:
            self.index[column.lower()].setdefault(str(row.get(column, "")), []).append(row)

    def candidates(self, conds: list[Cond]) -> list[dict]:
        """Smallest index bucket usable for an all-AND equality filter, else every row."""
        if any(c.condition == "OR" for c in conds[1:]):
            return self.rows
        best: list[dict] | None = None
        for cond in conds:
            bucket_index = self.index.get(cond.name.lower())
            if bucket_index is None or cond.opp not in _EQ or is_blank(cond.value):
                continue
            bucket = bucket_index.get(cond.value, [])
            if best is None or len(bucket) < len(best):
                best = bucket
        return self.rows if best is None else best


@dataclass
class Token:
    expires_at: float
    calls: int = 0


@dataclass
class Ctx:
    """What a handler needs from the request."""

    method: str
    params: list[tuple[str, str]]
    body: bytes
    path: dict[str, str]
    api_root: str  # absolute URL of /{instance}/api, no trailing slash

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            raise bad_request("The request is invalid.") from None

    def param(self, name: str) -> str | None:
        lower = name.lower()
        for key, value in self.params:
            if key.lower() == lower:
                return value
        return None


Result = tuple[int, Any, dict[str, str]]


# ---------------------------------------------------------------- the simulator


class DeltekSimulator:
    """Vantagepoint under /{instance}/api plus /__admin; see the module docstring."""

    def __init__(
        self,
        seed: dict,
        faults: Faults | None = None,
        *,
        instance: str = "SANDBOX",
        token_ttl: int = 1799,
        clock: Callable[[], float] = time.time,
        username: str = DEFAULT_USERNAME,
        password: str = DEFAULT_PASSWORD,
        database: str = DEFAULT_DATABASE,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        password_grant_enabled: bool = True,
        ignore_control_totals: bool = False,
    ) -> None:
        self.faults = faults or Faults()
        self.instance = instance
        self.token_ttl = token_ttl
        self.clock = clock
        self._creds = (username, password, database, client_id, client_secret)
        self.password_grant_enabled = password_grant_enabled
        self.ignore_control_totals = ignore_control_totals
        # Periods up to the active one accept entries unless closed here (INVENTED: a firm
        # that backfills history keeps those periods open until it has reconciled them).
        self.closed_periods: set[int] = set()
        self._lock = threading.RLock()
        self._tokens: dict[str, Token] = {}
        self._refresh: set[str] = set()
        self._calls: dict[str, int] = {}
        self.company = str(seed.get("company") or "01")
        self.active_period = int(seed.get("active_period") or 0) or 202611
        self._firms: dict[str, dict] = {}
        self._vendor_index: dict[str, str] = {}  # Vendor number -> ClientID
        self._firm_numbers: dict[str, str] = {}  # Client number -> ClientID
        self._firm_cols = set(FIRM_COLUMNS)
        self._next_firm_no = 1
        for row in seed.get("firms", []):
            self._store_firm(fill(row, FIRM_COLUMNS) | {"ClientID": row.get("ClientID") or hex32()})
            self._firm_cols |= set(row)
        self._projects: dict[tuple[str, str, str], dict] = {}
        self._project_cols = set(PROJECT_COLUMNS)
        for row in seed.get("projects", []):
            self._store_project(row)
        self._accounts: dict[str, dict] = {}
        for row in seed.get("accounts", []):
            self._accounts[str(row["Account"])] = fill(row, ACCOUNT_COLUMNS)
        # GLSummary's source: (Period, Account) -> [debit, credit], seeded history + postings
        self._gl_activity: dict[tuple[int, str], list[Decimal]] = {}
        for row in seed.get("gl_history", []):
            self._seed_activity(row)
        self._batches: dict[str, dict[str, BatchRec]] = {"ap": {}, "je": {}}
        self._invoices: dict[tuple[str, str], tuple[str, str]] = {}  # -> (Batch, MasterPKey)
        self._ledgers: dict[str, Ledger] = {"ap": Ledger(), "je": Ledger()}
        self._post_seq = 0
        self._next_voucher = 1
        self._routes = self._route_table()
        self.app = Starlette(
            routes=[
                Route("/__admin/state", self._admin_state, methods=["GET"]),
                Route("/__admin/faults", self._admin_faults, methods=["GET", "POST"]),
                Route("/__admin/password-grant", self._admin_grant, methods=["POST"]),
                Route("/__admin/calls", self._admin_calls, methods=["GET"]),
                Route(
                    "/{instance}/api/{path:path}",
                    self._api,
                    methods=["GET", "POST", "PUT", "DELETE", "PATCH"],
                ),
            ]
        )

    def __repr__(self) -> str:  # never show credentials
        return f"DeltekSimulator(instance={self.instance!r}, firms={len(self._firms)})"

    # ------------------------------------------------------------ Python inspection API

    def ap_vouchers(self) -> list[dict]:
        """Every apMaster (unposted and posted) with Batch, Posted, Period, PostSeq, apDetail."""
        return self._vouchers("ap", "apDetail")

    def journal_entries(self) -> list[dict]:
        """Every jeMaster (unposted and posted) with its jeDetail lines."""
        return self._vouchers("je", "jeDetail")

    def firms(self) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._firms.values()]

    def call_counts(self) -> dict[str, int]:
        """Requests received per "METHOD route template", e.g. "GET PSALedger/AP"."""
        with self._lock:
            return dict(self._calls)

    def gl_summary(self) -> list[dict]:
        """GLSummary's rows (one per Period x Account with activity), as the API serves them."""
        with self._lock:
            return self._gl_rows(GL_GROUP_COLUMNS, GL_SUM_COLUMNS)

    def ledger(self, transtype: str) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._ledgers[transtype.lower()].rows]

    def set_password_grant(self, enabled: bool) -> None:
        self.password_grant_enabled = enabled

    def set_active_period(self, period: int) -> None:
        with self._lock:
            self.active_period = period

    def expire_tokens(self) -> None:
        """Kill every access token now (refresh tokens stay usable)."""
        with self._lock:
            self._tokens.clear()

    def state(self) -> dict:
        with self._lock:
            return {
                "instance": self.instance,
                "company": self.company,
                "active_period": self.active_period,
                "password_grant_enabled": self.password_grant_enabled,
                "firms": self.firms(),
                "projects": [dict(r) for r in self._projects.values()],
                "accounts": [dict(r) for r in self._accounts.values()],
                "gl_summary": self.gl_summary(),
                "batches": {
                    kind: [self._batch_dump(b) for b in batches.values()]
                    for kind, batches in self._batches.items()
                },
                "ledger": {k.upper(): [dict(r) for r in v.rows] for k, v in self._ledgers.items()},
                "faults": self.faults.as_dict(),
                "calls": dict(self._calls),
                "active_tokens": len(self._tokens),
            }

    def _vouchers(self, kind: str, detail_key: str) -> list[dict]:
        with self._lock:
            out = []
            for batch in self._batches[kind].values():
                for key, master in batch.masters.items():
                    row = dict(master)
                    row["Period"] = batch.control["PostPeriod"] or batch.control["Period"]
                    row["PostSeq"] = batch.control["PostSeq"]
                    row[detail_key] = [dict(d) for d in batch.lines_of(key)]
                    out.append(row)
            return out

    def _batch_dump(self, batch: BatchRec) -> dict:
        return {
            **batch.control,
            f"{batch.kind}Master": [dict(m) for m in batch.masters.values()],
            f"{batch.kind}Detail": [dict(d) for d in batch.details],
        }

    # ------------------------------------------------------------ seed storage

    def _store_firm(self, row: dict) -> None:
        old = self._firms.get(row["ClientID"])
        if old is not None:
            self._vendor_index.pop(old["Vendor"], None)
            self._firm_numbers.pop(old["Client"], None)
        self._firms[row["ClientID"]] = row
        if row["Vendor"]:
            self._vendor_index[row["Vendor"]] = row["ClientID"]
        if row["Client"]:
            self._firm_numbers[row["Client"]] = row["ClientID"]

    def _store_project(self, row: dict) -> None:
        full = fill(row, PROJECT_COLUMNS)
        for level in (1, 2, 3):
            full[f"WBS{level}"] = norm_wbs(full.get(f"WBS{level}"), level)
        self._projects[(full["WBS1"], full["WBS2"].strip(), full["WBS3"].strip())] = full
        self._project_cols |= set(row)

    # ------------------------------------------------------------ routing

    def _route_table(self) -> list[tuple[str, re.Pattern[str], str, Callable[[Ctx], Result]]]:
        tt = r"(?P<tt>ap|je)"
        table = [
            ("POST", r"token", "token", self._token),
            ("GET", r"firm", "firm", self._firm_list),
            ("POST", r"firm", "firm", self._firm_create),
            ("GET", r"firm/(?P<id>[^/]+)", "firm/{ClientID}", self._firm_get),
            ("PUT", r"firm/(?P<id>[^/]+)", "firm/{ClientID}", self._firm_update),
            ("GET", r"project", "project", self._project_list),
            ("GET", r"project/(?P<id>[^/]+)", "project/{WBS1}", self._project_get),
            ("GET", r"settings/activeperiod", "Settings/ActivePeriod", self._active_period),
            ("PUT", r"settings/activeperiod/(?P<id>\d{6})", "Settings/ActivePeriod/{Period}",
             self._set_active_period),
            ("GET", r"settings/period", "Settings/Period", self._periods),
            ("GET", re.escape(ACCOUNTS_PATH.lower()), ACCOUNTS_PATH, self._gl_summary),
            ("GET", rf"dataentry/{tt}landing", "DataEntry/{tt}Landing", self._landing),
            ("GET", rf"dataentry/{tt}control", "DataEntry/{tt}Control", self._landing),
            ("POST", rf"dataentry/{tt}control", "DataEntry/{tt}Control", self._batch_create),
            ("GET", rf"dataentry/{tt}control/(?P<id>[^/]+)", "DataEntry/{tt}Control/{Batch}",
             self._batch_get),
            ("PUT", rf"dataentry/{tt}control/(?P<id>[^/]+)", "DataEntry/{tt}Control/{Batch}",
             self._batch_update),
            ("DELETE", rf"dataentry/{tt}control/(?P<id>[^/]+)", "DataEntry/{tt}Control/{Batch}",
             self._batch_delete),
            ("GET", rf"dataentry/{tt}master/(?P<id>[^/]+)", "DataEntry/{tt}Master/{Batch}",
             self._batch_masters),
            ("GET", rf"dataentry/{tt}detail/(?P<id>[^/]+)", "DataEntry/{tt}Detail/{Batch}",
             self._batch_details),
            ("PUT", r"dataentry/posttransfile", "DataEntry/PostTransFile", self._post_trans_file),
            ("GET", rf"psaledger/{tt}", "PSALedger/{TT}", self._ledger_list),
        ]  # fmt: skip
        return [
            (method, re.compile(pattern + r"/?", re.IGNORECASE), template, handler)
            for method, pattern, template, handler in table
        ]

    def _match(self, method: str, path: str) -> tuple[str, dict[str, str], Callable] | None:
        allowed = False
        for route_method, pattern, template, handler in self._routes:
            match = pattern.fullmatch(path)
            if not match:
                continue
            if route_method != method:
                allowed = True
                continue
            groups = {k: v for k, v in match.groupdict().items() if v is not None}
            if "tt" in groups:
                groups["tt"] = groups["tt"].lower()
                template = template.replace("{tt}", groups["tt"])
                template = template.replace("{TT}", groups["tt"].upper())
            return template, groups, handler
        if allowed:
            raise ApiError(
                405, {"Message": f"The requested resource does not support http method '{method}'."}
            )
        return None

    async def _api(self, request: Request) -> Response:
        if request.path_params["instance"].lower() != self.instance.lower():
            return self._json(404, {"Message": "Unknown instance."})
        method = request.method
        path = request.path_params["path"].strip("/")
        params = list(request.query_params.multi_items())
        body = await request.body()
        as_get = method == "POST" and request.headers.get("dvp-postasget", "").lower() == "true"
        if as_get:
            method = "GET"
            params += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        try:
            matched = self._match(method, path)
        except ApiError as err:
            return self._json(err.status, err.body)
        url = f"/{self.instance}/api/{path}"
        if matched is None:
            self._count(f"{request.method} ?")
            message = f"No HTTP resource was found that matches the request URI '{url}'."
            return self._json(404, {"Message": message})
        template, path_params, handler = matched
        self._count(f"{request.method} {template}")
        fault = await self._inject_faults()
        if fault is not None:
            return fault
        root = f"{request.url.scheme}://{request.url.netloc}/{self.instance}/api"
        ctx = Ctx(method, params, body, path_params, root)
        try:
            if handler != self._token:
                self._authorise(request.headers.get("authorization", ""))
            hollow = (
                self.faults.hollow_success()
                if method != "GET"
                and handler != self._token
                and path.lower().startswith("dataentry/")
                else None
            )
            if hollow and not self.faults.settings.hollow_success_saves:
                self.faults.count(f"deltek_{hollow}_success_unsaved")
                return self._hollow(hollow)
            with self._lock:
                status, payload, headers = handler(ctx)
        except ApiError as err:
            return self._json(err.status, err.body, err.headers)
        if hollow and status < 300:
            self.faults.count(f"deltek_{hollow}_success_saved")
            return self._hollow(hollow)
        if method != "GET" and handler != self._token and status < 300:
            if self.faults.lose_response():
                self.faults.count("deltek_lost_response")
                return self._gateway(502)
        if method == "GET" and self.faults.settings.hide_amounts:
            payload = hide_money(payload)
        if isinstance(payload, Response):
            return payload
        return self._json(status, payload, headers)

    async def _inject_faults(self) -> Response | None:
        faults = self.faults
        await faults.delay()
        if faults.stall():
            faults.count("deltek_stall")
            await asyncio.sleep(faults.settings.timeout_s)
        if faults.take_429():
            faults.count("deltek_429")
            # INVENTED: Deltek documents no rate limit; a gateway-style 429.
            return self._json(429, {"Message": "Too many requests."}, {"Retry-After": "1"})
        code = faults.pick_5xx()
        if code is not None:
            faults.count(f"deltek_{code}")
            return self._json(500, SERVER_ERROR) if code == 500 else self._gateway(code)
        return None

    def _count(self, key: str) -> None:
        with self._lock:
            self._calls[key] = self._calls.get(key, 0) + 1

    @staticmethod
    def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        text = json.dumps(payload, ensure_ascii=False, default=str)
        return Response(text, status, headers, media_type="application/json; charset=utf-8")

    @staticmethod
    def _hollow(kind: str) -> Response:
        """A 200 a proxy or a half-failed server may send: no body, or a cut-off one."""
        body = "" if kind == "empty" else '[{"Batch": "PCAP'
        return Response(body, 200, media_type="application/json; charset=utf-8")

    @staticmethod
    def _gateway(code: int) -> Response:
        html = GATEWAY_HTML.format(code=code, reason=_REASONS.get(code, "Error"))
        return Response(html, code, media_type="text/html")

    # ------------------------------------------------------------ authentication

    def _authorise(self, header: str) -> None:
        scheme, _, value = header.partition(" ")
        unauthorised = ApiError(401, DENIED, {"WWW-Authenticate": "Bearer"})
        if scheme.lower() != "bearer" or not value.strip():
            raise unauthorised
        with self._lock:
            token = self._tokens.get(value.strip())
            if token is None or self.clock() >= token.expires_at:
                self._tokens.pop(value.strip(), None)
                raise unauthorised
            token.calls += 1
            limit = self.faults.settings.token_expire_after_calls
            if limit and token.calls > limit:
                del self._tokens[value.strip()]
                raise unauthorised

    def _token(self, ctx: Ctx) -> Result:
        """OAuth2 token endpoint: password and refresh_token grants, OWIN error shape."""
        form = {k.lower(): v for k, v in parse_qsl(ctx.body.decode("utf-8", "replace"), True)}
        username, password, database, client_id, client_secret = self._creds
        grant = form.get("grant_type", "")
        if grant not in ("password", "refresh_token"):
            raise ApiError(400, {"error": "unsupported_grant_type"})
        if grant == "password" and not self.password_grant_enabled:
            raise ApiError(400, {"error": "unsupported_grant_type"})
        if form.get("client_id") != client_id or form.get("client_secret") != client_secret:
            # INVENTED description; the error code is the OAuth2 standard one.
            raise ApiError(
                400,
                {"error": "invalid_client", "error_description": "The client is not valid."},
            )
        if form.get("database") != database:
            # INVENTED description.
            raise ApiError(
                400,
                {"error": "invalid_grant", "error_description": "The database is not valid."},
            )
        if grant == "refresh_token":
            presented = form.get("refresh_token", "")
            if presented not in self._refresh:
                desc = "The refresh token is invalid or has expired."  # INVENTED
                raise ApiError(400, {"error": "invalid_grant", "error_description": desc})
            self._refresh.discard(presented)  # refresh tokens are single use
        else:
            if form.get("integrated", "N").upper() == "Y":
                desc = "Integrated authentication is not available for this database."
                raise ApiError(400, {"error": "invalid_grant", "error_description": desc})
            if (form.get("username", "").lower(), form.get("password")) != (
                username.lower(),
                password,
            ):
                desc = "The user name or password is incorrect."
                raise ApiError(400, {"error": "invalid_grant", "error_description": desc})
        return 200, self._issue_token(), {"Cache-Control": "no-store"}

    def _issue_token(self) -> dict:
        access = secrets.token_urlsafe(48)
        refresh = base64.b64encode(os.urandom(21)).decode()  # may hold + / = like Deltek's
        self._tokens[access] = Token(self.clock() + self.token_ttl)
        self._refresh.add(refresh)
        return {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": self.token_ttl,
            "refresh_token": refresh,
        }

    # ------------------------------------------------------------ firms

    def _firm_list(self, ctx: Ctx) -> Result:
        query = parse_list_query(ctx.params, limit_fails=False)
        rows: Iterable[dict] = self._firms.values()
        vendor = next((c for c in query.conds if c.name.lower() == "vendor"), None)
        if vendor and vendor.opp in _EQ and len(query.conds) == 1 and not is_blank(vendor.value):
            cid = self._vendor_index.get(vendor.value)
            rows = [self._firms[cid]] if cid else []
        return 200, apply_query(rows, query, self._firm_cols), {}

    def _firm_get(self, ctx: Ctx) -> Result:
        raw = ctx.path["id"]
        row = self._firms.get(raw) or self._firms.get(raw.lower().replace("-", ""))
        if row is None:
            raise not_found(f"Firm {ctx.path['id']} was not found.")
        return 200, project_fields([dict(row)], self._field_filter(ctx)), {}

    def _firm_create(self, ctx: Ctx) -> Result:
        body = ctx.json()
        items = body if isinstance(body, list) else [body]
        if not items or not all(isinstance(i, dict) for i in items):
            raise bad_request("The request body must be a firm object or an array of them.")
        failing = self.faults.listed("failing_firms")
        if failing and any({str(i.get("Vendor")), str(i.get("Name"))} & failing for i in items):
            self.faults.count("deltek_firm_create_failed")
            raise ApiError(500, SERVER_ERROR)  # fault: this firm cannot be created
        stamp = self._stamp()
        created: list[dict] = []
        taken_vendors = dict(self._vendor_index)
        taken_numbers = dict(self._firm_numbers)
        for item in items:
            row = self._new_firm(item, stamp)
            self._check_firm_numbers(row, taken_vendors, taken_numbers)
            taken_vendors[row["Vendor"]] = row["ClientID"]
            taken_numbers[row["Client"]] = row["ClientID"]
            created.append(row)
        for row in created:
            self._store_firm(row)
            self._firm_cols |= set(row)
        location = f"{ctx.api_root}/firm/{created[0]['ClientID']}"
        rows = project_fields([dict(r) for r in created], self._field_filter(ctx))
        return 201, rows, {"Location": location}

    def _new_firm(self, item: dict, stamp: str) -> dict:
        if is_blank(item.get("Name")):
            raise bad_request("Name is required.")
        row = fill({k: v for k, v in item.items() if v is not None}, FIRM_COLUMNS)
        cid = str(item.get("ClientID") or "").lower().replace("-", "")
        if not re.fullmatch(r"[0-9a-f]{32}", cid) or cid in self._firms:
            cid = hex32()
        row["ClientID"] = cid
        if is_blank(row["Client"]):
            row["Client"] = self._auto_firm_number()  # INVENTED auto-numbering
        if row["VendorInd"] == "Y" and is_blank(row["Vendor"]):
            row["Vendor"] = row["Client"]  # Vendor number defaults to the firm number [C VTAB]
        row["CreateDate"] = row["ModDate"] = stamp
        return row

    def _auto_firm_number(self) -> str:
        while True:
            number = f"F{self._next_firm_no:06d}"
            self._next_firm_no += 1
            if number not in self._firm_numbers:
                return number

    @staticmethod
    def _check_firm_numbers(row: dict, vendors: dict[str, str], numbers: dict[str, str]) -> None:
        cid = row["ClientID"]
        if row["Vendor"] and vendors.get(row["Vendor"], cid) != cid:
            raise bad_request(f"Vendor number '{row['Vendor']}' is already in use.")
        if row["Client"] and numbers.get(row["Client"], cid) != cid:
            raise bad_request(f"Firm number '{row['Client']}' is already in use.")

    def _firm_update(self, ctx: Ctx) -> Result:
        cid = ctx.path["id"]
        cid = cid if cid in self._firms else cid.lower().replace("-", "")
        current = self._firms.get(cid)
        if current is None:
            raise not_found(f"Firm {ctx.path['id']} was not found.")
        body = ctx.json()
        body = body[0] if isinstance(body, list) and body else body
        if not isinstance(body, dict):
            raise bad_request("The request body must be a firm object.")
        row = {**current, **{k: v for k, v in body.items() if k != "ClientID"}}
        if "Name" in body and is_blank(row["Name"]):
            raise bad_request("Name is required.")
        if row["VendorInd"] == "Y" and is_blank(row["Vendor"]):
            row["Vendor"] = row["Client"]
        self._check_firm_numbers(row, self._vendor_index, self._firm_numbers)
        row["ModDate"] = self._stamp()
        self._store_firm(row)
        self._firm_cols |= set(row)
        return 200, project_fields([dict(row)], self._field_filter(ctx)), {}

    # ------------------------------------------------------------ projects, settings, accounts

    def _project_list(self, ctx: Ctx) -> Result:
        query = parse_list_query(ctx.params, limit_fails=False)
        rows: Iterable[dict] = self._projects.values()
        level = (ctx.param("wbstype") or "").lower()
        if level in ("wbs1", "wbs2", "wbs3"):
            rows = [r for r in rows if self._wbs_level(r) == int(level[-1])]
        return 200, apply_query(rows, query, self._project_cols), {}

    @staticmethod
    def _wbs_level(row: dict) -> int:
        return 3 if row["WBS3"].strip() else 2 if row["WBS2"].strip() else 1

    def _project_get(self, ctx: Ctx) -> Result:
        row = self._projects.get((ctx.path["id"], "", ""))
        if row is None:
            raise not_found(f"Project {ctx.path['id']} was not found.")
        return 200, project_fields([dict(row)], self._field_filter(ctx)), {}

    def _period_row(self, period: int) -> dict:
        start, end = period_bounds(period)
        year = period // 100
        return {
            "Period": period,
            "RawPeriod": period,
            "FmtPeriod": f"{period % 100:02d}/{year}",
            "AccountPdStart": start,
            "AccountPdEnd": end,
            "FYStart": f"{year}-01-01T00:00:00.000",
            "FYEnd": f"{year}-12-31T00:00:00.000",
            "ActiveCompanyClosed": "N" if period == self.active_period else "Y",
            "AllCompaniesClosed": "N" if period == self.active_period else "Y",
            "Company": self.company,
        }

    def _active_period(self, ctx: Ctx) -> Result:
        return 200, [self._period_row(self.active_period)], {}

    def _set_active_period(self, ctx: Ctx) -> Result:
        period = int(ctx.path["id"])
        if not 1 <= period % 100 <= 12:
            raise bad_request(f"Period {period} does not exist.")
        self.active_period = period
        return 200, [self._period_row(period)], {}

    def _periods(self, ctx: Ctx) -> Result:
        """The active period and the eleven before it (earlier ones closed, INVENTED)."""
        periods = [self.active_period]
        for _ in range(11):
            periods.append(previous_period(periods[-1]))
        rows = [self._period_row(p) for p in sorted(periods)]
        query = parse_list_query(ctx.params, limit_fails=False)
        return 200, apply_query(rows, query, rows[0].keys()), {}

    # ------------------------------------------------------------ GLSummary (activity)

    def _seed_activity(self, row: dict) -> None:
        """One seeded history row: Period, Account and Amount (signed) or Debit/Credit."""
        account = str(row["Account"])
        if account not in self._accounts:
            raise ValueError(f"gl_history names account {account!r}, which is not in the chart")
        debit, credit = to_decimal(row.get("Debit")), to_decimal(row.get("Credit"))
        if not debit and not credit:
            amount = to_decimal(row.get("Amount"))
            debit, credit = max(amount, Decimal(0)), max(-amount, Decimal(0))
        self._add_activity(int(row["Period"]), account, debit, credit)

    def _add_activity(self, period: int, account: str, debit: Decimal, credit: Decimal) -> None:
        totals = self._gl_activity.setdefault((period, account), [Decimal(0), Decimal(0)])
        totals[0] += debit
        totals[1] += credit

    def _post_activity(self, row: dict) -> None:
        """A posted ledger line adds to its account's activity in its period."""
        amount = to_decimal(row["Amount"])
        debit, credit = max(amount, Decimal(0)), max(-amount, Decimal(0))
        self._add_activity(int(row["Period"]), str(row["Account"]), debit, credit)

    @staticmethod
    def _gl_columns(raw: str | None, allowed: tuple[str, ...], name: str) -> tuple[str, ...]:
        """`groupBy` / `sumColumns`: comma-separated names, case-insensitive (INVENTED rules)."""
        if raw is None or not raw.strip():
            return allowed
        known = {c.lower(): c for c in allowed}
        picked = []
        for part in raw.split(","):
            column = known.get(part.strip().lower())
            if column is None:
                raise bad_request(f"{name}: '{part.strip()}' is not a GLSummary column.")
            if column not in picked:
                picked.append(column)
        return tuple(picked)

    def _gl_rows(self, group: tuple[str, ...], sums: tuple[str, ...]) -> list[dict]:
        """Activity grouped by `group`, with the `sums` asked for, ordered by Account, Period."""
        grouped: dict[tuple, list[Decimal]] = {}
        for (period, account), (debit, credit) in self._gl_activity.items():
            key = tuple(period if c == "Period" else account for c in group)
            totals = grouped.setdefault(key, [Decimal(0), Decimal(0)])
            totals[0] += debit
            totals[1] += credit
        rows = []
        for key, (debit, credit) in grouped.items():
            row: dict[str, Any] = dict(zip(group, key, strict=True))
            if "Account" in row:
                chart = self._accounts[row["Account"]]
                row.update({c: chart[c] for c in GL_ACCOUNT_COLUMNS})
            values = {"Amount": debit - credit, "Debit": debit, "Credit": credit}
            row.update({c: float(values[c]) for c in sums})
            rows.append(row)
        rows.sort(key=lambda r: (str(r.get("Account", "")), int(r.get("Period", 0))))
        return rows

    def _gl_summary(self, ctx: Ctx) -> Result:
        query = parse_list_query(ctx.params, limit_fails=False)
        group = self._gl_columns(ctx.param("groupBy"), GL_GROUP_COLUMNS, "groupBy")
        sums = self._gl_columns(ctx.param("sumColumns"), GL_SUM_COLUMNS, "sumColumns")
        rows = self._gl_rows(group, sums)
        columns = set(group) | set(sums) | (set(GL_ACCOUNT_COLUMNS) if "Account" in group else set())
        return 200, apply_query(rows, query, columns), {}

    # ------------------------------------------------------------ DataEntry batches

    def _unposted(self, kind: str) -> Iterator[BatchRec]:
        return (b for b in self._batches[kind].values() if not b.posted)

    def _open_batch(self, kind: str, name: str) -> BatchRec:
        batch = self._batches[kind].get(name)
        if batch is None or batch.posted:  # posted files leave the DataEntry tables
            raise not_found(f"Batch '{name}' was not found.")
        return batch

    def _control_view(self, batch: BatchRec) -> dict:
        """The control row plus the computed totals Deltek adds on GET (Q-APG)."""
        row = dict(batch.control)
        row["SumTotal"] = float(batch.sum_total)
        row["DiffTotal"] = float(to_decimal(row["Total"]) - batch.sum_total)
        return row

    def _landing(self, ctx: Ctx) -> Result:
        kind = ctx.path["tt"]
        query = parse_list_query(ctx.params, limit_fails=True)
        rows = [self._control_view(b) for b in self._unposted(kind)]
        columns = set(KINDS[kind]["control"]) | {"SumTotal", "DiffTotal"}
        return 200, apply_query(rows, query, columns), {}

    def _batch_get(self, ctx: Ctx) -> Result:
        batch = self._open_batch(ctx.path["tt"], ctx.path["id"])
        return 200, project_fields([self._control_view(batch)], self._field_filter(ctx)), {}

    def _batch_masters(self, ctx: Ctx) -> Result:
        kind = ctx.path["tt"]
        query = parse_list_query(ctx.params, limit_fails=True)
        batch = self._batches[kind].get(ctx.path["id"])
        rows = [] if batch is None or batch.posted else list(batch.masters.values())
        return 200, apply_query(rows, query, KINDS[kind]["master"]), {}

    def _batch_details(self, ctx: Ctx) -> Result:
        kind = ctx.path["tt"]
        query = parse_list_query(ctx.params, limit_fails=True)
        batch = self._batches[kind].get(ctx.path["id"])
        rows = [] if batch is None or batch.posted else batch.details
        if kind == "je":
            rows = [self._je_detail_view(d) for d in rows]
        columns = set(KINDS[kind]["detail"]) | {"WBS1Name", "ChargeType", "Org", "AccountName"}
        return 200, apply_query(rows, query, columns | {"AccountType"}), {}

    def _je_detail_view(self, detail: dict) -> dict:
        """jeDetail GET echoes project and account names (Q-JED)."""
        project = self._projects.get((detail["WBS1"], "", "")) or {}
        account = self._accounts.get(detail["Account"]) or {}
        return {
            **detail,
            "WBS1Name": project.get("Name", ""),
            "ChargeType": project.get("ChargeType", ""),
            "Org": project.get("Org", ""),
            "AccountName": account.get("Name", ""),
            "AccountType": account.get("Type", 0),
        }

    def _batch_create(self, ctx: Ctx) -> Result:
        kind = ctx.path["tt"]
        body = ctx.json()
        items = body if isinstance(body, list) else [body]
        if not items or not all(isinstance(i, dict) for i in items):
            raise bad_request(f"The request body must be a {kind}Control object.")
        built: list[BatchRec] = []
        for item in items:
            name = self._batch_name(item)
            existing = self._batches[kind].get(name)
            if existing is not None or any(b.control["Batch"] == name for b in built):
                state = "posted" if existing is not None and existing.posted else "unposted"
                raise bad_request(f"Batch '{name}' already exists ({state}).")
            built.append(self._build_batch(kind, item, None))
        for batch in built:
            self._commit_batch(batch, None)
        rows = [self._batch_dump(b) for b in built]
        location = f"{ctx.api_root}/DataEntry/{kind}Control/{built[0].control['Batch']}"
        return 201, project_fields(rows, self._field_filter(ctx)), {"Location": location}

    def _batch_update(self, ctx: Ctx) -> Result:
        """PUT is a PATCH: control fields merge, masters/details upsert by key."""
        kind = ctx.path["tt"]
        current = self._open_batch(kind, ctx.path["id"])
        body = ctx.json()
        body = body[0] if isinstance(body, list) and body else body
        if not isinstance(body, dict):
            raise bad_request(f"The request body must be a {kind}Control object.")
        if not is_blank(body.get("Batch")) and body["Batch"] != current.control["Batch"]:
            raise bad_request("Batch cannot be changed.")
        mkey = KINDS[kind]["mkey"]
        merged = {k: v for k, v in current.control.items() if k not in ("Posted",)}
        merged.update(
            {k: v for k, v in body.items() if k not in (f"{kind}Master", f"{kind}Detail")}
        )
        masters = {k: dict(v) for k, v in current.masters.items()}
        for item in body.get(f"{kind}Master") or []:
            key = str(item.get(mkey) or "") or (hex32() if kind == "ap" else "")
            item = {**item, mkey: key} if key else item
            masters[key] = {**masters.get(key, {}), **item}
        details = {d["PKey"]: dict(d) for d in current.details}
        for item in body.get(f"{kind}Detail") or []:
            key = str(item.get("PKey") or "") or hex32()
            details[key] = {**details.get(key, {}), **item, "PKey": key}
        merged[f"{kind}Master"] = list(masters.values())
        merged[f"{kind}Detail"] = list(details.values())
        batch = self._build_batch(kind, merged, current)
        self._commit_batch(batch, current)
        return 200, project_fields([self._control_view(batch)], self._field_filter(ctx)), {}

    def _batch_delete(self, ctx: Ctx) -> Result:
        kind = ctx.path["tt"]
        batch = self._open_batch(kind, ctx.path["id"])
        self._unindex(batch)
        del self._batches[kind][batch.control["Batch"]]
        return 200, [], {}  # INVENTED body: Deltek documents only "DELETE 200"

    @staticmethod
    def _batch_name(item: dict) -> str:
        name = item.get("Batch")
        if is_blank(name):
            raise bad_request("Batch is required.")
        name = str(name)
        if len(name) > 32:
            raise bad_request(f"Batch '{name}' is longer than 32 characters.")
        return name

    def _build_batch(self, kind: str, body: dict, current: BatchRec | None) -> BatchRec:
        """Normalise and validate a whole file; raises on the first bad record (nothing kept)."""
        spec = KINDS[kind]
        name = self._batch_name(body)
        control = fill(
            {k: v for k, v in body.items() if k not in (f"{kind}Master", f"{kind}Detail")},
            spec["control"],
        )
        control["Batch"] = name
        control["Posted"] = "N"
        control["Total"] = money(control["Total"], "Total")
        if kind == "je":
            control["CreditsTotal"] = money(control["CreditsTotal"], "CreditsTotal")
        control["Period"] = self._open_period(control["Period"])
        company = str(control.get("Company") or "").strip() or self.company
        if company != self.company:
            raise bad_request(f"Company '{company}' does not exist.")
        control["Company"] = company
        masters = self._build_masters(kind, name, body.get(f"{kind}Master") or [], control)
        details = self._build_details(kind, name, body.get(f"{kind}Detail") or [], masters)
        if kind == "ap":
            self._check_invoices(name, masters, current)
            for master in masters.values():
                if is_blank(master["Voucher"]):
                    master["Voucher"] = self._auto_voucher()  # INVENTED auto-numbering
        else:
            self._check_balanced(masters, details)
        field_name = "Amount" if kind == "ap" else "DebitAmount"
        total = sum((to_decimal(d[field_name]) for d in details), Decimal(0))
        return BatchRec(kind, control, masters, details, total)

    def _open_period(self, value: Any) -> int:
        period = as_int(value, "Period")
        if period == 0:
            return self.active_period
        if period > self.active_period or period in self.closed_periods:
            raise bad_request(
                f"Period {period} is not open; the active period is {self.active_period}."
            )
        return period

    def _build_masters(self, kind: str, name: str, items: list, control: dict) -> dict[str, dict]:
        spec = KINDS[kind]
        mkey, label = spec["mkey"], spec["label"]
        masters: dict[str, dict] = {}
        for seq, item in enumerate(items, start=1):
            if not isinstance(item, dict):
                raise bad_request(f"{kind}Master entries must be objects.")
            row = fill(item, spec["master"])
            where = f"{kind}Master {label} '{row.get(label, '')}'"
            if not is_blank(row["Batch"]) and row["Batch"] != name:
                raise bad_request(f"{where}: Batch '{row['Batch']}' differs from the control.")
            row["Batch"] = name
            row["Posted"] = "N"
            row["Seq"] = as_int(row["Seq"], f"{where}: Seq") or seq
            if is_blank(row[mkey]):
                if kind == "je":
                    raise bad_request(f"{kind}Master #{seq}: RefNo is required.")
                row[mkey] = hex32()
            row[mkey] = str(row[mkey])
            if row[mkey] in masters:
                raise bad_request(f"{where}: {mkey} '{row[mkey]}' appears twice in the batch.")
            for date_field in ("TransDate", "InvoiceDate"):
                if date_field in row and is_blank(row[date_field]):
                    row[date_field] = control.get("DefaultDate") or self._stamp()
            if kind == "ap":
                self._check_vendor(row, where)
            masters[row[mkey]] = row
        return masters

    def _check_vendor(self, master: dict, where: str) -> None:
        vendor = str(master["Vendor"] or "")
        if is_blank(vendor):
            raise bad_request(f"{where}: Vendor is required.")
        cid = self._vendor_index.get(vendor)
        if cid is None:
            raise bad_request(f"{where}: Vendor '{vendor}' does not exist.")
        firm = self._firms[cid]
        if firm["VendorInd"] != "Y" or firm["Status"] != "A":
            raise bad_request(f"{where}: Vendor '{vendor}' is not an active vendor.")

    def _check_invoices(
        self, name: str, masters: dict[str, dict], current: BatchRec | None
    ) -> None:
        seen: dict[tuple[str, str], str] = {}
        for key, master in masters.items():
            invoice = str(master["Invoice"] or "")
            if is_blank(invoice):
                continue
            pair = (master["Vendor"], invoice)
            where = f"apMaster Invoice '{invoice}'"
            if pair in seen:
                raise bad_request(
                    f"{where}: Vendor '{pair[0]}' has this Invoice twice in the batch."
                )
            seen[pair] = key
            owner = self._invoices.get(pair)
            if owner is not None and owner != (name, key):
                batch = self._batches["ap"][owner[0]]
                voucher = batch.masters[owner[1]]["Voucher"]
                raise bad_request(
                    f"{where}: Vendor '{pair[0]}' already has this Invoice on voucher "
                    f"'{voucher}' (batch '{owner[0]}')."
                )

    def _auto_voucher(self) -> str:
        number = f"{self._next_voucher:010d}"
        self._next_voucher += 1
        return number

    def _build_details(
        self, kind: str, name: str, items: list, masters: dict[str, dict]
    ) -> list[dict]:
        spec = KINDS[kind]
        mkey, label = spec["mkey"], spec["label"]
        details: list[dict] = []
        keys: set[str] = set()
        for seq, item in enumerate(items, start=1):
            if not isinstance(item, dict):
                raise bad_request(f"{kind}Detail entries must be objects.")
            row = fill(item, spec["detail"])
            row["PKey"] = str(row["PKey"]) if not is_blank(row["PKey"]) else hex32()
            master = masters.get(str(row[mkey] or ""))
            if master is None:
                raise bad_request(
                    f"{kind}Detail PKey '{row['PKey']}': {mkey} '{row[mkey]}' has no {kind}Master."
                )
            where = f"{kind}Detail PKey '{row['PKey']}' of {label} '{master[label]}'"
            if row["PKey"] in keys:
                raise bad_request(f"{where}: PKey appears twice in the batch.")
            keys.add(row["PKey"])
            if not is_blank(row["Batch"]) and row["Batch"] != name:
                raise bad_request(f"{where}: Batch '{row['Batch']}' differs from the control.")
            row["Batch"] = name
            row["Seq"] = as_int(row["Seq"], f"{where}: Seq") or seq
            self._money_fields(kind, row, item, where)
            self._check_charge(row, where)
            details.append(row)
        return details

    @staticmethod
    def _money_fields(kind: str, row: dict, item: dict, where: str) -> None:
        if kind == "ap":
            row["Amount"] = money(row["Amount"], f"{where}: Amount")
            for name in ("NetAmount", "PaymentAmount"):
                given = item.get(name)
                row[name] = (
                    row["Amount"] if given in (None, "") else money(given, f"{where}: {name}")
                )
        else:
            row["DebitAmount"] = money(row["DebitAmount"], f"{where}: DebitAmount")
            row["CreditAmount"] = money(row["CreditAmount"], f"{where}: CreditAmount")

    def _check_charge(self, row: dict, where: str) -> None:
        """Account must exist and be active; WBS1 (and WBS2/3 under SubLevel Y) too."""
        account = self._accounts.get(str(row["Account"] or ""))
        if account is None:
            raise bad_request(f"{where}: Account '{row['Account']}' does not exist.")
        if account["Status"] != "A":
            raise bad_request(f"{where}: Account '{row['Account']}' is not active.")
        wbs = [norm_wbs(row.get(f"WBS{level}"), level) for level in (1, 2, 3)]
        row["WBS1"], row["WBS2"], row["WBS3"] = wbs
        if is_blank(wbs[0]):
            if not (is_blank(wbs[1]) and is_blank(wbs[2])):
                raise bad_request(f"{where}: WBS2/WBS3 given without WBS1.")
            return
        key = (wbs[0], "", "")
        for level in (1, 2, 3):
            if level > 1:
                parent = self._projects[key]
                part = wbs[level - 1].strip()
                if parent["SubLevel"] != "Y":
                    if part:
                        raise bad_request(
                            f"{where}: WBS{level} '{part}' given but the parent has no sublevels."
                        )
                    return
                if not part:
                    raise bad_request(f"{where}: WBS{level} is required for project '{wbs[0]}'.")
                key = (wbs[0], part, "") if level == 2 else (wbs[0], key[1], part)
            project = self._projects.get(key)
            label = f"WBS{level} '{wbs[level - 1].strip()}'"
            if project is None:
                raise bad_request(f"{where}: {label} of project '{wbs[0]}' does not exist.")
            if project["Status"] != "A":
                raise bad_request(f"{where}: {label} of project '{wbs[0]}' is not active.")

    @staticmethod
    def _check_balanced(masters: dict[str, dict], details: list[dict]) -> None:
        sums = {key: [Decimal(0), Decimal(0)] for key in masters}
        for row in details:
            sums[row["RefNo"]][0] += to_decimal(row["DebitAmount"])
            sums[row["RefNo"]][1] += to_decimal(row["CreditAmount"])
        for ref, (debit, credit) in sums.items():
            if debit != credit:
                raise bad_request(
                    f"jeMaster RefNo '{ref}': DebitAmount total {debit:.2f} does not equal "
                    f"CreditAmount total {credit:.2f}; the entry is not balanced."
                )

    def _commit_batch(self, batch: BatchRec, replaced: BatchRec | None) -> None:
        if replaced is not None:
            self._unindex(replaced)
        self._batches[batch.kind][batch.control["Batch"]] = batch
        if batch.kind == "ap":
            for key, master in batch.masters.items():
                if not is_blank(master["Invoice"]):
                    self._invoices[(master["Vendor"], str(master["Invoice"]))] = (
                        batch.control["Batch"],
                        key,
                    )

    def _unindex(self, batch: BatchRec) -> None:
        if batch.kind != "ap":
            return
        for key, master in batch.masters.items():
            pair = (master["Vendor"], str(master["Invoice"]))
            if self._invoices.get(pair) == (batch.control["Batch"], key):
                del self._invoices[pair]

    # ------------------------------------------------------------ posting and ledger

    def _post_trans_file(self, ctx: Ctx) -> Result:
        """PUT DataEntry/PostTransFile: parms object or array; answer = JSON-encoded string."""
        body = ctx.json()
        parms = body.get("parms") if isinstance(body, dict) else body
        items = parms if isinstance(parms, list) else [parms]
        if not items or not all(isinstance(p, dict) for p in items):
            raise bad_request("parms must be an object or an array of objects.")
        plan = [self._plan_post({k.lower(): v for k, v in p.items()}) for p in items]
        results = [self._post(batch, period, desc) for batch, period, desc in plan]
        answer = {
            "typeList": "|".join(r["type"] for r in results),
            "batchList": "|".join(r["batch"] for r in results),
            "retList": "|".join("1" for _ in results),
            "periodList": "|".join(str(r["period"]) for r in results),
            "postseqList": "|".join(str(r["postseq"]) for r in results),
            "msg": "\r\n".join(r["msg"] for r in results),
        }
        text = json.dumps(json.dumps(answer))  # a JSON string holding JSON (docs/api/deltek.md)
        return 200, Response(text, 200, media_type="application/json; charset=utf-8"), {}

    def _plan_post(self, parms: dict) -> tuple[BatchRec, int, str]:
        name = str(parms.get("batch") or "")
        transtype = str(parms.get("transtype") or "").lower()
        if transtype and transtype not in KINDS:
            raise bad_request(f"transtype '{parms.get('transtype')}' cannot be posted here.")
        kinds = [transtype] if transtype else [k for k in KINDS if name in self._batches[k]]
        batch = next(
            (self._batches[k][name] for k in kinds if name in self._batches[k]),
            None,
        )
        if batch is None or batch.posted:
            raise bad_request(f"Batch '{name}' was not found among the unposted files.")
        company = str(parms.get("clientcompany") or "").strip()
        if company and company != self.company:
            raise bad_request(f"Company '{company}' does not exist.")
        period = self._open_period(parms.get("period"))
        field_name = "Amount" if batch.kind == "ap" else "DebitAmount"
        total = batch.sum_total
        control_total = to_decimal(batch.control["Total"])
        if not self.ignore_control_totals and control_total != total:
            raise bad_request(
                f"Batch '{name}': control total mismatch (Total {control_total:.2f}, "
                f"sum of {field_name} {total:.2f})."
            )
        return batch, period, str(parms.get("description") or batch.control["Description"])

    def _post(self, batch: BatchRec, period: int, description: str) -> dict:
        self._post_seq += 1
        seq = self._post_seq
        ledger = self._ledgers[batch.kind]
        for key, master in sorted(batch.masters.items(), key=lambda kv: kv[1]["Seq"]):
            for detail in sorted(batch.lines_of(key), key=lambda d: d["Seq"]):
                row = self._ledger_row(batch, master, detail, period, seq)
                ledger.add(row)
                self._post_activity(row)
            master["Posted"] = "Y"
        batch.control.update(Posted="Y", PostSeq=seq, PostPeriod=period)
        count = len(batch.masters)
        title = KINDS[batch.kind]["title"]
        return {
            "type": batch.kind.upper(),
            "batch": batch.control["Batch"],
            "period": period,
            "postseq": seq,
            "msg": f"{title} file {description}; {count} of {count} records posted; "
            f"Posting sequence {seq}",
        }

    def _ledger_row(
        self, batch: BatchRec, master: dict, detail: dict, period: int, seq: int
    ) -> dict:
        project = self._projects.get((detail["WBS1"], "", "")) or {}
        row = fill(
            {
                "Batch": batch.control["Batch"], "Period": period, "PostSeq": seq,
                "PKey": detail["PKey"], "WBS1": detail["WBS1"], "WBS2": detail["WBS2"],
                "WBS3": detail["WBS3"], "Account": detail["Account"],
                "Org": project.get("Org", ""), "TransType": batch.kind.upper(),
                "TransDate": master["TransDate"], "Desc1": detail["Description"],
                "Desc2": master.get("Description", ""), "Company": batch.control["Company"],
            },
            LEDGER_COLUMNS,
        )  # fmt: skip
        if batch.kind == "ap":
            row.update(
                SubType="L", RefNo=master["Voucher"], Amount=detail["Amount"],
                Vendor=master["Vendor"], Voucher=master["Voucher"], Invoice=master["Invoice"],
                PONumber=detail["PONumber"],
            )  # fmt: skip
        else:
            amount = to_decimal(detail["DebitAmount"]) - to_decimal(detail["CreditAmount"])
            row.update(RefNo=master["RefNo"], Amount=float(amount))
        return row

    def _ledger_list(self, ctx: Ctx) -> Result:
        ledger = self._ledgers[ctx.path["tt"]]
        query = parse_list_query(ctx.params, limit_fails=True)
        return 200, apply_query(ledger.candidates(query.conds), query, LEDGER_COLUMNS), {}

    # ------------------------------------------------------------ misc helpers

    def _field_filter(self, ctx: Ctx) -> list[str]:
        raw = ctx.param("fieldFilter") or ""
        return [f.strip() for f in raw.split(",") if f.strip()]

    def _stamp(self) -> str:
        moment = datetime.fromtimestamp(self.clock(), tz=timezone.utc)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.000")

    # ------------------------------------------------------------ admin endpoints

    async def _admin_state(self, request: Request) -> Response:
        return self._json(200, self.state())

    async def _admin_faults(self, request: Request) -> Response:
        if request.method == "POST":
            body = json.loads(await request.body() or b"{}")
            try:
                if body.pop("reset", False):
                    self.faults.reset()
                self.faults.configure(**body)
            except (TypeError, ValueError) as err:
                return self._json(400, {"Message": str(err)})
        return self._json(200, self.faults.as_dict())

    async def _admin_grant(self, request: Request) -> Response:
        body = json.loads(await request.body() or b"{}")
        self.set_password_grant(bool(body.get("enabled", True)))
        return self._json(200, {"password_grant_enabled": self.password_grant_enabled})

    async def _admin_calls(self, request: Request) -> Response:
        return self._json(200, self.call_counts())
