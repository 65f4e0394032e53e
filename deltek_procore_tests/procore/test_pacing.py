"""The pacer shared by concurrent requests: what is in flight counts against the budget,
answers arriving out of order never raise it, spread requests get consecutive slots, and a
Retry-After holds every request back."""

from __future__ import annotations

import pytest

from deltek_procore.procore.pacing import RateLimitPacer

NOW = 1_700_000_000.0


def budget(remaining: int, reset_in: float, limit: int = 25) -> dict[str, str]:
    return {
        "X-Rate-Limit-Limit": str(limit),
        "X-Rate-Limit-Remaining": str(remaining),
        "X-Rate-Limit-Reset": str(int(NOW + reset_in)),
    }


def test_requests_in_flight_spend_the_budget_before_their_answers_come():
    pacer = RateLimitPacer(min_remaining=2)
    pacer.observe(budget(remaining=20, reset_in=10), NOW)
    # 18 may go at once without waiting: 20 left, 2 kept in reserve
    waits = [pacer.reserve(NOW) for _ in range(18)]
    assert waits[:12] == [0.0] * 12  # above the low water mark (5 of 25) at full speed
    assert pacer.in_flight == 18
    assert pacer.reserve(NOW) == pytest.approx(10 + 1.0)  # the 19th waits for the reset
    pacer.release(budget(remaining=19, reset_in=10), NOW)
    assert pacer.in_flight == 18


def test_one_request_at_a_time_paces_as_before():
    pacer = RateLimitPacer(min_remaining=2)
    pacer.observe(budget(remaining=3, reset_in=10, limit=10), NOW)  # low water: 2
    assert pacer.reserve(NOW) == 0.0  # 3 left, the reserve is 2: go
    pacer.release(budget(remaining=2, reset_in=10, limit=10), NOW)
    assert pacer.reserve(NOW) == pytest.approx(11.0)  # wall: wait for the reset


def test_an_answer_overtaken_on_the_way_cannot_raise_the_budget():
    pacer = RateLimitPacer(min_remaining=2)
    pacer.observe(budget(remaining=4, reset_in=10), NOW)  # the later request's answer
    pacer.observe(budget(remaining=9, reset_in=10), NOW)  # the earlier one's, arriving late
    assert pacer.remaining == 4
    pacer.observe(budget(remaining=24, reset_in=5), NOW)  # an older window entirely
    assert pacer.remaining == 4 and pacer.reset_at == int(NOW + 10)
    pacer.observe(budget(remaining=24, reset_in=20), NOW)  # the next window: taken
    assert pacer.remaining == 24


def test_spread_requests_get_consecutive_slots_not_the_same_one():
    pacer = RateLimitPacer(min_remaining=2)
    pacer.observe(budget(remaining=4, reset_in=12), NOW)  # below 20 % of 25
    first, second = pacer.reserve(NOW), pacer.reserve(NOW)
    assert first == pytest.approx(12 / 2)  # (reset - now) / (remaining - reserve)
    assert second > first  # after the first one's slot, never beside it


def test_a_retry_after_holds_every_request_back_until_then():
    pacer = RateLimitPacer(min_remaining=2)
    pacer.observe(budget(remaining=20, reset_in=10), NOW)
    pacer.observe({"Retry-After": "7", **budget(remaining=0, reset_in=3000)}, NOW)
    assert pacer.reserve(NOW) == pytest.approx(7.0)
    assert pacer.delay(NOW + 7.5) == 0.0  # then the server said nothing more: go


def test_a_retried_request_does_not_count_itself_against_the_budget():
    pacer = RateLimitPacer(min_remaining=2)
    pacer.observe(budget(remaining=3, reset_in=10, limit=10), NOW)
    pacer.reserve(NOW)
    assert pacer.delay(NOW, mine=1) == 0.0
    assert pacer.delay(NOW) == pytest.approx(11.0)  # anyone else would wait
