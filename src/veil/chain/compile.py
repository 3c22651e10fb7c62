"""Compile veil's Vyper contracts through the vyper Python API, with a build cache.

The cache key is vyper's own integrity sum: a SHA-256 over the contract and every module
or interface it imports (snekmate included), computed by resolving imports without
generating code. A second run therefore compiles nothing, and editing any imported
module invalidates exactly the contracts that import it.
"""

from __future__ import annotations

import contextlib
import json
import site
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from veil import atomic
from veil.chain.home import cache_dir as user_cache_dir
from veil.errors import InputError

if TYPE_CHECKING:  # vyper takes ~0.1 s to import; only compiling needs it
    from vyper.compiler.phases import CompilerData

# The Vyper sources ship inside the package, so an installed wheel compiles the same code.
PACKAGE_DIR = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = PACKAGE_DIR / "contracts"


@dataclass(frozen=True)
class Artifact:
    """What a deployer needs: the ABI, the creation bytecode and the source hash."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes
    source_hash: str
    path: str


def _search_paths() -> list[Path]:
    """Contracts dir first, then site-packages so `from snekmate...` resolves."""
    paths = [Path(p) for p in sys.path if p and Path(p).is_dir()]
    paths += [Path(p) for p in site.getsitepackages() if Path(p).is_dir()]
    return [*paths, CONTRACTS_DIR]  # vyper searches the list from the end


def find_source(name: str) -> Path:
    """`Vault` -> veil/contracts/staking/Vault.vy; a path is taken as given."""
    candidate = Path(name)
    if candidate.suffix == ".vy" and candidate.is_file():
        return candidate.resolve()
    matches = sorted(CONTRACTS_DIR.rglob(f"{name}.vy"))
    if not matches:
        raise InputError(f"contract {name}: no {name}.vy under {CONTRACTS_DIR}")
    if len(matches) > 1:
        raise InputError(f"contract {name}: ambiguous, found {', '.join(map(str, matches))}")
    return matches[0]


def _display_path(source: Path) -> str:
    try:
        return str(source.relative_to(PACKAGE_DIR))
    except ValueError:
        return str(source)


def _compiler_data(source: Path) -> CompilerData:
    from vyper.compiler.input_bundle import FilesystemInputBundle
    from vyper.compiler.phases import CompilerData
    from vyper.compiler.settings import Settings

    bundle = FilesystemInputBundle(_search_paths())
    file_input = bundle.load_file(source)
    return CompilerData(file_input, bundle, settings=Settings())


def outputs_from_compiler_data(data: CompilerData, formats: tuple[str, ...]) -> dict[str, Any]:
    """vyper's code generation, named here so the cache test can count the compiles."""
    from vyper.compiler import outputs_from_compiler_data as generate

    return dict(generate(data, formats))


def default_cache_dir() -> Path:
    """Compiled artifacts: a cache keyed by source hash, safe to share across projects."""
    return user_cache_dir() / "contracts"


def compile_contract(name: str, *, cache_dir: Path | None = None) -> Artifact:
    """Return the artifact for `name`, compiling only when its integrity sum is new."""
    import vyper

    if cache_dir is None:
        cache_dir = default_cache_dir()
    source = find_source(name)
    data = _compiler_data(source)
    integrity = data.integrity_sum
    key = f"{source.stem}-{vyper.__version__}-{integrity[:16]}"
    cached = cache_dir / f"{key}.json"
    if cached.is_file():
        entry = json.loads(cached.read_text())
    else:
        out = outputs_from_compiler_data(data, ("abi", "bytecode"))
        entry = {
            "name": source.stem,
            "path": _display_path(source),
            "vyper": vyper.__version__,
            "source_hash": integrity,
            "abi": out["abi"],
            "bytecode": out["bytecode"],
        }
        with contextlib.suppress(OSError):  # an unwritable cache only costs a recompile
            atomic.write_json(cached, entry, indent=None)
    return Artifact(
        name=entry["name"],
        abi=entry["abi"],
        bytecode=bytes.fromhex(entry["bytecode"].removeprefix("0x")),
        source_hash=entry["source_hash"],
        path=entry["path"],
    )
