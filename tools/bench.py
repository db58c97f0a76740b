"""Benchmark vm's engines against qemu-user on several riscv64 workloads, side by side.

How to run it (from the repository root; ``tools/bench`` is a shim that runs this file)::

    uv run tools/bench [--workloads W,...] [--engines E,...] [-n N] [--size-mib S]
                       [--repeat R] [--json] [--guest PATH] [--qemu PATH] [--timeout SECONDS]
    uv run python tools/bench.py [...]                  (the same, without the shim)

Examples::

    uv run tools/bench                        # all: cpu,sha256,gzip under jit,interp,qemu
    uv run tools/bench --workloads cpu --engines jit,qemu -n 40
    uv run tools/bench --workloads sha256,gzip --engines jit,interp,qemu --size-mib 4 -r 5
    uv run tools/bench --workloads cpu --engines interp,qemu -n 1 -r 1 --json

Runners (``--engines``, a comma list, default ``jit,interp,qemu``):

- ``jit``: ``vm run --engine jit --stats GUEST ARGS``;
- ``interp``: ``vm run --engine interp --stats GUEST ARGS``;
- ``qemu``: ``qemu-riscv64-static GUEST ARGS`` (``--qemu`` names another one).

``--engine E`` is the old spelling, kept: it means ``--engines E,qemu``.

Workloads (``--workloads``, a comma list, default ``cpu,sha256,gzip``):

- ``cpu``: ``build/guests/riscv64/bench_cpu N``, N = ``--iterations``/``-n`` (default 40,
  the program's own default; one iteration is about 45.6 million guest instructions);
  ``--guest`` names another binary;
- ``sha256``: Debian's busybox-static for riscv64, ``busybox sha256sum FILE``;
- ``gzip``: the same busybox, ``busybox gzip -c FILE``.

FILE is made once per bench run, in a temporary directory: ``--size-mib`` MiB (default 16; a
fraction such as 0.5 works too) of deterministic pseudo-random data, runs of random bytes
between lines of words drawn at random from a small vocabulary, so that gzip compresses it
to about a third, with real work to do (matches, Huffman coding) and not a trivial run.

For each workload, each runner runs R times (``--repeat``/``-r``, default 3), interleaved:
repeat i runs the runners in the order rotated by i, so that all see the same machine load.
Each run's stdout goes to a file and is compared by its sha256 digest (gzip's output is
megabytes); stdout and exit status must be those of qemu (when qemu is among the runners;
else those of the first runner), every exit status 0, and each vm runner must print its
``vm stats: N guest instructions`` line (``--stats``, on stderr). Anything else is an error.

Reported per workload: the median wall-clock and CPU time (user+sys of the child) of each
runner; guest MIPS (wall and CPU) of each runner, from vm's instruction count (qemu runs the
same program, so its MIPS use vm's count: interp's if it ran, else jit's); each runner's
times over qemu's ("interp 350x qemu": 350 times slower); and interp's times over jit's
("jit is 12x faster than interp").

The machine it ran on (CPU model, nproc, load average before and after) is part of the
output: wall-clock times on a loaded machine say little, CPU times more. ``--json`` prints one
JSON object (everything: machine, commands, every run, medians, MIPS, ratios, errors) instead
of the tables. Exit status: 0, or 1 when a run failed or outputs differ, or when a guest,
busybox or qemu is missing (one ``bench: error: ...`` line on stderr says which and how to
get it).

Time it takes: the interpreter runs some 10-20 million guest instructions a second (2-core
AMD EPYC, November 2026): bench_cpu 40 takes it about 75 s; sha256sum and gzip of 1 MiB about
84 and 180 million instructions, 6 and 15 s. The defaults (cpu,sha256,gzip x jit,interp,qemu,
-n 40, 16 MiB, 3 repeats) therefore run for half an hour or more; pick workloads, runners and
sizes for a quick look (``--timeout`` bounds each run).

Get the inputs first:
``uv run python tools/build_guests.py bench_cpu`` (the cpu guest) and
``uv run python tools/fetch_debian.py --arch riscv64 busybox-static`` (busybox).
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
DEFAULT_GUEST = ROOT / "build" / "guests" / "riscv64" / "bench_cpu"
DEBIAN = ROOT / "build" / "debian" / "riscv64"
_STATS = re.compile(r"vm stats: (\d+) guest instructions")

RUNNERS = ("jit", "interp", "qemu")
VM_RUNNERS = ("jit", "interp")
WORKLOADS = ("cpu", "sha256", "gzip")
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

def busybox() -> Path:
    """Debian's busybox-static for riscv64, found as the integration tests find it.

    tests-integration/guestlib.py's ``busybox`` looks in ``build/debian/riscv64/busybox-static``
    (where tools/fetch_debian.py extracts it). When only the .deb is there, it is extracted
    into that same place with ``dpkg-deb -x``.
    """
    found = _guestlib_busybox()
    if found is not None:
        return found
    tree = DEBIAN / "busybox-static"
    for candidate in (tree / "usr" / "bin" / "busybox", tree / "bin" / "busybox"):
        if candidate.is_file():
            return candidate
    debs = sorted((DEBIAN / "debs").glob("busybox-static_*.deb"))
    fetch = "`uv run python tools/fetch_debian.py --arch riscv64 busybox-static`"
    if not debs:
        raise BenchError(f"Debian's busybox-static for riscv64 is not fetched: run {fetch}")
    dpkg_deb = shutil.which("dpkg-deb")
    if dpkg_deb is None:
        raise BenchError(f"{debs[-1]} is there but dpkg-deb is not: apt-get install dpkg")
    tmp = Path(tempfile.mkdtemp(prefix=".busybox-static.", dir=DEBIAN))
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


def _guestlib_busybox() -> Path | None:
    """guestlib.busybox("riscv64"), or None when it is not importable or finds nothing."""
    path = str(ROOT / "tests-integration")
    if path not in sys.path:
        sys.path.insert(0, path)
    try:
        import guestlib
    except ImportError:  # it needs pytest, a dev dependency
        return None
    try:
        return guestlib.busybox("riscv64")
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


def commands(runners: list[str], program: list[str], qemu: str) -> dict[str, list[str]]:
    vm = vm_command()
    return {r: ([qemu, *program] if r == "qemu" else
                [*vm, "run", "--engine", r, "--stats", *program]) for r in runners}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def bench_workload(name: str, program: list[str], runners: list[str], repeat: int, qemu: str,
                   scratch: Path, timeout: float | None) -> dict:
    cmds = commands(runners, program, qemu)
    result: dict = {"workload": name, "commands": cmds, "runs": {r: [] for r in runners},
                    "guest_instructions": {}, "errors": []}
    reference = "qemu" if "qemu" in runners else runners[0]
    ref_output: dict[str, object] | None = None
    for i in range(repeat):
        order = runners[i % len(runners):] + runners[:i % len(runners)]
        runs = {r: timed(cmds[r], scratch / f"{name}.{r}.out", timeout) for r in order}
        for r in runners:
            run = runs[r]
            result["runs"][r].append({"wall": round(run["wall"], 4), "cpu": round(run["cpu"], 4),
                                      "status": run["status"]})
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
        ref = runs[reference]
        if ref_output is None:
            ref_output = {k: ref[k] for k in ("status", "stdout_sha256", "stdout_bytes", "stdout")}
            result["output"] = {"reference": reference, **ref_output}
        for r in runners:
            run = runs[r]
            if run["stdout_sha256"] != ref_output["stdout_sha256"]:
                want = f"{ref_output['stdout_bytes']} bytes, {ref_output['stdout_sha256']}"
                result["errors"].append(
                    f"{name}: {r}'s output differs from {reference}'s ({run['stdout_bytes']} "
                    f"bytes, sha256 {run['stdout_sha256']}; {reference}: {want})")
            elif run["status"] != ref_output["status"]:
                result["errors"].append(f"{name}: {r} exited with status {run['status']}, "
                                        f"{reference} with {ref_output['status']}")
    result["errors"] = list(dict.fromkeys(result["errors"]))  # the same error in each repeat
    counts = result["guest_instructions"]
    insns = counts.get("interp", counts.get("jit"))
    if len(set(counts.values())) > 1:
        result["note"] = f"the engines count different instruction totals: {counts}"
    result["instructions"] = insns
    result["median"] = {r: {k: round(statistics.median(x[k] for x in result["runs"][r]), 4)
                            for k in ("wall", "cpu")} for r in runners}
    result["mips"] = {}
    for r in runners:
        n = counts.get(r, insns)
        med = result["median"][r]
        result["mips"][r] = {k: round(n / med[k] / 1e6, 2) if n and med[k] > 0 else None
                             for k in ("wall", "cpu")}
    ratios: dict[str, dict[str, float | None]] = {}
    if "qemu" in runners:
        q = result["median"]["qemu"]
        for r in runners:
            if r != "qemu":
                ratios[f"{r}/qemu"] = {k: _ratio(result["median"][r][k], q[k])
                                       for k in ("wall", "cpu")}
    if "jit" in runners and "interp" in runners:
        ratios["interp/jit"] = {k: _ratio(result["median"]["interp"][k],
                                          result["median"]["jit"][k]) for k in ("wall", "cpu")}
    result["ratio"] = ratios
    return result


def bench(workloads: list[str], runners: list[str], iterations: int, size_mib: float,
          repeat: int, guest: Path, qemu: str, timeout: float | None = None) -> dict:
    """Check that every input is there (else BenchError), then run every workload."""
    if "qemu" in runners and shutil.which(qemu) is None:
        raise BenchError(f"{qemu} not found: install qemu-user-static")
    if "cpu" in workloads and not guest.is_file():
        raise BenchError(f"{guest} does not exist: build it with "
                         "`uv run python tools/build_guests.py bench_cpu`")
    box = busybox() if {"sha256", "gzip"} & set(workloads) else None
    size = max(1, int(size_mib * MIB))
    result: dict = {"machine": machine(), "runners": runners, "workloads": {},
                    "iterations": iterations, "size_mib": size_mib, "repeat": repeat,
                    "guest": str(guest), "busybox": str(box) if box else None,
                    "vm_command": vm_command(), "qemu": qemu, "errors": []}
    with tempfile.TemporaryDirectory(prefix="vm-bench.") as tmp:
        scratch = Path(tmp)
        data = scratch / f"input-{size_mib:g}MiB.bin"
        if box is not None:
            t0 = time.perf_counter()
            result["input"] = {"path": str(data), "bytes": size,
                               "sha256": make_input(data, size),
                               "seconds_to_make": round(time.perf_counter() - t0, 3)}
        programs = {"cpu": [str(guest), str(iterations)],
                    "sha256": [str(box), "sha256sum", str(data)],
                    "gzip": [str(box), "gzip", "-c", str(data)]}
        for w in workloads:
            r = bench_workload(w, programs[w], runners, repeat, qemu, scratch, timeout)
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
    inp = top.get("input", {})
    what = "sha256sum" if name == "sha256" else "gzip -c"
    return f"{name}: busybox {what} of {inp.get('bytes', 0) / MIB:g} MiB"


def report(r: dict) -> str:
    m = r["machine"]
    lines = [
        f"machine: {m['cpu']}, nproc {m['nproc']}, {m['system']} {m['machine']}, "
        f"Python {m['python']}, load average {m['load_average']} -> "
        f"{m['load_average_after']}",
        f"runners: {', '.join(r['runners'])}; {r['repeat']} run(s) each, interleaved; medians",
    ]
    for name, w in r["workloads"].items():
        insns = w["instructions"]
        lines += ["", _describe(name, w, r) + (f", {insns:,} guest instructions (vm --stats)"
                                               if insns else ", guest instructions unknown")]
        has_qemu = "qemu" in r["runners"]
        head = f"  {'runner':8} {'wall s':>9} {'CPU s':>9} {'MIPS wall':>10} {'MIPS CPU':>9}"
        if has_qemu:
            head += f" {'x qemu wall':>12} {'x qemu CPU':>11}"
        lines.append(head)
        for runner in r["runners"]:
            med, mips = w["median"][runner], w["mips"][runner]
            line = (f"  {runner:8} {med['wall']:9.3f} {med['cpu']:9.3f} "
                    f"{_num(mips['wall'], '.2f'):>10} {_num(mips['cpu'], '.2f'):>9}")
            if has_qemu:
                q = w["ratio"].get(f"{runner}/qemu", {"wall": 1.0, "cpu": 1.0})
                line += f" {_num(q['wall'], '.1f'):>12} {_num(q['cpu'], '.1f'):>11}"
            lines.append(line)
        ij = w["ratio"].get("interp/jit")
        if ij:
            lines.append(f"  jit is {_num(ij['wall'], '.1f')}x faster than interp (wall), "
                         f"{_num(ij['cpu'], '.1f')}x (CPU)")
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
    parser.add_argument("--workloads", "-w", default=",".join(WORKLOADS),
                        help="comma list of cpu,sha256,gzip (default all)")
    parser.add_argument("--engines", "-e", default=None,
                        help="comma list of runners jit,interp,qemu (default all)")
    parser.add_argument("--engine", default=None,
                        help="old spelling: --engine E means --engines E,qemu")
    parser.add_argument("--iterations", "-n", type=int, default=40,
                        help="bench_cpu's iteration count (default 40)")
    parser.add_argument("--size-mib", type=float, default=16.0,
                        help="size of the sha256/gzip input in MiB (default 16)")
    parser.add_argument("--repeat", "-r", type=int, default=3,
                        help="runs of each runner per workload (default 3)")
    parser.add_argument("--guest", type=Path, default=DEFAULT_GUEST,
                        help="the cpu workload's guest (default build/guests/riscv64/bench_cpu)")
    parser.add_argument("--qemu", default="qemu-riscv64-static")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds one run may take (default: no limit)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    if args.engine is not None and args.engines is not None:
        parser.error("give --engines or --engine, not both")
    if args.engine is not None:
        runners = [*_names(args.engine, VM_RUNNERS, "engine", parser), "qemu"]
    else:
        runners = _names(args.engines or ",".join(RUNNERS), RUNNERS, "runner", parser)
    workloads = _names(args.workloads, WORKLOADS, "workload", parser)
    if args.size_mib <= 0:
        parser.error("--size-mib must be positive")
    try:
        result = bench(workloads, runners, args.iterations, args.size_mib, max(1, args.repeat),
                       args.guest, args.qemu, args.timeout)
    except BenchError as error:
        print(f"bench: error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
