"""A typed handle on RewardPool: the epoch root attesters sign, and what anyone sends.

The report (`veil.rewards` epochs and tree) decides the amounts; this module only says
them to the chain in the contract's words. The EIP-712 `EpochRoot` is built here, once,
so the attesters that sign it, the CLI that posts it and the tests that check the
contract all hash the same bytes. Claims go out from the provider's own key: the
contract pays only the provider that sends its claim.

Money is int wei throughout. Views that the contract answers with a sentinel
(`lastFinalizedEpoch()` is 2**256 - 1 before the first finalization) come back as None.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from veil.attestation.typed_data import (
    Domain,
    Signature,
    StructType,
    checksum,
    encode_signatures,
    order_by_signer,
    recover_digest,
    sign_digest,
)
from veil.errors import InputError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3.contract import Contract
    from web3.types import TxReceipt

    from veil.chain.client import Chain

DOMAIN_NAME = "veil RewardPool"
DOMAIN_VERSION = "1"
EPOCH_ROOT = StructType(
    "EpochRoot",
    (("epoch", "uint64"), ("root", "bytes32"), ("total", "uint256"), ("reportHash", "bytes32")),
)
#: The contract's types for one leaf of the providers' tree: (provider, cumulative wei).
LEAF_TYPES = ("address", "uint256")
#: attester_set.vy's MAX_SIGNATURES.
MAX_SIGNATURES = 8
_NONE_FINALIZED = 2**256 - 1

STATUS_NAMES = {0: "not posted", 1: "pending", 2: "finalized"}


def pool_domain(chain_id: int, pool: str) -> Domain:
    """The EIP-712 domain of the RewardPool at `pool` on chain `chain_id`."""
    return Domain(DOMAIN_NAME, DOMAIN_VERSION, chain_id, pool)


@dataclass(frozen=True)
class EpochRoot:
    """What a threshold of attesters signs for one epoch (the contract's `EpochRoot`)."""

    epoch: int
    root: bytes
    total: int
    report_hash: bytes

    def values(self) -> tuple[int, bytes, int, bytes]:
        return (self.epoch, self.root, self.total, self.report_hash)

    def digest(self, domain: Domain) -> bytes:
        """The 32 bytes an attester signs (equals the contract's `epochRootDigest`)."""
        return domain.digest(EPOCH_ROOT.hash(self.values()))

    def typed_data(self, domain: Domain) -> dict[str, Any]:
        """The `eth_signTypedData_v4` document, for signing with a wallet."""
        message = {
            "epoch": self.epoch,
            "root": "0x" + self.root.hex(),
            "total": self.total,
            "reportHash": "0x" + self.report_hash.hex(),
        }
        return domain.document(EPOCH_ROOT, message)

    def sign(self, domain: Domain, private_key: bytes | str) -> Signature:
        return sign_digest(private_key, self.digest(domain))

    def to_json(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "root": "0x" + self.root.hex(),
            "total": str(self.total),
            "reportHash": "0x" + self.report_hash.hex(),
        }


def order_signatures(
    statement: EpochRoot, domain: Domain, signatures: Sequence[Signature]
) -> list[Signature]:
    """The signatures in strictly increasing signer order, as the contract requires; a
    signature that does not recover, or a signer twice, is an InputError."""
    if not signatures:
        raise InputError(f"epoch {statement.epoch}: no attester signatures")
    if len(signatures) > MAX_SIGNATURES:
        raise InputError(
            f"epoch {statement.epoch}: {len(signatures)} signatures, at most {MAX_SIGNATURES}"
        )
    digest = statement.digest(domain)
    signed = [
        (recover_digest(digest, s, f"epoch {statement.epoch} signature"), s) for s in signatures
    ]
    return order_by_signer(signed, f"epoch {statement.epoch} signatures")


@dataclass(frozen=True)
class PostedRoot:
    """An epoch's root as the contract holds it."""

    epoch: int
    status: int
    root: bytes
    total: int
    budget: int
    posted_at: int

    @property
    def status_name(self) -> str:
        return STATUS_NAMES.get(self.status, str(self.status))


@dataclass(frozen=True)
class Split:
    treasury: int
    stakers: int
    providers: int


@dataclass
class RewardPoolClient:
    chain: Chain
    contract: Contract

    @classmethod
    def from_chain(cls, chain: Chain) -> RewardPoolClient:
        return cls(chain, chain.contract("RewardPool"))

    # ---------------------------------------------------------------- views

    def domain(self) -> Domain:
        return pool_domain(int(self.chain.w3.eth.chain_id), self.contract.address)

    def _call(self, name: str, *args: Any) -> Any:
        return getattr(self.contract.functions, name)(*args).call()

    def current_epoch(self) -> int:
        return int(self._call("currentEpoch"))

    def genesis_time(self) -> int:
        return int(self._call("genesisTime"))

    def epoch_length(self) -> int:
        return int(self._call("epochLength"))

    def epoch_bounds(self, epoch: int) -> tuple[int, int]:
        """[start, end) of `epoch` under the current schedule (see setEpochLength)."""
        genesis, length = self.genesis_time(), self.epoch_length()
        return genesis + epoch * length, genesis + (epoch + 1) * length

    def challenge_window(self) -> int:
        return int(self._call("challengeWindow"))

    def min_uptime_bps(self) -> int:
        return int(self._call("minUptimeBps"))

    def initial_budget(self) -> int:
        return int(self._call("initialBudget"))

    def half_life_epochs(self) -> int:
        return int(self._call("halfLifeEpochs"))

    def split_bps(self) -> Split:
        return Split(*(int(x) for x in self._call("splitBps")))

    def scheduled_budget(self, epoch: int) -> int:
        return int(self._call("scheduledBudget", epoch))

    def epoch_budget(self, epoch: int) -> int:
        return int(self._call("epochBudget", epoch))

    def split(self, budget: int) -> Split:
        return Split(*(int(x) for x in self._call("split", budget)))

    def root(self) -> bytes:
        return bytes(self._call("root"))

    def claimed(self, provider: str) -> int:
        return int(self._call("claimed", checksum(provider, "provider")))

    def last_finalized_epoch(self) -> int | None:
        value = int(self._call("lastFinalizedEpoch"))
        return None if value == _NONE_FINALIZED else value

    def next_epoch(self) -> int:
        return int(self._call("nextEpoch"))

    def next_epoch_to_finalize(self) -> int:
        return int(self._call("nextEpochToFinalize"))

    def pending(self, epoch: int) -> PostedRoot:
        status, root, total, budget, posted_at = self._call("pending", epoch)
        return PostedRoot(epoch, int(status), bytes(root), int(total), int(budget), int(posted_at))

    def available(self) -> int:
        return int(self._call("available"))

    def owed(self) -> int:
        return int(self._call("owed"))

    def reserved(self) -> int:
        return int(self._call("reserved"))

    def threshold(self) -> int:
        return int(self._call("threshold"))

    def attesters(self) -> list[str]:
        return [checksum(a, "attester") for a in self._call("attesters")]

    def registry(self) -> str:
        return checksum(self._call("REGISTRY"), "registry")

    # ---------------------------------------------------------------- transactions

    def _send(self, signer: LocalAccount, name: str, *args: Any) -> TxReceipt:
        call = getattr(self.contract.functions, name)(*args)
        return self.chain.send(signer, call, f"RewardPool.{name}")

    def fund(self, signer: LocalAccount, amount: int) -> TxReceipt:
        """Approve the pool for `amount` PHA (if needed), then fund it."""
        if amount <= 0:
            raise InputError(f"fund: amount {amount} must be positive")
        pha = self.chain.at(self._call("PHA"), _ERC20_ABI)
        allowance = int(pha.functions.allowance(signer.address, self.contract.address).call())
        if allowance < amount:
            self.chain.send(
                signer, pha.functions.approve(self.contract.address, amount), "PHA.approve"
            )
        return self._send(signer, "fund", amount)

    def post_root(
        self, signer: LocalAccount, statement: EpochRoot, signatures: Sequence[Signature]
    ) -> TxReceipt:
        """Post `statement` with its attester signatures (any order; sorted here)."""
        ordered = order_signatures(statement, self.domain(), signatures)
        return self._send(
            signer,
            "postRoot",
            statement.epoch,
            statement.root,
            statement.total,
            statement.report_hash,
            encode_signatures(ordered),
        )

    def veto(self, signer: LocalAccount, epoch: int) -> TxReceipt:
        return self._send(signer, "vetoRoot", epoch)

    def finalize(self, signer: LocalAccount, epoch: int) -> TxReceipt:
        return self._send(signer, "finalize", epoch)

    def claim(
        self, provider: LocalAccount, cumulative: int, proof: Sequence[bytes], as_vpha: bool
    ) -> TxReceipt:
        """Claim `cumulative - claimed` for the provider whose key signs."""
        return self._send(provider, "claim", provider.address, cumulative, list(proof), as_vpha)


# The two ERC-20 calls `fund` needs; the deployment's PHA ABI is not required.
_ERC20_ABI = [
    {
        "type": "function",
        "name": "allowance",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {
        "type": "function",
        "name": "approve",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "spender", "type": "address"}, {"name": "amount", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    },
]
