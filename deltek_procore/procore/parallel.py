"""Overlapping Procore detail reads without changing what is read, or in which order.

Procore has no bulk read for a contract's or a change order's line items: one call per
record is the minimum, so only the calls' latency can overlap. `ordered_map` runs the
detail reads of a listing on a small pool and yields the results in the listing's order;
`KeyedLocks` lets the shared caches (contract lines, requisition items) be filled by one
call per key, whichever thread asks first, so the calls stay exactly the sequential ones.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def _inline(read: Callable[[T], R], item: T) -> Future[R]:
    future: Future[R] = Future()
    try:
        future.set_result(read(item))
    except Exception as exc:
        future.set_exception(exc)
    return future


def ordered_map(
    items: Iterable[T],
    read: Callable[[T], R],
    *,
    workers: int,
    window: int,
    needs: Callable[[T], bool] | None = None,
) -> Iterator[R]:
    """`read(item)` for every item, at most `workers` at a time, yielded in input order.

    `items` is consumed on the caller's thread (a listing's pages are read there, while
    the workers read details); at most `window` items are read ahead of the one yielded,
    so memory stays one page deep. Items `needs` says no to (nothing to wait for) are read
    on the caller's thread, in their turn. Errors keep their
    place: an item whose read failed raises when its turn comes, after every item before it
    was yielded; an error of `items` itself raises after the items read before it. Reads
    not yet started are cancelled when the consumer stops or an error is raised.
    With `workers <= 1` it is a plain loop on the caller's thread.
    """
    if workers <= 1:
        for item in items:
            yield read(item)
        return
    window = max(window, workers)
    pending: deque[Future[R]] = deque()
    source = iter(items)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="procore-detail")
    try:
        while True:
            try:
                item = next(source)
            except StopIteration:
                break
            except Exception:  # the listing failed: what was read before comes first
                while pending:
                    yield pending.popleft().result()
                raise
            wanted = needs is None or needs(item)
            pending.append(pool.submit(read, item) if wanted else _inline(read, item))
            while pending and (len(pending) >= window or pending[0].done()):
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True)


class KeyedLocks:
    """One re-entrant lock per key, kept only while someone holds or waits for it: a cache
    entry is filled by the first thread that asks, the others wait and find it filled."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Hashable, list] = {}  # key -> [RLock, users]

    @contextmanager
    def hold(self, key: Hashable) -> Iterator[None]:
        with self._guard:
            entry = self._locks.setdefault(key, [threading.RLock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._guard:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._locks[key]

    def __len__(self) -> int:
        with self._guard:
            return len(self._locks)
