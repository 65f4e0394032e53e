"""Deterministic sandbox data: a mid-size general contractor in Procore and Deltek.

One `build()` call produces both sides (Procore records in Procore's own JSON shape,
Deltek rows in PascalCase) plus a mapping file that fits them, so the simulators,
the demo, the tests and the benchmark all work on the same world. Everything comes
from one `random.Random(seed)`; the same (records, seed) always gives the same data.

Shapes follow Procore's real response models (docs/api/procore-fields.json; the
simulator's contract test holds both to them): vendors carry their tax id in
`business_id`; direct-cost and contract lines nest `cost_code{}`/`line_item_type{}`
and have no flat ids; requisition items are AIA G703 running totals with a flat
`cost_code_id` and `line_item_id`; change-order lines are v2.0 lines that name the
contract line they change (`commitment_line_item_id`) and carry no cost code. Each
top-level record also holds `project_id` as sandbox bookkeeping (which project it
lives in); the simulator serves it only where the real model has it. A change
order's `line_items` are what the v2.0 line item endpoint serves.

Deliberate rough edges, so the pipeline has something to quarantine or resolve:
- one Procore project has no Deltek project; one Deltek project is inactive;
- vendors match Deltek firms by vendor number (origin_code), tax id (business_id only:
  another name, no vendor number), name, a mapping override, or not at all (one vendor
  has an empty name);
- exactly one cost code x cost type pair ("09-250" / "E") has no GL rule;
- some invoice numbers hold quotes, ampersands, hashes, percent signs and umlauts;
- approved change orders whose lines name no contract line, only a wbs_code whose
  flat_code ("03-300.S") gives cost code and type, and one whose line has neither (its
  flat_code does not split): summary "wbs_only_change_orders", "unresolvable_change_orders";
- stored materials carry over between applications: stored one month, still stored the
  next, installed later; one contract always does it over the last three months, all
  approved (summary "stored_materials_chain").
"""

from __future__ import annotations

import gc
import random
from dataclasses import dataclass, field
from datetime import date
from itertools import accumulate

# --- sandbox credentials (shared by both simulators and the runner) -------------------
PROCORE_CLIENT_ID = "sandbox-procore-client"
PROCORE_CLIENT_SECRET = "sandbox-procore-secret"  # noqa: S105 - public sandbox constant
PROCORE_COMPANY_ID = 4264800
DELTEK_USERNAME = "apiuser"
DELTEK_PASSWORD = "sandbox-deltek-password"  # noqa: S105 - public sandbox constant
DELTEK_DATABASE = "C0000042000P_1_SANDBOX0000"
DELTEK_CLIENT_ID = "sandbox+deltek/client="
DELTEK_CLIENT_SECRET = "sandbox-deltek-client-secret"  # noqa: S105 - public sandbox constant
DELTEK_INSTANCE = "SANDBOX"
DELTEK_API_PATH = "/SANDBOX/api"
DELTEK_COMPANY = "01"

COMPANY_NAME = "Keystone Builders Inc."
UNMAPPED_PAIR = ("09-250", "E")  # used by approved records, deliberately without a GL rule

# --- id bases (direct costs exceed 32 bits on purpose) -------------------------------
PROJECT_BASE = 2_780_001
VENDOR_BASE = 5_181_401
COST_CODE_BASE = 80_598_001
LINE_ITEM_TYPE_BASE = 9_000_047
BILLING_PERIOD_BASE = 117_001
COMMITMENT_BASE = 786_001  # work order and purchase order contracts share one id space
COMMITMENT_LINE_BASE = 5_175_001
CHANGE_ORDER_BASE = 300_001
CHANGE_ORDER_LINE_BASE = 700_001
REQUISITION_BASE = 1_280_001
REQUISITION_ITEM_BASE = 17_918_001
DIRECT_COST_BASE = 4_300_000_001
DIRECT_COST_LINE_BASE = 9_100_000_001
USER_ID = 1469242

PROJECTS = [  # (project_number, name, city, state, deltek match, months share, weight)
    ("2024001.00", "Riverside Medical Office Building", "Harrisburg", "PA", True, None, 1.0),
    ("2024002.00", "Harbor View Apartments", "Baltimore", "MD", True, None, 1.2),
    ("2024003.00", "Lincoln Elementary School Renovation", "Lancaster", "PA", True, None, 0.9),
    ("2025001.00", "Northgate Distribution Center", "York", "PA", True, None, 1.1),
    ("2025002.00", "City Hall Annex Tenant Improvement", "Reading", "PA", True, None, 0.7),
    ("2026001.00", "Westfield Parking Structure", "Allentown", "PA", False, 3, 0.15),
]
INACTIVE_DELTEK_PROJECT = ("2023004.00", "Maple Street Fire Station")
PHASED_PROJECT = "2024001.00"  # Deltek SubLevel "Y": charges go to WBS2 "CONST"

COST_CODES = [
    ("01-000", "General Requirements"),
    ("01-500", "Temporary Facilities"),
    ("02-200", "Site Work"),
    ("03-300", "Cast-in-Place Concrete"),
    ("04-200", "Unit Masonry"),
    ("05-100", "Structural Steel"),
    ("06-100", "Rough Carpentry"),
    ("07-200", "Insulation"),
    ("08-100", "Doors and Frames"),
    ("09-250", "Gypsum Board"),
    ("09-900", "Painting"),
    ("15-400", "Plumbing"),
    ("15-700", "HVAC"),
    ("16-100", "Electrical Rough-In"),
    ("26-000", "Electrical"),
]
COST_TYPES = [
    ("L", "Labor"),
    ("M", "Materials"),
    ("E", "Equipment"),
    ("S", "Subcontract"),
    ("O", "Other"),
]
# Procore's line item type base_type has no "labor": labor types are "other".
BASE_TYPES = {"L": "other", "M": "materials", "E": "equipment", "S": "commitment", "O": "other"}

# (name, city, how it matches Deltek). Matching kinds:
#   code = Deltek Vendor number == origin_code; tax = FedID == business_id (Deltek name
#   differs, no origin_code: only the tax id matches);
#   name = normalised names equal; override = mappings.yaml names the firm; none = no firm.
VENDORS = [
    ("ABC Concrete Contractors", "code"),
    ("Allegheny Steel Erectors", "code"),
    ("Brightline Electric Co.", "code"),
    ("Capitol Drywall & Acoustics", "code"),
    ("Delaware Valley Plumbing", "code"),
    ("Eastern Mechanical Services", "code"),
    ("Franklin Masonry", "code"),
    ("Gateway Painting Co.", "code"),
    ("Hanover Door & Hardware", "code"),
    ("Interstate Equipment Rental", "code"),
    ("Juniata Lumber Supply", "code"),
    ("Keystone Insulation", "code"),
    ("Liberty Site Contractors", "tax"),
    ("Mason-Dixon Ready Mix", "tax"),
    ("Northeast Fire Protection", "tax"),
    ("Octoraro Glass & Glazing", "tax"),
    ("Blue Ridge Plumbing & Heating, Inc.", "name"),
    ("Pioneer Roofing LLC", "name"),
    ("Quaker City Flooring", "name"),
    ("Red Rose Rebar", "override"),
    ("Susquehanna Supply House", "none"),
    ("Tri-County Waste Hauling", "none"),
    ("Union Crane Service", "none"),
    ("Valley Survey Group", "none"),
    ("Westmoreland Millwork", "none"),
    ("Yorktowne HVAC Supply", "none"),
    ("Zeller Temporary Fence", "none"),
    ("Apex Scaffolding", "none"),
    ("Bucks County Sitework", "none"),
    ("Chesapeake Caulking", "none"),
    ("Dauphin Electrical Wholesale", "none"),
    ("Erie Architectural Metals", "none"),
    ("Fulton Tile & Stone", "none"),
    ("Gettysburg Portable Toilets", "none"),
    ("Hershey Landscape Co.", "none"),
    ("Indiana Testing Labs", "none"),
    ("Johnstown Elevator", "none"),
    ("Kutztown Signage", "none"),
    ("Müller Façade Systems GmbH", "none"),
    ("", "none"),
]

REQUISITION_STATUSES = {
    "approved": 60,
    "approved_as_noted": 15,
    "under_review": 8,
    "draft": 5,
    "revise_and_resubmit": 6,
    "pending_owner_approval": 6,
}
RETAINAGE_PERCENT = "10.0"  # every contract retains 10%, on work and on stored materials
RETAINAGE_DIVISOR = 10
# Approved change orders built on purpose after the random ones: all but the last have a
# line naming no contract line, only a (parseable) wbs_code; the last one's line has
# neither a contract line nor a wbs_code that splits into cost code and cost type.
SPECIAL_CHANGE_ORDERS = 4
UNPARSEABLE_FLAT_CODE = "OWNER-ALLOWANCE"
UNPARSEABLE_WBS_ID = 99_000_001
DIRECT_COST_STATUSES = {"approved": 70, "pending": 12, "draft": 10, "revise_and_resubmit": 8}
DIRECT_COST_TYPES = {"invoice": 70, "expense": 20, "payroll": 10}
WORK_ORDER_STATUSES = {
    "Approved": 60,
    "Complete": 12,
    "Draft": 6,
    "Out For Bid": 4,
    "Out For Signature": 6,
    "Terminated": 4,
    "Void": 8,
}
PURCHASE_ORDER_STATUSES = {
    "Approved": 50,
    "Received": 12,
    "Partially Received": 10,
    "Closed": 8,
    "Submitted": 8,
    "Processing": 6,
    "Draft": 6,
}
CHANGE_ORDER_STATUSES = {
    "approved": 55,
    "pending": 8,
    "draft": 6,
    "pricing": 4,
    "not_pricing": 3,
    "revised": 3,
    "proceeding": 4,
    "not_proceeding": 3,
    "pending_billable": 3,
    "no_charge": 3,
    "rejected": 4,
    "void": 4,
}
BILLABLE_COMMITMENT = {
    "Approved",
    "Complete",
    "Terminated",
    "Received",
    "Partially Received",
    "Closed",
}
ODD_INVOICE_FORMS = (
    'INV-{n} "A&B" #3 50% Müller',
    "R&D #{n} 100%",
    'Rechnung {n} "Größe"',
    "{n}/A&B%20#x",
    "Façade-{n} ‘draw’",
)

GL_ACCOUNTS = [  # (account, name, type, status)
    ("1000", "Operating Cash", 1, "A"),
    ("2000", "Accounts Payable", 2, "A"),
    ("2150", "Committed Costs Offset", 2, "A"),
    ("2160", "Retainage Payable", 2, "A"),
    ("5100", "Subcontract Costs", 7, "A"),
    ("5200", "Materials", 7, "A"),
    ("5300", "Direct Labor", 7, "A"),
    ("5310", "General Conditions Labor", 7, "A"),
    ("5400", "Equipment", 7, "A"),
    ("5500", "Other Direct Costs", 7, "A"),
    ("5950", "Job Cost Suspense (retired)", 7, "I"),
]
# GLSummary lists only accounts with posted activity. These are in the chart and mapped but
# have none before the sandbox's first month, so they appear there only once a sync posts.
GL_NO_HISTORY = frozenset({"5400"})


@dataclass
class SandboxData:
    """Both sides of the sandbox world plus a mapping file that fits them."""

    procore: dict[str, list[dict]]
    deltek: dict
    mappings_yaml: str
    summary: dict = field(default_factory=dict)  # counts and the deliberate rough edges


# --- small pure helpers ---------------------------------------------------------------


def money(cents: int) -> str:
    """Cents as Procore's decimal string with two places ("-12.50")."""
    return f"{cents / 100:.2f}"  # exact: every cent value here is far below 2**53


def _weighted(table: dict[str, int]) -> tuple[list[str], list[int]]:
    return list(table), list(table.values())


def _month_start(month: str) -> date:
    year, mon = (int(part) for part in month.split("-"))
    return date(year, mon, 1)


def _add_months(day: date, count: int) -> date:
    index = day.year * 12 + day.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


class _Calendar:
    """Month windows and cached ISO strings, so 100k records format dates cheaply."""

    def __init__(self, end_month: str, months: int) -> None:
        end = _month_start(end_month)
        self.months = months
        self.starts = [_add_months(end, i - months + 1) for i in range(months + 1)]
        self.first = [d.toordinal() for d in self.starts]
        self.end_ordinal = self.first[-1] - 1
        self._iso: dict[int, str] = {}

    def day(self, ordinal: int) -> str:
        text = self._iso.get(ordinal)
        if text is None:
            text = self._iso[ordinal] = date.fromordinal(ordinal).isoformat()
        return text

    def stamp(self, ordinal: int, seconds: int) -> str:
        hours, rest = divmod(seconds, 3600)
        return f"{self.day(ordinal)}T{hours:02d}:{rest // 60:02d}:{rest % 60:02d}Z"

    def random_day(self, rng: random.Random, month: int) -> int:
        return _rand(rng, self.first[month], self.first[month + 1])

    def month_end(self, month: int) -> int:
        return self.first[month + 1] - 1


def _rand(rng: random.Random, low: int, high: int) -> int:
    """Integer in [low, high); one `random()` call, several times cheaper than randrange."""
    return low + int(rng.random() * (high - low))


def _times(rng: random.Random, cal: _Calendar, ordinal: int) -> tuple[str, str]:
    """created_at on `ordinal`, updated_at strictly later and never after the window."""
    created = _rand(rng, 6 * 3600, 20 * 3600)
    later_day = min(ordinal + rng.choice((0, 0, 1, 2, 5, 9, 14)), cal.end_ordinal)
    updated = created + _rand(rng, 60, 3 * 3600) if later_day == ordinal else created
    return cal.stamp(ordinal, created), cal.stamp(later_day, updated)


class _Picker:
    """Weighted status picker that first walks every status once, so each one occurs."""

    def __init__(self, table: dict[str, int], rng: random.Random) -> None:
        self.names, weights = _weighted(table)
        self.cumulative = list(accumulate(weights))
        self.rng = rng
        self.served = 0

    def __call__(self) -> str:
        if self.served < len(self.names):
            self.served += 1
            return self.names[self.served - 1]
        return self.rng.choices(self.names, cum_weights=self.cumulative)[0]


# --- the generator --------------------------------------------------------------------


class _Builder:
    def __init__(self, records: int, seed: int, end_month: str, months: int) -> None:
        self.rng = random.Random(seed)
        self.cal = _Calendar(end_month, months)
        self.records = records
        self.invoice_seq = 0
        self.out: dict[str, list[dict]] = {}

    # reference data ------------------------------------------------------------------
    def reference(self) -> None:
        cal = self.cal
        company_ref = {"id": PROCORE_COMPANY_ID, "name": COMPANY_NAME}
        self.out["companies"] = [
            {
                "id": PROCORE_COMPANY_ID,
                "name": COMPANY_NAME,
                "is_active": True,
                "pcn_business_experience": False,
                "my_company": True,
                "project_id": None,
            }
        ]
        seed_created = cal.stamp(cal.first[0] - 30, 9 * 3600)
        seed_updated = cal.stamp(cal.first[0] - 29, 10 * 3600)
        self.projects: list[dict] = []
        self.project_months: list[tuple[int, int]] = []
        for i, (number, name, city, state, _match, share, _w) in enumerate(PROJECTS):
            first_month = cal.months - share if share else 0
            first_month = max(first_month, 0)
            self.project_months.append((first_month, cal.months))
            start = cal.day(cal.first[first_month])
            created = cal.stamp(cal.first[first_month] - 20, 14 * 3600 + i)
            self.projects.append(
                {
                    "id": PROJECT_BASE + i,
                    "name": name,
                    "display_name": f"{number} - {name}",
                    "project_number": number,
                    "address": f"{100 + 17 * i} Market Street",
                    "city": city,
                    "state_code": state,
                    "country_code": "US",
                    "zip": f"17{100 + i * 7:03d}",
                    "stage": "Course of Construction",
                    "active": True,
                    "time_zone": "US/Eastern",
                    "start_date": start,
                    "completion_date": None,
                    "origin_id": None,
                    "origin_code": None,
                    "company": dict(company_ref),
                    "created_at": created,
                    "updated_at": created,
                    "project_id": PROJECT_BASE + i,
                }
            )
        self.out["projects"] = self.projects
        self.vendors = []
        for i, (name, kind) in enumerate(VENDORS):
            self.vendors.append(
                {
                    "id": VENDOR_BASE + i,
                    "name": name,
                    "company": name,
                    "abbreviated_name": None,
                    "is_active": True,
                    "origin_id": None,
                    "origin_code": _vendor_number(i) if kind == "code" else None,
                    "origin_data": None,
                    "business_id": _tax_id(i) if kind in ("tax", "code") or i % 3 == 0 else None,
                    "address": f"{200 + i} Industrial Drive",
                    "city": "Harrisburg",
                    "state_code": "PA",
                    "zip": "17111",
                    "country_code": "US",
                    "business_phone": f"717-555-{1000 + i:04d}",
                    "email_address": None,
                    "synced_to_erp": kind == "code",
                    "trade_name": "",
                    "primary_contact": None,
                    "vendor_group": None,
                    "created_at": seed_created,
                    "updated_at": seed_updated,
                    "project_id": None,
                }
            )
        self.out["vendors"] = self.vendors
        self.types = [
            {
                "id": LINE_ITEM_TYPE_BASE + i,
                "name": name,
                "code": code,
                "base_type": BASE_TYPES[code],
                "origin_data": None,
                "origin_id": None,
                "project_id": None,
            }
            for i, (code, name) in enumerate(COST_TYPES)
        ]
        self.type_by_code = {t["code"]: t for t in self.types}
        self.out["line_item_types"] = self.types
        self.codes_by_project: dict[int, list[dict]] = {}
        codes = []
        for p, project in enumerate(self.projects):
            mine = []
            for c, (full, name) in enumerate(COST_CODES):
                mine.append(
                    {
                        "id": COST_CODE_BASE + p * 100 + c,
                        "name": name,
                        "full_code": full,
                        "code": full.split("-")[1],
                        "origin_id": None,
                        "origin_data": None,
                        "standard_cost_code_id": 371 + c,
                        "biller": project["name"],
                        "biller_id": project["id"],
                        "biller_type": "Project",
                        "budgeted": True,
                        "sortable_code": full,
                        "position": c + 1,
                        "created_at": project["created_at"],
                        "updated_at": project["created_at"],
                        "deleted_at": None,
                        "line_item_types": [_type_ref(t) for t in self.types],
                        "project_id": project["id"],
                    }
                )
            self.codes_by_project[project["id"]] = mine
            codes.extend(mine)
        self.out["cost_codes"] = codes
        periods = []
        self.periods: dict[tuple[int, int], dict] = {}
        for p, project in enumerate(self.projects):
            first_month, last_month = self.project_months[p]
            for m in range(first_month, last_month):
                record = {
                    "id": BILLING_PERIOD_BASE + p * 1000 + m,
                    "start_date": cal.day(cal.first[m]),
                    "end_date": cal.day(cal.month_end(m)),
                    "due_date": cal.day(cal.month_end(m) - 5),
                    "position": m - first_month + 1,
                    "status": "open" if m >= last_month - 1 else "closed",
                    "project_id": project["id"],
                }
                periods.append(record)
                self.periods[(project["id"], m)] = record
        self.out["billing_periods"] = periods

    # helpers -------------------------------------------------------------------------
    def pick_project(self) -> int:
        return self.rng.choices(self.project_indexes, cum_weights=self.project_weights)[0]

    def pick_vendor(self) -> dict:
        return self.rng.choices(self.vendors, cum_weights=self.vendor_weights)[0]

    def invoice_number(self) -> str:
        """Unique across the data set, so vendor + invoice number identifies one record."""
        self.invoice_seq += 1
        n = self.invoice_seq
        if n % 37 == 7:
            return ODD_INVOICE_FORMS[(n // 37) % len(ODD_INVOICE_FORMS)].format(n=n)
        return f"INV-{n:06d}"

    def line_ref(self, cost_code: dict, cost_type: dict) -> dict:
        """Nested references as direct-cost and contract lines carry them (no flat ids)."""
        return {
            "cost_code": {
                "id": cost_code["id"],
                "name": cost_code["name"],
                "full_code": cost_code["full_code"],
            },
            "line_item_type": _type_ref(cost_type),
            "wbs_code": _wbs_code(cost_code, cost_type),
        }

    # commitments ---------------------------------------------------------------------
    def commitments(self, count: int) -> None:
        rng, cal = self.rng, self.cal
        pick_woc = _Picker(WORK_ORDER_STATUSES, rng)
        pick_po = _Picker(PURCHASE_ORDER_STATUSES, rng)
        wocs: list[dict] = []
        pos: list[dict] = []
        numbers: dict[tuple[int, str], int] = {}
        line_id = COMMITMENT_LINE_BASE
        for i in range(count):
            p = self.pick_project()
            project = self.projects[p]
            project_ref = {"id": project["id"], "name": project["name"]}
            first_month, last_month = self.project_months[p]
            is_woc = i % 10 < 7
            prefix = "SC" if is_woc else "PO"
            holder_type = "WorkOrderContract" if is_woc else "PurchaseOrderContract"
            numbers[(p, prefix)] = numbers.get((p, prefix), 0) + 1
            status = pick_woc() if is_woc else pick_po()
            month = _rand(rng, first_month, max(first_month + 1, last_month - 2))
            day = cal.random_day(rng, month)
            created, updated = _times(rng, cal, day)
            vendor = self.pick_vendor()
            codes = rng.sample(self.codes_by_project[project["id"]], _rand(rng, 1, 5))
            lines = []
            total = 0
            for pos_n, code in enumerate(codes, 1):
                type_code = rng.choice("SSSSLEM") if is_woc else rng.choice("MMMEEO")
                ctype = self.type_by_code[type_code]
                cents = _rand(rng, 5_000, 400_000) * 100 + rng.choice((0, 0, 50, 25))
                total += cents
                qty = _rand(rng, 1, 401)
                lines.append(
                    {
                        "id": line_id,
                        "amount": money(cents),
                        "total_amount": money(cents),
                        "extended_amount": money(cents),
                        "quantity": f"{qty}.0",
                        "unit_cost": money(cents // qty),
                        "uom": "ls" if is_woc else "ea",
                        "description": f"{code['name']} - {ctype['name']}",
                        "extended_type": "manual",
                        "position": pos_n,
                        **self.line_ref(code, ctype),
                        "holder": {"id": COMMITMENT_BASE + i, "holder_type": holder_type},
                        "project": dict(project_ref),
                        "origin_id": None,
                        "created_at": created,
                        "updated_at": updated,
                    }
                )
                line_id += 1
            record = {
                "id": COMMITMENT_BASE + i,
                "number": f"{prefix}-{numbers[(p, prefix)]:03d}",
                "title": f"{vendor['name'] or 'Unnamed vendor'} - {codes[0]['name']}",
                "status": status,
                "executed": status in BILLABLE_COMMITMENT,
                "private": False,
                "accounting_method": "amount",
                "grand_total": money(total),
                "revised_contract": money(total),
                "approved_change_orders": "0.00",
                "pending_change_orders": "0.00",
                "total_payments": "0.00",
                "total_requisitions_amount": "0.00",
                "remaining_balance_outstanding": money(total),
                "retainage_percent": RETAINAGE_PERCENT,
                "contract_date": cal.day(day),
                "origin_id": None,
                "project": project_ref,
                "vendor": {"id": vendor["id"], "company": vendor["name"]},
                "created_at": created,
                "updated_at": updated,
                "line_items": lines,
                "project_id": project["id"],
                "_month": month,
                "_day": day,
            }
            (wocs if is_woc else pos).append(record)
        self.out["work_order_contracts"] = wocs
        self.out["purchase_order_contracts"] = pos

    def postable_contracts(self) -> list[dict]:
        """Contracts whose spend the connector can post end to end (billable, in a Deltek
        project, vendor matched), best first: the deliberate cases are built on these."""
        matched_vendor = {VENDOR_BASE + i for i, (_n, kind) in enumerate(VENDORS) if kind != "none"}

        def rank(contract: dict) -> tuple:
            return (
                contract["status"] != "Approved",
                not contract["number"].startswith("SC"),
                contract["vendor"]["id"] not in matched_vendor,
                contract["_month"] > self.cal.months - 4,
                contract["id"],
            )

        contracts = [
            c
            for c in self.out["work_order_contracts"] + self.out["purchase_order_contracts"]
            if c["status"] in BILLABLE_COMMITMENT
            and PROJECTS[self._project_index(c["project_id"])][4]
        ]
        return sorted(contracts, key=rank)

    # change orders -------------------------------------------------------------------
    def change_orders(self, count: int) -> None:
        """Random COs, then the deliberate ones: a few whose lines name no contract line
        (only a wbs_code, parseable) and one whose line has neither a contract line nor a
        parseable wbs_code (the connector must quarantine it)."""
        rng = self.rng
        pick = _Picker(CHANGE_ORDER_STATUSES, rng)
        contracts = self.out["work_order_contracts"] + self.out["purchase_order_contracts"]
        contracts.sort(key=lambda c: c["id"])
        special = SPECIAL_CHANGE_ORDERS
        self.co_per_contract: dict[int, int] = {}
        self.co_line_id = CHANGE_ORDER_LINE_BASE
        orders = []
        for i in range(count - special):
            contract = rng.choice(contracts)
            status = pick()
            sign = -1 if rng.random() < 0.12 else 1
            chosen = rng.sample(
                contract["line_items"], min(len(contract["line_items"]), _rand(rng, 1, 3))
            )
            amounts = [sign * (_rand(rng, 500, 40_000) * 100 + rng.choice((0, 75))) for _ in chosen]
            lines = [
                self.co_line(position, cents, line, line["wbs_code"], line["description"])
                for position, (line, cents) in enumerate(zip(chosen, amounts, strict=True), 1)
            ]
            orders.append(self.change_order(CHANGE_ORDER_BASE + i, contract, status, lines))
        self.wbs_only_orders: list[int] = []
        self.unresolvable_orders: list[int] = []
        postable = self.postable_contracts() or contracts
        for k in range(special):
            contract = postable[k % len(postable)]
            order_id = CHANGE_ORDER_BASE + count - special + k
            cents = _rand(rng, 500, 20_000) * 100
            if k < special - 1:  # the contract line's cost code x cost type, as a wbs_code only
                line = contract["line_items"][-1]
                lines = [self.co_line(1, cents, None, line["wbs_code"], line["description"])]
                self.wbs_only_orders.append(order_id)
            else:
                wbs = {
                    "id": UNPARSEABLE_WBS_ID,
                    "flat_code": UNPARSEABLE_FLAT_CODE,
                    "description": "Owner allowance",
                }
                lines = [self.co_line(1, cents, None, wbs, "Owner allowance")]
                self.unresolvable_orders.append(order_id)
            orders.append(self.change_order(order_id, contract, "approved", lines))
        self.out["commitment_change_orders"] = orders

    def co_line(self, position: int, cents: int, line: dict | None, wbs: dict, what: str) -> dict:
        """One v2.0 change-order line: no cost code, no cost type (see the Commitment change
        orders section of docs/api/procore.md)."""
        self.co_line_id += 1
        return {
            "id": self.co_line_id - 1,
            "description": f"Change to {what}",
            "amount": money(cents),
            "quantity": 1.0,
            "unit_cost": money(cents),
            "uom": "ls",
            "extended_type": "manual",
            "position": position,
            "commitment_line_item_id": line["id"] if line else None,
            "prime_line_item_id": None,
            "wbs_code_id": wbs["id"],
            "wbs_code": dict(wbs),
            "work_breakdown_structure": {},
        }

    def change_order(self, order_id: int, contract: dict, status: str, lines: list) -> dict:
        rng, cal = self.rng, self.cal
        number = self.co_per_contract[contract["id"]] = (
            self.co_per_contract.get(contract["id"], 0) + 1
        )
        p_last = self.project_months[self._project_index(contract["project_id"])][1]
        month = _rand(rng, contract["_month"], p_last)
        day = cal.random_day(rng, month)
        created, updated = _times(rng, cal, day)
        total = sum(_cents(line["amount"]) for line in lines)
        reviewed = status in ("approved", "rejected", "void", "no_charge")
        return {
            "id": order_id,
            "type": "CommitmentChangeOrder",
            "contract_id": contract["id"],
            "batch_id": None,
            "number": f"{number:03d}",
            "title": f"CO {number:03d} on {contract['number']}",
            "description": "Owner-directed change" if total >= 0 else "Scope reduction",
            "status": status,
            "executed": status == "approved",
            "paid": False,
            "grand_total": money(total),
            "revision": 0,
            "due_date": cal.day(min(day + 14, cal.end_ordinal)),
            "invoiced_date": None,
            "reviewed_at": cal.stamp(day, 16 * 3600 + order_id % 3600) if reviewed else None,
            "created_at": created,
            "updated_at": updated,
            "created_by": {"id": USER_ID, "name": "Pat Project-Manager"},
            "reviewed_by": {"id": USER_ID, "name": "Pat Project-Manager"} if reviewed else None,
            "change_order_change_reason": {"id": 1, "change_reason": "Owner Request"},
            "line_items": lines,  # served by the v2.0 line item endpoint, not in v1 bodies
            "project_id": contract["project_id"],
        }

    def _project_index(self, project_id: int) -> int:
        return project_id - PROJECT_BASE

    # requisitions --------------------------------------------------------------------
    def requisitions(self, count: int) -> None:
        """Pay applications per contract, month by month, as AIA G703 running totals.

        One contract (when the window spans >= 3 months) gets the stored-materials chain:
        its first line stores materials in month end-2, carries them in end-1 and
        installs them in the last month, all three applications approved.
        """
        rng = self.rng
        pick = _Picker(REQUISITION_STATUSES, rng)
        contracts = [
            c
            for c in self.out["work_order_contracts"] + self.out["purchase_order_contracts"]
            if c["status"] in BILLABLE_COMMITMENT
        ]
        contracts.sort(key=lambda c: c["id"])
        chain = self.chain_contract()
        others = [c for c in contracts if c is not chain] or contracts
        shares: dict[int, int] = {}
        for _ in range(count - (3 if chain else 0)):
            chosen = rng.choice(others)["id"]
            shares[chosen] = shares.get(chosen, 0) + 1
        if chain is not None:
            shares[chain["id"]] = 3
        self.requisition_id, self.item_id = REQUISITION_BASE, REQUISITION_ITEM_BASE
        requisitions: list[dict] = []
        for contract in contracts:
            n = shares.get(contract["id"], 0)
            if not n:
                continue
            last_month = self.project_months[self._project_index(contract["project_id"])][1]
            if contract is chain:
                months = [last_month - 3, last_month - 2, last_month - 1]
                statuses = ["approved"] * 3
            else:
                span = list(range(min(contract["_month"] + 1, last_month - 1), last_month))
                months = sorted(rng.sample(span, n) if n <= len(span) else rng.choices(span, k=n))
                statuses = [pick() for _ in months]
            requisitions += self.applications(contract, months, statuses, contract is chain)
        requisitions.sort(key=lambda r: r["id"])
        self.out["requisitions"] = requisitions

    def chain_contract(self) -> dict | None:
        """The contract that carries stored materials over three approved applications."""
        months = self.cal.months
        for contract in self.postable_contracts():
            index = self._project_index(contract["project_id"])
            first, last = self.project_months[index]
            mapped = PROJECTS[index][4] and all(  # it must post: a matched project, mapped lines
                (line["cost_code"]["full_code"], line["line_item_type"]["code"]) != UNMAPPED_PAIR
                for line in contract["line_items"]
            )
            named = bool(self.vendors[contract["vendor"]["id"] - VENDOR_BASE]["name"])
            if (
                mapped
                and named
                and last == months
                and last - first >= 3
                and contract["_month"] <= last - 3
            ):
                return contract
        return None

    def applications(
        self, contract: dict, months: list[int], statuses: list[str], chain: bool
    ) -> list[dict]:
        rng, cal = self.rng, self.cal
        project_id = contract["project_id"]
        is_woc = contract["number"].startswith("SC")
        vendor = self.vendors[contract["vendor"]["id"] - VENDOR_BASE]
        state = {line["id"]: _LineState() for line in contract["line_items"]}
        out: list[dict] = []
        previous_id = None
        for number, (month, status) in enumerate(zip(months, statuses, strict=True), 1):
            items = []
            for position, line in enumerate(contract["line_items"], 1):
                st = state[line["id"]]
                scheduled = _cents(line["amount"])
                work, new, moved = self.progress(scheduled, st, chain and position == 1, number)
                if chain and position > 1:
                    new = 0
                item, state[line["id"]] = _g703_item(
                    self.item_id, position, line, st, work, new, moved
                )
                items.append(item)
                self.item_id += 1
            period = self.periods[(project_id, month)]
            billing_day = cal.random_day(rng, month)
            if month == contract["_month"]:  # billed after the contract was signed
                billing_day = min(max(billing_day, contract["_day"] + 1), cal.month_end(month))
            created, updated = _times(rng, cal, billing_day)
            record = {
                "id": self.requisition_id,
                "project_id": project_id,
                "commitment_id": contract["id"],
                "commitment_type": "WorkOrderContract" if is_woc else "PurchaseOrderContract",
                "contract_name": contract["title"],
                "vendor_id": vendor["id"],
                "vendor_name": vendor["name"],
                "invoice_number": None
                if status == "draft" and number % 2
                else self.invoice_number(),
                "number": number,
                "period_id": period["id"],
                "billing_date": cal.day(billing_day),
                "requisition_start": period["start_date"],
                "requisition_end": period["end_date"],
                "status": status,
                "submitted_at": cal.day(billing_day),
                "payment_date": None,
                "final": False,
                "origin_id": None,
                "origin_data": None,
                "created_at": created,
                "updated_at": updated,
                "created_by": {
                    "id": USER_ID + 1 + vendor["id"] % 50,
                    "name": "Vendor billing contact",
                    "login": f"billing{vendor['id']}@vendor.example",
                    "company_name": vendor["name"],
                },
                "currency_configuration": {"currency_iso_code": "USD"},
                **_g702(contract, items),
                "items": items,
                "item_packages": [],
            }
            if previous_id is not None:
                record["previous_requisition_id"] = previous_id
            out.append(record)
            previous_id = self.requisition_id
            self.requisition_id += 1
        if chain:
            self.stored_materials_chain = {
                "commitment_id": contract["id"],
                "line_item_id": contract["line_items"][0]["id"],
                "requisition_ids": [r["id"] for r in out],
                "item_ids": [r["items"][0]["id"] for r in out],
                "months": [cal.day(cal.first[m])[:7] for m in months],
            }
        return out

    def progress(
        self, scheduled: int, st: _LineState, chain: bool, number: int
    ) -> tuple[int, int, int]:
        """(work this period excluding installed stored materials, new materials stored,
        stored materials installed) for one line, in cents, all multiples of 10 cents."""
        rng = self.rng
        left = scheduled - st.work - st.stored
        work = _tens(min(left, scheduled * _rand(rng, 4, 23) // 100))
        moved = 0
        if st.stored:
            roll = rng.random()
            moved = st.stored if roll < 0.45 else _tens(st.stored // 2) if roll < 0.6 else 0
        new = 0
        if rng.random() < 0.2:
            new = _tens(min(left - work, scheduled * _rand(rng, 1, 6) // 100))
        if chain:  # stored in the first, carried in the second, installed in the third
            new = _tens(min(left - work, scheduled * 8 // 100)) if number == 1 else 0
            moved = st.stored if number == 3 else 0
        return work, new, moved

    # direct costs --------------------------------------------------------------------
    def direct_costs(self, count: int) -> None:
        rng, cal = self.rng, self.cal
        pick_status = _Picker(DIRECT_COST_STATUSES, rng)
        pick_type = _Picker(DIRECT_COST_TYPES, rng)
        costs = []
        line_id = DIRECT_COST_LINE_BASE
        for i in range(count):
            p = self.pick_project()
            project = self.projects[p]
            first_month, last_month = self.project_months[p]
            kind, status = pick_type(), pick_status()
            month = _rand(rng, first_month, last_month)
            day = cal.random_day(rng, month)
            created, updated = _times(rng, cal, day)
            vendor = None if kind == "payroll" else self.pick_vendor()
            lines, total = [], 0
            type_codes = {"invoice": "MMEOS", "expense": "OOM", "payroll": "L"}[kind]
            for position in range(1, _rand(rng, 1, 4) + 1):
                code = rng.choice(self.codes_by_project[project["id"]])
                ctype = self.type_by_code[rng.choice(type_codes)]
                cents = _rand(rng, 2_000, 2_500_000)
                total += cents
                qty = _rand(rng, 1, 121)
                lines.append(
                    {
                        "id": line_id,
                        "description": f"{code['name']} {ctype['name'].lower()}",
                        "amount": money(cents),
                        "total_amount": money(cents),
                        "quantity": f"{qty}.0",
                        "unit_cost": money(cents // qty),
                        "uom": "ea",
                        "extended_type": "manual",
                        "position": position,
                        **self.line_ref(code, ctype),
                        "created_at": created,
                        "updated_at": updated,
                    }
                )
                line_id += 1
            received = min(day + _rand(rng, 0, 13), cal.end_ordinal)
            cost = {
                "id": DIRECT_COST_BASE + i,
                "direct_cost_type": kind,
                "status": status,
                "invoice_number": self.invoice_number()
                if kind != "payroll"
                else f"PR-{cal.day(day)}-{i}",
                "description": {
                    "invoice": "Supplier invoice",
                    "expense": "Field expense",
                    "payroll": "Weekly payroll",
                }[kind]
                + f" {cal.day(day)[:7]}",
                "direct_cost_date": cal.day(day),
                "received_date": cal.day(received),
                "terms": "Net 30",
                "grand_total": money(total),
                "project": {"id": project["id"], "name": project["name"]},
                "created_at": created,
                "updated_at": updated,
                "line_items": lines,
                "project_id": project["id"],
            }
            if vendor is not None:
                cost["vendor"] = {"id": vendor["id"], "name": vendor["name"]}
                cost["vendor_id"] = vendor["id"]
                cost["vendor_name"] = vendor["name"]
            else:
                cost["employee"] = {"id": USER_ID + 7, "name": "Field Crew"}
            costs.append(cost)
        self.out["direct_costs"] = costs

    def ensure_unmapped_pair(self) -> None:
        """Guarantee one approved invoice uses the pair the mapping leaves out."""
        code_name, type_code = UNMAPPED_PAIR
        for cost in self.out["direct_costs"]:
            if cost["status"] == "approved" and any(
                line["cost_code"]["full_code"] == code_name
                and line["line_item_type"]["code"] == type_code
                for line in cost["line_items"]
            ):
                return
        for cost in self.out["direct_costs"]:
            if cost["status"] == "approved" and cost["direct_cost_type"] == "invoice":
                line = cost["line_items"][0]
                code = next(
                    c
                    for c in self.codes_by_project[cost["project_id"]]
                    if c["full_code"] == code_name
                )
                ctype = self.type_by_code[type_code]
                line.update(description=f"{code['name']} equipment", **self.line_ref(code, ctype))
                return

    def build(self) -> dict[str, list[dict]]:
        self.reference()
        self.vendor_weights = list(accumulate(0.2 if not v["name"] else 1.0 for v in self.vendors))
        self.project_indexes = list(range(len(self.projects)))
        self.project_weights = list(accumulate(row[6] for row in PROJECTS))
        self.stored_materials_chain: dict | None = None
        n_commit = max(14, self.records // 10)
        n_change = max(len(CHANGE_ORDER_STATUSES) + SPECIAL_CHANGE_ORDERS, self.records // 10)
        n_req = max(len(REQUISITION_STATUSES) + 3, self.records * 4 // 10)
        n_direct = max(12, self.records - n_commit - n_change - n_req)
        self.commitments(n_commit)
        self.change_orders(n_change)
        self.requisitions(n_req)
        self.direct_costs(n_direct)
        self.ensure_unmapped_pair()
        for contract in self.out["work_order_contracts"] + self.out["purchase_order_contracts"]:
            del contract["_month"], contract["_day"]
        return self.out


@dataclass(frozen=True)
class _LineState:
    """One contract line after an application, in cents: work completed to date (not
    counting stored materials), materials stored now, work retainage held."""

    work: int = 0
    stored: int = 0
    work_retainage: int = 0


def _tens(cents: int) -> int:
    """Down to a multiple of 10 cents, so 10% retainage is always a whole cent."""
    return max(0, cents - cents % 10)


def _pct(part: int, whole: int) -> str:
    return f"{part * 100 / whole:.2f}" if whole else "0.00"


def _g703_item(
    item_id: int, position: int, line: dict, before: _LineState, work: int, new: int, moved: int
) -> tuple[dict, _LineState]:
    """One G703 line of an application (the v1.1 requisition item) and the line's new state.

    work = work this period other than installing stored materials; new = materials newly
    stored; moved = stored materials installed this period (billed before, now work).
    """
    this_period = work + moved
    stored_now = before.stored + new - moved
    work_retained = work // RETAINAGE_DIVISOR  # retainage on moved materials was held already
    moved_retainage = moved // RETAINAGE_DIVISOR
    new_retainage = new // RETAINAGE_DIVISOR
    to_date = before.work + this_period + stored_now
    gross = this_period + stored_now - before.stored
    scheduled = _cents(line["amount"])
    item = {
        "id": item_id,
        "item_type": "contract_item",
        "accounting_method": "amount",
        "cost_code_id": line["cost_code"]["id"],
        "line_item_id": line["id"],
        "description_of_work": line["description"],
        "scheduled_value": line["amount"],
        "work_completed_from_previous_application": money(before.work),
        "work_completed_this_period": money(this_period),
        "materials_presently_stored": money(stored_now),
        "materials_presently_stored_from_previous_progress": money(before.stored),
        "materials_moved": money(moved),
        "total_completed_and_stored_to_date": money(to_date),
        "total_completed_and_stored_to_date_percent": _pct(to_date, scheduled),
        "total_completed_and_stored_to_date_from_previous": money(before.work + before.stored),
        "work_completed_retainage_from_previous_application": money(before.work_retainage),
        "work_completed_retainage_retained_this_period": money(work_retained),
        "work_completed_retainage_percent_this_period": RETAINAGE_PERCENT,
        "work_completed_retainage_released_this_period": "0.00",
        "materials_stored_retainage_new_materials": money(new_retainage),
        "materials_retainage_retained_moved": money(moved_retainage),
        "materials_stored_retainage_currently_retained": money(stored_now // RETAINAGE_DIVISOR),
        "materials_stored_retainage_percent_this_period": RETAINAGE_PERCENT,
        "materials_stored_retainage_released_this_period": "0.00",
        "gross_amount": money(gross),
        "net_amount": money(gross - work_retained - new_retainage),
        "wbs_code": dict(line["wbs_code"]),
        "position": position,
    }
    after = _LineState(
        before.work + this_period,
        stored_now,
        before.work_retainage + work_retained + moved_retainage,
    )
    return item, after


def _g702(contract: dict, items: list[dict]) -> dict:
    """The application's G702 summary and claimed amount, summed from its G703 items."""

    def total(key: str) -> int:
        return sum(_cents(item[key]) for item in items)

    gross = total("gross_amount")
    held_now = total("work_completed_retainage_retained_this_period") + total(
        "materials_stored_retainage_new_materials"
    )
    work_balance = (
        total("work_completed_retainage_from_previous_application")
        + total("work_completed_retainage_retained_this_period")
        + total("materials_retainage_retained_moved")
    )
    stored_balance = total("materials_stored_retainage_currently_retained")
    retained = work_balance + stored_balance
    to_date = total("total_completed_and_stored_to_date")
    due = gross - held_now
    contract_sum = _cents(contract["grand_total"])
    return {
        "percent_complete": f"{to_date * 100 / max(contract_sum, 1):.2f}%",
        "total_claimed_amount": money(gross),
        "summary": {
            "original_contract_sum": contract["grand_total"],
            "net_change_by_change_orders": "0.00",
            "contract_sum_to_date": contract["grand_total"],
            "total_completed_and_stored_to_date": money(to_date),
            "completed_work_retainage_percent": RETAINAGE_PERCENT,
            "completed_work_retainage_amount": money(work_balance),
            "stored_materials_retainage_percent": RETAINAGE_PERCENT,
            "stored_materials_retainage_amount": money(stored_balance),
            "total_retainage": money(retained),
            "total_earned_less_retainage": money(to_date - retained),
            "less_previous_certificates_for_payment": money(to_date - retained - due),
            "current_payment_due": money(due),
            "balance_to_finish_including_retainage": money(contract_sum - to_date + retained),
            "new_materials": money(
                total("materials_presently_stored")
                - total("materials_presently_stored_from_previous_progress")
                + total("materials_moved")
            ),
            "stored_materials": money(total("materials_presently_stored")),
            "tax_applicable_to_this_payment": "0.00",
        },
    }


def _wbs_code(cost_code: dict, cost_type: dict) -> dict:
    """flat_code = the cost code's full code, ".", the cost type code (e.g. "03-300.S")."""
    return {
        "id": cost_code["id"] * 10 + cost_type["id"] % 10,
        "flat_code": f"{cost_code['full_code']}.{cost_type['code']}",
        "description": f"{cost_code['name']}.{cost_type['name']}",
    }


def _cents(text: str) -> int:
    whole, _, frac = text.lstrip("-").partition(".")
    value = int(whole) * 100 + int((frac + "00")[:2])
    return -value if text.startswith("-") else value


def _type_ref(ctype: dict) -> dict:
    return {
        "id": ctype["id"],
        "name": ctype["name"],
        "code": ctype["code"],
        "base_type": ctype["base_type"],
    }


def _vendor_number(index: int) -> str:
    return f"{31200 + index:010d}"


def _tax_id(index: int) -> str:
    return f"{23 + index % 60:02d}-{(1_000_003 * (index + 7)) % 9_000_000 + 1_000_000:07d}"


def _client_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


# --- Deltek side and mapping file ------------------------------------------------------


def _deltek_name(name: str, kind: str) -> str:
    """How the firm is spelled in Deltek: same (code), different (tax), or re-punctuated."""
    if kind == "tax":
        return f"{name} Corp."
    if kind == "name":
        return name.replace(",", "").replace(".", "").upper()
    if kind == "override":
        return "RRR Steel Holdings"
    return name


def _deltek(rng: random.Random, cal: _Calendar, procore: dict[str, list[dict]]) -> dict:
    def dt(ordinal: int) -> str:
        return f"{cal.day(ordinal)}T00:00:00.000"

    created = dt(cal.first[0] - 400)
    firms = []
    for i, (name, kind) in enumerate(VENDORS):
        if kind == "none":
            continue
        number = _vendor_number(i) if kind != "override" else "RRR-STEEL"
        firms.append(
            {
                "ClientID": _client_id(rng),
                "Client": number,
                "Name": _deltek_name(name, kind),
                "Status": "A",
                "ClientInd": "N",
                "VendorInd": "Y",
                "Vendor": number,
                "Type": "",
                "FedID": _tax_id(i) if kind in ("code", "tax") else "",
                "PrimaryCity": "Harrisburg",
                "CreateDate": created,
                "ModDate": created,
            }
        )
    owners = [
        "Riverside Health System",
        "Harbor View Partners LP",
        "Lancaster School District",
        "Northgate Logistics LLC",
        "City of Reading",
    ]
    owner_ids = []
    for i, name in enumerate(owners):
        owner_ids.append(_client_id(rng))
        firms.append(
            {
                "ClientID": owner_ids[-1],
                "Client": f"C{1001 + i}",
                "Name": name,
                "Status": "A",
                "ClientInd": "Y",
                "VendorInd": "N",
                "Vendor": "",
                "Type": "",
                "FedID": "",
                "PrimaryCity": "Harrisburg",
                "CreateDate": created,
                "ModDate": created,
            }
        )
    firms.append(
        {
            "ClientID": _client_id(rng),
            "Client": "0000030999",
            "Name": "Old Town Hauling",
            "Status": "I",
            "ClientInd": "N",
            "VendorInd": "Y",
            "Vendor": "0000030999",
            "Type": "",
            "FedID": "",
            "PrimaryCity": "York",
            "CreateDate": created,
            "ModDate": created,
        }
    )
    projects = []
    for i, (number, name, *_rest) in enumerate(PROJECTS):
        if not PROJECTS[i][4]:
            continue
        base = {
            "WBS1": number,
            "WBS2": "",
            "WBS3": "",
            "Name": name[:40],
            "LongName": name,
            "ChargeType": "R",
            "SubLevel": "Y" if number == PHASED_PROJECT else "N",
            "Status": "A",
            "Org": "01:PM",
            "ClientID": owner_ids[i % len(owner_ids)],
            "StartDate": procore["projects"][i]["start_date"] + "T00:00:00.000",
            "EndDate": "",
            "ProjectCurrencyCode": "USD",
            "ModDate": created,
        }
        projects.append(base)
        if number == PHASED_PROJECT:
            for wbs2, phase in (("PRECON", "Preconstruction"), ("CONST", "Construction")):
                projects.append(
                    {**base, "WBS2": wbs2, "Name": phase, "LongName": phase, "SubLevel": "N"}
                )
    number, name = INACTIVE_DELTEK_PROJECT
    projects.append(
        {
            "WBS1": number,
            "WBS2": "",
            "WBS3": "",
            "Name": name,
            "LongName": name,
            "ChargeType": "R",
            "SubLevel": "N",
            "Status": "I",
            "Org": "01:PM",
            "ClientID": owner_ids[-1],
            "StartDate": dt(cal.first[0] - 700),
            "EndDate": dt(cal.first[0] - 60),
            "ProjectCurrencyCode": "USD",
            "ModDate": created,
        }
    )
    accounts = [
        {
            "Account": acct,
            "Name": name,
            "Type": kind,
            "Status": status,
            "GlobalAccount": "N",
            "AccountCurrencyCode": "USD",
        }
        for acct, name, kind, status in GL_ACCOUNTS
    ]
    end = cal.starts[-1]
    return {
        "firms": firms,
        "projects": projects,
        "accounts": accounts,
        "gl_history": _gl_history(cal),
        "active_period": end.year * 100 + end.month,
        "company": DELTEK_COMPANY,
    }


def _gl_history(cal: _Calendar) -> list[dict]:
    """Activity of the month before the seeded data, per account except GL_NO_HISTORY."""
    first = cal.starts[0]
    period = first.year * 100 + first.month - 1 if first.month > 1 else (first.year - 1) * 100 + 12
    return [
        {"Period": period, "Account": acct, "Amount": (1000.0 + 100 * i) * (-1 if kind == 2 else 1)}
        for i, (acct, _name, kind, _status) in enumerate(GL_ACCOUNTS)
        if acct not in GL_NO_HISTORY
    ]


def _mappings_yaml(procore: dict[str, list[dict]]) -> str:
    """GL rules cover every used pair except UNMAPPED_PAIR; no catch-all."""
    phased = next(p for p in procore["projects"] if p["project_number"] == PHASED_PROJECT)
    override = next(
        v for v in procore["vendors"] if VENDORS[v["id"] - VENDOR_BASE][1] == "override"
    )
    lines = [
        "# Generated by deltek_procore.sandbox.seed for the sandbox data set.",
        "defaults:",
        "  liability_code: AP",
        "  bank_code: OPER",
        '  commitment_offset_account: "2150"',
        '  retainage_account: "2160"',
        "projects:",
        f"  - procore_project_id: {phased['id']}",
        f'    wbs1: "{PHASED_PROJECT}"',
        '    wbs2: "CONST"',
        "vendors:",
        f"  - procore_vendor_id: {override['id']}",
        '    deltek_vendor: "RRR-STEEL"',
        "gl_accounts:",
    ]

    def rule(code: str, ctype: str, account: str) -> None:
        lines.extend(
            [f'  - cost_code: "{code}"', f"    cost_type: {ctype}", f'    account: "{account}"']
        )

    rule("01-*", "L", "5310")
    rule("*", "L", "5300")
    rule("*", "S", "5100")
    rule("*", "M", "5200")
    rule("*", "O", "5500")
    skip_code, _ = UNMAPPED_PAIR
    for full, _name in COST_CODES:
        if full != skip_code:
            rule(full, "E", "5400")
    return "\n".join(lines) + "\n"


def _summary(procore: dict[str, list[dict]], builder: _Builder) -> dict:
    counts = {key: len(rows) for key, rows in procore.items()}
    matches = {
        kind: [name for name, k in VENDORS if k == kind]
        for kind in ("code", "tax", "name", "override", "none")
    }
    return {
        "counts": counts,
        "records": counts["requisitions"]
        + counts["direct_costs"]
        + counts["work_order_contracts"]
        + counts["purchase_order_contracts"]
        + counts["commitment_change_orders"],
        "unmapped_pair": list(UNMAPPED_PAIR),
        "unmatched_project": next(p[0] for p in PROJECTS if not p[4]),
        "inactive_deltek_project": INACTIVE_DELTEK_PROJECT[0],
        "phased_project": PHASED_PROJECT,
        "vendor_matches": matches,
        # The deliberate cases, by id, so end-to-end tests can follow them:
        # {"commitment_id", "line_item_id", "requisition_ids", "item_ids", "months"} or None
        "stored_materials_chain": builder.stored_materials_chain,
        "wbs_only_change_orders": list(builder.wbs_only_orders),
        "unresolvable_change_orders": list(builder.unresolvable_orders),
    }


def build(
    records: int = 2000, seed: int = 42, end_month: str = "2026-10", months: int = 24
) -> SandboxData:
    """Generate the sandbox world; `records` ~= invoices + direct costs + commitments + COs."""
    builder = _Builder(records, seed, end_month, months)
    collecting = gc.isenabled()
    gc.disable()  # hundreds of thousands of small dicts: the cyclic GC would triple the time
    try:
        procore = builder.build()
    finally:
        if collecting:
            gc.enable()
    deltek = _deltek(builder.rng, builder.cal, procore)
    return SandboxData(
        procore=procore,
        deltek=deltek,
        mappings_yaml=_mappings_yaml(procore),
        summary=_summary(procore, builder),
    )
