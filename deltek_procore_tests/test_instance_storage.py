"""The embedded event log keeps its connections open and stays Dagster's own format.

A `$DAGSTER_HOME` written through `PooledSqliteEventLogStorage` (the repository's
`dagster.yaml`) must read the same through Dagster's own `SqliteEventLogStorage` and
back, and a webserver watching a run (Dagster's file watcher) must still see its events
as they are written."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from deltek_procore.cli import REPO_DAGSTER_YAML
from deltek_procore.instance_storage import ENGINES_KEPT, PooledSqliteEventLogStorage


@dg.asset
def counted(context) -> dg.MaterializeResult:  # noqa: ANN001 (Dagster reads the hint)
    context.log.info("counting")
    return dg.MaterializeResult(metadata={"n": 3})


JOB = dg.Definitions(assets=[counted], jobs=[dg.define_asset_job("count")]).resolve_job_def("count")


@pytest.fixture(autouse=True)
def dagster_home(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))


def home(tmp_path: Path, pooled: bool) -> Path:
    path = tmp_path / "dagster_home"
    path.mkdir(exist_ok=True)
    if pooled:
        shutil.copyfile(REPO_DAGSTER_YAML, path / "dagster.yaml")
    else:
        (path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    return path


def run_once(path: Path) -> str:
    with dg.DagsterInstance.from_config(str(path)) as instance:
        result = JOB.execute_in_process(instance=instance)
        assert result.success
        return result.run_id


def read_back(path: Path, run_id: str) -> tuple[list[str], str, list[str]]:
    with dg.DagsterInstance.from_config(str(path)) as instance:
        events = [e.dagster_event_type or "LOG" for e in instance.all_logs(run_id)]
        run = instance.get_run_by_id(run_id)
        latest = instance.get_latest_materialization_event(dg.AssetKey("counted"))
        assert latest is not None and latest.run_id == run_id
        return events, str(run.status), [str(type(instance.event_log_storage).__name__)]


def test_the_repository_default_names_the_pooled_storage(tmp_path) -> None:
    with dg.DagsterInstance.from_config(str(home(tmp_path, pooled=True))) as instance:
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        assert instance.event_log_storage._base_dir == str(
            tmp_path / "dagster_home" / "history" / "runs"
        )


@pytest.mark.parametrize("written_pooled", [True, False])
def test_a_home_written_by_one_storage_reads_the_same_through_the_other(
    tmp_path, written_pooled
) -> None:
    path = home(tmp_path, pooled=written_pooled)
    run_id = run_once(path)
    events, status, _ = read_back(path, run_id)
    home(tmp_path, pooled=not written_pooled)  # the other class, same files
    other_events, other_status, kind = read_back(path, run_id)
    assert other_events == events and other_status == status == "DagsterRunStatus.SUCCESS"
    assert kind == ["SqliteEventLogStorage" if written_pooled else "PooledSqliteEventLogStorage"]
    assert events.count("LOG") == 1 and len(events) > 8


def test_a_watcher_on_dagster_s_own_storage_sees_events_as_they_are_written(tmp_path) -> None:
    base = str(tmp_path / "runs")
    writer = PooledSqliteEventLogStorage(base)
    watcher = SqliteEventLogStorage(base)
    run_id = "watched-run"
    seen: list[str] = []
    arrived = threading.Event()

    def entry(message: str) -> EventLogEntry:
        return EventLogEntry(
            error_info=None, level="INFO", user_message=message, run_id=run_id,
            timestamp=time.time(), step_key=None, job_name="count", dagster_event=None,
        )  # fmt: skip

    def callback(event: EventLogEntry, _cursor: str) -> None:
        seen.append(event.user_message)
        if len(seen) == 3:
            arrived.set()

    writer.store_event(entry("first"))  # the run's file exists before anyone watches it
    try:
        watcher.watch(run_id, None, callback)
        for message in ("second", "third"):
            writer.store_event(entry(message))
        assert arrived.wait(timeout=20), f"the watcher saw only {seen}"
        assert seen == ["first", "second", "third"]
    finally:
        watcher.end_watch(run_id, callback)
        watcher.dispose()
        writer.dispose()


def test_only_a_few_database_files_stay_open(tmp_path) -> None:
    storage = PooledSqliteEventLogStorage(str(tmp_path / "runs"))
    try:
        for n in range(ENGINES_KEPT + 5):
            storage.store_event(
                EventLogEntry(
                    error_info=None,
                    level="INFO",
                    user_message="x",
                    run_id=f"run-{n}",
                    timestamp=time.time(),
                    step_key=None,
                    job_name="count",
                    dagster_event=None,
                )  # fmt: skip
            )
        assert len(storage._engines) == ENGINES_KEPT
        assert [len(storage.get_logs_for_run(f"run-{n}")) for n in range(ENGINES_KEPT + 5)] == [
            1
        ] * (ENGINES_KEPT + 5)
    finally:
        storage.dispose()
