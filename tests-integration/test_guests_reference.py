"""The test guests and Debian's busybox, under qemu-user: the references themselves.

Before our emulator runs a guest, the guest must be a good test: it builds,
it passes its own checks under qemu-riscv64-static (exit status 0, the
"<name>: ok" line), and it is deterministic (two runs give the same stdout and
exit status). The same holds for the busybox scripts. Later tests run the very
same binaries under `vm run` and compare with qemu in the same test, through
guestlib.

Also here: the committed examples/riscv64/hello behaves as a fresh build of
its source, and the two tools' own logic (flags, mirror discovery, errors).
"""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import guestlib

ARCH = "riscv64"
ROOT = guestlib.ROOT


def _env(**extra: str) -> dict[str, str]:
    return {**guestlib.DEFAULT_ENV, **extra}


# name -> (arguments, environment); "{tmp}" in an argument is a scratch directory.
CASES: dict[str, tuple[list[str], dict[str, str] | None]] = {
    "hello": (["world", "two words"], None),
    "int_m": ([], None),
    "atomics_threads": ([], None),
    "float_fenv": ([], None),
    "malloc_churn": ([], None),
    "mmap_prot": (["{tmp}"], None),
    "files_dirs": (["{tmp}"], None),
    "args_env_auxv": (
        ["--env=GREETING", "--env=HOME", "--env=MISSING", "", "two words", "x"],
        _env(GREETING="hello there"),
    ),
    "signals": ([], None),
    "fork_exec_pipe": ([], {}),  # {}: guestlib.exec_env, filled in at run time
    "recursion": ([], None),
    "bench_cpu": (["2"], None),
    "bench_syscalls": (["200"], None),
    "sig_host": ([], None),
    "alarm_timer": ([], None),
    "threads_signals": ([], None),
    "sa_restart": ([], None),
    "exec_state": (["{tmp}"], {}),
    "futex_ops": ([], None),
    "smc": ([], None),
}

# Output that pins each guest to known answers (beyond its own CHECKs).
KNOWN: dict[str, list[str]] = {
    "hello": ["Hello from a riscv64 guest!", "argv[2] = two words", "primes below 10000: 1229"],
    "int_m": [
        "a=8000000000000000 b=ffffffffffffffff",
        "  div=8000000000000000 rem=0000000000000000 divu=0000000000000000 remu=8000000000000000",
    ],
    "atomics_threads": ["fetch_add: 80000", "mutex: 400000", "exchange balance: 0"],
    "float_fenv": [
        "  1/3                    x----",
        "  DBL_MIN/3              xu---",
        "  DBL_MAX*2              x-o--",
        "  1/0                    ---z-",
        "  0/0                    ----i",
    ],
    "malloc_churn": ["misaligned: 0 corrupt: 0"],
    "mmap_prot": [
        "  write to read-only page            fault SEGV_ACCERR at the address+4101 (write)"
    ],
    "files_dirs": [
        "  readdir sub (sorted)                     . .. f00 f01 f02 f03 f04 f05 f06 "
        "f07 f08 f09 inner"
    ],
    "args_env_auxv": [
        "argc: 7",
        'env GREETING: "hello there"',
        "env MISSING: unset",
        'argv[4]: "" (0 bytes)',
        "AT_PAGESZ: 4096",
        "AT_HWCAP letters: A C D F I M",
    ],
    "signals": ["  write near NULL: SIGSEGV SEGV_MAPERR si_addr 16"],
    "fork_exec_pipe": [
        "  child raise(SIGTERM)                     killed by signal 15",
        "  [exec'd child] argc 5: child 7 hello world",
    ],
    "recursion": ["frames counted: 100000, stack grows down: yes"],
    "bench_cpu": ["bench_cpu on riscv64: 2 iterations, checksum a049d96320c95d00"],
    "bench_syscalls": ["bench_syscalls on riscv64: 200 iterations, 2000 syscalls, "
                       "checksum add9e87dca4ff077"],
    "sig_host": ["  kill(0, SIGUSR1): (caught once, killed) = 11 exited 11"],
    "alarm_timer": ["alarm(10) then alarm(0) answers 10"],
    "threads_signals": ["  main pthread_exit, worker ends last            exited 0"],
    "sa_restart": ["  read, handler with SA_RESTART:           1 (the byte), handler ran 1"],
    "exec_state": ["  [exec'd] SIGUSR1 blocked: yes, SIGUSR2: SIG_IGN, SIGTERM: SIG_DFL"],
    "futex_ops": ["  cmp_requeue wake 1 move 2: answered 3"],
    "smc": ["rewritten 5 times: f(5) = 505", "after the hot loop, rewritten: f(5) = 12"],
}


def test_every_guest_has_a_case() -> None:
    assert sorted(CASES) == guestlib.guest_names()


def _run_case(name: str, tmp: Path) -> guestlib.Run:
    args, env = CASES[name]
    binary = guestlib.guest(ARCH, name)
    if env == {}:
        env = guestlib.exec_env(ARCH)
    argv = [a.replace("{tmp}", str(tmp)) for a in args]
    return guestlib.run_qemu(ARCH, binary, argv, env=env, cwd=tmp)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_guest_under_qemu_passes_and_is_deterministic(name: str, tmp_path: Path) -> None:
    first = _run_case(name, tmp_path)
    assert first.rc == 0, first.describe()
    out = first.stdout.decode()
    if name != "bench_cpu":
        assert out.endswith(f"{name}: ok\n") or name == "hello", first.describe()
    lines = out.splitlines()
    for line in KNOWN[name]:
        assert line in lines, f"expected line {line!r}\n{first.describe()}"

    second = _run_case(name, tmp_path)
    assert (second.rc, second.stdout) == (first.rc, first.stdout), (
        f"{name} is not deterministic:\nfirst run:\n{first.describe()}\n"
        f"second run:\n{second.describe()}"
    )
    assert list(tmp_path.iterdir()) == [], "the guest left files behind"


@pytest.mark.slow
def test_bench_cpu_checksum_depends_on_iterations_only() -> None:
    binary = guestlib.guest(ARCH, "bench_cpu")
    one = guestlib.run_qemu(ARCH, binary, ["1"])
    assert one.rc == 0, one.describe()
    assert one.stdout != guestlib.run_qemu(ARCH, binary, ["2"]).stdout
    assert one == guestlib.run_qemu(ARCH, binary, ["1"])


@pytest.mark.slow
def test_fork_exec_pipe_without_the_exec_wrapper() -> None:
    """Without the wrapper, exec works only where binfmt_misc runs riscv64 binaries;
    where it does not, the exec fails and the exit status says so."""
    binfmt = Path("/proc/sys/fs/binfmt_misc/qemu-riscv64")
    result = guestlib.run_qemu(ARCH, guestlib.guest(ARCH, "fork_exec_pipe"))
    if binfmt.is_file() and binfmt.read_text().startswith("enabled"):
        assert result.rc == 0, result.describe()
    else:
        assert result.rc == 1, result.describe()
        assert b"fork_exec_pipe: 3 check(s) failed" in result.stdout


# --- the committed example ------------------------------------------------------

EXAMPLE = ROOT / "examples" / "riscv64" / "hello"


def _elf_facts(path: Path) -> dict[str, object]:
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF", f"{path} is not an ELF file"
    ei_class, ei_data = data[4], data[5]
    e_machine = struct.unpack_from("<H", data, 18)[0]
    e_phoff = struct.unpack_from("<Q", data, 32)[0]
    e_shoff = struct.unpack_from("<Q", data, 40)[0]
    e_phentsize, e_phnum, e_shentsize, e_shnum = struct.unpack_from("<HHHH", data, 54)
    types = [struct.unpack_from("<I", data, e_phoff + i * e_phentsize)[0] for i in range(e_phnum)]
    section_types = [
        struct.unpack_from("<I", data, e_shoff + i * e_shentsize + 4)[0] for i in range(e_shnum)
    ]
    return {
        "class64": ei_class == 2,
        "little": ei_data == 1,
        "machine": e_machine,
        "interp": 3 in types,  # PT_INTERP: dynamically linked
        "symtab": 2 in section_types,  # SHT_SYMTAB: not stripped
    }


def test_committed_example_is_a_static_stripped_riscv64_executable() -> None:
    assert EXAMPLE.is_file(), f"{EXAMPLE} is missing: run tools/build_guests.py --arch riscv64"
    assert os.access(EXAMPLE, os.X_OK)
    facts = _elf_facts(EXAMPLE)
    assert facts == {
        "class64": True,
        "little": True,
        "machine": 243,  # EM_RISCV
        "interp": False,
        "symtab": False,
    }
    assert EXAMPLE.stat().st_size < 1024 * 1024


@pytest.mark.slow
def test_committed_example_behaves_as_its_source() -> None:
    fresh = guestlib.guest(ARCH, "hello")
    for args in ([], ["world"], ["a b", "", "c"]):
        committed = guestlib.run_qemu(ARCH, EXAMPLE, args)
        rebuilt = guestlib.run_qemu(ARCH, fresh, args)
        assert committed.rc == 0, committed.describe()
        assert committed == rebuilt, (
            f"{committed.describe()}\n--- a fresh build ---\n{rebuilt.describe()}"
        )


# --- busybox ---------------------------------------------------------------------

# (arguments after `busybox`, stdin, expected stdout or None, expected exit status)
BUSYBOX = {
    "for-loop": (
        ["sh", "-c", "echo hi; for i in 1 2 3; do echo $i; done"],
        "",
        "hi\n1\n2\n3\n",
        0,
    ),
    "arithmetic": (
        ["sh", "-c", 'x=0; while [ $x -lt 10 ]; do x=$((x + 3)); done; echo "$x $((7 * 6))"'],
        "",
        "12 42\n",
        0,
    ),
    "functions-case-printf": (
        [
            "sh",
            "-c",
            'f() { echo "f:$1"; return 4; }; f x; echo "rc=$?"; '
            "case abc in a*) echo match;; esac; set -- a b c; echo $#; "
            "printf '%05d|%s|%x\\n' 42 str 255",
        ],
        "",
        "f:x\nrc=4\nmatch\n3\n00042|str|ff\n",
        0,
    ),
    "pipeline": (
        ["sh", "-c", "seq 1 10 | sort -rn | head -3; echo hello world | tr a-z A-Z | wc -c"],
        "",
        "10\n9\n8\n12\n",
        0,
    ),
    "stdin": (
        ["sh", "-c", 'while read -r a b; do echo "$b $a"; done'],
        "one two\nthree four\n",
        "two one\nfour three\n",
        0,
    ),
    "exit-status": (["sh", "-c", "echo before; exit 7"], "", "before\n", 7),
    "false": (["false"], "", "", 1),
    "md5sum": (["md5sum"], "The quick brown fox\n", None, 0),
    "sha256sum": (["sha256sum"], "The quick brown fox\n", None, 0),
    "awk-sed": (
        [
            "sh",
            "-c",
            "printf 'a 1\\nb 2\\nc 3\\n' | awk '{s += $2} END {print s}' | sed 's/6/six/'",
        ],
        "",
        "six\n",
        0,
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(BUSYBOX))
def test_busybox_under_qemu(case: str) -> None:
    args, stdin, expected, rc = BUSYBOX[case]
    binary = guestlib.busybox(ARCH)
    first = guestlib.run_qemu(ARCH, binary, args, stdin=stdin)
    assert first.rc == rc, first.describe()
    if case in {"md5sum", "sha256sum"}:
        digest = hashlib.new(case.removesuffix("sum"), stdin.encode()).hexdigest()
        expected = f"{digest}  -\n"
    assert first.stdout.decode() == expected, first.describe()
    second = guestlib.run_qemu(ARCH, binary, args, stdin=stdin)
    assert (second.rc, second.stdout) == (first.rc, first.stdout)


@pytest.mark.slow
def test_busybox_files_in_a_scratch_directory(tmp_path: Path) -> None:
    script = (
        "mkdir -p a/b && echo content > a/b/f && ln -s b/f a/link && "
        "ls a && cat a/link && wc -c < a/b/f && mv a/b/f a/g && ls a/b | wc -l && "
        "rm -r a && ls"
    )
    result = guestlib.run_qemu(ARCH, guestlib.busybox(ARCH), ["sh", "-c", script], cwd=tmp_path)
    assert result.rc == 0, result.describe()
    assert result.stdout.decode() == "b\nlink\ncontent\n8\n0\n"


# --- the tools' own logic (no cross compiler or network needed) -------------------


def test_build_guests_reads_extra_flags(tmp_path: Path) -> None:
    tool = guestlib.build_guests_tool()
    src = tmp_path / "x.c"
    src.write_text("/* guest-cflags: -pthread */\n// guest-cflags: -lm -frounding-math\nint x;\n")
    assert tool.extra_flags(src) == ["-pthread", "-lm", "-frounding-math"]
    assert "-lm" in tool.extra_flags(guestlib.GUESTS_SRC / "float_fenv.c")


def test_build_guests_without_the_compiler_says_so_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            ROOT / "tools" / "build_guests.py",
            "--arch",
            "aarch64",
            "--out",
            tmp_path,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": str(tmp_path)},
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "build_guests: aarch64-linux-gnu-gcc not found: the aarch64 cross compiler is missing "
        "(apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross binutils-aarch64-linux-gnu)"
    ]


def test_fetch_debian_finds_the_mirror_in_deb822_and_one_line_sources() -> None:
    tool = guestlib.fetch_debian_tool()
    deb822 = (
        "Types: deb\n# a comment\nURIs: http://mirror.invalid/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: http://mirror.invalid/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n"
    )
    stanzas = tool.parse_deb822(deb822)
    assert stanzas == [
        (["http://mirror.invalid/debian"], ["bookworm", "bookworm-updates"]),
        (["http://mirror.invalid/debian-security"], ["bookworm-security"]),
    ]
    assert tool._is_debian(stanzas[0][0][0], stanzas[0][1])
    assert not tool._is_debian(stanzas[1][0][0], stanzas[1][1])
    assert tool._host_suite(stanzas[0][1]) == "bookworm"
    one_line = (
        "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://m.invalid/debian trixie main\n"
        "deb-src http://m.invalid/debian trixie main\n"
    )
    assert tool.parse_one_line(one_line) == [(["http://m.invalid/debian"], ["trixie"])]
    # An Ubuntu archive is not a Debian mirror.
    assert not tool._is_debian("http://archive.invalid/ubuntu", ["noble", "noble-updates"])
    assert tool.find_mirror("http://given.invalid/debian/").uri == "http://given.invalid/debian"


def test_fetch_debian_architecture_names() -> None:
    tool = guestlib.fetch_debian_tool()
    assert [tool.debian_arch(a) for a in ("riscv64", "aarch64", "arm64", "x86_64", "amd64")] == [
        "riscv64",
        "arm64",
        "arm64",
        "amd64",
        "amd64",
    ]
    with pytest.raises(tool.FetchError, match="unknown architecture"):
        tool.debian_arch("mips")
