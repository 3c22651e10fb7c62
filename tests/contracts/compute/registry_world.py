"""Shared by the ComputeRegistry tests: a deployed registry over a vPHA share token, attester
keys, and a builder that produces signed worker attestations via veil.compute.attestation.

The share token is the test-only double (TestOnlyShareToken.vy, 21 decimals = 18 + an
offset of 3, like the vault) so these unit tests do not depend on the vault's code; the
integration tests in test_compute_registry_vault.py use the real Vault over PHA.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boa
from eth_account import Account
from eth_utils import keccak

from veil.attestation.typed_data import encode_signatures
from veil.chain.compile import CONTRACTS_DIR
from veil.compute import attestation as att

REGISTRY_SOURCE = CONTRACTS_DIR / "compute" / "ComputeRegistry.vy"
TOKEN_SOURCE = Path(__file__).with_name("TestOnlyShareToken.vy")
PHA_SOURCE = CONTRACTS_DIR / "token" / "PHA.vy"
VAULT_SOURCE = CONTRACTS_DIR / "staking" / "Vault.vy"
SHARE_DECIMALS = 21
UNIT = 10**SHARE_DECIMALS
DAY = 86_400

OS_IMAGE = keccak(text="os image v1")
COMPOSE = keccak(text="compose v1")

ATTESTER_KEYS = [Account.from_key(keccak(text=f"veil test attester {i}")) for i in range(4)]


@dataclass
class World:
    registry: Any
    token: Any  # the vPHA share token: the real Vault or the test-only double
    owner: str
    treasury: str
    domain: att.RegistryDomain
    pha: Any = None  # set when `token` is the real Vault over PHA
    pha_minter: str = ""

    @property
    def unit(self) -> int:
        """One whole vPHA in share units (10**decimals)."""
        return 10 ** int(self.token.decimals())

    def now(self) -> int:
        return int(boa.env.evm.patch.timestamp)

    def mint_shares(self, holder: str, shares: int) -> None:
        """Give `holder` exactly `shares` vPHA: minted by the double, or staked PHA."""
        if self.pha is None:
            self.token.mint(holder, shares)
            return
        assets = self.token.previewMint(shares)
        with boa.env.prank(self.pha_minter):
            self.pha.mint(holder, assets)
        with boa.env.prank(holder):
            self.pha.approve(self.token.address, assets)
            self.token.mint(shares, holder)

    def fund(self, provider: str, amount: int, *, register: bool = True) -> None:
        """Mint shares, approve, (register) and deposit them for `provider`."""
        self.mint_shares(provider, amount)
        with boa.env.prank(provider):
            self.token.approve(self.registry.address, amount)
            if register:
                self.registry.registerProvider()
            self.registry.depositCollateral(amount)

    def attestation(
        self,
        provider: str,
        worker: str | None = None,
        *,
        model: int = att.GpuModel.H100,
        count: int = 1,
        ttl: int = DAY,
        os_image: bytes = OS_IMAGE,
        compose: bytes = COMPOSE,
        evidence: bytes = b"evidence",
    ) -> att.WorkerAttestation:
        return att.WorkerAttestation(
            worker=worker or str(boa.env.generate_address()),
            provider=str(provider),
            quote_hash=keccak(b"quote" + evidence),
            measurement_hash=keccak(b"measurement" + evidence),
            os_image_hash=os_image,
            compose_hash=compose,
            gpu_model=int(model),
            gpu_count=count,
            expiry=self.now() + ttl,
            evidence_hash=att.evidence_hash(evidence),
        )

    def signatures(
        self, a: att.WorkerAttestation, keys: Sequence[Any] = ATTESTER_KEYS[:1]
    ) -> list[tuple[bytes, bytes]]:
        """Ordered, in the contract's compact (r, vs) form."""
        sigs = [att.sign(a, self.domain, key.key) for key in keys]
        return encode_signatures(att.order_signatures(a, self.domain, sigs))

    def register(
        self, a: att.WorkerAttestation, keys: Sequence[Any] = ATTESTER_KEYS[:1]
    ) -> list[Any]:
        """Register and return the call's logs (boa keeps only the last call's logs)."""
        with boa.env.prank(a.provider):
            self.registry.registerWorker(a.as_tuple(), self.signatures(a, keys))
            return list(self.registry.get_logs())

    def reattest(
        self, a: att.WorkerAttestation, keys: Sequence[Any] = ATTESTER_KEYS[:1]
    ) -> list[Any]:
        with boa.env.prank(a.provider):
            self.registry.reattestWorker(a.as_tuple(), self.signatures(a, keys))
            return list(self.registry.get_logs())


def make_world(registry_deployer: Any, token: Any, pha: Any = None, pha_minter: str = "") -> World:
    owner = boa.env.generate_address("owner")
    treasury = boa.env.generate_address("treasury")
    registry = registry_deployer.deploy(token.address, owner, treasury)
    with boa.env.prank(owner):
        for key in ATTESTER_KEYS[:3]:
            registry.setAttester(key.address, True)
        registry.setOsImageAllowed(OS_IMAGE, True)
        registry.setComposeHashAllowed(COMPOSE, True)
    domain = att.RegistryDomain(int(boa.env.evm.patch.chain_id), str(registry.address))
    return World(registry, token, str(owner), str(treasury), domain, pha, pha_minter)


def make_vault_world(registry_deployer: Any, pha_deployer: Any, vault_deployer: Any) -> World:
    """The real stack: PHA (deployer appointed minter) staked into the vPHA Vault."""
    minter = boa.env.generate_address("pha minter")
    with boa.env.prank(minter):
        pha = pha_deployer.deploy("0x" + "00" * 20)  # no Migrator here
        pha.setMinter(minter, True)
    vault_owner = boa.env.generate_address("vault owner")
    vault_treasury = boa.env.generate_address("vault treasury")
    vault = vault_deployer.deploy(pha.address, vault_owner, vault_treasury)
    return make_world(registry_deployer, vault, pha, str(minter))
