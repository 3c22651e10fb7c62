"""The build cache: keyed by vyper's integrity sum over a contract and its imports."""

from __future__ import annotations

from pathlib import Path

import pytest

from veil.chain import compile as compile_module
from veil.chain.compile import compile_contract
from veil.errors import InputError

MODULE = """# pragma version ~=0.4.3
counter: uint256

@internal
def _bump() -> uint256:
    self.counter += {step}
    return self.counter
"""

CONTRACT = """# pragma version ~=0.4.3
import counter_mod
initializes: counter_mod

@external
def bump() -> uint256:
    return counter_mod._bump()
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "counter_mod.vy").write_text(MODULE.format(step=1))
    (tmp_path / "Counter.vy").write_text(CONTRACT)
    return tmp_path


def _count_compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = compile_module.outputs_from_compiler_data

    def counting(data, formats):  # type: ignore[no-untyped-def]
        calls.append(str(data.file_input.path))
        return real(data, formats)

    monkeypatch.setattr(compile_module, "outputs_from_compiler_data", counting)
    return calls


def test_second_run_compiles_nothing(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_compiles(monkeypatch)
    cache = project / "cache"
    first = compile_contract(str(project / "Counter.vy"), cache_dir=cache)
    second = compile_contract(str(project / "Counter.vy"), cache_dir=cache)
    assert len(calls) == 1
    assert first == second
    assert first.bytecode and first.abi[0]["name"] == "bump"


def test_editing_an_imported_module_recompiles(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_compiles(monkeypatch)
    cache = project / "cache"
    first = compile_contract(str(project / "Counter.vy"), cache_dir=cache)
    (project / "counter_mod.vy").write_text(MODULE.format(step=2))
    second = compile_contract(str(project / "Counter.vy"), cache_dir=cache)
    assert len(calls) == 2
    assert first.source_hash != second.source_hash
    assert first.bytecode != second.bytecode


def test_unknown_contract_is_one_line() -> None:
    with pytest.raises(InputError, match=r"contract NoSuchThing: no NoSuchThing\.vy"):
        compile_contract("NoSuchThing")
