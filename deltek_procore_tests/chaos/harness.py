"""Shared machinery of the chaos, crash and concurrency tests.

Two halves that must not lean on each other:
- `sync_job` runs the product itself: `deltek-procore backfill` (the Dagster `sync`
  job, in process) over the sandbox's months, and returns its exit code and output.
  `sync_round` drives the same layers directly, once each, with clients built for a
  faulty network (short timeouts, capped sleeps), for tests that need a hook between
  them (a barrier, a kill point); it has no retry loop of its own: whatever is retried
  is retried by the product's code.
- `expected_deltek` derives what Deltek must hold from the seed data alone (status
  rules, amounts, vendor numbers, RefNos); only GL accounts come from the mapping
  file's rules. `compare_deltek` checks the simulator record by record.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

from deltek_procore.deltek.client import DeltekClient, DeltekSettings
from deltek_procore.mapping.config import MappingFile, load_mapping
from deltek_procore.mapping.rules import compile_rules
from deltek_procore.pipeline import ingest, reference
from deltek_procore.pipeline.postings import AP_KINDS, JE_KINDS, PostingReport, run_postings
from deltek_procore.procore.client import ProcoreClient, ProcoreSettings
from deltek_procore.sandbox import seed as seed_module
from deltek_procore.state.store import StateStore

CENT = Decimal("0.01")
PROJECT_KINDS = (
    "cost_code",
    "requisition",
    "direct_cost",
    "work_order",
    "purchase_order",
    "change_order",
)

REQUISITION_OK = {"approved", "approved_as_noted"}
WORK_ORDER_OK = {"Approved", "Complete"}
PURCHASE_ORDER_OK = {"Approved", "Partially Received", "Received", "Closed"}


def capped_sleep(cap_s: float) -> Callable[[float], None]:
    """A sleep that never waits longer than `cap_s`: back-off still happens, just briefly."""

    def _sleep(seconds: float) -> None:
        time.sleep(max(0.0, min(seconds, cap_s)))

    return _sleep


def make_clients(
    env: Mapping[str, str],
    *,
    procore_read_timeout: float = 30,
    deltek_read_timeout: float = 60,
    sleep_cap_s: float = 0.05,
) -> tuple[ProcoreClient, DeltekClient]:
    """Clients from the configuration-contract variables, with test-sized timeouts."""
    procore = ProcoreClient(
        ProcoreSettings(
            auth_url=env["PROCORE_AUTH_URL"],
            api_url=env["PROCORE_API_URL"],
            client_id=env["PROCORE_CLIENT_ID"],
            client_secret=env["PROCORE_CLIENT_SECRET"],
            company_id=int(env["PROCORE_COMPANY_ID"]),
            connect_timeout=2,
            read_timeout=procore_read_timeout,
            max_retries=8,
        ),
        sleep=capped_sleep(sleep_cap_s),
    )
    deltek = DeltekClient(
        DeltekSettings(
            api_url=env["DELTEK_API_URL"],
            username=env["DELTEK_USERNAME"],
            password=env["DELTEK_PASSWORD"],
            database=env["DELTEK_DATABASE"],
            client_id=env["DELTEK_CLIENT_ID"],
            client_secret=env["DELTEK_CLIENT_SECRET"],
            connect_timeout=2,
            read_timeout=deltek_read_timeout,
            max_retries=6,
        ),
        sleep=capped_sleep(sleep_cap_s),
    )
    return procore, deltek


def tenant_of(env: Mapping[str, str]) -> str:
    return f"{env['DELTEK_API_URL'].rstrip('/').lower()}|{env['DELTEK_DATABASE']}"


@dataclass
class RoundResult:
    """One pass of the pipeline: what each posting run reported, or the step that broke."""

    reports: list[PostingReport] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def counts(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for report in self.reports:
            total.update(report.counts)
        return total

    @property
    def failed(self) -> int:
        return sum(report.failed for report in self.reports)

    @property
    def clean(self) -> bool:
        """Ran to the end with nothing failed."""
        return not self.errors and len(self.reports) == 2 and self.failed == 0

    @property
    def quiet(self) -> bool:
        """Clean, and nothing was written to Deltek: the connector has nothing left to do."""
        c = self.counts
        return self.clean and not (c["posted"] or c["adopted"] or c["adjusted"])


def _step(result: RoundResult, name: str, action: Callable[[], Any]) -> bool:
    """Run one step once; False (and the error noted) when it failed."""
    try:
        action()
        return True
    except Exception as exc:  # noqa: BLE001 - any failure of a step is what we count
        result.errors.append(f"{name}: {type(exc).__name__}: {exc}")
        return False


def sync_round(
    *,
    store: StateStore,
    procore: ProcoreClient,
    deltek: DeltekClient,
    mapping: MappingFile,
    periods: Sequence[str],
    tenant: str,
    full_ingest: bool = False,
    on_posting: Callable[[], None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> RoundResult:
    """Ingest -> Deltek reference data -> maps -> AP and JE postings for `periods`."""
    result = RoundResult()

    def company() -> None:
        for kind in ("project", "vendor", "cost_type"):
            ingest.ingest_company(procore, store, kind, full=full_ingest)

    def projects() -> None:
        ids = [r.record_id for r in store.staged("project")]
        for kind in PROJECT_KINDS:
            ingest.ingest_projects(procore, store, kind, ids, full=full_ingest)

    def vendors() -> None:
        with store.deltek_lease(tenant):
            reference.build_vendor_map(store, mapping, deltek)

    steps: list[tuple[str, Callable[[], Any]]] = [
        ("ingest company", company),
        ("ingest projects", projects),
        ("deltek reference", lambda: reference.refresh_deltek(deltek, store)),
        ("project map", lambda: reference.build_project_map(store, mapping)),
        ("vendor map", vendors),
        ("gl map", lambda: reference.build_gl_map(store, mapping)),
    ]
    for name, action in steps:
        if not _step(result, name, action):
            return result
    if on_posting is not None:
        on_posting()
    reports: list[PostingReport] = []

    def post(kinds: tuple[str, ...]) -> None:
        reports.append(
            run_postings(
                store=store,
                deltek=deltek,
                mapping=mapping,
                kinds=kinds,
                periods=periods,
                tenant=tenant,
                progress=progress,
            )
        )

    for kinds in (AP_KINDS, JE_KINDS):
        if not _step(result, f"postings {'/'.join(kinds)}", partial(post, kinds)):
            return result
        result.reports.append(reports[-1])
    return result


# ---- the independent expectation ---------------------------------------------------------------
@dataclass(frozen=True)
class Expected:
    """One document Deltek must hold exactly once."""

    key: tuple[str, ...]  # (vendor, invoice) or (ref_no,)
    period: int  # YYYYPP
    total: Decimal  # AP: voucher amount; JE: sum of debits
    lines: tuple[tuple[str, Decimal, Decimal], ...]  # sorted (account, debit/amount, credit)
    source: str  # "requisition 1280001"


def _money(value: Any) -> Decimal:
    return Decimal(str(value if value not in (None, "") else "0")).quantize(CENT)


def _period_code(day: str) -> int:
    return int(day[:4]) * 100 + int(day[5:7])


class _World:
    """Look-up tables over the seed data, built once."""

    def __init__(self, data: Any, mapping: MappingFile, deltek_firms: list[dict]):
        procore = data.procore
        active = {
            p["WBS1"]
            for p in data.deltek["projects"]
            if p["Status"] == "A" and not str(p.get("WBS2") or "").strip()
        }
        self.project_ok = {p["id"]: p["project_number"] in active for p in procore["projects"]}
        self.code = {c["id"]: c["full_code"] for c in procore["cost_codes"]}
        self.ctype = {t["id"]: t["code"] for t in procore["line_item_types"]}
        self.rules = compile_rules(mapping.gl_accounts)
        self.active_accounts = {a["Account"] for a in data.deltek["accounts"] if a["Status"] == "A"}
        self.contract_line_type: dict[int, int] = {}
        self.contract_line_code: dict[int, int] = {}
        self.contract_vendor: dict[int, int] = {}
        for key in ("work_order_contracts", "purchase_order_contracts"):
            for contract in procore[key]:
                self.contract_vendor[contract["id"]] = contract["vendor"]["id"]
                for line in contract["line_items"]:  # nested cost_code{} / line_item_type{}
                    self.contract_line_type[line["id"]] = _ref(line, "line_item_type")
                    self.contract_line_code[line["id"]] = _ref(line, "cost_code")
        self.vendor_number = self._vendor_numbers(data, mapping, deltek_firms)
        self.offset = mapping.defaults.commitment_offset_account
        self.retainage = mapping.defaults.retainage_account

    @staticmethod
    def _vendor_numbers(
        data: Any, mapping: MappingFile, deltek_firms: list[dict]
    ) -> dict[int, str | None]:
        """Procore vendor id -> the Deltek vendor number its spend must land on."""
        seeded = [f for f in data.deltek["firms"] if f["VendorInd"] == "Y" and f["Status"] == "A"]
        by_tax = {f["FedID"]: f["Vendor"] for f in seeded if f["FedID"]}
        by_name = {_squash(f["Name"]): f["Vendor"] for f in seeded}
        overrides = {int(v.procore_vendor_id): v.deltek_vendor for v in mapping.vendors}
        final_by_name: dict[str, list[str]] = {}
        for firm in deltek_firms:
            if firm.get("VendorInd") == "Y":
                final_by_name.setdefault(firm["Name"], []).append(firm["Vendor"])
        out: dict[int, str | None] = {}
        for vendor in data.procore["vendors"]:
            vid = vendor["id"]
            kind = seed_module.VENDORS[vid - seed_module.VENDOR_BASE][1]
            name = vendor["name"] or ""
            if vid in overrides:
                out[vid] = overrides[vid]
            elif kind == "code":
                out[vid] = vendor["origin_code"]
            elif kind == "tax":
                out[vid] = by_tax.get(vendor.get("business_id") or vendor.get("tax_id"))
            elif kind == "name":
                out[vid] = by_name.get(_squash(name))
            elif not name.strip():
                out[vid] = None  # no name: no firm can be created, its spend waits
            else:
                created = final_by_name.get(name, [])
                # exactly one firm per created vendor; two would be a duplicate firm
                out[vid] = created[0] if len(created) == 1 else f"<{len(created)} firms>"
        return out

    def line_account(self, line: dict) -> str | None:
        """A change order line has no cost code: its contract line's, else its wbs code's."""
        if "commitment_line_item_id" not in line:
            return self.account(_ref(line, "cost_code"), _ref(line, "line_item_type"))
        ref = line["commitment_line_item_id"]
        if ref in self.contract_line_code:
            return self.account(self.contract_line_code[ref], self.contract_line_type[ref])
        flat = (line.get("wbs_code") or {}).get("flat_code") or ""
        codes, types = set(self.code.values()), set(self.ctype.values())
        splits = [
            (flat[:i], flat[i + 1 :])
            for i, ch in enumerate(flat)
            if ch == "." and flat[:i] in codes and flat[i + 1 :] in types
        ]
        return self.account_for(*splits[0]) if len(splits) == 1 else None

    def account(self, code_id: int | None, type_id: int | None) -> str | None:
        code, ctype = self.code.get(code_id or 0), self.ctype.get(type_id or 0)
        if code is None or ctype is None:
            return None
        return self.account_for(code, ctype)

    def account_for(self, code: str, ctype: str) -> str | None:
        match = self.rules.resolve(code, ctype)
        if match is None or match.account not in self.active_accounts:
            return None
        return match.account


def _ref(line: dict, key: str) -> int | None:
    """A reference given nested (`cost_code: {id}`) as Procore's line models have it."""
    nested = line.get(key)
    return nested.get("id") if isinstance(nested, dict) else line.get(f"{key}_id")


def _squash(name: str) -> str:
    return "".join(ch for ch in name.upper() if ch.isalnum())


def expected_deltek(
    data: Any, mapping: MappingFile, deltek_firms: list[dict]
) -> tuple[dict[tuple[str, ...], Expected], dict[tuple[str, ...], Expected]]:
    """What Deltek must hold after a complete sync: AP vouchers and JEs, by key."""
    world = _World(data, mapping, deltek_firms)
    ap: dict[tuple[str, ...], Expected] = {}
    for req in data.procore["requisitions"]:
        found = _expected_requisition(req, world)
        if found is not None:
            ap[found.key] = found
    for cost in data.procore["direct_costs"]:
        found = _expected_direct_cost(cost, world)
        if found is not None:
            ap[found.key] = found
    je: dict[tuple[str, ...], Expected] = {}
    for key, prefix, ok in (
        ("work_order_contracts", "PCW", WORK_ORDER_OK),
        ("purchase_order_contracts", "PCP", PURCHASE_ORDER_OK),
    ):
        for contract in data.procore[key]:
            if contract["status"] in ok and not contract.get("deleted_at"):
                found = _expected_entry(contract, prefix, contract["contract_date"], world)
                if found is not None:
                    je[found.key] = found
    for order in data.procore["commitment_change_orders"]:
        if order["status"] == "approved":
            found = _expected_entry(order, "PCC", order["reviewed_at"] or "", world)
            if found is not None:
                je[found.key] = found
    return ap, je


def _expected_requisition(req: dict, world: _World) -> Expected | None:
    if req["status"] not in REQUISITION_OK or not world.project_ok.get(req["project_id"]):
        return None
    vendor_id = req.get("vendor_id") or world.contract_vendor.get(req["commitment_id"])
    vendor = world.vendor_number.get(vendor_id) if vendor_id else None
    if not vendor:
        return None
    lines: list[tuple[str, Decimal, Decimal]] = []
    retained = Decimal("0.00")
    for item in req["items"]:
        # AIA G703: stored materials are a balance; this period is the change in the total.
        gross = _money(item["total_completed_and_stored_to_date"]) - _money(
            item["total_completed_and_stored_to_date_from_previous"]
        )
        retained += (
            _money(item.get("work_completed_retainage_retained_this_period"))
            - _money(item.get("work_completed_retainage_released_this_period"))
            + _money(item.get("materials_stored_retainage_new_materials"))
            - _money(item.get("materials_stored_retainage_released_this_period"))
        )
        if gross == 0:
            continue
        account = world.account(
            item["cost_code_id"], world.contract_line_type.get(item["line_item_id"])
        )
        if account is None:
            return None
        lines.append((account, gross, Decimal("0.00")))
    if retained:
        lines.append((str(world.retainage), -retained, Decimal("0.00")))
    total = sum((line[1] for line in lines), Decimal("0.00"))
    if not lines or total <= 0:
        return None
    invoice = (req.get("invoice_number") or "").strip() or f"PC-REQ{req['id']}"
    return Expected(
        key=(vendor, invoice),
        period=_period_code(req["billing_date"]),
        total=total,
        lines=tuple(sorted(lines)),
        source=f"requisition {req['id']}",
    )


def _expected_direct_cost(cost: dict, world: _World) -> Expected | None:
    if cost["status"] != "approved" or cost["direct_cost_type"] != "invoice":
        return None
    if not world.project_ok.get(cost["project_id"]):
        return None
    vendor = world.vendor_number.get(cost.get("vendor_id") or 0)
    if not vendor:
        return None
    lines = []
    for line in cost["line_items"]:
        amount = _money(line["amount"])
        if amount == 0:
            continue
        account = world.line_account(line)
        if account is None:
            return None
        lines.append((account, amount, Decimal("0.00")))
    total = _money(cost["grand_total"])
    if not lines or sum(a for _, a, _ in lines) != total:
        return None
    invoice = (cost.get("invoice_number") or "").strip() or f"PC-DC{cost['id']}"
    return Expected(
        key=(vendor, invoice),
        period=_period_code(cost["direct_cost_date"]),
        total=total,
        lines=tuple(sorted(lines)),
        source=f"direct_cost {cost['id']}",
    )


def _expected_entry(record: dict, prefix: str, day: str, world: _World) -> Expected | None:
    day = day or record["created_at"]
    if not world.project_ok.get(record["project_id"]):
        return None
    lines: list[tuple[str, Decimal, Decimal]] = []
    net = Decimal("0.00")
    for line in record["line_items"]:
        amount = _money(line["amount"])
        if amount == 0:
            continue
        account = world.line_account(line)
        if account is None:
            return None
        net += amount
        lines.append(_je_line(account, amount))
    if not lines or net != _money(record["grand_total"]):
        return None
    lines.append(_je_line(str(world.offset), -net))
    return Expected(
        key=(f"{prefix}{record['id']}",),
        period=_period_code(day),
        total=sum((line[1] for line in lines), Decimal("0.00")),
        lines=tuple(sorted(lines)),
        source=f"{prefix} {record['id']}",
    )


def _je_line(account: str, signed: Decimal) -> tuple[str, Decimal, Decimal]:
    zero = Decimal("0.00")
    return (account, signed, zero) if signed >= 0 else (account, zero, -signed)


# ---- comparison ---------------------------------------------------------------------------------
def actual_deltek(sim: Any) -> tuple[dict[tuple[str, ...], list[Expected]], dict]:
    """Deltek's vouchers and JEs in the same shape as the expectation, grouped by key."""
    ap: dict[tuple[str, ...], list[Expected]] = {}
    for master in sim.ap_vouchers():
        lines = tuple(
            sorted(
                (str(d["Account"]), _money(d["Amount"]), Decimal("0.00"))
                for d in master["apDetail"]
            )
        )
        key = (str(master["Vendor"]), str(master["Invoice"]))
        ap.setdefault(key, []).append(
            Expected(
                key,
                int(master["Period"]),
                sum((ln[1] for ln in lines), Decimal("0.00")),
                lines,
                f"batch {master['Batch']}",
            )
        )
    je: dict[tuple[str, ...], list[Expected]] = {}
    for master in sim.journal_entries():
        lines = tuple(
            sorted(
                (str(d["Account"]), _money(d["DebitAmount"]), _money(d["CreditAmount"]))
                for d in master["jeDetail"]
            )
        )
        key = (str(master["RefNo"]),)
        je.setdefault(key, []).append(
            Expected(
                key,
                int(master["Period"]),
                sum((ln[1] for ln in lines), Decimal("0.00")),
                lines,
                f"batch {master['Batch']}",
            )
        )
    return ap, je


def compare_deltek(
    expected: dict[tuple[str, ...], Expected],
    actual: dict[tuple[str, ...], list[Expected]],
    what: str,
) -> list[str]:
    """Every difference, one line each: missing, twice, unexpected, wrong amount or period."""
    problems: list[str] = []
    for key, want in sorted(expected.items()):
        got = actual.get(key, [])
        if not got:
            problems.append(f"{what} {key} ({want.source}, {want.total}) missing in Deltek")
            continue
        if len(got) > 1:
            where = ", ".join(g.source for g in got)
            problems.append(f"{what} {key} ({want.source}) is in Deltek {len(got)} times: {where}")
        one = got[0]
        if one.total != want.total or one.lines != want.lines:
            problems.append(
                f"{what} {key} ({want.source}): Deltek holds {one.total} {one.lines}, "
                f"expected {want.total} {want.lines}"
            )
        if one.period != want.period:
            problems.append(f"{what} {key}: period {one.period}, expected {want.period}")
    for key in sorted(set(actual) - set(expected)):
        problems.append(f"{what} {key} is in Deltek but should not be ({actual[key][0].source})")
    return problems


def verify(box: Any) -> tuple[list[str], dict[str, int]]:
    """Compare the simulator with the expectation; returns problems and the figures."""
    mapping = load_mapping(box.mappings_path)
    want_ap, want_je = expected_deltek(box.data, mapping, box.deltek.firms())
    got_ap, got_je = actual_deltek(box.deltek)
    problems = compare_deltek(want_ap, got_ap, "voucher") + compare_deltek(
        want_je, got_je, "journal entry"
    )
    figures = {
        "expected_vouchers": len(want_ap),
        "expected_entries": len(want_je),
        "deltek_vouchers": sum(len(v) for v in got_ap.values()),
        "deltek_entries": sum(len(v) for v in got_je.values()),
    }
    return problems, figures


# ---- the product itself -------------------------------------------------------------------
@dataclass
class JobRun:
    """One `deltek-procore backfill` run: exit code, what it printed, how long it took."""

    code: int
    out: str
    err: str
    seconds: float

    @property
    def first_line(self) -> str:
        return self.out.splitlines()[0] if self.out else ""


def sync_job(box: Any, periods: Sequence[str], *extra: str) -> JobRun:
    """`deltek-procore backfill --from first --to last`, in this process, as an operator
    runs it: the Dagster `sync` job with the product's own clients, retries and checks.
    The environment (box.env, DAGSTER_HOME, DELTEK_PROCORE_STATE_URL) must be set."""
    import contextlib
    import io

    from deltek_procore import cli

    out, err = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["backfill", "--from", periods[0], "--to", periods[-1], *extra])
    return JobRun(code, out.getvalue(), err.getvalue(), time.perf_counter() - started)


@dataclass
class Mapped:
    """A fresh sandbox read into a state store with every map built: ready to post."""

    box: Any
    store: StateStore
    deltek: DeltekClient
    mapping: MappingFile
    tenant: str


def mapped_sandbox(tmp_path: Any, records: int) -> Mapped:
    """Start a sandbox (no rate limits) and run everything before the postings once."""
    from deltek_procore.sandbox.runner import start_sandbox

    box = start_sandbox(records=records, workdir=tmp_path, hourly_limit=10**7, spike_limit=10**7)
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    procore, deltek = make_clients(box.env)
    mapping = load_mapping(box.mappings_path)
    tenant = tenant_of(box.env)
    maps = sync_round(
        store=store, procore=procore, deltek=deltek, mapping=mapping, periods=[], tenant=tenant
    )
    assert maps.clean, maps.errors
    return Mapped(box, store, deltek, mapping, tenant)
