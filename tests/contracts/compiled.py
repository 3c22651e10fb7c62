"""The one compile of each contract for every contract test.

titanoboa compiles a source on every `boa.load`; the suites deploy the same contracts
thousands of times (hypothesis runs a fresh world per example), so each source is
compiled once per test process and deployed from that deployer. Test modules import
`compiled` from here (tests/contracts is on sys.path through its conftest).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import boa

from veil.chain.compile import find_source

ZERO_ADDRESS = "0x" + "00" * 20


@cache
def _deployer(path: Path) -> Any:
    return boa.load_partial(str(path))


def compiled(source: str | Path) -> Any:
    """The deployer of `source`: a contract name (`"Vault"`, found under the package's
    contracts) or the path of a test-only double."""
    return _deployer(find_source(str(source)))
