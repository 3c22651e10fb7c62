"""The declared dependencies are exactly what the library needs at run time.

An import that no declared distribution provides works in the development venv (some
other package brought it) and breaks for the first user who installs the wheel; a declared
distribution nothing imports costs every user a download. The imports are read from the
AST of every module in src/veil (TYPE_CHECKING imports included: mypy --strict checks the
installed package against them), and mapped to distributions through the installed
packages' own metadata.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SRC = REPO_ROOT / "src" / "veil"

# Declared though never imported by Python code, each for a reason the import graph cannot see.
NOT_IMPORTED = {
    "snekmate": "Vyper modules the contracts import; vyper finds them in site-packages",
    "uvloop": "uvicorn's default loop='auto' runs on it when it is installed (bench/cloud.py)",
    "httptools": "uvicorn's default http='auto' parses with it when it is installed",
}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared(extra: str | None = None) -> set[str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    names = set()
    for spec in specs:
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec)
        assert match, f"pyproject.toml: cannot read the name in {spec!r}"
        names.add(_normalise(match.group()))
    return names


def _imported_top_level() -> dict[str, set[str]]:
    """Third-party top-level module -> the src files importing it."""
    found: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top != "veil" and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(str(path.relative_to(REPO_ROOT)))
    return found


@cache
def _distributions() -> dict[str, list[str]]:
    return dict(packages_distributions())


def _providers(module: str) -> set[str]:
    return {_normalise(d) for d in _distributions().get(module, [])}


def test_every_import_of_the_library_is_declared() -> None:
    declared = _declared()
    missing = {
        module: sorted(files)
        for module, files in _imported_top_level().items()
        if not _providers(module) & declared
    }
    assert not missing, f"imported but not declared in [project.dependencies]: {missing}"


def test_nothing_declared_goes_unused() -> None:
    used = set().union(*(_providers(m) for m in _imported_top_level()))
    unused = _declared() - used - set(NOT_IMPORTED)
    assert not unused, f"declared but never imported by src/veil: {sorted(unused)}"


def test_the_declared_exceptions_really_are_not_imported() -> None:
    """An exception that is imported after all needs no excuse: keep the list honest."""
    imported = set().union(*(_providers(m) for m in _imported_top_level()))
    assert not set(NOT_IMPORTED) & imported
    assert set(NOT_IMPORTED) <= _declared()


def test_test_only_tools_are_dev_extras() -> None:
    """titanoboa runs the contract tests and benchmarks; an installed veil never needs it."""
    assert "titanoboa" not in _declared()
    assert {"titanoboa", "import-linter", "pytest", "hypothesis"} <= _declared("dev")
    assert "boa" not in _imported_top_level()


def test_sr25519_comes_from_a_declared_distribution() -> None:
    """Issue 9: `sr25519` is imported (holder signatures) and must not ride on another
    package's dependencies."""
    assert "sr25519" in _imported_top_level()
    assert _providers("sr25519") & _declared() == {"py-sr25519-bindings"}
