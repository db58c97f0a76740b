"""Syscalls only x86_64 has: arch_prctl (the FS and GS bases), time, getpgrp."""

from __future__ import annotations

import os
import struct
import time

from . import Errno, syscall

ARCH_SET_GS, ARCH_SET_FS, ARCH_GET_FS, ARCH_GET_GS = 0x1001, 0x1002, 0x1003, 0x1004
EINVAL, EPERM = 22, 1
M64 = (1 << 64) - 1
#: the highest user address Linux accepts for a base (TASK_SIZE_MAX of 4-level paging)
_TASK_SIZE = (1 << 47) - 4096


@syscall("arch_prctl", "hex", "hex")
def sys_arch_prctl(p, t, code: int, addr: int) -> int:
    state = t.state
    if code in (ARCH_SET_FS, ARCH_SET_GS):
        if addr >= _TASK_SIZE:
            raise Errno(EPERM)
        if code == ARCH_SET_FS:
            state.fs_base = addr
        else:
            state.gs_base = addr
        state.fs_dirty = True
        return 0
    if code in (ARCH_GET_FS, ARCH_GET_GS):
        value = state.fs_base if code == ARCH_GET_FS else state.gs_base
        p.mem.write(addr, struct.pack("<Q", value & M64))
        return 0
    raise Errno(EINVAL)


@syscall("time", "ptr")
def sys_time(p, t, addr: int) -> int:
    now = int(time.time())
    if addr:
        p.mem.write(addr, struct.pack("<q", now))
    return now


@syscall("getpgrp")
def sys_getpgrp(p, t) -> int:
    return os.getpgrp()
