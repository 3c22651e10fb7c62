"""EIP-712 typed data and secp256k1 signatures: the one place veil signs a statement.

Every statement a contract accepts on the word of a key (an attester's binding for the
Migrator, an attester's worker attestation and a worker's heartbeat for the registry, and
whatever rewards or the KMS add next) is an EIP-712 struct under a domain of the same four
fields, signed with secp256k1. The contracts check those signatures with the same rules,
so they are written once here: the struct and domain hashing, signing (always low-s),
recovery that refuses what the contracts refuse (a wrong length, v other than 27/28, a
zero or high s), the ordering of several signatures by strictly increasing signer
address (how a contract proves its signers distinct without storage), and the one
encoding in which signatures are handed to a contract.

The statements themselves (which fields, which contract) belong to their domains
(`veil.migration.attestation`, `veil.compute.attestation`, `veil.compute.heartbeat`).

Nothing heavy is imported at module level: `veil migrate --help` imports the binding
statement, and must not pay for eth_utils, pycryptodome or libsecp256k1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

from veil.chain.addresses import parse_address
from veil.errors import InputError

#: secp256k1 group order; a signature with s above half of it is the malleable twin of one
#: below, so contracts (and `recover_digest`) accept only s in [1, HALF_N].
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HALF_N = SECP256K1_N // 2

#: The domain every veil contract uses, so wallets and `eth_signTypedData_v4` see one shape.
DOMAIN_FIELDS: list[dict[str, str]] = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"

T = TypeVar("T")


def keccak256(data: bytes) -> bytes:
    """Ethereum's Keccak-256 (pycryptodome, loaded on first use)."""
    from Crypto.Hash import keccak

    return keccak.new(data=data, digest_bits=256).digest()


def _encoder(kind: str, what: str) -> Callable[[Any], bytes]:
    """How one static EIP-712 field becomes its 32-byte ABI word. Chosen once per struct
    field, not per value: hashing is on the attester's per-request path."""
    if kind == "address":

        def address(value: Any) -> bytes:
            raw = bytes.fromhex(value[2:]) if isinstance(value, str) else bytes(value)
            if len(raw) != 20:
                raise InputError(f"{what}: {value!r} is not a 20-byte address")
            return _PAD + raw

        return address
    if kind == "bytes32":

        def bytes32(value: Any) -> bytes:
            if not isinstance(value, bytes | bytearray) or len(value) != 32:
                raise InputError(f"{what}: expected 32 bytes")
            return bytes(value)

        return bytes32
    if kind == "bool":
        return lambda value: (1 if value else 0).to_bytes(32, "big")
    if kind.startswith("uint") and kind[4:].isdigit():
        limit = 1 << int(kind[4:])

        def uint(value: Any) -> bytes:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < limit:
                raise InputError(f"{what}: {value!r} is not a {kind}")
            return value.to_bytes(32, "big")

        return uint
    raise InputError(f"{what}: EIP-712 type {kind} is not a static field veil signs")


_PAD = bytes(12)


@dataclass(frozen=True)
class StructType:
    """An EIP-712 struct of static fields (address, bool, bytes32, uintN), as every veil
    statement is. Field order is part of the signature: it fixes the type string."""

    name: str
    fields: tuple[tuple[str, str], ...]  # (name, type), in the contract's order

    @property
    def type_string(self) -> str:
        return f"{self.name}({','.join(f'{kind} {name}' for name, kind in self.fields)})"

    @cached_property
    def typehash(self) -> bytes:
        return keccak256(self.type_string.encode())

    @cached_property
    def _encoders(self) -> list[Callable[[Any], bytes]]:
        return [_encoder(kind, f"{self.name}.{name}") for name, kind in self.fields]

    def eip712_fields(self) -> list[dict[str, str]]:
        return [{"name": name, "type": kind} for name, kind in self.fields]

    def hash(self, values: Sequence[Any]) -> bytes:
        """hashStruct for the field values in declaration order."""
        encoders = self._encoders
        if len(values) != len(encoders):
            raise InputError(f"{self.name}: {len(values)} values for {len(encoders)} fields")
        words = [encode(value) for encode, value in zip(encoders, values, strict=True)]
        return keccak256(self.typehash + b"".join(words))


@dataclass(frozen=True)
class Domain:
    """An EIP-712 domain: signatures under it are bound to one contract on one chain."""

    name: str
    version: str
    chain_id: int
    verifying_contract: str

    def __post_init__(self) -> None:
        if isinstance(self.chain_id, bool) or not isinstance(self.chain_id, int):
            raise InputError(f"{self.name} domain: chain id {self.chain_id!r} is not an integer")
        object.__setattr__(
            self, "verifying_contract", checksum(self.verifying_contract, f"{self.name} domain")
        )

    @cached_property
    def separator(self) -> bytes:
        """The domain separator (equals the contract's `DOMAIN_SEPARATOR()`)."""
        return keccak256(
            keccak256(DOMAIN_TYPE.encode())
            + keccak256(self.name.encode())
            + keccak256(self.version.encode())
            + _encoder("uint256", "chainId")(self.chain_id)
            + _encoder("address", "verifyingContract")(self.verifying_contract)
        )

    def digest(self, struct_hash: bytes) -> bytes:
        """keccak256(0x1901 ++ domainSeparator ++ structHash): what is actually signed."""
        return keccak256(b"\x19\x01" + self.separator + struct_hash)

    def to_eip712(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
        }

    def document(self, struct: StructType, message: dict[str, Any]) -> dict[str, Any]:
        """The full typed-data document, as wallets and `eth_signTypedData_v4` take it."""
        return {
            "types": {"EIP712Domain": DOMAIN_FIELDS, struct.name: struct.eip712_fields()},
            "primaryType": struct.name,
            "domain": self.to_eip712(),
            "message": message,
        }


def checksum(value: Any, what: str) -> str:
    """The EIP-55 form of an address (strict: a mixed-case typo is refused, not fixed)."""
    if not isinstance(value, str):
        raise InputError(f"{what} {value!r}: not an address")
    return parse_address(value, what, allow_zero=True)


@dataclass(frozen=True)
class Signature:
    """A secp256k1 signature with v in {27, 28}, as contracts and wallets exchange it."""

    v: int
    r: bytes
    s: bytes

    @classmethod
    def from_bytes(cls, raw: bytes, what: str = "signature") -> Signature:
        """Read the 65-byte r ++ s ++ v form."""
        raw = bytes(raw)
        if len(raw) != 65:
            raise InputError(f"{what}: {len(raw)} bytes, expected 65")
        return cls(raw[64], raw[:32], raw[32:64])

    def to_bytes(self) -> bytes:
        """The 65-byte r ++ s ++ v form."""
        return self.r + self.s + bytes([self.v])

    def as_tuple(self) -> tuple[int, bytes, bytes]:
        """The `(v, r, s)` struct form."""
        return (self.v, self.r, self.s)

    def compact(self) -> tuple[bytes, bytes]:
        """EIP-2098 `(r, vs)`: the recovery bit moves into the top bit of `s`.

        The contracts' `attester_set` module takes this form: 64 static calldata bytes
        instead of 96 for `(v, r, s)` or 160 for a 65-byte `bytes`. Only a low `s` (as every
        signer here produces) leaves that top bit free.
        """
        if self.v not in (27, 28):
            raise InputError(f"signature v={self.v}: must be 27 or 28")
        s_int = int.from_bytes(self.s, "big")
        if s_int > HALF_N:
            raise InputError(f"signature s=0x{self.s.hex()}: high-s has no compact form")
        return bytes(self.r), ((self.v - 27) << 255 | s_int).to_bytes(32, "big")


class DigestSigner:
    """One private key, prepared once: signing is an attester's work per request, and
    re-deriving the key object and address each time would be most of it. libsecp256k1
    always produces low-s signatures, which is what contracts accept."""

    def __init__(self, private_key: bytes | str) -> None:
        import coincurve
        from eth_utils import to_checksum_address

        raw = (
            bytes.fromhex(private_key.removeprefix("0x"))
            if isinstance(private_key, str)
            else (bytes(private_key))
        )
        self._key = coincurve.PrivateKey(raw)
        public = self._key.public_key.format(compressed=False)[1:]
        self.address: str = str(to_checksum_address(keccak256(public)[-20:]))

    def sign(self, digest: bytes) -> Signature:
        recoverable = self._key.sign_recoverable(digest, hasher=None)
        return Signature(recoverable[64] + 27, recoverable[:32], recoverable[32:64])


def sign_digest(private_key: bytes | str, digest: bytes) -> Signature:
    """Sign a 32-byte digest once (a service keeps a `DigestSigner` instead)."""
    return DigestSigner(private_key).sign(digest)


def recover_digest(digest: bytes, signature: Signature | bytes, what: str = "signature") -> str:
    """The checksummed address that signed `digest`, refusing what the contracts refuse."""
    sig = signature if isinstance(signature, Signature) else Signature.from_bytes(signature, what)
    if sig.v not in (27, 28):
        raise InputError(f"{what}: v={sig.v}, must be 27 or 28")
    s = int.from_bytes(sig.s, "big")
    if not 0 < s <= HALF_N:
        raise InputError(f"{what}: s=0x{sig.s.hex()} refused: high-s (malleable) or zero")
    import coincurve
    from eth_utils import to_checksum_address

    try:
        public = coincurve.PublicKey.from_signature_and_message(
            sig.r + sig.s + bytes([sig.v - 27]), digest, hasher=None
        )
    except Exception as error:  # libsecp256k1 refuses r out of range, no point on the curve
        raise InputError(f"{what}: r=0x{sig.r.hex()} does not recover a key") from error
    address = keccak256(public.format(compressed=False)[1:])[-20:]
    return str(to_checksum_address(address))


def order_by_signer(signed: Iterable[tuple[str, T]], what: str = "signatures") -> list[T]:
    """The items sorted by strictly increasing signer address, as the contracts require;
    one signer twice is an InputError (a contract would revert on it)."""
    by_signer: dict[int, T] = {}
    for signer, item in signed:
        key = int(signer, 16)
        if key in by_signer:
            raise InputError(f"{what}: two signatures from {signer} (a signer appears twice)")
        by_signer[key] = item
    return [by_signer[key] for key in sorted(by_signer)]


def encode_signatures(signatures: Sequence[Signature | bytes]) -> list[tuple[bytes, bytes]]:
    """Signatures, already in signer order, as every veil contract takes them: the shared
    `attester_set` module's `Signature(r, vs)` structs (EIP-2098 compact form)."""
    return [
        (s if isinstance(s, Signature) else Signature.from_bytes(s)).compact() for s in signatures
    ]
