"""Claiming: gather attester signatures over a binding, then pay the leaf on the L2.

The client trusts no attester's answer blindly: each returned signature must recover to
the signer it names over the binding of *this* holder signature (its `signature_hash`),
that signer must be registered on the Migrator, and the leaf the attester echoes must be
the one in our own copy of the tree. Only then is the
transaction built, so a misbehaving attester costs a retry, never gas or funds. An
attester that sheds load (503) or throttles (429) is asked again after a jittered,
growing delay that honours its Retry-After (veil.attester.backoff).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from veil.attester.backoff import DEFAULT, RETRY_STATUSES, Backoff, retry_after_seconds
from veil.chain.client import Chain
from veil.errors import ChainError, InputError, VeilError
from veil.merkle import MerkleTree, value_to_json
from veil.migration import attestation
from veil.migration.attestation import SCHEME_IDS, Attestation, published_signature
from veil.substrate.signature import Scheme

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

BINDINGS_PATH = "/v1/migration/bindings"
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


def request_attestation(
    url: str, body: dict[str, Any], timeout: float = 15, backoff: Backoff = DEFAULT
) -> dict[str, Any]:
    """POST the binding to one attester; its refusal reason becomes the error text."""
    import urllib.error  # urllib.request takes ~0.05 s to import; offline commands skip it
    import urllib.request

    data = json.dumps(body).encode()
    for attempt in range(backoff.attempts):
        request = urllib.request.Request(
            url.rstrip("/") + BINDINGS_PATH,
            data=data,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                answer: dict[str, Any] = json.loads(response.read())
                return answer
        except urllib.error.HTTPError as error:
            try:
                reason = json.loads(error.read()).get("error", "")
            except ValueError:
                reason = ""
            if error.code not in RETRY_STATUSES or attempt + 1 == backoff.attempts:
                raise VeilError(
                    f"attester {url}: refused ({error.code}) {reason}".rstrip()
                ) from None
            wait = retry_after_seconds(error.headers.get("Retry-After"))
            backoff.sleep(backoff.delay(attempt, wait))
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise VeilError(f"attester {url}: unreachable ({error})") from None
    raise AssertionError("unreachable: the last attempt returns or raises")


def collect_attestations(
    urls: Sequence[str],
    body: dict[str, Any],
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
            answer = request_attestation(url, body)
            if answer.get("leaf") != expected_leaf:
                raise VeilError(f"attester {url}: answered for a different leaf")
            raw = answer["attestation"]
            signed = Attestation(
                signer=raw["signer"],
                v=int(raw["v"]),
                r=bytes.fromhex(raw["r"].removeprefix("0x")),
                s=bytes.fromhex(raw["s"].removeprefix("0x")),
            )
            recovered = attestation.recover_signer(
                signed, account, receiver, sig_hash, chain_id, migrator
            )
            if recovered.lower() != signed.signer.lower():
                raise VeilError(f"attester {url}: signature recovers to {recovered}")
            good[recovered.lower()] = Attestation(recovered, signed.v, signed.r, signed.s)
        except (VeilError, KeyError, TypeError, ValueError) as error:
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
        SCHEME_IDS[scheme], [a.as_tuple() for a in usable],
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
