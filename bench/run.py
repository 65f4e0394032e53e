"""Benchmark: the product's own path against the physical minimum of API calls.

Usage:  python bench/run.py --records 1000 10000 [100000] [--latency-ms 50] [--naive-limit 500]

Per size N, each on a fresh seeded sandbox (the simulators in their own process, so the
connector's memory is measured alone), with `latency_ms` added to every call:
  dagster : the `sync` job in-process through `deltek_procore.cli.run_sync_job(periods)`,
            the entry point of `deltek-procore backfill`, over every seeded month; then
            1 % of the records change in Procore and the night runs as the schedule plans
            it (the nightly window run, then the catch-up run its sensor requests);
  layers  : the same steps called directly, in the assets' order (Dagster's own cost);
  naive   : bench/naive.py, one show call per record and one POST per voucher.
Calls are counted per endpoint and divided by the physical minimum for the data seeded
(bench/minimum.py). Then the fixed cost of a run: a one-month sync of a 400-record
sandbox without latency, through Dagster and as a compact script. Prints the table and
PASS/FAIL lines; exit status 1 if a target fails. See bench/README.md.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import minimum  # noqa: E402

HOUR_S = 3600.0
HOURLY_BUDGET = 3600
SPIKE_LIMIT = 25  # Procore's documented spike example (25 per 10 s)
TARGET_PROCORE = 1.10  # our calls / the minimum
TARGET_DELTEK = 1.25
TARGET_PEAK_MB = 500
TARGET_SPEEDUP = 10.0
TARGET_FIXED = 1.5  # Dagster path / layers path, one month without latency
NIGHT_FRACTION = 0.01
TRACE_MEMORY = bool(os.environ.get("BENCH_TRACE_MEMORY"))  # peak memory after each layer call
FIXED_RECORDS = 400
_ID = re.compile(r"/\d+(?=/|$)")


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_now() -> float:
    """Resident memory right now (Linux), to see what a step keeps after it returns."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0


# ---------------------------------------------------------------- time compression
@dataclass(frozen=True)
class ProcoreTime:
    """Procore's rate-limit clock, compressed: one Procore hour lasts `hour_s` real seconds.

    The simulator and the client share it (same origin, same factor), so X-Rate-Limit-Reset,
    Retry-After, the client's pacing waits and the token lifetime all stay consistent.
    """

    origin: float
    factor: float

    def now(self) -> float:
        return self.origin + (time.time() - self.origin) * self.factor

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.factor)


def expected_wall_s(records: int, latency_ms: float) -> float:
    """A rough forecast of the Dagster run's wall time, used only to scale Procore's hour
    (about 12 ms per record at 50 ms latency plus a fixed 20 s on 2 cores)."""
    return 20.0 + records * 0.012 * max(latency_ms, 1.0) / 50.0


# ---------------------------------------------------------------- counting sessions
def endpoint_key(method: str, url: str) -> str:
    path = requests.utils.urlparse(url).path
    return f"{method.upper()} {_ID.sub('/{id}', path)}"


class CountingSession(requests.Session):
    """Counts requests per endpoint and the 429s received (what the client saw on the wire)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()
        self.throttled: int = 0
        self._lock = threading.Lock()  # the client reads details on several threads

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        with self._lock:
            self.calls[endpoint_key(method, url)] += 1
        response = super().request(method, url, *args, **kwargs)
        if response.status_code == 429:
            with self._lock:
                self.throttled += 1
        return response


# ---------------------------------------------------------------- the sandbox process
@dataclass
class SandboxSpec:
    records: int
    seed: int
    latency_ms: float
    hourly_limit: int
    spike_limit: int
    time: ProcoreTime
    workdir: str


def deltek_holdings(sim: Any) -> dict[str, Any]:
    """What the Deltek simulator holds now, as the minimum's look-up needs it."""
    state = sim.state()
    unposted: dict[str, list[str]] = {}
    for kind, batches in state["batches"].items():
        names = [str(b.get("Batch")) for b in batches if str(b.get("Posted")) != "Y"]
        unposted[kind.upper()] = names
    ledger_rows: dict[str, dict[int, int]] = {}
    for transtype, rows in state["ledger"].items():
        ledger_rows[transtype] = dict(Counter(int(r.get("Period") or 0) for r in rows))
    return {
        "unposted": unposted,
        "landing": {k: len(v) for k, v in unposted.items()},
        "ledger_rows": ledger_rows,
        "projects": len(state["projects"]),
        "firms": len(state["firms"]),
        "gl_rows": len(state["gl_summary"]),
    }


APPROVE = {
    "requisitions": ("approved", {"under_review", "submitted", "pending", "draft"}),
    "direct_costs": ("approved", {"pending", "draft"}),
    "work_order_contracts": ("Approved", {"Draft", "Out For Signature"}),
    "purchase_order_contracts": ("Approved", {"Draft", "Processing", "Submitted"}),
    "commitment_change_orders": ("approved", {"pending", "draft", "pricing"}),
}


def change_records(box: Any, fraction: float, seed: int) -> list[tuple[str, int, str]]:
    """A day in Procore: `fraction` of the spend records change, half of them approvals of
    records that were waiting, half edits of others that the connector does not read (their
    updated_at moves, so the nightly poll must look at them). Stamped with real time: the
    nightly window is computed from the wall clock, not from the compressed Procore one."""
    from deltek_procore.sandbox.procore_sim import iso_utc

    rng = random.Random(seed)
    data = box.data.procore
    waiting = [
        (k, r["id"]) for k in APPROVE for r in data.get(k, []) if r.get("status") in APPROVE[k][1]
    ]
    others = [
        (k, r["id"]) for k in APPROVE for r in data.get(k, []) if (k, r["id"]) not in set(waiting)
    ]
    count = max(2, round((len(waiting) + len(others)) * fraction))
    # half approvals (spend that must post tonight), half edits of other records
    chosen = rng.sample(waiting, min(len(waiting), count // 2))
    chosen += rng.sample(others, count - len(chosen))
    sim = box.procore
    compressed, sim.clock = sim.clock, time.time
    out = []
    try:
        for key, record_id in sorted(chosen):
            record = sim.by_id[key][record_id]
            approved, waiting = APPROVE[key]
            if record.get("status") in waiting:
                sim.set_record(key, record_id, {"status": approved})
                out.append((key, record_id, "approved"))
            else:
                sim.set_record(key, record_id, {"bench_note": "edited"})
                out.append((key, record_id, "edited"))
            # set_record gives each edit its own later second; a day's edits in Procore
            # carry the time they were made, which is now
            record["updated_at"] = iso_utc(time.time())
    finally:
        sim.clock = compressed
    return out


def _sandbox_main(spec: SandboxSpec, conn: Any) -> None:
    """Child process: serve both simulators until told to stop; answer questions."""
    from deltek_procore.sandbox.faults import Faults, FaultSettings
    from deltek_procore.sandbox.runner import sandbox_periods, start_sandbox

    try:
        box = start_sandbox(
            records=spec.records,
            seed=spec.seed,
            workdir=spec.workdir,
            procore_faults=Faults(FaultSettings(latency_ms=spec.latency_ms)),
            deltek_faults=Faults(FaultSettings(latency_ms=spec.latency_ms)),
            hourly_limit=spec.hourly_limit,
            spike_limit=spec.spike_limit,
            clock=spec.time.now,
        )
        conn.send(
            {
                "env": box.env,
                "periods": sandbox_periods(box),
                "counts": {k: len(v) for k, v in box.data.procore.items()},
                "seeded_s": box.started_in_s,
                "minimum": minimum.procore_minimum(box.data.procore),
            }
        )
    except Exception:  # noqa: BLE001 - report to the parent, which prints it
        conn.send({"error": traceback.format_exc()})
        return
    while True:
        command, *args = conn.recv()
        try:
            if command == "stats":
                answer: Any = {
                    "deltek": box.deltek.call_counts(),
                    "maxrss_mb": mb(),
                    "deltek_held": deltek_holdings(box.deltek),
                }
            elif command == "change":
                changed = change_records(box, *args)
                answer = {
                    "changed": changed,
                    "minimum": minimum.procore_minimum(
                        box.data.procore, [(k, i) for k, i, _ in changed]
                    ),
                }
            elif command == "stop":
                box.stop()
                conn.send("stopped")
                return
            else:
                answer = {"error": f"unknown command {command!r}"}
        except Exception:  # noqa: BLE001
            answer = {"error": traceback.format_exc()}
        conn.send(answer)


class SandboxProcess:
    """The sandbox in its own process, so its memory and GIL are not the connector's."""

    def __init__(self, spec: SandboxSpec) -> None:
        ctx = mp.get_context("fork")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_sandbox_main, args=(spec, child), daemon=True)
        self._proc.start()
        hello = self._conn.recv()
        if "error" in hello:
            raise RuntimeError("sandbox failed to start:\n" + hello["error"])
        self.env: dict[str, str] = hello["env"]
        self.periods: list[str] = hello["periods"]
        self.counts: dict[str, int] = hello["counts"]
        self.seeded_s: float = hello["seeded_s"]
        self.minimum: dict[str, int] = hello["minimum"]

    def ask(self, *command: Any) -> Any:
        self._conn.send(command)
        answer = self._conn.recv()
        if isinstance(answer, dict) and "error" in answer:
            raise RuntimeError("sandbox: " + answer["error"])
        return answer

    def stop(self) -> None:
        try:
            self._conn.send(("stop",))
            self._conn.recv()
        finally:
            self._proc.join(15)
            if self._proc.is_alive():
                self._proc.terminate()


# ---------------------------------------------------------------- clients
def procore_client(env: dict[str, str], ptime: ProcoreTime) -> Any:
    from deltek_procore.procore.client import ProcoreClient, ProcoreSettings

    settings = ProcoreSettings(
        auth_url=env["PROCORE_AUTH_URL"],
        api_url=env["PROCORE_API_URL"],
        client_id=env["PROCORE_CLIENT_ID"],
        client_secret=env["PROCORE_CLIENT_SECRET"],
        company_id=int(env["PROCORE_COMPANY_ID"]),
    )
    return ProcoreClient(settings, session=CountingSession(), clock=ptime.now, sleep=ptime.sleep)


def deltek_client(env: dict[str, str]) -> Any:
    from deltek_procore.deltek.client import DeltekClient, DeltekSettings

    settings = DeltekSettings(
        api_url=env["DELTEK_API_URL"],
        username=env["DELTEK_USERNAME"],
        password=env["DELTEK_PASSWORD"],
        database=env["DELTEK_DATABASE"],
        client_id=env["DELTEK_CLIENT_ID"],
        client_secret=env["DELTEK_CLIENT_SECRET"],
    )
    return DeltekClient(settings, session=CountingSession())


class Clients:
    """Every client the product builds in this process, built with counting sessions."""

    def __init__(self, env: dict[str, str], ptime: ProcoreTime) -> None:
        self.env, self.ptime = env, ptime
        self.procore: list[Any] = []
        self.deltek: list[Any] = []

    def new_procore(self, env: Any = None) -> Any:
        self.procore.append(procore_client(self.env, self.ptime))
        return self.procore[-1]

    def new_deltek(self, env: Any = None) -> Any:
        self.deltek.append(deltek_client(self.env))
        return self.deltek[-1]

    def procore_calls(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for c in self.procore:
            out.update(c._session.calls)  # noqa: SLF001 - our own counting session
        return out

    def throttled(self) -> int:
        return sum(c._session.throttled for c in self.procore)  # noqa: SLF001

    def pacing_s(self) -> float:
        return sum(c.stats.waits_s for c in self.procore) / self.ptime.factor


# ---------------------------------------------------------------- time in the layers
class LayerClock:
    """Time spent inside the plain layers (ingest, maps, postings, reconciliation, checks),
    measured by wrapping the functions the assets call; the rest of a run is Dagster's."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.by_name: Counter[str] = Counter()
        self._depth = 0

    def wrap(self, owner: Any, name: str) -> None:
        inner = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            self._depth += 1
            began = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    spent = time.perf_counter() - began
                    self.seconds += spent
                    self.by_name[name] += spent
                    if TRACE_MEMORY:
                        log(
                            f"    {name}: {spent:.1f} s, maxrss {mb():.0f} MB, now {rss_now():.0f} MB"
                        )

        setattr(owner, name, timed)


def instrument(clients: Clients) -> LayerClock:
    """Route the product's client construction through `clients` and time the layers."""
    from deltek_procore import connections
    from deltek_procore.defs import assets, checks
    from deltek_procore.pipeline import ingest, reference

    connections.procore_client = clients.new_procore
    connections.deltek_client = clients.new_deltek
    clock = LayerClock()
    for name in ("ingest_company", "ingest_projects"):
        clock.wrap(ingest, name)
    for name in ("build_project_map", "build_vendor_map", "build_gl_map"):
        clock.wrap(reference, name)
    for name in ("run_postings", "reconcile_period"):
        clock.wrap(assets, name)
    for name in ("check_deliveries", "missing_from_ledger"):
        clock.wrap(checks, name)
    return clock


def wrap_deltek_reads(clock: LayerClock, client: Any) -> None:
    """The deltek_* reference assets call the client directly: time those calls too."""
    for name in ("projects", "firms", "accounts"):
        clock.wrap(client, name)


# ---------------------------------------------------------------- the Dagster path
def _env_for(sandbox: SandboxProcess, workdir: str) -> None:
    os.environ.update(sandbox.env)
    os.environ["DAGSTER_HOME"] = os.path.join(workdir, "dagster_home")
    os.environ["DELTEK_PROCORE_STATE_URL"] = f"sqlite:///{workdir}/state.db"
    os.environ["DELTEK_PROCORE_START_MONTH"] = sandbox.periods[0]


def step_times(run_id: str) -> tuple[dict[str, float], int]:
    """Per step wall time from the run's event log, and how many events it wrote."""
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        records = instance.all_logs(run_id)
    started: dict[str, float] = {}
    out: dict[str, float] = {}
    for entry in records:
        kind = entry.dagster_event.event_type_value if entry.dagster_event else None
        if kind == "STEP_START":
            started[entry.step_key] = entry.timestamp
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE") and entry.step_key in started:
            out[entry.step_key] = entry.timestamp - started[entry.step_key]
    return out, len(records)


@dataclass
class RunFigures:
    """One run (or one night of runs) of the product."""

    wall_s: float = 0.0
    layers_s: float = 0.0
    procore: dict[str, int] = field(default_factory=dict)
    deltek: dict[str, int] = field(default_factory=dict)
    throttled: int = 0
    pacing_s: float = 0.0
    by_period: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[Any] = field(default_factory=list)
    steps: dict[str, float] = field(default_factory=dict)
    events: int = 0
    runs: int = 0
    deltek_before: dict[str, Any] = field(default_factory=dict)
    months: list[str] = field(default_factory=list)
    firms_created: int = 0
    changed: list[Any] = field(default_factory=list)
    minimum_procore: dict[str, int] = field(default_factory=dict)
    batch_size: int = 50


class Measure:
    """Diff the counters around one run or one night."""

    def __init__(self, sandbox: SandboxProcess, clients: Clients, clock: LayerClock) -> None:
        self.sandbox, self.clients, self.clock = sandbox, clients, clock

    def __enter__(self) -> RunFigures:
        self.fig = RunFigures()
        stats = self.sandbox.ask("stats")
        self.fig.deltek_before = stats["deltek_held"]
        self._deltek0 = Counter(stats["deltek"])
        self._procore0 = self.clients.procore_calls()
        self._throttled0 = self.clients.throttled()
        self._pacing0 = self.clients.pacing_s()
        self._layers0 = self.clock.seconds
        self._began = time.perf_counter()
        return self.fig

    def __exit__(self, *exc: object) -> None:
        fig = self.fig
        fig.wall_s = time.perf_counter() - self._began
        fig.layers_s = self.clock.seconds - self._layers0
        fig.procore = dict(self.clients.procore_calls() - self._procore0)
        stats = self.sandbox.ask("stats")
        fig.deltek = dict(Counter(stats["deltek"]) - self._deltek0)
        fig.firms_created = fig.deltek.get("POST firm", 0)
        fig.throttled = self.clients.throttled() - self._throttled0
        fig.pacing_s = self.clients.pacing_s() - self._pacing0


def _absorb(fig: RunFigures, run_id: str, reports: dict[str, Any]) -> None:
    fig.runs += 1
    for name, report in reports.items():
        if name == "failures":
            fig.failures += report
            continue
        if not isinstance(report, dict) or "counts" not in report:
            continue  # not a posting step's report (e.g. the firms created)
        months = fig.by_period.setdefault(name, {})
        for month, counts in report.get("by_period", {}).items():
            for status, n in counts.items():
                months.setdefault(month, {})[status] = months.get(month, {}).get(status, 0) + n
        total = fig.counts.setdefault(name, {})
        for status, n in report.get("counts", {}).items():
            total[str(status)] = total.get(str(status), 0) + n
    steps, events = step_times(run_id)
    for step, spent in steps.items():
        fig.steps[step] = fig.steps.get(step, 0.0) + spent
    fig.events += events


def run_request(request: Any) -> tuple[str, dict[str, Any]]:
    """Execute one RunRequest of the schedule or sensor in-process, as the daemon would
    launch it; returns the run id and the posting reports, as `run_sync_job` does."""
    import dagster as dg

    from deltek_procore.cli import ensure_dagster_home
    from deltek_procore.definitions import defs
    from deltek_procore.pipeline.postings import report_key
    from deltek_procore.state.store import StateStore

    ensure_dagster_home()
    run_config = dict(request.run_config or {})
    run_config["loggers"] = {"console": {"config": {"log_level": "WARNING"}}}
    kwargs: dict[str, Any] = {
        "run_config": run_config,
        "tags": dict(request.tags or {}),
        "raise_on_error": False,
    }
    if request.partition_key:
        kwargs["partition_key"] = request.partition_key
    if request.asset_selection:
        kwargs["asset_selection"] = list(request.asset_selection)
    with dg.DagsterInstance.get() as instance:
        result = defs.resolve_job_def("sync").execute_in_process(instance=instance, **kwargs)
        failures = [
            {"step": ev.step_key, "error": ev.event_specific_data.error.message.strip()[:300]}
            for ev in result.all_events
            if ev.event_type_value == "STEP_FAILURE"
        ]
    store = StateStore()
    reports: dict[str, Any] = {}
    for name in ("deltek_ap_invoices", "deltek_commitment_journal_entries"):
        report = store.get_reference(report_key(name, result.run_id))
        if report:
            reports[name] = report
    if failures:
        reports["failures"] = failures
    return result.run_id, reports


def night_requests(stage: str, window_run_id: str | None = None) -> list[Any]:
    """The night's run requests from the product's own schedule and sensor logic: the
    window run (stage "window"), then the catch-up its run-status sensor asks for."""
    import dagster as dg

    from deltek_procore.defs.resources import MappingResource, StateStoreResource
    from deltek_procore.defs.schedules import nightly_catch_up, nightly_reconciliation

    resources = {"state": StateStoreResource(), "mapping": MappingResource()}
    if stage == "window":
        context = dg.build_schedule_context(
            scheduled_execution_time=datetime.now(timezone.utc), resources=resources
        )
        requests_ = nightly_reconciliation(context)
        return [r for r in requests_ if r.tags.get("deltek-procore/nightly-window")]
    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(window_run_id)
        event = next(
            e.dagster_event
            for e in instance.all_logs(window_run_id)
            if e.dagster_event and e.dagster_event.event_type_value == "PIPELINE_SUCCESS"
        )
        context = dg.build_run_status_sensor_context(
            sensor_name="nightly_catch_up",
            dagster_instance=instance,
            dagster_run=run,
            dagster_event=event,
            resources=resources,
        )
        answer = nightly_catch_up(context)
    return [] if isinstance(answer, dg.SkipReason) or answer is None else list(answer)


def run_dagster(
    sandbox: SandboxProcess, ptime: ProcoreTime, workdir: str, args: dict[str, Any]
) -> dict[str, Any]:
    """The product as users run it: a backfill of every month, then one night."""
    _env_for(sandbox, workdir)
    clients = Clients(sandbox.env, ptime)
    imported = time.perf_counter()
    import dagster  # noqa: F401 - timed: Dagster's import is part of a run's fixed cost

    from deltek_procore.cli import run_sync_job
    from deltek_procore.mapping.config import load_mapping

    clock = instrument(clients)
    import_s = time.perf_counter() - imported
    cold_s = warm_up(workdir) if args.get("warm") else None
    original = clients.new_deltek

    def new_deltek(env: Any = None) -> Any:
        client = original(env)
        wrap_deltek_reads(clock, client)
        return client

    clients.new_deltek = new_deltek  # type: ignore[method-assign]
    from deltek_procore import connections

    connections.deltek_client = new_deltek
    batch_size = load_mapping(sandbox.env["DELTEK_PROCORE_MAPPINGS"]).defaults.batch_size
    measure = Measure(sandbox, clients, clock)
    periods = _periods(sandbox, args)
    profile = args.get("profile")
    with measure as first:
        first.months = periods
        log(f"  [dagster] backfill {periods[0]}..{periods[-1]} ({len(periods)} months)")
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            ok, run_id, reports = profiler.runcall(run_sync_job, periods)
            profiler.dump_stats(profile)
        else:
            ok, run_id, reports = run_sync_job(periods)
    first.minimum_procore = sandbox.minimum
    first.batch_size = batch_size
    _absorb(first, run_id, reports)
    first_rss = mb()
    log(f"  [dagster] backfill done in {first.wall_s:.1f} s (ok={ok}); maxrss {first_rss:.0f} MB")
    out: dict[str, Any] = {
        "first": first,
        "import_s": import_s,
        "first_rss": first_rss,
        "cold_s": cold_s,
    }
    if args.get("night", True):
        change = sandbox.ask("change", NIGHT_FRACTION, 7)
        with measure as night:
            for request in night_requests("window"):
                log(f"  [dagster] nightly window run {request.tags}")
                window_id, reports = run_request(request)
                _absorb(night, window_id, reports)
                night.months += _months_of(request)
                for follow in night_requests("catch-up", window_id):
                    log(f"  [dagster] catch-up run {follow.tags}")
                    rid, reports = run_request(follow)
                    _absorb(night, rid, reports)
                    night.months += _months_of(follow)
        night.changed = change["changed"]
        night.minimum_procore = change["minimum"]
        night.batch_size = batch_size
        out["night"] = night
        log(f"  [dagster] night done in {night.wall_s:.1f} s ({night.runs} runs)")
    out["maxrss_mb"] = mb()
    out["layer_names"] = dict(clock.by_name)
    return out


def warm_up(workdir: str, dagster: bool = True) -> float:
    """Create the Dagster instance's storage and the state database once, as any run after
    the very first finds them; returns how long that one-time creation took."""
    began = time.perf_counter()
    from deltek_procore.state.store import StateStore

    if dagster:
        import dagster as dg

        from deltek_procore.cli import ensure_dagster_home

        ensure_dagster_home()
        with dg.DagsterInstance.get():
            pass
        StateStore().dispose()
    else:
        StateStore(f"sqlite:///{workdir}/layers-state.db").dispose()
    return time.perf_counter() - began


def _periods(sandbox: SandboxProcess, args: dict[str, Any]) -> list[str]:
    """Every seeded month (a backfill), or the last one (the fixed-cost sync)."""
    return sandbox.periods[-1:] if args.get("last_month") else list(sandbox.periods)


def _months_of(request: Any) -> list[str]:
    from deltek_procore.posting.periods import periods_between

    if request.partition_key:
        return [request.partition_key]
    tags = request.tags
    return periods_between(
        tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]
    )


# ---------------------------------------------------------------- the layers alone
POSTABLE = ("requisition", "direct_cost", "work_order", "purchase_order", "change_order")


def run_layers(
    sandbox: SandboxProcess, ptime: ProcoreTime, workdir: str, args: dict[str, Any]
) -> dict[str, Any]:
    """What the job's steps do, called directly in the assets' order: Dagster's cost is
    the difference. Same clients, same state store, same Deltek holdings sharing."""
    imported = time.perf_counter()
    from deltek_procore.mapping.config import load_mapping
    from deltek_procore.pipeline import ingest, reference
    from deltek_procore.pipeline.completeness import check_deliveries, missing_from_ledger
    from deltek_procore.pipeline.postings import AP_KINDS, JE_KINDS, run_postings
    from deltek_procore.pipeline.reconciliation import reconcile_period
    from deltek_procore.posting.lookup import DeltekHoldings
    from deltek_procore.state.store import StateStore

    import_s = time.perf_counter() - imported
    cold_s = warm_up(workdir, dagster=False) if args.get("warm") else None
    clients = Clients(sandbox.env, ptime)
    clock = LayerClock()
    periods = _periods(sandbox, args)
    measure = Measure(sandbox, clients, clock)
    tenant = f"{sandbox.env['DELTEK_API_URL'].rstrip('/').lower()}|{sandbox.env['DELTEK_DATABASE']}"
    with measure as fig:
        procore, deltek = clients.new_procore(), clients.new_deltek()
        store = StateStore(f"sqlite:///{workdir}/layers-state.db")
        mapping = load_mapping(sandbox.env["DELTEK_PROCORE_MAPPINGS"])
        for kind in ("project", "vendor", "cost_type"):
            ingest.ingest_company(procore, store, kind)
        projects = [r.record_id for r in store.staged("project")]
        for kind in ("cost_code", "requisition", "direct_cost", "work_order", "purchase_order"):
            ingest.ingest_projects(procore, store, kind, projects)
        ingest.ingest_projects(procore, store, "change_order", projects)
        check_deliveries(procore, store)
        store.put_reference("deltek_projects", deltek.projects())
        store.put_reference("deltek_firms", deltek.firms())
        store.put_reference("deltek_gl_accounts", deltek.accounts())
        reference.build_project_map(store, mapping)
        with store.deltek_lease(tenant):
            reference.build_vendor_map(store, mapping, deltek, run_id="layers")
        reference.build_gl_map(store, mapping)
        reports = {}
        for name, kinds in (("AP", AP_KINDS), ("JE", JE_KINDS)):
            reports[name] = run_postings(
                store=store,
                deltek=deltek,
                mapping=mapping,
                kinds=kinds,
                periods=periods,
                tenant=tenant,
                run_id="layers",
            )
            types = mapping.defaults.direct_cost_types
            missing_from_ledger(store, periods, kinds=kinds, direct_cost_types=types)
        holdings = DeltekHoldings.for_run(deltek, periods, "layers")
        for period in periods:
            reconcile_period(store, deltek, period, holdings=holdings)
    fig.months = periods
    fig.minimum_procore = sandbox.minimum
    fig.batch_size = mapping.defaults.batch_size
    for name, report in reports.items():
        fig.counts[name] = {str(k): v for k, v in report.counts.items()}
        if report.outcome is not None:
            fig.by_period[name] = {p: part.counts for p, part in report.parts.items()}
    return {"first": fig, "import_s": import_s, "maxrss_mb": mb(), "cold_s": cold_s}


# ---------------------------------------------------------------- worker process
def _worker(strategy: str, spec: SandboxSpec, args: dict[str, Any], queue: Any) -> None:
    """Child process: one strategy against one fresh sandbox; report figures to the parent."""
    sandbox = None
    try:
        sandbox = SandboxProcess(spec)
        if strategy == "dagster":
            result = run_dagster(sandbox, spec.time, spec.workdir, args)
        elif strategy == "layers":
            result = run_layers(sandbox, spec.time, spec.workdir, args)
        else:
            from naive import run_naive

            result = run_naive(
                sandbox.env,
                sandbox.periods,
                spec.workdir,
                procore=procore_client(sandbox.env, spec.time),
                deltek=deltek_client(sandbox.env),
                limit=args["naive_limit"],
            )
        result["sandbox_rss"] = sandbox.ask("stats")["maxrss_mb"]
        result["seeded_s"] = sandbox.seeded_s
        result["periods"] = sandbox.periods
        queue.put(result)
    except BaseException:  # noqa: BLE001 - the parent prints it
        queue.put({"error": traceback.format_exc()})
    finally:
        if sandbox is not None:
            sandbox.stop()


def run_strategy(strategy: str, spec: SandboxSpec, args: dict[str, Any]) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_worker, args=(strategy, spec, args, queue))
    proc.start()
    result = queue.get()
    proc.join(30)
    if "error" in result:
        raise RuntimeError(f"{strategy} run failed:\n{result['error']}")
    return result


# ---------------------------------------------------------------- figures
@dataclass
class Ratio:
    ours: dict[str, int]
    least: dict[str, int]

    @property
    def value(self) -> float:
        return self.ours["total"] / max(self.least["total"], 1)

    def detail(self, order: tuple[str, ...]) -> str:
        parts = []
        for cat in order:
            a, b = self.ours.get(cat, 0), self.least.get(cat, 0)
            if cat == "line_items":
                b += self.least.get("needed", 0)
            if a or b:
                parts.append(f"{cat} {a}/{b}")
        return ", ".join(parts)

    @property
    def formula(self) -> str:
        """The ratio to the issue's formula alone, where the minimum adds contract reads."""
        if not self.least.get("needed"):
            return ""
        f = self.least["formula"]
        return (
            f" (the formula without the {self.least['needed']} contract reads that change "
            f"orders and invoices need: {f}, {self.ours['total'] / f:.3f}x)"
        )


def procore_ratio(fig: RunFigures) -> Ratio:
    return Ratio(minimum.by_category(fig.procore, minimum.procore_category), fig.minimum_procore)


def deltek_ratio(fig: RunFigures) -> Ratio:
    least = minimum.deltek_minimum(
        posted=minimum.posted_documents(fig.by_period),
        batch_size=fig.batch_size,
        firms_created=fig.firms_created,
        months=fig.months,
        before=fig.deltek_before,
    )
    return Ratio(minimum.by_category(fig.deltek, minimum.deltek_category), least)


def _top(counter: dict[str, int], n: int = 8) -> str:
    items = sorted(counter.items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{k}={v}" for k, v in items)


@dataclass
class Row:
    records: int
    wall_s: float
    rate: float
    procore: Ratio
    deltek: Ratio
    night_procore: Ratio | None
    night_deltek: Ratio | None
    throttled: int
    peak_mb: float
    dagster_s: float
    layers_s: float
    layers_only_s: float | None
    naive_ratio: float | None
    night_s: float | None


@dataclass
class Verdicts:
    items: list[tuple[str, bool | None, str]] = field(default_factory=list)

    def check(self, name: str, ok: bool | None, detail: str) -> None:
        self.items.append((name, ok, detail))

    @property
    def ok(self) -> bool:
        return all(ok is not False for _, ok, _ in self.items)


def describe_size(n: int, dag: dict[str, Any], layers: dict | None, naive: dict | None) -> Row:
    """Print one size's figures (stdout) and return its table row."""
    first: RunFigures = dag["first"]
    night: RunFigures | None = dag.get("night")
    pr, dr = procore_ratio(first), deltek_ratio(first)
    say = print
    say(f"=== {n} records (seeded in {dag['seeded_s']:.1f} s) ===")
    say(
        f"backfill through Dagster: {first.wall_s:.1f} s wall, {n / first.wall_s:.1f} records/s; "
        f"in the layers {first.layers_s:.1f} s, in Dagster {first.wall_s - first.layers_s:.1f} s "
        f"({first.events} event-log entries); Dagster import {dag['import_s']:.1f} s"
    )
    say(
        f"  Procore {pr.ours['total']} calls = {pr.value:.3f}x the minimum {pr.least['total']}"
        + pr.formula
    )
    say(f"    ours/minimum by category: {pr.detail(minimum.CATEGORIES)}")
    say(f"    endpoints: {_top(first.procore)}")
    say(f"  Deltek {dr.ours['total']} calls = {dr.value:.3f}x the minimum {dr.least['total']}")
    say(f"    ours/minimum by category: {dr.detail(minimum.DELTEK_CATEGORIES)}")
    say(f"    endpoints: {_top(first.deltek, 20)}")
    say(f"  outcomes: {first.counts}")
    if first.failures:
        say(f"  FAILED STEPS: {first.failures}")
    say(
        f"  429s {first.throttled}; pacing waits {first.pacing_s:.1f} s; peak memory "
        f"{dag['maxrss_mb']:.0f} MB (connector process; simulators {dag['sandbox_rss']:.0f} MB)"
    )
    slow = sorted(first.steps.items(), key=lambda kv: -kv[1])[:8]
    say("  slowest steps: " + ", ".join(f"{k} {v:.1f}s" for k, v in slow))
    npr = ndr = None
    if night is not None:
        npr, ndr = procore_ratio(night), deltek_ratio(night)
        kinds = Counter(how for _, _, how in night.changed)
        say(
            f"night after {len(night.changed)} records changed in Procore ({dict(kinds)}): "
            f"{night.runs} runs, {night.wall_s:.1f} s (layers {night.layers_s:.1f} s)"
        )
        say(
            f"  Procore {npr.ours['total']} calls = {npr.value:.3f}x the minimum {npr.least['total']}"
        )
        say(f"    ours/minimum by category: {npr.detail(minimum.CATEGORIES)}")
        say(f"    endpoints: {_top(night.procore)}")
        say(
            f"  Deltek {ndr.ours['total']} calls = {ndr.value:.3f}x the minimum {ndr.least['total']}"
        )
        say(f"    ours/minimum by category: {ndr.detail(minimum.DELTEK_CATEGORIES)}")
        say(f"    endpoints: {_top(night.deltek, 20)}")
        say(f"  outcomes: {night.counts}; 429s {night.throttled}")
        if night.failures:
            say(f"  FAILED STEPS: {night.failures}")
    layers_s = None
    if layers is not None:
        lf: RunFigures = layers["first"]
        layers_s = lf.wall_s
        lpr, ldr = procore_ratio(lf), deltek_ratio(lf)
        say(
            f"layers alone (same steps, no Dagster): {lf.wall_s:.1f} s; Procore {lpr.ours['total']}"
            f" calls ({lpr.value:.3f}x), Deltek {ldr.ours['total']} ({ldr.value:.3f}x); "
            f"peak {layers['maxrss_mb']:.0f} MB"
        )
    ratio = None
    if naive is not None:
        nrate = naive["records_per_s"]
        ratio = (n / first.wall_s) / nrate if nrate else float("inf")
        how = (
            f"extrapolated from a sample of {naive['sample']}"
            if naive["sample"] < naive["population"]
            else f"all {n} records"
        )
        say(
            f"naive: {nrate:.2f} records/s ({how}; projected {naive['projected_wall_s']:.0f} s); "
            f"calls per record Procore {naive['procore_per_record']:.2f}, Deltek "
            f"{naive['deltek_per_record']:.2f}; ours through Dagster is {ratio:.1f}x faster"
        )
    say()
    return Row(
        records=n,
        wall_s=first.wall_s,
        rate=n / first.wall_s,
        procore=pr,
        deltek=dr,
        night_procore=npr,
        night_deltek=ndr,
        throttled=first.throttled + (night.throttled if night else 0),
        peak_mb=dag["maxrss_mb"],
        dagster_s=first.wall_s - first.layers_s,
        layers_s=first.layers_s,
        layers_only_s=layers_s,
        naive_ratio=ratio,
        night_s=night.wall_s if night else None,
    )


def table(rows: list[Row]) -> list[str]:
    head = (
        "| records | wall | records/s | Procore calls (x min) | Deltek calls (x min) "
        "| night: Procore (x min) | night: Deltek (x min) | 429s | peak memory "
        "| in Dagster / in layers | layers alone | vs naive |"
    )
    lines = [head, "|" + "---|" * 12]

    def cell(r: Ratio | None) -> str:
        return "—" if r is None else f"{r.ours['total']} ({r.value:.2f}x)"

    for r in rows:
        lines.append(
            f"| {r.records:,} | {r.wall_s:.0f} s | {r.rate:.0f} | {cell(r.procore)} "
            f"| {cell(r.deltek)} | {cell(r.night_procore)} | {cell(r.night_deltek)} "
            f"| {r.throttled} | {r.peak_mb:.0f} MB | {r.dagster_s:.0f} s / {r.layers_s:.0f} s "
            f"| {'—' if r.layers_only_s is None else f'{r.layers_only_s:.0f} s'} "
            f"| {'—' if r.naive_ratio is None else f'{r.naive_ratio:.1f}x'} |"
        )
    return lines


def judge(rows: list[Row], fixed: tuple[float, float, float] | None) -> Verdicts:
    v = Verdicts()
    for r in rows:
        v.check(
            f"{r.records}: Procore calls <= {TARGET_PROCORE}x the minimum (first read)",
            r.procore.value <= TARGET_PROCORE,
            f"{r.procore.value:.3f}x",
        )
        v.check(
            f"{r.records}: Deltek calls <= {TARGET_DELTEK}x the minimum (first read)",
            r.deltek.value <= TARGET_DELTEK,
            f"{r.deltek.value:.3f}x",
        )
        if r.night_procore is not None and r.night_deltek is not None:
            v.check(
                f"{r.records}: Procore calls <= {TARGET_PROCORE}x the minimum (nightly run)",
                r.night_procore.value <= TARGET_PROCORE,
                f"{r.night_procore.value:.3f}x",
            )
            v.check(
                f"{r.records}: Deltek calls <= {TARGET_DELTEK}x the minimum (nightly run)",
                r.night_deltek.value <= TARGET_DELTEK,
                f"{r.night_deltek.value:.3f}x",
            )
        v.check(f"{r.records}: zero 429s", r.throttled == 0, str(r.throttled))
        if r.records >= 100_000:
            v.check(
                f"{r.records}: peak memory < {TARGET_PEAK_MB} MB through Dagster",
                r.peak_mb < TARGET_PEAK_MB,
                f"{r.peak_mb:.0f} MB",
            )
        if r.records == 10_000 and r.naive_ratio is not None:
            v.check(
                f"{r.records}: >= {TARGET_SPEEDUP:.0f}x the naive strategy",
                r.naive_ratio >= TARGET_SPEEDUP,
                f"{r.naive_ratio:.1f}x",
            )
    if not any(r.records >= 100_000 for r in rows):
        v.check(
            f"peak memory < {TARGET_PEAK_MB} MB at 100 000 records through Dagster",
            None,
            "not run in this invocation (--records 100000)",
        )
    if fixed is not None:
        dagster_s, layers_s, floor_s = fixed
        v.check(
            f"fixed cost: one-month sync through Dagster <= {TARGET_FIXED}x the layers",
            dagster_s <= TARGET_FIXED * layers_s,
            f"{dagster_s:.1f} s vs {layers_s:.1f} s = {dagster_s / layers_s:.2f}x"
            f" (importing Dagster alone: {floor_s / layers_s:.2f}x)",
        )
    return v


# What the compact script imports (run_layers): Dagster's import is timed on top of these.
LAYER_MODULES = (
    "deltek_procore.mapping.config",
    "deltek_procore.pipeline.ingest",
    "deltek_procore.pipeline.reference",
    "deltek_procore.pipeline.completeness",
    "deltek_procore.pipeline.postings",
    "deltek_procore.pipeline.reconciliation",
    "deltek_procore.posting.lookup",
    "deltek_procore.state.store",
)


def dagster_import_s() -> float:
    """`import dagster` in a fresh process that already imported what the script imports:
    what being a Dagster job adds before any Dagster work is done (best of three)."""
    code = (
        "import time\n"
        + "".join(f"import {m}\n" for m in LAYER_MODULES)
        + "t = time.perf_counter()\nimport dagster\nprint(time.perf_counter() - t)\n"
    )
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout.split()[-1]
        )
        for _ in range(3)
    ]
    return min(runs)


def fixed_cost(ns: argparse.Namespace, tmp: str) -> tuple[float, float, float]:
    """A one-month sync of a small sandbox, no latency: the cost of running at all."""
    ptime = ProcoreTime(origin=time.time(), factor=1.0)
    out = {}
    for strategy in ("dagster", "layers"):
        folder = os.path.join(tmp, f"fixed-{strategy}")
        os.makedirs(folder, exist_ok=True)
        spec = SandboxSpec(FIXED_RECORDS, ns.seed, 0.0, 1_000_000, 1_000_000, ptime, folder)
        args = {"night": False, "last_month": True, "warm": True}
        out[strategy] = run_strategy(strategy, spec, args)
    d, la = out["dagster"], out["layers"]
    df, lf = d["first"], la["first"]
    d_total, l_total = d["import_s"] + df.wall_s, la["import_s"] + lf.wall_s
    print(
        f"=== fixed cost: a one-month sync ({df.months[0]}) of a {FIXED_RECORDS}-record sandbox, "
        "no added latency ==="
    )
    print(
        f"through Dagster: {d_total:.1f} s = Dagster import {d['import_s']:.1f} s + run "
        f"{df.wall_s:.1f} s (layers {df.layers_s:.1f} s, Dagster {df.wall_s - df.layers_s:.1f} s, "
        f"{df.events} event-log entries, {len(df.steps)} steps)"
    )
    slow = sorted(df.steps.items(), key=lambda kv: -kv[1])[:6]
    print("  slowest steps: " + ", ".join(f"{k} {v:.2f}s" for k, v in slow))
    print(
        f"compact script (the same layer calls): {l_total:.1f} s = imports {la['import_s']:.1f} s"
        f" + run {lf.wall_s:.1f} s"
    )
    print(
        f"(both on existing storage, as every run after the first: creating it once took "
        f"{d['cold_s']:.1f} s for Dagster's instance and the state database, "
        f"{la['cold_s']:.2f} s for the state database alone)"
    )
    print(
        f"calls: Dagster path Procore {sum(df.procore.values())}, Deltek {sum(df.deltek.values())};"
        f" script Procore {sum(lf.procore.values())}, Deltek {sum(lf.deltek.values())}"
    )
    extra = dagster_import_s()
    floor = l_total + extra
    print(
        f"floor: `import dagster` on top of the script's own imports takes {extra:.1f} s, so a run "
        f"doing no Dagster work at all would take {floor:.1f} s = {floor / l_total:.2f}x the script"
    )
    print()
    return d_total, l_total, floor


# ---------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[1000])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--naive-limit", type=int, default=500)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--hour-s",
        type=float,
        default=None,
        help="real seconds one Procore rate-limit hour lasts (default: the run's forecast)",
    )
    parser.add_argument("--no-naive", action="store_true")
    parser.add_argument("--no-layers", action="store_true", help="skip the layers-only column")
    parser.add_argument("--no-night", action="store_true")
    parser.add_argument("--no-fixed", action="store_true", help="skip the fixed-cost run")
    parser.add_argument(
        "--profile", default=None, help="write a cProfile dump of the backfill to PATH.<records>"
    )
    ns = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    began = time.perf_counter()
    rows: list[Row] = []
    fixed = None
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for n in ns.records:
            hour_s = ns.hour_s or expected_wall_s(n, ns.latency_ms)
            ptime = ProcoreTime(origin=time.time(), factor=HOUR_S / hour_s)
            log(f"--- {n} records: Procore hour compressed to {hour_s:.0f} s ---")

            def spec(sub: str, n: int = n, ptime: ProcoreTime = ptime) -> SandboxSpec:
                folder = os.path.join(tmp, f"{n}-{sub}")
                os.makedirs(folder, exist_ok=True)
                return SandboxSpec(
                    n, ns.seed, ns.latency_ms, HOURLY_BUDGET, SPIKE_LIMIT, ptime, folder
                )

            extra = {
                "profile": f"{ns.profile}.{n}" if ns.profile else None,
                "naive_limit": ns.naive_limit,
                "night": not ns.no_night,
            }
            dag = run_strategy("dagster", spec("dagster"), extra)
            layers = None if ns.no_layers else run_strategy("layers", spec("layers"), extra)
            naive = None if ns.no_naive else run_strategy("naive", spec("naive"), extra)
            rows.append(describe_size(n, dag, layers, naive))
        if not ns.no_fixed:
            fixed = fixed_cost(ns, tmp)
    verdicts = judge(rows, fixed)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"Results ({stamp}, {os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, {ns.latency_ms:.0f} ms added per call, "
        f"bench {time.perf_counter() - began:.0f} s):"
    )
    print()
    for line in table(rows):
        print(line)
    print()
    for name, ok, detail in verdicts.items:
        tag = "n/a " if ok is None else ("PASS" if ok else "FAIL")
        print(f"[{tag}] {name}: {detail}")
    return 0 if verdicts.ok else 1


if __name__ == "__main__":
    sys.exit(main())
