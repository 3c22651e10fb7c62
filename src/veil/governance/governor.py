"""Governance as a client sees it: proposal actions in, decoded proposals out.

The Governor keeps only a hash of each proposal (as OpenZeppelin's does); the actions
themselves live in the `ProposalCreated` event, so listing and decoding read the logs.
Actions are written `target:signature:args` where target is a contract name from the
deployment or an address, e.g. `Vault:setRewardRate(uint256):0.2PHA`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector, is_address, to_checksum_address
from web3 import Web3

from veil.chain.addresses import parse_address
from veil.chain.client import Chain
from veil.chain.deployment import Deployment
from veil.chain.units import format_vpha, parse_amount
from veil.errors import InputError

STATES = ("Pending", "Active", "Canceled", "Defeated", "Succeeded", "Queued", "Expired", "Executed")
SUPPORT = {"against": 0, "for": 1, "abstain": 2}
_SIGNATURE = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\((?P<types>[^()]*)\)$")


@dataclass(frozen=True)
class Action:
    target: str
    value: int
    calldata: bytes
    label: str


@dataclass
class Proposal:
    proposal_id: int
    proposer: str
    targets: list[str]
    values: list[int]
    calldatas: list[bytes]
    description: str
    vote_start: int
    vote_end: int
    block: int

    @property
    def description_hash(self) -> bytes:
        return Web3.keccak(text=self.description)


def _split_types(types: str) -> list[str]:
    return [t.strip() for t in types.split(",") if t.strip()]


def _parse_arg(kind: str, text: str, where: str) -> Any:
    text = text.strip()
    try:
        if kind.startswith(("uint", "int")):
            if text.upper().endswith("PHA"):
                return parse_amount(text[:-3], what=where)
            return int(text, 0)
        if kind == "address":
            return parse_address(text, f"{where}: address argument", allow_zero=True)
        if kind == "bool":
            if text.lower() not in ("true", "false"):
                raise ValueError("not true/false")
            return text.lower() == "true"
        if kind.startswith("bytes"):
            return bytes.fromhex(text.removeprefix("0x"))
        if kind == "string":
            return text
    except ValueError as error:
        raise InputError(f"{where}: {kind} argument {text!r}: {error}") from None
    raise InputError(f"{where}: argument type {kind} is not supported on the command line")


def _resolve_target(target: str, deployment: Deployment, where: str) -> str:
    if target.startswith("0x"):
        return parse_address(target, f"{where}: target")
    if target in deployment.contracts:
        return to_checksum_address(deployment.contracts[target].address)
    raise InputError(f"{where}: target {target!r} is neither an address nor a deployed contract")


def build_action(
    target: str, signature: str, args: list[str], value: int, deployment: Deployment, where: str
) -> Action:
    match = _SIGNATURE.match(signature.replace(" ", ""))
    if not match:
        raise InputError(f"{where}: signature {signature!r} is not like name(type,...)")
    types = _split_types(match["types"])
    if len(args) != len(types):
        raise InputError(f"{where}: {signature} takes {len(types)} arguments, got {len(args)}")
    values = [_parse_arg(t, a, where) for t, a in zip(types, args, strict=True)]
    canonical = signature.replace(" ", "")
    selector = function_signature_to_4byte_selector(canonical)
    calldata = selector + abi_encode(types, values)
    address = _resolve_target(target, deployment, where)
    _check_function(address, canonical, deployment, where)
    return Action(address, value, calldata, f"{target}.{signature}({', '.join(args)})")


def _check_function(address: str, signature: str, deployment: Deployment, where: str) -> None:
    """Refuse a call the target cannot take, before it is proposed: a typo found after the
    vote and the timelock costs a week; here it costs nothing. Targets outside the
    deployment (or without an ABI) are taken as given."""
    for name, record in deployment.contracts.items():
        if record.address.lower() != address.lower() or not record.abi:
            continue
        known = [
            f"{item['name']}({','.join(i['type'] for i in item.get('inputs', []))})"
            for item in record.abi
            if item.get("type") == "function"
            and item.get("stateMutability") not in ("view", "pure")
            and not item.get("constant")
        ]
        if signature not in known:
            same = [k for k in known if k.split("(")[0] == signature.split("(")[0]]
            hint = f"; did you mean {', '.join(same)}?" if same else ""
            raise InputError(f"{where}: {name} has no function {signature}{hint}")
        return


def parse_action(text: str, deployment: Deployment) -> Action:
    """`Vault:setRewardRate(uint256):0.2PHA` (args comma-separated, may be empty)."""
    parts = text.split(":", 2)
    if len(parts) < 2:
        raise InputError(f"action {text!r}: expected target:signature:args")
    target, signature = parts[0], parts[1]
    args = [a for a in parts[2].split(",")] if len(parts) == 3 and parts[2] else []
    return build_action(target, signature, args, 0, deployment, f"action {text!r}")


def load_actions(path: Path, deployment: Deployment) -> list[Action]:
    """A JSON list of {target, signature, args, value?} objects."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise InputError(f"actions file {path}: {error}") from None
    if not isinstance(raw, list) or not raw:
        raise InputError(f"actions file {path}: expected a non-empty JSON list")
    actions = []
    for i, item in enumerate(raw):
        where = f"actions file {path} entry {i}"
        try:
            value = int(item.get("value", 0))
            args = [str(a) for a in item.get("args", [])]
            actions.append(
                build_action(item["target"], item["signature"], args, value, deployment, where)
            )
        except (KeyError, TypeError, AttributeError, ValueError) as error:
            raise InputError(f"{where}: {error!r}") from None
    return actions


def check_bounds(chain: Chain, actions: list[Action], description: str) -> None:
    """Refuse what the Governor cannot decode: past its bounds it reverts with no reason."""
    governor = chain.contract("Governor")
    max_actions = governor.functions.MAX_ACTIONS().call()
    max_calldata = governor.functions.MAX_CALLDATA().call()
    max_description = governor.functions.MAX_DESCRIPTION().call()
    if len(actions) > max_actions:
        raise InputError(f"proposal: {len(actions)} actions, the Governor takes {max_actions}")
    for action in actions:
        if len(action.calldata) > max_calldata:
            raise InputError(
                f"action {action.label}: {len(action.calldata)} bytes of calldata, "
                f"the Governor takes {max_calldata}"
            )
    if len(description.encode()) > max_description:
        raise InputError(
            f"proposal: description of {len(description.encode())} bytes, "
            f"the Governor takes {max_description}"
        )


def decode_calldata(target: str, calldata: bytes, deployment: Deployment) -> str:
    """Name the contract and function and show the arguments, from the deployment's ABIs."""
    selector = calldata[:4]
    for name, record in deployment.contracts.items():
        if record.address.lower() != target.lower():
            continue
        for item in record.abi:
            if item.get("type") != "function":
                continue
            types = [i["type"] for i in item["inputs"]]
            signature = f"{item['name']}({','.join(types)})"
            if function_signature_to_4byte_selector(signature) == selector:
                values = abi_decode(types, calldata[4:])
                shown = ", ".join(
                    f"{i['name']}={_show(v)}" for i, v in zip(item["inputs"], values, strict=True)
                )
                return f"{name}.{item['name']}({shown})"
        return f"{name}: unknown selector 0x{selector.hex()} ({len(calldata)} bytes)"
    return f"{target}: 0x{calldata.hex()}"


def _show(value: Any) -> str:
    """Bytes as 0x-hex (a root or hash reads as one), everything else as Python shows it."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str) and is_address(value):
        return repr(to_checksum_address(value))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return repr(value)


def proposals(chain: Chain) -> list[Proposal]:
    """Every proposal ever created, from the Governor's ProposalCreated events."""
    governor = chain.contract("Governor")
    assert chain.deployment is not None
    start = chain.deployment.contracts["Governor"].block
    logs = governor.events.ProposalCreated().get_logs(from_block=start)
    found = []
    for log in logs:
        a = log["args"]
        found.append(
            Proposal(
                proposal_id=a["proposalId"],
                proposer=a["proposer"],
                targets=list(a["targets"]),
                values=list(a["values"]),
                calldatas=[bytes(c) for c in a["calldatas"]],
                description=a["description"],
                vote_start=a["voteStart"],
                vote_end=a["voteEnd"],
                block=log["blockNumber"],
            )
        )
    return found


#: Below this, a proposal reference is its number in creation order (#1, #2, ...); a real
#: proposal id is a keccak256 hash, so it is never this small.
MAX_NUMBER = 2**64


def find_proposal(chain: Chain, proposal: int | str) -> tuple[int, Proposal]:
    """A proposal by its short number (`3` or `#3`, as `gov list` shows) or its full id;
    returns (number, proposal)."""
    wanted = parse_proposal_id(proposal) if isinstance(proposal, str) else proposal
    found = proposals(chain)
    if wanted < MAX_NUMBER:
        if 1 <= wanted <= len(found):
            return wanted, found[wanted - 1]
        raise InputError(
            f"proposal #{wanted}: no such proposal on this Governor ({len(found)} so far)"
        )
    for number, candidate in enumerate(found, start=1):
        if candidate.proposal_id == wanted:
            return number, candidate
    raise InputError(f"proposal {wanted}: no such proposal on this Governor")


def parse_proposal_id(text: str) -> int:
    """`#3`, `3`, a full decimal id, or a 0x-hex id."""
    try:
        value = int(text.removeprefix("#"), 0)
    except ValueError:
        raise InputError(
            f"proposal {text!r}: expected a number from `veil gov list` (like 3) or a full id"
        ) from None
    if value < 0:
        raise InputError(f"proposal {text!r}: must not be negative")
    return value


def check_threshold(chain: Chain, proposer: str) -> None:
    """Refuse a proposal the Governor would revert, saying by how much the proposer is short."""
    governor = chain.contract("Governor")
    threshold = int(governor.functions.proposalThreshold().call())
    if threshold == 0:
        return
    votes = int(chain.contract("Vault").functions.getVotes(proposer).call())
    if votes < threshold:
        raise InputError(
            f"proposal: proposer votes below threshold: {proposer} has "
            f"{format_vpha(votes)} of votes, proposing takes {format_vpha(threshold)}"
            " (votes come from vPHA delegated to you: `veil gov delegate self`)"
        )
