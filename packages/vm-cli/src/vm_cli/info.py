"""`vm info`: what is installed, what plugs in, whether KVM works, and on which host."""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich is imported when a report is drawn: `vm run` does not pay for it
    from rich.console import Console
    from rich.table import Table

PACKAGES = (
    "vm-core", "vm-ir", "vm-frontend-x86", "vm-frontend-arm", "vm-frontend-riscv",
    "vm-engine-jit", "vm-aot", "vm-accel", "vm-devices", "vm-runtime", "vm-telemetry",
    "vm-gpu", "vm-cli",
)
"""The workspace's distributions, bottom layer first as in DESIGN.md's diagram."""

FRONTENDS = "vm.frontends"
ACCELERATORS = "vm.accelerators"


@dataclass(frozen=True)
class Package:
    name: str
    version: str | None  # None: not installed


@dataclass(frozen=True)
class Plugin:
    """An entry point of ``vm.frontends`` or ``vm.accelerators``, and whether it loads."""

    name: str
    target: str  # "module:attribute"
    package: str | None  # the distribution that declares it
    loads: bool
    error: str | None


@dataclass(frozen=True)
class Kvm:
    usable: bool
    reason: str
    api_version: int | None
    device: str | None
    fix: str


@dataclass(frozen=True)
class Host:
    python: str
    implementation: str
    platform: str


@dataclass(frozen=True)
class Info:
    version: str
    packages: list[Package]
    frontends: list[Plugin]
    accelerators: list[Plugin]
    kvm: Kvm
    host: Host


def _package(name: str) -> Package:
    from importlib import metadata  # here, not at import: `vm run` does not need it

    try:
        return Package(name, metadata.version(name))
    except metadata.PackageNotFoundError:
        return Package(name, None)


def _plugins(group: str) -> list[Plugin]:
    from importlib import metadata

    plugins = []
    for ep in sorted(metadata.entry_points(group=group), key=lambda ep: ep.name):
        package = ep.dist.name if ep.dist is not None else None
        try:
            ep.load()
        except Exception as error:  # a broken plugin is what `vm info` is for finding
            plugins.append(Plugin(ep.name, ep.value, package, False,
                                  f"{type(error).__name__}: {error}"))
        else:
            plugins.append(Plugin(ep.name, ep.value, package, True, None))
    return plugins


def _kvm() -> Kvm:
    try:
        from vm_accel import kvm

        found = kvm.probe()
    except Exception as error:  # show a broken vm-accel rather than fail the whole report
        return Kvm(False, f"vm_accel.kvm failed: {type(error).__name__}: {error}", None, None,
                   "reinstall vm-accel or run with --debug")
    return Kvm(found.usable, found.reason, found.api_version, found.device_path, found.fix)


def collect() -> Info:
    """Everything `vm info` reports."""
    from importlib import metadata

    return Info(
        version=metadata.version("vm-cli"),
        packages=[_package(name) for name in PACKAGES],
        frontends=_plugins(FRONTENDS),
        accelerators=_plugins(ACCELERATORS),
        kvm=_kvm(),
        host=Host(platform.python_version(), platform.python_implementation(),
                  platform.platform()),
    )


def register(parser: argparse.ArgumentParser) -> None:
    """`vm info`'s option and handler."""
    parser.add_argument("--json", action="store_true", dest="as_json",
                        help="Print the report as JSON.")
    parser.set_defaults(handler=lambda args: info(args.as_json))


def info(as_json: bool = False) -> None:
    """Show installed packages, frontends, accelerators, KVM and the host."""
    report = collect()
    if as_json:
        print(json.dumps(dataclasses.asdict(report), indent=2))
    else:
        from rich.console import Console

        render(report, Console())


def _plugin_table(title: str, plugins: list[Plugin]) -> Table:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in ("name", "target", "package", "loads"):
        table.add_column(column)
    for p in plugins:
        loads = "[green]yes[/]" if p.loads else f"[red]{escape(p.error or 'no')}[/]"
        table.add_row(escape(p.name), escape(p.target), escape(p.package or "?"), loads)
    if not plugins:
        table.add_row("[dim](none installed)[/]", "", "", "")
    return table


def render(report: Info, console: Console) -> None:
    from rich.markup import escape
    from rich.table import Table

    packages = Table(title="packages", title_justify="left")
    packages.add_column("package")
    packages.add_column("version")
    for p in report.packages:
        packages.add_row(p.name, escape(p.version) if p.version else "[red]not installed[/]")
    console.print(packages)
    console.print(_plugin_table(f"frontends ({FRONTENDS})", report.frontends))
    console.print(_plugin_table(f"accelerators ({ACCELERATORS})", report.accelerators))

    kvm = report.kvm
    host = Table(title="host", title_justify="left", show_header=False)
    host.add_column()
    host.add_column()
    usable = "[green]yes[/]" if kvm.usable else "[red]no[/]"
    host.add_row("KVM usable", f"{usable}: {escape(kvm.reason)}")
    if not kvm.usable and kvm.fix:
        host.add_row("KVM fix", escape(kvm.fix))
    host.add_row("Python", f"{report.host.implementation} {report.host.python}")
    host.add_row("platform", escape(report.host.platform))
    console.print(host)
