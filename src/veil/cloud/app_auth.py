"""A typed handle on AppAuth, and the app-id rule everyone computes off-chain.

The customer's own key sends every AppAuth transaction (registerApp, addComposeHash,
removeComposeHash, transferAppOwnership): the contract makes msg.sender the app's owner,
so the control plane can never allow a compose hash on a customer's behalf. The control
plane and the KMS only read (`app_id_of`, `is_compose_allowed`, `owner`).
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi import encode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3.contract import Contract
from web3.types import TxReceipt

from veil.attestation.typed_data import checksum
from veil.chain.client import Chain
from veil.errors import InputError

ZERO_ADDRESS = "0x" + "00" * 20


def app_salt(name: str) -> bytes:
    """The registration salt of an app name: keccak256 of its UTF-8 bytes."""
    if not name:
        raise InputError("app name: empty")
    return keccak(name.encode())


def app_id_of(owner: str, salt: bytes) -> str:
    """`AppAuth.appIdOf(owner, salt)` computed off-chain (lower-case 0x hex, 20 bytes)."""
    if len(salt) != 32:
        raise InputError(f"app salt: expected 32 bytes, got {len(salt)}")
    return (
        "0x" + keccak(encode(["address", "bytes32"], [checksum(owner, "owner"), salt]))[12:].hex()
    )


def app_id_for(owner: str, name: str) -> str:
    """The id of the app `owner` registers under `name`: deploying that name again updates it."""
    return app_id_of(owner, app_salt(name))


def compose_hash_bytes(compose_hash: str | bytes) -> bytes:
    if isinstance(compose_hash, bytes):
        raw = compose_hash
    else:
        try:
            raw = bytes.fromhex(compose_hash.strip().lower().removeprefix("0x"))
        except ValueError:
            raise InputError(f"compose hash {compose_hash!r}: not hex") from None
    if len(raw) != 32:
        raise InputError(f"compose hash: expected 32 bytes, got {len(raw)}")
    return raw


@dataclass
class AppAuthClient:
    chain: Chain
    contract: Contract

    @classmethod
    def from_chain(cls, chain: Chain) -> AppAuthClient:
        return cls(chain, chain.contract("AppAuth"))

    @property
    def address(self) -> str:
        return str(self.contract.address)

    def owner(self, app_id: str) -> str | None:
        """The app's owner, or None when no one registered that id."""
        owner = str(self.contract.functions.appOwner(checksum(app_id, "app id")).call())
        return None if int(owner, 16) == 0 else checksum(owner, "owner")

    def is_compose_allowed(self, app_id: str, compose_hash: str | bytes) -> bool:
        call = self.contract.functions.isComposeAllowed(
            checksum(app_id, "app id"), compose_hash_bytes(compose_hash)
        )
        return bool(call.call())

    def compose_hash_count(self, app_id: str) -> int:
        return int(self.contract.functions.composeHashCount(checksum(app_id, "app id")).call())

    def register_app(self, signer: LocalAccount, name: str, compose_hash: str | bytes) -> str:
        """registerApp(keccak(name), hash) from the owner's key; returns the app id."""
        call = self.contract.functions.registerApp(app_salt(name), compose_hash_bytes(compose_hash))
        self.chain.send(signer, call, "AppAuth.registerApp")
        return app_id_for(signer.address, name)

    def add_compose_hash(
        self, signer: LocalAccount, app_id: str, compose_hash: str | bytes
    ) -> TxReceipt:
        call = self.contract.functions.addComposeHash(
            checksum(app_id, "app id"), compose_hash_bytes(compose_hash)
        )
        return self.chain.send(signer, call, "AppAuth.addComposeHash")

    def remove_compose_hash(
        self, signer: LocalAccount, app_id: str, compose_hash: str | bytes
    ) -> TxReceipt:
        call = self.contract.functions.removeComposeHash(
            checksum(app_id, "app id"), compose_hash_bytes(compose_hash)
        )
        return self.chain.send(signer, call, "AppAuth.removeComposeHash")

    def transfer_ownership(self, signer: LocalAccount, app_id: str, new_owner: str) -> TxReceipt:
        call = self.contract.functions.transferAppOwnership(
            checksum(app_id, "app id"), checksum(new_owner, "new owner")
        )
        return self.chain.send(signer, call, "AppAuth.transferAppOwnership")

    def allow(self, signer: LocalAccount, name: str, compose_hash: str | bytes) -> str:
        """What a deploy needs before commit: the app registered under `name` by `signer`
        and `compose_hash` allowed, sending only the transaction that is missing (none when
        both already hold). Returns the app id. Refuses an id another account owns."""
        app_id = app_id_for(signer.address, name)
        owner = self.owner(app_id)
        if owner is None:
            return self.register_app(signer, name, compose_hash)
        if owner.lower() != signer.address.lower():
            raise InputError(f"app {app_id}: owned by {owner}, not by {signer.address}")
        if not self.is_compose_allowed(app_id, compose_hash):
            self.add_compose_hash(signer, app_id, compose_hash)
        return app_id
