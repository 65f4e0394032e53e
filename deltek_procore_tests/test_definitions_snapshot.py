"""The definitions cannot drift silently: a checked-in snapshot of the graph for one tenant
(no tenants file) and for two tenants (a tenants file).

The snapshot (deltek_procore_tests/snapshots/definitions.json) lists the sorted asset keys
with their group, partitions start and pool, the check keys, the jobs with the assets they
select and their tags, the schedules with cron and timezone and the sensors with their job.
When the graph changes on purpose, regenerate it and review the diff:

    DELTEK_PROCORE_UPDATE_SNAPSHOTS=1 .venv/bin/pytest deltek_procore_tests/test_definitions_snapshot.py
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from deltek_procore import tenants as tenants_module
from deltek_procore.definitions import build_definitions
from deltek_procore.tenants import TENANTS_ENV, load_tenants

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"
UPDATE_ENV = "DELTEK_PROCORE_UPDATE_SNAPSHOTS"
UPDATE = bool(os.environ.get(UPDATE_ENV))  # read before the fixtures clear DELTEK_* variables
#: Settings the graph reads from the environment when it is built: fixed for the snapshot.
SETTINGS = {
    "DELTEK_API_URL": "https://acme.deltekfirst.com/ACME/api",
    "DELTEK_PROCORE_START_MONTH": "2024-01",
    "DELTEK_PROCORE_NIGHTLY_CRON": "0 2 * * *",
    "DELTEK_PROCORE_TIMEZONE": "UTC",
    "DELTEK_PROCORE_SUMMARY_CRON": "0 7 * * *",
}
TWO_TENANTS = """\
tenants:
  - name: acme
    procore_company_id: "4264"
    deltek_api_url: https://acme.deltekfirst.com/ACME/api
    deltek_database: ACME
    mappings: acme.mappings.yaml
    start_month: "2024-01"
    nightly_cron: "0 2 * * *"
    timezone: America/Chicago
  - name: beta
    procore_company_id: "5150"
    deltek_api_url: https://beta.deltekfirst.com/BETA/api
    deltek_database: BETA
    mappings: beta.mappings.yaml
    start_month: "2025-03"
    nightly_cron: "30 3 * * *"
    timezone: Europe/London
"""


def snapshot(defs: dg.Definitions) -> dict[str, Any]:
    """What the graph is, in sorted plain data (names, keys, calendars; no code)."""
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        partitions = node.partitions_def
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "partitions_start": partitions.get_first_partition_key() if partitions else None,
            "pool": sorted(node.pools) if node.pools else None,
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
        }
    checks = sorted(f"{k.asset_key.to_user_string()}:{k.name}" for k in graph.asset_check_keys)
    jobs = {}
    for job in sorted(defs.resolve_all_job_defs(), key=lambda j: j.name):
        if job.name == "__ASSET_JOB":
            continue
        selected = job.asset_layer.selected_asset_keys if job.asset_layer else set()
        jobs[job.name] = {
            "assets": sorted(k.to_user_string() for k in selected),
            "checks": len(job.asset_layer.asset_graph.asset_check_keys) if selected else 0,
            "ops": sorted(n.name for n in job.nodes) if not selected else None,
            "tags": dict(sorted(job.tags.items())),
        }
    repo = defs.get_repository_def()
    schedules = {
        s.name: {"job": s.job_name, "cron": s.cron_schedule, "timezone": s.execution_timezone}
        for s in sorted(repo.schedule_defs, key=lambda s: s.name)
    }
    sensors = {
        s.name: {
            "type": type(s).__name__,
            "jobs": sorted({t.job_name for t in s.targets}),
        }
        for s in sorted(repo.sensor_defs, key=lambda s: s.name)
    }
    return {
        "assets": assets,
        "checks": checks,
        "jobs": jobs,
        "schedules": schedules,
        "sensors": sensors,
    }


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("DELTEK_", "PROCORE_")):
            monkeypatch.delenv(name)
    for name, value in SETTINGS.items():
        monkeypatch.setenv(name, value)
    tenants_module.clear_cache()


def _two_tenants(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "tenants.yaml"
    path.write_text(TWO_TENANTS)
    monkeypatch.setenv(TENANTS_ENV, str(path))


def _compare(name: str, actual: dict[str, Any]) -> None:
    stored = json.loads(SNAPSHOT.read_text()) if SNAPSHOT.exists() else {}
    if UPDATE:
        stored[name] = actual
        SNAPSHOT.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")
        return
    expected = stored.get(name)
    if actual != expected:
        diff = "\n".join(
            difflib.unified_diff(
                json.dumps(expected, indent=2, sort_keys=True).splitlines(),
                json.dumps(actual, indent=2, sort_keys=True).splitlines(),
                "snapshot",
                "definitions now",
                lineterm="",
            )
        )
        pytest.fail(
            f"the Dagster definitions ({name}) differ from {SNAPSHOT.name}. If the change is "
            f"intended, regenerate with {UPDATE_ENV}=1 .venv/bin/pytest {Path(__file__).name} "
            f"and review the diff:\n{diff}"
        )


def test_one_tenant_without_a_tenants_file(settings) -> None:
    """Today's graph: no prefix, today's job, sensor and schedule names."""
    _compare("one_tenant", snapshot(build_definitions(env=dict(os.environ))))


def test_two_tenants_from_a_tenants_file(settings, tmp_path, monkeypatch) -> None:
    _two_tenants(tmp_path, monkeypatch)
    _compare("two_tenants", snapshot(build_definitions(env=dict(os.environ))))


def test_the_code_location_itself_matches_the_one_tenant_snapshot(settings) -> None:
    """`defs` as `dagster` loads it (the module-level objects) is the snapshot's graph."""
    from deltek_procore.definitions import defs

    stored = json.loads(SNAPSHOT.read_text())["one_tenant"]
    actual = snapshot(defs)
    # the module was imported with whatever environment the test run has: compare names only
    assert sorted(actual["assets"]) == sorted(stored["assets"])
    assert actual["checks"] == stored["checks"]
    assert sorted(actual["jobs"]) == sorted(stored["jobs"])
    assert sorted(actual["schedules"]) == sorted(stored["schedules"])
    assert actual["sensors"] == stored["sensors"]


def test_each_tenants_job_selects_only_its_own_assets(settings, tmp_path, monkeypatch) -> None:
    _two_tenants(tmp_path, monkeypatch)
    defs = build_definitions(env=dict(os.environ))
    all_keys = defs.resolve_asset_graph().get_all_asset_keys()
    for tenant in load_tenants():
        job = defs.resolve_job_def(tenant.dagster_name("sync"))
        selected = job.asset_layer.selected_asset_keys
        own = {k for k in all_keys if k.path[0] == tenant.name}
        assert selected == own and len(own) == 17, tenant.name
        checks = job.asset_layer.asset_graph.asset_check_keys
        assert checks and all(c.asset_key.path[0] == tenant.name for c in checks)
        assert job.tags["deltek-procore/tenant"] == tenant.name
        # the sensor and the schedules of a tenant start only that tenant's job
        for name in ("procore_webhook_sensor", "nightly_catch_up"):
            sensor = defs.resolve_sensor_def(tenant.dagster_name(name))
            assert {t.job_name for t in sensor.targets} == {job.name}
        schedule = defs.resolve_schedule_def(tenant.dagster_name("nightly_reconciliation"))
        assert schedule.job_name == job.name
    assert "daily_summary" in {k.to_user_string() for k in all_keys}


@pytest.mark.parametrize("with_file", [False, True], ids=["no tenants file", "two tenants"])
def test_dagster_loads_the_code_location(settings, tmp_path, monkeypatch, with_file) -> None:
    """`dagster definitions validate -m deltek_procore.definitions`, as a deployment loads it."""
    import subprocess
    import sys

    if with_file:
        _two_tenants(tmp_path, monkeypatch)
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    dagster = Path(sys.executable).with_name("dagster")
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-m", "deltek_procore.definitions"],
        env={**os.environ, "DAGSTER_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Validation successful" in result.stdout + result.stderr
