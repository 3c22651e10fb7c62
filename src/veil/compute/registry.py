"""A typed handle on ComputeRegistry: read workers and providers, send what providers send.

Only the provider's key sends registry transactions (registerProvider, depositCollateral,
registerWorker, reattestWorker): the contract requires msg.sender to be the attested
provider, so the collateral at stake and the key that can move it stay together. The one
exception is the guardian's freeze, which exists precisely to act against a provider.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from web3.contract import Contract
from web3.types import TxReceipt

from veil.attestation.typed_data import checksum, encode_signatures
from veil.chain.client import Chain
from veil.compute.attestation import GpuModel, RegistryDomain, WorkerAttestation

STATUS_NAMES = {0: "none", 1: "registered", 2: "deregistered"}
REGISTERED = 1


@dataclass(frozen=True)
class WorkerRecord:
    worker: str
    provider: str
    gpu_model: int
    gpu_count: int
    expiry: int
    evidence_hash: bytes
    quote_hash: bytes
    measurement_hash: bytes
    status: int
    os_image_hash: bytes
    compose_hash: bytes
    collateral: int
    active: bool

    @property
    def registered(self) -> bool:
        return self.status == REGISTERED

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, bytes):
                out[key] = "0x" + value.hex()
        out["status"] = STATUS_NAMES.get(self.status, str(self.status))
        known = {int(m): m.name for m in GpuModel}
        out["gpu_model"] = known.get(self.gpu_model, str(self.gpu_model))
        out["collateral"] = str(self.collateral)
        return out


@dataclass(frozen=True)
class ProviderRecord:
    registered: bool
    collateral: int
    locked: int
    cooling: int
    cooldown_end: int
    required: int
    workers: int
    free: int
    frozen_until: int = 0
    frozen: bool = False


@dataclass
class RegistryClient:
    chain: Chain
    contract: Contract

    @classmethod
    def from_chain(cls, chain: Chain) -> RegistryClient:
        return cls(chain, chain.contract("ComputeRegistry"))

    def domain(self) -> RegistryDomain:
        return RegistryDomain(int(self.chain.w3.eth.chain_id), self.contract.address)

    def chain_time(self) -> int:
        return int(self.chain.w3.eth.get_block("latest")["timestamp"])

    def worker(self, worker: str) -> WorkerRecord:
        address = checksum(worker, "worker")
        fields = self.contract.functions.worker(address).call()
        active = bool(self.contract.functions.isActive(address).call())
        # The contract's tuple fills the leading fields in order; mypy cannot count it.
        return WorkerRecord(  # type: ignore[misc]
            address, checksum(fields[0], "provider"), *fields[1:], active=active
        )

    def provider(self, provider: str) -> ProviderRecord:
        address = checksum(provider, "provider")
        fields = self.contract.functions.provider(address).call()
        free = int(self.contract.functions.freeCollateral(address).call())
        until = int(self.contract.functions.frozenUntil(address).call())
        frozen = bool(self.contract.functions.isFrozen(address).call())
        return ProviderRecord(*fields, free=free, frozen_until=until, frozen=frozen)  # type: ignore[misc]

    def guardian(self) -> str:
        return checksum(self.contract.functions.guardian().call(), "guardian")

    def max_freeze(self) -> int:
        return int(self.contract.functions.maxFreeze().call())

    def threshold(self) -> int:
        return int(self.contract.functions.threshold().call())

    def is_attester(self, address: str) -> bool:
        return bool(self.contract.functions.isAttester(checksum(address, "attester")).call())

    def required_collateral(self, model: int, count: int) -> int:
        return int(self.contract.functions.requiredCollateral(model, count).call())

    def register_provider(self, signer: LocalAccount) -> TxReceipt | None:
        """registerProvider, unless already registered (then None)."""
        if self.contract.functions.provider(signer.address).call()[0]:
            return None
        return self.chain.send(
            signer, self.contract.functions.registerProvider(), "ComputeRegistry.registerProvider"
        )

    def deposit_collateral(self, signer: LocalAccount, shares: int) -> TxReceipt:
        """Approve the registry for `shares` vPHA (if needed), then deposit them."""
        vault = self.chain.at(
            self.contract.functions.vault().call(), self.chain.contract("Vault").abi
        )
        if vault.functions.allowance(signer.address, self.contract.address).call() < shares:
            self.chain.send(
                signer, vault.functions.approve(self.contract.address, shares), "vPHA.approve"
            )
        return self.chain.send(
            signer,
            self.contract.functions.depositCollateral(shares),
            "ComputeRegistry.depositCollateral",
        )

    def freeze(self, guardian: LocalAccount, provider: str, reason: str) -> TxReceipt:
        """The guardian stops `provider`'s withdrawals until governance slashes or unfreezes
        it (or the maximum freeze lapses), so a slash being voted on cannot be dodged."""
        call = self.contract.functions.freeze(checksum(provider, "provider"), reason)
        return self.chain.send(guardian, call, "ComputeRegistry.freeze")

    def register_worker(
        self, signer: LocalAccount, attestation: WorkerAttestation, signatures: list[bytes]
    ) -> TxReceipt:
        call = self.contract.functions.registerWorker(
            attestation.as_tuple(), encode_signatures(signatures)
        )
        return self.chain.send(signer, call, "ComputeRegistry.registerWorker")

    def reattest_worker(
        self, signer: LocalAccount, attestation: WorkerAttestation, signatures: list[bytes]
    ) -> TxReceipt:
        call = self.contract.functions.reattestWorker(
            attestation.as_tuple(), encode_signatures(signatures)
        )
        return self.chain.send(signer, call, "ComputeRegistry.reattestWorker")
