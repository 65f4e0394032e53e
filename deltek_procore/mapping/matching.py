"""Auto-matching of Procore projects and vendors to Deltek projects and firms.

Pure functions over plain dicts or models (Procore side: ``id``, ``project_number``,
``name``/``company``, ``origin_code``, ``business_id`` (Procore's tax id field; legacy
``tax_id``/``federal_tax_id``/``tin`` keys are read only when it is absent) as keys or
attributes; Deltek side: rows in Deltek's PascalCase shape). A result with ``problem`` set must not be used for posting;
the problem says what a person should do.

Deltek compares codes case-insensitively (SQL Server collation), so WBS1 and vendor numbers
are compared casefolded here too, and the Deltek spelling is returned. Deltek pads empty
WBS2/WBS3 with a single space: blank, " " and None are all "no phase".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .config import ProjectRule, VendorRule

ProjectMethod = Literal["override", "project_number"]
VendorMethod = Literal["override", "link", "origin_code", "tax_id", "name"]

VENDOR_NUMBER_PREFIX = "PC"
VENDOR_NUMBER_MAX = 20
_MIN_TAX_DIGITS = 6  # shorter "tax ids" are placeholders, not identifiers


@dataclass(frozen=True)
class ProjectMatch:
    procore_id: int
    wbs1: str | None
    wbs2: str | None = None
    wbs3: str | None = None
    method: ProjectMethod | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.wbs1 is not None and self.problem is None


@dataclass(frozen=True)
class VendorMatch:
    """``deltek_vendor`` None and ``problem`` None means: create the firm (see
    :func:`new_vendor_number`)."""

    procore_id: int
    deltek_vendor: str | None
    client_id: str | None = None
    method: VendorMethod | None = None
    candidates: list[dict[str, str]] = field(default_factory=list)
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.deltek_vendor is not None and self.problem is None

    @property
    def needs_firm(self) -> bool:
        return self.deltek_vendor is None and self.problem is None


# --------------------------------------------------------------------------- helpers


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _blank(value: Any) -> str:
    """Deltek blank (None, "", " ") -> ""; anything else trimmed text."""
    return "" if value is None else str(value).strip()


def _fold(value: Any) -> str:
    return _blank(value).casefold()


def _active(row: Mapping[str, Any]) -> bool:
    return _blank(row.get("Status")).upper() in ("", "A")


def _digits(value: Any) -> str:
    return re.sub(r"\D", "", "" if value is None else str(value))


def _tax_key(value: Any) -> str:
    """Digits of a tax id, or "" when it is too short or all zeros to identify anyone."""
    digits = _digits(value)
    if len(digits) < _MIN_TAX_DIGITS or not digits.strip("0"):
        return ""
    return digits


_LEGAL_SUFFIXES = frozenset(
    {
        "inc", "incorporated", "llc", "llp", "lp", "ltd", "limited", "co", "company",
        "corp", "corporation", "plc", "pc", "pllc", "pa", "gmbh",
    }
)  # fmt: skip


def normalize_name(name: Any) -> str:
    """Firm name reduced for comparison: accents, case, punctuation and legal suffixes
    (Inc, LLC, Co, Corp, Ltd, ...) do not count; "&" equals "and"; a leading "The" is dropped."""
    text = unicodedata.normalize("NFKD", "" if name is None else str(name))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = text.replace("&", " and ")
    text = re.sub(r"[.'\u2019`]", "", text)  # L.L.C. -> llc, O'Brien -> obrien
    tokens = re.sub(r"[\W_]+", " ", text).split()
    if len(tokens) > 1 and tokens[0] == "the":
        tokens = tokens[1:]
    while len(tokens) > 1 and tokens[-1] in _LEGAL_SUFFIXES:
        tokens.pop()
    return " ".join(tokens)


_LEGACY_TAX_KEYS = ("tax_id", "federal_tax_id", "tin")


def vendor_tax_id(vendor: Any) -> Any:
    """A Procore vendor's tax id: ``business_id``, else a legacy key of older payloads."""
    for key in ("business_id", *_LEGACY_TAX_KEYS):
        value = _get(vendor, key)
        if _blank(value):
            return value
    return None


def _vendor_name(vendor: Any) -> str:
    name = _get(vendor, "name")
    if not _blank(name):
        company = _get(vendor, "company")
        name = company if isinstance(company, str) else name
    return _blank(name)


def _candidate(firm: Mapping[str, Any]) -> dict[str, str]:
    return {
        "vendor": _blank(firm.get("Vendor")),
        "client_id": _blank(firm.get("ClientID")),
        "name": _blank(firm.get("Name")),
    }


# --------------------------------------------------------------------------- projects


def match_projects(
    procore_projects: Iterable[Any],
    deltek_projects: Iterable[Mapping[str, Any]],
    overrides: Iterable[ProjectRule] | None = None,
) -> list[ProjectMatch]:
    """One match per Procore project: an override first, else ``project_number`` == WBS1
    among top-level Deltek projects (WBS2 blank)."""
    rows: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    for row in deltek_projects:
        key = (_fold(row.get("WBS1")), _fold(row.get("WBS2")), _fold(row.get("WBS3")))
        rows.setdefault(key, row)
    by_id = {rule.procore_project_id: rule for rule in overrides or ()}

    out = []
    for project in procore_projects:
        pid = int(_get(project, "id"))
        rule = by_id.get(pid)
        if rule is not None:
            out.append(_override_project(pid, rule, rows))
            continue
        number = _blank(_get(project, "project_number"))
        if not number:
            out.append(
                ProjectMatch(
                    pid,
                    None,
                    problem="Procore project has no project number; "
                    "set it to the Deltek WBS1 or add a projects override",
                )
            )
            continue
        row = rows.get((number.casefold(), "", ""))
        if row is None:
            out.append(ProjectMatch(pid, None, problem=f"no Deltek project with WBS1 = {number}"))
            continue
        wbs1 = _blank(row.get("WBS1"))
        problem = None if _active(row) else f"Deltek project {wbs1} is inactive"
        out.append(ProjectMatch(pid, wbs1, method="project_number", problem=problem))
    return out


def _override_project(
    pid: int, rule: ProjectRule, rows: Mapping[tuple[str, str, str], Mapping[str, Any]]
) -> ProjectMatch:
    levels = [rule.wbs1, rule.wbs2 or "", rule.wbs3 or ""]
    label = " / ".join(v for v in levels if v)
    problem = None
    # Every level down to the one named must exist and be active.
    for depth in range(1, 4):
        if depth > 1 and not levels[depth - 1]:
            break
        key = tuple(v.casefold() for v in levels[:depth]) + ("",) * (3 - depth)
        row = rows.get(key)  # type: ignore[arg-type]
        name = " / ".join(levels[:depth])
        if row is None:
            problem = f"override: no Deltek project {label}"
            break
        if not _active(row):
            problem = f"Deltek project {name} is inactive"
            break
    return ProjectMatch(pid, rule.wbs1, rule.wbs2, rule.wbs3, method="override", problem=problem)


# --------------------------------------------------------------------------- vendors


def new_vendor_number(procore_vendor: Any) -> str:
    """Vendor number for a firm this connector creates: derived from the Procore id only,
    so the firm is found again after a crash between creating it and recording the link."""
    vid = _get(procore_vendor, "id") if not isinstance(procore_vendor, int) else procore_vendor
    number = f"{VENDOR_NUMBER_PREFIX}{int(vid)}"
    if len(number) > VENDOR_NUMBER_MAX:
        raise ValueError(f"Procore vendor id {vid} is too long for a Deltek vendor number")
    return number


def vendor_problem(procore_vendor: Any) -> str | None:
    """Why a Deltek firm cannot be created for this vendor, or None."""
    if not _vendor_name(procore_vendor):
        vid = _get(procore_vendor, "id")
        return f"Procore vendor {vid} has no name; add one in the Procore Company Directory"
    return None


class _FirmIndex:
    """Deltek firms indexed once per matching call."""

    def __init__(self, firms: Iterable[Mapping[str, Any]]):
        self.by_vendor: dict[str, Mapping[str, Any]] = {}
        self.by_client: dict[str, Mapping[str, Any]] = {}
        self.by_tax: dict[str, list[Mapping[str, Any]]] = {}
        self.by_name: dict[str, list[Mapping[str, Any]]] = {}
        for firm in firms:
            vendor = _fold(firm.get("Vendor"))
            if vendor:
                self.by_vendor.setdefault(vendor, firm)
            client = _fold(firm.get("ClientID"))
            if client:
                self.by_client.setdefault(client, firm)
            tax = _tax_key(firm.get("FedID"))
            if tax:
                self.by_tax.setdefault(tax, []).append(firm)
            if _is_vendor(firm):
                name = normalize_name(firm.get("Name"))
                if name:
                    self.by_name.setdefault(name, []).append(firm)


def _is_vendor(firm: Mapping[str, Any]) -> bool:
    return _blank(firm.get("VendorInd")).upper() == "Y"


def _firm_problem(firm: Mapping[str, Any]) -> str | None:
    label = _blank(firm.get("Vendor")) or _blank(firm.get("Name"))
    if not _is_vendor(firm):
        return (
            f"Deltek firm {label} is not marked as a vendor; tick Vendor on the firm in "
            "Deltek or add a vendors override"
        )
    if not _active(firm):
        return f"Deltek vendor {label} is inactive"
    if not _blank(firm.get("Vendor")):
        return f"Deltek firm {label} has no vendor number"
    return None


def _found(pid: int, firm: Mapping[str, Any], method: VendorMethod) -> VendorMatch:
    return VendorMatch(
        pid,
        _blank(firm.get("Vendor")) or None,
        _blank(firm.get("ClientID")) or None,
        method=method,
        problem=_firm_problem(firm),
    )


def match_vendors(
    procore_vendors: Iterable[Any],
    deltek_firms: Iterable[Mapping[str, Any]],
    overrides: Iterable[VendorRule] | None = None,
    links: Mapping[int, str] | None = None,
) -> list[VendorMatch]:
    """One match per Procore vendor. Order: mapping-file override, stored link (Procore id ->
    Deltek vendor number, or a firm this connector created, see :func:`new_vendor_number`),
    ``origin_code`` == Vendor number, tax id (``business_id``) == FedID (digits only), then
    normalised name unique among vendor firms (``VendorInd`` = Y). A tax-id match keeps the
    method name ``"tax_id"``."""
    index = _FirmIndex(deltek_firms)
    by_id = {rule.procore_vendor_id: rule.deltek_vendor for rule in overrides or ()}
    links = links or {}
    return [_match_vendor(v, index, by_id, links) for v in procore_vendors]


def _match_vendor(
    vendor: Any, index: _FirmIndex, overrides: Mapping[int, str], links: Mapping[int, str]
) -> VendorMatch:
    pid = int(_get(vendor, "id"))

    if pid in overrides:
        number = overrides[pid]
        firm = index.by_vendor.get(number.casefold())
        if firm is None:
            return VendorMatch(
                pid,
                number,
                method="override",
                problem=f"override: no Deltek firm with vendor number {number}",
            )
        return _found(pid, firm, "override")

    linked = links.get(pid)
    if linked:
        firm = index.by_vendor.get(_fold(linked)) or index.by_client.get(_fold(linked))
        if firm is not None:
            return _found(pid, firm, "link")
    own = index.by_vendor.get(new_vendor_number(pid).casefold())
    if own is not None:
        return _found(pid, own, "link")

    origin = _fold(_get(vendor, "origin_code"))
    if origin and origin in index.by_vendor:
        return _found(pid, index.by_vendor[origin], "origin_code")

    tax = _tax_key(vendor_tax_id(vendor))
    tax_hits = index.by_tax.get(tax, []) if tax else []
    vendor_tax_hits = [f for f in tax_hits if _is_vendor(f)]
    if len(vendor_tax_hits) == 1:
        return _found(pid, vendor_tax_hits[0], "tax_id")
    if len(vendor_tax_hits) > 1:
        return VendorMatch(
            pid,
            None,
            candidates=[_candidate(f) for f in vendor_tax_hits],
            problem=f"{len(vendor_tax_hits)} Deltek vendor firms have this vendor's tax id; "
            "add a vendors override to pick one",
        )

    name = normalize_name(_vendor_name(vendor))
    name_hits = index.by_name.get(name, []) if name else []
    if len(name_hits) == 1:
        return _found(pid, name_hits[0], "name")
    if len(name_hits) > 1:
        return VendorMatch(
            pid,
            None,
            candidates=[_candidate(f) for f in name_hits],
            problem=f"{len(name_hits)} Deltek firms named like {_vendor_name(vendor)!r}; "
            "add a vendors override to pick one",
        )

    if tax_hits:  # only non-vendor firms share the tax id: creating one would duplicate it
        return VendorMatch(
            pid,
            None,
            candidates=[_candidate(f) for f in tax_hits],
            problem=_firm_problem(tax_hits[0]),
        )
    if linked:
        return VendorMatch(
            pid,
            None,
            problem=f"stored link to Deltek vendor {linked} points to no firm; "
            "restore the firm or add a vendors override",
        )
    return VendorMatch(pid, None, problem=vendor_problem(vendor))
