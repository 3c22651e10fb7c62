"""`deployments/<network>.json`: how every program finds the chain and the contracts.

One file per network holds the chain id, the RPC URL it was deployed through, and for each
contract its address, deployment block, source hash and ABI, so a program needs nothing
but this file (and a key) to act, and an auditor can match the source hash to the code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from veil import atomic
from veil.chain.compile import REPO_ROOT
from veil.errors import InputError

DEPLOYMENTS_DIR = REPO_ROOT / "deployments"


@dataclass
class ContractRecord:
    address: str
    block: int
    source_hash: str
    abi: list[dict[str, Any]]


@dataclass
class Deployment:
    network: str
    chain_id: int
    rpc_url: str
    contracts: dict[str, ContractRecord] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)

    def address(self, name: str) -> str:
        try:
            return self.contracts[name].address
        except KeyError:
            raise InputError(
                f"deployment {self.network}: no contract {name!r} "
                f"(has {', '.join(sorted(self.contracts)) or 'none'})"
            ) from None

    def to_json(self) -> dict[str, Any]:
        return {
            "network": self.network,
            "chain_id": self.chain_id,
            "rpc_url": self.rpc_url,
            "accounts": self.accounts,
            "parameters": self.parameters,
            "contracts": {
                name: {
                    "address": rec.address,
                    "block": rec.block,
                    "source_hash": rec.source_hash,
                    "abi": rec.abi,
                }
                for name, rec in self.contracts.items()
            },
        }

    def save(self, path: Path | None = None) -> Path:
        return atomic.write_json(path or default_path(self.network), self.to_json())


def default_path(network: str = "devnet") -> Path:
    return DEPLOYMENTS_DIR / f"{network}.json"


def load(path: Path | None = None) -> Deployment:
    """Read a deployment file; one clear line if it is missing or malformed."""
    path = path or default_path()
    if not path.exists():
        hint = " (run `veil devnet up`)" if path == default_path() else ""
        raise InputError(f"deployment {path}: not found{hint}")
    try:
        raw = json.loads(path.read_text())
        contracts = {
            name: ContractRecord(
                address=rec["address"],
                block=int(rec.get("block", 0)),
                source_hash=rec.get("source_hash", ""),
                abi=rec["abi"],
            )
            for name, rec in raw["contracts"].items()
        }
        return Deployment(
            network=raw["network"],
            chain_id=int(raw["chain_id"]),
            rpc_url=raw.get("rpc_url", ""),
            contracts=contracts,
            accounts=raw.get("accounts", {}),
            parameters=raw.get("parameters", {}),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise InputError(f"deployment {path}: malformed ({error!r})") from error
