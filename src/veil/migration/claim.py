"""Claiming: gather attester signatures over a binding, then pay the leaf on the L2.

The client trusts no attester's answer blindly: each returned signature must recover to
the signer it names over the binding of *this* holder signature (its `signature_hash`),
that signer must be registered on the Migrator, and the leaf the attester echoes must be
the one in our own copy of the tree. Only then is the
transaction built, so a misbehaving attester costs a retry, never gas or funds.
Attesters are asked through the one attester client (`veil.attestation.client`), which
retries an attester that sheds load or throttles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from veil.attestation.api import BindingRequest
from veil.attestation.client import AttesterClient
from veil.attestation.typed_data import encode_signatures
from veil.chain.client import Chain
from veil.errors import ChainError, InputError, VeilError
from veil.merkle import MerkleTree, value_to_json
from veil.migration import attestation
from veil.migration.attestation import SCHEME_IDS, Attestation, published_signature
from veil.substrate.signature import Scheme

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

__all__ = ["SCHEME_IDS", "collect_attestations", "pack_proof_flags", "submit_claim"]


@dataclass(frozen=True)
class ClaimResult:
    tx_hash: str
    index: int
    receiver: str
    pha: int
    vpha_shares: int
    vpha_value: int
    gas_used: int


def pack_proof_flags(flags: Sequence[bool]) -> int:
    """OpenZeppelin multiproof flags as `Migrator.claimMany` takes them: flag i in bit i
    (one word of calldata instead of 32 bytes per flag)."""
    return sum(1 << i for i, flag in enumerate(flags) if flag)


def collect_attestations(
    urls: Sequence[str],
    request: BindingRequest,
    tree: MerkleTree,
    account: bytes,
    receiver: str,
    chain_id: int,
    migrator: str,
    sig_hash: bytes,
) -> tuple[list[Attestation], list[str]]:
    """Ask every attester; keep the answers that check out, and say why others did not.

    `sig_hash` is `attestation.signature_hash` of the signature the claim will carry: an
    attestation over any other signature would make the claim revert, so it is refused
    here, before any gas is spent."""
    expected_leaf = value_to_json(tree.values[tree.value_index(account)])
    good: dict[str, Attestation] = {}
    problems: list[str] = []
    for url in urls:
        try:
            answer = AttesterClient(url).bind(request)
            if answer.leaf != expected_leaf:
                raise VeilError(f"attester {url}: answered for a different leaf")
            signed = Attestation.of(answer.attestation.signer, answer.attestation.signature)
            recovered = attestation.recover_signer(
                signed, account, receiver, sig_hash, chain_id, migrator
            )
            if recovered.lower() != signed.signer.lower():
                raise VeilError(f"attester {url}: signature recovers to {recovered}")
            good[recovered.lower()] = Attestation.of(recovered, signed.signature)
        except VeilError as error:
            problems.append(str(error))
    return attestation.order_attestations(good.values()), problems


def submit_claim(
    chain: Chain,
    sender: LocalAccount,
    tree: MerkleTree,
    account: bytes,
    receiver: str,
    substrate_signature: bytes,
    scheme: Scheme,
    attestations: list[Attestation],
) -> ClaimResult:
    """Send `Migrator.claim` and report what the receiver got, read back from the chain."""
    migrator, pha, vault = (chain.contract(n) for n in ("Migrator", "PHA", "Vault"))
    registered = {a.lower() for a in migrator.functions.attesters().call()}
    usable = [a for a in attestations if a.signer.lower() in registered]
    threshold = migrator.functions.threshold().call()
    if len(usable) < threshold:
        raise InputError(
            f"claim: {len(usable)} attestation(s) from registered attesters, "
            f"the Migrator needs {threshold}"
        )
    position = tree.value_index(account)
    index, _, free, staked = tree.values[position]
    if migrator.functions.isClaimed(index).call():
        raise ChainError(f"claim: leaf {index} is already claimed")
    proof = tree.proof(position)
    substrate_signature = published_signature(substrate_signature, scheme)
    call = migrator.functions.claim(
        index, account, free, staked, receiver, proof, substrate_signature,
        SCHEME_IDS[scheme], encode_signatures([a.signature for a in usable]),
    )  # fmt: skip
    pha_before = pha.functions.balanceOf(receiver).call()
    shares_before = vault.functions.balanceOf(receiver).call()
    receipt = chain.send(sender, call, f"Migrator.claim(leaf {index})")
    shares = vault.functions.balanceOf(receiver).call() - shares_before
    return ClaimResult(
        tx_hash=receipt["transactionHash"].hex(),
        index=index,
        receiver=receiver,
        pha=pha.functions.balanceOf(receiver).call() - pha_before,
        vpha_shares=shares,
        vpha_value=vault.functions.convertToAssets(shares).call(),
        gas_used=int(receipt["gasUsed"]),
    )
