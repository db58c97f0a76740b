"""Processes and threads: exit, ids, uname, limits, clone (threads and fork), execve, wait4,
futex, and the small bookkeeping calls glibc makes at start-up."""

from __future__ import annotations

import os
import resource
import struct
import sys
import threading
import time

from .. import signals as sig
from ..process import ProcessExit, Restart, Thread, ThreadExit
from . import Errno, syscall

M64 = (1 << 64) - 1
EINVAL, ENOSYS, EAGAIN, ETIMEDOUT, ESRCH, ECHILD = 22, 38, 11, 110, 3, 10

CLONE_VM, CLONE_FS, CLONE_FILES, CLONE_SIGHAND = 0x100, 0x200, 0x400, 0x800
CLONE_VFORK, CLONE_PARENT, CLONE_THREAD = 0x4000, 0x8000, 0x10000
CLONE_SETTLS, CLONE_PARENT_SETTID, CLONE_CHILD_CLEARTID = 0x80000, 0x100000, 0x200000
CLONE_CHILD_SETTID = 0x1000000


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


@syscall("exit", "int")
def sys_exit(p, t, status: int) -> int:
    _thread_cleanup(p, t)
    raise ThreadExit(status & 0xFF)


@syscall("exit_group", "int")
def sys_exit_group(p, t, status: int) -> int:
    raise ProcessExit(status & 0xFF)


def _thread_cleanup(p, t: Thread) -> None:
    if t.clear_child_tid:
        try:
            p.mem.write(t.clear_child_tid, b"\0\0\0\0")
            futex_wake(p, t.clear_child_tid, 1)
        except Exception:
            pass
    with p.lock:
        p.threads.pop(t.tid, None)


@syscall("getpid")
def sys_getpid(p, t) -> int:
    return p.pid


@syscall("getppid")
def sys_getppid(p, t) -> int:
    return os.getppid()


@syscall("gettid")
def sys_gettid(p, t) -> int:
    return t.tid


for _name, _fn in (("getuid", os.getuid), ("geteuid", os.geteuid), ("getgid", os.getgid),
                   ("getegid", os.getegid)):
    syscall(_name)(lambda p, t, _f=_fn: _f())


@syscall("getresuid", "ptr", "ptr", "ptr")
def sys_getresuid(p, t, r: int, e: int, s: int) -> int:
    for addr, v in zip((r, e, s), os.getresuid(), strict=True):
        p.mem.write(addr, struct.pack("<I", v))
    return 0


@syscall("getresgid", "ptr", "ptr", "ptr")
def sys_getresgid(p, t, r: int, e: int, s: int) -> int:
    for addr, v in zip((r, e, s), os.getresgid(), strict=True):
        p.mem.write(addr, struct.pack("<I", v))
    return 0


@syscall("setuid", "int")
def sys_setuid(p, t, uid: int) -> int:
    os.setuid(uid)
    return 0


@syscall("setgid", "int")
def sys_setgid(p, t, gid: int) -> int:
    os.setgid(gid)
    return 0


@syscall("getgroups", "int", "ptr")
def sys_getgroups(p, t, size: int, addr: int) -> int:
    groups = os.getgroups()
    if size == 0:
        return len(groups)
    if size < len(groups):
        raise Errno(EINVAL)
    p.mem.write(addr, struct.pack(f"<{len(groups)}I", *groups))
    return len(groups)


@syscall("getpgid", "int")
def sys_getpgid(p, t, pid: int) -> int:
    return os.getpgid(pid)


@syscall("setpgid", "int", "int")
def sys_setpgid(p, t, pid: int, pgid: int) -> int:
    os.setpgid(pid, pgid)
    return 0


@syscall("getsid", "int")
def sys_getsid(p, t, pid: int) -> int:
    return os.getsid(pid)


@syscall("setsid")
def sys_setsid(p, t) -> int:
    return os.setsid()


@syscall("uname", "ptr")
def sys_uname(p, t, addr: int) -> int:
    u = os.uname()
    fields = [u.sysname, u.nodename, u.release, u.version, p.arch.uname_machine, "(none)"]
    p.mem.write(addr, b"".join(f.encode()[:64].ljust(65, b"\0") for f in fields))
    return 0


@syscall("set_tid_address", "ptr")
def sys_set_tid_address(p, t, addr: int) -> int:
    t.clear_child_tid = addr
    return t.tid


@syscall("set_robust_list", "ptr", "size")
def sys_set_robust_list(p, t, head: int, length: int) -> int:
    if length != 24:
        raise Errno(EINVAL)
    t.robust_list = head
    return 0


@syscall("rseq", "ptr", "size", "int", "hex")
def sys_rseq(p, t, addr: int, length: int, flags: int, sig_: int) -> int:
    raise Errno(ENOSYS)  # optional for glibc: it falls back when rseq is unavailable


@syscall("riscv_hwprobe", "ptr", "size", "size", "ptr", "int")
def sys_riscv_hwprobe(p, t, pairs: int, count: int, ncpus: int, cpus: int, flags: int) -> int:
    raise Errno(ENOSYS)  # glibc treats an absent hwprobe as "no optional extensions"


_RLIMITS = {0: resource.RLIMIT_CPU, 1: resource.RLIMIT_FSIZE, 2: resource.RLIMIT_DATA,
            3: resource.RLIMIT_STACK, 4: resource.RLIMIT_CORE, 5: resource.RLIMIT_RSS,
            6: resource.RLIMIT_NPROC, 7: resource.RLIMIT_NOFILE, 8: resource.RLIMIT_MEMLOCK,
            9: resource.RLIMIT_AS}


def _rlim(v: int) -> int:
    return M64 if v == resource.RLIM_INFINITY or v < 0 else v


@syscall("prlimit64", "int", "int", "ptr", "ptr")
def sys_prlimit64(p, t, pid: int, which: int, new: int, old: int) -> int:
    res = _RLIMITS.get(which)
    if res is None:
        if old:
            p.mem.write(old, struct.pack("<QQ", M64, M64))
        return 0
    if old:
        soft, hard = resource.getrlimit(res)
        p.mem.write(old, struct.pack("<QQ", _rlim(soft), _rlim(hard)))
    if new:
        soft, hard = struct.unpack("<QQ", p.mem.read(new, 16))
        conv = [resource.RLIM_INFINITY if v == M64 else v for v in (soft, hard)]
        if res != resource.RLIMIT_STACK and res != resource.RLIMIT_AS:
            resource.setrlimit(res, tuple(conv))
    return 0


@syscall("getrlimit", "int", "ptr")
def sys_getrlimit(p, t, which: int, old: int) -> int:
    return sys_prlimit64(p, t, 0, which, 0, old)


@syscall("setrlimit", "int", "ptr")
def sys_setrlimit(p, t, which: int, new: int) -> int:
    return sys_prlimit64(p, t, 0, which, new, 0)


def _timeval(seconds: float) -> bytes:
    return struct.pack("<qq", int(seconds), int((seconds % 1) * 1_000_000))


@syscall("getrusage", "int", "ptr")
def sys_getrusage(p, t, who: int, addr: int) -> int:
    who = _s32(who)
    host = {0: resource.RUSAGE_SELF, -1: resource.RUSAGE_CHILDREN, 1: resource.RUSAGE_THREAD}
    if who not in host:
        raise Errno(EINVAL)
    p.mem.write(addr, pack_rusage(resource.getrusage(host[who])))
    return 0


def pack_rusage(ru) -> bytes:
    rest = (ru.ru_maxrss, ru.ru_ixrss, ru.ru_idrss, ru.ru_isrss, ru.ru_minflt, ru.ru_majflt,
            ru.ru_nswap, ru.ru_inblock, ru.ru_oublock, ru.ru_msgsnd, ru.ru_msgrcv,
            ru.ru_nsignals, ru.ru_nvcsw, ru.ru_nivcsw)
    return _timeval(ru.ru_utime) + _timeval(ru.ru_stime) + struct.pack("<14q", *rest)


@syscall("sysinfo", "ptr")
def sys_sysinfo(p, t, addr: int) -> int:
    with open("/proc/uptime") as f:
        uptime = int(float(f.read().split()[0]))
    load = [int(x * 65536) for x in os.getloadavg()]
    pages = os.sysconf("SC_PHYS_PAGES")
    avail = os.sysconf("SC_AVPHYS_PAGES")
    page = os.sysconf("SC_PAGE_SIZE")
    procs = sum(1 for d in os.listdir("/proc") if d.isdigit()) & 0xFFFF
    data = struct.pack("<q3Q6QHH4xQQI", uptime, *load, pages * page, avail * page, 0, 0, 0, 0,
                       procs, 0, 0, 0, 1)
    p.mem.write(addr, data.ljust(112, b"\0"))
    return 0


@syscall("prctl", "int", "hex", "hex", "hex", "hex")
def sys_prctl(p, t, option: int, a2: int, a3: int, a4: int, a5: int) -> int:
    if option == 15:  # PR_SET_NAME
        return 0
    if option == 16:  # PR_GET_NAME
        p.mem.write(a2, os.path.basename(p.exe).encode()[:15].ljust(16, b"\0"))
        return 0
    raise Errno(EINVAL)


@syscall("sched_getaffinity", "int", "size", "ptr")
def sys_sched_getaffinity(p, t, pid: int, size: int, addr: int) -> int:
    cpus = os.sched_getaffinity(0)
    nbytes = max(8, ((max(cpus) // 64) + 1) * 8)
    if size < nbytes:
        raise Errno(EINVAL)
    mask = sum(1 << c for c in cpus)
    p.mem.write(addr, mask.to_bytes(nbytes, "little"))
    return nbytes


@syscall("sched_setaffinity", "int", "size", "ptr")
def sys_sched_setaffinity(p, t, pid: int, size: int, addr: int) -> int:
    return 0


@syscall("sched_yield")
def sys_sched_yield(p, t) -> int:
    time.sleep(0)
    return 0


@syscall("getcpu", "ptr", "ptr", "ptr")
def sys_getcpu(p, t, cpu: int, node: int, cache: int) -> int:
    if cpu:
        p.mem.write(cpu, b"\0\0\0\0")
    if node:
        p.mem.write(node, b"\0\0\0\0")
    return 0


# -- clone, fork, execve, wait ------------------------------------------------------------------
@syscall("clone", "hex", "hex", "ptr", "hex", "ptr")
def sys_clone(p, t, flags: int, newsp: int, ptid: int, tls: int, ctid: int) -> int:
    if flags & CLONE_VM and flags & CLONE_THREAD:
        return _new_thread(p, t, flags, newsp, ptid, tls, ctid)
    if flags & CLONE_VM and not flags & CLONE_VFORK:
        raise Errno(EINVAL)  # a separate process sharing memory cannot be emulated
    return _fork(p, t, flags, newsp, ptid, tls, ctid)


@syscall("clone3", "ptr", "size")
def sys_clone3(p, t, args: int, size: int) -> int:
    raise Errno(ENOSYS)  # glibc falls back to clone


def _fork(p, t, flags: int, newsp: int, ptid: int, tls: int, ctid: int) -> int:
    # vfork: the parent waits until the child has exec'd or exited, which closes the child's
    # copy of this close-on-exec pipe
    gate = os.pipe2(os.O_CLOEXEC) if flags & CLONE_VFORK else None
    pid = os.fork()
    if pid == 0:
        if gate is not None:
            os.close(gate[0])
            p.vfork_gate = gate[1]
        p.pid = os.getpid()
        child = t
        with p.lock:
            p.threads = {}
            child.tid = p.pid
            p.threads[child.tid] = child
        p.lock = threading.RLock()
        p.futex_lock = threading.Lock()
        p.futex_waiters = {}
        if newsp:
            p.arch.set_sp(t.state, newsp)
        if flags & CLONE_SETTLS:
            p.arch.set_tls(t.state, tls)
        if flags & CLONE_CHILD_SETTID:
            p.mem.write(ctid, struct.pack("<i", p.pid))
        if flags & CLONE_CHILD_CLEARTID:
            t.clear_child_tid = ctid
        return 0
    if flags & CLONE_PARENT_SETTID:
        p.mem.write(ptid, struct.pack("<i", pid))
    if gate is not None:
        os.close(gate[1])
        try:
            os.read(gate[0], 1)
        finally:
            os.close(gate[0])
    return pid


def _new_thread(p, t, flags: int, newsp: int, ptid: int, tls: int, ctid: int) -> int:
    state = t.state.copy()
    p.arch.set_return_value(state, 0)
    if newsp:
        p.arch.set_sp(state, newsp)
    if flags & CLONE_SETTLS:
        p.arch.set_tls(state, tls)
    started = threading.Event()
    box: dict[str, Thread] = {}

    def body() -> None:
        child = Thread(p, state, threading.get_native_id())
        child.signals.mask = t.signals.mask
        if flags & CLONE_CHILD_CLEARTID:
            child.clear_child_tid = ctid
        with p.lock:
            p.threads[child.tid] = child
        box["thread"] = child
        if flags & CLONE_CHILD_SETTID:
            p.mem.write(ctid, struct.pack("<i", child.tid))
        if flags & CLONE_PARENT_SETTID:
            p.mem.write(ptid, struct.pack("<i", child.tid))
        started.set()
        _run_child_thread(p, child)

    host = threading.Thread(target=body, name="guest-thread", daemon=True)
    host.start()
    started.wait()
    return box["thread"].tid


def _run_child_thread(p, child: Thread) -> None:
    from ..process import KilledBySignal

    try:
        p.run_thread(child)
    except ThreadExit:
        pass
    except ProcessExit as done:
        p.exit_process(done.status)
    except KilledBySignal as killed:
        p.die_by_signal(killed.signo, killed.message)
    except BaseException as exc:
        p.write_stderr(f"vm: internal error in guest thread {child.tid}: {exc!r}\n")
        os._exit(70)


@syscall("execve", "str", "ptr", "ptr")
def sys_execve(p, t, path_addr: int, argv_addr: int, envp_addr: int) -> int:
    from ..exec import execve

    path = p.mem.read_cstring(path_addr)
    argv = _read_string_array(p, argv_addr)
    envp = _read_string_array(p, envp_addr)
    execve(p, path, argv, envp)  # returns only on failure (raises Errno)
    raise Restart


def _read_string_array(p, addr: int) -> list[bytes]:
    out = []
    while addr:
        ptr = struct.unpack("<Q", p.mem.read(addr, 8))[0]
        if ptr == 0:
            break
        out.append(p.mem.read_cstring(ptr))
        addr += 8
        if len(out) > 100_000:
            raise Errno(7)  # E2BIG
    return out


@syscall("wait4", "int", "ptr", "int", "ptr")
def sys_wait4(p, t, pid: int, status_addr: int, options: int, rusage_addr: int) -> int:
    pid = _s32(pid)
    try:
        got, status, ru = os.wait4(pid, options & ~0x40000000)
    except ChildProcessError:
        raise Errno(ECHILD) from None
    if got and status_addr:
        p.mem.write(status_addr, struct.pack("<i", status))
    if got and rusage_addr:
        p.mem.write(rusage_addr, pack_rusage(ru))
    return got


@syscall("waitid", "int", "int", "ptr", "int", "ptr")
def sys_waitid(p, t, idtype: int, id_: int, infop: int, options: int, ru: int) -> int:
    result = os.waitid(idtype, id_, options)
    if infop:
        if result is None:
            p.mem.write(infop, b"\0" * 128)
        else:
            info = struct.pack("<iii4xiiii", result.si_signo, 0, result.si_code, result.si_pid,
                               result.si_uid, result.si_status, 0)
            p.mem.write(infop, info.ljust(128, b"\0"))
    return 0


# -- signals sent to processes and threads -------------------------------------------------------
@syscall("kill", "int", "sig")
def sys_kill(p, t, pid: int, signo: int) -> int:
    pid = _s32(pid)
    if signo > sig.NSIG:
        raise Errno(EINVAL)
    if pid == p.pid or (pid == 0 and signo == 0):
        if signo:
            p.send_signal(t, sig.PendingSignal(signo, sig.SI_USER, pid=p.pid, uid=os.getuid()))
        return 0
    os.kill(pid, signo)
    return 0


@syscall("tgkill", "int", "int", "sig")
def sys_tgkill(p, t, tgid: int, tid: int, signo: int) -> int:
    if signo > sig.NSIG:
        raise Errno(EINVAL)
    target = p.threads.get(tid)
    if _s32(tgid) != p.pid or target is None:
        raise Errno(ESRCH)
    if signo:
        p.send_signal(target, sig.PendingSignal(signo, sig.SI_TKILL, pid=p.pid, uid=os.getuid()))
    return 0


@syscall("tkill", "int", "sig")
def sys_tkill(p, t, tid: int, signo: int) -> int:
    return sys_tgkill(p, t, p.pid, tid, signo)


# -- futex ---------------------------------------------------------------------------------------
FUTEX_WAIT, FUTEX_WAKE, FUTEX_REQUEUE, FUTEX_CMP_REQUEUE, FUTEX_WAKE_OP = 0, 1, 3, 4, 5
FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET = 9, 10
FUTEX_CMD_MASK = ~(128 | 256)


class _Waiter:
    __slots__ = ("addr", "bitset", "event")

    def __init__(self, addr: int, bitset: int) -> None:
        self.addr = addr
        self.bitset = bitset
        self.event = threading.Event()


def futex_wake(p, addr: int, count: int, bitset: int = 0xFFFFFFFF) -> int:
    woken = 0
    with p.futex_lock:
        waiters = p.futex_waiters.get(addr, [])
        for w in list(waiters):
            if woken >= count:
                break
            if w.bitset & bitset:
                waiters.remove(w)
                w.event.set()
                woken += 1
    return woken


@syscall("futex", "ptr", "int", "int", "ptr", "ptr", "int")
def sys_futex(p, t, addr: int, op: int, val: int, timeout: int, addr2: int, val3: int) -> int:
    cmd = op & FUTEX_CMD_MASK & 0x7F
    if cmd in (FUTEX_WAIT, FUTEX_WAIT_BITSET):
        bitset = val3 if cmd == FUTEX_WAIT_BITSET else 0xFFFFFFFF
        if bitset == 0:
            raise Errno(EINVAL)
        deadline = None
        if timeout:
            sec, nsec = struct.unpack("<qq", p.mem.read(timeout, 16))
            if cmd == FUTEX_WAIT:
                deadline = time.monotonic() + sec + nsec / 1e9
            else:  # absolute, on CLOCK_REALTIME if op has 256, else CLOCK_MONOTONIC
                now = time.time() if op & 256 else time.monotonic()
                deadline = time.monotonic() + (sec + nsec / 1e9 - now)
        waiter = _Waiter(addr, bitset)
        with p.futex_lock:
            current = struct.unpack("<I", p.mem.read(addr, 4))[0]
            if current != val & 0xFFFFFFFF:
                raise Errno(EAGAIN)
            p.futex_waiters.setdefault(addr, []).append(waiter)
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            if waiter.event.wait(min(remaining, 0.05) if remaining is not None else 0.05):
                return 0
            if t.signals.pending or p.host_signals:
                with p.futex_lock:
                    if waiter in p.futex_waiters.get(addr, []):
                        p.futex_waiters[addr].remove(waiter)
                        raise Errno(4)  # EINTR
                return 0
        with p.futex_lock:
            if waiter in p.futex_waiters.get(addr, []):
                p.futex_waiters[addr].remove(waiter)
                raise Errno(ETIMEDOUT)
        return 0
    if cmd in (FUTEX_WAKE, FUTEX_WAKE_BITSET):
        bitset = val3 if cmd == FUTEX_WAKE_BITSET else 0xFFFFFFFF
        return futex_wake(p, addr, val, bitset)
    if cmd in (FUTEX_REQUEUE, FUTEX_CMP_REQUEUE):
        with p.futex_lock:
            if cmd == FUTEX_CMP_REQUEUE:
                current = struct.unpack("<I", p.mem.read(addr, 4))[0]
                if current != val3 & 0xFFFFFFFF:
                    raise Errno(EAGAIN)
            waiters = p.futex_waiters.get(addr, [])
            woken = 0
            while waiters and woken < val:
                waiters.pop(0).event.set()
                woken += 1
            moved = 0
            limit = timeout  # val2 travels in the timeout argument
            while waiters and moved < limit:
                w = waiters.pop(0)
                w.addr = addr2
                p.futex_waiters.setdefault(addr2, []).append(w)
                moved += 1
            return woken + moved
    if cmd == FUTEX_WAKE_OP:
        return _futex_wake_op(p, addr, val, timeout, addr2, val3)
    raise Errno(ENOSYS)


def _futex_wake_op(p, addr: int, count: int, count2: int, addr2: int, encoded: int) -> int:
    op = (encoded >> 28) & 7
    cmp = (encoded >> 24) & 15
    oparg = (encoded >> 12) & 0xFFF
    cmparg = encoded & 0xFFF
    if (encoded >> 28) & 8:
        oparg = 1 << oparg
    with p.futex_lock:
        old = struct.unpack("<I", p.mem.read(addr2, 4))[0]
        new = [oparg, old + oparg, old | oparg, old & ~oparg, old ^ oparg][op] & 0xFFFFFFFF
        p.mem.write(addr2, struct.pack("<I", new))
    woken = futex_wake(p, addr, count)
    sold = old - (1 << 32) if old >> 31 else old
    ok = [sold == cmparg, sold != cmparg, sold < cmparg, sold <= cmparg, sold > cmparg,
          sold >= cmparg][cmp] if cmp < 6 else False
    if ok:
        woken += futex_wake(p, addr2, count2)
    return woken


__all__ = ["futex_wake", "sys"]
