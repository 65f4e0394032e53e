"""One sync round in its own process, for the crash and concurrency tests.

`python -m deltek_procore_tests.chaos.crash_worker` reads the configuration-contract
variables (pointing at a sandbox the test process serves), DELTEK_PROCORE_STATE_URL
and CHAOS_PERIODS (JSON list of YYYY-MM). It prints "POSTING" when the posting
step starts, "BATCH ..." after each batch, so a test can kill it mid-post, and
"RESULT {json}" at the end.
Exit code: 0 when the round ran clean, 1 otherwise.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deltek_procore.mapping.config import load_mapping
from deltek_procore.state.store import StateStore
from deltek_procore_tests.chaos.harness import make_clients, sync_round, tenant_of

ROOT = Path(__file__).resolve().parents[2]
POSTING_MARK = "POSTING"
BATCH_MARK = "BATCH "
RESULT_MARK = "RESULT "


def main() -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    env = os.environ
    store = StateStore(env["DELTEK_PROCORE_STATE_URL"])
    procore, deltek = make_clients(
        env,
        procore_read_timeout=float(env.get("CHAOS_PROCORE_READ_TIMEOUT", "30")),
        deltek_read_timeout=float(env.get("CHAOS_DELTEK_READ_TIMEOUT", "60")),
    )
    result = sync_round(
        store=store,
        procore=procore,
        deltek=deltek,
        mapping=load_mapping(env["DELTEK_PROCORE_MAPPINGS"]),
        periods=json.loads(env["CHAOS_PERIODS"]),
        tenant=tenant_of(env),
        on_posting=lambda: print(POSTING_MARK, flush=True),
        progress=lambda message: print(BATCH_MARK + message, flush=True),
    )
    summary = {
        "counts": dict(result.counts),
        "errors": result.errors,
        "clean": result.clean,
        "quiet": result.quiet,
        "reasons": [row["reason"] for report in result.reports for row in report.quarantined()],
    }
    print(RESULT_MARK + json.dumps(summary), flush=True)
    store.dispose()
    return 0 if result.clean else 1


# ---- the test side: start, watch and kill workers -------------------------------------------
@dataclass
class Worker:
    """A crash_worker subprocess; a thread collects its stdout lines as they come."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def start(cls, env: dict[str, str]) -> Worker:
        proc = subprocess.Popen(
            [sys.executable, "-m", "deltek_procore_tests.chaos.crash_worker"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        worker = cls(proc)
        threading.Thread(target=worker._pump, daemon=True).start()
        return worker

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def _find(self, mark: str) -> str | None:
        return next((line for line in list(self.lines) if line.startswith(mark)), None)

    def wait_for(self, mark: str, timeout: float) -> bool:
        """True once `mark` was printed; False if the worker ended or time ran out first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._find(mark) is not None:
                return True
            if self.proc.poll() is not None:
                time.sleep(0.2)  # let the reader thread drain the pipe
                return self._find(mark) is not None
            time.sleep(0.02)
        return False

    def result(self, timeout: float) -> dict | None:
        self.proc.wait(timeout=timeout)
        self.wait_for(RESULT_MARK, timeout=5)
        line = self._find(RESULT_MARK)
        return json.loads(line[len(RESULT_MARK) :]) if line else None

    def kill(self) -> bool:
        """SIGKILL (no clean-up, no finally blocks); reap it so its pid is really gone."""
        if self.proc.poll() is not None:
            return False
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        return True


def worker_env(box: Any, state_url: str) -> dict[str, str]:
    """This process's environment with the sandbox's variables and the state store URL."""
    from deltek_procore.sandbox.runner import sandbox_periods

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROCORE_", "DELTEK_"))}
    env.update(box.env)
    env["DELTEK_PROCORE_STATE_URL"] = state_url
    env["CHAOS_PERIODS"] = json.dumps(sandbox_periods(box))
    env["PYTHONPATH"] = str(ROOT)
    return env


if __name__ == "__main__":
    sys.exit(main())
