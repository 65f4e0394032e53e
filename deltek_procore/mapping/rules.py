"""GL account resolution: cost code x cost type -> Deltek account, first matching rule wins.

Globs follow ``fnmatch``: ``*`` any run of characters, ``?`` one character, ``[abc]`` /
``[!abc]`` a character class; everything else is literal. Matching is **case-sensitive** on
both the cost code (``full_code``) and the cost type code: they are identifiers in Procore, and
a rule written in the wrong case should show up as an unmapped pair in ``mappings check``
rather than quietly matching something it was not meant for. A missing cost type (Procore
requisition items may have none) is matched as the empty string, so only ``*`` matches it.

Speed: rules are indexed by the literal prefix of their cost-code glob, so a lookup only tries
the few rules that can match; results are memoised per distinct pair, and compiled rule sets
are cached per rules object (about 1 microsecond per repeated lookup).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from .config import GlRule, LocatedMapping, MappingFile

_MEMO_LIMIT = 200_000


@dataclass(frozen=True, slots=True)
class GlMatch:
    """The account a pair resolved to and the rule (index into ``gl_accounts``) that did it."""

    account: str
    rule_index: int
    rule: GlRule

    def explain(self) -> str:
        r = self.rule
        return (
            f"gl_accounts[{self.rule_index}] (cost_code {r.cost_code!r}, "
            f"cost_type {r.cost_type!r}) -> account {self.account}"
        )


_WRAPPED = re.compile(r"\(\?s:(.*)\)\\[zZ]", re.DOTALL)


def _class_regex(glob_class: str) -> str:
    """A ``[...]`` class exactly as fnmatch reads it (ranges, ``!``, empty and reversed
    ranges); fnmatch wraps one class in ``(?s:...)\\Z`` without any group, which we strip."""
    wrapped = _WRAPPED.fullmatch(fnmatch.translate(glob_class))
    if wrapped is None:  # pragma: no cover - a future fnmatch output format
        raise RuntimeError(f"unexpected fnmatch translation of {glob_class!r}")
    return wrapped.group(1)


def _glob_tokens(pattern: str) -> list[str]:
    """One regex fragment per glob token: ``.*`` for a star (runs collapsed), ``.`` for ``?``,
    a character class, or one escaped literal character."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if not out or out[-1] != ".*":  # collapse ** to one .*
                out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append(re.escape(ch))  # unclosed: a literal "["
                continue
            out.append(_class_regex(pattern[i - 1 : j + 1]))
            i = j + 1
        else:
            out.append(re.escape(ch))
    return out


def glob_to_regex(pattern: str) -> str:
    """Translate an fnmatch-style glob to a regex fragment without anchors or groups."""
    return "".join(_glob_tokens(pattern))


def _literal_prefix(pattern: str) -> str:
    """The part of a glob before its first wildcard: a code can only match if it starts so."""
    for pos, ch in enumerate(pattern):
        if ch in "*?[":
            return pattern[:pos]
    return pattern


class GlRuleSet:
    """Compiled, memoised form of an ordered list of GL rules.

    Lookup narrows the rules to those whose literal cost-code prefix (text before the first
    wildcard) starts the code and whose cost-type glob matches the type, then tries only those
    in file order; results are memoised per distinct pair.
    """

    __slots__ = (
        "rules",
        "_code_res",
        "_type_res",
        "_by_prefix",
        "_prefix_lengths",
        "_type_ok",
        "_memo",
        "_matches",
    )

    def __init__(self, rules: Sequence[GlRule]):
        self.rules: tuple[GlRule, ...] = tuple(rules)
        self._code_res = [re.compile(glob_to_regex(r.cost_code), re.DOTALL) for r in self.rules]
        self._type_res = [re.compile(glob_to_regex(r.cost_type), re.DOTALL) for r in self.rules]
        self._by_prefix: dict[str, list[int]] = {}
        for index, rule in enumerate(self.rules):
            self._by_prefix.setdefault(_literal_prefix(rule.cost_code), []).append(index)
        self._prefix_lengths = sorted({len(p) for p in self._by_prefix})
        self._type_ok: dict[str, frozenset[int]] = {}
        self._memo: dict[tuple[str, str], GlMatch | None] = {}
        self._matches = [GlMatch(r.account, i, r) for i, r in enumerate(self.rules)]

    def resolve(self, full_code: str, cost_type_code: str | None) -> GlMatch | None:
        key = (full_code, cost_type_code or "")
        try:
            return self._memo[key]
        except KeyError:
            pass
        result = self._resolve(*key)
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[key] = result
        return result

    def _types_matching(self, ctype: str) -> frozenset[int]:
        ok = self._type_ok.get(ctype)
        if ok is None:
            ok = frozenset(i for i, rx in enumerate(self._type_res) if rx.fullmatch(ctype))
            if len(self._type_ok) >= _MEMO_LIMIT:
                self._type_ok.clear()
            self._type_ok[ctype] = ok
        return ok

    def _resolve(self, code: str, ctype: str) -> GlMatch | None:
        type_ok = self._types_matching(ctype)
        if not type_ok:
            return None
        candidates: list[int] = []
        for length in self._prefix_lengths:
            if length > len(code):
                break
            found = self._by_prefix.get(code[:length])
            if found:
                candidates.extend(found)
        candidates.sort()
        code_res = self._code_res
        for index in candidates:
            if index in type_ok and code_res[index].fullmatch(code):
                return self._matches[index]
        return None


RulesLike = GlRuleSet | MappingFile | Sequence[GlRule]

_COMPILED: dict[int, tuple[object, Sequence[GlRule], int, GlRuleSet]] = {}
_COMPILED_LIMIT = 32


def compile_rules(rules: RulesLike) -> GlRuleSet:
    """A compiled rule set, cached per rules object (a list that grows or shrinks is noticed;
    do not edit rules in place after using them)."""
    if type(rules) is GlRuleSet:
        return rules
    cached = _COMPILED.get(id(rules))
    if cached is not None and cached[0] is rules and len(cached[1]) == cached[2]:
        return cached[3]
    seq = rules.gl_accounts if isinstance(rules, MappingFile) else rules
    compiled = GlRuleSet(seq)  # type: ignore[arg-type]
    if len(_COMPILED) >= _COMPILED_LIMIT:
        _COMPILED.pop(next(iter(_COMPILED)))
    _COMPILED[id(rules)] = (rules, seq, len(seq), compiled)  # holds rules: its id stays unique
    return compiled


def resolve_account(rules: RulesLike, full_code: str, cost_type_code: str | None) -> GlMatch | None:
    """The first rule matching the cost code and cost type, or None (unmapped)."""
    return compile_rules(rules).resolve(full_code, cost_type_code)


def unmapped_pairs(
    rules: RulesLike, pairs: Iterable[tuple[str, str | None]]
) -> list[tuple[str, str]]:
    """Distinct (cost code, cost type) pairs no rule maps, sorted; a missing type is ""."""
    ruleset = compile_rules(rules)
    missing = {(code, ctype or "") for code, ctype in pairs if ruleset.resolve(code, ctype) is None}
    return sorted(missing)


# --------------------------------------------------------------------------- rule analysis
#
# `mappings check` warns about rules that cannot do what their author meant. A rule is
# shadowed when one earlier rule matches every pair it matches (first match wins, so it can
# never be used); a catch-all rule matches every pair, so no pair is ever unmapped and a
# new cost code posts to its account instead of being quarantined and listed.

_COVER_STATE_LIMIT = 10_000  # glob pairs needing more product states are "not proven"


@dataclass(frozen=True, slots=True)
class ShadowedRule:
    """``gl_accounts[index]`` can never match: ``gl_accounts[by]`` matches all it would."""

    index: int
    by: int


class _Glob:
    """A glob as a tiny NFA: state i = tokens[:i] matched; a star token loops on any char."""

    __slots__ = ("stars", "tests", "end", "chars")

    def __init__(self, pattern: str):
        tokens = _glob_tokens(pattern)
        self.stars = [t == ".*" for t in tokens]
        self.tests = [None if t == ".*" else re.compile(t, re.DOTALL).fullmatch for t in tokens]
        self.end = len(tokens)
        self.chars = frozenset(pattern)  # every literal, class member and range end

    def closure(self, states: Iterable[int]) -> frozenset[int]:
        out = set(states)
        todo = list(out)
        while todo:
            i = todo.pop()
            if i < self.end and self.stars[i] and i + 1 not in out:
                out.add(i + 1)  # a star may match nothing
                todo.append(i + 1)
        return frozenset(out)

    def step(self, states: frozenset[int], ch: str) -> frozenset[int]:
        moved = set()
        for i in states:
            if i >= self.end:
                continue
            test = self.tests[i]
            if test is None:
                moved.add(i)
            elif test(ch):
                moved.add(i + 1)
        return self.closure(moved)


def _representatives(*globs: _Glob) -> list[str]:
    """One character per class of characters no glob can tell apart. Every token's set is a
    union of ranges whose ends appear in the pattern text, so the characters of the patterns,
    each one's successor and chr(0) meet every such class."""
    codes = {0}
    for glob in globs:
        for ch in glob.chars:
            codes.add(ord(ch))
            if ord(ch) < 0x10FFFF:
                codes.add(ord(ch) + 1)
    return [chr(c) for c in sorted(codes) if not 0xD800 <= c <= 0xDFFF]


@lru_cache(maxsize=4096)
def glob_covers(broad: str, narrow: str) -> bool:
    """True when every string glob ``narrow`` matches is also matched by glob ``broad``
    (same semantics as rule matching: fnmatch, case-sensitive). False when it is not, or
    when proving it would take too long (then no warning is better than a wrong one)."""
    if broad == narrow or (broad and not broad.strip("*")):
        return True  # the same glob, or only stars (matches everything)
    b_prefix, n_prefix = _literal_prefix(broad), _literal_prefix(narrow)
    if not (b_prefix.startswith(n_prefix) or n_prefix.startswith(b_prefix)):
        return False  # they disagree on a literal character every string must have
    b, n = _Glob(broad), _Glob(narrow)
    alphabet = _representatives(b, n)
    start = (n.closure([0]), b.closure([0]))
    seen = {start}
    todo = [start]
    while todo:
        n_states, b_states = todo.pop()
        if n.end in n_states and b.end not in b_states:
            return False  # a string narrow matches and broad does not
        for ch in alphabet:
            n_next = n.step(n_states, ch)
            if not n_next:
                continue
            pair = (n_next, b.step(b_states, ch))
            if pair not in seen:
                if len(seen) >= _COVER_STATE_LIMIT:
                    return False
                seen.add(pair)
                todo.append(pair)
    return True


def covers(earlier: GlRule, later: GlRule) -> bool:
    """``earlier`` matches every (cost code, cost type) pair ``later`` matches."""
    return glob_covers(earlier.cost_type, later.cost_type) and glob_covers(
        earlier.cost_code, later.cost_code
    )


def shadowed_rules(rules: RulesLike) -> list[ShadowedRule]:
    """Rules that can never match, each with the first earlier rule that matches all it does."""
    seq = _rule_list(rules)
    found = []
    for j, later in enumerate(seq):
        by = next((i for i in range(j) if covers(seq[i], later)), None)
        if by is not None:
            found.append(ShadowedRule(j, by))
    return found


_EVERYTHING = GlRule(cost_code="*", cost_type="*", account="0")


def catch_all_rules(rules: RulesLike) -> list[int]:
    """Indexes of rules matching every pair (``cost_code: "*"``, ``cost_type: "*"`` or an
    equivalent glob), including a missing cost type."""
    return [i for i, rule in enumerate(_rule_list(rules)) if covers(rule, _EVERYTHING)]


def gl_rule_warnings(located: LocatedMapping) -> list[str]:
    """``mappings check`` warnings, each ``file:line: gl_accounts[i]: ...``, in file order."""
    rules = located.mapping.gl_accounts
    out: list[tuple[int, str]] = []
    for s in shadowed_rules(rules):
        later, earlier = rules[s.index], rules[s.by]
        out.append(
            (
                s.index,
                f"{located.where('gl_accounts', s.index)}: gl_accounts[{s.index}] "
                f"({_describe(later)}) can never match: gl_accounts[{s.by}] at "
                f"{located.where('gl_accounts', s.by)} ({_describe(earlier)}) comes first and "
                f"matches every pair it would; move it above gl_accounts[{s.by}] or delete it",
            )
        )
    for i in catch_all_rules(rules):
        out.append(
            (
                i,
                f"{located.where('gl_accounts', i)}: gl_accounts[{i}] ({_describe(rules[i])}) "
                f"is a catch-all: every cost code x cost type pair no earlier rule maps posts "
                f"to account {rules[i].account}, so unmapped pairs are hidden (never listed "
                "here, never quarantined); map them explicitly and remove the catch-all if "
                "that is not intended",
            )
        )
    return [text for _, text in sorted(out, key=lambda item: item[0])]


def _describe(rule: GlRule) -> str:
    return f"cost_code {rule.cost_code!r}, cost_type {rule.cost_type!r} -> {rule.account}"


def _rule_list(rules: RulesLike) -> Sequence[GlRule]:
    if isinstance(rules, GlRuleSet):
        return rules.rules
    return rules.gl_accounts if isinstance(rules, MappingFile) else rules
