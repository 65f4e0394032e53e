"""The deltek-procore command end to end against the sandbox (SQLite defaults)."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from deltek_procore.cli import main
from deltek_procore.sandbox.runner import sandbox_periods, start_sandbox
from deltek_procore_tests.conftest import write_dagster_yaml

SECRET_NAMES = ("PROCORE_CLIENT_SECRET", "DELTEK_PASSWORD", "DELTEK_CLIENT_SECRET")


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    """One sandbox, synced for its last three months through the CLI."""
    tmp = tmp_path_factory.mktemp("cli")
    home = tmp / "dagster_home"
    write_dagster_yaml(home)
    box = start_sandbox(records=400, seed=11, workdir=tmp, spike_limit=2000, hourly_limit=100_000)
    saved = dict(os.environ)
    os.environ.update(box.env)
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ["DELTEK_PROCORE_STATE_URL"] = f"sqlite:///{tmp / 'state.db'}"
    periods = sandbox_periods(box)
    code = main(["backfill", "--from", periods[-3], "--to", periods[-1]])
    try:
        yield box, tmp, periods, code
    finally:
        box.stop()
        os.environ.clear()
        os.environ.update(saved)


def test_backfill_exit_code_and_postings(synced) -> None:
    box, _tmp, _periods, code = synced
    assert code == 0
    assert box.deltek.ap_vouchers(), "vouchers were posted"


def test_status_lists_quarantined_records_with_reasons(synced, capsys) -> None:
    assert main(["status", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["counts"]["requisition"].get("posted", 0) > 0
    reasons = [r["reason"] for r in out["records"] if r["status"] == "quarantined"]
    assert reasons and all(reasons)
    assert main(["status"]) == 0
    text = capsys.readouterr().out
    assert "records by state" in text and "quarantined" in text


def test_replay_explain_says_why(synced, capsys) -> None:
    from deltek_procore.state.store import StateStore

    store = StateStore()
    posted = store.ledger_rows(kinds=["direct_cost"], statuses=["posted"])[0]
    assert main(["replay", "direct_cost", str(posted.record_id), "--explain"]) == 0
    text = capsys.readouterr().out
    assert "AP voucher: vendor" in text and "posted by this connector" in text
    assert "A sync now would: skip" in text
    held = store.ledger_rows(statuses=["quarantined"])[0]
    assert main(["replay", held.kind, str(held.record_id), "--explain"]) == 0
    text = capsys.readouterr().out
    assert "quarantine:" in text and "held back until a person fixes the reason" in text
    # replay (not explain) of a posted record is harmless: it posts nothing
    before = len(synced[0].deltek.ap_vouchers())
    assert main(["replay", "direct_cost", str(posted.record_id)]) == 0
    assert "skipped" in capsys.readouterr().out
    assert len(synced[0].deltek.ap_vouchers()) == before


def test_replay_of_unknown_record_is_a_clear_error(synced, capsys) -> None:
    assert main(["replay", "direct_cost", "999", "--explain"]) == 2
    assert "not in the state store" in capsys.readouterr().err


def test_mappings_check_names_the_gaps_and_suggest_writes_a_file(synced, capsys, tmp_path) -> None:
    assert main(["mappings", "check"]) == 1  # the sandbox has deliberate gaps
    text = capsys.readouterr().out
    assert "NO RULE   09-250 / E" in text
    assert "no Deltek project with WBS1 = 2026001.00" in text
    out = tmp_path / "suggested.yaml"
    assert main(["mappings", "suggest", "--out", str(out)]) == 0
    body = out.read_text()
    assert "procore_project_id" in body and "gl_accounts_missing" in body and "09-250" in body


def test_sync_plan_writes_nothing_to_deltek(synced, capsys) -> None:
    box, _tmp, periods, _code = synced
    calls = box.deltek.call_counts()
    writes_before = sum(v for k, v in calls.items() if not k.startswith("GET"))
    assert main(["sync", "--period", periods[-6], "--plan"]) == 0
    text = capsys.readouterr().out
    assert "create" in text
    calls = box.deltek.call_counts()
    writes_after = sum(v for k, v in calls.items() if not k.startswith("GET") and "token" not in k)
    assert writes_after <= writes_before


def test_bad_period_and_bad_mapping_file_give_one_line_reasons(synced, capsys, tmp_path) -> None:
    assert main(["sync", "--period", "2026-13"]) == 2
    assert "YYYY-MM" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "defaults:\n  liability_code: AP\n  bank_code: OPER\ngl_accounts:\n  - cost_code: '*'\n    cost_type: S\n"
    )
    os.environ["DELTEK_PROCORE_MAPPINGS"], saved = str(bad), os.environ["DELTEK_PROCORE_MAPPINGS"]
    try:
        assert main(["sync", "--period", "2026-01", "--plan"]) == 2
    finally:
        os.environ["DELTEK_PROCORE_MAPPINGS"] = saved
    err = capsys.readouterr().err
    assert f"{bad}:" in err and "commitment_offset_account" in err and "account" in err


def test_credentials_set_reads_stdin_and_encrypts(synced, tmp_path, monkeypatch, capsys) -> None:
    state = tmp_path / "creds.db"
    monkeypatch.setenv("DELTEK_PROCORE_STATE_URL", f"sqlite:///{state}")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setattr(
        sys, "stdin", io.StringIO("DELTEK_PASSWORD=very-secret-pw-123\nDELTEK_USERNAME=bob\n")
    )
    assert main(["credentials", "set", "deltek"]) == 0
    out = capsys.readouterr().out
    assert "stored 2 deltek value(s)" in out and "very-secret-pw-123" not in out
    assert b"very-secret-pw-123" not in state.read_bytes()
    from deltek_procore.credentials import CredentialStore

    assert (
        CredentialStore(f"sqlite:///{state}").get("deltek")["DELTEK_PASSWORD"]
        == "very-secret-pw-123"
    )
    assert oct((tmp_path / ".deltek_procore.key").stat().st_mode)[-3:] == "600"


def test_no_secret_anywhere_a_run_wrote(synced) -> None:
    """Grep everything the run produced: Dagster's storage (event logs, metadata), the state
    store (audit trail, ledger), and the files under DAGSTER_HOME."""
    box, tmp, _periods, _code = synced
    secrets = [box.env[n] for n in SECRET_NAMES] + [box.webhook_secret]
    blobs: list[bytes] = []
    for path in Path(tmp).rglob("*"):
        if path.is_file() and path.suffix not in (".yaml",):  # the mapping file is input
            blobs.append(path.read_bytes())
            if path.suffix == ".db":
                with sqlite3.connect(path) as conn:
                    for (name,) in conn.execute(
                        "select name from sqlite_master where type='table'"
                    ):
                        for row in conn.execute(f'select * from "{name}"'):
                            blobs.append(repr(row).encode())
    assert len(blobs) > 3
    for secret in secrets:
        assert not any(secret.encode() in blob for blob in blobs), "a secret was written"


def sandbox_up(cwd: Path, env: dict[str, str], *extra: str) -> tuple[list[str], int]:
    """`sandbox up` in a subprocess: its stdout up to the last export, and its exit code after
    a Ctrl-C."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "deltek_procore.cli", "sandbox", "up", "--records", "300",
         "--no-webhooks", *extra],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("export DELTEK_PROCORE_WEBHOOK_SECRET"):
            break
    proc.send_signal(2)
    # drain both pipes while it stops: a child whose stderr fills the pipe would block forever
    proc.communicate(timeout=60)
    return lines, proc.returncode


def test_sandbox_up_prints_the_contract_and_stops_on_signal(tmp_path) -> None:
    lines, code = sandbox_up(tmp_path, {**os.environ, "DAGSTER_HOME": str(tmp_path / "home")})
    text = "".join(lines)
    for name in (
        "PROCORE_API_URL",
        "PROCORE_CLIENT_ID",
        "DELTEK_API_URL",
        "DELTEK_DATABASE",
        "DELTEK_PROCORE_MAPPINGS",
    ):
        assert f"export {name}=" in text
    assert code == 0


def test_status_refuses_an_unknown_state_listing_the_valid_ones(synced, capsys) -> None:
    assert main(["status", "--state", "bogus"]) == 2
    err = capsys.readouterr().err
    assert "bogus" in err and "quarantined" in err and "missing" in err


def test_status_shows_whole_reasons_and_an_amount_on_quarantined_rows(synced, capsys) -> None:
    assert main(["status", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)["records"]
    quarantined = [r for r in records if r["status"] == "quarantined"]
    assert quarantined and all(r["amount"] for r in quarantined)
    longest = max(quarantined, key=lambda r: len(r["reason"]))
    assert main(["status", "--state", "quarantined"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert " ".join(longest["reason"].split()) in text


def test_the_exit_code_and_first_line_say_what_happened() -> None:
    from deltek_procore.cli import outcome_line

    def rep(counts, checks=None):
        return {"counts": counts, "checks": checks or {}}

    warn = {"totals_match": {"passed": False, "severity": "WARN", "detail": "3 open"}}
    ok = outcome_line({"ap": rep({"posted": 5, "quarantined": 2}, warn)}, [])
    assert ok == (
        0,
        "OK: every postable record is done; 2 quarantined, 1 warning(s) (ap.totals_match)",
    )
    code, line = outcome_line(
        {"ap": rep({"posted": 5, "failed": 2}), "je": rep({"aborted": 1})}, []
    )
    assert code == 1 and line == "FAILED: 2 record(s) failed in ap; 1 record(s) failed in je"
    step = {"step": "vendor_firm_map", "error": "DeltekAmbiguousError", "message": "lost"}
    assert outcome_line({}, [step]) == (
        1,
        "FAILED: step vendor_firm_map failed (DeltekAmbiguousError)",
    )
    bad = {"step": "deltek_firms", "error": "ConfigurationError", "message": "set DELTEK_API_URL"}
    assert outcome_line({}, [bad]) == (2, "CONFIGURATION: deltek_firms: set DELTEK_API_URL")
