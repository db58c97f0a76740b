"""tools/bench.py, run as a subprocess with tiny parameters: its JSON and its errors.

The full riscv64 run (cpu, sha256 and gzip under `vm run --engine interp` and
qemu-riscv64-static, one iteration, half a MiB, one repeat) takes about 15 s on one core; jit is
left out so that this test does not time the JIT. The x86_64 runners (`vm run --accel kvm`,
native execution, qemu-x86_64-static) run bench_cpu 1 and bench_syscalls 100 in about a
second; they need an x86_64 host with a usable /dev/kvm and skip elsewhere.
"""

from __future__ import annotations

import importlib.util
import json
import platform
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


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one ``bench: error:`` line a failed bench prints (exit 1, nothing on stdout)."""
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bench: error: "), done.stderr
    return lines[0]


def test_missing_guest_is_one_error_line(tmp_path: Path) -> None:
    done = run_bench("--workloads", "cpu", "--engines", "interp", "--guest",
                     str(tmp_path / "no-such-guest"), timeout=60.0)
    assert "no-such-guest" in _one_error_line(done)


def test_old_engine_option_means_that_engine_and_qemu(tmp_path: Path) -> None:
    # --engine jit is --engines jit,qemu: a missing qemu is an error, found before any run
    done = run_bench("--engine", "jit", "--workloads", "cpu", "--qemu",
                     str(tmp_path / "no-qemu"), timeout=60.0)
    assert done.returncode == 1
    assert done.stderr.startswith("bench: error: ") and "no-qemu" in done.stderr


def _needs_kvm() -> None:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip(f"the x86_64 runners need an x86_64 host, and this is {platform.machine()}")
    from vm_accel.kvm import probe

    found = probe()
    if not found.usable:
        pytest.skip(f"KVM is not usable here: {found.reason}")


X86_RUNNERS = ["kvm", "native", "qemu-x86_64"]


@pytest.mark.slow
def test_bench_kvm_native_and_qemu_x86_64_json() -> None:
    _needs_kvm()
    guest = guestlib.guest("x86_64", "bench_cpu")
    guestlib.guest("x86_64", "bench_syscalls")
    guestlib.qemu("x86_64")
    done = run_bench("--workloads", "cpu,syscalls", "--engines", ",".join(X86_RUNNERS),
                     "-n", "1", "--syscall-iterations", "100", "--repeat", "2",
                     "--guest-x86_64", str(guest), "--json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["errors"] == []
    assert result["runners"] == X86_RUNNERS
    assert result["arch"] == {r: "x86_64" for r in X86_RUNNERS}
    assert list(result["workloads"]) == ["cpu", "syscalls"]
    assert result["syscall_iterations"] == 100
    assert "input" not in result and result["busybox"] is None  # no busybox workload
    for name, w in result["workloads"].items():
        assert w["errors"] == [], name
        assert w["commands"]["native"][0] == result["guests"]["x86_64"][name]
        assert w["commands"]["kvm"][-5:-2] == ["--accel", "kvm", "--stats"]
        assert all(len(runs) == 2 and all(x["status"] == 0 for x in runs)
                   for runs in w["runs"].values()), name
        for run in w["runs"]["kvm"]:  # --stats under KVM: time inside KVM_RUN, exits by kind
            assert run["kvm"]["seconds"] > 0 and run["kvm"]["exits"]["IoExit"] > 0, name
        assert w["instructions"] is None and w["guest_instructions"] == {}
        for runner in X86_RUNNERS:
            assert w["median"][runner]["wall"] > 0, (name, runner)
            assert w["mips"][runner] == {"wall": None, "cpu": None}  # nothing counts them
        for ratio in ("kvm/native", "qemu-x86_64/native", "kvm/qemu-x86_64"):
            assert w["ratio"][ratio]["wall"] > 0, (name, ratio)
        assert w["output"]["reference"] == "native"
        assert w["outputs"] == {"x86_64": w["output"]}
    cpu, sys_ = result["workloads"]["cpu"], result["workloads"]["syscalls"]
    assert "bench_cpu on x86_64: 1 iterations, checksum " in cpu["output"]["stdout"]
    assert "syscalls" not in cpu and "syscalls_per_s" not in cpu
    assert sys_["output"]["stdout"].endswith("1000 syscalls, checksum 8b5b0e171afd97d7\n"
                                             "bench_syscalls: ok\n")
    assert sys_["syscalls"] == 1000
    for runner in X86_RUNNERS:
        assert sys_["syscalls_per_s"][runner]["wall"] > 0, runner
    # every syscall of the loop leaves the guest (plus those of start-up)
    assert min(x["kvm"]["exits"]["IoExit"] for x in sys_["runs"]["kvm"]) > 1000
    table = load_bench().report(result)
    assert "\ncpu: bench_cpu 1\n" in table
    assert "\nsyscalls: bench_syscalls 100, 1,000 syscalls\n" in table
    assert "syscalls/s wall" in table and "x native wall" in table
    assert "kvm takes " in table and "MIPS" not in table and "error:" not in table


@pytest.mark.slow
def test_bench_both_architectures_compare_each_with_its_own_reference() -> None:
    _needs_kvm()
    for arch in ("riscv64", "x86_64"):
        guestlib.guest(arch, "bench_syscalls")
        guestlib.qemu(arch)
    runners = ["kvm", "interp", "native", "qemu"]
    done = run_bench("--workloads", "syscalls", "--engines", ",".join(runners),
                     "--syscall-iterations", "50", "--repeat", "1", "--json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout)
    w = result["workloads"]["syscalls"]
    assert result["errors"] == [] and w["errors"] == []
    assert {a: o["reference"] for a, o in w["outputs"].items()} == {"x86_64": "native",
                                                                    "riscv64": "qemu"}
    assert w["output"] == w["outputs"]["x86_64"]  # the first runner's architecture
    assert "on riscv64: 50 iterations, 500 syscalls" in w["outputs"]["riscv64"]["stdout"]
    assert "on x86_64: 50 iterations, 500 syscalls" in w["outputs"]["x86_64"]["stdout"]
    assert sorted(w["ratio"]) == ["interp/qemu", "kvm/native"]
    assert w["instructions"] == w["guest_instructions"]["interp"] > 0
    assert w["mips"]["qemu"]["wall"] > 0 and w["mips"]["kvm"]["wall"] is None
    assert set(w["syscalls_per_s"]) == set(runners)
    table = load_bench().report(result)
    assert "x ref wall" in table and "native for the x86_64 runners" in table


def test_missing_x86_64_guest_is_one_error_line(tmp_path: Path) -> None:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("the x86_64 runners need an x86_64 host")
    done = run_bench("--workloads", "cpu", "--engines", "native", "--guest-x86_64",
                     str(tmp_path / "no-such-x86-guest"), timeout=60.0)
    line = _one_error_line(done)
    assert "no-such-x86-guest" in line and "--arch x86_64 bench_cpu" in line


def test_unknown_runner_names_every_runner() -> None:
    done = run_bench("--engines", "kvm,bochs", timeout=60.0)
    assert done.returncode == 2
    assert "unknown runner bochs" in done.stderr
    assert "jit,interp,qemu,kvm,native,qemu-x86_64" in done.stderr
