"""veil's Keccak-256 is Ethereum's (the original Keccak padding), not NIST SHA3-256."""

import hashlib

from Crypto.Hash import keccak as pycryptodome_keccak
from hypothesis import given
from hypothesis import strategies as st

from veil.merkle.keccak import double_keccak256, keccak256, new_double_hasher, new_hasher

EMPTY = "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"


def test_known_vectors() -> None:
    assert keccak256(b"").hex() == EMPTY
    # The ERC-20 Transfer topic, as every block explorer shows it.
    assert keccak256(b"Transfer(address,address,uint256)").hex() == (
        "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
    )
    assert keccak256(b"").hex() != hashlib.sha3_256(b"").hexdigest()


@given(st.binary(max_size=600))
def test_equals_an_independent_implementation(data: bytes) -> None:
    expected = pycryptodome_keccak.new(data=data, digest_bits=256).digest()
    assert keccak256(data) == new_hasher()(data) == expected
    again = pycryptodome_keccak.new(data=expected, digest_bits=256).digest()
    assert double_keccak256(data) == new_double_hasher()(data) == again
