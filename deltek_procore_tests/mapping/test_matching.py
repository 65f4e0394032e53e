from __future__ import annotations

from types import SimpleNamespace

import pytest

from deltek_procore.mapping import (
    ProjectRule,
    VendorRule,
    match_projects,
    match_vendors,
    new_vendor_number,
    normalize_name,
    vendor_problem,
)

DELTEK_PROJECTS = [
    {"WBS1": "2024001.00", "WBS2": " ", "WBS3": " ", "Name": "Tower", "Status": "A"},
    {"WBS1": "2024001.00", "WBS2": "CONST", "WBS3": " ", "Name": "Construction", "Status": "A"},
    {"WBS1": "2024001.00", "WBS2": "CONST", "WBS3": "T1", "Name": "Task 1", "Status": "A"},
    {"WBS1": "2024001.00", "WBS2": "OLD", "WBS3": "", "Name": "Old phase", "Status": "I"},
    {"WBS1": "2024002.00", "WBS2": "", "WBS3": None, "Name": "School", "Status": "A"},
    {"WBS1": "2023009.00", "WBS2": " ", "WBS3": " ", "Name": "Closed job", "Status": "I"},
    # a phase only, no top-level row with this WBS1: not a match for project_number
    {"WBS1": "2024005.00", "WBS2": "P1", "WBS3": " ", "Name": "Orphan phase", "Status": "A"},
]


def by_id(matches):
    return {m.procore_id: m for m in matches}


def test_projects_match_by_project_number_and_report_problems():
    procore = [
        {"id": 1, "project_number": " 2024001.00 "},
        SimpleNamespace(id=2, project_number="2024002.00"),  # a model works too
        {"id": 3, "project_number": "2023009.00"},
        {"id": 4, "project_number": "2099001.00"},
        {"id": 5, "project_number": None},
        {"id": 6, "project_number": "  "},
        {"id": 7, "project_number": "2024005.00"},
    ]
    got = by_id(match_projects(procore, DELTEK_PROJECTS))
    assert list(got) == [1, 2, 3, 4, 5, 6, 7]
    assert (got[1].wbs1, got[1].wbs2, got[1].method, got[1].problem) == (
        "2024001.00",
        None,
        "project_number",
        None,
    )
    assert got[1].ok
    assert got[2].wbs1 == "2024002.00" and got[2].ok
    assert got[3].problem == "Deltek project 2023009.00 is inactive"
    assert got[3].wbs1 == "2023009.00" and not got[3].ok
    assert got[4].problem == "no Deltek project with WBS1 = 2099001.00"
    assert got[4].wbs1 is None and got[4].method is None
    assert got[5].problem.startswith("Procore project has no project number")
    assert got[6].problem.startswith("Procore project has no project number")
    assert got[7].problem == "no Deltek project with WBS1 = 2024005.00"


def test_project_number_compare_ignores_case_and_returns_deltek_spelling():
    got = match_projects([{"id": 1, "project_number": "ab-1"}], [{"WBS1": "AB-1", "Status": "A"}])
    assert got[0].wbs1 == "AB-1" and got[0].ok


def test_project_overrides_win_and_are_checked_against_deltek():
    procore = [{"id": i, "project_number": "2024002.00"} for i in range(1, 7)]
    overrides = [
        ProjectRule(procore_project_id=1, wbs1="2024001.00", wbs2="CONST"),
        ProjectRule(procore_project_id=2, wbs1="2024001.00", wbs2="CONST", wbs3="T1"),
        ProjectRule(procore_project_id=3, wbs1="2024001.00", wbs2="NOPE"),
        ProjectRule(procore_project_id=4, wbs1="2024001.00", wbs2="OLD"),
        ProjectRule(procore_project_id=5, wbs1="2023009.00"),
    ]
    got = by_id(match_projects(procore, DELTEK_PROJECTS, overrides))
    assert (got[1].wbs1, got[1].wbs2, got[1].wbs3, got[1].method) == (
        "2024001.00",
        "CONST",
        None,
        "override",
    )
    assert got[1].ok
    assert (got[2].wbs2, got[2].wbs3) == ("CONST", "T1") and got[2].ok
    assert got[3].problem == "override: no Deltek project 2024001.00 / NOPE"
    assert got[4].problem == "Deltek project 2024001.00 / OLD is inactive"
    assert got[5].problem == "Deltek project 2023009.00 is inactive"
    assert got[6].method == "project_number" and got[6].wbs1 == "2024002.00"


FIRMS = [
    {"ClientID": "c1", "Vendor": "ACME001", "Name": "Acme Concrete, Inc.", "VendorInd": "Y",
     "Status": "A", "FedID": "12-3456789"},
    {"ClientID": "c2", "Vendor": "BOLT", "Name": "Bolt & Nut Supply LLC", "VendorInd": "Y",
     "Status": "A", "FedID": ""},
    {"ClientID": "c3", "Vendor": "SPARK1", "Name": "Spark Electric Co", "VendorInd": "Y",
     "Status": "A", "FedID": None},
    {"ClientID": "c4", "Vendor": "SPARK2", "Name": "Spark Electric Corp.", "VendorInd": "Y",
     "Status": "A", "FedID": None},
    {"ClientID": "c5", "Vendor": "", "Name": "Owner Holdings", "VendorInd": "N",
     "Status": "A", "FedID": "98-7654321"},
    {"ClientID": "c6", "Vendor": "OLDCO", "Name": "Old Co", "VendorInd": "Y",
     "Status": "I", "FedID": "55-5555555"},
    {"ClientID": "c7", "Vendor": "PC700", "Name": "Created by us", "VendorInd": "Y",
     "Status": "A"},
    {"ClientID": "c8", "Vendor": "CAFE", "Name": "Café Tiles", "VendorInd": "Y",
     "Status": "A", "FedID": "000000000"},
    {"ClientID": "c9", "Vendor": "CAFE2", "Name": "Cafe Tiles Ltd", "VendorInd": "N",
     "Status": "A", "FedID": "000000000"},
]  # fmt: skip


def test_vendor_matching_order_and_methods():
    procore = [
        {"id": 10, "name": "Whatever", "origin_code": "acme001"},  # origin code, case-insensitive
        {"id": 11, "name": "Other name", "business_id": "123456789"},  # tax id digits only
        {"id": 12, "name": "BOLT AND NUT SUPPLY"},  # name, & == and, suffix dropped
        {"id": 13, "name": "Spark Electric"},  # ambiguous name
        {"id": 14, "name": "Brand New Subs"},  # nothing: create
        {"id": 700, "name": "Created by us again"},  # our own vendor number: crash recovery
        {"id": 15, "name": "Anything", "business_id": "98-7654321"},  # of a non-vendor firm
        {"id": 16, "name": "Old Co"},  # matches an inactive vendor
        {"id": 17, "name": None, "company": "Cafe Tiles"},  # accents, name from "company"
        SimpleNamespace(id=18, name="", origin_code=None, business_id=None),  # no name
    ]
    got = by_id(match_vendors(procore, FIRMS))
    assert (got[10].deltek_vendor, got[10].client_id, got[10].method) == (
        "ACME001",
        "c1",
        "origin_code",
    )
    assert got[10].ok and not got[10].needs_firm
    assert (got[11].deltek_vendor, got[11].method) == ("ACME001", "tax_id")
    assert (got[12].deltek_vendor, got[12].method) == ("BOLT", "name")
    assert got[13].deltek_vendor is None and got[13].method is None
    assert got[13].problem.startswith("2 Deltek firms named like 'Spark Electric'")
    assert [c["vendor"] for c in got[13].candidates] == ["SPARK1", "SPARK2"]
    assert got[14].needs_firm and got[14].problem is None and got[14].candidates == []
    assert (got[700].deltek_vendor, got[700].method) == ("PC700", "link")
    assert got[15].deltek_vendor is None
    assert "not marked as a vendor" in got[15].problem
    assert [c["client_id"] for c in got[15].candidates] == ["c5"]
    assert got[16].deltek_vendor == "OLDCO" and got[16].problem == "Deltek vendor OLDCO is inactive"
    assert not got[16].ok
    assert (got[17].deltek_vendor, got[17].method) == ("CAFE", "name")  # all-zero FedID ignored
    assert got[18].problem == (
        "Procore vendor 18 has no name; add one in the Procore Company Directory"
    )


def test_override_and_link_come_first():
    procore = [
        {"id": 20, "name": "Acme Concrete", "origin_code": "BOLT"},
        {"id": 21, "name": "Acme Concrete"},
        {"id": 22, "name": "Acme Concrete"},
        {"id": 23, "name": "Acme Concrete"},
        {"id": 24, "name": "Acme Concrete"},
    ]
    overrides = [
        VendorRule(procore_vendor_id=20, deltek_vendor="spark1"),
        VendorRule(procore_vendor_id=23, deltek_vendor="NOSUCH"),
    ]
    links = {21: "BOLT", 22: "c3", 24: "GONE"}
    got = by_id(match_vendors(procore, FIRMS, overrides, links))
    assert (got[20].deltek_vendor, got[20].client_id, got[20].method) == (
        "SPARK1",
        "c3",
        "override",
    )
    assert (got[21].deltek_vendor, got[21].method) == ("BOLT", "link")
    assert (got[22].deltek_vendor, got[22].method) == ("SPARK1", "link")  # link by ClientID
    assert got[23].method == "override" and got[23].deltek_vendor == "NOSUCH"
    assert got[23].problem == "override: no Deltek firm with vendor number NOSUCH"
    # a stale link does not stop other methods
    assert (got[24].deltek_vendor, got[24].method) == ("ACME001", "name")


def test_stale_link_without_other_match_blocks_creation():
    got = match_vendors([{"id": 30, "name": "Zed"}], FIRMS, links={30: "GONE"})
    assert got[0].problem.startswith("stored link to Deltek vendor GONE points to no firm")
    assert not got[0].needs_firm


def test_duplicate_tax_ids_among_vendors_are_ambiguous():
    firms = [
        {"ClientID": "a", "Vendor": "A", "Name": "A", "VendorInd": "Y", "Status": "A", "FedID": "111111111"},
        {"ClientID": "b", "Vendor": "B", "Name": "B", "VendorInd": "Y", "Status": "A", "FedID": "11-1111111"},
    ]  # fmt: skip
    got = match_vendors([{"id": 1, "name": "A", "business_id": "111-11-1111"}], firms)
    assert got[0].deltek_vendor is None
    assert got[0].problem.startswith("2 Deltek vendor firms have this vendor's tax id")
    assert {c["vendor"] for c in got[0].candidates} == {"A", "B"}


def test_vendor_matched_by_business_id_only():
    # Procore's tax id field is business_id; the name and codes share nothing with the firm.
    firm = {"ClientID": "z1", "Vendor": "ZED01", "Name": "Zed Holdings LLC", "VendorInd": "Y",
            "Status": "A", "FedID": "12-3456780"}  # fmt: skip
    vendor = {"id": 40, "name": "Nothing Alike Inc", "origin_code": None,
              "business_id": " 123456780 "}  # fmt: skip
    (match,) = match_vendors([vendor], [firm])
    assert (match.deltek_vendor, match.client_id, match.method) == ("ZED01", "z1", "tax_id")
    assert match.ok
    (no_id,) = match_vendors([{**vendor, "business_id": None}], [firm])
    assert no_id.needs_firm  # without the tax id nothing matches: a firm would be created


def test_legacy_tax_id_keys_are_only_a_fallback():
    firms = [
        {"ClientID": "a", "Vendor": "A", "Name": "A", "VendorInd": "Y", "Status": "A", "FedID": "111111111"},
        {"ClientID": "b", "Vendor": "B", "Name": "B", "VendorInd": "Y", "Status": "A", "FedID": "222222222"},
    ]  # fmt: skip
    legacy = match_vendors([{"id": 1, "name": "X", "tax_id": "111-11-1111"}], firms)
    assert legacy[0].deltek_vendor == "A"
    both = match_vendors(
        [{"id": 2, "name": "X", "business_id": "222222222", "tax_id": "111111111"}], firms
    )
    assert both[0].deltek_vendor == "B"  # business_id first


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Acme Concrete, Inc.", "ACME CONCRETE"),
        ("Acme Concrete L.L.C.", "acme concrete llc"),
        ("The Smith Co.", "Smith"),
        ("O'Brien & Sons", "OBrien and Sons"),
        ("Crème Brûlée Corp", "creme brulee"),
        ("Acme Co Inc", "Acme"),
    ],
)
def test_normalize_name_equal(a, b):
    assert normalize_name(a) == normalize_name(b)


def test_normalize_name_keeps_distinctions():
    assert normalize_name("Smith-Jones") != normalize_name("Smith")
    assert normalize_name("Company Inc") == "company"  # never reduced to nothing
    assert normalize_name("Inc") == "inc"
    assert normalize_name(None) == ""
    assert normalize_name("...") == ""


def test_new_vendor_number_is_deterministic_and_short():
    assert new_vendor_number({"id": 5181441}) == "PC5181441"
    assert new_vendor_number(SimpleNamespace(id=7)) == "PC7"
    assert new_vendor_number(7) == "PC7"
    assert len(new_vendor_number({"id": 10**17})) <= 20
    with pytest.raises(ValueError):
        new_vendor_number({"id": 10**19})


def test_vendor_problem():
    assert vendor_problem({"id": 123, "name": "  "}) == (
        "Procore vendor 123 has no name; add one in the Procore Company Directory"
    )
    assert vendor_problem({"id": 123}) is not None
    assert vendor_problem({"id": 123, "name": "", "company": "From company"}) is None
    assert vendor_problem({"id": 123, "name": "Real"}) is None


def test_sandbox_data_matches_as_seeded():
    """The seeded world (sandbox/seed.py) matches the way its summary says it was built."""
    from deltek_procore.mapping import parse_mapping, unmapped_pairs
    from deltek_procore.sandbox import seed

    data = seed.build(records=300)
    mapping = parse_mapping(data.mappings_yaml, "sandbox.yaml")
    summary = data.summary

    projects = match_projects(data.procore["projects"], data.deltek["projects"], mapping.projects)
    numbers = {p["id"]: p["project_number"] for p in data.procore["projects"]}
    bad = [m for m in projects if not m.ok]
    assert [numbers[m.procore_id] for m in bad] == [summary["unmatched_project"]]
    assert any(m.method == "override" and m.wbs2 == "CONST" for m in projects)

    vendors = match_vendors(data.procore["vendors"], data.deltek["firms"], mapping.vendors)
    names = {v["id"]: v["name"] for v in data.procore["vendors"]}
    by_method: dict[str | None, set[str]] = {}
    for m in vendors:
        by_method.setdefault(m.method, set()).add(names[m.procore_id])
    expected = summary["vendor_matches"]
    assert by_method["origin_code"] == set(expected["code"])
    assert by_method["tax_id"] == set(expected["tax"])
    assert by_method["name"] == set(expected["name"])
    assert by_method["override"] == set(expected["override"])
    assert by_method[None] == set(expected["none"])
    assert [m.problem for m in vendors if m.problem] == [
        vendor_problem(v) for v in data.procore["vendors"] if not (v.get("name") or "").strip()
    ]

    codes = {c["id"]: c["full_code"] for c in data.procore["cost_codes"]}
    types = [t["code"] for t in data.procore["line_item_types"]]
    used = {(code, t) for code in codes.values() for t in types}
    assert tuple(summary["unmapped_pair"]) in unmapped_pairs(mapping, used)
