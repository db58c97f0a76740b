"""Benchmark vm against qemu-user and native execution on several workloads, side by side.

How to run it (from the repository root; ``tools/bench`` is a shim that runs this file)::

    uv run tools/bench [--workloads W,...] [--engines E,...] [-n N] [--syscall-iterations N]
                       [--size-mib S] [--repeat R] [--json] [--guest PATH] [--guest-x86_64 PATH]
                       [--qemu PATH] [--qemu-x86_64 PATH] [--timeout SECONDS]
    uv run python tools/bench.py [...]                  (the same, without the shim)

Examples::

    uv run tools/bench                        # cpu,sha256,gzip under jit,interp,qemu (riscv64)
    uv run tools/bench --workloads cpu --engines jit,qemu -n 40
    uv run tools/bench --workloads sha256,gzip --engines jit,interp,qemu --size-mib 4 -r 5
    uv run tools/bench --workloads cpu --engines interp,qemu -n 1 -r 1 --json
    uv run tools/bench --workloads cpu,syscalls --engines kvm,native,qemu-x86_64 -r 5
    uv run tools/bench --workloads syscalls --engines interp,qemu,kvm,native --syscall-iterations 1000

Runners (``--engines``, a comma list, default ``jit,interp,qemu``). Each runs the programs of
one architecture; a workload runs, under each runner, the guest built for that runner's
architecture. riscv64 runners:

- ``jit``: ``vm run --engine jit --stats GUEST ARGS``;
- ``interp``: ``vm run --engine interp --stats GUEST ARGS``;
- ``qemu``: ``qemu-riscv64-static GUEST ARGS`` (``--qemu`` names another one).

x86_64 runners (on an x86_64 host; ``kvm`` needs a usable /dev/kvm):

- ``kvm``: ``vm run --accel kvm --stats GUEST ARGS``: the program runs natively inside KVM, its
  syscalls exit to vm (Python);
- ``native``: ``GUEST ARGS``, the x86_64 program run directly on this host;
- ``qemu-x86_64``: ``qemu-x86_64-static GUEST ARGS`` (``--qemu-x86_64`` names another one).

Runners of both architectures may be given together; each is compared with the reference
runner of its own architecture: ``qemu`` for riscv64, ``native`` for x86_64.

``--engine E`` is the old spelling, kept: it means ``--engines E,qemu`` (E is jit or interp).

Workloads (``--workloads``, a comma list, default ``cpu,sha256,gzip``):

- ``cpu``: ``build/guests/ARCH/bench_cpu N``, N = ``--iterations``/``-n`` (default 40,
  the program's own default; one iteration is about 45.6 million riscv64 instructions, about
  4.5 ms natively on x86_64); ``--guest`` names another riscv64 binary, ``--guest-x86_64``
  another x86_64 one;
- ``sha256``: Debian's busybox-static for the architecture (riscv64 or amd64),
  ``busybox sha256sum FILE``;
- ``gzip``: the same busybox, ``busybox gzip -c FILE``;
- ``syscalls``: ``build/guests/ARCH/bench_syscalls N``, N = ``--syscall-iterations`` (default
  10000, the program's own default): each iteration makes 10 cheap syscalls (getppid, a pipe's
  write and read, lseek, pread, fstat, clock_gettime through syscall(), rt_sigprocmask, an
  lseek failing with ESPIPE, fcntl) with almost no work between them; it prints how many it
  made, and bench reports syscalls per second (that count over the median wall and CPU time,
  start-up included).

FILE is made once per bench run, in a temporary directory: ``--size-mib`` MiB (default 16; a
fraction such as 0.5 works too) of deterministic pseudo-random data, runs of random bytes
between lines of words drawn at random from a small vocabulary, so that gzip compresses it
to about a third, with real work to do (matches, Huffman coding) and not a trivial run.

For each workload, each runner runs R times (``--repeat``/``-r``, default 3), interleaved:
repeat i runs the runners in the order rotated by i, so that all see the same machine load.
Each run's stdout goes to a file and is compared by its sha256 digest (gzip's output is
megabytes); within each architecture, stdout and exit status must be those of its reference
runner (qemu, native; when it is not among the runners, the first runner of that
architecture), every exit status 0, and each vm runner must print its ``--stats`` line on
stderr (``vm stats: N guest instructions`` for jit and interp, ``vm stats: kvm: ...`` for kvm).
Anything else is an error.

Reported per workload: the median wall-clock and CPU time (user+sys of the child) of each
runner; guest MIPS (wall and CPU) of each riscv64 runner, from vm's instruction count (qemu
runs the same program, so its MIPS use vm's count: interp's if it ran, else jit's; nothing
counts x86_64 instructions, so x86_64 runners have none); syscalls per second (the syscalls
workload); each runner's times over its reference's ("interp 350x qemu": 350 times slower;
"kvm 1.2x native"); interp's times over jit's ("jit is 12x faster than interp") and kvm's
over qemu-x86_64's. For kvm, the JSON also keeps each run's ``--stats`` figures: the
seconds inside KVM_RUN and the VM exits by kind (``IoExit`` counts syscalls and exceptions).

Before timing, bench compiles vm's sources to bytecode (``compileall``), as the first run
after an install does where it can: where PYTHONDONTWRITEBYTECODE is set, nothing would be
cached and every ``vm run`` would compile vm's modules again at start-up.

The machine it ran on (CPU model, nproc, load average before and after) is part of the
output: wall-clock times on a loaded machine say little, CPU times more. ``--json`` prints one
JSON object (everything: machine, commands, every run, medians, MIPS, syscalls per second,
ratios, errors) instead of the tables; per workload, ``output`` is the reference output of the
first runner's architecture and ``outputs`` that of each architecture. Exit status: 0, or 1
when a run failed or outputs differ, or when a guest, busybox, qemu, /dev/kvm or an x86_64
host is missing (one ``bench: error: ...`` line on stderr says which and how to get it).

Time it takes: the interpreter runs some 10-20 million guest instructions a second (2-core
AMD EPYC, November 2026): bench_cpu 40 takes it about 75 s; sha256sum and gzip of 1 MiB about
84 and 180 million instructions, 6 and 15 s. The defaults (cpu,sha256,gzip x jit,interp,qemu,
-n 40, 16 MiB, 3 repeats) therefore run for half an hour or more; pick workloads, runners and
sizes for a quick look (``--timeout`` bounds each run). bench_cpu 40 runs natively in about
0.2 s; each syscall costs tens of microseconds under vm (interp or kvm) against well under
one natively, so bench_syscalls 10000 (100000 syscalls) takes kvm about 6 s and interp about
4 s, native and qemu a few hundredths.

Get the inputs first:
``uv run python tools/build_guests.py --arch riscv64 bench_cpu bench_syscalls`` (the riscv64
guests; ``--arch x86_64`` for the x86_64 ones) and
``uv run python tools/fetch_debian.py --arch riscv64 busybox-static`` (busybox; ``--arch
amd64`` for x86_64's).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUESTS = ROOT / "build" / "guests"
DEFAULT_GUEST = GUESTS / "riscv64" / "bench_cpu"
DEFAULT_GUEST_X86_64 = GUESTS / "x86_64" / "bench_cpu"
DEBIAN_ROOT = ROOT / "build" / "debian"
DEBIAN = DEBIAN_ROOT / "riscv64"
_STATS = re.compile(r"vm stats: (\d+) guest instructions")
_KVM_STATS = re.compile(r"vm stats: kvm: ([\d.]+)s, ([\d.]+)s in KVM_RUN; .*?exits: ([^\n]*)")
_SYSCALLS = re.compile(r"(\d+) syscalls")

#: every runner, with the architecture of the programs it runs
RUNNERS = {"jit": "riscv64", "interp": "riscv64", "qemu": "riscv64",
           "kvm": "x86_64", "native": "x86_64", "qemu-x86_64": "x86_64"}
DEFAULT_RUNNERS = ("jit", "interp", "qemu")
#: the runners that count guest instructions (--stats)
VM_RUNNERS = ("jit", "interp")
#: the runner that every other runner of the architecture is compared with
REFERENCE = {"riscv64": "qemu", "x86_64": "native"}
#: Debian's name of each architecture (build/debian/NAME, fetch_debian.py --arch NAME)
DEBIAN_ARCH = {"riscv64": "riscv64", "x86_64": "amd64"}
WORKLOADS = ("cpu", "sha256", "gzip", "syscalls")
DEFAULT_WORKLOADS = ("cpu", "sha256", "gzip")
MIB = 1 << 20
# The output of a run kept (as text) in the JSON when it is at most this long.
_KEEP_OUTPUT = 4096


class BenchError(Exception):
    """Something the benchmark needs is missing: the message says what and how to get it."""


def machine() -> dict[str, object]:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "nproc": os.cpu_count(), "system": platform.system(),
            "machine": platform.machine(), "python": platform.python_version(),
            "load_average": _load()}


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def vm_command() -> list[str]:
    exe = shutil.which("vm")
    return [exe] if exe else [sys.executable, "-m", "vm_cli"]


# -- inputs ------------------------------------------------------------------------------------

def busybox(arch: str = "riscv64") -> Path:
    """Debian's busybox-static for ``arch`` (riscv64, x86_64), found as the integration tests
    find it.

    tests-integration/guestlib.py's ``busybox`` looks in ``build/debian/DEB/busybox-static``
    (DEB: riscv64, amd64; where tools/fetch_debian.py extracts it). When only the .deb is
    there, it is extracted into that same place with ``dpkg-deb -x``.
    """
    found = _guestlib_busybox(arch)
    if found is not None:
        return found
    debian = DEBIAN_ROOT / DEBIAN_ARCH[arch]
    tree = debian / "busybox-static"
    for candidate in (tree / "usr" / "bin" / "busybox", tree / "bin" / "busybox"):
        if candidate.is_file():
            return candidate
    debs = sorted((debian / "debs").glob("busybox-static_*.deb"))
    fetch = f"`uv run python tools/fetch_debian.py --arch {DEBIAN_ARCH[arch]} busybox-static`"
    if not debs:
        raise BenchError(f"Debian's busybox-static for {arch} is not fetched: run {fetch}")
    dpkg_deb = shutil.which("dpkg-deb")
    if dpkg_deb is None:
        raise BenchError(f"{debs[-1]} is there but dpkg-deb is not: apt-get install dpkg")
    tmp = Path(tempfile.mkdtemp(prefix=".busybox-static.", dir=debian))
    try:
        done = subprocess.run([dpkg_deb, "-x", str(debs[-1]), str(tmp)], capture_output=True,
                              text=True, check=False)
        if done.returncode != 0:
            raise BenchError(f"dpkg-deb -x {debs[-1].name} failed: {done.stderr.strip()}")
        if not tree.exists():
            os.replace(tmp, tree)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for candidate in (tree / "usr" / "bin" / "busybox", tree / "bin" / "busybox"):
        if candidate.is_file():
            return candidate
    raise BenchError(f"{debs[-1].name} has no busybox binary: run {fetch} again")


def _guestlib_busybox(arch: str) -> Path | None:
    """guestlib.busybox(arch), or None when it is not importable or finds nothing."""
    path = str(ROOT / "tests-integration")
    if path not in sys.path:
        sys.path.insert(0, path)
    try:
        import guestlib
    except ImportError:  # it needs pytest, a dev dependency
        return None
    try:
        return guestlib.busybox(arch)
    except guestlib.pytest.skip.Exception:  # not extracted: we try the .deb ourselves
        return None


_WORDS = (b"the quick brown fox jumps over lazy dog vm guest riscv64 qemu block region "
          b"engine jit interp cpu sha256 gzip busybox load store branch trap syscall page "
          b"memory register tier compile dispatch hot cold loop exit state pc instruction "
          b"native host benchmark median wall time ratio deterministic random text word "
          b"alpha beta gamma delta").split()


def make_input(path: Path, size: int) -> str:
    """Write ``size`` bytes of deterministic, partly compressible data; return its sha256.

    Made in blocks of about 52 KiB, each from SHAKE-256 of the block's number: 4 KiB of
    random bytes, then 8192 words, each chosen by one random byte (1 in 16 ends a line).
    """
    vocabulary = [_WORDS[i % len(_WORDS)] + (b"\n" if i % 16 == 15 else b" ")
                  for i in range(256)]
    digest = hashlib.sha256()
    written = 0
    with path.open("wb") as out:
        block = 0
        while written < size:
            rnd = hashlib.shake_256(b"vm bench block %d" % block).digest(4096 + 8192)
            data = rnd[:4096] + b"".join([vocabulary[b] for b in rnd[4096:]])
            data = data[:size - written]
            out.write(data)
            digest.update(data)
            written += len(data)
            block += 1
    return digest.hexdigest()


# -- running -----------------------------------------------------------------------------------

def timed(cmd: list[str], out: Path, timeout: float | None) -> dict[str, object]:
    """Run ``cmd`` with stdout to ``out``; its wall and CPU time, status, output digest."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with out.open("wb") as sink:
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=sink,
                                  stderr=subprocess.PIPE, timeout=timeout, check=False)
            status, stderr = proc.returncode, proc.stderr
        except subprocess.TimeoutExpired as expired:
            status, stderr = None, expired.stderr or b""
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    digest = hashlib.sha256()
    size = 0
    head = b""
    with out.open("rb") as f:
        while chunk := f.read(MIB):
            if size < _KEEP_OUTPUT:
                head += chunk[:_KEEP_OUTPUT + 1 - size]
            digest.update(chunk)
            size += len(chunk)
    out.unlink()
    return {"wall": wall, "cpu": cpu, "status": status, "stdout_sha256": digest.hexdigest(),
            "stdout_bytes": size,
            "stdout": head.decode(errors="replace") if size <= _KEEP_OUTPUT else None,
            "stderr": stderr.decode(errors="replace")}


def commands(runners: list[str], programs: dict[str, list[str]], qemu: str,
             qemu_x86_64: str = "qemu-x86_64-static") -> dict[str, list[str]]:
    """Each runner's command line; ``programs`` gives the program and its arguments for each
    architecture."""
    vm = vm_command()
    cmds = {}
    for r in runners:
        program = programs[RUNNERS[r]]
        if r in VM_RUNNERS:
            cmds[r] = [*vm, "run", "--engine", r, "--stats", *program]
        elif r == "kvm":
            cmds[r] = [*vm, "run", "--accel", "kvm", "--stats", *program]
        elif r == "native":
            cmds[r] = list(program)
        else:
            cmds[r] = [qemu if r == "qemu" else qemu_x86_64, *program]
    return cmds


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def _arches(runners: list[str]) -> list[str]:
    """The architectures of ``runners``, in the order they first appear."""
    return list(dict.fromkeys(RUNNERS[r] for r in runners))


def references(runners: list[str]) -> dict[str, str]:
    """The runner each architecture's outputs are compared with: its REFERENCE runner when it
    is among ``runners``, else its first runner."""
    refs = {}
    for arch in _arches(runners):
        group = [r for r in runners if RUNNERS[r] == arch]
        refs[arch] = REFERENCE[arch] if REFERENCE[arch] in group else group[0]
    return refs


def _kvm_stats(stderr: str) -> dict[str, object] | None:
    m = _KVM_STATS.search(stderr)
    if m is None:
        return None
    exits = {}
    for item in m.group(3).split(","):
        kind, _, count = item.strip().rpartition(" ")
        if kind and count.isdigit():
            exits[kind] = int(count)
    return {"seconds": float(m.group(1)), "kvm_run_seconds": float(m.group(2)), "exits": exits}


def bench_workload(name: str, programs: dict[str, list[str]], runners: list[str], repeat: int,
                   qemu: str, scratch: Path, timeout: float | None,
                   qemu_x86_64: str = "qemu-x86_64-static") -> dict:
    cmds = commands(runners, programs, qemu, qemu_x86_64)
    result: dict = {"workload": name, "commands": cmds, "runs": {r: [] for r in runners},
                    "guest_instructions": {}, "errors": []}
    refs = references(runners)
    outputs: dict[str, dict[str, object]] = {}
    for i in range(repeat):
        order = runners[i % len(runners):] + runners[:i % len(runners)]
        runs = {r: timed(cmds[r], scratch / f"{name}.{r}.out", timeout) for r in order}
        for r in runners:
            run = runs[r]
            record = {"wall": round(run["wall"], 4), "cpu": round(run["cpu"], 4),
                      "status": run["status"]}
            if run["status"] is None:
                result["errors"].append(f"{name}: {r} ran past --timeout {timeout} s")
            elif run["status"] != 0:
                tail = run["stderr"].strip()[-300:]
                result["errors"].append(f"{name}: {r} exited with status {run['status']}"
                                        + (f": {tail}" if tail else ""))
            if r in VM_RUNNERS:
                m = _STATS.search(run["stderr"])
                if m is None:
                    result["errors"].append(f"{name}: {r} printed no --stats line")
                else:
                    result["guest_instructions"][r] = int(m.group(1))
            elif r == "kvm":
                kvm = _kvm_stats(run["stderr"])
                if kvm is None:
                    result["errors"].append(f"{name}: kvm printed no --stats line")
                else:
                    record["kvm"] = kvm
            result["runs"][r].append(record)
        for arch, reference in refs.items():
            ref = runs[reference]
            if arch not in outputs:
                outputs[arch] = {"reference": reference,
                                 **{k: ref[k] for k in ("status", "stdout_sha256",
                                                        "stdout_bytes", "stdout")}}
            want = outputs[arch]
            for r in runners:
                if RUNNERS[r] != arch:
                    continue
                run = runs[r]
                if run["stdout_sha256"] != want["stdout_sha256"]:
                    result["errors"].append(
                        f"{name}: {r}'s output differs from {reference}'s "
                        f"({run['stdout_bytes']} bytes, sha256 {run['stdout_sha256']}; "
                        f"{reference}: {want['stdout_bytes']} bytes, {want['stdout_sha256']})")
                elif run["status"] != want["status"]:
                    result["errors"].append(f"{name}: {r} exited with status {run['status']}, "
                                            f"{reference} with {want['status']}")
    result["errors"] = list(dict.fromkeys(result["errors"]))  # the same error in each repeat
    result["output"] = outputs[RUNNERS[runners[0]]]
    result["outputs"] = outputs
    counts = result["guest_instructions"]
    insns = counts.get("interp", counts.get("jit"))
    if len(set(counts.values())) > 1:
        result["note"] = f"the engines count different instruction totals: {counts}"
    result["instructions"] = insns
    result["median"] = {r: {k: round(statistics.median(x[k] for x in result["runs"][r]), 4)
                            for k in ("wall", "cpu")} for r in runners}
    result["mips"] = {}
    for r in runners:
        n = counts.get(r, insns) if RUNNERS[r] == "riscv64" else None
        med = result["median"][r]
        result["mips"][r] = {k: round(n / med[k] / 1e6, 2) if n and med[k] > 0 else None
                             for k in ("wall", "cpu")}
    # the syscall count the program prints (bench_syscalls: "N syscalls"), if it prints one
    found = {}
    for arch, out in outputs.items():
        m = _SYSCALLS.search(out["stdout"] or "")
        if m is not None:
            found[arch] = int(m.group(1))
    if found:
        if len(set(found.values())) > 1:
            result["errors"].append(f"{name}: the architectures count different syscall "
                                    f"totals: {found}")
        result["syscalls"] = max(found.values())
        result["syscalls_per_s"] = {}
        for r in runners:
            n, med = found.get(RUNNERS[r]), result["median"][r]
            result["syscalls_per_s"][r] = {k: round(n / med[k]) if n and med[k] > 0 else None
                                           for k in ("wall", "cpu")}
    ratios: dict[str, dict[str, float | None]] = {}
    for arch, reference in refs.items():
        if reference != REFERENCE[arch]:
            continue  # ratios only against qemu (riscv64) and native (x86_64)
        base = result["median"][reference]
        for r in runners:
            if RUNNERS[r] == arch and r != reference:
                ratios[f"{r}/{reference}"] = {k: _ratio(result["median"][r][k], base[k])
                                              for k in ("wall", "cpu")}
    for a, b in (("interp", "jit"), ("kvm", "qemu-x86_64")):
        if a in runners and b in runners:
            ratios[f"{a}/{b}"] = {k: _ratio(result["median"][a][k], result["median"][b][k])
                                  for k in ("wall", "cpu")}
    result["ratio"] = ratios
    return result


def _check_inputs(workloads: list[str], runners: list[str], guests: dict[str, dict[str, Path]],
                  qemus: dict[str, str]) -> dict[str, Path]:
    """BenchError unless every program, tool and device the runs need is there; the busybox
    of each architecture that needs one."""
    arches = _arches(runners)
    for r, q in (("qemu", qemus["riscv64"]), ("qemu-x86_64", qemus["x86_64"])):
        if r in runners and shutil.which(q) is None:
            raise BenchError(f"{q} not found: install qemu-user-static")
    if "x86_64" in arches and platform.machine().lower() not in ("x86_64", "amd64"):
        x86 = ", ".join(r for r in runners if RUNNERS[r] == "x86_64")
        raise BenchError(f"the x86_64 runners ({x86}) need an x86_64 host; "
                         f"this one is {platform.machine()}")
    if "kvm" in runners and not os.access("/dev/kvm", os.R_OK | os.W_OK):
        raise BenchError("kvm needs /dev/kvm, readable and writable by this user: "
                         "it is missing or not accessible here")
    for arch in arches:
        for w in ("cpu", "syscalls"):
            path = guests[arch][w]
            if w in workloads and not path.is_file():
                raise BenchError(f"{path} does not exist: build it with `uv run python "
                                 f"tools/build_guests.py --arch {arch} {_GUEST_NAME[w]}`")
    return {arch: busybox(arch) for arch in arches if {"sha256", "gzip"} & set(workloads)}


_GUEST_NAME = {"cpu": "bench_cpu", "syscalls": "bench_syscalls"}


def compile_workspace() -> None:
    """Compile vm's own sources to bytecode before anything is timed, as the first run after
    an install does where it may: with PYTHONDONTWRITEBYTECODE set (as on our machines) no
    run writes it, and each `vm run` would compile every module of vm again at start-up."""
    import compileall

    for src in sorted((ROOT / "packages").glob("*/src")):
        compileall.compile_dir(src, quiet=1)


def bench(workloads: list[str], runners: list[str], iterations: int, size_mib: float,
          repeat: int, guest: Path, qemu: str, timeout: float | None = None, *,
          syscall_iterations: int = 10000, guest_x86_64: Path = DEFAULT_GUEST_X86_64,
          qemu_x86_64: str = "qemu-x86_64-static") -> dict:
    """Check that every input is there (else BenchError), then run every workload."""
    guests = {"riscv64": {"cpu": guest, "syscalls": GUESTS / "riscv64" / "bench_syscalls"},
              "x86_64": {"cpu": guest_x86_64, "syscalls": GUESTS / "x86_64" / "bench_syscalls"}}
    qemus = {"riscv64": qemu, "x86_64": qemu_x86_64}
    boxes = _check_inputs(workloads, runners, guests, qemus)
    if any(r in (*VM_RUNNERS, "kvm") for r in runners):
        compile_workspace()
    size = max(1, int(size_mib * MIB))
    box = boxes.get("riscv64", boxes.get("x86_64"))
    result: dict = {"machine": machine(), "runners": runners,
                    "arch": {r: RUNNERS[r] for r in runners}, "workloads": {},
                    "iterations": iterations, "syscall_iterations": syscall_iterations,
                    "size_mib": size_mib, "repeat": repeat, "guest": str(guest),
                    "guests": {arch: {w: str(p) for w, p in guests[arch].items()}
                               for arch in _arches(runners)},
                    "busybox": str(box) if box else None,
                    "busyboxes": {arch: str(p) for arch, p in boxes.items()},
                    "vm_command": vm_command(), "qemu": qemu, "qemu_x86_64": qemu_x86_64,
                    "errors": []}
    with tempfile.TemporaryDirectory(prefix="vm-bench.") as tmp:
        scratch = Path(tmp)
        data = scratch / f"input-{size_mib:g}MiB.bin"
        if boxes:
            t0 = time.perf_counter()
            result["input"] = {"path": str(data), "bytes": size,
                               "sha256": make_input(data, size),
                               "seconds_to_make": round(time.perf_counter() - t0, 3)}
        for w in workloads:
            programs = {}
            for arch in _arches(runners):
                bb = str(boxes.get(arch))
                programs[arch] = {
                    "cpu": [str(guests[arch]["cpu"]), str(iterations)],
                    "syscalls": [str(guests[arch]["syscalls"]), str(syscall_iterations)],
                    "sha256": [bb, "sha256sum", str(data)],
                    "gzip": [bb, "gzip", "-c", str(data)]}[w]
            r = bench_workload(w, programs, runners, repeat, qemu, scratch, timeout, qemu_x86_64)
            result["workloads"][w] = r
            result["errors"] += r["errors"]
    result["machine"]["load_average_after"] = _load()
    return result


# -- reporting ---------------------------------------------------------------------------------

def _num(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def _describe(name: str, r: dict, top: dict) -> str:
    if name == "cpu":
        return f"cpu: bench_cpu {top['iterations']}"
    if name == "syscalls":
        return (f"syscalls: bench_syscalls {top['syscall_iterations']}, "
                f"{r.get('syscalls', 0):,} syscalls")
    inp = top.get("input", {})
    what = "sha256sum" if name == "sha256" else "gzip -c"
    return f"{name}: busybox {what} of {inp.get('bytes', 0) / MIB:g} MiB"


def report(r: dict) -> str:
    m = r["machine"]
    runners = r["runners"]
    lines = [
        f"machine: {m['cpu']}, nproc {m['nproc']}, {m['system']} {m['machine']}, "
        f"Python {m['python']}, load average {m['load_average']} -> "
        f"{m['load_average_after']}",
        f"runners: {', '.join(runners)}; {r['repeat']} run(s) each, interleaved; medians",
    ]
    # each runner against its architecture's reference runner, when that one ran
    refs = {arch: ref for arch, ref in REFERENCE.items() if ref in runners}
    ref_of = {x: refs.get(RUNNERS[x]) for x in runners}
    names = set(ref_of.values()) - {None}
    ref_name = next(iter(names)) if len(names) == 1 else "ref"
    if ref_name == "ref":
        lines.append("x ref: over " + ", ".join(f"{ref} for the {arch} runners"
                                                 for arch, ref in refs.items()))
    riscv = any(RUNNERS[x] == "riscv64" for x in runners)
    for name, w in r["workloads"].items():
        insns = w["instructions"]
        head_line = _describe(name, w, r)
        if riscv:
            head_line += (f", {insns:,} riscv64 guest instructions (vm --stats)" if insns
                          else ", guest instructions unknown")
        lines += ["", head_line]
        sps = w.get("syscalls_per_s")
        head = f"  {'runner':11} {'wall s':>9} {'CPU s':>9}"
        if riscv:
            head += f" {'MIPS wall':>10} {'MIPS CPU':>9}"
        if sps:
            head += f" {'syscalls/s wall':>15} {'syscalls/s CPU':>14}"
        if names:
            head += f" {'x ' + ref_name + ' wall':>{len(ref_name) + 7}}"
            head += f" {'x ' + ref_name + ' CPU':>{len(ref_name) + 6}}"
        lines.append(head)
        for runner in runners:
            med, mips = w["median"][runner], w["mips"][runner]
            line = f"  {runner:11} {med['wall']:9.3f} {med['cpu']:9.3f}"
            if riscv:
                line += f" {_num(mips['wall'], '.2f'):>10} {_num(mips['cpu'], '.2f'):>9}"
            if sps:
                line += (f" {_num(sps[runner]['wall'], ',.0f'):>15}"
                         f" {_num(sps[runner]['cpu'], ',.0f'):>14}")
            if names:
                ref = ref_of[runner]
                none = {"wall": None, "cpu": None}
                q = ({"wall": 1.0, "cpu": 1.0} if ref == runner else
                     w["ratio"].get(f"{runner}/{ref}", none) if ref else none)
                line += (f" {_num(q['wall'], '.2f'):>{len(ref_name) + 7}}"
                         f" {_num(q['cpu'], '.2f'):>{len(ref_name) + 6}}")
            lines.append(line)
        ij = w["ratio"].get("interp/jit")
        if ij:
            lines.append(f"  jit is {_num(ij['wall'], '.1f')}x faster than interp (wall), "
                         f"{_num(ij['cpu'], '.1f')}x (CPU)")
        kq = w["ratio"].get("kvm/qemu-x86_64")
        if kq:
            lines.append(f"  kvm takes {_num(kq['wall'], '.2f')}x qemu-x86_64's time (wall), "
                         f"{_num(kq['cpu'], '.2f')}x (CPU)")
        if "kvm" in runners and w["runs"]["kvm"] and "kvm" in w["runs"]["kvm"][-1]:
            inside = statistics.median(x["kvm"]["kvm_run_seconds"] for x in w["runs"]["kvm"]
                                       if "kvm" in x)
            lines.append(f"  kvm: {inside:.3f} s inside KVM_RUN (median, from --stats)")
        if w.get("note"):
            lines.append(f"  note: {w['note']}")
    lines += [f"error: {e}" for e in r["errors"]]
    return "\n".join(lines)


def _names(text: str, known: tuple[str, ...], what: str,
           parser: argparse.ArgumentParser) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        parser.error(f"unknown {what} {', '.join(unknown) or '(none given)'}: "
                     f"choose from {','.join(known)}")
    return list(dict.fromkeys(names))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Run it as `uv run tools/bench [...]`; "
                                            "see the top of tools/bench.py for the manual.")
    parser.add_argument("--workloads", "-w", default=",".join(DEFAULT_WORKLOADS),
                        help="comma list of cpu,sha256,gzip,syscalls (default cpu,sha256,gzip)")
    parser.add_argument("--engines", "-e", default=None,
                        help="comma list of runners: jit,interp,qemu (riscv64), "
                             "kvm,native,qemu-x86_64 (x86_64); default jit,interp,qemu")
    parser.add_argument("--engine", default=None,
                        help="old spelling: --engine E means --engines E,qemu")
    parser.add_argument("--iterations", "-n", type=int, default=40,
                        help="bench_cpu's iteration count (default 40)")
    parser.add_argument("--syscall-iterations", type=int, default=10000,
                        help="bench_syscalls's iteration count, 10 syscalls each "
                             "(default 10000)")
    parser.add_argument("--size-mib", type=float, default=16.0,
                        help="size of the sha256/gzip input in MiB (default 16)")
    parser.add_argument("--repeat", "-r", type=int, default=3,
                        help="runs of each runner per workload (default 3)")
    parser.add_argument("--guest", type=Path, default=DEFAULT_GUEST,
                        help="the cpu workload's riscv64 guest "
                             "(default build/guests/riscv64/bench_cpu)")
    parser.add_argument("--guest-x86_64", type=Path, default=DEFAULT_GUEST_X86_64,
                        help="the cpu workload's x86_64 guest "
                             "(default build/guests/x86_64/bench_cpu)")
    parser.add_argument("--qemu", default="qemu-riscv64-static")
    parser.add_argument("--qemu-x86_64", default="qemu-x86_64-static")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds one run may take (default: no limit)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    if args.engine is not None and args.engines is not None:
        parser.error("give --engines or --engine, not both")
    if args.engine is not None:
        runners = [*_names(args.engine, VM_RUNNERS, "engine", parser), "qemu"]
    else:
        runners = _names(args.engines or ",".join(DEFAULT_RUNNERS), tuple(RUNNERS), "runner",
                         parser)
    workloads = _names(args.workloads, WORKLOADS, "workload", parser)
    if args.size_mib <= 0:
        parser.error("--size-mib must be positive")
    if args.iterations < 0 or args.syscall_iterations < 0:
        parser.error("iteration counts cannot be negative")
    try:
        result = bench(workloads, runners, args.iterations, args.size_mib, max(1, args.repeat),
                       args.guest, args.qemu, args.timeout,
                       syscall_iterations=args.syscall_iterations,
                       guest_x86_64=args.guest_x86_64, qemu_x86_64=args.qemu_x86_64)
    except BenchError as error:
        print(f"bench: error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
