# pragma version ~=0.4.3
"""
@title TEST-ONLY Uniswap MerkleDistributor-style reference, for gas comparison only
@notice The shape the Migrator's gas target is measured against: an immutable root,
        a claimed bitmap and an ERC-20 transfer from a pre-funded balance. Never deploy.
"""

from ....src.veil.contracts.interfaces import IPHA

TOKEN: immutable(address)
ROOT: immutable(bytes32)
_claimed_words: HashMap[uint256, uint256]


event Claimed:
    index: uint256
    account: address
    amount: uint256


@deploy
def __init__(token: address, root: bytes32):
    TOKEN = token
    ROOT = root


@external
def claim(index: uint256, account: address, amount: uint256, proof: DynArray[bytes32, 32]):
    word: uint256 = index >> 8
    bits: uint256 = self._claimed_words[word]
    bit: uint256 = 1 << (index & 255)
    assert bits & bit == 0, "claimed"
    computed: bytes32 = keccak256(abi_encode(index, account, amount))
    for sibling: bytes32 in proof:
        if convert(computed, uint256) < convert(sibling, uint256):
            computed = keccak256(abi_encode(computed, sibling))
        else:
            computed = keccak256(abi_encode(sibling, computed))
    assert computed == ROOT, "proof"
    self._claimed_words[word] = bits | bit
    assert extcall IPHA(TOKEN).transfer(account, amount)
    log Claimed(index=index, account=account, amount=amount)
