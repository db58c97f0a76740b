"""Build the test guests: tests-integration/guests/*.c -> build/guests/<arch>/<name>.

    uv run python tools/build_guests.py [--arch riscv64] [--out DIR] [--force] [NAME ...]

Every guest is one C file (with guest.h), compiled by Debian's cross compiler
for the architecture as a static executable: ``<cc> -static -O2 -Wall -o OUT
SRC <extra>``, where <extra> comes from a ``guest-cflags:`` line in the source
(e.g. ``-pthread`` or ``-lm``). The build is incremental: a guest is rebuilt
only when its compile command, its source, the shared headers or the compiler
changed (a ``.stamp`` file beside each binary records a hash of all of it).
Outputs are written atomically, so concurrent builds (pytest-xdist workers)
are safe.

For riscv64 the tool also refreshes the committed example
``examples/riscv64/hello`` (the ``hello`` guest, stripped) when its bytes
differ; ``--no-examples`` leaves it alone.

Exit status: 0 when everything is built, 1 with one clear line on stderr when
the cross compiler is missing or a guest does not compile.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUESTS_DIR = ROOT / "tests-integration" / "guests"
DEFAULT_OUT = ROOT / "build" / "guests"
EXAMPLES_DIR = ROOT / "examples"

CFLAGS = ("-static", "-O2", "-Wall")
_EXTRA_RE = re.compile(r"^\s*(?://|/\*)\s*guest-cflags:\s*(.*?)\s*(?:\*/)?\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Arch:
    """A guest architecture: its compiler, strip, and the Debian packages that provide them."""

    name: str
    cc: str
    strip: str
    apt_packages: tuple[str, ...]
    examples: tuple[str, ...] = ()


def _x86_64() -> Arch:
    native = platform.machine() in {"x86_64", "AMD64"}
    prefix = "" if native else "x86_64-linux-gnu-"
    packages = ("gcc", "libc6-dev") if native else ("gcc-x86-64-linux-gnu", "libc6-dev-amd64-cross")
    return Arch("x86_64", f"{prefix}gcc", f"{prefix}strip", packages)


ARCHES: dict[str, Arch] = {
    "riscv64": Arch(
        "riscv64",
        "riscv64-linux-gnu-gcc",
        "riscv64-linux-gnu-strip",
        ("gcc-riscv64-linux-gnu", "libc6-dev-riscv64-cross", "binutils-riscv64-linux-gnu"),
        examples=("hello",),
    ),
    "aarch64": Arch(
        "aarch64",
        "aarch64-linux-gnu-gcc",
        "aarch64-linux-gnu-strip",
        ("gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross", "binutils-aarch64-linux-gnu"),
    ),
    "x86_64": _x86_64(),
}


class BuildError(Exception):
    """A guest could not be built; the message is one line a user can act on."""


def guest_names() -> list[str]:
    """Every guest, by name (the C file's stem), sorted."""
    return sorted(p.stem for p in GUESTS_DIR.glob("*.c"))


def source(name: str) -> Path:
    return GUESTS_DIR / f"{name}.c"


def output_path(arch: str, name: str, out: Path = DEFAULT_OUT) -> Path:
    """Where the built guest ``name`` for ``arch`` lives."""
    return out / arch / name


def extra_flags(src: Path) -> list[str]:
    """The flags of the source's ``guest-cflags:`` lines, in order."""
    flags: list[str] = []
    for match in _EXTRA_RE.finditer(src.read_text(encoding="utf-8")):
        flags.extend(match.group(1).split())
    return flags


def find_compiler(arch: Arch) -> str:
    """The compiler's full path, or BuildError naming the packages to install."""
    found = shutil.which(arch.cc)
    if found is None:
        raise BuildError(
            f"{arch.cc} not found: the {arch.name} cross compiler is missing "
            f"(apt-get install {' '.join(arch.apt_packages)})"
        )
    return found


def _compiler_identity(cc: str) -> str:
    version = subprocess.run(
        [cc, "-dumpfullversion", "-dumpversion"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return f"{cc} {version}"


def command(cc: str, src: Path, out: Path) -> list[str]:
    return [cc, *CFLAGS, "-o", str(out), str(src), *extra_flags(src)]


def _fingerprint(cc_identity: str, cmd: Sequence[str], src: Path) -> str:
    digest = hashlib.sha256()
    digest.update(cc_identity.encode())
    digest.update("\0".join(cmd[1:]).encode())
    digest.update(src.read_bytes())
    for header in sorted(GUESTS_DIR.glob("*.h")):
        digest.update(header.name.encode())
        digest.update(header.read_bytes())
    return digest.hexdigest()


def _stamp(out: Path) -> Path:
    return out.with_name(out.name + ".stamp")


def _write_atomically(path: Path, data: bytes, mode: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_one(
    arch: Arch, name: str, out_dir: Path = DEFAULT_OUT, *, force: bool = False, cc: str = ""
) -> tuple[Path, bool]:
    """Build one guest if it is out of date; returns (path, whether it was compiled)."""
    src = source(name)
    if not src.is_file():
        raise BuildError(f"no guest named {name!r} ({src} does not exist)")
    cc = cc or find_compiler(arch)
    out = output_path(arch.name, name, out_dir)
    fingerprint = _fingerprint(_compiler_identity(cc), command(cc, src, out), src)
    out.parent.mkdir(parents=True, exist_ok=True)
    # One builder per guest at a time (pytest-xdist workers may all ask for it).
    with open(out.with_name(f".{name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force and _stamp_matches(out, fingerprint):
            return out, False
        _compile(arch, name, cc, src, out)
        _write_atomically(_stamp(out), (fingerprint + "\n").encode())
    return out, True


def _stamp_matches(out: Path, fingerprint: str) -> bool:
    stamp = _stamp(out)
    return (
        out.is_file()
        and stamp.is_file()
        and stamp.read_text(encoding="utf-8").strip() == fingerprint
    )


def _compile(arch: Arch, name: str, cc: str, src: Path, out: Path) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{name}.")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        cmd = command(cc, src, tmp)
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BuildError(
                f"{name} ({arch.name}) does not compile:\n  $ {' '.join(cmd)}\n{result.stderr}"
            )
        if result.stderr.strip():
            print(result.stderr.rstrip(), file=sys.stderr)
        os.chmod(tmp, 0o755)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def strip_to(arch: Arch, binary: Path) -> bytes:
    """The bytes of ``binary`` stripped by the architecture's strip."""
    strip = shutil.which(arch.strip)
    if strip is None:
        raise BuildError(f"{arch.strip} not found (apt-get install {' '.join(arch.apt_packages)})")
    with tempfile.TemporaryDirectory() as tmp:
        stripped = Path(tmp) / binary.name
        result = subprocess.run(
            [strip, "-o", str(stripped), str(binary)], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise BuildError(f"{arch.strip} failed on {binary}: {result.stderr.strip()}")
        return stripped.read_bytes()


def refresh_examples(arch: Arch, out_dir: Path = DEFAULT_OUT) -> list[Path]:
    """Copy the architecture's example guests, stripped, to examples/<arch>/ where they differ."""
    changed: list[Path] = []
    for name in arch.examples:
        data = strip_to(arch, output_path(arch.name, name, out_dir))
        target = EXAMPLES_DIR / arch.name / name
        if not target.is_file() or target.read_bytes() != data:
            _write_atomically(target, data, mode=0o755)
            changed.append(target)
    return changed


def build(
    arch_name: str,
    names: Iterable[str] | None = None,
    out_dir: Path = DEFAULT_OUT,
    *,
    force: bool = False,
    jobs: int | None = None,
) -> dict[str, tuple[Path, bool]]:
    """Build the named guests (default: all) for one architecture, in parallel."""
    if arch_name not in ARCHES:
        raise BuildError(f"unknown architecture {arch_name!r} (one of {', '.join(ARCHES)})")
    arch = ARCHES[arch_name]
    cc = find_compiler(arch)
    wanted = list(names) if names else guest_names()
    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
        futures = {
            name: pool.submit(build_one, arch, name, out_dir, force=force, cc=cc) for name in wanted
        }
        return {name: future.result() for name, future in futures.items()}


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="riscv64", choices=sorted(ARCHES))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="default: build/guests")
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    parser.add_argument("--jobs", "-j", type=int, default=None)
    parser.add_argument(
        "--no-examples", action="store_true", help="do not refresh examples/<arch>/"
    )
    parser.add_argument("names", nargs="*", help="guests to build (default: all)")
    args = parser.parse_args(argv)

    try:
        results = build(args.arch, args.names, args.out.resolve(), force=args.force, jobs=args.jobs)
        built = [name for name, (_, compiled) in results.items() if compiled]
        for name in built:
            print(f"built {_relative(output_path(args.arch, name, args.out.resolve()))}")
        changed: list[Path] = []
        arch = ARCHES[args.arch]
        if not args.no_examples and all(n in results for n in arch.examples):
            changed = refresh_examples(arch, args.out.resolve())
        for path in changed:
            print(f"updated {_relative(path)}")
    except BuildError as error:
        print(f"build_guests: {error}", file=sys.stderr)
        return 1
    print(
        f"build_guests: {len(results)} {args.arch} guest(s) in "
        f"{_relative(args.out.resolve() / args.arch)} ({len(built)} built, "
        f"{len(results) - len(built)} up to date)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
