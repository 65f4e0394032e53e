"""Leases (dp_leases): named, expiring locks between runs. A lease is the tenant's own by
default, so two tenants post at once while the runs of one tenant exclude each other. A
`shared` lease is the deployment's: `deltek_lease`, held while writing to a Deltek
database, is one, so two tenants that post to the same Deltek database take turns, as two
runs of one tenant do."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from deltek_procore.state import schema
from deltek_procore.state.common import TenantScoped

log = logging.getLogger(__name__)


# The scope of shared leases: not a tenant name (those match tenants.NAME_PATTERN).
SHARED = "*"


class Leases(TenantScoped):
    def _lease_scope(self, shared: bool) -> str:
        return SHARED if shared else self.tenant

    def try_lease(self, name: str, holder: str, ttl_s: float, *, shared: bool = False) -> bool:
        """Take `name` if free, expired, or held by a dead process on this host."""
        t = schema.leases
        scope = self._lease_scope(shared)
        now = time.time()
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(hashtext(:n))"),
                    {"n": f"{scope}:{name}"},
                )
            mine = (t.c.tenant == scope) & (t.c.name == name)
            row = conn.execute(sa.select(t).where(mine)).first()
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            t.insert().values(
                                tenant=scope, name=name, holder=holder, expires_at=now + ttl_s
                            )
                        )
                    return True
                except IntegrityError:
                    return False
            if row.holder == holder or row.expires_at < now or _holder_is_dead(row.holder):
                conn.execute(
                    t.update()
                    .where(mine, t.c.holder == row.holder)
                    .values(holder=holder, expires_at=now + ttl_s)
                )
                return True
            return False

    def release_lease(self, name: str, holder: str, *, shared: bool = False) -> None:
        t = schema.leases
        scope = self._lease_scope(shared)
        with self.engine.begin() as conn:
            conn.execute(
                t.delete().where(t.c.tenant == scope, t.c.name == name, t.c.holder == holder)
            )

    @contextmanager
    def lease(
        self,
        name: str,
        *,
        shared: bool = False,
        ttl_s: float = 900,
        wait_s: float = 1800,
        poll_s: float = 0.5,
    ):
        """Hold `name` for the block; waits for another holder. A heartbeat renews the
        lease every ttl/3 while the block runs, so it never expires under a live run.
        `shared`: the deployment's lease of that name, not this tenant's."""
        holder = lease_holder()
        deadline = time.monotonic() + wait_s
        while not self.try_lease(name, holder, ttl_s, shared=shared):
            if time.monotonic() > deadline:
                raise TimeoutError(f"another sync holds '{name}'; gave up after {wait_s:.0f} s")
            time.sleep(poll_s)
        stop = threading.Event()

        def heartbeat() -> None:
            while not stop.wait(ttl_s / 3):
                try:
                    if not self.try_lease(name, holder, ttl_s, shared=shared):
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
            self.release_lease(name, holder, shared=shared)

    @contextmanager
    def deltek_lease(self, deltek_key: str, **kwargs: Any) -> Iterator[str]:
        """Held while writing to one Deltek database (its API root | database): firm
        creation and posting. Shared by every tenant, whichever one writes."""
        with self.lease(f"deltek:{deltek_key}", shared=True, **kwargs) as holder:
            yield holder


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
