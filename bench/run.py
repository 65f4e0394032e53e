"""Benchmark: a 24-month backfill through the connector vs a naive record-by-record sync.

Usage:  python bench/run.py --records 1000 10000 100000 [--latency-ms 50] [--naive-limit 500]

Per size N, on a fresh seeded sandbox each time (simulators in their own process, so
the connector's memory is measured alone), with `latency_ms` added to every call of
both simulators:
  ours  : ingest every kind -> refresh_deltek -> project/vendor/GL maps -> run_postings
          (AP and JE) over every sandbox period in one go;
  naive : bench/naive.py (one show call per Procore record, one look-up GET and one
          POST per approved record), on a sample when N > --naive-limit, extrapolated.
Prints the figures and PASS/FAIL against the targets. See bench/README.md.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import resource
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from deltek_procore.deltek.client import DeltekClient, DeltekSettings  # noqa: E402
from deltek_procore.procore.client import ProcoreClient, ProcoreSettings  # noqa: E402

HOUR_S = 3600.0
HOURLY_BUDGET = 3600
SPIKE_LIMIT = 25  # Procore's documented spike example (25 per 10 s); the simulator default
TARGET_PROCORE_PER_RECORD = 0.05
TARGET_DELTEK_PER_VOUCHER = 0.1
TARGET_PEAK_MB = 500
TARGET_SPEEDUP = 10.0
_ID = re.compile(r"/\d+(?=/|$)")


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
    """A rough forecast of our run's wall time, used only to scale Procore's hour.

    Calibrated on this machine at 50 ms latency (about 25 ms per record plus a fixed
    start-up of 15 s); the forecast only sets how long the compressed hour is.
    """
    return 15.0 + records * 0.025 * max(latency_ms, 1.0) / 50.0


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

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.calls[endpoint_key(method, url)] += 1
        response = super().request(method, url, *args, **kwargs)
        if response.status_code == 429:
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


def _sandbox_main(spec: SandboxSpec, conn: Any) -> None:
    """Child process: serve both simulators until told to stop; answer count queries."""
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
        counts = {k: len(v) for k, v in box.data.procore.items()}
        conn.send(
            {
                "env": box.env,
                "periods": sandbox_periods(box),
                "counts": counts,
                "seeded_s": box.started_in_s,
            }
        )
    except Exception:  # noqa: BLE001 - report to the parent, which prints it
        conn.send({"error": traceback.format_exc()})
        return
    while True:
        command = conn.recv()
        if command == "counts":
            conn.send(
                {
                    "deltek": box.deltek.call_counts(),
                    "procore_limits": box.procore.limiter.snapshot(),
                    "procore_faults": box.procore.faults.as_dict()["counters"],
                    "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                }
            )
        elif command == "stop":
            box.stop()
            conn.send("stopped")
            return


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

    def stats(self) -> dict[str, Any]:
        self._conn.send("counts")
        return self._conn.recv()

    def stop(self) -> None:
        try:
            self._conn.send("stop")
            self._conn.recv()
        finally:
            self._proc.join(15)
            if self._proc.is_alive():
                self._proc.terminate()


# ---------------------------------------------------------------- clients
def procore_client(env: dict[str, str], ptime: ProcoreTime) -> ProcoreClient:
    settings = ProcoreSettings(
        auth_url=env["PROCORE_AUTH_URL"],
        api_url=env["PROCORE_API_URL"],
        client_id=env["PROCORE_CLIENT_ID"],
        client_secret=env["PROCORE_CLIENT_SECRET"],
        company_id=int(env["PROCORE_COMPANY_ID"]),
    )
    return ProcoreClient(settings, session=CountingSession(), clock=ptime.now, sleep=ptime.sleep)


def deltek_client(env: dict[str, str]) -> DeltekClient:
    settings = DeltekSettings(
        api_url=env["DELTEK_API_URL"],
        username=env["DELTEK_USERNAME"],
        password=env["DELTEK_PASSWORD"],
        database=env["DELTEK_DATABASE"],
        client_id=env["DELTEK_CLIENT_ID"],
        client_secret=env["DELTEK_CLIENT_SECRET"],
    )
    return DeltekClient(settings, session=CountingSession())


def tenant_of(env: dict[str, str]) -> str:
    return f"{env['DELTEK_API_URL'].rstrip('/').lower()}|{env['DELTEK_DATABASE']}"


# ---------------------------------------------------------------- our pipeline
POSTABLE = ("requisition", "direct_cost", "work_order", "purchase_order", "change_order")


def run_ours(
    env: dict[str, str], periods: list[str], ptime: ProcoreTime, workdir: str, profile: str | None
) -> dict[str, Any]:
    """The connector's backfill, as the Dagster assets run it, minus Dagster itself."""
    from deltek_procore.mapping.config import load_mapping
    from deltek_procore.pipeline import ingest, reference
    from deltek_procore.pipeline.postings import AP_KINDS, JE_KINDS, run_postings
    from deltek_procore.state.store import StateStore

    procore = procore_client(env, ptime)
    deltek = deltek_client(env)
    store = StateStore(f"sqlite:///{workdir}/ours-state.db")
    mapping = load_mapping(env["DELTEK_PROCORE_MAPPINGS"])
    steps: dict[str, float] = {}
    read: dict[str, int] = {}
    psession: CountingSession = procore._session  # type: ignore[assignment]

    def step(name: str, fn: Callable[[], Any]) -> Any:
        began = time.perf_counter()
        out = fn()
        steps[name] = steps.get(name, 0.0) + time.perf_counter() - began
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"  [ours] {name}: {steps[name]:.1f} s (elapsed {time.perf_counter() - start:.0f} s,"
            f" Procore calls {procore.stats.calls}, 429s {psession.throttled}, "
            f"pacing waits {procore.stats.waits_s / ptime.factor:.0f} s, "
            f"Deltek calls {deltek.stats.calls}, maxrss {rss:.0f} MB)",
            file=sys.stderr,
            flush=True,
        )
        return out

    def body() -> dict[str, Any]:
        for kind in ("project", "vendor", "cost_type"):
            read[kind] = step(
                "ingest " + kind, lambda k=kind: ingest.ingest_company(procore, store, k, full=True)
            ).fetched
        project_ids = [r.record_id for r in store.staged("project")]
        for kind in ("cost_code", *POSTABLE):
            read[kind] = step(
                "ingest " + kind,
                lambda k=kind: ingest.ingest_projects(procore, store, k, project_ids, full=True),
            ).fetched
        step("refresh_deltek", lambda: reference.refresh_deltek(deltek, store))
        step("project map", lambda: reference.build_project_map(store, mapping))
        step(
            "vendor map", lambda: reference.build_vendor_map(store, mapping, deltek, run_id="bench")
        )
        step("gl map", lambda: reference.build_gl_map(store, mapping))
        reports = {}
        for name, kinds in (("AP", AP_KINDS), ("JE", JE_KINDS)):
            reports[name] = step(
                f"run_postings {name}",
                lambda k=kinds: run_postings(
                    store=store,
                    deltek=deltek,
                    mapping=mapping,
                    kinds=k,
                    periods=periods,
                    tenant=tenant_of(env),
                    run_id="bench",
                ),
            )
        return reports

    began = start = time.perf_counter()
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        reports = profiler.runcall(body)
        profiler.dump_stats(profile)
    else:
        reports = body()
    wall = time.perf_counter() - began
    counts = {name: dict(r.counts) for name, r in reports.items()}
    failed_checks = {
        f"{name}.{check}": outcome.detail
        for name, r in reports.items()
        for check, outcome in r.checks.items()
        if not outcome.passed
    }
    dsession: CountingSession = deltek._session  # type: ignore[assignment]
    return {
        "wall_s": wall,
        "steps": steps,
        "read": read,
        "counts": counts,
        "failed_checks": failed_checks,
        "procore_stats": procore.stats.as_dict(),
        "procore_calls": dict(psession.calls),
        "procore_429": psession.throttled,
        "deltek_calls_client": dict(dsession.calls),
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


# ---------------------------------------------------------------- worker process
def _worker(strategy: str, spec: SandboxSpec, args: dict[str, Any], queue: Any) -> None:
    """Child process: one strategy against one fresh sandbox; report figures to the parent."""
    sandbox = None
    try:
        sandbox = SandboxProcess(spec)
        if strategy == "ours":
            result = run_ours(
                sandbox.env, sandbox.periods, spec.time, spec.workdir, args.get("profile")
            )
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
        result["sandbox"] = sandbox.stats()
        result["seed_counts"] = sandbox.counts
        result["seeded_s"] = sandbox.seeded_s
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
class Figures:
    records: int
    lines: list[str] = field(default_factory=list)
    verdicts: list[tuple[str, bool | None, str]] = field(default_factory=list)

    def say(self, text: str = "") -> None:
        self.lines.append(text)
        print(text, flush=True)

    def check(self, name: str, ok: bool | None, detail: str) -> None:
        self.verdicts.append((name, ok, detail))
        tag = "n/a " if ok is None else ("PASS" if ok else "FAIL")
        self.say(f"  [{tag}] {name}: {detail}")


def _top(counter: dict[str, int], n: int = 6) -> str:
    items = sorted(counter.items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{k}={v}" for k, v in items)


def report(
    n: int, ours: dict[str, Any], naive: dict[str, Any] | None, hour_s: float, budget: int
) -> Figures:
    fig = Figures(n)
    fig.say(
        f"=== {n} records (seeded in {ours['seeded_s']:.1f} s; Procore hour compressed to "
        f"{hour_s:.0f} s, budget {budget} calls/hour, spike {SPIKE_LIMIT}/10 s) ==="
    )
    read_postable = sum(ours["read"].get(k, 0) for k in POSTABLE)
    read_all = sum(ours["read"].values())
    pstats = ours["procore_stats"]
    procore_calls = pstats["calls"]
    deltek_counts = ours["sandbox"]["deltek"]
    deltek_calls = sum(deltek_counts.values())
    ap, je = ours["counts"].get("AP", {}), ours["counts"].get("JE", {})
    vouchers = ap.get("posted", 0) + ap.get("adjusted", 0)
    entries = je.get("posted", 0) + je.get("adjusted", 0)
    docs = vouchers + entries
    rate = n / ours["wall_s"]
    fig.say(
        f"ours : wall {ours['wall_s']:.1f} s, {rate:.1f} records/s "
        f"({read_postable} spend records read, {read_all} incl. reference data)"
    )
    fig.say(
        f"       Procore calls {procore_calls} (client stats), "
        f"{procore_calls / max(read_postable, 1):.4f} per spend record; "
        f"429s {ours['procore_429']}; pacing waits {pstats['waits_s']:.1f} Procore-s; "
        f"tokens {pstats['tokens']}"
    )
    fig.say(f"       Procore top endpoints: {_top(ours['procore_calls'])}")
    lines = ours["procore_calls"]
    per_record = sum(
        v for k, v in lines.items() if k.endswith("}/line_items") and "direct_costs" not in k
    )
    fig.say(
        f"       of which one-per-record line-item calls (commitments, change orders): "
        f"{per_record} = {per_record / max(read_postable, 1):.4f} per spend record"
    )
    fig.say(
        f"       Deltek calls {deltek_calls} (simulator call_counts) for {vouchers} vouchers "
        f"+ {entries} JEs posted = {deltek_calls / max(docs, 1):.4f} per posted document"
    )
    fig.say(f"       Deltek endpoints: {_top(deltek_counts, 30)}")
    fig.say(f"       outcomes AP {ap}  JE {je}")
    if ours["failed_checks"]:
        fig.say(f"       failing asset checks: {ours['failed_checks']}")
    fig.say(
        f"       peak memory {ours['maxrss_mb']:.0f} MB (getrusage ru_maxrss of the connector "
        f"process; simulators run in a separate process: "
        f"{ours['sandbox']['maxrss_mb']:.0f} MB)"
    )
    steps = ", ".join(f"{k} {v:.1f}s" for k, v in ours["steps"].items())
    fig.say(f"       time by step: {steps}")
    if naive is not None:
        nrate = naive["records_per_s"]
        how = (
            f"extrapolated per record from a sample of {naive['sample']} of {n} records"
            if naive["sample"] < naive["population"]
            else f"all {n} records"
        )
        fig.say(
            f"naive: {nrate:.2f} records/s ({how}); sample wall {naive['sample_wall_s']:.1f} s"
            f" + listing {naive['list_wall_s']:.1f} s + setup {naive['setup_wall_s']:.1f} s;"
            f" projected wall for {n}: {naive['projected_wall_s']:.0f} s"
        )
        fig.say(
            f"       naive calls per record: Procore {naive['procore_per_record']:.2f}, "
            f"Deltek {naive['deltek_per_record']:.2f}; posted {naive['posted']} of "
            f"{naive['sample']} sampled; 429s {naive['procore_429']}"
        )
        ratio = rate / nrate if nrate else float("inf")
        fig.say(f"ratio: ours/naive = {ratio:.1f}x")
    else:
        ratio = None
    fig.say("targets:")
    if n == 10_000 or n not in (10_000, 100_000):
        fig.check(
            "Procore calls per record <= 0.05" + ("" if n == 10_000 else " (10k target)"),
            procore_calls / max(read_postable, 1) <= TARGET_PROCORE_PER_RECORD
            if n == 10_000
            else None,
            f"{procore_calls / max(read_postable, 1):.4f}",
        )
        fig.check(
            "Deltek calls per voucher <= 0.1" + ("" if n == 10_000 else " (10k target)"),
            deltek_calls / max(docs, 1) <= TARGET_DELTEK_PER_VOUCHER if n == 10_000 else None,
            f"{deltek_calls / max(docs, 1):.4f}",
        )
    fig.check("zero 429s", ours["procore_429"] == 0, f"{ours['procore_429']}")
    fig.check(
        "peak memory < 500 MB" + ("" if n == 100_000 else " (100k target)"),
        ours["maxrss_mb"] < TARGET_PEAK_MB if n == 100_000 else None,
        f"{ours['maxrss_mb']:.0f} MB",
    )
    if ratio is not None:
        fig.check(">= 10x faster than naive", ratio >= TARGET_SPEEDUP, f"{ratio:.1f}x")
    return fig


# ---------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[1000])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument(
        "--naive-limit",
        type=int,
        default=500,
        help="run the naive strategy on at most this many records",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--hour-s",
        type=float,
        default=None,
        help="real seconds one Procore rate-limit hour lasts "
        "(default: the run's forecast wall time)",
    )
    parser.add_argument("--no-naive", action="store_true")
    parser.add_argument(
        "--profile", default=None, help="write a cProfile dump of our pipeline to PATH.<records>"
    )
    ns = parser.parse_args(argv)
    # `timeout` sends SIGTERM: exit normally so temporary folders and the sandbox go too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    all_ok = True
    for n in ns.records:
        hour_s = ns.hour_s or expected_wall_s(n, ns.latency_ms)
        ptime = ProcoreTime(origin=time.time(), factor=HOUR_S / hour_s)
        with tempfile.TemporaryDirectory(prefix=f"bench-{n}-") as tmp:

            def spec(sub: str, n: int = n, ptime: ProcoreTime = ptime) -> SandboxSpec:
                folder = os.path.join(tmp, sub)
                os.makedirs(folder, exist_ok=True)
                return SandboxSpec(
                    n, ns.seed, ns.latency_ms, HOURLY_BUDGET, SPIKE_LIMIT, ptime, folder
                )

            extra = {
                "profile": f"{ns.profile}.{n}" if ns.profile else None,
                "naive_limit": ns.naive_limit,
            }
            ours = run_strategy("ours", spec("ours"), extra)
            naive = None if ns.no_naive else run_strategy("naive", spec("naive"), extra)
        fig = report(n, ours, naive, hour_s, HOURLY_BUDGET)
        all_ok &= all(ok is not False for _, ok, _ in fig.verdicts)
        print(flush=True)
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
