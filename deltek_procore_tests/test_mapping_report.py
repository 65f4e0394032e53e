"""`mappings check` warnings about GL rules: printed and in --json, never a failure."""

from __future__ import annotations

import json
import os

import pytest

from deltek_procore.cli import main
from deltek_procore.mapping_report import render_check
from deltek_procore.sandbox.runner import start_sandbox

S_RULE = '  - cost_code: "*"\n    cost_type: S\n    account: "5100"\n'
SHADOWED = '  - cost_code: "03-*"\n    cost_type: S\n    account: "5999"\n'


def _report(**gl) -> dict:
    base = {
        "pairs_in_use": 2,
        "glsummary_readable": True,
        "unmapped": [],
        "inactive": [],
        "accounts": {"confirmed": ["5100"], "not_yet_used": [], "inactive": []},
    }
    return {
        "ok": True,
        "gl": {**base, **gl},
        "projects": {"matched": 1, "problems": {}},
        "vendors": {"matched": 1, "new_firm_next_sync": [], "problems": {}},
    }


def test_render_prints_each_warning_and_still_says_complete():
    warning = "m.yaml:9: gl_accounts[2] (cost_code '03-*' ...) can never match: ..."
    text = render_check(_report(warnings=[warning]))
    assert f"  WARNING   {warning}" in text.splitlines()
    assert text.endswith("coverage complete")


def test_render_of_a_report_without_warnings_is_unchanged():
    assert "WARNING" not in render_check(_report())
    assert "WARNING" not in render_check(_report(warnings=[]))


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mapcheck")
    box = start_sandbox(records=120, seed=5, workdir=tmp)
    saved = dict(os.environ)
    os.environ.update(box.env)
    os.environ["DAGSTER_HOME"] = str(tmp / "home")
    os.environ["DELTEK_PROCORE_STATE_URL"] = f"sqlite:///{tmp / 'state.db'}"
    try:
        yield box
    finally:
        box.stop()
        os.environ.clear()
        os.environ.update(saved)


def _check(capsys, *flags: str) -> tuple[int, str]:
    code = main(["mappings", "check", *flags])
    captured = capsys.readouterr()
    assert not captured.err, captured.err
    return code, captured.out


def test_shadowed_rule_is_a_warning_that_does_not_change_the_verdict(sandbox, capsys):
    seeded = sandbox.mappings_path.read_text()
    assert S_RULE in seeded
    try:
        code_before, out = _check(capsys, "--json")
        before = json.loads(out)
        assert before["gl"]["warnings"] == []

        sandbox.mappings_path.write_text(seeded.replace(S_RULE, S_RULE + SHADOWED, 1))
        code, out = _check(capsys, "--json")
        after = json.loads(out)
        assert code == code_before and after["ok"] == before["ok"]  # a warning, not a gap
        (warning,) = after["gl"]["warnings"]
        path = str(sandbox.mappings_path)
        assert warning.startswith(f"{path}:")
        assert "(cost_code '03-*', cost_type 'S' -> 5999) can never match" in warning
        assert "(cost_code '*', cost_type 'S' -> 5100) comes first" in warning
        assert after["gl"]["unmapped"] == before["gl"]["unmapped"]

        code, text = _check(capsys)
        assert code == code_before
        assert f"  WARNING   {warning}" in text.splitlines()
    finally:
        sandbox.mappings_path.write_text(seeded)


def test_catch_all_is_warned_about_where_it_is(sandbox, capsys):
    seeded = sandbox.mappings_path.read_text()
    catch_all = '  - cost_code: "*"\n    cost_type: "*"\n    account: "5500"\n'
    try:
        assert seeded.rstrip().splitlines()[-1].startswith("    account: ")  # gl_accounts last
        sandbox.mappings_path.write_text(seeded + catch_all)  # after it, nothing could match
        _code, out = _check(capsys, "--json")
        report = json.loads(out)
        assert report["gl"]["unmapped"] == []  # exactly what the catch-all hides
        warnings = [w for w in report["gl"]["warnings"] if "catch-all" in w]
        assert len(warnings) == 1
        line = seeded.count("\n") + 1
        assert warnings[0].startswith(f"{sandbox.mappings_path}:{line}: gl_accounts[")
        assert "posts to account 5500, so unmapped pairs are hidden" in warnings[0]
        assert report["gl"]["unmapped"] == [] and len(report["gl"]["warnings"]) == 1
    finally:
        sandbox.mappings_path.write_text(seeded)
