"""Leases (dp_leases): named, expiring locks between runs, per tenant. Two tenants post at
once; the runs of one tenant still exclude each other."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from deltek_procore.state import schema
from deltek_procore.state.common import TenantScoped

log = logging.getLogger(__name__)


class Leases(TenantScoped):
    def try_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        """Take `name` if free, expired, or held by a dead process on this host."""
        t = schema.leases
        now = time.time()
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(hashtext(:n))"),
                    {"n": f"{self.tenant}:{name}"},
                )
            row = conn.execute(sa.select(t).where(self.mine(t), t.c.name == name)).first()
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            t.insert().values(
                                tenant=self.tenant, name=name, holder=holder, expires_at=now + ttl_s
                            )
                        )
                    return True
                except IntegrityError:
                    return False
            if row.holder == holder or row.expires_at < now or _holder_is_dead(row.holder):
                conn.execute(
                    t.update()
                    .where(self.mine(t), t.c.name == name, t.c.holder == row.holder)
                    .values(holder=holder, expires_at=now + ttl_s)
                )
                return True
            return False

    def release_lease(self, name: str, holder: str) -> None:
        t = schema.leases
        with self.engine.begin() as conn:
            conn.execute(t.delete().where(self.mine(t), t.c.name == name, t.c.holder == holder))

    @contextmanager
    def lease(self, name: str, *, ttl_s: float = 900, wait_s: float = 1800, poll_s: float = 0.5):
        """Hold `name` for the block; waits for another holder. A heartbeat renews the
        lease every ttl/3 while the block runs, so it never expires under a live run."""
        holder = lease_holder()
        deadline = time.monotonic() + wait_s
        while not self.try_lease(name, holder, ttl_s):
            if time.monotonic() > deadline:
                raise TimeoutError(f"another sync holds '{name}'; gave up after {wait_s:.0f} s")
            time.sleep(poll_s)
        stop = threading.Event()

        def heartbeat() -> None:
            while not stop.wait(ttl_s / 3):
                try:
                    if not self.try_lease(name, holder, ttl_s):
                        log.error("lease %s was taken over while this run held it", name)
                        return
                except Exception as exc:  # noqa: BLE001 - a missed beat is retried next time
                    log.warning("could not renew lease %s: %s", name, exc)

        beat = threading.Thread(target=heartbeat, name=f"lease:{name}", daemon=True)
        beat.start()
        try:
            yield holder
        finally:
            stop.set()
            beat.join(timeout=5)
            self.release_lease(name, holder)


def lease_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _holder_is_dead(holder: str) -> bool:
    try:
        host, pid, _ = holder.split(":", 2)
        if host != socket.gethostname():
            return False
        os.kill(int(pid), 0)
        return False
    except ProcessLookupError:
        return True
    except (ValueError, PermissionError):
        return False
