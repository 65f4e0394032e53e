"""A real sync (the Dagster job in-process against the sandbox) where the optional parts are
missing: no "Webhooks API" permission, and a mapped GL account Deltek has no activity on.

Neither may fail the run, quarantine anything, or turn the CLI's exit code non-zero.
"""

from __future__ import annotations

import dagster as dg

from deltek_procore.sandbox.faults import Faults, FaultSettings
from deltek_procore.sandbox.seed import GL_NO_HISTORY
from deltek_procore_tests.defs.sync_harness import harness

UNAVAILABLE = (
    "delivery history unavailable (403: You do not have permission to access the Webhooks "
    "API): the nightly poll covers missed events"
)
UNUSED = sorted(GL_NO_HISTORY)[0]  # "5400": in Deltek's chart and mapped, no activity yet


def _evaluations(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], object]:
    return {
        (
            e.asset_check_evaluation_data.asset_key.to_user_string(),
            e.asset_check_evaluation_data.check_name,
        ): e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def test_sync_without_webhooks_permission_and_with_an_unused_account(tmp_path, monkeypatch):
    faults = Faults(FaultSettings(webhooks_forbidden=True))  # forbidden from the start
    with harness(tmp_path, monkeypatch, receiver=True, procore_faults=faults) as h:
        # the sandbox survived the refused registration and says so
        assert h.box.hook_id is None and h.box.procore.hooks == {}
        assert "'Webhooks API' permission" in h.box.webhook_note
        before = {r["Account"] for r in h.box.deltek.gl_summary()}
        assert UNUSED not in before and UNUSED in {
            a["Account"] for a in h.box.data.deltek["accounts"]
        }

        # post the batches (PostTransFile), so what is posted shows in GLSummary
        text = h.box.mappings_path.read_text()
        h.box.mappings_path.write_text(
            text.replace("defaults:\n", "defaults:\n  post_batches: true\n", 1)
        )

        result = h.sync()  # asserts the run succeeded
        check = _evaluations(result)[("procore_direct_costs", "webhook_deliveries")]
        assert check.passed
        assert check.severity == dg.AssetCheckSeverity.WARN
        assert check.description == UNAVAILABLE
        assert faults.counters.get("webhooks_403", 0) >= 2  # registration and the check

        # documents posted, some of them to the account GLSummary did not list
        assert h.box.deltek.ap_vouchers() and h.box.deltek.journal_entries()
        posted_lines = [
            d for v in h.box.deltek.ap_vouchers() for d in v["apDetail"] if v["Posted"] == "Y"
        ]
        assert any(d["Account"] == UNUSED for d in posted_lines)
        assert UNUSED in {r["Account"] for r in h.box.deltek.gl_summary()}  # now it has activity
        reasons = [r.reason or "" for r in h.store.ledger_rows(statuses=["quarantined"])]
        assert not [r for r in reasons if "chart of accounts" in r or f"account {UNUSED}" in r]

        gl = h.store.get_reference("gl_map")
        assert UNUSED in gl["not_yet_used_accounts"] and gl["bad_accounts"] == []
        assert "5100" in gl["confirmed_accounts"]

        # the CLI's exit code stays 0 with the check unable to read the history
        from deltek_procore.cli import main

        assert main(["sync", "--period", "2026-10"]) == 0


def _complete_mapping(h, text: str) -> str:
    """The seeded mapping file with its deliberate gaps closed: every Procore project mapped
    to an active Deltek project, and a catch-all GL rule onto the unused account."""
    deltek = h.box.data.deltek["projects"]
    active = {p["WBS1"] for p in deltek if p["Status"] == "A" and p.get("SubLevel") != "Y"}
    wbs1 = sorted(active)[0]
    mapped = "".join(
        f'  - procore_project_id: {p["id"]}\n    wbs1: "{wbs1}"\n'
        for p in h.box.data.procore["projects"]
        if f"procore_project_id: {p['id']}\n" not in text
    )
    text = text.replace("projects:\n", "projects:\n" + mapped, 1)
    return text + f'  - cost_code: "*"\n    cost_type: "*"\n    account: "{UNUSED}"\n'


def test_mappings_check_splits_accounts_and_unused_ones_never_fail_it(
    tmp_path, monkeypatch, capsys
):
    import json

    from deltek_procore.cli import main

    with harness(tmp_path, monkeypatch, receiver=False) as h:
        seeded = h.box.mappings_path.read_text()
        assert main(["mappings", "check", "--json"]) == 1  # the seed's deliberate gaps
        report = json.loads(capsys.readouterr().out)
        accounts = report["gl"]["accounts"]
        assert accounts == {
            "confirmed": ["2150", "2160", "5100", "5200", "5300", "5310", "5500"],
            "not_yet_used": [UNUSED],
            "inactive": [],
        }
        assert report["gl"]["glsummary_readable"] is True and report["gl"]["inactive"] == []
        assert main(["mappings", "check"]) == 1
        out = capsys.readouterr().out
        assert f"  not yet used in Deltek: {UNUSED} (GLSummary lists only" in out
        assert "  confirmed (seen in GLSummary): 2150, 2160, 5100, 5200" in out
        assert "NO RULE   09-250 / E" in out and "BAD ACCT" not in out

        # gaps closed, the unused account still unused: coverage is complete, exit 0
        h.box.mappings_path.write_text(_complete_mapping(h, seeded))
        assert main(["mappings", "check", "--json"]) == 0, capsys.readouterr()
        report = json.loads(capsys.readouterr().out)
        assert report["ok"] is True and report["gl"]["unmapped"] == []
        assert report["gl"]["accounts"]["not_yet_used"] == [UNUSED]
        assert main(["mappings", "check"]) == 0
        assert capsys.readouterr().out.rstrip().endswith("coverage complete")

        # an account Deltek lists as inactive is a gap, in Deltek's words
        inactive = _complete_mapping(h, seeded).replace('account: "5500"', 'account: "5950"')
        h.box.mappings_path.write_text(inactive)
        assert main(["mappings", "check", "--json"]) == 1
        report = json.loads(capsys.readouterr().out)
        assert report["gl"]["accounts"]["inactive"] == ["5950"] and report["ok"] is False
        assert {r["problem"] for r in report["gl"]["inactive"]} == {
            "inactive in Deltek (GLSummary Status I)"
        }
