"""Binding: a holder's signed statement that their parachain PHA goes to one L2 address.

The message names the project, the source chain (genesis hash), the L2 chain id, the
Migrator contract and the receiver, so a signature made for one deployment cannot be
replayed on another chain, against another migrator, or for another receiver. It is
plain text because the holder must be able to read what the wallet asks them to sign.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from veil.chain.addresses import parse_address
from veil.errors import InputError, VeilError
from veil.substrate import ss58
from veil.substrate.signature import SCHEMES, Scheme, Verified, verify_raw

PROJECT = "veil"


class BindingRefused(VeilError):
    """The signature does not bind this account to this receiver on this deployment."""

    exit_code = 1


@dataclass(frozen=True, slots=True)
class BindingContext:
    """Where a binding is valid: source chain, L2 chain and the Migrator on it."""

    genesis_hash: bytes
    chain_id: int
    migrator: str

    def __post_init__(self) -> None:
        if len(self.genesis_hash) != 32:
            raise InputError(f"genesis hash 0x{self.genesis_hash.hex()}: expected 32 bytes")
        if self.chain_id <= 0:
            raise InputError(f"chain id {self.chain_id}: must be positive")
        object.__setattr__(self, "migrator", checksum_address(self.migrator, "migrator"))


def checksum_address(address: str, what: str) -> str:
    """Strict EIP-55 (a mixed-case typo is refused, not re-checksummed); a zero receiver
    would burn the claim, so it is refused too."""
    from eth_utils import is_hex_address  # ~0.1 s; not for --help

    if not isinstance(address, str) or not is_hex_address(address):
        raise InputError(f"{what} {address!r}: not a 20-byte 0x address")
    return parse_address(address, what, allow_zero=what != "receiver")


def parse_genesis(text: str) -> bytes:
    value = text.strip()
    try:
        raw = bytes.fromhex(value[2:]) if value.startswith("0x") else b""
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise InputError(f"genesis hash {text!r}: expected 0x + 32 bytes of hex")
    return raw


def binding_message(account: bytes, receiver: str, context: BindingContext) -> str:
    """The exact text a holder signs (wallets add the <Bytes> wrapping themselves)."""
    return (
        f"{PROJECT}: bind parachain PHA to an L2 receiver\n"
        f"Account: {ss58.encode(account)}\n"
        f"Account id: 0x{account.hex()}\n"
        f"Receiver: {checksum_address(receiver, 'receiver')}\n"
        f"Source chain genesis: 0x{context.genesis_hash.hex()}\n"
        f"L2 chain id: {context.chain_id}\n"
        f"Migrator: {context.migrator}\n"
        f"Signing sends this account's migrated PHA, free and staked, to the receiver above, "
        f"on this chain and migrator only."
    )


def verify_binding(
    account: bytes,
    receiver: str,
    signature: bytes,
    context: BindingContext,
    *,
    scheme: Scheme | None = None,
    public_key: bytes | None = None,
) -> Verified:
    """Check a holder's binding signature; raises `BindingRefused` with the reason.

    Accepts the message bare or `<Bytes>`-wrapped, any of the three Substrate schemes
    (or only `scheme`), and for ECDSA a 33-byte public key whose blake2_256 is the account.
    """
    if scheme is not None and scheme not in SCHEMES:
        raise InputError(f"scheme {scheme!r}: expected one of {', '.join(SCHEMES)}")
    if len(account) != 32:
        raise InputError(f"account 0x{account.hex()}: expected 32 bytes")
    if len(signature) not in (64, 65, 66):
        raise BindingRefused(
            f"signature of {len(signature)} bytes: expected 64 (sr25519, ed25519) or 65 (ecdsa)"
        )
    if public_key is not None and len(public_key) not in (32, 33):
        raise InputError(f"public key of {len(public_key)} bytes: expected 32 or 33")
    message = binding_message(account, receiver, context).encode()
    verified = verify_raw(message, signature, account, scheme=scheme, public_key=public_key)
    if verified is None:
        schemes = scheme or "sr25519, ed25519 or ecdsa"
        raise BindingRefused(
            f"binding for {ss58.encode(account)} -> {checksum_address(receiver, 'receiver')}: "
            f"signature is not a valid {schemes} signature by this account over the binding "
            f"message for genesis 0x{context.genesis_hash.hex()[:12]}.., chain id "
            f"{context.chain_id}, migrator {context.migrator}"
        )
    return verified


def read_deployment(path: str | os.PathLike[str]) -> tuple[int, str]:
    """(chain id, Migrator address) of a deployments/<network>.json file."""
    source = Path(path)
    try:
        document: Any = json.loads(source.read_text())
        chain_id = int(document["chain_id"])
        migrator = str(document["contracts"]["Migrator"]["address"])
    except OSError as error:
        raise InputError(f"{source}: cannot read ({error})") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise InputError(
            f"{source}: expected {{chain_id, contracts: {{Migrator: {{address}}}}}}"
        ) from None
    return chain_id, migrator


def context_from_files(
    tree_path: str | os.PathLike[str], deployment_path: str | os.PathLike[str]
) -> BindingContext:
    """Binding context of a published tree (its snapshot's genesis) and a deployment."""
    source = Path(tree_path)
    try:
        document = json.loads(source.read_bytes())
        genesis = document["veil"]["ledger"]["snapshot"]["genesis_hash"]
    except OSError as error:
        raise InputError(f"{source}: cannot read ({error.strerror})") from None
    except (json.JSONDecodeError, KeyError, TypeError):
        raise InputError(f"{source}: no veil.ledger.snapshot.genesis_hash in this tree") from None
    if not genesis:
        raise InputError(f"{source}: the snapshot recorded no genesis hash; pass --genesis")
    chain_id, migrator = read_deployment(deployment_path)
    return BindingContext(parse_genesis(genesis), chain_id, migrator)
