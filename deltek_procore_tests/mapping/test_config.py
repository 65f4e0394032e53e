from __future__ import annotations

import textwrap

import pytest

from deltek_procore.mapping import (
    ENV_VAR,
    MappingFileError,
    load_mapping,
    mapping_hash,
    mapping_path,
    parse_mapping,
)

DESIGN_EXAMPLE = """\
defaults:
  liability_code: AP          # Deltek LiabCode on vouchers
  bank_code: OPER             # Deltek BankCode on vouchers
  commitment_offset_account: "2150"   # JE credit side for commitments/change orders
projects:                     # optional overrides; default match project_number = WBS1
  - procore_project_id: 101
    wbs1: "2024001.00"
    wbs2: "CONST"
vendors:                      # optional overrides; default match, else create firm
  - procore_vendor_id: 35
    deltek_vendor: "ACME001"
gl_accounts:                  # first match wins; cost code globs on full_code
  - cost_code: "03-*"
    cost_type: S
    account: "5100"
  - cost_code: "*"
    cost_type: "*"
    account: "5900"
"""

DEFAULTS = """\
defaults:
  liability_code: AP
  bank_code: OPER
  commitment_offset_account: "2150"
"""


def problems(text: str, source: str = "mappings.yaml") -> list[str]:
    with pytest.raises(MappingFileError) as info:
        parse_mapping(textwrap.dedent(text), source)
    return info.value.messages


def test_design_example_parses_with_defaults_filled():
    m = parse_mapping(DESIGN_EXAMPLE)
    assert m.defaults.liability_code == "AP"
    assert m.defaults.voucher_pay_terms == "Next"
    assert m.defaults.batch_size == 50
    assert m.defaults.post_batches is False
    assert m.defaults.late_change_policy == "review"
    assert m.defaults.direct_cost_types == ["invoice"]
    assert m.defaults.retainage_account is None
    assert m.projects[0].procore_project_id == 101
    assert (m.projects[0].wbs1, m.projects[0].wbs2, m.projects[0].wbs3) == (
        "2024001.00",
        "CONST",
        None,
    )
    assert m.vendor_override(35).deltek_vendor == "ACME001"
    assert m.project_override(101).wbs2 == "CONST"
    assert m.project_override(999) is None
    assert [(r.cost_code, r.cost_type, r.account) for r in m.gl_accounts] == [
        ("03-*", "S", "5100"),
        ("*", "*", "5900"),
    ]
    assert m.ignore == []


def test_unquoted_codes_keep_the_text_as_written():
    m = parse_mapping(
        """\
defaults:
  liability_code: 10
  bank_code: OPER
  commitment_offset_account: 2150
  company: 01
projects:
  - procore_project_id: "101"
    wbs1: 2024001.00
    wbs2: 0100
gl_accounts:
  - cost_code: 03-300
    cost_type: S
    account: 05100
  - cost_code: 16-100
    cost_type: L
    account: 5100
"""
    )
    # YAML would read 05100 as octal 2624 and 2024001.00 as the float 2024001.0.
    assert [r.account for r in m.gl_accounts] == ["05100", "5100"]
    assert m.projects[0].wbs1 == "2024001.00"
    assert m.projects[0].wbs2 == "0100"
    assert m.projects[0].procore_project_id == 101
    assert m.defaults.company == "01"
    assert m.defaults.liability_code == "10"
    assert m.defaults.commitment_offset_account == "2150"


def test_every_problem_is_reported_with_file_line_and_field():
    text = DEFAULTS + textwrap.dedent(
        """\
        gl_accounts:
          - cost_code: "03-*"
            cost_type: S
            account: "5100"
          - cost_code: "05-*"
            cost_type: M
            account: "5200"
          - cost_code: "09-*"
            cost_type: L
          - cost_code: "16-*"
            cost_type: "S S"
            account: "5300"
        """
    )
    msgs = problems(text)
    assert "mappings.yaml:12: gl_accounts[2].account: field required" in msgs
    assert "mappings.yaml:15: gl_accounts[3].cost_type: must be a cost type code or a glob" in msgs
    assert len(msgs) == 2


def test_many_kinds_of_problem_at_once():
    text = """\
defaults:
  liability_code: AP
  bank_code:
  commitment_offset_account: "2150"
  batch_size: lots
  late_change_policy: sometimes
  direct_cost_types: [invoice, rent]
  surprise: 1
projects:
  - procore_project_id: -4
    wbs1: "2024001.00"
    wbs3: "T1"
gl_accounts:
  - cost_code: ""
    cost_type: S
    account: "12345678901234"
  - cost_code: "01-*"
    cost_type: S
    account: "5*"
ignore:
  - kind: invoice
    id: 5
"""
    msgs = problems(text, "m.yaml")
    expected = {
        "m.yaml:3: defaults.bank_code: must not be blank",
        "m.yaml:5: defaults.batch_size: must be a whole number",
        "m.yaml:8: defaults.surprise: unknown field",
        "m.yaml:10: projects[0].procore_project_id: must be a positive number",
        "m.yaml:14: gl_accounts[0].cost_code: must be a cost code or a glob",
        "m.yaml:16: gl_accounts[0].account: must be at most 13 characters (Deltek account number)",
        "m.yaml:19: gl_accounts[1].account: must be one Deltek account number, not a glob",
        "m.yaml:21: ignore[0].reason: field required",
    }
    assert expected <= set(msgs), msgs
    assert any(m.startswith("m.yaml:6: defaults.late_change_policy: must be one of:") for m in msgs)
    assert any(
        m.startswith("m.yaml:7: defaults.direct_cost_types[1]: must be one of:") for m in msgs
    )
    assert "m.yaml:12: projects[0].wbs3: needs wbs2 (a task sits under a phase)" in msgs
    assert any(
        m.startswith("m.yaml:21: ignore[0].kind: must be one of: 'requisition'") for m in msgs
    )
    # sorted by line
    lines = [int(m.split(":")[1]) for m in msgs]
    assert lines == sorted(lines)


def test_duplicate_overrides_are_errors_naming_both_lines():
    text = DEFAULTS + textwrap.dedent(
        """\
        projects:
          - procore_project_id: 101
            wbs1: "A"
          - procore_project_id: "101"
            wbs1: "B"
        vendors:
          - procore_vendor_id: 35
            deltek_vendor: X
          - procore_vendor_id: 35
            deltek_vendor: Y
        """
    )
    msgs = problems(text)
    assert (
        "mappings.yaml:8: projects[1].procore_project_id: duplicate of projects[0] (line 6)" in msgs
    )
    assert (
        "mappings.yaml:13: vendors[1].procore_vendor_id: duplicate of vendors[0] (line 11)" in msgs
    )


def test_duplicate_ignore_and_duplicate_yaml_key():
    text = DEFAULTS + textwrap.dedent(
        """\
          bank_code: SECOND
        ignore:
          - {kind: requisition, id: 7, reason: paid by hand}
          - {kind: requisition, id: 7, reason: again}
        """
    )
    msgs = problems(text)
    assert "mappings.yaml:5: defaults.bank_code: duplicate key; each key once" in msgs
    assert "mappings.yaml:8: ignore[1]: duplicate of ignore[0]" in msgs


def test_unreachable_gl_rules_are_reported():
    text = DEFAULTS + textwrap.dedent(
        """\
        gl_accounts:
          - {cost_code: "03-*", cost_type: S, account: "5100"}
          - {cost_code: "03-*", cost_type: S, account: "5101"}
          - {cost_code: "*", cost_type: "*", account: "5900"}
          - {cost_code: "16-*", cost_type: L, account: "5300"}
        """
    )
    msgs = problems(text)
    assert msgs == [
        "mappings.yaml:7: gl_accounts[1]: can never match: gl_accounts[0] (line 6) matches first",
        "mappings.yaml:9: gl_accounts[3]: can never match: gl_accounts[2] (line 8) matches first",
    ]


def test_ignore_rules_and_lookup():
    m = parse_mapping(
        DEFAULTS
        + textwrap.dedent(
            """\
            ignore:
              - kind: direct_cost
                id: 55
                reason: entered in Deltek by hand
              - kind: work_order_contract
                id: 56
                reason: Procore's resource name is accepted too
            """
        )
    )
    assert m.ignored("direct_cost", 55) == "entered in Deltek by hand"
    assert m.ignored("direct_cost", 56) is None
    assert m.ignored("requisition", 55) is None
    assert m.ignore[1].kind == "work_order"
    assert m.ignored("work_order", 56).startswith("Procore's")


def test_yaml_syntax_error_has_a_line():
    msgs = problems("defaults:\n  liability_code: AP\n  bank_code: [OPER\n")
    assert len(msgs) == 1
    assert msgs[0].startswith("mappings.yaml:4: not valid YAML:"), msgs


def test_unquoted_star_gets_a_hint():
    msgs = problems(DEFAULTS + "gl_accounts:\n  - cost_code: 03-1\n    cost_type: *\n")
    assert len(msgs) == 1
    assert msgs[0].startswith("mappings.yaml:7: not valid YAML:")
    assert 'must be quoted: "*"' in msgs[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "mappings.yaml: file is empty; it needs at least a defaults section"),
        ("- a\n- b\n", "mappings.yaml:1: must be a mapping of sections"),
        ("projects: []\n", "mappings.yaml:1: defaults: field required"),
        (DEFAULTS + "gl_accounts: {a: 1}\n", "mappings.yaml:5: gl_accounts: must be a list"),
    ],
)
def test_shape_errors(text, expected):
    assert problems(text) == [expected]


def test_missing_file_names_path_and_env_var(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(MappingFileError) as info:
        load_mapping(missing)
    msg = str(info.value)
    assert str(missing) in msg
    assert ENV_VAR in msg
    assert "not found" in msg


def test_load_from_env_var(tmp_path):
    path = tmp_path / "custom.yaml"
    path.write_text(DESIGN_EXAMPLE, encoding="utf-8")
    env = {ENV_VAR: str(path)}
    assert mapping_path(env) == path
    assert mapping_path({}).name == "mappings.yaml"
    assert load_mapping(env=env).gl_accounts[0].account == "5100"
    path.write_text(DEFAULTS + "gl_accounts:\n  - {cost_code: x, cost_type: S}\n", encoding="utf-8")
    with pytest.raises(MappingFileError) as info:
        load_mapping(env=env)
    assert info.value.messages == [f"{path}:6: gl_accounts[0].account: field required"]


def test_mapping_hash_is_stable_and_sensitive_to_meaning():
    base = parse_mapping(DESIGN_EXAMPLE)
    reformatted = parse_mapping(
        """\
gl_accounts: [{account: "5100", cost_type: S, cost_code: "03-*"},
              {account: "5900", cost_type: "*", cost_code: "*"}]
vendors: [{deltek_vendor: ACME001, procore_vendor_id: 35}]
projects: [{wbs2: CONST, wbs1: "2024001.00", procore_project_id: 101}]
defaults: {commitment_offset_account: 2150, bank_code: OPER, liability_code: AP, batch_size: 50}
"""
    )
    assert mapping_hash(base) == mapping_hash(reformatted)
    assert len(mapping_hash(base)) == 64
    changed = parse_mapping(DESIGN_EXAMPLE.replace('account: "5900"', 'account: "5901"'))
    assert mapping_hash(changed) != mapping_hash(base)
    swapped = parse_mapping(
        DEFAULTS
        + 'gl_accounts:\n  - {cost_code: "03-*", cost_type: S, account: "5900"}\n'
        + '  - {cost_code: "03-3*", cost_type: S, account: "5100"}\n'
    )
    in_order = parse_mapping(
        DEFAULTS
        + 'gl_accounts:\n  - {cost_code: "03-3*", cost_type: S, account: "5100"}\n'
        + '  - {cost_code: "03-*", cost_type: S, account: "5900"}\n'
    )
    assert mapping_hash(swapped) != mapping_hash(in_order)
