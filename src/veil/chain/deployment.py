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
from veil.chain.home import deployments_dir
from veil.errors import InputError


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
    """`deployments/<network>.json` in the working directory, or under $VEIL_DEPLOYMENTS_DIR."""
    return deployments_dir() / f"{network}.json"


def load(path: Path | None = None) -> Deployment:
    """Read a deployment file; one clear line naming the file if it is missing or malformed.

    The shape is checked field by field, so `{}`, `[]` or a truncated file is refused here
    with what is wrong, not later as a KeyError deep inside a command.
    """
    path = path or default_path()
    if not path.exists():
        hint = " (run `veil devnet up`)" if path == default_path() else ""
        raise InputError(f"deployment {path}: not found{hint}")
    if path.is_dir():
        raise InputError(f"deployment {path}: is a directory, not a deployment file")
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"deployment {path}: cannot read ({error})") from error
    except ValueError as error:
        raise InputError(f"deployment {path}: not JSON ({error})") from error
    return _parse(path, raw)


def _parse(path: Path, raw: Any) -> Deployment:
    def bad(what: str) -> InputError:
        return InputError(f"deployment {path}: not a deployment file ({what})")

    if not isinstance(raw, dict):
        raise bad(f"a JSON {type(raw).__name__}, expected an object")
    for key in ("network", "chain_id", "contracts"):
        if key not in raw:
            raise bad(f"no {key!r}")
    if not isinstance(raw["network"], str) or not raw["network"]:
        raise bad("'network' is not a name")
    chain_id = raw["chain_id"]
    if isinstance(chain_id, bool) or not isinstance(chain_id, int) or chain_id <= 0:
        raise bad(f"'chain_id' {chain_id!r} is not a positive integer")
    if not isinstance(raw.get("rpc_url", ""), str):
        raise bad("'rpc_url' is not a string")
    for key in ("contracts", "accounts", "parameters"):
        if not isinstance(raw.get(key, {}), dict):
            raise bad(f"{key!r} is not an object")
    accounts = raw.get("accounts", {})
    if not all(isinstance(v, str) for v in accounts.values()):
        raise bad("an account address is not a string")
    contracts: dict[str, ContractRecord] = {}
    for name, rec in raw["contracts"].items():
        if not isinstance(rec, dict):
            raise bad(f"contract {name!r} is not an object")
        address, abi, block = rec.get("address"), rec.get("abi"), rec.get("block", 0)
        if not isinstance(address, str) or not _is_address(address):
            raise bad(f"contract {name!r} has no address")
        if not isinstance(abi, list) or not all(isinstance(item, dict) for item in abi):
            raise bad(f"contract {name!r} has no ABI list")
        if isinstance(block, bool) or not isinstance(block, int) or block < 0:
            raise bad(f"contract {name!r} block {block!r} is not a block number")
        contracts[name] = ContractRecord(
            address=address, block=block, source_hash=str(rec.get("source_hash", "")), abi=abi
        )
    return Deployment(
        network=raw["network"],
        chain_id=chain_id,
        rpc_url=raw.get("rpc_url", ""),
        contracts=contracts,
        accounts=dict(accounts),
        parameters=raw.get("parameters", {}),
    )


def _is_address(text: str) -> bool:
    """0x and 40 hex digits; the checksum is checked where the address is used."""
    return len(text) == 42 and text[:2] == "0x" and all(c in _HEX for c in text[2:])


_HEX = frozenset("0123456789abcdefABCDEF")
