"""Time: clock_gettime, clock_getres, gettimeofday, nanosleep, clock_nanosleep, times."""

from __future__ import annotations

import os
import struct
import time as _time

from . import Errno, syscall

EINVAL, EINTR = 22, 4
_CLOCKS = {0: _time.CLOCK_REALTIME, 1: _time.CLOCK_MONOTONIC,
           2: _time.CLOCK_PROCESS_CPUTIME_ID, 3: _time.CLOCK_THREAD_CPUTIME_ID,
           4: getattr(_time, "CLOCK_MONOTONIC_RAW", _time.CLOCK_MONOTONIC),
           5: getattr(_time, "CLOCK_REALTIME_COARSE", _time.CLOCK_REALTIME),
           6: getattr(_time, "CLOCK_MONOTONIC_COARSE", _time.CLOCK_MONOTONIC),
           7: getattr(_time, "CLOCK_BOOTTIME", _time.CLOCK_MONOTONIC),
           11: getattr(_time, "CLOCK_TAI", _time.CLOCK_REALTIME)}


def _clock(clk: int) -> int:
    clock = _CLOCKS.get(clk & 0xFFFFFFFF)
    if clock is None:
        raise Errno(EINVAL)
    return clock


@syscall("clock_gettime", "int", "ptr")
def sys_clock_gettime(p, t, clk: int, addr: int) -> int:
    ns = _time.clock_gettime_ns(_clock(clk))
    p.mem.write(addr, struct.pack("<qq", ns // 10**9, ns % 10**9))
    return 0


@syscall("clock_getres", "int", "ptr")
def sys_clock_getres(p, t, clk: int, addr: int) -> int:
    res = _time.clock_getres(_clock(clk))
    if addr:
        ns = round(res * 1e9)
        p.mem.write(addr, struct.pack("<qq", ns // 10**9, ns % 10**9))
    return 0


@syscall("gettimeofday", "ptr", "ptr")
def sys_gettimeofday(p, t, tv: int, tz: int) -> int:
    ns = _time.time_ns()
    if tv:
        p.mem.write(tv, struct.pack("<qq", ns // 10**9, (ns % 10**9) // 1000))
    if tz:
        p.mem.write(tz, struct.pack("<ii", 0, 0))
    return 0


def _sleep(p, t, seconds: float, remaining_addr: int = 0) -> int:
    deadline = _time.monotonic() + seconds
    while True:
        left = deadline - _time.monotonic()
        if left <= 0:
            return 0
        _time.sleep(min(left, 0.02))
        if p.host_signals or any(not t.signals.mask & (1 << (s.signo - 1))
                                 for s in t.signals.pending):
            if remaining_addr:
                left = max(0.0, deadline - _time.monotonic())
                p.mem.write(remaining_addr, struct.pack("<qq", int(left), int(left % 1 * 1e9)))
            raise Errno(EINTR)


@syscall("nanosleep", "ptr", "ptr")
def sys_nanosleep(p, t, req: int, rem: int) -> int:
    sec, nsec = struct.unpack("<qq", p.mem.read(req, 16))
    if sec < 0 or not 0 <= nsec < 10**9:
        raise Errno(EINVAL)
    return _sleep(p, t, sec + nsec / 1e9, rem)


@syscall("clock_nanosleep", "int", "int", "ptr", "ptr")
def sys_clock_nanosleep(p, t, clk: int, flags: int, req: int, rem: int) -> int:
    clock = _clock(clk)
    sec, nsec = struct.unpack("<qq", p.mem.read(req, 16))
    if sec < 0 or not 0 <= nsec < 10**9:
        raise Errno(EINVAL)
    target = sec + nsec / 1e9
    if flags & 1:  # TIMER_ABSTIME
        target -= _time.clock_gettime(clock)
        rem = 0
    return _sleep(p, t, max(target, 0.0), rem)


@syscall("times", "ptr")
def sys_times(p, t, addr: int) -> int:
    tm = os.times()
    hz = 100
    if addr:
        p.mem.write(addr, struct.pack("<qqqq", int(tm.user * hz), int(tm.system * hz),
                                      int(tm.children_user * hz), int(tm.children_system * hz)))
    return int(tm.elapsed * hz) & ((1 << 63) - 1)
