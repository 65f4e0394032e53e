"""Two tenants on one PostgreSQL state database and one Dagster instance, proven isolated.

Issue 14, item 5. Two sandbox pairs seeded alike (same seed: the same Procore ids, vendor
numbers and invoice numbers), each with credentials of its own, differ in one record each so
that "its own documents" can be told apart. The Dagster instance is the production profile
(deploy/dagster.postgres.yaml: PostgreSQL storage, the QueuedRunCoordinator with one run per
tenant) and `dagster-daemon run` drains its queue; the runs are submitted with
`dagster job launch`, as an operator (or the sensor) would, all at once. Then each Deltek
holds exactly its own documents, each tenant's ledger and audit trail only its own rows, and
no secret of either tenant appears in any run's event log or captured output.

Skips when no PostgreSQL server answers, unless CI=true (then it fails).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml

from deltek_procore.defs.jobs import TENANT_TAG
from deltek_procore.sandbox.runner import Sandbox, sandbox_credentials, start_sandbox
from deltek_procore.state.store import StateStore
from deltek_procore.tenants import TENANT_VARIABLES, TENANTS_ENV, Tenant, load_tenants
from deltek_procore_tests.conftest import PG_BASE, _pg_engine
from deltek_procore_tests.defs.sync_harness import DONE, Harness, approved_records

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]
DEPLOY_YAML = REPO / "deploy" / "dagster.postgres.yaml"
BIN = Path(sys.executable).parent
TENANTS = ("acme", "bolt")
MONTH = "2026-08"  # the seed's busiest month at 300 records
RECORDS = 300
NEVER = "0 2 1 1 *"  # schedules that cannot fire while the test runs (once a year)
SECRET_VARIABLES = (
    "PROCORE_CLIENT_SECRET",
    "DELTEK_PASSWORD",
    "DELTEK_CLIENT_SECRET",
    "DELTEK_PROCORE_WEBHOOK_SECRET",
)
IDENTITY_VARIABLES = ("PROCORE_CLIENT_ID", "DELTEK_USERNAME", "DELTEK_CLIENT_ID")
RUN_TIMEOUT_S = 150


@pytest.fixture
def pg_db() -> Iterator[sa.engine.URL]:
    """A fresh database holding both Dagster's tables and the state store (as deployed)."""
    admin = _pg_engine()
    name = f"dp_tenants_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.engine.make_url(PG_BASE).set(database=name)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def boxes(tmp_path) -> Iterator[dict[str, Sandbox]]:
    """Both tenants' sandbox pairs: the same seed, their own ports and credentials."""
    started: dict[str, Sandbox] = {}
    try:
        for name in TENANTS:
            started[name] = start_sandbox(
                records=RECORDS,
                seed=42,
                workdir=tmp_path / name,
                credentials=sandbox_credentials(name),
                hourly_limit=10**6,
                spike_limit=10**6,
            )
        yield started
    finally:
        for box in started.values():
            box.stop()


def _unapprove_one_each(boxes: dict[str, Sandbox]) -> dict[str, int]:
    """Send a different approved subcontractor invoice of each tenant's Procore back to review:
    {tenant: the id it lacks}. Every other record is the same in both, ids, vendors and
    invoice numbers included."""
    candidates = sorted(approved_records(boxes[TENANTS[0]], "requisition", [MONTH]))
    assert len(candidates) >= 6, "the seed's month has too few approved invoices"
    lacks = {TENANTS[0]: candidates[-1], TENANTS[1]: candidates[-2]}
    for name, record_id in lacks.items():
        boxes[name].procore.set_record("requisitions", record_id, {"status": "under_review"})
    return lacks


def _tenants_file(path: Path, boxes: dict[str, Sandbox]) -> None:
    entries = []
    for name, box in boxes.items():
        env = box.env
        entries.append(
            {
                "name": name,
                "procore_company_id": env["PROCORE_COMPANY_ID"],
                "procore_api_url": env["PROCORE_API_URL"],
                "procore_auth_url": env["PROCORE_AUTH_URL"],
                "deltek_api_url": env["DELTEK_API_URL"],
                "deltek_database": env["DELTEK_DATABASE"],
                "mappings": str(box.mappings_path),
                "start_month": "2024-11",
                "nightly_cron": NEVER,
                "timezone": "UTC",
            }
        )
    path.write_text(yaml.safe_dump({"tenants": entries}, sort_keys=False), encoding="utf-8")


def _process_env(home: Path, db: sa.engine.URL, tenants_yaml: Path, boxes) -> dict[str, str]:
    """The deployment's environment: shared settings plus `<VAR>__<TENANT>` secrets; none of
    the contract's un-suffixed per-tenant variables (no tenant is named `default`)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in TENANT_VARIABLES and not k.startswith(("DAGSTER_", "DELTEK_PROCORE_"))
    }
    env.update(
        {
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_HOST": db.host or "127.0.0.1",
            "DAGSTER_PG_PORT": str(db.port or 5432),
            "DAGSTER_PG_DB": db.database or "",
            "DAGSTER_PG_USERNAME": db.username or "postgres",
            "DAGSTER_PG_PASSWORD": db.password or "",
            "DELTEK_PROCORE_STATE_URL": db.render_as_string(hide_password=False),
            TENANTS_ENV: str(tenants_yaml),
            "DELTEK_PROCORE_SUMMARY_CRON": NEVER,
            "PYTHONWARNINGS": "ignore",
        }
    )
    for name, box in boxes.items():
        suffix = "__" + name.upper()
        for variable in IDENTITY_VARIABLES + SECRET_VARIABLES:
            env[variable + suffix] = box.env[variable]
    return env


def _launch(job: str, env: dict[str, str], workspace: Path) -> subprocess.Popen:
    """`dagster job launch`: with the QueuedRunCoordinator this only enqueues the run."""
    return subprocess.Popen(
        [
            str(BIN / "dagster"), "job", "launch", "-w", str(workspace), "-j", job,
            "--tags", json.dumps({"dagster/partition": MONTH}),
            # steps in the run worker's process: the default multiprocess executor would
            # start ~20 Python processes per run (minutes); isolation does not depend on it
            "--config-json", json.dumps({"execution": {"config": {"in_process": {}}}}),
        ],
        env=env, cwd=workspace.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip


def _wait_done(instance: dg.DagsterInstance, run_ids: list[str]) -> list[dg.DagsterRun]:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    finished = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE}
    finished.add(dg.DagsterRunStatus.CANCELED)
    while True:
        runs = [instance.get_run_by_id(rid) for rid in run_ids]
        if all(r is not None and r.status in finished for r in runs):
            return runs
        if time.monotonic() > deadline:
            states = {r.run_id: r.status.value for r in runs if r is not None}
            tails = []
            for rid in run_ids:
                for entry in instance.all_logs(rid)[-6:]:
                    kind = entry.dagster_event.event_type_value if entry.dagster_event else "log"
                    tails.append(f"{rid[:8]} {kind} {entry.step_key}: {entry.user_message[:200]}")
            raise AssertionError(
                f"runs not finished after {RUN_TIMEOUT_S} s: {states}\n" + "\n".join(tails)
            )
        time.sleep(1)


def _run_text(instance: dg.DagsterInstance, run: dg.DagsterRun, home: Path) -> str:
    """Everything a run left behind: its event log, its tags and config, captured output."""
    from dagster._serdes import serialize_value

    parts = [serialize_value(entry) for entry in instance.all_logs(run.run_id)]
    parts.append(json.dumps(run.tags) + json.dumps(run.run_config, default=str))
    storage = home / "storage"
    if storage.exists():
        for path in storage.rglob("*"):
            if path.is_file() and run.run_id in str(path):
                parts.append(path.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(parts)


def test_two_tenants_sync_at_once_and_stay_isolated(tmp_path, pg_db, boxes, monkeypatch):
    began = time.monotonic()
    lacks = _unapprove_one_each(boxes)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY_YAML, home / "dagster.yaml")
    tenants_yaml = tmp_path / "tenants.yaml"
    _tenants_file(tenants_yaml, boxes)
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        yaml.safe_dump(
            {
                "load_from": [
                    {
                        "python_module": {
                            "module_name": "deltek_procore.definitions",
                            "working_directory": str(REPO),
                            "location_name": "deltek_procore",
                        }
                    }
                ]
            }
        ),
        encoding="utf-8",
    )
    env = _process_env(home, pg_db, tenants_yaml, boxes)
    tenants = {t.name: t for t in load_tenants(env)}
    assert sorted(tenants) == sorted(TENANTS)
    for key in [k for k in os.environ if k in TENANT_VARIABLES or k.startswith("DAGSTER_PG")]:
        monkeypatch.delenv(key)
    for key in ("DAGSTER_HOME", "DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_DB"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.setenv("DAGSTER_PG_USERNAME", env["DAGSTER_PG_USERNAME"])
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", env["DAGSTER_PG_PASSWORD"])

    with dg.DagsterInstance.from_config(str(home)) as instance:
        from dagster._core.run_coordinator import QueuedRunCoordinator

        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        # all at once: the first tenant twice (its second run must wait for its first: one
        # posting run per tenant), the second tenant beside them
        order = [TENANTS[0], TENANTS[1], TENANTS[0]]
        launches = [_launch(tenants[n].dagster_name("sync"), env, workspace) for n in order]
        outputs = [p.communicate(timeout=120)[0] for p in launches]
        for proc, out in zip(launches, outputs, strict=True):
            assert proc.returncode == 0, out[-3000:]
        queued = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]))
        assert len(queued) == 3, [r.status for r in instance.get_runs()]

        daemon = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)],
            env=env, cwd=tmp_path, stdout=(tmp_path / "daemon.log").open("w"),
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            runs = _wait_done(instance, [r.run_id for r in queued])
        finally:
            _stop_group(daemon)
        failed = [r.run_id for r in runs if r.status != dg.DagsterRunStatus.SUCCESS]
        assert not failed, _failure_text(instance, failed, tmp_path)

        # the queue: one run per tenant at a time, the two tenants side by side
        span = {}
        for run in runs:
            record = instance.get_run_record_by_id(run.run_id)
            span[run.run_id] = (record.start_time, record.end_time)
        by_tenant: dict[str, list[dg.DagsterRun]] = {n: [] for n in TENANTS}
        for run in sorted(runs, key=lambda r: span[r.run_id][0]):
            by_tenant[_tenant_of(run, tenants)].append(run)
        first, second = by_tenant[TENANTS[0]]
        (other,) = by_tenant[TENANTS[1]]
        assert span[second.run_id][0] >= span[first.run_id][1], "one tenant ran twice at once"
        assert span[other.run_id][0] < span[first.run_id][1], "the tenants did not run at once"
        assert span[first.run_id][0] < span[other.run_id][1], "the tenants did not run at once"
        tags = {n: {r.tags.get(TENANT_TAG) for r in by_tenant[n]} for n in TENANTS}
        assert all(len(v) == 1 and None not in v for v in tags.values()), tags
        assert tags[TENANTS[0]] != tags[TENANTS[1]], tags

        # each Deltek holds exactly its own documents; each ledger and audit trail its own rows
        url = env["DELTEK_PROCORE_STATE_URL"]
        run_ids = {n: {r.run_id for r in by_tenant[n]} for n in TENANTS}
        for name in TENANTS:
            store = StateStore(url, tenant=name)
            try:
                _assert_tenant_exact(name, boxes[name], store, run_ids[name], instance, home)
            finally:
                store.dispose()
        _assert_own_documents(boxes, lacks, url)

        # no secret of one tenant in the other's runs; no secret at all in any run
        secrets_of = {n: [boxes[n].env[v] for v in SECRET_VARIABLES] for n in TENANTS}
        identity_of = {
            n: [boxes[n].env[v] for v in IDENTITY_VARIABLES]
            + [boxes[n].env["PROCORE_API_URL"], boxes[n].env["DELTEK_API_URL"]]
            for n in TENANTS
        }
        everyone = [s for values in secrets_of.values() for s in values]
        for name in TENANTS:
            others = [n for n in TENANTS if n != name]
            for run in by_tenant[name]:
                text = _run_text(instance, run, home)
                assert dg.DagsterEventType.RUN_SUCCESS.value in text  # the whole log was read
                leaked = [s[:12] + "..." for s in everyone if s in text]
                assert not leaked, f"{name} run {run.run_id}: secrets in its logs: {leaked}"
                crossed = [v for n in others for v in identity_of[n] if v in text]
                assert not crossed, f"{name} run {run.run_id} reached another tenant: {crossed}"
    elapsed = time.monotonic() - began
    print(f"two-tenant isolation run: {elapsed:.0f} s")


def _stop_group(daemon: subprocess.Popen) -> None:
    """Stop the daemon, then whatever it started in its process group (its code server and
    any run still going when a test fails), so nothing outlives the test."""
    os.killpg(daemon.pid, signal.SIGINT)
    try:
        daemon.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(daemon.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    daemon.wait()


def _tenant_of(run: dg.DagsterRun, tenants: dict[str, Tenant]) -> str:
    for name, tenant in tenants.items():
        if run.job_name == tenant.dagster_name("sync"):
            return name
    raise AssertionError(f"run {run.run_id} of job {run.job_name}: no tenant's sync job")


def _assert_tenant_exact(
    name: str,
    box: Sandbox,
    store: StateStore,
    own_runs: set[str],
    instance: dg.DagsterInstance,
    home: Path,
) -> None:
    from deltek_procore_tests.defs.sync_harness import assert_deltek_exact

    h = Harness(box=box, store=store, instance=instance, home=home, state_url=store.url)
    counts = assert_deltek_exact(h, [MONTH])
    assert counts.get("posted", 0) + counts.get("adopted", 0) >= 10, counts
    rows = store.ledger_rows()
    assert rows, f"{name}: empty ledger"
    foreign = sorted({r.run_id for r in rows if r.run_id and r.run_id not in own_runs})
    assert not foreign, f"{name}: ledger rows written by other runs: {foreign}"
    # a record approved only in the other tenant's Procore is no row of this one's
    approved = set(approved_records(box, "requisition", [MONTH]))
    done = {r.record_id for r in rows if r.kind == "requisition" and r.status in DONE}
    assert done <= approved, (
        f"{name}: ledger holds invoices its Procore never approved: {sorted(done - approved)}"
    )
    trail = store.audit_trail()
    assert trail, f"{name}: empty audit trail"
    foreign = sorted({e["run_id"] for e in trail if e["run_id"] and e["run_id"] not in own_runs})
    assert not foreign, f"{name}: audit rows written by other runs: {foreign}"


def _assert_own_documents(boxes: dict[str, Sandbox], lacks: dict[str, int], url: str) -> None:
    """The invoice each tenant lacks is posted in the other's Deltek and absent from its own."""
    for name, record_id in lacks.items():
        (other,) = [n for n in TENANTS if n != name]
        store = StateStore(url, tenant=other)
        try:
            row = store.latest("requisition", [record_id]).get(record_id)
        finally:
            store.dispose()
        assert row is not None and row.status in DONE, f"{other}: invoice {record_id} not posted"
        key = (row.deltek_vendor, row.document)
        held = {
            n: {(v["Vendor"], v["Invoice"]) for v in boxes[n].deltek.ap_vouchers()} for n in TENANTS
        }
        assert key in held[other], f"{other}'s Deltek lacks its own invoice {key}"
        assert key not in held[name], f"{name}'s Deltek holds {key}, approved only for {other}"


def _failure_text(instance: dg.DagsterInstance, run_ids: list[str], tmp_path: Path) -> str:
    lines = []
    for rid in run_ids:
        for entry in instance.all_logs(rid):
            ev = entry.dagster_event
            if ev is not None and ev.is_failure and ev.event_specific_data is not None:
                error = getattr(ev.event_specific_data, "error", None)
                if error is not None:
                    lines.append(f"{rid[:8]} {ev.step_key}: {error.message.strip()[:800]}")
            elif ev is not None and ev.event_type_value == "ENGINE_EVENT" and entry.user_message:
                lines.append(f"{rid[:8]} engine: {entry.user_message[:300]}")
    daemon_log = tmp_path / "daemon.log"
    if daemon_log.exists():
        lines.append("daemon: " + daemon_log.read_text()[-2000:])
    return "\n".join(lines)
