"""Paths come from the working directory and the environment, never from the source tree,
so an installed veil and the checkout behave alike (issue 9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from veil.chain import compile as compile_module
from veil.chain import deployment as deployments
from veil.chain.home import cache_dir, deployments_dir, veil_home

ENV = ("VEIL_HOME", "VEIL_DEPLOYMENTS_DIR", "VEIL_CACHE_DIR", "XDG_CACHE_HOME")


@pytest.fixture
def bare(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults_are_relative_to_the_working_directory(bare: pytest.MonkeyPatch) -> None:
    assert veil_home() == Path(".veil")
    assert deployments_dir() == Path("deployments")
    assert deployments.default_path("l2") == Path("deployments/l2.json")
    assert cache_dir() == Path.home() / ".cache" / "veil"


def test_environment_moves_each_one(bare: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bare.setenv("VEIL_HOME", str(tmp_path / "home"))
    bare.setenv("VEIL_DEPLOYMENTS_DIR", str(tmp_path / "records"))
    bare.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert veil_home() == tmp_path / "home"
    assert deployments.default_path() == tmp_path / "records" / "devnet.json"
    assert compile_module.default_cache_dir() == tmp_path / "xdg" / "veil" / "contracts"
    bare.setenv("VEIL_CACHE_DIR", str(tmp_path / "cache"))
    assert compile_module.default_cache_dir() == tmp_path / "cache" / "contracts"


def test_no_module_locates_itself_in_a_checkout() -> None:
    """`parents[3]` of a module is the repository only in a checkout; in site-packages it
    is somewhere unrelated, so nothing may compute paths that way."""
    source = Path(compile_module.__file__).resolve().parents[1]
    offenders = [
        str(path.relative_to(source))
        for path in source.rglob("*.py")
        if "REPO_ROOT" in path.read_text() or ".parents[" in path.read_text()
    ]
    assert not offenders
    assert not hasattr(compile_module, "REPO_ROOT")
