"""`ordered_map` and `KeyedLocks`: overlapping reads that keep the listing's order, its
errors in their place, memory a window deep, and one fill per cache key."""

from __future__ import annotations

import random
import threading
import time

import pytest

from deltek_procore.procore.parallel import KeyedLocks, ordered_map


class Gauge:
    """How many reads run at once (the most seen), and how far the input was read ahead."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.most = 0

    def __enter__(self) -> None:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.now -= 1


def _slow_square(gauge: Gauge, rng: random.Random):
    delays = {i: rng.uniform(0, 0.01) for i in range(200)}

    def read(item: int) -> int:
        with gauge:
            time.sleep(delays[item])
        return item * item

    return read


@pytest.mark.parametrize("workers", [1, 4])
def test_results_come_in_input_order_with_at_most_workers_running(workers):
    gauge = Gauge()
    got = list(
        ordered_map(range(200), _slow_square(gauge, random.Random(3)), workers=workers, window=20)
    )
    assert got == [i * i for i in range(200)]
    assert gauge.most == workers  # 4 overlap (never more); 1 is one after the other


def test_the_input_is_read_at_most_a_window_ahead_of_what_was_yielded():
    taken: list[int] = []

    def source():
        for i in range(100):
            taken.append(i)
            yield i

    ahead = []
    for value in ordered_map(source(), lambda i: i, workers=4, window=10):
        ahead.append(len(taken) - value - 1)
    assert max(ahead) <= 10


def test_a_failed_read_raises_in_its_turn_after_every_earlier_result():
    def read(item: int) -> int:
        if item == 7:
            raise ValueError("item 7 failed")
        time.sleep(0.002 * (10 - item % 10))  # later items finish first
        return item

    got: list[int] = []
    with pytest.raises(ValueError, match="item 7 failed"):
        for value in ordered_map(range(50), read, workers=4, window=8):
            got.append(value)
    assert got == list(range(7))


def test_a_failing_listing_raises_after_the_records_read_before_it():
    def source():
        yield from range(5)
        raise RuntimeError("page 2 failed")

    got: list[int] = []
    with pytest.raises(RuntimeError, match="page 2 failed"):
        for value in ordered_map(source(), lambda i: i, workers=3, window=10):
            got.append(value)
    assert got == list(range(5))


def test_stopping_early_cancels_the_reads_not_started():
    started: list[int] = []
    lock = threading.Lock()

    def read(item: int) -> int:
        with lock:
            started.append(item)
        time.sleep(0.005)
        return item

    results = ordered_map(range(1000), read, workers=2, window=4)
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    results.close()
    assert len(started) <= 3 + 4  # what was yielded plus at most one window


def test_items_not_needing_a_read_are_read_in_their_turn_on_the_callers_thread():
    threads: dict[int, str] = {}

    def read(item: int) -> int:
        threads[item] = threading.current_thread().name
        return -item

    got = list(ordered_map(range(20), read, workers=3, window=5, needs=lambda i: i % 2 == 0))
    assert got == [-i for i in range(20)]
    caller = threading.current_thread().name
    assert all(threads[i] == caller for i in range(1, 20, 2))
    assert all(threads[i].startswith("procore-detail") for i in range(0, 20, 2))


def test_keyed_locks_fill_each_key_once_and_forget_keys_nobody_holds():
    locks = KeyedLocks()
    cache: dict[int, int] = {}
    fills: list[int] = []
    gate = threading.Barrier(8)

    def fill(key: int) -> int:
        gate.wait()
        with locks.hold(key):
            if key not in cache:
                fills.append(key)
                time.sleep(0.01)
                cache[key] = key * 10
            with locks.hold(key):  # re-entrant: a filler may look itself up
                return cache[key]

    threads = [threading.Thread(target=fill, args=(i % 2,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(fills) == [0, 1] and cache == {0: 0, 1: 10}
    assert len(locks) == 0
