"""EIP-712 `Binding(bytes32 account,address receiver,bytes32 signatureHash)` attestations.

An attester signs that a parachain account chose an L2 receiver with one particular
signature; the Migrator accepts a claim only with a threshold of such signatures, and
recomputes `signatureHash` from the signature the claim publishes, so the published
signature is always the one the attesters verified (anyone can re-verify it later).
`signatureHash` is keccak256(scheme byte ++ bare signature), the scheme numbered as
Substrate's MultiSignature variants (0 ed25519, 1 sr25519, 2 ecdsa): the hash of the
SCALE-encoded MultiSignature. The attester service signs with this
module, the claim client orders and encodes the signatures with it, and the contract
tests check that both sides hash the same bytes, so the typed data lives in one place.

Attestations travel as `(v, r, s)` tuples (the contract's `Signature` struct): a static
96-byte ABI tuple is cheaper in calldata and decoding than a 65-byte `bytes` blob. The
contract requires them sorted by strictly increasing signer address (that is how it
rejects a signer counted twice without a loop over earlier signers) and rejects
high-s signatures, which `eth_keys` never produces.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from veil.chain.eip712 import DOMAIN_FIELDS
from veil.errors import InputError
from veil.merkle.keccak import keccak256 as _keccak

# eth_account, eth_keys and eth_utils cost ~0.3 s to import together; they are imported
# where a key or a checksum is needed, so that `veil migrate --help` does not pay for them.

DOMAIN_NAME = "veil Migrator"
DOMAIN_VERSION = "1"

DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
BINDING_TYPE = "Binding(bytes32 account,address receiver,bytes32 signatureHash)"
# keccak256 of the two type strings, written out so that importing this module loads no
# Keccak library; tests/migration/test_binding_attestation.py recomputes them.
DOMAIN_TYPEHASH = bytes.fromhex("8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f")
BINDING_TYPEHASH = bytes.fromhex("57d6d0950aba572c09f5f72e362cce7dc05a781ac9cc6cd70e23639eeea2ed64")

# secp256k1 group order; a signature with s above half of it is the malleable twin.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HALF_N = SECP256K1_N // 2

# The Migrator's scheme byte follows Substrate's MultiSignature variant order.
SCHEME_IDS: dict[str, int] = {"ed25519": 0, "sr25519": 1, "ecdsa": 2}
BARE_LENGTHS: dict[str, int] = {"ed25519": 64, "sr25519": 64, "ecdsa": 65}


@dataclass(frozen=True)
class Attestation:
    """One attester's signature over a binding, with the address it recovers to."""

    signer: str
    v: int
    r: bytes
    s: bytes

    def as_tuple(self) -> tuple[int, bytes, bytes]:
        """The contract's `Signature(v, r, s)` struct as an ABI tuple."""
        return (self.v, self.r, self.s)


def _account_bytes(account: bytes | str) -> bytes:
    """Accept a 32-byte id as bytes or 0x-hex, because ledgers store it as hex."""
    raw = bytes.fromhex(account.removeprefix("0x")) if isinstance(account, str) else account
    if len(raw) != 32:
        raise InputError(f"binding account {account!r}: expected a 32-byte account id")
    return raw


def _address(value: str, what: str) -> str:
    from eth_utils import to_checksum_address

    try:
        return to_checksum_address(value)
    except ValueError as error:
        raise InputError(f"binding {what} {value!r}: not an Ethereum address") from error


def published_signature(signature: bytes, scheme: str) -> bytes:
    """The bare signature a claim publishes: a SCALE MultiSignature loses its scheme byte.

    Wallets hand out either form; the Migrator takes the bare bytes and the scheme apart,
    so both forms must hash the same (`signature_hash`)."""
    if scheme not in SCHEME_IDS:
        raise InputError(f"signature scheme {scheme!r}: expected one of {', '.join(SCHEME_IDS)}")
    bare = BARE_LENGTHS[scheme]
    if len(signature) == bare + 1 and signature[0] == SCHEME_IDS[scheme]:
        return bytes(signature[1:])
    if len(signature) != bare:
        raise InputError(f"{scheme} signature of {len(signature)} bytes: expected {bare}")
    return bytes(signature)


def signature_hash(signature: bytes, scheme: str) -> bytes:
    """keccak256(scheme byte ++ bare signature): what a binding commits the signature with
    (equals the Migrator's `signatureHash(bare, schemeId)`)."""
    bare = published_signature(signature, scheme)
    return _keccak(bytes([SCHEME_IDS[scheme]]) + bare)


def _hash32(value: bytes | str, what: str) -> bytes:
    raw = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)
    if len(raw) != 32:
        raise InputError(f"binding {what} {value!r}: expected 32 bytes")
    return raw


def domain_separator(chain_id: int, migrator: str) -> bytes:
    """The Migrator's EIP-712 domain separator (equals its `DOMAIN_SEPARATOR()`)."""
    return _keccak(
        DOMAIN_TYPEHASH
        + _keccak(DOMAIN_NAME.encode())
        + _keccak(DOMAIN_VERSION.encode())
        + chain_id.to_bytes(32, "big")
        + bytes.fromhex(_address(migrator, "migrator")[2:]).rjust(32, b"\0")
    )


def binding_struct_hash(account: bytes | str, receiver: str, sig_hash: bytes | str) -> bytes:
    """hashStruct(Binding) for one account, receiver and holder signature hash."""
    return _keccak(
        BINDING_TYPEHASH
        + _account_bytes(account)
        + bytes.fromhex(_address(receiver, "receiver")[2:]).rjust(32, b"\0")
        + _hash32(sig_hash, "signature hash")
    )


def binding_digest(
    account: bytes | str, receiver: str, sig_hash: bytes | str, chain_id: int, migrator: str
) -> bytes:
    """The 32-byte digest attesters sign (equals the contract's `bindingDigest`)."""
    struct = binding_struct_hash(account, receiver, sig_hash)
    return _keccak(b"\x19\x01" + domain_separator(chain_id, migrator) + struct)


def binding_typed_data(
    account: bytes | str, receiver: str, sig_hash: bytes | str, chain_id: int, migrator: str
) -> dict[str, Any]:
    """The full EIP-712 message, for wallets and `eth_signTypedData_v4` tooling."""
    return {
        "types": {
            "EIP712Domain": DOMAIN_FIELDS,
            "Binding": [
                {"name": "account", "type": "bytes32"},
                {"name": "receiver", "type": "address"},
                {"name": "signatureHash", "type": "bytes32"},
            ],
        },
        "primaryType": "Binding",
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": _address(migrator, "migrator"),
        },
        "message": {
            "account": "0x" + _account_bytes(account).hex(),
            "receiver": _address(receiver, "receiver"),
            "signatureHash": "0x" + _hash32(sig_hash, "signature hash").hex(),
        },
    }


def sign_binding(
    private_key: bytes | str,
    account: bytes | str,
    receiver: str,
    sig_hash: bytes | str,
    chain_id: int,
    migrator: str,
) -> Attestation:
    """Sign a binding as an attester; the caller must have verified the holder's signature
    whose `signature_hash` this is."""
    from eth_account import Account

    digest = binding_digest(account, receiver, sig_hash, chain_id, migrator)
    signed = Account.unsafe_sign_hash(digest, private_key)
    return Attestation(
        signer=Account.from_key(private_key).address,
        v=signed.v,
        r=signed.r.to_bytes(32, "big"),
        s=signed.s.to_bytes(32, "big"),
    )


def recover_signer(
    attestation: Attestation | tuple[int, bytes, bytes],
    account: bytes | str,
    receiver: str,
    sig_hash: bytes | str,
    chain_id: int,
    migrator: str,
) -> str:
    """The address that signed this binding, refusing what the contract would refuse."""
    v, r, s = attestation.as_tuple() if isinstance(attestation, Attestation) else attestation
    s_int = int.from_bytes(s, "big")
    if v not in (27, 28):
        raise InputError(f"attestation v={v}: must be 27 or 28")
    if not 0 < s_int <= HALF_N:
        raise InputError(f"attestation s=0x{s.hex()}: high-s (malleable) or zero")
    from eth_keys import keys

    digest = binding_digest(account, receiver, sig_hash, chain_id, migrator)
    signature = keys.Signature(vrs=(v - 27, int.from_bytes(r, "big"), s_int))
    try:
        public_key = signature.recover_public_key_from_msg_hash(digest)
    except Exception as error:  # eth_keys raises BadSignature and ValidationError
        raise InputError(f"attestation r=0x{r.hex()}: does not recover a key") from error
    return public_key.to_checksum_address()


def order_attestations(attestations: Iterable[Attestation]) -> list[Attestation]:
    """Sort by signer address, as the contract requires; refuse a signer twice."""
    ordered = sorted(attestations, key=lambda a: int(a.signer, 16))
    for previous, current in pairwise(ordered):
        if int(previous.signer, 16) == int(current.signer, 16):
            raise InputError(f"attestations: signer {current.signer} appears twice")
    return ordered


class BindingSigner:
    """Signs bindings for one Migrator at service speed.

    `sign_binding` re-derives the domain, the key and the checksummed addresses on every
    call, which is most of an attester's time per request; this keeps them prepared and
    signs with libsecp256k1 directly (which always produces low-s signatures). Same
    digest and signature bytes as `sign_binding` (a test holds them equal).
    """

    def __init__(self, private_key: bytes, chain_id: int, migrator: str) -> None:
        import coincurve
        from eth_account import Account

        self._key = coincurve.PrivateKey(bytes(private_key))
        self.address = Account.from_key(private_key).address
        self._prefix = b"\x19\x01" + domain_separator(chain_id, migrator)

    def digest(self, account: bytes, receiver: str, sig_hash: bytes) -> bytes:
        """`binding_digest` for a 32-byte account, an already checksummed receiver and a
        32-byte signature hash."""
        struct = _keccak(
            BINDING_TYPEHASH + account + bytes(12) + bytes.fromhex(receiver[2:]) + sig_hash
        )
        return _keccak(self._prefix + struct)

    def sign(self, account: bytes, receiver: str, sig_hash: bytes) -> tuple[Attestation, bytes]:
        """The attestation and the digest it signs."""
        digest = self.digest(account, receiver, sig_hash)
        signature = self._key.sign_recoverable(digest, hasher=None)
        attestation = Attestation(self.address, signature[64] + 27, signature[:32],
                                  signature[32:64])  # fmt: skip
        return attestation, digest
