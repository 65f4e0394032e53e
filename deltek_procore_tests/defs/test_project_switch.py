"""A project switched off in the mapping file (`enabled: false`): its records are staged but
never planned, shown as `disabled`; switched back on, they post."""

from __future__ import annotations

import pytest

from deltek_procore.mapping.config import MappingFileError, parse_mapping
from deltek_procore.sandbox.runner import sandbox_periods
from deltek_procore_tests.defs.sync_harness import harness


def test_a_project_rule_needs_wbs1_unless_it_disables_the_project() -> None:
    base = (
        "defaults:\n  liability_code: AP\n  bank_code: OPER\n  commitment_offset_account: '2150'\n"
    )
    parsed = parse_mapping(base + "projects:\n  - procore_project_id: 7\n    enabled: false\n")
    assert parsed.disabled_projects() == {7} and parsed.project_rules() == []
    with pytest.raises(MappingFileError) as err:
        parse_mapping(base + "projects:\n  - procore_project_id: 7\n", "m.yaml")
    assert "m.yaml:6" in str(err.value) and "enabled: false" in str(err.value)


def test_a_disabled_project_is_staged_never_planned_and_posts_once_enabled(
    tmp_path, monkeypatch
) -> None:
    with harness(tmp_path / "home", monkeypatch, records=300, receiver=False) as h:
        month = sandbox_periods(h.box)[-1]
        project = h.box.procore.data.procore["projects"][1]
        text = h.box.mappings_path.read_text()
        switched = text.replace(
            "projects:\n",
            f"projects:\n  - procore_project_id: {project['id']}\n    enabled: false\n",
            1,
        )
        if switched == text:
            switched = (
                text + f"projects:\n  - procore_project_id: {project['id']}\n    enabled: false\n"
            )
        h.box.mappings_path.write_text(switched)
        h.sync(month, month)
        staged = [
            s for k in ("direct_cost", "requisition") for s in h.store.staged(k, periods=[month])
            if s.project_id == project["id"]
        ]  # fmt: skip
        assert staged
        states = {h.store.latest(s.kind, [s.record_id])[s.record_id].status for s in staged}
        assert states == {"disabled"}
        wbs1 = project["project_number"]
        assert not any(
            str(d["WBS1"]).strip() == wbs1
            for v in h.box.deltek.ap_vouchers()
            for d in v["apDetail"]
        )
        h.box.mappings_path.write_text(text)
        h.sync(month, month)
        states = {h.store.latest(s.kind, [s.record_id])[s.record_id].status for s in staged}
        assert "disabled" not in states and "posted" in states
