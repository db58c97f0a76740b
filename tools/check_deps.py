"""Check that every workspace package declares exactly what it imports.

For each ``packages/*/pyproject.toml`` this parses every ``.py`` file under the
package's ``src/`` with :mod:`ast`, collects the top-level names of its absolute
imports (imports under ``if TYPE_CHECKING:`` count too; relative imports do not)
and sorts each name into one of:

- the package itself (``vm_cli`` inside vm-cli): ignored;
- another workspace package (import name = dist name with ``-`` replaced by ``_``);
- the standard library (:data:`sys.stdlib_module_names`);
- a third-party distribution, found through
  :func:`importlib.metadata.packages_distributions` in the running environment.

Rules (DESIGN.md, "Packages and layers"):

a. the workspace packages a package imports are exactly the workspace packages
   in its ``[project].dependencies``; a package never depends on itself;
b. every third-party distribution it imports is declared, in
   ``[project].dependencies`` or in an extra of ``[project.optional-dependencies]``;
c. every declared third-party distribution is imported somewhere;
d. vm-ir imports only the standard library and declares no dependencies.

Run it as ``uv run python tools/check_deps.py [ROOT]``: it prints one line per
problem and exits 1, or prints a one-line summary and exits 0. Tests import
:func:`check`.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

#: The package that must stand alone (rule d).
STANDALONE = "vm-ir"

_REQUIREMENT_NAME = re.compile(r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")


def normalize(dist: str) -> str:
    """A distribution name in PEP 503 normal form (``Foo_Bar`` -> ``foo-bar``)."""
    return re.sub(r"[-_.]+", "-", dist).lower()


def requirement_name(requirement: str) -> str:
    """The normalized distribution name at the start of a PEP 508 requirement."""
    match = _REQUIREMENT_NAME.match(requirement)
    if match is None:
        raise ValueError(f"not a PEP 508 requirement: {requirement!r}")
    return normalize(match.group(1))


def imported_modules(source: str, filename: str = "<source>") -> Iterator[tuple[str, int]]:
    """Yield ``(top-level module name, line)`` for each absolute import in ``source``."""
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.partition(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.partition(".")[0], node.lineno


class _Package:
    """One workspace member, as read from its pyproject.toml and sources."""

    def __init__(self, root: Path, pyproject: Path) -> None:
        self.dir = pyproject.parent
        self.label = self.dir.relative_to(root).as_posix()
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        self.dist = normalize(project.get("name", self.dir.name))
        self.import_name = self.dist.replace("-", "_")
        self.dependencies = [requirement_name(r) for r in project.get("dependencies", [])]
        self.optional = [
            requirement_name(r)
            for extra in project.get("optional-dependencies", {}).values()
            for r in extra
        ]
        #: top-level module name -> first "src/...py:line" that imports it
        self.imports: dict[str, str] = {}
        self.problems: list[str] = []
        src = self.dir / "src"
        if not (src / self.import_name).is_dir():
            self.problems.append(
                f"{self.label}: has no src/{self.import_name}/ "
                f"(the import name must be the distribution name with '-' replaced by '_')"
            )
        for path in sorted(src.rglob("*.py")):
            where = path.relative_to(self.dir).as_posix()
            try:
                found = list(imported_modules(path.read_text(encoding="utf-8"), str(path)))
            except SyntaxError as error:
                self.problems.append(
                    f"{self.label}: cannot parse {where}: {error.msg} (line {error.lineno})"
                )
                continue
            for module, line in found:
                self.imports.setdefault(module, f"{where}:{line}")


def check(root: Path) -> list[str]:
    """Return one line per dependency problem in the workspace at ``root``."""
    packages = [_Package(root, p) for p in sorted(root.glob("packages/*/pyproject.toml"))]
    if not packages:
        return [f"{root}: no packages/*/pyproject.toml (is this the repository root?)"]
    workspace = {p.import_name: p.dist for p in packages}
    module_dists = {
        module: {normalize(d) for d in dists}
        for module, dists in importlib.metadata.packages_distributions().items()
    }
    problems: list[str] = []
    for package in packages:
        problems.extend(package.problems)
        problems.extend(_check_package(package, workspace, module_dists))
    return problems


def _check_package(
    package: _Package, workspace: dict[str, str], module_dists: dict[str, set[str]]
) -> Iterator[str]:
    label = package.label
    declared = set(package.dependencies)
    declared_ws = declared & set(workspace.values())
    declared_third = (declared | set(package.optional)) - set(workspace.values())
    standalone = package.dist == STANDALONE

    if package.dist in declared:
        yield f"{label}: declares itself ({package.dist}) as a dependency"
    if standalone and package.dependencies:
        yield (
            f"{label}: declares dependencies ({', '.join(package.dependencies)}) "
            f"but {STANDALONE} must have none"
        )

    imported_ws: set[str] = set()
    used_third: set[str] = set()
    for module in sorted(package.imports):
        if module == package.import_name or module in sys.stdlib_module_names:
            continue
        if standalone:
            yield f"{label}: imports {module} but {STANDALONE} may import only the standard library"
            continue
        if module in workspace:
            imported_ws.add(workspace[module])
            if workspace[module] not in declared:
                yield f"{label}: imports {module} but does not declare {workspace[module]}"
            continue
        # A module no installed distribution provides may still be a declared,
        # not-installed dependency whose import name is its distribution name.
        dists = module_dists.get(module) or {normalize(module)}
        if dists & declared_third:
            used_third |= dists & declared_third
        elif module not in module_dists:
            yield (
                f"{label}: imports {module}, which is not the standard library, "
                f"not ours and not provided by any installed distribution "
                f"(first at {package.imports[module]})"
            )
        else:
            yield f"{label}: imports {module} but does not declare {' or '.join(sorted(dists))}"

    if standalone:
        return  # whatever it declares was reported above
    for dist in sorted(declared_ws - imported_ws - {package.dist}):
        yield f"{label}: declares {dist} but never imports {dist.replace('-', '_')}"
    for dist in sorted(declared_third - used_third):
        yield f"{label}: declares {dist} but never imports it"


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent
    problems = check(root)
    for line in problems:
        print(line)
    if problems:
        print(f"check_deps: {len(problems)} problem(s)")
        return 1
    count = len(list(root.glob("packages/*/pyproject.toml")))
    print(f"check_deps: {count} packages declare exactly the packages they import")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
