"""`vm run --accel kvm` against native execution: the same x86_64 program, arguments, input and
environment, run directly on this (x86_64) host and under `vm run`, in the same test; stdout and
exit status must be byte-identical.

The programs: every guest of tests-integration/guests built for x86_64 by
``tools/build_guests.py --arch x86_64`` (Debian's gcc, ``-static -O2``; bench_cpu with one
iteration), and small programs of this file's own compiled the same way into the test's
scratch directory (a guest that maps, unmaps, protects and faults at random; a guest that
spins in user code while a host signal arrives), and Debian's busybox-static for amd64 running
every case of busybox_cases.py (shell scripts, checksums, gzip, text tools) in a scratch
directory prepared for each run. Programs that are not ours: Debian's qemu-riscv64-static
running riscv64 guests and riscv64 busybox (natively and under `vm run` alike), and small
programs of ours for what it and Go's runtime found. Bad input: a program of another
architecture with ``--accel kvm``, and a missing KVM device (``VM_KVM_DEVICE``).

Everything here needs /dev/kvm and an x86_64 host with gcc; without them the tests skip with
the reason.
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import guestlib
from busybox_cases import BUSYBOX_CASES, Case, prepare

ARCH = "x86_64"
VM_TIMEOUT = 300.0

pytestmark = pytest.mark.slow


def _kvm_reason() -> str | None:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return f"native execution is the reference, and this host is {platform.machine()}"
    from vm_accel.kvm import probe

    found = probe()
    return None if found.usable else f"KVM is not usable here: {found.reason}"


_REASON = _kvm_reason()
needs_kvm = pytest.mark.skipif(_REASON is not None, reason=_REASON or "")

#: guests that do not work under --accel kvm yet, with the reason. They still run (and fail)
#: so that a fix shows up, and a breakage is never silently skipped.
NOT_WORKING: dict[str, str] = {}

#: arguments as in test_guests_reference.CASES, except bench_cpu's single iteration; an
#: environment {} there means "what a guest that execs needs under qemu": natively and under
#: `vm run` the fixed default environment does
OVERRIDES: dict[str, tuple[list[str], dict[str, str] | None]] = {"bench_cpu": (["1"], None)}


def guest_case(name: str) -> tuple[list[str], dict[str, str] | None]:
    import test_guests_reference as reference

    args, env = OVERRIDES.get(name, reference.CASES[name])
    return args, (None if env == {} else env)


def run_vm(binary: str | os.PathLike[str], args: list[str], stdin: bytes = b"",
           env: dict[str, str] | None = None, cwd: Path | None = None,
           accel: str = "kvm", extra_env: dict[str, str] | None = None) -> guestlib.Run:
    argv = [sys.executable, "-m", "vm_cli", "run", "--accel", accel, os.fspath(binary), *args]
    base = dict(guestlib.DEFAULT_ENV if env is None else env)
    base.update(extra_env or {})
    return guestlib.run(argv, stdin=stdin, env=base, cwd=cwd, timeout=VM_TIMEOUT)


def assert_same(what: str, native: guestlib.Run, vm: guestlib.Run) -> None:
    guestlib.assert_same(what, native, vm, "native execution")


def compare(name: str, binary: Path, args: list[str], env: dict[str, str] | None,
            tmp_path: Path) -> None:
    runs = {}
    for who in ("native", "vm"):
        scratch = tmp_path / who
        scratch.mkdir()
        argv = [a.replace("{tmp}", str(scratch)) for a in args]
        if who == "native":
            runs[who] = guestlib.run_native(binary, argv, env=env, cwd=scratch,
                                            timeout=VM_TIMEOUT)
        else:
            runs[who] = run_vm(binary, argv, env=env, cwd=scratch)
    # a guest that prints its scratch directory prints a different one in each run
    native, vm = runs["native"], runs["vm"]
    vm = vm._replace(stdout=vm.stdout.replace(os.fsencode(tmp_path / "vm"),
                                              os.fsencode(tmp_path / "native")))
    assert_same(name, native, vm)


# -- the project's guest programs ------------------------------------------------------------------
@needs_kvm
@pytest.mark.parametrize("name", guestlib.guest_names())
def test_guest_matches_native(name: str, tmp_path: Path) -> None:
    binary = guestlib.guest(ARCH, name)
    args, env = guest_case(name)
    if name in NOT_WORKING:
        pytest.fail(f"{name} does not work under --accel kvm yet: {NOT_WORKING[name]}",
                    pytrace=False)
    compare(name, binary, args, env, tmp_path)


# -- programs of our own ------------------------------------------------------------------------------
WILD = r"""
/* maps, unmaps, protects and faults at random (a fixed seed); every access reports ok or the
 * signal, si_code and offset its handler saw, and siglongjmp resumes the loop */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGES 64
#define PAGE 4096
static sigjmp_buf env;
static volatile int got_sig, got_code;
static volatile uintptr_t got_addr;
static unsigned char *arena;
static uint64_t seed = 12345;

static unsigned rnd(unsigned n) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned)(seed >> 33) % n;
}

static void handler(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    got_sig = sig;
    got_code = si->si_code;
    got_addr = (uintptr_t)si->si_addr;
    siglongjmp(env, 1);
}

static void report(const char *what) {
    uintptr_t base = (uintptr_t)arena;
    if (!got_sig) { printf("%s: ok\n", what); return; }
    long off = (got_addr >= base && got_addr < base + PAGES * PAGE) ? (long)(got_addr - base) : -1;
    printf("%s: signal %d code %d offset %ld%s\n", what, got_sig, got_code, off,
           got_addr == 0 ? " (addr 0)" : "");
}

typedef void (*probe_fn)(void *);
static void do_read(void *p) { (void)*(volatile unsigned char *)p; }
static void do_write(void *p) { *(volatile unsigned char *)p = 0x5a; }
static void do_exec(void *p) { ((void (*)(void))p)(); }
static volatile int zero = 0;
static void do_div(void *p) { (void)p; volatile int x = 7 / zero; (void)x; }
static void do_ud2(void *p) { (void)p; __asm__ volatile("ud2"); }
static void do_int3(void *p) { (void)p; __asm__ volatile("int3"); }
static void do_hlt(void *p) { (void)p; __asm__ volatile("hlt"); }
static void do_int41(void *p) { (void)p; __asm__ volatile("int $0x41"); }
static void do_out(void *p) { (void)p; __asm__ volatile("outb %%al, $0x80" ::"a"(0)); }
static void do_out10(void *p) { (void)p; __asm__ volatile("outb %%al, $0x10" ::"a"(1)); }
static void do_in10(void *p) { (void)p; unsigned char v; __asm__ volatile("inb $0x10, %0" : "=a"(v)); }
static void do_in20(void *p) { (void)p; unsigned char v; __asm__ volatile("inb $0x20, %0" : "=a"(v)); }

static void probe(const char *what, probe_fn fn, void *p) {
    got_sig = 0;
    if (sigsetjmp(env, 1) == 0) fn(p);
    report(what);
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP};
    for (unsigned i = 0; i < sizeof sigs / sizeof *sigs; i++) sigaction(sigs[i], &sa, 0);
    setvbuf(stdout, 0, _IOLBF, 0);
    arena = mmap(0, PAGES * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (arena == MAP_FAILED) return 1;
    static const int prots[] = {PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE,
                                PROT_EXEC | PROT_READ, PROT_WRITE,
                                PROT_READ | PROT_WRITE | PROT_EXEC};
    char what[96];
    for (int i = 0; i < 600; i++) {
        unsigned op = rnd(6), page = rnd(PAGES), n = 1 + rnd(8);
        if (page + n > PAGES) n = PAGES - page;
        unsigned char *at = arena + (size_t)page * PAGE;
        int prot = prots[rnd(6)];
        long r = 0;
        switch (op) {
        case 0:
            r = (long)mmap(at, n * PAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
            printf("%d mmap %u+%u prot %d = %d\n", i, page, n, prot, r == (long)at);
            if (prot & PROT_EXEC && prot & PROT_WRITE) at[0] = 0xc3; /* ret */
            break;
        case 1:
            r = munmap(at, n * PAGE);
            printf("%d munmap %u+%u = %ld\n", i, page, n, r);
            mmap(at, n * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
            break;
        case 2:
            r = mprotect(at, n * PAGE, prot);
            printf("%d mprotect %u+%u %d = %ld\n", i, page, n, prot, r);
            break;
        case 3:
            snprintf(what, sizeof what, "%d read %u", i, page);
            probe(what, do_read, at + rnd(PAGE));
            break;
        case 4:
            snprintf(what, sizeof what, "%d write %u", i, page);
            probe(what, do_write, at + rnd(PAGE));
            break;
        case 5:
            snprintf(what, sizeof what, "%d exec %u", i, page);
            probe(what, do_exec, at);
            break;
        }
    }
    munmap(arena, PAGES * PAGE);
    probe("read of the unmapped arena", do_read, arena + 5);
    probe("null read", do_read, 0);
    probe("kernel-half read", do_read, (void *)0xffff800000001000UL);
    probe("non-canonical write", do_write, (void *)0x8000000000000000UL);
    probe("divide by zero", do_div, 0);
    probe("ud2", do_ud2, 0);
    probe("int3", do_int3, 0);
    probe("hlt", do_hlt, 0);
    probe("int $0x41", do_int41, 0);
    probe("out to port 0x80", do_out, 0);
    probe("out to port 0x10", do_out10, 0);
    probe("in from port 0x10", do_in10, 0);
    probe("in from port 0x20", do_in20, 0);
    int open_fds = 0;
    for (int fd = 0; fd < 512; fd++) open_fds += fcntl(fd, F_GETFD) >= 0;
    printf("open descriptors below 512: %d\n", open_fds);
    return 0;
}
"""

SPIN = r"""
/* spins in user code (no syscalls) until a host signal's handler sets the flag */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t got[2];

static void handler(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    got[sig == SIGTERM] = sig * 1000 + (si->si_code == SI_USER) * 100 + (si->si_pid == getppid());
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, 0);
    sigaction(SIGTERM, &sa, 0);
    setvbuf(stdout, 0, _IOLBF, 0);
    printf("ready\n");
    unsigned long spins = 0;
    while (!got[0]) spins++;
    printf("got %d\n", (int)got[0]);
    while (!got[1]) spins++; /* a second one */
    printf("got %d\n", (int)got[1]);
    return spins < 1000; /* it did spin while the signals came */
}
"""


THREAD_CHURN = r"""
/* threads come and go while others run: each pthread_create maps a stack with a guard page
 * (mprotect: page tables change under running vCPUs) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static void *work(void *arg) {
    long n = (long)arg, acc = 0;
    char *buf = malloc(1 << 16);
    for (long i = 0; i < 20000; i++) acc += (i * n) ^ (acc >> 3);
    buf[n] = (char)acc;
    acc += buf[n];
    free(buf);
    return (void *)acc;
}

int main(void) {
    long total = 0;
    for (int round = 0; round < 40; round++) {
        pthread_t t[8];
        for (long i = 0; i < 8; i++) pthread_create(&t[i], 0, work, (void *)(i + round));
        for (int i = 0; i < 8; i++) {
            void *v;
            pthread_join(t[i], &v);
            total += (long)v;
        }
    }
    printf("total %ld\n", total);
    return 0;
}
"""


def build_own(source: str, name: str, tmp_path: Path, *flags: str) -> Path:
    """Compile one of this file's programs as the guests are built (gcc -static -O2)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed (apt-get install gcc libc6-dev)")
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    out = tmp_path / name
    done = subprocess.run([gcc, "-static", "-O2", "-Wall", "-o", str(out), str(src), *flags],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"{name} does not compile:\n{done.stderr}", pytrace=False)
    return out


@needs_kvm
def test_wild_mapping_and_faulting_guest(tmp_path: Path) -> None:
    binary = build_own(WILD, "wild", tmp_path)
    compare("wild", binary, [], None, tmp_path)


@needs_kvm
def test_threads_come_and_go_while_others_run(tmp_path: Path) -> None:
    binary = build_own(THREAD_CHURN, "churn", tmp_path, "-pthread")
    compare("churn", binary, [], None, tmp_path)


MANY_THREADS = r"""
/* more threads, one after another, than KVM makes vCPUs (1,024: it keeps each until the VM
 * goes); each starts with its parent's rounding mode (Linux copies the FPU state at clone),
 * not that of the thread before it, which changed its own before it ended */
#include <fenv.h>
#include <pthread.h>
#include <stdio.h>

static void *work(void *arg) {
    long ok = fegetround() == FE_TOWARDZERO;
    fesetround(FE_UPWARD);
    volatile double x = 1.0, y = 3.0;
    return (void *)(ok * 2 + (x / y > 0.3333333333333333));
}

int main(void) {
    fesetround(FE_TOWARDZERO);
    long inherited = 0, upward = 0;
    for (long i = 0; i < 1300; i++) {
        pthread_t t;
        void *v;
        if (pthread_create(&t, 0, work, 0)) {
            printf("pthread_create failed at thread %ld\n", i);
            return 1;
        }
        pthread_join(t, &v);
        inherited += (long)v >> 1;
        upward += (long)v & 1;
    }
    printf("threads 1300, inherited the rounding mode %ld, rounded upward %ld\n",
           inherited, upward);
    return 0;
}
"""


@needs_kvm
def test_more_threads_over_time_than_kvm_makes_vcpus(tmp_path: Path) -> None:
    binary = build_own(MANY_THREADS, "many", tmp_path, "-pthread", "-lm")
    compare("many", binary, [], None, tmp_path)


MANY_FAULTS = r"""
/* 260 threads alive at once, each taking SIGSEGV five times (a handler jumps back): every
 * one of them takes its exceptions on a vCPU stack of its own */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>

#define THREADS 260
static pthread_barrier_t all_here;
static __thread sigjmp_buf back;

static void on_segv(int sig) { siglongjmp(back, 1); }

static void *work(void *arg) {
    long caught = 0;
    pthread_barrier_wait(&all_here);
    for (int i = 0; i < 5; i++) {
        if (sigsetjmp(back, 1) == 0)
            *(volatile long *)(16 + (long)arg) = 1;  /* the first page: never mapped */
        else
            caught++;
    }
    return (void *)caught;
}

int main(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_segv;
    sigaction(SIGSEGV, &sa, 0);
    pthread_barrier_init(&all_here, 0, THREADS);
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], 0, work, (void *)i)) { printf("create %ld failed\n", i); return 1; }
    long total = 0;
    for (int i = 0; i < THREADS; i++) { void *v; pthread_join(t[i], &v); total += (long)v; }
    printf("threads %d, faults caught %ld\n", THREADS, total);
    return 0;
}
"""


@needs_kvm
def test_threads_alive_at_once_fault_on_stacks_of_their_own(tmp_path: Path) -> None:
    binary = build_own(MANY_FAULTS, "manyfaults", tmp_path, "-pthread")
    compare("manyfaults", binary, [], None, tmp_path)


XSTATE = r"""
/* the x86_64 signal frame's extended state: what the kernel puts there, and that sigreturn
 * restores the vector registers from it (AVX halves included) */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <ucontext.h>
#include <unistd.h>
#include <sys/syscall.h>

struct sw_bytes { uint32_t magic1, extended_size; uint64_t xfeatures; uint32_t xstate_size; };

static volatile int seen;
static void handler(int sig, siginfo_t *info, void *ctx) {
    ucontext_t *uc = ctx;
    unsigned char *fp = (unsigned char *)uc->uc_mcontext.fpregs;
    struct sw_bytes sw;
    memcpy(&sw, fp + 464, sizeof sw);
    uint32_t magic2 = 0;
    if (sw.magic1 == 0x46505853U) memcpy(&magic2, fp + sw.xstate_size, 4);
    printf("uc_flags&1 %lu magic1 %#x extended %u xstate %u magic2 %#x xfeatures&7 %#lx\n",
           uc->uc_flags & 1, sw.magic1, sw.extended_size - sw.xstate_size, sw.xstate_size ? 1 : 0,
           magic2, (unsigned long)(sw.xfeatures & 7));
    /* the handler starts with clean vector registers */
    uint64_t lo[4];
    __asm__ volatile("vmovdqu %%ymm2, %0" : "=m"(lo));
    printf("handler ymm2 %016lx %016lx %016lx %016lx\n", lo[0], lo[1], lo[2], lo[3]);
    /* the saved xmm3 (legacy area, offset 160 + 16*3) and ymm3's upper half (AVX area at the
     * offset CPUID gives: 576 on every CPU so far) are changed in the frame */
    if (sw.magic1 == 0x46505853U) {
        memset(fp + 160 + 48, 0x33, 16);
        memset(fp + 576 + 48, 0x44, 16);
    }
    __asm__ volatile("vpcmpeqd %%ymm2, %%ymm2, %%ymm2" ::: "xmm2");  /* clobbered here */
    seen = sig;
}

int main(void) {
    printf("minsigstksz nonzero %d\n", getauxval(AT_MINSIGSTKSZ) > 2048);
    struct sigaction sa = {0};
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, 0);
    uint64_t pat[4] = {0x1111111111111111, 0x2222222222222222, 0x5555555555555555,
                       0x6666666666666666};
    uint64_t out2[4], out3[4];
    long pid = syscall(SYS_getpid), tid = syscall(SYS_gettid);
    /* no function call between loading the registers and reading them back: the signal
     * comes from a raw tgkill */
    __asm__ volatile("vmovdqu %2, %%ymm2\n\t"
                     "vmovdqu %2, %%ymm3\n\t"
                     "mov $234, %%eax\n\t"
                     "syscall\n\t"
                     "vmovdqu %%ymm2, %0\n\t"
                     "vmovdqu %%ymm3, %1"
                     : "=m"(out2), "=m"(out3)
                     : "m"(pat), "D"(pid), "S"(tid), "d"((long)SIGUSR1)
                     : "rax", "rcx", "r11", "xmm2", "xmm3", "memory");
    printf("after ymm2 %016lx %016lx %016lx %016lx\n", out2[0], out2[1], out2[2], out2[3]);
    printf("after ymm3 %016lx %016lx %016lx %016lx\n", out3[0], out3[1], out3[2], out3[3]);
    return seen == SIGUSR1 ? 0 : 1;
}
"""


@needs_kvm
def test_signal_frames_carry_the_extended_vector_state(tmp_path: Path) -> None:
    """The frame's FPU state is the XSAVE image with Linux's software bytes and magic, a
    handler starts with clean vector registers, and sigreturn loads them from the frame,
    upper AVX halves included (compared with native: the host has AVX, as the test needs)."""
    if "avx" not in Path("/proc/cpuinfo").read_text().split():
        pytest.skip("the host has no AVX")
    binary = build_own(XSTATE, "xstate", tmp_path, "-mavx")
    compare("xstate", binary, [], None, tmp_path)


def _unblock_signals() -> None:
    """In the child: a test runner's blocked signals must not be inherited."""
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _spin_run(argv: list[str], tmp_path: Path) -> tuple[int, bytes]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(guestlib.DEFAULT_ENV), cwd=tmp_path,
                            preexec_fn=_unblock_signals)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line == b"ready\n", (line, proc.stderr.read() if proc.stderr else b"")
        out = line
        for signo in (signal.SIGUSR1, signal.SIGTERM):
            time.sleep(0.3)  # the guest is spinning in user code by then
            proc.send_signal(signo)
            out += proc.stdout.readline()
        proc.wait(timeout=60)
        return proc.returncode, out + proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@needs_kvm
def test_host_signals_reach_a_guest_running_user_code(tmp_path: Path) -> None:
    binary = build_own(SPIN, "spin", tmp_path)
    native = _spin_run([str(binary)], tmp_path)
    vm = _spin_run([sys.executable, "-m", "vm_cli", "run", "--accel", "kvm", str(binary)],
                   tmp_path)
    assert native == (0, b"ready\ngot 10101\ngot 15101\n")
    assert vm == native


# -- busybox -------------------------------------------------------------------------------------------
# Natively, busybox sh runs an applet by exec'ing /proc/self/exe, as it does under `vm run`, so
# both runs get the same fixed environment and no applet PATH.
@needs_kvm
@pytest.mark.parametrize("case", BUSYBOX_CASES, ids=[c.id for c in BUSYBOX_CASES])
def test_busybox_matches_native(case: Case, tmp_path: Path) -> None:
    binary = guestlib.busybox(ARCH)
    runs = {}
    for who in ("native", "vm"):
        work = tmp_path / who
        work.mkdir()
        prepare(work)
        if case.setup is not None:
            case.setup(work)
        if who == "native":
            runs[who] = guestlib.run_native(binary, case.args, stdin=case.stdin,
                                            env=guestlib.DEFAULT_ENV, cwd=work,
                                            timeout=VM_TIMEOUT)
        else:
            runs[who] = run_vm(binary, case.args, stdin=case.stdin, env=guestlib.DEFAULT_ENV,
                               cwd=work)
    assert_same(f"busybox {case.id}", runs["native"], runs["vm"])


# -- bad input ----------------------------------------------------------------------------------------
def _one_error_line(run: guestlib.Run) -> str:
    lines = run.stderr.decode().splitlines()
    assert len(lines) == 1, run.describe()
    assert lines[0].startswith("vm: error: "), run.describe()
    assert "Traceback" not in run.stderr.decode()
    return lines[0]


@needs_kvm
def test_kvm_refuses_a_program_of_another_architecture(tmp_path: Path) -> None:
    # the x86_64 hello with e_machine set to EM_RISCV (0xf3): a riscv64 ELF file, as far as
    # any loader can tell before running it
    data = bytearray(guestlib.guest(ARCH, "hello").read_bytes())
    data[18:20] = (0xF3).to_bytes(2, "little")
    other = tmp_path / "hello-riscv64"
    other.write_bytes(bytes(data))
    other.chmod(0o755)
    run = run_vm(other, [])
    assert run.rc == 2, run.describe()
    line = _one_error_line(run)
    assert "x86_64" in line and "riscv64" in line


@pytest.mark.parametrize("accel", ["kvm", "auto"])
def test_missing_kvm_device_is_one_clear_line(accel: str, tmp_path: Path) -> None:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("the x86_64 guests are built with the native gcc")
    binary = guestlib.guest(ARCH, "hello")
    missing = tmp_path / "no-kvm"
    run = run_vm(binary, [], accel=accel, extra_env={"VM_KVM_DEVICE": str(missing)})
    assert run.rc == 1, run.describe()
    line = _one_error_line(run)
    assert "KVM" in line and str(missing) in line
    assert run.stdout == b""


def test_x86_64_program_without_kvm_says_how(tmp_path: Path) -> None:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("the x86_64 guests are built with the native gcc")
    run = run_vm(guestlib.guest(ARCH, "hello"), [], accel="none")
    assert run.rc == 1, run.describe()
    assert "--accel kvm" in _one_error_line(run)


# -- programs that are not ours -----------------------------------------------------------------------
# Debian's qemu-riscv64-static (qemu-user-static) is a static-pie x86_64 program with threads
# (its RCU thread, started again in every forked child), signals, big reservations, mprotect and
# a JIT of its own. It runs riscv64 guests of tests-integration/guests and Debian's riscv64
# busybox, natively and under `vm run --accel kvm`, with the same arguments and environment.
QEMU_GUESTS = ["hello", "atomics_threads", "threads_signals", "fork_exec_pipe", "mmap_prot",
               "signals", "malloc_churn"]

#: shell builtins only (nothing is exec'd): functions, nested command substitutions and
#: subshells, each a fork of qemu while its RCU thread starts
QEMU_SHELL = (
    'f() { echo "f:$1:$#"; return 3; }; f a b c; echo "status $?"; '
    "fact() { if [ $1 -le 1 ]; then echo 1; else echo $(( $1 * $(fact $(($1-1))) )); fi; }; "
    "fact 10; x=$( (echo deep; (echo deeper)) ); echo $x; "
    "echo piped | { read v; echo got $v; }; (exit 7); echo sub $?"
)


@needs_kvm
@pytest.mark.parametrize("name", QEMU_GUESTS)
def test_qemu_user_runs_riscv64_guests_as_natively(name: str, tmp_path: Path) -> None:
    import test_guests_reference as reference

    qemu = Path(guestlib.qemu("riscv64"))
    guest = guestlib.guest("riscv64", name)
    args, env = reference.CASES[name]
    if env == {}:  # the guest execs a guest: through qemu, in both runs
        env = guestlib.exec_env("riscv64")
    compare(f"qemu-riscv64-static {name}", qemu, [str(guest), *args], env, tmp_path)


@needs_kvm
def test_qemu_user_runs_a_forking_riscv64_shell(tmp_path: Path) -> None:
    qemu = Path(guestlib.qemu("riscv64"))
    busybox = guestlib.busybox("riscv64")
    env = {**guestlib.DEFAULT_ENV, "PATH": "/nonexistent"}  # no host program by mistake
    compare("qemu-riscv64-static busybox sh", qemu, [str(busybox), "sh", "-c", QEMU_SHELL],
            env, tmp_path)


# What those programs (and Go's runtime and compiler) found, each in a small program of ours.
MMAP_RACE = r"""
/* threads map (anonymous memory, or a file privately), fill, check and unmap at once: no
 * two live mappings may overlap */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define THREADS 8
#define ROUNDS 200

static int fd;

static void *work(void *arg) {
    long id = (long)arg, bad = 0;
    unsigned seed = (unsigned)id * 7919u + 1;
    for (int i = 0; i < ROUNDS; i++) {
        seed = seed * 1103515245u + 12345u;
        size_t len = (1 + (seed >> 16) % 4) * 4096;
        unsigned char *p = mmap(0, len, PROT_READ | PROT_WRITE,
                                id & 1 ? MAP_PRIVATE : MAP_PRIVATE | MAP_ANONYMOUS,
                                id & 1 ? fd : -1, 0);
        if (p == MAP_FAILED) return (void *)-1L;
        memset(p, (int)(id + 1), len);
        for (int k = 0; k < 50; k++) __asm__ volatile("" ::: "memory");
        for (size_t j = 0; j < len; j++) bad += p[j] != id + 1;
        munmap(p, len);
    }
    return (void *)bad;
}

int main(int argc, char **argv) {
    pthread_t t[THREADS];
    (void)argc;
    fd = open(argv[0], O_RDONLY); /* this program: more than 4 pages */
    if (fd < 0) return 1;
    long bad = 0;
    for (long i = 0; i < THREADS; i++) pthread_create(&t[i], 0, work, (void *)i);
    for (int i = 0; i < THREADS; i++) {
        void *v;
        pthread_join(t[i], &v);
        bad += (long)v;
    }
    printf("bytes another thread's mapping changed: %ld\n", bad);
    return 0;
}
"""

FORK_WHILE_THREAD_STARTS = r"""
/* forks while a thread it has just started is getting going (in qemu-user, a forked child
 * starts its RCU thread at once and may fork again) */
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static void *idle(void *arg) { return arg; }

static int level(int n) {
    if (n == 0) return 0;
    pthread_t t;
    pthread_create(&t, 0, idle, 0);
    pid_t pid = fork();
    if (pid == 0) _exit(level(n - 1) + 1);
    int status = 0;
    waitpid(pid, &status, 0);
    pthread_join(t, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

int main(void) {
    int total = 0;
    for (int round = 0; round < 10; round++) total += level(5);
    printf("levels: %d\n", total);
    return 0;
}
"""

CLOSE_ALL = r"""
/* closes every descriptor above stderr, as a child about to exec (and many daemons) do:
 * close_range(), and close() up to the descriptor limit; both kinds, in a forked child and
 * in the process itself, which then still makes threads and children */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void *hello(void *arg) { return arg; }

static int close_loop(void) {
    struct rlimit r;
    getrlimit(RLIMIT_NOFILE, &r);
    int closed = 0;
    for (long fd = 3; fd < (long)r.rlim_cur && fd < 1024; fd++) closed += close((int)fd) == 0;
    return closed;
}

int main(void) {
    setvbuf(stdout, 0, _IOLBF, 0);
    pthread_t first;
    pthread_create(&first, 0, hello, 0); /* a thread that has ended before the closing */
    pthread_join(first, 0);
    for (int kind = 0; kind < 2; kind++) {
        pid_t pid = fork();
        if (pid == 0) {
            if (kind == 0) printf("child close_range: %ld\n", syscall(SYS_close_range, 3, ~0U, 0));
            else close_loop();
            printf("child %d still runs\n", kind);
            _exit(10 + kind);
        }
        int status;
        waitpid(pid, &status, 0);
        printf("child %d exit %d\n", kind, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    printf("close_range: %ld\n", syscall(SYS_close_range, 3, ~0U, 0));
    close_loop();
    printf("close(3) after: %d %s\n", close(3), errno == EBADF ? "EBADF" : "?");
    pthread_t t;
    pthread_create(&t, 0, hello, 0);
    pthread_join(t, 0);
    pid_t pid = fork();
    if (pid == 0) _exit(7);
    int status;
    waitpid(pid, &status, 0);
    printf("thread and child after: exit %d\n", WEXITSTATUS(status));
    return 0;
}
"""

PRCTL = r"""
/* prctl: the parent-death signal (set, read back, and delivered when the parent exits), and
 * the dumpable and keep-capabilities flags */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static int out_fd;

static void on_usr1(int sig) {
    (void)sig;
    write(out_fd, "child got SIGUSR1 when its parent exited\n", 41);
    _exit(0);
}

int main(void) {
    int sig = -1;
    setvbuf(stdout, 0, _IOLBF, 0);
    printf("pdeathsig %d", prctl(PR_GET_PDEATHSIG, &sig));
    printf(" = %d;", sig);
    printf(" set %d;", prctl(PR_SET_PDEATHSIG, SIGUSR1));
    prctl(PR_GET_PDEATHSIG, &sig);
    printf(" now %d; bad signal %d\n", sig, prctl(PR_SET_PDEATHSIG, 99));
    printf("dumpable %d, keepcaps %d", prctl(PR_GET_DUMPABLE), prctl(PR_GET_KEEPCAPS));
    printf(" set %d,", prctl(PR_SET_KEEPCAPS, 1));
    printf(" now %d\n", prctl(PR_GET_KEEPCAPS));
    prctl(PR_SET_KEEPCAPS, 0);
    prctl(PR_SET_PDEATHSIG, 0);
    int pipefd[2], ready[2];
    pipe(pipefd);
    pipe(ready);
    pid_t middle = fork();
    if (middle == 0) {
        if (fork() == 0) {
            out_fd = pipefd[1];
            signal(SIGUSR1, on_usr1);
            prctl(PR_SET_PDEATHSIG, SIGUSR1);
            write(ready[1], "r", 1);
            for (;;) pause();
        }
        char c;
        read(ready[0], &c, 1);
        _exit(3); /* the child's parent exits */
    }
    close(pipefd[1]);
    int status;
    waitpid(middle, &status, 0);
    printf("middle exit %d\n", WEXITSTATUS(status));
    char buf[128];
    ssize_t n = read(pipefd[0], buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    printf("%s", n > 0 ? buf : "no word from the child\n");
    return 0;
}
"""


@needs_kvm
def test_threads_mapping_at_once_get_ranges_of_their_own(tmp_path: Path) -> None:
    # two threads' mmap calls found the same free range (Go's compiler: a heap block and a
    # file mapping on top of each other)
    binary = build_own(MMAP_RACE, "mmap_race", tmp_path, "-pthread")
    compare("mmap_race", binary, [], None, tmp_path)


@needs_kvm
def test_fork_while_a_new_thread_starts(tmp_path: Path) -> None:
    # a child forked while another thread made its vCPU inherited the engine's lock held (a
    # hang: qemu-user running `sh -c 'echo $(...$(...))'`)
    binary = build_own(FORK_WHILE_THREAD_STARTS, "fork_threads", tmp_path, "-pthread")
    compare("fork_threads", binary, [], None, tmp_path)


@needs_kvm
def test_closing_every_descriptor_leaves_vm_its_own(tmp_path: Path) -> None:
    # close_range(3, ~0U) in a child about to exec closed the KVM descriptors (Debian's
    # dar_static, through gpgme)
    binary = build_own(CLOSE_ALL, "close_all", tmp_path, "-pthread")
    compare("close_all", binary, [], None, tmp_path)


@needs_kvm
def test_prctl_parent_death_signal_and_flags(tmp_path: Path) -> None:
    # Go's os/exec with SysProcAttr.Pdeathsig: prctl(PR_SET_PDEATHSIG) was EINVAL
    binary = build_own(PRCTL, "prctl", tmp_path)
    compare("prctl", binary, [], None, tmp_path)
