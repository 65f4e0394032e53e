"""`deltek-procore ping`: can the connector reach, sign in to and read both systems?

Each side is checked step by step (configuration, token, company / tenant, what the
account can see, field visibility of amounts). A step that fails says what failed and
what a person must change; nothing in the report ever holds a secret. Both sides are
checked at the same time, with short timeouts and one retry, so ping answers fast.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import textwrap
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlsplit

from deltek_procore.connections import (
    ConfigurationError,
    deltek_settings,
    procore_settings,
    tenant_environment,
)
from deltek_procore.deltek.client import DeltekClient, DeltekSettings, to_decimal
from deltek_procore.deltek.errors import DeltekError
from deltek_procore.http.secrets import scrub
from deltek_procore.mapping.accounts import (
    CONFIRMED,
    INACTIVE,
    NOT_YET_USED,
    account_split,
    account_statuses,
    mapped_accounts,
)
from deltek_procore.mapping.config import MappingFileError, load_mapping
from deltek_procore.procore.client import ProcoreClient, ProcoreSettings
from deltek_procore.procore.errors import ProcoreError
from deltek_procore.tenants import Tenant
from deltek_procore.webhooks.access import HOOK_NAMESPACE, PERMISSION_FIX, unavailable_reason

System = Literal["procore", "deltek"]

MAX_SLEEP_S = 2.0  # ping never waits long for a rate limit or a back-off
SAMPLE_ROWS = 50  # rows read where ping only needs to see that data is there
HUB_PAGE = 500  # one page of a Deltek hub; more is reported as "500+"

FIELD_VISIBILITY_FIX = (
    "grant the API user's role field visibility of amounts (Vantagepoint > Settings > "
    "Security > Roles > the role's field-level security for AP vouchers and the ledger)"
)
NO_PROJECTS_FIX = (
    "the service account was given no projects: an admin must add them in the App "
    "Management permitted projects"
)

# Procore environments: the login host and the API host must belong to the same one.
_PROCORE_LOGIN_ENV = {
    "login.procore.com": "production",
    "login-sandbox.procore.com": "developer sandbox",
    "login-sandbox-monthly.procore.com": "monthly sandbox",
}
_PROCORE_API_ENV = {
    "api.procore.com": "production",
    "app.procore.com": "production",
    "sandbox.procore.com": "developer sandbox",
    "api-monthly.procore.com": "monthly sandbox",
}


# ------------------------------------------------------------------------------ report


@dataclass(frozen=True)
class Check:
    """One line of the report; `ok` None means a warning (works, but worth knowing)."""

    system: System
    name: str
    ok: bool | None
    detail: str
    fix: str = ""

    @property
    def status(self) -> str:
        return "OK" if self.ok else ("WARN" if self.ok is None else "FAIL")


@dataclass
class PingReport:
    checks: list[Check] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        """False when any check failed; warnings do not make ping fail."""
        return all(check.ok is not False for check in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.ok is False]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.ok is None]

    def by_system(self, system: System) -> list[Check]:
        return [c for c in self.checks if c.system == system]

    def find(self, system: System, name: str) -> Check | None:
        return next((c for c in self.checks if c.system == system and c.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        """The report as `ping --json` prints it (no secret: details are already scrubbed)."""
        return {
            "ok": self.ok,
            "elapsed_s": round(self.elapsed_s, 2),
            "checks": [
                {
                    "system": c.system,
                    "name": c.name,
                    "status": c.status,
                    "detail": c.detail,
                    "fix": c.fix,
                }
                for c in self.checks
            ],
        }


# ------------------------------------------------------------------------------ entry


def run_ping(
    env: Mapping[str, str] | None = None, timeout: float = 10.0, *, tenant: Tenant | None = None
) -> PingReport:
    """Check both systems (in parallel) and return every step's outcome; with ``tenant``,
    that tenant's credentials and mapping file (connections.tenant_environment)."""
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="ping") as pool:
        procore = pool.submit(check_procore, env, timeout, tenant=tenant)
        deltek = pool.submit(check_deltek, env, timeout, tenant=tenant)
        checks = procore.result() + deltek.result()
    secrets = _secret_values(env, tenant)
    checks = [_scrubbed(check, secrets) for check in checks]
    return PingReport(checks=checks, elapsed_s=time.monotonic() - started)


# ------------------------------------------------------------------------------ Procore


class _Steps:
    """Collects one system's checks; `run` turns an exception into a failed check."""

    def __init__(
        self, system: System, explain: Callable[[Exception, float], tuple[str, str]]
    ) -> None:
        self.system = system
        self.checks: list[Check] = []
        self._explain = explain

    def add(self, name: str, ok: bool | None, detail: str, fix: str = "") -> Check:
        check = Check(self.system, name, ok, detail, fix)
        self.checks.append(check)
        return check

    def run(self, name: str, step: Callable[[], tuple[bool | None, str, str]]) -> bool:
        """Run one step; True when it did not fail."""
        started = time.monotonic()
        try:
            ok, detail, fix = step()
        except (ProcoreError, DeltekError, OSError, ValueError) as exc:
            detail, fix = self._explain(exc, time.monotonic() - started)
            self.add(name, False, detail, fix)
            return False
        self.add(name, ok, detail, fix)
        return ok is not False


def check_procore(
    env: Mapping[str, str] | None = None, timeout: float = 10.0, *, tenant: Tenant | None = None
) -> list[Check]:
    """Procore: configuration, token, company, permitted projects, the tools the sync reads."""
    try:
        settings = procore_settings(env, tenant=tenant)
    except ConfigurationError as exc:
        return [Check("procore", "configuration", False, str(exc), _config_fix("procore", tenant))]
    settings = fast_settings(settings, timeout)
    steps = _Steps("procore", lambda exc, took: explain_procore_error(exc, settings, timeout, took))
    mismatch = procore_environment_problem(settings.auth_url, settings.api_url)
    steps.add(
        "configuration",
        False if mismatch else True,
        mismatch or f"API {settings.api_url}, company {settings.company_id}",
        "set PROCORE_AUTH_URL and PROCORE_API_URL to the same Procore environment"
        if mismatch
        else "",
    )
    client = ProcoreClient(settings, sleep=_short_sleep)
    try:
        if not steps.run("token", lambda: _procore_token(client)):
            return steps.checks
        if not steps.run("company", lambda: _procore_company(client)):
            return steps.checks
        projects: list[dict] = []
        steps.run("permitted projects", lambda: _procore_projects(client, projects))
        for name, path, params, tool, scope in company_reads(settings.company_id):
            steps.run(name, _reader(client, name, path, params, tool, scope))
        if projects:
            for name, path, params, tool, scope in project_reads(projects[0]):
                steps.run(name, _reader(client, name, path, params, tool, scope))
        steps.run("webhooks", lambda: _procore_webhooks(client))
    finally:
        client.close()
    return steps.checks


SettingsT = TypeVar("SettingsT", ProcoreSettings, DeltekSettings)


def fast_settings(settings: SettingsT, timeout: float) -> SettingsT:
    """Either client's settings, tuned for a quick answer: short timeouts, one retry."""
    return settings.model_copy(
        update={"connect_timeout": min(timeout, 5.0), "read_timeout": timeout, "max_retries": 1}
    )


def _procore_token(client: ProcoreClient) -> tuple[bool | None, str, str]:
    info = client.token_info()
    expires = info.get("expires_in")
    if expires is None:
        return None, "token obtained; Procore gave no expires_in", ""
    return True, f"token obtained, expires in {int(expires)} s", ""


def _procore_company(client: ProcoreClient) -> tuple[bool | None, str, str]:
    wanted = client.settings.company_id
    companies = client.companies()
    for company in companies:
        if company.id == wanted:
            return True, f"{company.name or 'company'} ({wanted}) with Procore-Company-Id", ""
    seen = ", ".join(f"{c.name} ({c.id})" for c in companies[:5]) or "none"
    return (
        False,
        f"company {wanted} is not among the companies the app can reach (sees: {seen})",
        "check PROCORE_COMPANY_ID, and that a company admin installed the app in that company "
        "(App Management)",
    )


def _procore_projects(client: ProcoreClient, out: list[dict]) -> tuple[bool | None, str, str]:
    params = [("company_id", client.settings.company_id), ("page", 1), ("per_page", 100)]
    resp = client.request("GET", "/rest/v1.0/projects", params)
    rows = _json_rows(resp.json())
    out.extend(rows)
    total = _total(resp.headers, len(rows))
    if total == 0:
        return False, "no permitted projects", NO_PROJECTS_FIX
    names = ", ".join(_project_label(p) for p in rows[:3])
    more = ", …" if total > 3 else ""
    return True, f"{total} permitted: {names}{more}", ""


Read = tuple[str, str, list, str, str]  # check name, path, params, Procore tool, scope


def company_reads(company_id: int) -> list[Read]:
    """The company-level lists the sync reads."""
    q = [("company_id", company_id)]
    return [
        ("vendors", "/rest/v1.0/vendors", q, "Directory", "the company"),
        ("cost types", "/rest/v1.0/line_item_types", q, "Admin (cost types)", "the company"),
    ]


def project_reads(project: Mapping[str, Any]) -> list[Read]:
    """The project-level lists the sync reads, tried on one permitted project."""
    pid = int(project["id"])
    label = _project_label(project)
    q = [("project_id", pid)]
    return [
        ("cost codes", "/rest/v1.0/cost_codes", q, "Admin (cost codes)", label),
        ("subcontractor invoices", "/rest/v1.1/requisitions", q, "Commitments", label),
        ("direct costs", f"/rest/v1.1/projects/{pid}/direct_costs", [], "Direct Costs", label),
        ("work order contracts", "/rest/v1.0/work_order_contracts", q, "Commitments", label),
        ("purchase order contracts", "/rest/v1.0/purchase_order_contracts", q, "Commitments",
         label),
        ("commitment change orders", f"/rest/v1.0/projects/{pid}/commitment_change_orders", [],
         "Commitments (change orders)", label),
    ]  # fmt: skip


def _reader(
    client: ProcoreClient, name: str, path: str, params: list, tool: str, scope: str
) -> Callable[[], tuple[bool | None, str, str]]:
    return lambda: _procore_read(client, name, path, params, tool, scope)


def _procore_read(
    client: ProcoreClient, name: str, path: str, params: list, tool: str, scope: str
) -> tuple[bool | None, str, str]:
    """One one-row page of a list; 403/404 mean the tool is off or not permitted."""
    try:
        resp = client.request("GET", path, [*params, ("page", 1), ("per_page", 1)])
    except ProcoreError as exc:
        if exc.status in (403, 404):
            return (
                False,
                f"cannot read {name} of {scope} (HTTP {exc.status}): the {tool} tool is not "
                "enabled or the app is not permitted to read it",
                f"a Procore admin must enable the {tool} tool (in the project) and give the app "
                "read permission on it (App Management > the app > permissions and permitted "
                "projects)",
            )
        raise
    rows = _json_rows(resp.json())
    total = resp.headers.get("Total", "").strip()
    if total.isdigit():
        return True, f"{int(total)} in {scope}", ""
    return True, f"readable in {scope}" + ("" if rows else " (none yet)"), ""


def _procore_webhooks(client: ProcoreClient) -> tuple[bool | None, str, str]:
    """Optional: the webhooks config API. Without the permission the sync still runs (the
    nightly poll covers events), so ping warns and names the permission to grant."""
    try:
        hooks = client.webhook_hooks(HOOK_NAMESPACE)
    except ProcoreError as exc:
        reason = unavailable_reason(exc)
        if reason is None:
            raise
        return None, reason, PERMISSION_FIX
    ids = sorted({str(h.get("id")) for h in hooks if isinstance(h, Mapping) and h.get("id")})
    if not ids:
        return (
            True,
            f"Webhooks API readable; no {HOOK_NAMESPACE} hook registered (optional: "
            "`deltek-procore webhooks register --url ...`)",
            "",
        )
    return True, f"Webhooks API readable; {HOOK_NAMESPACE} hook(s) {', '.join(ids)}", ""


def procore_environment_problem(auth_url: str, api_url: str) -> str | None:
    """A message when the login host and the API host are different Procore environments."""
    login = _PROCORE_LOGIN_ENV.get((urlsplit(auth_url).hostname or "").lower())
    api = _PROCORE_API_ENV.get((urlsplit(api_url).hostname or "").lower())
    if login and api and login != api:
        return (
            f"PROCORE_AUTH_URL is the {login} login but PROCORE_API_URL is the {api} API: "
            "tokens of one environment are refused by the other"
        )
    return None


def explain_procore_error(
    exc: Exception, settings: ProcoreSettings, timeout: float, took_s: float = 0.0
) -> tuple[str, str]:
    """(detail, fix) for a failed Procore step, in words a person can act on."""
    if not isinstance(exc, ProcoreError):
        return f"unexpected answer from Procore: {type(exc).__name__}", _UNEXPECTED_FIX
    token_call = exc.method == "POST" and "token" in exc.path
    if exc.status is None:
        url, var = (
            (settings.auth_url, "PROCORE_AUTH_URL")
            if token_call
            else (settings.api_url, "PROCORE_API_URL")
        )
        return network_problem(url, var, timeout, exc.message, took_s >= 0.9 * timeout)
    detail = exc.detail or exc.message
    if token_call and exc.status in (400, 401):
        where = (urlsplit(settings.auth_url).hostname or settings.auth_url).lower()
        env_name = _PROCORE_LOGIN_ENV.get(where)
        here = f"PROCORE_AUTH_URL is {where}" + (f" ({env_name})" if env_name else "")
        return (
            f"Procore refused the app's client credentials (HTTP {exc.status}): {detail}",
            "check PROCORE_CLIENT_ID and PROCORE_CLIENT_SECRET; credentials only work in the "
            f"Procore environment where the app was created ({here}; production apps use "
            "login.procore.com, developer-sandbox apps login-sandbox.procore.com)",
        )
    if token_call:
        return f"could not obtain a token (HTTP {exc.status}): {detail}", exc.hint or ""
    return (
        f"{exc.method} {exc.path} failed (HTTP {exc.status}): {detail}",
        exc.hint or "",
    )


def _project_label(project: Mapping[str, Any]) -> str:
    number = project.get("project_number")
    name = project.get("name") or project.get("display_name") or f"project {project.get('id')}"
    return f"{number} {name}" if number else str(name)


def _json_rows(payload: Any) -> list[dict]:
    if isinstance(payload, dict) and isinstance(payload.get("data"), list):
        payload = payload["data"]
    return [row for row in payload if isinstance(row, dict)] if isinstance(payload, list) else []


def _total(headers: Mapping[str, str], fallback: int) -> int:
    value = headers.get("Total")
    return int(value) if value and value.strip().isdigit() else fallback


# ------------------------------------------------------------------------------ Deltek


def check_deltek(
    env: Mapping[str, str] | None = None, timeout: float = 10.0, *, tenant: Tenant | None = None
) -> list[Check]:
    """Deltek: configuration, sign-in, tenant, hubs, chart of accounts, amount visibility."""
    try:
        settings = deltek_settings(env, tenant=tenant)
    except ConfigurationError as exc:
        return [Check("deltek", "configuration", False, str(exc), _config_fix("deltek", tenant))]
    view = tenant_environment(tenant, env)  # the tenant's mapping file
    settings = fast_settings(settings, timeout)
    steps = _Steps("deltek", lambda exc, took: explain_deltek_error(exc, settings, timeout, took))
    root = urlsplit(settings.api_url).path.rstrip("/")
    steps.add(
        "configuration",
        True if root.lower().endswith("/api") else None,
        f"API {settings.api_url}, database {settings.database}, user {settings.username}",
        ""
        if root.lower().endswith("/api")
        else "DELTEK_API_URL normally ends in /api (e.g. https://acme.deltekfirst.com/ACME/api)",
    )
    client = DeltekClient(settings, sleep=_short_sleep)
    client.max_retry_after_s = MAX_SLEEP_S
    if not steps.run("token", lambda: _deltek_token(client)):
        return steps.checks
    steps.run("tenant", lambda: _deltek_tenant(client))
    steps.run("firm hub", lambda: _deltek_firms(client))
    steps.run("project hub", lambda: _deltek_projects(client))
    steps.run("GL accounts", lambda: _deltek_accounts(client, view))
    steps.run("amount visibility", lambda: _deltek_visibility(client))
    return steps.checks


def _deltek_token(client: DeltekClient) -> tuple[bool | None, str, str]:
    info = client.token_info()
    refresh = ", refreshable" if info.get("refreshable") else ""
    return True, f"password grant: token expires in {int(info['expires_in'])} s{refresh}", ""


def _deltek_tenant(client: DeltekClient) -> tuple[bool | None, str, str]:
    period = client.active_period()
    year, month = divmod(period, 100)
    return True, f"active period {year}-{month:02d} ({period})", ""


def _deltek_firms(client: DeltekClient) -> tuple[bool | None, str, str]:
    rows = first_page(client, "firm", HUB_PAGE)
    vendors = sum(1 for row in rows if str(_get(row, "VendorInd") or "").upper() == "Y")
    if not rows:
        return (
            None,
            "the firm hub is empty or hidden from this role",
            "vendors will be created as firms; check the role can read Firms if you expected some",
        )
    return True, f"{_count(rows, HUB_PAGE)} firms visible, {_count_n(vendors, rows)} vendors", ""


def _deltek_projects(client: DeltekClient) -> tuple[bool | None, str, str]:
    rows = first_page(client, "project", HUB_PAGE)
    if not rows:
        return (
            False,
            "no projects visible",
            "give the API user's role read access to the Projects hub (Vantagepoint > "
            "Settings > Security > Roles); vouchers cannot be charged to projects it cannot see",
        )
    return True, f"{_count(rows, HUB_PAGE)} projects visible (incl. phases/tasks)", ""


def _deltek_accounts(
    client: DeltekClient, env: Mapping[str, str] | None = None
) -> tuple[bool | None, str, str]:
    """GLSummary lists accounts with activity, so the mapping file's accounts split into
    confirmed and not yet used in Deltek; only an inactive one is worth a warning."""
    path = client.settings.accounts_path
    rows = client.accounts()
    if rows is None:
        return (
            None,
            f"DELTEK_ACCOUNTS_PATH ({path}) answered 404: Deltek checks every account when a "
            "batch posts",
            "set DELTEK_ACCOUNTS_PATH to a path that lists GL accounts if your tenant has one",
        )
    statuses = account_statuses(rows) or {}
    seen = f"{len(statuses)} account(s) with activity in {path}"
    mapping, problem = _mapping_file(env)
    if mapping is None:
        return (
            None,
            f"{seen}; the mapping file's accounts not checked: {problem}",
            "create or fix the mapping file (`deltek-procore mappings check` lists every problem)",
        )
    split = account_split(mapped_accounts(mapping), statuses)
    detail = (
        f"{seen}; mapping file accounts: {len(split['confirmed'])} {CONFIRMED}"
        f"{_listed(split['confirmed'])}, {len(split['not_yet_used'])} {NOT_YET_USED}"
        f"{_listed(split['not_yet_used'])}"
    )
    if split["inactive"]:
        return (
            None,
            f"{detail}, {len(split['inactive'])} {INACTIVE}{_listed(split['inactive'])}",
            "reactivate the inactive account(s) in Deltek or point the mapping file at active "
            "ones; records on them are quarantined until then",
        )
    return True, detail, ""


def _mapping_file(env: Mapping[str, str] | None) -> tuple[Any, str]:
    """The mapping file, or None and why not (ping checks connectivity, not the file)."""
    try:
        return load_mapping(env=env), ""
    except MappingFileError as exc:
        return None, exc.messages[0] if exc.messages else "mapping file not readable"


def _listed(accounts: list[str], limit: int = 8) -> str:
    if not accounts:
        return ""
    more = ", …" if len(accounts) > limit else ""
    return f" ({', '.join(accounts[:limit])}{more})"


def _deltek_visibility(client: DeltekClient) -> tuple[bool | None, str, str]:
    source, values = amount_sample(client)
    if source is None:
        return (
            None,
            "nothing posted or entered yet to inspect; amount visibility is checked once a "
            "voucher exists (run ping again after the first posting)",
            "",
        )
    return judge_amounts(source, values)


def amount_sample(client: DeltekClient) -> tuple[str | None, list[Decimal | None]]:
    """Amounts of existing rows: posted AP ledger, else unposted AP lines, else posted JEs."""
    rows = _readable(client, "PSALedger/AP")
    if rows:
        return "posted AP ledger (PSALedger/AP)", [_amount(r) for r in rows]
    landing = _readable(client, "DataEntry/apLanding")
    batches = [
        str(_get(row, "Batch"))
        for row in landing
        if _get(row, "Batch") and str(_get(row, "Posted") or "N").upper() != "Y"
    ]
    for batch in batches[:3]:
        rows = _readable(client, f"DataEntry/apDetail/{quote(batch, safe='')}")
        if rows:
            return f"unposted AP voucher lines of batch {batch}", [_amount(r) for r in rows]
    rows = _readable(client, "PSALedger/JE")
    if rows:
        return "posted JE ledger (PSALedger/JE)", [_amount(r) for r in rows]
    return None, []


def judge_amounts(source: str, values: list[Decimal | None]) -> tuple[bool | None, str, str]:
    """All sampled amounts zero = the role cannot see them (field-level security)."""
    present = [v for v in values if v is not None]
    if not present:
        return (
            None,
            f"{source}: rows carry no amount field; the role may hide it",
            FIELD_VISIBILITY_FIX,
        )
    nonzero = sum(1 for v in present if v != 0)
    if nonzero == 0:
        return (
            False,
            "amounts read back as 0: the API user's role cannot see amount fields; grant "
            f"field visibility (checked {len(present)} row(s) of the {source})",
            FIELD_VISIBILITY_FIX,
        )
    return True, f"amounts visible in {source} ({nonzero} of {len(present)} non-zero)", ""


def explain_deltek_error(
    exc: Exception, settings: DeltekSettings, timeout: float, took_s: float = 0.0
) -> tuple[str, str]:
    if not isinstance(exc, DeltekError):
        return f"unexpected answer from Deltek: {type(exc).__name__}", _UNEXPECTED_FIX
    if exc.status is None and (
        exc.path == "token" or "reach" in exc.message or "talking" in exc.message
    ):
        timed_out = took_s >= 0.9 * timeout
        return network_problem(settings.api_url, "DELTEK_API_URL", timeout, exc.message, timed_out)
    where = "" if exc.path == "token" else f"{exc.method} {exc.path}: "
    status = f" (HTTP {exc.status})" if exc.status is not None and exc.path != "token" else ""
    return f"{where}{exc.message}{status}", exc.hint or ""


def first_page(client: DeltekClient, path: str, size: int) -> list[dict]:
    """One page of a Deltek list: enough to show access, cheap on a large tenant."""
    params: list[tuple[str, object]] = [("pageSize", size), ("page", 1)]
    if path.lower().startswith(("dataentry/", "psaledger/")):
        params.append(("q.maxrows", size))
    # The client has no public single-page read; its transport keeps auth and retries.
    return client._rows("GET", path, params=params)


def _readable(client: DeltekClient, path: str) -> list[dict]:
    """Rows of a sample page; a 404 (path absent on this tenant) reads as no rows."""
    try:
        return first_page(client, path, SAMPLE_ROWS)
    except DeltekError as exc:
        if exc.status == 404:
            return []
        raise


def _amount(row: Mapping[str, Any]) -> Decimal | None:
    for key in ("Amount", "AmountSourceCurrency", "DebitAmount"):
        value = _get(row, key)
        if value is not None:
            try:
                return to_decimal(value, default=None)
            except ValueError:
                return None
    return None


def _get(row: Mapping[str, Any], key: str) -> Any:
    if key in row:
        return row[key]
    lowered = key.lower()
    return next((v for k, v in row.items() if str(k).lower() == lowered), None)


def _count(rows: list, page: int) -> str:
    return f"{page}+" if len(rows) >= page else str(len(rows))


def _count_n(value: int, rows: list) -> str:
    return f"{value}+" if len(rows) >= HUB_PAGE else str(value)


# ------------------------------------------------------------------------------ network


def network_problem(
    url: str, variable: str, timeout: float, original: str, timed_out: bool = False
) -> tuple[str, str]:
    """Tell DNS failure, refused connection, silent host and slow answer apart.

    `timed_out`: the failed step lasted its whole timeout (the client's message may not say).
    """
    parts = urlsplit(url)
    host = parts.hostname or url
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return f"{variable} has an invalid port: {url}", f"fix {variable}"
    probe = min(timeout, 3.0)
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return (
            f"the host name {host} does not resolve (DNS lookup failed)",
            f"check the host in {variable} for typos, and DNS, VPN or proxy settings",
        )
    try:
        with socket.create_connection((host, port), timeout=probe):
            pass
    except ConnectionRefusedError:
        return (
            f"connection refused by {host}:{port}: nothing is listening there",
            f"check the host and port in {variable} and that the service is running",
        )
    except TimeoutError:
        return (
            f"no answer from {host}:{port} within {probe:g} s (connection not accepted)",
            f"check {variable}, firewall, proxy and VPN settings",
        )
    except OSError as exc:
        return (
            f"cannot connect to {host}:{port}: {exc.strerror or type(exc).__name__}",
            f"check {variable} and the network path to {host}",
        )
    if timed_out or "time" in original.lower():
        return (
            f"{host}:{port} accepts connections but did not answer within {timeout:g} s",
            "the service is slow or stalled; try again later, or with a longer --timeout",
        )
    return (
        f"{host}:{port} accepts connections but the request failed: {original}",
        f"check {variable} (scheme http/https, proxy, TLS inspection)",
    )


# ------------------------------------------------------------------------------ render


_COLOURS = {"OK": "\033[32m", "FAIL": "\033[31m", "WARN": "\033[33m"}
_RESET = "\033[0m"


def render(report: PingReport, colour: bool | None = None, width: int | None = None) -> str:
    """A table of every check, then what to fix. Colours only on a terminal."""
    if colour is None:
        colour = sys.stdout.isatty()
    width = width or shutil.get_terminal_size((120, 24)).columns
    headers = ("SYSTEM", "CHECK", "STATUS", "DETAIL")
    sys_w = max([len(headers[0]), *(len(c.system) for c in report.checks)])
    name_w = max([len(headers[1]), *(len(c.name) for c in report.checks)])
    stat_w = len("STATUS")
    indent = sys_w + name_w + stat_w + 6
    detail_w = max(40, width - indent)
    lines = [f"{headers[0]:<{sys_w}}  {headers[1]:<{name_w}}  {headers[2]:<{stat_w}}  DETAIL"]
    lines.append("-" * min(width, indent + detail_w))
    for check in report.checks:
        status = f"{check.status:<{stat_w}}"
        if colour:
            status = f"{_COLOURS[check.status]}{status}{_RESET}"
        wrapped = textwrap.wrap(check.detail, detail_w, break_on_hyphens=False) or [""]
        lines.append(f"{check.system:<{sys_w}}  {check.name:<{name_w}}  {status}  {wrapped[0]}")
        lines.extend(" " * indent + more for more in wrapped[1:])
    fixes = [c for c in report.checks if c.ok is not True and c.fix]
    if fixes:
        lines += ["", "What to fix:"]
        for check in fixes:
            head = f"  - [{check.status}] {check.system} {check.name}: "
            fix_w = max(40, width - len(head))
            body = textwrap.wrap(check.fix, fix_w, break_on_hyphens=False) or [""]
            lines.append(head + body[0])
            lines.extend(" " * len(head) + more for more in body[1:])
    failed, warned = len(report.failures), len(report.warnings)
    if failed:
        verdict = f"{failed} check(s) failed" + (f", {warned} warning(s)" if warned else "")
    else:
        verdict = "All checks passed" + (f" ({warned} warning(s))" if warned else "")
    lines += ["", f"{verdict}; checked in {report.elapsed_s:.1f} s."]
    return "\n".join(lines)


# ------------------------------------------------------------------------------ helpers

_UNEXPECTED_FIX = "re-run ping; if it persists, report it with the detail above"


def _config_fix(system: str, tenant: Tenant | None = None) -> str:
    if tenant is None or tenant.implicit:
        return (
            f"set the {system.upper()}_* environment variables or run "
            f"`deltek-procore credentials set {system}`"
        )
    return (
        f"set the {system.upper()}_*{tenant.suffix()} environment variables or run "
        f"`deltek-procore credentials set {system} --tenant {tenant.name}`"
    )


def _short_sleep(seconds: float) -> None:
    time.sleep(min(max(seconds, 0.0), MAX_SLEEP_S))


def _secret_values(env: Mapping[str, str] | None, tenant: Tenant | None = None) -> list[str]:
    """Every secret ping could know of (env values, every tenant's, and the resolved
    settings), longest first."""
    source = os.environ if env is None else env
    found = {
        value
        for name, value in source.items()
        if value and any(word in name.upper() for word in ("SECRET", "PASSWORD", "TOKEN", "KEY"))
    }
    for build in (procore_settings, deltek_settings):
        try:
            settings = build(env, tenant=tenant)
        except (ConfigurationError, ValueError):
            continue
        for name in ("client_secret", "password"):
            secret = getattr(settings, name, None)
            if secret is not None:
                found.add(secret.get_secret_value())
    return sorted((s for s in found if len(s) >= 4), key=len, reverse=True)


def _scrubbed(check: Check, secrets: Iterable[str]) -> Check:
    """Every form of every secret (raw, URL-encoded, base64) masked: the shared scrubber."""
    secrets = list(secrets)
    return replace(check, detail=scrub(check.detail, secrets), fix=scrub(check.fix, secrets))


__all__ = [
    "Check",
    "PingReport",
    "check_deltek",
    "check_procore",
    "judge_amounts",
    "network_problem",
    "procore_environment_problem",
    "render",
    "run_ping",
]
