"""One step order: the plan (`sync --plan`, `backfill --plan`) makes the very decisions the
sync then applies: the same firms created, the same documents posted, adopted, quarantined."""

from __future__ import annotations

import json

import pytest

from deltek_procore.cli import main
from deltek_procore.sandbox.runner import sandbox_periods
from deltek_procore_tests.defs.sync_harness import harness

STATUS_OF = {"create": "posted", "adopt": "adopted", "quarantine": "quarantined",
             "skip": "skipped", "review": "review", "ignore": "ignored", "disable": "disabled"}  # fmt: skip


def rows(report: dict, key: str) -> dict[tuple[str, int], str]:
    out = {}
    for posting in report["postings"].values():
        for row in posting["results"]:
            out[(row["kind"], int(row["record_id"]))] = row[key]
    return out


@pytest.mark.parametrize("command", ["sync", "backfill"])
def test_the_plan_equals_what_the_sync_applies(command, tmp_path, monkeypatch, capsys) -> None:
    with harness(tmp_path / "home", monkeypatch, records=300, receiver=False) as h:
        periods = sandbox_periods(h.box)
        if command == "sync":
            args = ["sync", "--period", periods[-1]]
        else:
            args = ["backfill", "--from", periods[-3], "--to", periods[-1]]
        assert main([*args, "--plan", "--json"]) == 0
        plan = json.loads(capsys.readouterr().out)
        assert h.box.deltek.ap_vouchers() == [] and h.box.deltek.journal_entries() == []
        assert len(h.box.deltek.firms()) == len(h.box.data.deltek["firms"])  # none created
        assert main([*args, "--json"]) == 0
        applied = json.loads(capsys.readouterr().out)
        assert sorted(f["vendor"] for f in plan["firms_to_create"]) == sorted(
            applied["firms_created"]
        )
        assert plan["firms_to_create"], "the sandbox has vendors without a Deltek firm"
        planned = {k: STATUS_OF[a] for k, a in rows(plan, "action").items()}
        done = rows(applied, "status")
        assert planned == done
        assert set(done.values()) >= {"posted", "quarantined"}
