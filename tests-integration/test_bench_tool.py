"""tools/bench.py, run as a subprocess with tiny parameters: its JSON and its errors.

The full run (cpu, sha256 and gzip under `vm run --engine interp` and qemu-riscv64-static, one
iteration, half a MiB, one repeat) takes about 15 s on one core; jit is left out so that this
test does not time the JIT.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import guestlib

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "tools" / "bench.py"
WORKLOADS = ["cpu", "sha256", "gzip"]
RUNNERS = ["interp", "qemu"]


def run_bench(*args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def load_bench():
    spec = importlib.util.spec_from_file_location("vm_tools_bench_under_test", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_bench_interp_and_qemu_json() -> None:
    guest = guestlib.guest("riscv64", "bench_cpu")  # each of these skips when it is missing
    guestlib.busybox("riscv64")
    guestlib.qemu("riscv64")
    done = run_bench("--workloads", ",".join(WORKLOADS), "--engines", ",".join(RUNNERS),
                     "-n", "1", "--size-mib", "0.5", "--repeat", "1", "--guest", str(guest),
                     "--json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["errors"] == []
    assert result["runners"] == RUNNERS
    assert list(result["workloads"]) == WORKLOADS
    assert result["input"]["bytes"] == 1 << 19
    assert result["machine"]["nproc"]
    for name, w in result["workloads"].items():
        assert w["errors"] == [], name
        assert set(w["runs"]) == set(RUNNERS), name
        assert all(len(runs) == 1 and runs[0]["status"] == 0 for runs in w["runs"].values())
        assert w["guest_instructions"]["interp"] > 1_000_000, name
        assert w["instructions"] == w["guest_instructions"]["interp"]
        for runner in RUNNERS:
            assert w["median"][runner]["wall"] > 0, (name, runner)
            assert w["mips"][runner]["wall"] > 0 and w["mips"][runner]["cpu"] > 0, (name, runner)
        ratio = w["ratio"]["interp/qemu"]
        assert ratio["wall"] > 0 and ratio["cpu"] > 0, name
        assert "interp/jit" not in w["ratio"]  # no jit among the runners
        assert w["output"]["reference"] == "qemu"
    assert "checksum" in result["workloads"]["cpu"]["output"]["stdout"]
    assert result["workloads"]["sha256"]["output"]["stdout"].startswith(result["input"]["sha256"])
    gz = result["workloads"]["gzip"]["output"]["stdout_bytes"]
    assert 0 < gz < (1 << 19) * 0.6  # the input compresses, but not to nothing
    assert gz > (1 << 19) * 0.1
    # The table is made from the same object.
    table = load_bench().report(result)
    for name in WORKLOADS:
        assert f"\n{name}: " in table
    assert "interp" in table and "qemu" in table and "error:" not in table


def test_missing_guest_is_one_error_line(tmp_path: Path) -> None:
    done = run_bench("--workloads", "cpu", "--engines", "interp", "--guest",
                     str(tmp_path / "no-such-guest"), timeout=60.0)
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bench: error: "), done.stderr
    assert "no-such-guest" in lines[0]


def test_old_engine_option_means_that_engine_and_qemu(tmp_path: Path) -> None:
    # --engine jit is --engines jit,qemu: a missing qemu is an error, found before any run
    done = run_bench("--engine", "jit", "--workloads", "cpu", "--qemu",
                     str(tmp_path / "no-qemu"), timeout=60.0)
    assert done.returncode == 1
    assert done.stderr.startswith("bench: error: ") and "no-qemu" in done.stderr
