"""What every titanoboa contract test shares.

titanoboa 0.2.8 builds an error message on every revert by decoding all of the contract's
storage variables. For a HashMap whose slots look like a chain of keccaks seen elsewhere
in the run, the decoder can walk deeper than the map's nesting and raise
AttributeError; the expected revert then surfaces as that error, depending on which tests
ran earlier in the same process. Keep the revert, and show such a variable as undecodable.
"""

from __future__ import annotations

from typing import Any

from boa.contracts.vyper import vyper_contract

_decode_storage = vyper_contract.StorageVar.get


def _storage_or_placeholder(self: Any, truncate_limit: int | None = None) -> Any:
    try:
        return _decode_storage(self, truncate_limit=truncate_limit)
    except AttributeError as error:
        return f"<not decodable by titanoboa: {error}>"


vyper_contract.StorageVar.get = _storage_or_placeholder
