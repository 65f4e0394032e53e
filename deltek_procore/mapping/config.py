"""The mapping file: load, validate and fingerprint it.

Every problem is reported at once, each as ``file:line: field: message`` so a person can
fix the whole file in one pass. Line numbers come from the YAML node tree (``yaml.compose``),
which keeps a mark for every key and value; pydantic error locations are walked back to the
closest node that exists (a missing field points at the rule that lacks it).

Code-like values (accounts, WBS numbers, vendor numbers, cost codes and types, Deltek
codes) are always taken as the text written in the file. YAML would otherwise turn
``account: 05100`` into the octal number 2624 and ``wbs1: 2024001.00`` into a float that
lost its trailing zeros; reading the raw scalar avoids both without asking anyone to quote.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

ENV_VAR = "DELTEK_PROCORE_MAPPINGS"
DEFAULT_PATH = "mappings.yaml"

#: A real mapping file is a few kB; anything near this cap is the wrong file or an attack.
MAX_BYTES = 5 * 1024 * 1024
#: Nesting levels allowed (a mapping file needs 4: file, section, rule, value). Deeper YAML
#: is refused with its line instead of recursing until Python gives up.
MAX_DEPTH = 20

#: Record kinds an ``ignore`` rule can name (the pipeline's kinds).
IGNORE_KINDS = (
    "requisition",
    "direct_cost",
    "work_order",
    "purchase_order",
    "change_order",
    "project",
    "vendor",
)
#: Procore resource names accepted as spellings of the kinds above.
IGNORE_KIND_ALIASES = {
    "subcontractor_invoice": "requisition",
    "work_order_contract": "work_order",
    "purchase_order_contract": "purchase_order",
    "commitment_change_order": "change_order",
}
#: Procore direct cost types that may be posted as AP vouchers.
DIRECT_COST_TYPES = ("invoice", "expense", "payroll")

# Fields whose YAML scalars are kept as written (see module docstring).
_CODE_FIELDS = frozenset(
    {
        "liability_code",
        "bank_code",
        "commitment_offset_account",
        "retainage_account",
        "company",
        "voucher_pay_terms",
        "wbs1",
        "wbs2",
        "wbs3",
        "deltek_vendor",
        "cost_code",
        "cost_type",
        "account",
    }
)
_ACCOUNT_MAX = 13  # Deltek CA.Account is varchar(13)
_COST_TYPE_RE = re.compile(r"^[A-Za-z0-9_.\-*?\[\]!]+$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class MappingProblem:
    """One thing wrong with the mapping file, located by line and field."""

    source: str
    line: int | None  # 1-based
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class MappingFileError(ValueError):
    """The mapping file is missing or invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: Sequence[MappingProblem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @property
    def messages(self) -> list[str]:
        return [str(p) for p in self.problems]


# --------------------------------------------------------------------------- models


def _text(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    if _CONTROL_RE.search(value):
        raise ValueError("must not contain control characters")
    return value


def _account(value: str) -> str:
    value = _text(value)
    if len(value) > _ACCOUNT_MAX:
        raise ValueError(f"must be at most {_ACCOUNT_MAX} characters (Deltek account number)")
    if any(ch in value for ch in "*?["):
        raise ValueError("must be one Deltek account number, not a glob")
    return value


def _cost_code_glob(value: str) -> str:
    try:
        return _text(value)
    except ValueError:
        raise ValueError("must be a cost code or a glob") from None


def _cost_type_glob(value: str) -> str:
    value = value.strip()
    if not _COST_TYPE_RE.match(value):
        raise ValueError("must be a cost type code or a glob")
    return value


def _ignore_kind(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return IGNORE_KIND_ALIASES.get(value, value)
    return value


Text = Annotated[str, AfterValidator(_text)]
Account = Annotated[str, AfterValidator(_account)]
OptionalText = Annotated[str, AfterValidator(_text)] | None
PositiveId = Annotated[int, Field(gt=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Defaults(_Model):
    """Values every posting needs that Procore does not carry."""

    liability_code: Text
    bank_code: Text
    commitment_offset_account: Account
    retainage_account: Account | None = None
    company: OptionalText = None
    voucher_pay_terms: Text = "Next"
    post_batches: bool = False
    batch_size: Annotated[int, Field(ge=1, le=1000)] = 50
    late_change_policy: Literal["adjust", "review"] = "review"
    # a document the period reconciliation finds missing in Deltek: wait for `replay`
    # (review) or post it again on the next run (repost)
    on_missing: Literal["review", "repost"] = "review"
    # a sync computes and stores its plan and posts nothing until `deltek-procore approve`
    require_approval: bool = False
    direct_cost_types: list[Literal["invoice", "expense", "payroll"]] = Field(
        default_factory=lambda: ["invoice"]
    )

    @field_validator("direct_cost_types")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must name at least one of " + ", ".join(DIRECT_COST_TYPES))
        return list(dict.fromkeys(value))


class ProjectRule(_Model):
    """Pins a Procore project to a Deltek project (optionally a phase/task)."""

    procore_project_id: PositiveId
    wbs1: OptionalText = None
    wbs2: OptionalText = None
    wbs3: OptionalText = None
    # false: the project's records are staged but never planned (shown as `disabled`)
    enabled: bool = True

    @model_validator(mode="after")
    def _wbs1_unless_disabled(self) -> ProjectRule:
        if self.enabled and self.wbs1 is None:
            raise ValueError("wbs1: field required (or `enabled: false` to leave the project out)")
        return self

    @field_validator("wbs3")
    @classmethod
    def _wbs3_needs_wbs2(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("wbs2") is None:
            raise ValueError("needs wbs2 (a task sits under a phase)")
        return value


class VendorRule(_Model):
    """Pins a Procore company vendor to an existing Deltek vendor number."""

    procore_vendor_id: PositiveId
    deltek_vendor: Text


class GlRule(_Model):
    """Cost code glob x cost type glob -> GL account; the first matching rule wins."""

    cost_code: Annotated[str, AfterValidator(_cost_code_glob)]
    cost_type: Annotated[str, AfterValidator(_cost_type_glob)]
    account: Account


class IgnoreRule(_Model):
    """A Procore record a person decided never to post, with the reason."""

    kind: Annotated[Literal[IGNORE_KINDS], BeforeValidator(_ignore_kind)]  # type: ignore[valid-type]
    id: PositiveId
    reason: Text


class MappingFile(_Model):
    defaults: Defaults
    projects: list[ProjectRule] = Field(default_factory=list)
    vendors: list[VendorRule] = Field(default_factory=list)
    gl_accounts: list[GlRule] = Field(default_factory=list)
    ignore: list[IgnoreRule] = Field(default_factory=list)

    def project_override(self, procore_project_id: int) -> ProjectRule | None:
        return next(
            (r for r in self.project_rules() if r.procore_project_id == procore_project_id), None
        )

    def project_rules(self) -> list[ProjectRule]:
        """The project pins of enabled projects (a disabled project maps nowhere)."""
        return [r for r in self.projects if r.enabled]

    def disabled_projects(self) -> frozenset[int]:
        return frozenset(r.procore_project_id for r in self.projects if not r.enabled)

    def vendor_override(self, procore_vendor_id: int) -> VendorRule | None:
        return next((r for r in self.vendors if r.procore_vendor_id == procore_vendor_id), None)

    def ignored(self, kind: str, record_id: int) -> str | None:
        """The reason a record is ignored, or None when it is not."""
        return next((r.reason for r in self.ignore if r.kind == kind and r.id == record_id), None)


# --------------------------------------------------------------------------- YAML -> data

Loc = tuple[str | int, ...]


class _Builder:
    """Turns a composed YAML node tree into plain data, remembering each node's line."""

    def __init__(self, source: str):
        self.source = source
        self.lines: dict[Loc, int] = {}
        self.problems: list[MappingProblem] = []
        self._constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, loc: Loc = ()) -> Any:
        self.lines[loc] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self._scalar(key_node)
                if not isinstance(key, str) or key == "<<":
                    self._problem(key_node, loc, f"unsupported key {key_node.value!r}")
                    continue
                if key in out:
                    self._problem(key_node, (*loc, key), "duplicate key; each key once")
                    continue
                child = (*loc, key)
                if key in _CODE_FIELDS and isinstance(value_node, yaml.ScalarNode):
                    self.lines[child] = value_node.start_mark.line + 1
                    out[key] = None if self._is_null(value_node) else value_node.value
                else:
                    out[key] = self.build(value_node, child)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        return self._scalar(node)

    def _scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return node  # a non-scalar key; reported by the caller
        return self._constructor.construct_object(node, deep=True)

    @staticmethod
    def _is_null(node: yaml.ScalarNode) -> bool:
        return node.tag == "tag:yaml.org,2002:null"

    def _problem(self, node: yaml.Node, loc: Loc, message: str) -> None:
        self.problems.append(
            MappingProblem(self.source, node.start_mark.line + 1, _field_name(loc), message)
        )


def _field_name(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_for(lines: Mapping[Loc, int], loc: Loc) -> int | None:
    """The line of ``loc`` or of its closest ancestor present in the file."""
    for end in range(len(loc), -1, -1):
        line = lines.get(tuple(loc[:end]))
        if line is not None:
            return line
    return None


_MESSAGES = {
    "missing": "field required",
    "extra_forbidden": "unknown field",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be text",
    "list_type": "must be a list",
    "model_type": "must be a mapping of fields",
    "dict_type": "must be a mapping of fields",
    "greater_than": "must be a positive number",
}


def _pydantic_message(err: Mapping[str, Any]) -> str:
    kind = err.get("type", "")
    if err.get("input", "") is None and kind != "missing":
        return "must not be blank"
    if kind == "literal_error":
        return (
            f"must be one of: {str(err.get('ctx', {}).get('expected', '')).replace(' or ', ', ')}"
        )
    if kind in _MESSAGES:
        return _MESSAGES[kind]
    msg = str(err.get("msg", "invalid"))
    msg = msg.removeprefix("Value error, ")
    return msg[:1].lower() + msg[1:]


def _duplicates(
    data: Any, section: str, key: str, lines: Mapping[Loc, int], source: str
) -> list[MappingProblem]:
    rows = data.get(section) if isinstance(data, dict) else None
    if not isinstance(rows, list):
        return []
    seen: dict[str, int] = {}
    problems = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or row.get(key) is None:
            continue
        norm = str(row[key]).strip()
        if norm in seen:
            first = seen[norm]
            problems.append(
                MappingProblem(
                    source,
                    _line_for(lines, (section, i, key)),
                    f"{section}[{i}].{key}",
                    f"duplicate of {section}[{first}] (line {_line_for(lines, (section, first))})",
                )
            )
        else:
            seen[norm] = i
    return problems


def _unreachable_gl_rules(model: MappingFile, lines: Mapping[Loc, int], source: str):
    """Rules that can never match because an earlier rule has the same or catch-all globs."""
    problems = []
    seen: dict[tuple[str, str], int] = {}
    catch_all: int | None = None
    for i, rule in enumerate(model.gl_accounts):
        pair = (rule.cost_code, rule.cost_type)
        earlier = catch_all if catch_all is not None else seen.get(pair)
        if earlier is not None:
            problems.append(
                MappingProblem(
                    source,
                    _line_for(lines, ("gl_accounts", i)),
                    f"gl_accounts[{i}]",
                    f"can never match: gl_accounts[{earlier}] "
                    f"(line {_line_for(lines, ('gl_accounts', earlier))}) matches first",
                )
            )
        seen.setdefault(pair, i)
        if pair == ("*", "*") and catch_all is None:
            catch_all = i
    return problems


def _ignore_duplicates(data: Any, lines: Mapping[Loc, int], source: str) -> list[MappingProblem]:
    rows = data.get("ignore") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        return []
    seen: dict[tuple[str, str], int] = {}
    problems = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or row.get("kind") is None or row.get("id") is None:
            continue
        key = (str(row["kind"]).strip(), str(row["id"]).strip())
        if key in seen:
            problems.append(
                MappingProblem(
                    source,
                    _line_for(lines, ("ignore", i)),
                    f"ignore[{i}]",
                    f"duplicate of ignore[{seen[key]}]",
                )
            )
        else:
            seen[key] = i
    return problems


# --------------------------------------------------------------------------- public API


class _TooDeep(yaml.MarkedYAMLError):
    """Nesting beyond MAX_DEPTH; reported with its line, not as "not valid YAML"."""


class _NoAliasLoader(yaml.SafeLoader):
    """Refuses anchors/aliases: a mapping file never needs them, and nested aliases
    ("billion laughs") can make a tiny file take minutes to expand. Also stops at MAX_DEPTH
    levels of nesting: composing is recursive, so a file of 100 000 ``[`` would otherwise end
    in a RecursionError."""

    _depth = 0

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None,
                None,
                "anchors and aliases (*name) are not supported in the mapping file",
                event.start_mark,
            )
        if self._depth >= MAX_DEPTH:
            raise _TooDeep(
                None,
                None,
                f"nested more than {MAX_DEPTH} levels deep (a mapping file needs 4: section, "
                "list, rule, value); check the indentation and brackets here",
                self.peek_event().start_mark,
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _too_big(source: str, size: int, *, at_least: bool = False) -> MappingFileError:
    cap = _megabytes(MAX_BYTES)
    amount = (
        f"over the {cap} cap (reading went past {MAX_BYTES} bytes)"
        if at_least
        else f"{_megabytes(size)} ({size} bytes), over the {cap} cap"
    )
    message = (
        f"mapping file is {amount}; a mapping file is a few kB: check that {ENV_VAR} "
        "names the right file"
    )
    return MappingFileError([MappingProblem(source, None, "", message)])


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


@dataclass(frozen=True)
class LocatedMapping:
    """A validated mapping file with the line of every key, for messages about valid files
    (``mappings check`` warnings). Kept apart from :class:`MappingFile`, whose equality and
    hash must depend on content only."""

    mapping: MappingFile
    source: str
    lines: Mapping[Loc, int]

    def where(self, *loc: str | int) -> str:
        """``file:line`` of a key path such as ``("gl_accounts", 3)``."""
        line = _line_for(self.lines, loc)
        return f"{self.source}:{line}" if line else self.source


def parse_mapping(text: str, source: str = "<mapping>") -> MappingFile:
    """Validate mapping YAML text; ``source`` names it in error messages."""
    return parse_mapping_located(text, source).mapping


def parse_mapping_located(text: str, source: str = "<mapping>") -> LocatedMapping:
    """:func:`parse_mapping` that also returns where each key is."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise _too_big(source, size)
    try:
        root = yaml.compose(text, Loader=_NoAliasLoader)
    except _TooDeep as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise MappingFileError([MappingProblem(source, line, "", str(exc.problem))]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        detail = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        if "alias" in detail:
            detail += ' (a value starting with * must be quoted: "*" or "03-*")'
        raise MappingFileError(
            [MappingProblem(source, line, "", f"not valid YAML: {detail}")]
        ) from None
    except yaml.YAMLError as exc:
        raise MappingFileError(
            [MappingProblem(source, None, "", f"not valid YAML: {exc}")]
        ) from None
    if root is None:
        raise MappingFileError(
            [
                MappingProblem(
                    source, None, "", "file is empty; it needs at least a defaults section"
                )
            ]
        )
    if not isinstance(root, yaml.MappingNode):
        raise MappingFileError(
            [MappingProblem(source, root.start_mark.line + 1, "", "must be a mapping of sections")]
        )

    builder = _Builder(source)
    data = builder.build(root)
    problems = list(builder.problems)
    problems += _duplicates(data, "projects", "procore_project_id", builder.lines, source)
    problems += _duplicates(data, "vendors", "procore_vendor_id", builder.lines, source)
    problems += _ignore_duplicates(data, builder.lines, source)

    model: MappingFile | None = None
    try:
        model = MappingFile.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if isinstance(p, (str, int)))
            # Literal / union errors append the tag to loc; keep only real path parts.
            loc = _trim_loc(loc, data)
            problems.append(
                MappingProblem(
                    source, _line_for(builder.lines, loc), _field_name(loc), _pydantic_message(err)
                )
            )
    if model is not None:
        problems += _unreachable_gl_rules(model, builder.lines, source)
    if problems:
        problems.sort(key=lambda p: (p.line or 0, p.field))
        raise MappingFileError(problems)
    assert model is not None
    return LocatedMapping(model, source, dict(builder.lines))


def _trim_loc(loc: Loc, data: Any) -> Loc:
    """Drop trailing loc parts pydantic adds that are not keys of the data (e.g. union tags)."""
    out: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        if isinstance(node, dict) and isinstance(part, str):
            out.append(part)
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int):
            out.append(part)
            node = node[part] if part < len(node) else None
        elif node is None and isinstance(part, str) and i == len(out):
            out.append(part)  # a missing field: name it
            break
        else:
            break
    return tuple(out)


def mapping_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the mapping file is: ``$DELTEK_PROCORE_MAPPINGS`` or ``mappings.yaml``."""
    env = os.environ if env is None else env
    return Path(env.get(ENV_VAR) or DEFAULT_PATH)


def load_mapping(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> MappingFile:
    """Read and validate the mapping file (``path``, else from the environment)."""
    return load_mapping_located(path, env).mapping


def load_mapping_located(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> LocatedMapping:
    """:func:`load_mapping` that also returns where each key is."""
    file = Path(path) if path is not None else mapping_path(env)
    try:
        text = _read_capped(file)
    except FileNotFoundError:
        raise MappingFileError(
            [
                MappingProblem(
                    str(file),
                    None,
                    "",
                    f"mapping file not found (looked at {file.resolve()}); "
                    f"create it or set {ENV_VAR} to its path",
                )
            ]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise MappingFileError(
            [MappingProblem(str(file), None, "", f"cannot read mapping file: {reason}")]
        ) from None
    return parse_mapping_located(text, source=str(file))


def _read_capped(file: Path) -> str:
    """The file's text, refusing more than MAX_BYTES before reading it whole: by its size,
    and by what a read returns (a device or a file still growing has no honest size)."""
    size = file.stat().st_size
    if size > MAX_BYTES:
        raise _too_big(str(file), size)
    with file.open("rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise _too_big(str(file), len(data), at_least=True)
    return data.decode("utf-8")


def mapping_hash(mapping: MappingFile) -> str:
    """Stable sha256 of the normalized content: comments, spacing and key order do not count,
    rule order does (first match wins)."""
    payload = json.dumps(
        mapping.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )
    return hashlib.sha256(payload.encode("ascii")).hexdigest()
