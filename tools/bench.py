"""Benchmark the interpreter tier against qemu-user on the CPU-bound guest, side by side.

    uv run python tools/bench.py [--iterations N] [--repeat R] [--json] [--guest PATH]
    uv run tools/bench [...]                       (the same, through the tools/bench shim)

Runs ``build/guests/riscv64/bench_cpu N`` (default N=1: about 45.6 million guest instructions)
under ``vm run --engine interp --stats`` and under ``qemu-riscv64-static`` with the same N,
R times each (default 3, interleaved so that both see the same machine load), and prints the
median wall-clock and CPU times (user+sys of the child process), the ratio vm/qemu, and guest
MIPS. The guest instruction count comes from vm's ``--stats``; qemu's MIPS use the same count
(it runs the same program). Both outputs must be identical, or the run is reported as failed.

The machine it ran on (CPU model, nproc, load average before and after) is part of the
output: wall-clock times on a loaded machine say little, CPU times more. ``--json`` prints one
JSON object instead of the table. Exit status: 0, or 1 when a run failed or the outputs differ.
Build the guest first: ``uv run python tools/build_guests.py bench_cpu``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GUEST = ROOT / "build" / "guests" / "riscv64" / "bench_cpu"
_STATS = re.compile(r"vm stats: (\d+) guest instructions")


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


def timed(cmd: list[str]) -> dict[str, object]:
    """Run ``cmd``; its wall time, the CPU time it used, its output and status."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "status": proc.returncode, "stdout": proc.stdout,
            "stderr": proc.stderr.decode(errors="replace")}


def bench(guest: Path, iterations: int, repeat: int, engine: str, qemu: str) -> dict:
    vm_cmd = [*vm_command(), "run", "--engine", engine, "--stats", str(guest), str(iterations)]
    qemu_cmd = [qemu, str(guest), str(iterations)]
    result: dict = {"machine": machine(), "guest": str(guest), "iterations": iterations,
                    "repeat": repeat, "vm_command": vm_cmd, "qemu_command": qemu_cmd,
                    "vm": [], "qemu": [], "errors": []}
    insns = None
    for _ in range(repeat):
        q = timed(qemu_cmd)
        v = timed(vm_cmd)
        for name, run in (("qemu", q), ("vm", v)):
            result[name].append({"wall": round(run["wall"], 4), "cpu": round(run["cpu"], 4)})
            if run["status"] != 0:
                result["errors"].append(f"{name} exited with status {run['status']}: "
                                        f"{run['stderr'].strip()[-300:]}")
        if v["stdout"] != q["stdout"]:
            result["errors"].append("vm's output differs from qemu's")
        m = _STATS.search(v["stderr"])
        if m is None:
            result["errors"].append("vm printed no --stats line")
        else:
            insns = int(m.group(1))
    result["machine"]["load_average_after"] = _load()
    result["guest_instructions"] = insns
    for name in ("vm", "qemu"):
        runs = result[name]
        result[name + "_median"] = {k: round(statistics.median(r[k] for r in runs), 4)
                                    for k in ("wall", "cpu")}
    vm_m, q_m = result["vm_median"], result["qemu_median"]
    result["ratio"] = {k: round(vm_m[k] / q_m[k], 1) if q_m[k] > 0 else None
                       for k in ("wall", "cpu")}
    if insns:
        result["mips"] = {
            "vm": {k: round(insns / vm_m[k] / 1e6, 2) if vm_m[k] > 0 else None
                   for k in ("wall", "cpu")},
            "qemu": {k: round(insns / q_m[k] / 1e6, 1) if q_m[k] > 0 else None
                     for k in ("wall", "cpu")},
        }
    return result


def report(r: dict) -> str:
    m = r["machine"]
    lines = [
        f"bench_cpu {r['iterations']}: {r['repeat']} run(s) each, medians",
        f"machine: {m['cpu']}, nproc {m['nproc']}, {m['system']} {m['machine']}, "
        f"Python {m['python']}, load average {m['load_average']} -> "
        f"{m['load_average_after']}",
        f"  {'':26} {'wall s':>8} {'CPU s':>8} {'MIPS wall':>10} {'MIPS CPU':>9}",
    ]
    mips = r.get("mips", {})
    for name, label in (("vm", "vm run --engine " + r["vm_command"][-4]),
                        ("qemu", "qemu-riscv64-static")):
        med = r[name + "_median"]
        mw = mips.get(name, {}).get("wall")
        mc = mips.get(name, {}).get("cpu")
        lines.append(f"  {label:26} {med['wall']:8.3f} {med['cpu']:8.3f} "
                     f"{mw if mw is not None else '-':>10} {mc if mc is not None else '-':>9}")
    lines.append(f"  ratio vm/qemu: {r['ratio']['wall']}x wall, {r['ratio']['cpu']}x CPU")
    insns = r["guest_instructions"]
    lines.append(f"  guest instructions (vm --stats): {insns:,}" if insns else
                 "  guest instructions: unknown")
    lines += [f"error: {e}" for e in r["errors"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", "-n", type=int, default=1,
                        help="the guest's iteration count (default 1)")
    parser.add_argument("--repeat", "-r", type=int, default=3, help="runs of each (default 3)")
    parser.add_argument("--guest", type=Path, default=DEFAULT_GUEST)
    parser.add_argument("--engine", default="interp", help="vm's --engine (default interp)")
    parser.add_argument("--qemu", default="qemu-riscv64-static")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    if not args.guest.exists():
        print(f"bench: error: {args.guest} does not exist: build it with "
              "`uv run python tools/build_guests.py bench_cpu`", file=sys.stderr)
        return 1
    if shutil.which(args.qemu) is None:
        print(f"bench: error: {args.qemu} not found: install qemu-user-static", file=sys.stderr)
        return 1
    result = bench(args.guest, args.iterations, max(1, args.repeat), args.engine, args.qemu)
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
