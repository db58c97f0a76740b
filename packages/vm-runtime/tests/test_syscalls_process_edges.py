"""Syscalls at the edge between the guest and the emulator's own host process, called through
the dispatcher the way a riscv64 guest calls them: close, close_range and dup3 leave the
emulator's own descriptors alone (EBADF, as for a descriptor the guest never had), and prctl's
parent-death signal and flags are the host process's, read back as set.
"""

from __future__ import annotations

import errno
import os
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from syscall_guest import BUF, Guest, make_guest

PR_SET_PDEATHSIG, PR_GET_PDEATHSIG, PR_GET_KEEPCAPS, PR_SET_KEEPCAPS = 1, 2, 7, 8


@pytest.fixture
def guest() -> Iterator[Guest]:
    g = make_guest()
    yield g
    g.close()


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_close_range_spares_the_emulators_descriptors(guest: Guest) -> None:
    fds = [os.open(os.devnull, os.O_RDONLY) for _ in range(5)]
    ours = fds[2]
    guest.p.vfork_gate = ours  # one of the emulator's own, as in a vfork child
    try:
        assert guest.call("close_range", fds[0], fds[-1], 0) == 0
        assert [_is_open(fd) for fd in fds] == [False, False, True, False, False]
        assert guest.call("close", ours) == -errno.EBADF
        assert guest.call("dup3", 0, ours, 0) == -errno.EBADF
        assert _is_open(ours)
        # a range that is only ours closes nothing, and a reversed one is EINVAL
        assert guest.call("close_range", ours, ours, 0) == 0
        assert guest.call("close_range", 5, 4, 0) == -errno.EINVAL
        assert _is_open(ours)
    finally:
        guest.p.vfork_gate = None
        for fd in fds:
            if _is_open(fd):
                os.close(fd)


def test_prctl_parent_death_signal_and_keepcaps_read_back(guest: Guest) -> None:
    try:
        assert guest.call("prctl", PR_SET_PDEATHSIG, 10, 0, 0, 0) == 0
        assert guest.call("prctl", PR_GET_PDEATHSIG, BUF, 0, 0, 0) == 0
        assert struct.unpack("<i", guest.p.mem.read(BUF, 4)) == (10,)
        assert guest.call("prctl", PR_SET_PDEATHSIG, 99, 0, 0, 0) == -errno.EINVAL
        assert guest.call("prctl", PR_GET_PDEATHSIG, 0x7000000, 0, 0, 0) == -errno.EFAULT
        assert guest.call("prctl", PR_SET_KEEPCAPS, 1, 0, 0, 0) == 0
        assert guest.call("prctl", PR_GET_KEEPCAPS, 0, 0, 0, 0) == 1
    finally:
        guest.call("prctl", PR_SET_PDEATHSIG, 0, 0, 0, 0)
        guest.call("prctl", PR_SET_KEEPCAPS, 0, 0, 0, 0)
    assert guest.call("prctl", 0x7FFF, 0, 0, 0, 0) == -errno.EINVAL  # unknown: EINVAL
