"""Broken mapping files: every error names the file, the line and the field.

The operator edits this file by hand; a message that says "gl_accounts[1].acount,
line 11" gets fixed in a minute, a stack trace does not.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from deltek_procore.mapping.config import (
    MAX_BYTES,
    MAX_DEPTH,
    MappingFileError,
    load_mapping,
    parse_mapping,
)

BASE = textwrap.dedent(
    """\
    defaults:
      liability_code: AP
      bank_code: OPER
      commitment_offset_account: "2150"
    gl_accounts:
      - cost_code: "03-*"
        cost_type: S
        account: "5100"
    """
)


def _after(anchor: str, extra: str, text: str = BASE) -> str:
    return text.replace(anchor, anchor + extra, 1)


# name -> (file text, [(line, field, words in the message)])
CASES: dict[str, tuple[str, list[tuple[int | None, str, str]]]] = {
    "account is a list": (
        BASE.replace('account: "5100"', "account: [1, 2]"),
        [(8, "gl_accounts[0].account", "must be text")],
    ),
    "account is a glob": (
        BASE.replace('account: "5100"', 'account: "51*"'),
        [(8, "gl_accounts[0].account", "not a glob")],
    ),
    "required default missing": (
        BASE.replace('  commitment_offset_account: "2150"\n', ""),
        [(2, "defaults.commitment_offset_account", "field required")],
    ),
    "misspelt key in the second rule": (
        BASE + "  - cost_code: '*'\n    cost_type: '*'\n    acount: '5900'\n",
        [
            (9, "gl_accounts[1].account", "field required"),
            (11, "gl_accounts[1].acount", "unknown field"),
        ],
    ),
    "key given twice": (
        _after("  bank_code: OPER\n", "  bank_code: OPS\n"),
        [(4, "defaults.bank_code", "duplicate key")],
    ),
    "batch size zero": (
        _after("  bank_code: OPER\n", "  batch_size: 0\n"),
        [(4, "defaults.batch_size", "greater than or equal to 1")],
    ),
    "control character in a code": (
        BASE.replace("bank_code: OPER", 'bank_code: "OP\\x00ER"'),
        [(3, "defaults.bank_code", "control characters")],
    ),
    "negative vendor id": (
        BASE + "vendors:\n  - procore_vendor_id: -3\n    deltek_vendor: X\n",
        [(10, "vendors[0].procore_vendor_id", "positive")],
    ),
    "task without a phase": (
        BASE + "projects:\n  - procore_project_id: 5\n    wbs1: '2024'\n    wbs3: T\n",
        [(12, "projects[0].wbs3", "needs wbs2")],
    ),
    "unknown direct cost type": (
        _after("  bank_code: OPER\n", "  direct_cost_types: [invoice, salary]\n"),
        [(4, "defaults.direct_cost_types[1]", "must be one of")],
    ),
    "YAML 'no' read as a boolean": (
        BASE + "ignore:\n  - kind: invoice\n    id: 5\n    reason: no\n",
        [(10, "ignore[0].kind", "must be one of"), (12, "ignore[0].reason", "must be text")],
    ),
    "python tag is not executed": (
        BASE + "x: !!python/object/apply:os.system ['echo pwned']\n",
        [(9, "x", "unknown field")],
    ),
    "tab indentation": (
        BASE.replace("  bank_code", "\tbank_code"),
        [(3, "", "not valid YAML")],
    ),
    "unclosed bracket": ("defaults: [\n", [(2, "", "not valid YAML")]),
    "top level is a list": ("- a\n- b\n", [(1, "", "must be a mapping")]),
    "empty file": ("", [(None, "", "file is empty")]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_error_names_file_line_and_field(tmp_path: Path, name: str) -> None:
    text, expected = CASES[name]
    path = tmp_path / "mappings.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingFileError) as caught:
        load_mapping(path)
    messages = caught.value.messages
    assert len(messages) == len(expected), messages
    for message, (line, field_name, words) in zip(messages, expected, strict=True):
        where = f"{path}:{line}: " if line else f"{path}: "
        assert message.startswith(where), (message, where)
        if field_name:
            assert message.startswith(f"{where}{field_name}: "), message
        assert words in message, message
    assert str(caught.value) == "\n".join(messages)  # every problem at once, not the first


def test_undecodable_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(MappingFileError, match=r"binary\.yaml: cannot read mapping file"):
        load_mapping(path)


def test_missing_file_says_where_it_looked(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(MappingFileError, match="mapping file not found") as caught:
        load_mapping(path)
    assert str(path) in str(caught.value)


def test_a_valid_file_next_to_the_broken_ones_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "mappings.yaml"
    path.write_text(BASE, encoding="utf-8")
    mapping = load_mapping(path)
    assert mapping.gl_accounts[0].account == "5100"
    assert mapping.defaults.commitment_offset_account == "2150"


def test_yaml_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = [BASE, "a: &a [x, x, x, x, x, x, x, x, x, x]\n"]
    previous = "a"
    for level in range(7):
        lines.append(f"b{level}: &b{level} [" + ", ".join([f"*{previous}"] * 10) + "]\n")
        previous = f"b{level}"
    path = tmp_path / "bomb.yaml"
    path.write_text("".join(lines), encoding="utf-8")
    code = (
        "import sys\nfrom deltek_procore.mapping.config import load_mapping, MappingFileError\n"
        "try:\n    load_mapping(sys.argv[1])\nexcept MappingFileError as e:\n    print(e)\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, str(path)],
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("load_mapping still busy after 10 s on a 1 kB file")
    # refused at the first alias, with its line, before anything is expanded
    assert done.stdout.startswith(f"{path}:10: not valid YAML: "), done.stdout + done.stderr
    assert "anchors and aliases (*name) are not supported" in done.stdout


def test_merge_key_alias_is_refused_too(tmp_path: Path) -> None:
    text = BASE + "base: &base {a: 1}\nother:\n  <<: *base\n"
    path = tmp_path / "merge.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingFileError) as caught:
        load_mapping(path)
    assert caught.value.messages[0].startswith(f"{path}:11: not valid YAML: anchors and aliases")


def _run_isolated(path: Path, limit_mb: int = 1024) -> subprocess.CompletedProcess[str]:
    """load_mapping(path) in a child with a memory cap: a missing guard fails, not the host."""
    code = (
        "import resource, sys\n"
        f"resource.setrlimit(resource.RLIMIT_AS, ({limit_mb} << 20, {limit_mb} << 20))\n"
        "from deltek_procore.mapping.config import load_mapping, MappingFileError\n"
        "try:\n    load_mapping(sys.argv[1])\nexcept MappingFileError as e:\n    print(e)\n"
    )
    try:
        return subprocess.run(
            [sys.executable, "-c", code, str(path)],
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"load_mapping({path}) still busy after 30 s")


def test_file_over_the_size_cap_is_refused_by_size(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    padding = "# " + "x" * 1021 + "\n"  # 1 kB comment lines: valid YAML, just too much of it
    path.write_text(BASE + padding * (MAX_BYTES // 1024 + 200), encoding="utf-8")
    size = path.stat().st_size
    with pytest.raises(MappingFileError) as caught:
        load_mapping(path)
    (message,) = caught.value.messages
    assert message.startswith(f"{path}: mapping file is 5.2 MB ({size} bytes), over the 5.0 MB cap")
    assert "DELTEK_PROCORE_MAPPINGS" in message


def test_a_file_without_an_honest_size_is_cut_at_the_cap() -> None:
    """/dev/zero reports size 0 and never ends: it is read up to the cap, then refused."""
    done = _run_isolated(Path("/dev/zero"), limit_mb=512)
    assert done.stdout.startswith("/dev/zero: mapping file is over the 5.0 MB cap"), (
        done.stdout + done.stderr
    )


def test_file_just_under_the_cap_is_read() -> None:
    text = BASE + "# " + "x" * (MAX_BYTES - len(BASE) - 3) + "\n"
    assert len(text.encode()) == MAX_BYTES
    assert parse_mapping(text, "big.yaml").gl_accounts[0].account == "5100"
    with pytest.raises(MappingFileError, match="over the 5.0 MB cap"):
        parse_mapping(text + "#", "big.yaml")


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("flow lists", "[" * 100_000 + "]" * 100_000, 1),
        ("flow mappings", "x: " + "{a: " * 50_000 + "1" + "}" * 50_000, 1),
        (
            "block mappings",
            "".join("  " * i + f"k{i}:\n" for i in range(40)) + "  " * 40 + "v\n",
            20,
        ),
        ("block lists", "- " * 5_000 + "x\n", 1),
    ],
)
def test_deep_nesting_is_a_line_not_a_recursion_error(
    tmp_path: Path, name: str, text: str, line: int
) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingFileError) as caught:
        load_mapping(path)
    (message,) = caught.value.messages
    assert message.startswith(f"{path}:{line}: nested more than {MAX_DEPTH} levels deep"), message


def test_nesting_up_to_the_cap_is_only_a_shape_error(tmp_path: Path) -> None:
    """20 levels (the scalars count as one) pass the YAML guard; the model then names the
    bad field as usual."""
    deep = "".join("  " * i + f"k{i}:\n" for i in range(1, MAX_DEPTH - 1)) + "  " * 19 + "v\n"
    path = tmp_path / "m.yaml"
    path.write_text(BASE + "extra:\n" + deep, encoding="utf-8")
    with pytest.raises(MappingFileError) as caught:
        load_mapping(path)
    assert caught.value.messages == [f"{path}:10: extra: unknown field"]
