"""Leases per tenant: one tenant's lease does not hold back another's, and one tenant's runs
still exclude each other. A shared lease (named after a Deltek database) is the
deployment's: two tenants posting to one Deltek database take turns."""

from __future__ import annotations

import threading
import time


def test_two_tenants_hold_the_same_lease_name_at_once(tenants) -> None:
    acme, globex = tenants
    assert acme.try_lease("deltek:post", "host:1:a", 60)
    assert globex.try_lease("deltek:post", "host:2:b", 60)  # its own lane
    assert not acme.try_lease("deltek:post", "otherhost:3:c", 60)  # acme's second run waits
    assert not globex.try_lease("deltek:post", "otherhost:4:d", 60)
    globex.release_lease("deltek:post", "host:1:a")  # acme's holder, through globex: no effect
    assert not acme.try_lease("deltek:post", "otherhost:3:c", 60)
    acme.release_lease("deltek:post", "host:1:a")
    assert acme.try_lease("deltek:post", "otherhost:3:c", 60)
    assert not globex.try_lease("deltek:post", "otherhost:3:c", 60)  # still held by host:2:b


def test_lease_blocks_run_concurrently_across_tenants_and_serially_within_one(tenants) -> None:
    acme, globex = tenants
    spans: dict[str, list[tuple[float, float]]] = {"acme": [], "globex": []}
    lock = threading.Lock()

    def run(store, name: str) -> None:
        with store.lease("deltek:post", ttl_s=30, poll_s=0.02):
            start = time.monotonic()
            time.sleep(0.3)
            with lock:
                spans[name].append((start, time.monotonic()))

    threads = [
        threading.Thread(target=run, args=(store, store.tenant))
        for store in (acme, acme, globex, globex)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name in spans:  # one tenant's two runs never overlap
        (a0, a1), (b0, b1) = sorted(spans[name])
        assert a1 <= b0, name
    # the tenants' first runs did overlap: neither waited for the other
    first_acme, first_globex = min(spans["acme"]), min(spans["globex"])
    assert first_acme[0] < first_globex[1] and first_globex[0] < first_acme[1]


def test_a_shared_lease_excludes_every_tenant_and_only_its_holder_releases_it(tenants) -> None:
    acme, globex = tenants
    assert acme.try_lease("deltek:db1", "host:1:a", 60, shared=True)
    assert not globex.try_lease("deltek:db1", "host:2:b", 60, shared=True)
    assert globex.try_lease("deltek:db1", "host:2:b", 60)  # globex's own lease of that name
    assert globex.try_lease("deltek:db2", "host:2:b", 60, shared=True)  # another database
    globex.release_lease("deltek:db1", "host:2:b", shared=True)  # not its holder: no effect
    assert not globex.try_lease("deltek:db1", "host:2:b", 60, shared=True)
    acme.release_lease("deltek:db1", "host:1:a", shared=True)
    assert globex.try_lease("deltek:db1", "host:2:b", 60, shared=True)


def test_two_tenants_on_one_shared_lease_run_one_after_the_other(tenants) -> None:
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()

    def run(store) -> None:
        with store.lease("deltek:db1", shared=True, ttl_s=30, poll_s=0.02):
            start = time.monotonic()
            time.sleep(0.3)
            with lock:
                spans.append((start, time.monotonic()))

    threads = [threading.Thread(target=run, args=(store,)) for store in tenants]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (a0, a1), (b0, b1) = sorted(spans)
    assert a1 <= b0
