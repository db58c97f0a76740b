"""Clocks and the timer queue."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vm_core import Clock, ManualClock, TimerQueue


class FakeHostTime:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


def test_clock_follows_the_host_and_stands_still_while_paused() -> None:
    host = FakeHostTime()
    clock = Clock(start_ns=500, source=host)
    assert clock.now_ns() == 500
    host.now += 100
    assert clock.now_ns() == 600
    clock.pause()
    assert clock.paused
    host.now += 1_000
    assert clock.now_ns() == 600
    clock.pause()  # idempotent
    clock.resume()
    host.now += 7
    assert clock.now_ns() == 607
    clock.set_ns(10)
    host.now += 5
    assert clock.now_ns() == 15


def test_default_clock_is_monotonic() -> None:
    clock = Clock()
    a = clock.now_ns()
    b = clock.now_ns()
    assert 0 <= a <= b


def test_manual_clock() -> None:
    clock = ManualClock(100)
    assert clock.advance(50) == 150
    assert clock.now_ns() == 150
    with pytest.raises(ValueError):
        clock.advance(-1)
    clock.set_ns(3)
    assert clock.now_ns() == 3


def test_timers_fire_in_deadline_then_insertion_order() -> None:
    q = TimerQueue()
    fired: list[str] = []
    q.add(30, lambda: fired.append("c"))
    q.add(10, lambda: fired.append("a1"))
    q.add(20, lambda: fired.append("b"))
    q.add(10, lambda: fired.append("a2"))
    assert q.next_deadline() == 10
    assert q.run_due(9) == 0
    assert q.run_due(20) == 3
    assert fired == ["a1", "a2", "b"]
    assert len(q) == 1
    assert q.next_deadline() == 30


def test_cancel() -> None:
    q = TimerQueue()
    fired: list[int] = []
    first = q.add(5, lambda: fired.append(5))
    q.add(8, lambda: fired.append(8))
    assert first.active
    assert q.cancel(first)
    assert not first.active
    assert not q.cancel(first)
    assert q.next_deadline() == 8
    assert q.run_due(100) == 1
    assert fired == [8]
    assert q.next_deadline() is None
    assert len(q) == 0


def test_cancel_after_firing_returns_false() -> None:
    q = TimerQueue()
    timer = q.add(1, lambda: None)
    q.run_due(1)
    assert not timer.active
    assert not q.cancel(timer)


def test_timers_added_by_callbacks_wait_for_the_next_run() -> None:
    q = TimerQueue()
    fired: list[int] = []

    def rearm() -> None:
        fired.append(len(fired))
        q.add(0, rearm)  # already due: must not loop forever

    q.add(0, rearm)
    q.add(1, lambda: fired.append(-1))
    assert q.run_due(10) == 2
    assert fired == [0, -1]
    assert q.run_due(10) == 1
    assert fired == [0, -1, 2]


def test_many_cancellations_do_not_grow_the_queue() -> None:
    q = TimerQueue()
    keep = q.add(10**9, lambda: None)
    for i in range(10_000):
        q.cancel(q.add(i, lambda: None))
    assert len(q) == 1
    assert len(q._heap) < 200
    assert q.next_deadline() == keep.deadline_ns


@given(st.lists(st.tuples(st.integers(0, 50), st.booleans()), max_size=40), st.integers(0, 60))
def test_run_due_matches_a_sorted_model(entries: list[tuple[int, bool]], now: int) -> None:
    q = TimerQueue()
    fired: list[int] = []
    for index, (deadline, cancel) in enumerate(entries):
        timer = q.add(deadline, lambda index=index: fired.append(index))
        if cancel:
            q.cancel(timer)
    live = [(d, i) for i, (d, c) in enumerate(entries) if not c]
    expected = [i for d, i in sorted(live) if d <= now]
    assert q.run_due(now) == len(expected)
    assert fired == expected
    rest = [d for d, _ in live if d > now]
    assert q.next_deadline() == (min(rest) if rest else None)
    assert len(q) == len(rest)
