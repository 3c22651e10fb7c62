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

Hashing, signing, recovery (refusing high-s and bad v, as the contract does), ordering by
signer address and the contract's signature encoding (EIP-2098 compact `(r, vs)`, the shared
`attester_set` module's form) are `veil.attestation.typed_data`'s, shared with every other
statement; this module says what a binding is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from veil.attestation.typed_data import (
    DOMAIN_TYPE,
    HALF_N,
    SECP256K1_N,
    DigestSigner,
    Domain,
    Signature,
    StructType,
    checksum,
    keccak256,
    order_by_signer,
    recover_digest,
)
from veil.errors import InputError

__all__ = ["DOMAIN_TYPE", "HALF_N", "SECP256K1_N", "Attestation", "BindingSigner"]

DOMAIN_NAME = "veil Migrator"
DOMAIN_VERSION = "1"

BINDING = StructType(
    "Binding", (("account", "bytes32"), ("receiver", "address"), ("signatureHash", "bytes32"))
)
BINDING_TYPE = BINDING.type_string
# keccak256 of the two type strings, written out so that importing this module loads no
# Keccak library; tests/migration/test_binding_attestation.py recomputes them.
DOMAIN_TYPEHASH = bytes.fromhex("8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f")
BINDING_TYPEHASH = bytes.fromhex("57d6d0950aba572c09f5f72e362cce7dc05a781ac9cc6cd70e23639eeea2ed64")

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
        """`(v, r, s)`, as `recover_signer` takes it."""
        return (self.v, self.r, self.s)

    @property
    def signature(self) -> Signature:
        return Signature(self.v, self.r, self.s)

    def as_compact(self) -> tuple[bytes, bytes]:
        """The contracts' `Signature(r, vs)` struct (EIP-2098) as an ABI tuple."""
        return self.signature.compact()

    @classmethod
    def of(cls, signer: str, signature: Signature) -> Attestation:
        return cls(signer, signature.v, signature.r, signature.s)


def _account_bytes(account: bytes | str) -> bytes:
    """Accept a 32-byte id as bytes or 0x-hex, because ledgers store it as hex."""
    raw = bytes.fromhex(account.removeprefix("0x")) if isinstance(account, str) else account
    if len(raw) != 32:
        raise InputError(f"binding account {account!r}: expected a 32-byte account id")
    return raw


def _address(value: str, what: str) -> str:
    """Checksummed; a mixed-case address is re-checksummed, not refused: a digest over
    another address is the caller's lookout (recovery then names another signer), and
    the attester checks receivers strictly before it signs anything."""
    try:
        return checksum(value.lower() if isinstance(value, str) else value, f"binding {what}")
    except InputError:
        raise InputError(f"binding {what} {value!r}: not an Ethereum address") from None


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
    return keccak256(bytes([SCHEME_IDS[scheme]]) + bare)


def _hash32(value: bytes | str, what: str) -> bytes:
    raw = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)
    if len(raw) != 32:
        raise InputError(f"binding {what} {value!r}: expected 32 bytes")
    return raw


def migrator_domain(chain_id: int, migrator: str) -> Domain:
    return Domain(DOMAIN_NAME, DOMAIN_VERSION, chain_id, _address(migrator, "migrator"))


def domain_separator(chain_id: int, migrator: str) -> bytes:
    """The Migrator's EIP-712 domain separator (equals its `DOMAIN_SEPARATOR()`)."""
    return migrator_domain(chain_id, migrator).separator


def _fields(account: bytes | str, receiver: str, sig_hash: bytes | str) -> tuple[Any, ...]:
    return (
        _account_bytes(account),
        _address(receiver, "receiver"),
        _hash32(sig_hash, "signature hash"),
    )


def binding_struct_hash(account: bytes | str, receiver: str, sig_hash: bytes | str) -> bytes:
    """hashStruct(Binding) for one account, receiver and holder signature hash."""
    return BINDING.hash(_fields(account, receiver, sig_hash))


def binding_digest(
    account: bytes | str, receiver: str, sig_hash: bytes | str, chain_id: int, migrator: str
) -> bytes:
    """The 32-byte digest attesters sign (equals the contract's `bindingDigest`)."""
    struct = binding_struct_hash(account, receiver, sig_hash)
    return migrator_domain(chain_id, migrator).digest(struct)


def binding_typed_data(
    account: bytes | str, receiver: str, sig_hash: bytes | str, chain_id: int, migrator: str
) -> dict[str, Any]:
    """The full EIP-712 message, for wallets and `eth_signTypedData_v4` tooling."""
    account_id, receiver, signature = _fields(account, receiver, sig_hash)
    message = {
        "account": "0x" + account_id.hex(),
        "receiver": receiver,
        "signatureHash": "0x" + signature.hex(),
    }
    return migrator_domain(chain_id, migrator).document(BINDING, message)


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
    signer = DigestSigner(private_key)
    digest = binding_digest(account, receiver, sig_hash, chain_id, migrator)
    return Attestation.of(signer.address, signer.sign(digest))


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
    digest = binding_digest(account, receiver, sig_hash, chain_id, migrator)
    return recover_digest(digest, Signature(v, r, s), "attestation")


def order_attestations(attestations: Iterable[Attestation]) -> list[Attestation]:
    """Sort by signer address, as the contract requires; refuse a signer twice."""
    return order_by_signer(((a.signer, a) for a in attestations), "attestations")


class BindingSigner:
    """Signs bindings for one Migrator at service speed.

    `sign_binding` re-derives the domain, the key and the checksummed addresses on every
    call, which is most of an attester's time per request; this keeps them prepared. Same
    digest and signature bytes as `sign_binding` (a test holds them equal).
    """

    def __init__(self, private_key: bytes, chain_id: int, migrator: str) -> None:
        self._signer = DigestSigner(private_key)
        self.address = self._signer.address
        self._domain = migrator_domain(chain_id, migrator)

    def digest(self, account: bytes, receiver: str, sig_hash: bytes) -> bytes:
        """`binding_digest` for a 32-byte account, an already checksummed receiver and a
        32-byte signature hash."""
        return self._domain.digest(BINDING.hash((account, receiver, sig_hash)))

    def sign(self, account: bytes, receiver: str, sig_hash: bytes) -> tuple[Attestation, bytes]:
        """The attestation and the digest it signs."""
        digest = self.digest(account, receiver, sig_hash)
        return Attestation.of(self.address, self._signer.sign(digest)), digest
