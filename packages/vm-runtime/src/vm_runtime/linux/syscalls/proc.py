"""Processes and threads: exit, ids, uname, limits, clone (threads and fork), execve, wait4,
futex, and the small bookkeeping calls glibc makes at start-up."""

from __future__ import annotations

import ctypes
import os
import resource
import struct
import sys
import threading
import time

from .. import signals as sig
from ..process import ProcessExit, Restart, Thread, ThreadExit
from . import Errno, syscall
from . import host as _host
from .util import s32 as _s32

M64 = (1 << 64) - 1
EINVAL, ENOSYS, EAGAIN, ETIMEDOUT, ESRCH, ECHILD = 22, 38, 11, 110, 3, 10

CLONE_VM, CLONE_FS, CLONE_FILES, CLONE_SIGHAND = 0x100, 0x200, 0x400, 0x800
CLONE_VFORK, CLONE_PARENT, CLONE_THREAD = 0x4000, 0x8000, 0x10000
CLONE_SETTLS, CLONE_PARENT_SETTID, CLONE_CHILD_CLEARTID = 0x80000, 0x100000, 0x200000
CLONE_CHILD_SETTID = 0x1000000


@syscall("exit", "int")
def sys_exit(p, t, status: int) -> int:
    _thread_cleanup(p, t)
    raise ThreadExit(status & 0xFF)


@syscall("exit_group", "int")
def sys_exit_group(p, t, status: int) -> int:
    raise ProcessExit(status & 0xFF)


def _thread_cleanup(p, t: Thread) -> None:
    """What the kernel does for an exiting thread (mm_release): the robust futex list, then
    *clear_child_tid = 0 and a futex wake on it (pthread_join waits on that)."""
    _exit_robust_list(p, t)
    if t.clear_child_tid:
        try:
            p.mem.write(t.clear_child_tid, b"\0\0\0\0")
            futex_wake(p, t.clear_child_tid, 1)
        except Exception:
            pass
    with p.lock:
        p.threads.pop(t.tid, None)
        with p.siglock:  # its pending process-wide signals are for the others now
            if p.shared_pending.bits:
                p.wake_all()


FUTEX_WAITERS, FUTEX_OWNER_DIED, FUTEX_TID_MASK = 0x80000000, 0x40000000, 0x3FFFFFFF
ROBUST_LIST_LIMIT = 2048


def _exit_robust_list(p, t: Thread) -> None:
    """kernel/futex/core.c exit_robust_list: each robust mutex the thread holds is marked
    FUTEX_OWNER_DIED and one waiter woken."""
    head = t.robust_list
    if not head:
        return
    try:
        entry, offset, pending = struct.unpack("<QqQ", p.mem.read(head, 24))
        entry &= ~1
        pending &= ~1
        for _ in range(ROBUST_LIST_LIMIT):
            if entry == head:
                break
            following = struct.unpack("<Q", p.mem.read(entry, 8))[0] & ~1
            if entry != pending:
                _futex_death(p, (entry + offset) & M64, t.tid)
            entry = following
        if pending:
            _futex_death(p, (pending + offset) & M64, t.tid)
    except Exception:
        pass


def _futex_death(p, addr: int, tid: int) -> None:
    with p.futex_lock:
        value = struct.unpack("<I", p.mem.read(addr, 4))[0]
        if value & FUTEX_TID_MASK != tid:
            return
        p.mem.write(addr, struct.pack("<I", (value & FUTEX_WAITERS) | FUTEX_OWNER_DIED))
    if value & FUTEX_WAITERS:
        futex_wake(p, addr, 1)


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


#: prctl options that are the host process's (or thread's) attributes as they are the guest's
#: (a guest process is a host process, a guest thread a host thread), passed through:
#: PR_SET_PDEATHSIG, PR_GET_DUMPABLE, PR_SET_DUMPABLE, PR_GET_KEEPCAPS, PR_SET_KEEPCAPS,
#: PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS
_PRCTL_HOST = frozenset((1, 3, 4, 7, 8, 36, 38, 39))
#: the same, answering through an int the guest points at: PR_GET_PDEATHSIG,
#: PR_GET_CHILD_SUBREAPER
_PRCTL_HOST_INT_OUT = frozenset((2, 37))


@syscall("prctl", "int", "hex", "hex", "hex", "hex")
def sys_prctl(p, t, option: int, a2: int, a3: int, a4: int, a5: int) -> int:
    if option == 15:  # PR_SET_NAME
        return 0
    if option == 16:  # PR_GET_NAME
        p.mem.write(a2, os.path.basename(p.exe).encode()[:15].ljust(16, b"\0"))
        return 0
    if option in _PRCTL_HOST:
        return _host.syscall("prctl", option, a2, a3, a4, a5)
    if option in _PRCTL_HOST_INT_OUT:
        out = ctypes.c_int(0)
        _host.syscall("prctl", option, out, a3, a4, a5)
        p.mem.write(a2, struct.pack("<i", out.value))
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
CSIGNAL = 0xFF


@syscall("clone", "hex", "hex", "ptr", "hex", "ptr")
def sys_clone(p, t, flags: int, newsp: int, ptid: int, tls: int, ctid: int) -> int:
    if flags & CLONE_THREAD and not flags & CLONE_SIGHAND:
        raise Errno(EINVAL)
    if flags & CLONE_SIGHAND and not flags & CLONE_VM:
        raise Errno(EINVAL)
    if flags & CLONE_VM and flags & CLONE_THREAD:
        return _new_thread(p, t, flags, newsp, ptid, tls, ctid)
    if flags & CLONE_VM and not flags & CLONE_VFORK:
        raise Errno(EINVAL)  # a separate process sharing memory cannot be emulated
    return _fork(p, t, flags, newsp, ptid, tls, ctid)


@syscall("clone3", "ptr", "size")
def sys_clone3(p, t, args: int, size: int) -> int:
    raise Errno(ENOSYS)  # glibc falls back to clone (as under qemu-user 7.2)


@syscall("fork")
def sys_fork(p, t) -> int:
    return _fork(p, t, sig.SIGCHLD, 0, 0, 0, 0)


@syscall("vfork")
def sys_vfork(p, t) -> int:
    return _fork(p, t, CLONE_VM | CLONE_VFORK | sig.SIGCHLD, 0, 0, 0, 0)


def _high_fd(fd: int) -> int:
    """Move one of our own descriptors out of the way of the guest's low numbers."""
    import fcntl

    try:
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 512)
    except OSError:
        return fd
    os.close(fd)
    return high


def _fork(p, t, flags: int, newsp: int, ptid: int, tls: int, ctid: int) -> int:
    """A new process is a fork of the emulator. vfork: the parent waits until the child has
    exec'd or exited, which closes the child's copy of a close-on-exec pipe."""
    gate = tuple(_high_fd(fd) for fd in os.pipe2(os.O_CLOEXEC)) if flags & CLONE_VFORK else None
    with p.forking():
        pid = os.fork()
    if pid == 0:
        p.after_fork_child(t)
        if gate is not None:
            os.close(gate[0])
            p.vfork_gate = gate[1]
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
            while True:
                try:
                    os.read(gate[0], 1)
                    break
                except InterruptedError:
                    continue
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
        child = p.new_thread(state, threading.get_native_id(), t.signals.mask)
        if flags & CLONE_CHILD_CLEARTID:
            child.clear_child_tid = ctid
        try:
            if flags & CLONE_CHILD_SETTID:
                p.mem.write(ctid, struct.pack("<i", child.tid))
            if flags & CLONE_PARENT_SETTID:
                p.mem.write(ptid, struct.pack("<i", child.tid))
        except Exception:
            pass
        with p.lock:
            p.threads[child.tid] = child
        box["thread"] = child
        started.set()
        _run_child_thread(p, child)

    host = threading.Thread(target=body, name="guest-thread", daemon=True)
    try:
        host.start()
    except RuntimeError:
        raise Errno(EAGAIN) from None
    started.wait()
    return box["thread"].tid


def _run_child_thread(p, child: Thread) -> None:
    from ..process import KilledBySignal

    try:
        p.run_thread(child)
    except ThreadExit as done:
        release = getattr(p.engine, "release", None)
        if release is not None:  # an accelerator's vCPU of this thread
            release(child.state)
        p.thread_exited(child, done.status)
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
    from .util import proc_self

    path = proc_self(p, p.mem.read_cstring(path_addr))  # /proc/self/exe: the guest program
    argv = _read_string_array(p, argv_addr)
    envp = _read_string_array(p, envp_addr)
    execve(p, t, path, argv, envp)  # returns only on failure (raises Errno)
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


WNOHANG, WUNTRACED, WSTOPPED, WEXITED, WCONTINUED, WNOWAIT = 1, 2, 2, 4, 8, 0x01000000
__WNOTHREAD, __WALL, __WCLONE = 0x20000000, 0x40000000, 0x80000000
_WAIT4_OPTIONS = WNOHANG | WUNTRACED | WCONTINUED | __WNOTHREAD | __WALL | __WCLONE
_WAITID_OPTIONS = WNOHANG | WEXITED | WSTOPPED | WCONTINUED | WNOWAIT | __WNOTHREAD | __WALL \
    | __WCLONE


def _wait_child(p, t, attempt, nohang: bool):
    """Run ``attempt()`` (a host wait with WNOHANG, None when no child is ready) until it
    answers; blocking waits end early for a guest signal (-ERESTARTSYS)."""
    if nohang:
        return attempt()
    return p.wait(t, attempt)


@syscall("wait4", "int", "ptr", "int", "ptr")
def sys_wait4(p, t, pid: int, status_addr: int, options: int, rusage_addr: int) -> int:
    pid = _s32(pid)
    if options & ~_WAIT4_OPTIONS:
        raise Errno(EINVAL)
    if pid == -(1 << 31):
        raise Errno(ESRCH)
    host_options = (options & (WUNTRACED | WCONTINUED)) | WNOHANG

    def attempt():
        try:
            got = os.wait4(pid, host_options)
        except ChildProcessError:
            raise Errno(ECHILD) from None
        return got if got[0] else None

    result = _wait_child(p, t, attempt, bool(options & WNOHANG))
    if result is None:
        return 0
    got, status, ru = result
    if status_addr:
        p.mem.write(status_addr, struct.pack("<i", status))
    if rusage_addr:
        p.mem.write(rusage_addr, pack_rusage(ru))
    return got


@syscall("waitid", "int", "int", "ptr", "int", "ptr")
def sys_waitid(p, t, idtype: int, id_: int, infop: int, options: int, ru: int) -> int:
    idtype, id_ = _s32(idtype), _s32(id_)
    if options & ~_WAITID_OPTIONS or not options & (WEXITED | WSTOPPED | WCONTINUED):
        raise Errno(EINVAL)
    if idtype not in (os.P_ALL, os.P_PID, os.P_PGID, getattr(os, "P_PIDFD", 3)):
        raise Errno(EINVAL)
    if idtype in (os.P_PID, os.P_PGID) and id_ <= 0 and not (idtype == os.P_PGID and id_ == 0):
        raise Errno(EINVAL)
    if idtype == os.P_PGID and id_ == 0:
        id_ = os.getpgrp()
    host_options = (options & (WEXITED | WSTOPPED | WCONTINUED | WNOWAIT)) | WNOHANG

    def attempt():
        try:
            got = os.waitid(idtype, id_, host_options)
        except ChildProcessError:
            raise Errno(ECHILD) from None
        return got

    result = _wait_child(p, t, attempt, bool(options & WNOHANG))
    if result is None:
        fields = (0, 0, 0, 0, 0, 0)
    else:
        fields = (result.si_signo, 0, result.si_code, result.si_pid, result.si_uid,
                  result.si_status)
    if result is not None and ru:
        p.mem.write(ru, bytes(144))
    if infop:
        p.mem.write(infop, struct.pack("<iii", *fields[:3]))
        p.mem.write(infop + 16, struct.pack("<iIi", *fields[3:]))
    return 0


# -- signals sent to processes and threads -------------------------------------------------------
def _host_kill(call, *args) -> None:
    try:
        call(*args)
    except ProcessLookupError:
        raise Errno(ESRCH) from None


@syscall("kill", "int", "sig")
def sys_kill(p, t, pid: int, signo: int) -> int:
    """kill_something_info: one process, our process group (0), every process we may signal
    but init and ourselves (-1), or a process group (-pgid). The part that reaches this
    process is queued at once; the host kernel carries the rest (and drops our own copy)."""
    pid, signo = _s32(pid), _s32(signo)
    if not 0 <= signo <= sig.NSIG:
        raise Errno(EINVAL)
    if pid == -(1 << 31):
        raise Errno(ESRCH)
    own = sig.PendingSignal(signo, sig.SI_USER, pid=p.pid, uid=os.getuid())
    if pid == p.pid:
        if signo:
            p.send_process_signal(own)
        return 0
    if pid > 0:
        _host_kill(os.kill, pid, signo)
        return 0
    if pid == -1:
        _host_kill(os.kill, -1, signo)
        return 0
    group = os.getpgrp() if pid == 0 else -pid
    _host_kill(os.killpg, group, signo)  # the others first: this process may die of it
    if signo and group == os.getpgrp():
        p.send_process_signal(own)
    return 0


@syscall("tgkill", "int", "int", "sig")
def sys_tgkill(p, t, tgid: int, tid: int, signo: int) -> int:
    tgid, tid, signo = _s32(tgid), _s32(tid), _s32(signo)
    if tgid <= 0 or tid <= 0 or not 0 <= signo <= sig.NSIG:
        raise Errno(EINVAL)
    if tgid != p.pid:
        from . import host

        host.syscall("tgkill", tgid, tid, signo)
        return 0
    return _thread_kill(p, tid, signo)


@syscall("tkill", "int", "sig")
def sys_tkill(p, t, tid: int, signo: int) -> int:
    tid, signo = _s32(tid), _s32(signo)
    if tid <= 0 or not 0 <= signo <= sig.NSIG:
        raise Errno(EINVAL)
    return _thread_kill(p, tid, signo)


def _thread_kill(p, tid: int, signo: int) -> int:
    target = p.threads.get(tid)
    if target is None:
        raise Errno(ESRCH)
    if signo:
        p.send_signal(target, sig.PendingSignal(signo, sig.SI_TKILL, pid=p.pid, uid=os.getuid()))
    return 0


# -- futex (kernel/futex) -------------------------------------------------------------------------
FUTEX_WAIT, FUTEX_WAKE, FUTEX_FD, FUTEX_REQUEUE, FUTEX_CMP_REQUEUE, FUTEX_WAKE_OP = 0, 1, 2, 3, 4, 5
FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET = 9, 10
FUTEX_PRIVATE_FLAG, FUTEX_CLOCK_REALTIME = 128, 256
FUTEX_BITSET_MATCH_ANY = 0xFFFFFFFF


class _Waiter:
    __slots__ = ("addr", "bitset", "thread", "woken")

    def __init__(self, addr: int, bitset: int, thread: Thread) -> None:
        self.addr = addr
        self.bitset = bitset
        self.thread = thread
        self.woken = False


def _wake(w: _Waiter) -> None:
    w.woken = True
    w.thread.wakeup.set()


def futex_wake(p, addr: int, count: int, bitset: int = FUTEX_BITSET_MATCH_ANY) -> int:
    """Wake up to ``count`` waiters on ``addr`` whose bitset meets ``bitset`` (at least one,
    as the kernel's loop does)."""
    woken = 0
    with p.futex_lock:
        waiters = p.futex_waiters.get(addr)
        if not waiters:
            return 0
        for w in list(waiters):
            if w.bitset & bitset:
                waiters.remove(w)
                _wake(w)
                woken += 1
                if woken >= count:
                    break
        if not waiters:
            del p.futex_waiters[addr]
    return woken


def _deadline(p, timeout: int, cmd: int, op: int) -> float | None:
    if not timeout:
        return None
    sec, nsec = struct.unpack("<qq", p.mem.read(timeout, 16))
    if sec < 0 or not 0 <= nsec < 1_000_000_000:
        raise Errno(EINVAL)
    value = sec + nsec / 1e9
    if cmd == FUTEX_WAIT:
        return time.monotonic() + value
    # FUTEX_WAIT_BITSET: absolute, on CLOCK_REALTIME with the flag, else CLOCK_MONOTONIC
    now = time.clock_gettime(time.CLOCK_REALTIME) if op & FUTEX_CLOCK_REALTIME else \
        time.monotonic()
    return time.monotonic() + (value - now)


def _futex_wait(p, t, addr: int, val: int, bitset: int, deadline: float | None) -> int:
    waiter = _Waiter(addr, bitset, t)
    with p.futex_lock:
        current = struct.unpack("<I", p.mem.read(addr, 4))[0]
        if current != val & 0xFFFFFFFF:
            raise Errno(EAGAIN)
        p.futex_waiters.setdefault(addr, []).append(waiter)
    try:
        woken = p.wait(t, lambda: True if waiter.woken else None, deadline)
    except Exception as exc:
        interrupted = exc
    else:
        interrupted = None
    with p.futex_lock:  # a requeue may have moved it: look where it is now
        queue = p.futex_waiters.get(waiter.addr)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del p.futex_waiters[waiter.addr]
        elif waiter.woken:
            return 0
    if interrupted is None:
        if woken:
            return 0
        raise Errno(ETIMEDOUT)
    from ..process import Interrupted

    if not isinstance(interrupted, Interrupted):
        raise interrupted
    if deadline is None:
        raise Errno(sig.ERESTARTSYS)
    # a timed wait restarts (when no handler runs) with the same absolute deadline
    t.restart_fn = lambda: _futex_wait(p, t, addr, val, bitset, deadline)
    raise Errno(sig.ERESTART_RESTARTBLOCK)


@syscall("futex", "ptr", "int", "int", "ptr", "ptr", "int")
def sys_futex(p, t, addr: int, op: int, val: int, timeout: int, addr2: int, val3: int) -> int:
    cmd = op & ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME)
    if op & FUTEX_CLOCK_REALTIME and cmd not in (FUTEX_WAIT_BITSET, 11, 13):
        raise Errno(ENOSYS)
    if addr & 3:
        raise Errno(EINVAL)
    val3 &= 0xFFFFFFFF
    if cmd in (FUTEX_WAIT, FUTEX_WAIT_BITSET):
        bitset = val3 if cmd == FUTEX_WAIT_BITSET else FUTEX_BITSET_MATCH_ANY
        if not bitset:
            raise Errno(EINVAL)
        return _futex_wait(p, t, addr, val, bitset, _deadline(p, timeout, cmd, op))
    if cmd in (FUTEX_WAKE, FUTEX_WAKE_BITSET):
        bitset = val3 if cmd == FUTEX_WAKE_BITSET else FUTEX_BITSET_MATCH_ANY
        if not bitset:
            raise Errno(EINVAL)
        return futex_wake(p, addr, _s32(val), bitset)
    if cmd in (FUTEX_REQUEUE, FUTEX_CMP_REQUEUE):
        return _futex_requeue(p, addr, addr2, _s32(val), _s32(timeout),
                              val3 if cmd == FUTEX_CMP_REQUEUE else None)
    if cmd == FUTEX_WAKE_OP:
        if addr2 & 3:
            raise Errno(EINVAL)
        return _futex_wake_op(p, addr, _s32(val), _s32(timeout), addr2, val3)
    raise Errno(ENOSYS)


def _futex_requeue(p, addr: int, addr2: int, nr_wake: int, nr_requeue: int,
                   expected: int | None) -> int:
    if nr_wake < 0 or nr_requeue < 0:
        raise Errno(EINVAL)
    if addr2 & 3:
        raise Errno(EINVAL)
    with p.futex_lock:
        if expected is not None:
            current = struct.unpack("<I", p.mem.read(addr, 4))[0]
            if current != expected:
                raise Errno(EAGAIN)
        waiters = p.futex_waiters.get(addr, [])
        woken = moved = 0
        while waiters and woken < nr_wake:
            _wake(waiters.pop(0))
            woken += 1
        while waiters and moved < nr_requeue and addr2 != addr:
            w = waiters.pop(0)
            w.addr = addr2
            p.futex_waiters.setdefault(addr2, []).append(w)
            moved += 1
        if addr in p.futex_waiters and not p.futex_waiters[addr]:
            del p.futex_waiters[addr]
    return woken + moved


def _sext12(v: int) -> int:
    return v - 0x1000 if v & 0x800 else v


def _futex_wake_op(p, addr: int, nr_wake: int, nr_wake2: int, addr2: int, encoded: int) -> int:
    op = (encoded >> 28) & 7
    cmp = (encoded >> 24) & 15
    oparg = _sext12((encoded >> 12) & 0xFFF)
    cmparg = _sext12(encoded & 0xFFF)
    if encoded >> 31:  # FUTEX_OP_OPARG_SHIFT
        oparg = 1 << (oparg & 31)
    if op > 4 or cmp > 5:
        raise Errno(ENOSYS)
    locks = [p.futex_lock, *_atomic_locks()]
    for lock in locks:
        lock.acquire()
    try:
        old = struct.unpack("<I", p.mem.read(addr2, 4))[0]
        new = [oparg, old + oparg, old | oparg, old & ~oparg, old ^ oparg][op] & 0xFFFFFFFF
        p.mem.write(addr2, struct.pack("<I", new))
    finally:
        for lock in reversed(locks):
            lock.release()
    woken = futex_wake(p, addr, nr_wake)
    sold = old - (1 << 32) if old >> 31 else old
    if [sold == cmparg, sold != cmparg, sold < cmparg, sold <= cmparg, sold > cmparg,
            sold >= cmparg][cmp]:
        woken += futex_wake(p, addr2, nr_wake2)
    return woken


def _atomic_locks() -> list:
    from ..process import _engine_locks

    return _engine_locks()


__all__ = ["futex_wake", "sys"]


# -- small calls real programs make ---------------------------------------------------------------
@syscall("riscv_flush_icache", "hex", "hex", "int")
def sys_riscv_flush_icache(p, t, start: int, end: int, flags: int) -> int:
    """The guest wrote code (a JIT, a loader): drop our translations of it."""
    if flags & ~1:
        raise Errno(EINVAL)
    p.engine.invalidate_all()
    return 0


@syscall("personality", "hex")
def sys_personality(p, t, persona: int) -> int:
    if persona & 0xFFFFFFFF not in (0, 0xFFFFFFFF):
        raise Errno(EINVAL)
    return 0  # PER_LINUX


@syscall("membarrier", "int", "int", "int")
def sys_membarrier(p, t, cmd: int, flags: int, cpu_id: int) -> int:
    # one guest thread runs at a time under the engine, so every barrier is already met
    if cmd == 0:  # MEMBARRIER_CMD_QUERY: the commands that work
        return 1 | 8 | 16  # GLOBAL, PRIVATE_EXPEDITED, REGISTER_PRIVATE_EXPEDITED
    if cmd in (1, 8, 16):
        return 0
    raise Errno(EINVAL)


@syscall("mlockall", "int")
def sys_mlockall(p, t, flags: int) -> int:
    return 0


@syscall("munlockall")
def sys_munlockall(p, t) -> int:
    return 0


@syscall("getpriority", "int", "int")
def sys_getpriority(p, t, which: int, who: int) -> int:
    return 20 - os.getpriority(which, who)  # the kernel returns 20 - nice


@syscall("setpriority", "int", "int", "int")
def sys_setpriority(p, t, which: int, who: int, prio: int) -> int:
    os.setpriority(which, who, _s32(prio))
    return 0


@syscall("sched_get_priority_max", "int")
def sys_sched_get_priority_max(p, t, policy: int) -> int:
    return os.sched_get_priority_max(policy)


@syscall("sched_get_priority_min", "int")
def sys_sched_get_priority_min(p, t, policy: int) -> int:
    return os.sched_get_priority_min(policy)


@syscall("sched_getscheduler", "int")
def sys_sched_getscheduler(p, t, pid: int) -> int:
    return os.sched_getscheduler(0 if _s32(pid) in (0, p.pid) else pid)


@syscall("sched_getparam", "int", "ptr")
def sys_sched_getparam(p, t, pid: int, addr: int) -> int:
    param = os.sched_getparam(0 if _s32(pid) in (0, p.pid) else pid)
    p.mem.write(addr, struct.pack("<i", param.sched_priority))
    return 0


@syscall("setresuid", "int", "int", "int")
def sys_setresuid(p, t, r: int, e: int, s: int) -> int:
    os.setresuid(_s32(r), _s32(e), _s32(s))
    return 0


@syscall("setresgid", "int", "int", "int")
def sys_setresgid(p, t, r: int, e: int, s: int) -> int:
    os.setresgid(_s32(r), _s32(e), _s32(s))
    return 0


@syscall("setreuid", "int", "int")
def sys_setreuid(p, t, r: int, e: int) -> int:
    os.setreuid(_s32(r), _s32(e))
    return 0


@syscall("setregid", "int", "int")
def sys_setregid(p, t, r: int, e: int) -> int:
    os.setregid(_s32(r), _s32(e))
    return 0


@syscall("setgroups", "int", "ptr")
def sys_setgroups(p, t, size: int, addr: int) -> int:
    groups = struct.unpack(f"<{size}I", p.mem.read(addr, 4 * size)) if size else ()
    os.setgroups(list(groups))
    return 0


@syscall("get_robust_list", "int", "ptr", "ptr")
def sys_get_robust_list(p, t, pid: int, head_addr: int, len_addr: int) -> int:
    target = t if _s32(pid) == 0 else p.threads.get(pid)
    if target is None:
        raise Errno(ESRCH)
    p.mem.write(head_addr, struct.pack("<Q", target.robust_list))
    p.mem.write(len_addr, struct.pack("<Q", 24))
    return 0
