from __future__ import annotations

import fnmatch
import itertools
import random
import re
import time

import pytest

from deltek_procore.mapping import (
    GlRule,
    compile_rules,
    parse_mapping,
    resolve_account,
    unmapped_pairs,
)
from deltek_procore.mapping.config import parse_mapping_located
from deltek_procore.mapping.rules import (
    GlRuleSet,
    ShadowedRule,
    catch_all_rules,
    gl_rule_warnings,
    glob_covers,
    glob_to_regex,
    shadowed_rules,
)


def rules(*triples: tuple[str, str, str]) -> list[GlRule]:
    return [GlRule(cost_code=c, cost_type=t, account=a) for c, t, a in triples]


RULES = rules(
    ("03-3*", "S", "5110"),
    ("03-*", "S", "5100"),
    ("03-*", "[LM]", "5120"),
    ("16-???", "*", "5300"),
    ("*", "O", "5800"),
)


def test_first_match_wins_and_reports_the_rule():
    m = resolve_account(RULES, "03-300", "S")
    assert (m.account, m.rule_index) == ("5110", 0)
    m = resolve_account(RULES, "03-100", "S")
    assert (m.account, m.rule_index) == ("5100", 1)
    assert m.rule is RULES[1]
    assert m.explain() == "gl_accounts[1] (cost_code '03-*', cost_type 'S') -> account 5100"
    assert resolve_account(RULES, "03-100", "M").account == "5120"
    assert resolve_account(RULES, "03-100", "E") is None
    assert resolve_account(RULES, "16-100", "E").account == "5300"
    assert resolve_account(RULES, "16-1000", "E") is None  # ? is exactly one character
    assert resolve_account(RULES, "99-999", "O").rule_index == 4


def test_matching_is_case_sensitive():
    assert resolve_account(RULES, "03-100", "s") is None
    assert resolve_account(rules(("ab-*", "S", "1")), "AB-1", "S") is None


def test_missing_cost_type_only_matches_star():
    assert resolve_account(RULES, "03-100", None) is None
    catch_all = rules(("03-*", "S", "5100"), ("*", "*", "5900"))
    assert resolve_account(catch_all, "03-100", None).account == "5900"
    assert resolve_account(catch_all, "03-100", "").account == "5900"


def test_regex_metacharacters_in_codes_are_literal():
    r = rules(
        ("01-000.S(C)+", "S", "1"), ("a|b", "S", "2"), ("x[", "S", "4"), ("[!0-4]*", "S", "3")
    )
    assert resolve_account(r, "01-000.S(C)+", "S").account == "1"
    assert resolve_account(r, "01-000xS(C)+", "S") is None
    assert resolve_account(r, "a|b", "S").account == "2"
    assert resolve_account(r, "a", "S").account == "3"  # not rule 1: "|" is literal
    assert resolve_account(r, "5-1", "S").account == "3"
    assert resolve_account(r, "x[", "S").account == "4"


def test_nul_and_newline_in_input():
    r = rules(("0*", "S", "1"), ("*", "*", "9"))
    assert resolve_account(r, "0\x001", "S").account == "1"
    assert resolve_account(r, "1", "S\x00").account == "9"
    assert resolve_account(r, "0\n", "S").account == "1"


def test_glob_translation_agrees_with_fnmatchcase():
    rng = random.Random(7)
    alphabet = "ab-0.*?[]!^\\"
    for _ in range(3000):
        pattern = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6)))
        regex = re.compile(glob_to_regex(pattern), re.DOTALL)
        for _ in range(5):
            text = "".join(rng.choice("ab-0.[]!^\\") for _ in range(rng.randint(0, 5)))
            assert bool(regex.fullmatch(text)) == fnmatch.fnmatchcase(text, pattern), (
                pattern,
                text,
            )


def test_no_rules_means_unmapped():
    assert resolve_account([], "03-100", "S") is None
    assert unmapped_pairs([], [("a", "S")]) == [("a", "S")]


def test_unmapped_pairs_distinct_sorted():
    pairs = [("16-1000", "E"), ("03-100", "E"), ("03-100", "S"), ("03-100", "E"), ("01", None)]
    assert unmapped_pairs(RULES, pairs) == [("01", ""), ("03-100", "E"), ("16-1000", "E")]


def test_compiled_rules_are_cached_per_object_and_accept_mapping_file():
    assert compile_rules(RULES) is compile_rules(RULES)
    other = list(RULES)
    assert compile_rules(other) is not compile_rules(RULES)
    grown = list(RULES)
    first = compile_rules(grown)
    grown.append(GlRule(cost_code="zz", cost_type="Z", account="1"))
    assert compile_rules(grown) is not first  # length change is noticed
    assert resolve_account(grown, "zz", "Z").account == "1"
    mapping = parse_mapping(
        "defaults: {liability_code: AP, bank_code: OPER, commitment_offset_account: '2150'}\n"
        "gl_accounts:\n  - {cost_code: '03-*', cost_type: S, account: '5100'}\n"
    )
    assert resolve_account(mapping, "03-300", "S").account == "5100"
    ruleset = GlRuleSet(RULES)
    assert compile_rules(ruleset) is ruleset


def test_speed_100k_lookups():
    codes = [f"{d:02d}-{s:03d}" for d in range(1, 50) for s in range(0, 1000, 50)]
    types = ["L", "M", "E", "S", "O"]
    rule_list = rules(
        *[(f"{d:02d}-*", t, f"5{d:02d}{i}") for d in range(1, 50, 2) for i, t in enumerate(types)]
    )
    rule_list.append(GlRule(cost_code="*", cost_type="*", account="5999"))
    rng = random.Random(1)
    pairs = [(rng.choice(codes), rng.choice(types)) for _ in range(100_000)]
    distinct = [(f"{rng.randrange(100):02d}-{i}", rng.choice(types)) for i in range(100_000)]

    ruleset = GlRuleSet(rule_list)
    start = time.perf_counter()
    hits = sum(1 for code, ctype in pairs if resolve_account(rule_list, code, ctype) is not None)
    repeated = time.perf_counter() - start
    start = time.perf_counter()
    for code, ctype in distinct:
        ruleset.resolve(code, ctype)
    cold = time.perf_counter() - start
    print(
        f"\n{len(rule_list)} rules: 100k lookups over {len(set(pairs))} pairs {repeated:.3f}s; "
        f"100k distinct pairs {cold:.3f}s"
    )
    assert hits == 100_000  # the catch-all maps everything
    assert resolve_account(rule_list, "02-100", "S").account == "5999"
    assert resolve_account(rule_list, "03-100", "S").account == "5033"


# ------------------------------------------------------------------ rule analysis


@pytest.mark.parametrize(
    ("broad", "narrow"),
    [
        ("*", "03-100"),
        ("*", ""),
        ("**", "*"),
        ("03-*", "03-1*"),
        ("03-*", "03-[0-9]??"),
        ("0[0-9]-*", "03-*"),
        ("0[3]-*", "03-*"),  # a one-character class equals the literal
        ("03-*", "0[3]-*"),
        ("*0", "1*0"),
        ("*-*", "03-1*"),
        ("?*", "03"),
        ("[!x]*", "[a-c]*"),
        ("[LM]", "L"),
        ("[A-Z]", "[L-M]"),
        ("*", "[!a]"),
    ],
)
def test_glob_covers_when_every_string_of_the_narrow_glob_matches(broad, narrow):
    assert glob_covers(broad, narrow)


@pytest.mark.parametrize(
    ("broad", "narrow"),
    [
        ("03-1*", "03-*"),
        ("03-*", "3-*"),
        ("03-?", "03-??"),
        ("?*", ""),  # "" is a missing cost type: only * covers it
        ("?*", "*"),
        ("[LM]", "[LMN]"),
        ("[a-c]", "[!x]"),
        ("S", "s"),  # case-sensitive, as matching is
        ("*0", "*"),
        ("*-*", "03*"),
        ("0[0-8]-*", "0[0-9]-*"),
    ],
)
def test_glob_does_not_cover_when_a_string_escapes(broad, narrow):
    assert not glob_covers(broad, narrow)


def test_glob_covers_agrees_with_brute_force_on_random_globs():
    """Against every string up to 5 characters over the globs' own alphabet plus one more."""
    rng = random.Random(11)
    pieces = ["a", "b", "-", "*", "?", "[ab]", "[!a]", "[a-c]", "0", "*"]
    alphabet = "abc-0z"
    strings = ["".join(p) for n in range(6) for p in itertools.product(alphabet, repeat=n)]
    matched: dict[str, frozenset[str]] = {}

    def language(glob: str) -> frozenset[str]:
        if glob not in matched:
            matched[glob] = frozenset(t for t in strings if fnmatch.fnmatchcase(t, glob))
        return matched[glob]

    for _ in range(1500):
        broad, narrow = ("".join(rng.choices(pieces, k=rng.randint(0, 4))) for _ in range(2))
        assert glob_covers(broad, narrow) == (language(narrow) <= language(broad)), (
            broad,
            narrow,
        )


def test_shadowed_rules_name_the_first_rule_that_covers_them():
    rule_list = rules(
        ("03-*", "*", "5100"),  # 0
        ("03-1*", "S", "5110"),  # 1: covered by 0
        ("16-*", "L", "5300"),  # 2
        ("16-2*", "[LM]", "5310"),  # 3: not covered (M escapes rule 2)
        ("16-2*", "L", "5320"),  # 4: covered by 2 (and 3): the first one is named
        ("*", "E", "5800"),  # 5
    )
    assert shadowed_rules(rule_list) == [ShadowedRule(1, 0), ShadowedRule(4, 2)]
    assert shadowed_rules(RULES) == []


def test_catch_all_rules_include_equivalent_globs():
    assert catch_all_rules(RULES) == []
    assert catch_all_rules(rules(("03-*", "S", "1"), ("*", "*", "9"))) == [1]
    assert catch_all_rules(rules(("**", "*", "9"))) == [0]
    assert catch_all_rules(rules(("*", "?*", "9"))) == []  # a missing cost type escapes it
    assert catch_all_rules(rules(("*", "[!x]", "9"))) == []


MAPPING_WITH_SHADOWS = """\
defaults: {liability_code: AP, bank_code: OPER, commitment_offset_account: "2150"}
gl_accounts:
  - cost_code: "03-*"
    cost_type: "*"
    account: "5100"
  - cost_code: "03-3*"
    cost_type: S
    account: "5110"
  - cost_code: "16-*"
    cost_type: L
    account: "5300"
  - cost_code: "*"
    cost_type: "*"
    account: "5900"
"""


def test_warnings_name_file_line_rule_and_the_fix():
    located = parse_mapping_located(MAPPING_WITH_SHADOWS, "mappings.yaml")
    assert gl_rule_warnings(located) == [
        "mappings.yaml:6: gl_accounts[1] (cost_code '03-3*', cost_type 'S' -> 5110) can never "
        "match: gl_accounts[0] at mappings.yaml:3 (cost_code '03-*', cost_type '*' -> 5100) "
        "comes first and matches every pair it would; move it above gl_accounts[0] or delete it",
        "mappings.yaml:12: gl_accounts[3] (cost_code '*', cost_type '*' -> 5900) is a "
        "catch-all: every cost code x cost type pair no earlier rule maps posts to account "
        "5900, so unmapped pairs are hidden (never listed here, never quarantined); map them "
        "explicitly and remove the catch-all if that is not intended",
    ]


def test_a_clean_rule_list_has_no_warnings():
    text = MAPPING_WITH_SHADOWS.split('  - cost_code: "03-3*"')[0]
    assert gl_rule_warnings(parse_mapping_located(text, "m.yaml")) == []


def test_analysis_of_many_rules_is_fast():
    rule_list = rules(
        *[(f"{d:02d}-{s}*", t, "5100") for d in range(100) for s in range(5) for t in "LMS"]
    )
    start = time.perf_counter()
    assert shadowed_rules(rule_list) == []
    assert time.perf_counter() - start < 10
