"""The approval gate (mapping defaults `require_approval: true`): a sync stores its plan and
posts nothing; `deltek-procore approve PLAN_ID` posts exactly that plan, and refuses a plan
that no longer matches Procore and Deltek."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from deltek_procore.cli import main
from deltek_procore.sandbox.runner import sandbox_periods
from deltek_procore_tests.defs.sync_harness import harness

PLAN = re.compile(r"WAITING FOR APPROVAL: (plan-[0-9a-f]+)")


@pytest.fixture
def gated(tmp_path, monkeypatch):
    with harness(tmp_path / "home", monkeypatch, records=300, receiver=False) as h:
        text = h.box.mappings_path.read_text()
        h.box.mappings_path.write_text(
            text.replace("defaults:\n", "defaults:\n  require_approval: true\n", 1)
        )
        yield h


def plan_ids(out: str) -> list[str]:
    return sorted(set(PLAN.findall(out)))


def test_nothing_reaches_deltek_before_approve_then_exactly_the_plan_does(gated, capsys):
    h = gated
    month = sandbox_periods(h.box)[-1]
    assert main(["sync", "--period", month]) == 0
    out = capsys.readouterr().out
    waiting = plan_ids(out)
    assert waiting, out
    assert h.box.deltek.ap_vouchers() == [] and h.box.deltek.journal_entries() == []
    assert len(h.box.deltek.firms()) == len(h.box.data.deltek["firms"])  # no firm either
    assert main(["approve", *waiting, "--by", "pat.controller"]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    created = len(h.box.deltek.firms()) - len(h.box.data.deltek["firms"])
    again = plan_ids(out)  # the firms an approval created change the plan: approve it too
    if again:
        assert created > 0
        assert main(["approve", *again, "--by", "pat.controller"]) == 0
        waiting = again
    planned = sum(h.store.get_reference(f"plan:{p}")["documents"] for p in waiting)
    posted = len(h.box.deltek.ap_vouchers()) + len(h.box.deltek.journal_entries())
    assert posted == planned
    events = [e for e in h.store.audit_trail() if e["event"].startswith("plan_")]
    assert {e["event"] for e in events} >= {"plan_waiting", "plan_approved", "plan_applied"}
    assert all(
        e["detail"]["by"] == "pat.controller" for e in events if e["event"] == "plan_approved"
    )


def test_a_plan_that_no_longer_matches_is_refused(gated, capsys):
    h = gated
    month = sandbox_periods(h.box)[-1]
    main(["sync", "--period", month])
    first = plan_ids(capsys.readouterr().out)
    planned = h.store.get_reference(f"plan:{first[0]}")["rows"]
    edited = next(r for r in planned if r["kind"] == "direct_cost")
    record = next(
        c for c in h.box.procore.data.procore["direct_costs"] if c["id"] == edited["record_id"]
    )
    bigger = str(Decimal(record["grand_total"]) + Decimal("100.00"))  # edited after the plan
    h.box.procore.set_record("direct_costs", record["id"], {"grand_total": bigger})
    assert main(["approve", *first]) == 0
    out = capsys.readouterr().out
    assert "no longer matches" in out and h.box.deltek.ap_vouchers() == []
    fresh = [p for p in plan_ids(out) if p not in first]
    assert fresh
    assert main(["approve", *plan_ids(out)]) == 0
    assert h.box.deltek.ap_vouchers()
