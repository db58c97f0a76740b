"""Download Debian packages for a foreign architecture, without touching the system's apt.

    uv run python tools/fetch_debian.py --arch riscv64 busybox-static [PACKAGE ...]

For each package: the .deb from Debian trixie (main) for the architecture,
extracted with ``dpkg-deb -x`` into ``build/debian/<arch>/<package>/``; the
tool prints the executables it holds (busybox-static -> usr/bin/busybox).

How, and what it leaves alone: apt-get runs with a private configuration under
``build/debian/<arch>/apt/`` (its own sources.list, package lists, cache and
an empty dpkg status), passed as ``-o`` options, so the system's sources,
lists, cache, preferences and dpkg database are neither read for packages nor
written. The mirror is the one the system already uses: the ``URIs:`` of the
Debian stanza in /etc/apt/sources.list.d/debian.sources (or a ``deb`` line of
/etc/apt/sources.list); ``--mirror URI`` or ``VM_DEBIAN_MIRROR`` overrides it
on a host with no Debian mirror configured (Ubuntu, say). Downloads are
verified by apt against /usr/share/keyrings/debian-archive-keyring.gpg
(Signed-By). Trixie's Release file is signed by the bookworm and trixie
archive keys, both in bookworm's keyring (2023.3+deb12u2 and later). Should
the system keyring lack every key that signed it, the tool fetches a newer
``debian-archive-keyring`` package from the system's own Debian suite, which
that same system keyring verifies, and uses the keyring inside: the chain of
trust stays unbroken, and nothing is installed.

Idempotent and cached: a package already extracted is not fetched again (no
network at all) unless ``--refresh`` is given. Exit status 1, with one line
on stderr, when apt-get or dpkg-deb is missing, no mirror is known, or apt
fails.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "build" / "debian"
SUITE = "trixie"
COMPONENT = "main"
SYSTEM_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
KEYRING_IN_PACKAGE = "usr/share/keyrings/debian-archive-keyring.gpg"
DEB822_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
ONE_LINE_SOURCES = Path("/etc/apt/sources.list")

# Our names and Debian's for the same architecture.
ARCH_ALIASES = {
    "riscv64": "riscv64",
    "arm64": "arm64",
    "aarch64": "arm64",
    "amd64": "amd64",
    "x86_64": "amd64",
}
DEBIAN_SUITES = {
    "bullseye", "bookworm", "trixie", "forky", "duke", "sid",
    "oldstable", "stable", "testing", "unstable",
}  # fmt: skip
_STAMP = ".fetched-from"


class FetchError(Exception):
    """The fetch failed; the message is one line a user can act on."""


@dataclass(frozen=True)
class Mirror:
    uri: str
    host_suite: str  # the system's own Debian suite there ("bookworm"), for the keyring


def debian_arch(arch: str) -> str:
    try:
        return ARCH_ALIASES[arch]
    except KeyError:
        raise FetchError(
            f"unknown architecture {arch!r} (one of {', '.join(sorted(ARCH_ALIASES))})"
        ) from None


def _base_suite(suite: str) -> str:
    return re.sub(r"-(updates|security|backports|proposed-updates)$", "", suite)


def _is_debian(uri: str, suites: Sequence[str]) -> bool:
    path = urllib.parse.urlsplit(uri).path.rstrip("/")
    return not path.endswith("-security") and any(_base_suite(s) in DEBIAN_SUITES for s in suites)


def _host_suite(suites: Sequence[str]) -> str:
    plain = [s for s in suites if _base_suite(s) == s and s in DEBIAN_SUITES]
    return plain[0] if plain else _base_suite(suites[0])


def parse_deb822(text: str) -> list[tuple[list[str], list[str]]]:
    """(URIs, Suites) of each ``Types: deb`` stanza of a deb822 sources file."""
    stanzas: list[tuple[list[str], list[str]]] = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0].isspace() and key:
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
            stanzas.append((fields.get("uris", "").split(), fields.get("suites", "").split()))
    return stanzas


def parse_one_line(text: str) -> list[tuple[list[str], list[str]]]:
    """(URIs, Suites) of each ``deb`` line of a one-line-style sources.list."""
    stanzas: list[tuple[list[str], list[str]]] = []
    for line in text.splitlines():
        line = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()
        if len(line) >= 3 and line[0] == "deb":
            stanzas.append(([line[1]], [line[2]]))
    return stanzas


def find_mirror(explicit: str | None = None) -> Mirror:
    """The Debian mirror the system uses (or the one given)."""
    if explicit:
        return Mirror(explicit.rstrip("/"), "")
    candidates: list[tuple[list[str], list[str]]] = []
    if DEB822_SOURCES.is_file():
        candidates += parse_deb822(DEB822_SOURCES.read_text(encoding="utf-8", errors="replace"))
    if ONE_LINE_SOURCES.is_file():
        candidates += parse_one_line(ONE_LINE_SOURCES.read_text(encoding="utf-8", errors="replace"))
    for uris, suites in candidates:
        for uri in uris:
            if _is_debian(uri, suites):
                return Mirror(uri.rstrip("/"), _host_suite(suites))
    raise FetchError(
        f"no Debian mirror is configured in {DEB822_SOURCES} or {ONE_LINE_SOURCES}: "
        "pass --mirror URI or set VM_DEBIAN_MIRROR to a Debian archive mirror"
    )


def _require(tool: str, package: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise FetchError(f"{tool} not found (apt-get install {package})")
    return found


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class PrivateApt:
    """apt-get with its own sources, lists, cache and status under ``home``."""

    def __init__(self, home: Path, arch: str, mirror: str, suite: str, keyring: Path) -> None:
        self.home = home
        self.arch = arch
        for sub in ("lists/partial", "cache/archives/partial"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        status = home / "status"
        if not status.exists():
            status.write_text("")
        sources = home / "sources.list"
        sources.write_text(f"deb [signed-by={keyring}] {mirror} {suite} {COMPONENT}\n")
        self.options = [
            f"-oAPT::Architecture={arch}",
            f"-oAPT::Architectures={arch}",
            f"-oDir::State={home}",
            f"-oDir::State::Lists={home / 'lists'}",
            f"-oDir::State::status={status}",
            f"-oDir::Etc::SourceList={sources}",
            "-oDir::Etc::SourceParts=/dev/null",
            "-oDir::Etc::Preferences=/dev/null",
            "-oDir::Etc::PreferencesParts=/dev/null",
            f"-oDir::Cache={home / 'cache'}",
            "-oAcquire::Languages=none",
            "-oAPT::Get::List-Cleanup=true",
        ]
        if os.geteuid() == 0:
            # apt drops to the _apt user to download, which cannot write into
            # our (root-owned) build directory; download as root without the
            # warning. Signatures and hashes are checked all the same.
            self.options.append("-oAPT::Sandbox::User=root")

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        apt_get = _require("apt-get", "apt")
        return subprocess.run(
            [apt_get, *self.options, *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"},
        )

    def update(self) -> subprocess.CompletedProcess[str]:
        # --error-on=any: an index that failed to download is an error, not a warning.
        return self.run("-q", "update", "--error-on=any")

    def deb_filename(self, package: str) -> str:
        result = self.run("download", "--print-uris", package, cwd=self.home)
        if result.returncode != 0:
            raise FetchError(f"apt-get cannot find {package} ({self.arch}): {_last_error(result)}")
        for line in result.stdout.splitlines():
            fields = line.split()
            if len(fields) >= 2 and fields[0].startswith("'"):
                return fields[1]
        raise FetchError(f"apt-get download --print-uris {package} printed no .deb")

    def download(self, package: str, into: Path) -> Path:
        filename = self.deb_filename(package)
        target = into / filename
        if not target.is_file():
            into.mkdir(parents=True, exist_ok=True)
            result = self.run("-q", "download", package, cwd=into)
            if result.returncode != 0 or not target.is_file():
                raise FetchError(f"apt-get download {package} failed: {_last_error(result)}")
        return target


def _last_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = [
        line.strip()
        for line in (result.stderr + result.stdout).splitlines()
        if line.startswith(("E:", "W:", "Err:"))
    ]
    return " | ".join(lines[-3:]) or f"exit status {result.returncode}"


def _unverified(result: subprocess.CompletedProcess[str]) -> bool:
    """Whether apt-get update failed for want of a key that signed the Release."""
    text = result.stderr + result.stdout
    return result.returncode != 0 and any(
        marker in text
        for marker in ("NO_PUBKEY", "is not signed", "EXPKEYSIG", "KEYEXPIRED", "not verify")
    )


def _check_update(result: subprocess.CompletedProcess[str]) -> None:
    if result.returncode != 0:
        raise FetchError(f"apt-get update failed: {_last_error(result)}")


def extract(deb: Path, dest: Path) -> None:
    """``dpkg-deb -x deb dest``, atomically: dest appears complete or not at all."""
    dpkg_deb = _require("dpkg-deb", "dpkg")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        result = subprocess.run(
            [dpkg_deb, "-x", str(deb), str(tmp)], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise FetchError(f"dpkg-deb -x {deb.name} failed: {result.stderr.strip()}")
        (tmp / _STAMP).write_text(deb.name + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def executables(tree: Path) -> list[Path]:
    """The executables a package tree holds in its bin and sbin directories."""
    found = []
    for sub in ("bin", "sbin", "usr/bin", "usr/sbin"):
        directory = tree / sub
        if directory.is_dir():
            found += [
                p
                for p in sorted(directory.iterdir())
                if p.is_file() and not p.is_symlink() and os.access(p, os.X_OK)
            ]
    return found


def package_dir(arch: str, package: str, out: Path = DEFAULT_OUT) -> Path:
    """Where ``package`` for ``arch`` is extracted."""
    return out / debian_arch(arch) / package


def _bootstrap_keyring(home: Path, mirror: Mirror) -> Path:
    """debian-archive-keyring from the system's own suite, verified by the system keyring."""
    if not mirror.host_suite:
        raise FetchError(
            f"the {SUITE} Release is signed by no key in {SYSTEM_KEYRING}, and with --mirror "
            "the system's own suite is unknown: upgrade debian-archive-keyring"
        )
    apt = PrivateApt(home / "keyring-apt", "amd64", mirror.uri, mirror.host_suite, SYSTEM_KEYRING)
    result = apt.update()
    if result.returncode != 0:
        raise FetchError(f"cannot fetch a newer debian-archive-keyring: {_last_error(result)}")
    deb = apt.download("debian-archive-keyring", home / "keyring-debs")
    tree = home / "keyring"
    extract(deb, tree)
    keyring = tree / KEYRING_IN_PACKAGE
    if not keyring.is_file():
        raise FetchError(f"{deb.name} holds no /{KEYRING_IN_PACKAGE}")
    return keyring


def fetch(
    arch: str,
    packages: Sequence[str],
    out: Path = DEFAULT_OUT,
    *,
    mirror: str | None = None,
    refresh: bool = False,
    log: bool = True,
) -> dict[str, Path]:
    """Fetch and extract each package; returns package -> extracted tree."""
    deb_arch = debian_arch(arch)
    base = out / deb_arch
    trees = {p: base / p for p in packages}
    with _locked(base / ".lock"):
        wanted = [p for p in packages if refresh or not (trees[p] / _STAMP).is_file()]
        if not wanted:
            return trees
        _require("apt-get", "apt")
        _require("dpkg-deb", "dpkg")
        if not SYSTEM_KEYRING.is_file():
            raise FetchError(
                f"{SYSTEM_KEYRING} is missing (apt-get install debian-archive-keyring)"
            )
        where = find_mirror(mirror or os.environ.get("VM_DEBIAN_MIRROR"))
        home = base / "apt"
        apt = PrivateApt(home, deb_arch, where.uri, SUITE, SYSTEM_KEYRING)
        if log:
            print(f"fetch_debian: apt-get update ({SUITE}/{COMPONENT}, {deb_arch})", flush=True)
        result = apt.update()
        if _unverified(result):
            if log:
                print(
                    f"fetch_debian: {SYSTEM_KEYRING} cannot verify {SUITE} "
                    f"({_last_error(result)}); fetching debian-archive-keyring from "
                    f"{where.host_suite}",
                    flush=True,
                )
            keyring = _bootstrap_keyring(base, where)
            apt = PrivateApt(home, deb_arch, where.uri, SUITE, keyring)
            result = apt.update()
        _check_update(result)
        for package in wanted:
            deb = apt.download(package, base / "debs")
            extract(deb, trees[package])
    return trees


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", required=True, help="riscv64, arm64 (aarch64), amd64 (x86_64)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="default: build/debian")
    parser.add_argument("--mirror", help="Debian mirror URI (default: the system's)")
    parser.add_argument("--refresh", action="store_true", help="fetch again even when cached")
    parser.add_argument("packages", nargs="+")
    args = parser.parse_args(argv)
    try:
        trees = fetch(
            args.arch, args.packages, args.out.resolve(), mirror=args.mirror, refresh=args.refresh
        )
    except FetchError as error:
        print(f"fetch_debian: {error}", file=sys.stderr)
        return 1
    for package, tree in trees.items():
        deb = (tree / _STAMP).read_text().strip()
        shown = tree.relative_to(ROOT) if tree.is_relative_to(ROOT) else tree
        found = executables(tree)
        print(f"{package}: {urllib.parse.unquote(deb)} in {shown}/")
        for exe in found:
            print(f"  {shown / exe.relative_to(tree)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
