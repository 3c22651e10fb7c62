"""The attesters' signature over an epoch root, and the file that carries it to `publish`.

`EpochRoot(uint64 epoch,bytes32 root,uint256 total,bytes32 reportHash)` under the pool's
EIP-712 domain ("veil RewardPool", "1", chain id, pool), as `veil.rewards.pool` defines
it. An attester operator runs `veil rewards close EPOCH --sign`, which recomputes the
report on its own and signs only what it computed; it writes a signature file anyone can
pass to `veil rewards publish`, which checks each against the report before submitting
the threshold of them. Nobody
has to trust the publisher: the pool recovers the signers itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from veil.atomic import write_json
from veil.attestation.typed_data import Signature, checksum, order_by_signer, recover_digest
from veil.errors import InputError
from veil.rewards.pool import EpochRoot, pool_domain

__all__ = ["EpochRoot", "SignedRoot", "gather", "read_signature", "sign_root", "write_signature"]

SIGNATURE_FORMAT = "veil-epoch-root-signature-v1"


@dataclass(frozen=True)
class SignedRoot:
    statement: EpochRoot
    chain_id: int
    pool: str
    signer: str
    signature: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "format": SIGNATURE_FORMAT,
            "chainId": self.chain_id,
            "pool": self.pool,
            "epoch": self.statement.epoch,
            "root": "0x" + self.statement.root.hex(),
            "total": str(self.statement.total),
            "reportHash": "0x" + self.statement.report_hash.hex(),
            "signer": self.signer,
            "signature": "0x" + self.signature.hex(),
        }


def sign_root(statement: EpochRoot, chain_id: int, pool: str, private_key: Any) -> SignedRoot:
    digest = statement.digest(pool_domain(chain_id, pool))
    signature = statement.sign(pool_domain(chain_id, pool), private_key).to_bytes()
    signer = recover_digest(digest, signature)
    return SignedRoot(statement, chain_id, checksum(pool, "pool"), signer, signature)


def signature_path(directory: Path, epoch: int, signer: str) -> Path:
    return directory / f"epoch-{epoch}.sig-{signer.lower()}.json"


def write_signature(signed: SignedRoot, directory: Path) -> Path:
    return write_json(
        signature_path(directory, signed.statement.epoch, signed.signer), signed.to_json()
    )


def read_signature(path: Path) -> SignedRoot:
    try:
        doc = json.loads(Path(path).read_text())
        if doc.get("format") != SIGNATURE_FORMAT:
            raise ValueError
        statement = EpochRoot(
            int(doc["epoch"]),
            bytes.fromhex(doc["root"][2:]),
            int(doc["total"]),
            bytes.fromhex(doc["reportHash"][2:]),
        )
        signature = bytes.fromhex(doc["signature"][2:])
        return SignedRoot(
            statement, int(doc["chainId"]), str(doc["pool"]), str(doc["signer"]), signature
        )
    except OSError as error:
        raise InputError(f"signature file {path}: {error.strerror}") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise InputError(f"signature file {path}: not a {SIGNATURE_FORMAT} document") from None


def gather(
    statement: EpochRoot,
    chain_id: int,
    pool: str,
    signed: Sequence[SignedRoot],
    attesters: Sequence[str],
    threshold: int,
) -> list[Signature]:
    """The threshold of valid signatures over exactly `statement`, in signer order.

    A signature over another root, or from a key not in the pool's attester set, is
    refused by name: publishing it would only make the pool revert.
    """
    allowed = {a.lower() for a in attesters}
    digest = statement.digest(pool_domain(chain_id, pool))
    found: list[tuple[str, Signature]] = []
    for item in signed:
        if (
            item.statement != statement
            or item.chain_id != chain_id
            or item.pool.lower() != pool.lower()
        ):
            raise InputError(
                f"signature of {item.signer}: signs epoch {item.statement.epoch} root "
                f"0x{item.statement.root.hex()}, not this report's"
            )
        signer = recover_digest(digest, item.signature, f"signature of {item.signer}")
        if signer.lower() != item.signer.lower():
            raise InputError(f"signature of {item.signer}: recovers {signer}")
        if signer.lower() not in allowed:
            raise InputError(f"signature of {signer}: not one of the pool's attesters")
        found.append((signer, Signature.from_bytes(item.signature)))
    ordered = order_by_signer(found, "epoch root signatures")
    if len(ordered) < threshold:
        raise InputError(
            f"epoch {statement.epoch}: {len(ordered)} attester signature(s), "
            f"the pool needs {threshold}"
        )
    return ordered[:threshold]
