"""Guest time: virtual clocks and a queue of timers with deadlines in guest nanoseconds."""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable


class Clock:
    """Guest time in nanoseconds, driven by a host monotonic source.

    It starts at `start_ns`, advances with the source while running and
    stands still while paused (a paused VM sees no time pass). `set_ns`
    moves it, e.g. to the time saved in a snapshot.
    """

    def __init__(self, *, start_ns: int = 0, source: Callable[[], int] = time.monotonic_ns) -> None:
        self._source = source
        self._lock = threading.Lock()
        self._guest_at_mark = start_ns
        self._host_at_mark = source()
        self._paused = False

    @property
    def paused(self) -> bool:
        """Whether guest time is standing still."""
        return self._paused

    def now_ns(self) -> int:
        """The current guest time."""
        with self._lock:
            if self._paused:
                return self._guest_at_mark
            return self._guest_at_mark + (self._source() - self._host_at_mark)

    def pause(self) -> None:
        """Stop guest time; does nothing when already paused."""
        with self._lock:
            if not self._paused:
                self._guest_at_mark += self._source() - self._host_at_mark
                self._paused = True

    def resume(self) -> None:
        """Let guest time run again from where it stopped."""
        with self._lock:
            if self._paused:
                self._host_at_mark = self._source()
                self._paused = False

    def set_ns(self, now_ns: int) -> None:
        """Make the current guest time `now_ns`."""
        with self._lock:
            self._guest_at_mark = now_ns
            self._host_at_mark = self._source()


class ManualClock:
    """Guest time that moves only when told to: for deterministic runs and tests."""

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns

    def now_ns(self) -> int:
        """The current guest time."""
        return self._now

    def advance(self, delta_ns: int) -> int:
        """Move time forward by `delta_ns` (not negative); return the new time."""
        if delta_ns < 0:
            raise ValueError(f"guest time cannot go backwards (delta {delta_ns} ns)")
        self._now += delta_ns
        return self._now

    def set_ns(self, now_ns: int) -> None:
        """Make the current guest time `now_ns`."""
        self._now = now_ns


class Timer:
    """A handle to one pending callback in a `TimerQueue`."""

    __slots__ = ("_active", "_seq", "callback", "deadline_ns")

    def __init__(self, deadline_ns: int, callback: Callable[[], None], seq: int) -> None:
        self.deadline_ns = deadline_ns
        self.callback = callback
        self._seq = seq
        self._active = True

    @property
    def active(self) -> bool:
        """True until the timer fires or is cancelled."""
        return self._active

    def __lt__(self, other: Timer) -> bool:
        return (self.deadline_ns, self._seq) < (other.deadline_ns, other._seq)

    def __repr__(self) -> str:
        state = "active" if self._active else "done"
        return f"Timer(deadline_ns={self.deadline_ns}, {state})"


class TimerQueue:
    """Callbacks ordered by guest-time deadline.

    The owner (the run loop) calls `run_due(now)` and sleeps or runs the guest
    until `next_deadline()`. Timers with equal deadlines fire in the order they
    were added. Adding and cancelling is safe from any thread; callbacks run on
    the thread calling `run_due`, outside the queue's lock.
    """

    def __init__(self) -> None:
        self._heap: list[Timer] = []
        self._seq = 0
        self._active = 0
        self._lock = threading.Lock()

    def add(self, deadline_ns: int, callback: Callable[[], None]) -> Timer:
        """Schedule `callback()` at guest time `deadline_ns`; return its handle."""
        with self._lock:
            timer = Timer(deadline_ns, callback, self._seq)
            self._seq += 1
            heapq.heappush(self._heap, timer)
            self._active += 1
        return timer

    def cancel(self, timer: Timer) -> bool:
        """Stop `timer` from firing; False if it already fired or was cancelled."""
        with self._lock:
            if not timer._active:
                return False
            timer._active = False
            self._active -= 1
            if len(self._heap) > 2 * self._active + 64:  # mostly cancelled: compact
                self._heap = [t for t in self._heap if t._active]
                heapq.heapify(self._heap)
            return True

    def next_deadline(self) -> int | None:
        """The earliest pending deadline, or None when nothing is pending."""
        with self._lock:
            self._drop_cancelled()
            return self._heap[0].deadline_ns if self._heap else None

    def run_due(self, now_ns: int) -> int:
        """Fire, in deadline order, every timer due at `now_ns`; return how many fired.

        Timers that callbacks add during this call wait for the next call,
        even if already due, so a callback re-arming itself cannot loop forever.
        """
        fired = 0
        with self._lock:
            first_new = self._seq
        while True:
            with self._lock:
                timer = self._pop_due(now_ns, first_new)
                if timer is None:
                    return fired
                timer._active = False
                self._active -= 1
            timer.callback()
            fired += 1

    def _pop_due(self, now_ns: int, first_new: int) -> Timer | None:
        # Timers added during run_due can sit at the head ahead of older due
        # ones; put them aside and restore them afterwards.
        deferred: list[Timer] = []
        found: Timer | None = None
        while self._heap and self._heap[0].deadline_ns <= now_ns:
            timer = heapq.heappop(self._heap)
            if not timer._active:
                continue
            if timer._seq >= first_new:
                deferred.append(timer)
                continue
            found = timer
            break
        for timer in deferred:
            heapq.heappush(self._heap, timer)
        return found

    def _drop_cancelled(self) -> None:
        while self._heap and not self._heap[0]._active:
            heapq.heappop(self._heap)

    def __len__(self) -> int:
        """The number of timers still pending."""
        return self._active
