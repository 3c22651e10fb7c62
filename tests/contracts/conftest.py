"""What every titanoboa contract test shares.

titanoboa 0.2.8 builds an error message on every revert by decoding all of the contract's
storage variables. For a HashMap whose slots look like a chain of keccaks seen elsewhere
in the run, the decoder can walk deeper than the map's nesting and raise
AttributeError; the expected revert then surfaces as that error, depending on which tests
ran earlier in the same process. Keep the revert, and show such a variable as undecodable.
"""

from __future__ import annotations

from typing import Any

import pytest
from boa.contracts.vyper import vyper_contract
from compiled import compiled

_decode_storage = vyper_contract.StorageVar.get


def _storage_or_placeholder(self: Any, truncate_limit: int | None = None) -> Any:
    try:
        return _decode_storage(self, truncate_limit=truncate_limit)
    except AttributeError as error:
        return f"<not decodable by titanoboa: {error}>"


vyper_contract.StorageVar.get = _storage_or_placeholder


@pytest.fixture(scope="session")
def pha_deployer() -> Any:
    """PHA, compiled once for every suite that deploys the real token."""
    return compiled("PHA")


@pytest.fixture(scope="session")
def vault_deployer() -> Any:
    """The vPHA vault, compiled once for every suite that deploys it."""
    return compiled("Vault")
