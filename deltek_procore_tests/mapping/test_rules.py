from __future__ import annotations

import fnmatch
import random
import re
import time

from deltek_procore.mapping import (
    GlRule,
    compile_rules,
    parse_mapping,
    resolve_account,
    unmapped_pairs,
)
from deltek_procore.mapping.rules import GlRuleSet, glob_to_regex


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
