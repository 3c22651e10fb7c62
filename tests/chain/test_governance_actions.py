"""Proposal actions as written on the command line or in a JSON file, and their decoding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_abi import decode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from veil.chain.deployment import ContractRecord, Deployment
from veil.errors import InputError
from veil.governance.governor import decode_calldata, load_actions, parse_action

VAULT = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"
ABI = [
    {"type": "function", "name": name, "inputs": [{"name": arg, "type": kind}]}
    for name, arg, kind in (("setRewardRate", "rate", "uint256"),
                            ("setTreasury", "treasury", "address"))
]  # fmt: skip


@pytest.fixture
def deployment() -> Deployment:
    return Deployment("t", 1, "", {"Vault": ContractRecord(VAULT, 1, "", ABI)})


def test_named_target_and_pha_units(deployment: Deployment) -> None:
    action = parse_action("Vault:setRewardRate(uint256):0.2PHA", deployment)
    assert action.target == VAULT
    assert action.calldata[:4] == function_signature_to_4byte_selector("setRewardRate(uint256)")
    assert decode(["uint256"], action.calldata[4:]) == (2 * 10**17,)
    assert decode_calldata(VAULT, action.calldata, deployment) == (
        "Vault.setRewardRate(rate=200000000000000000)"
    )


def test_address_target_and_address_argument(deployment: Deployment) -> None:
    treasury = "0x" + "ab" * 20
    action = parse_action(f"{VAULT.lower()}:setTreasury(address):{treasury}", deployment)
    assert decode(["address"], action.calldata[4:]) == (treasury,)
    shown = decode_calldata(VAULT, action.calldata, deployment)
    assert shown == f"Vault.setTreasury(treasury='{to_checksum_address(treasury)}')"


def test_unknown_selector_is_named_not_guessed(deployment: Deployment) -> None:
    calldata = function_signature_to_4byte_selector("somethingElse(uint256)") + bytes(32)
    assert "unknown selector" in decode_calldata(VAULT, calldata, deployment)


def test_a_function_the_target_lacks_is_refused_before_proposing(deployment: Deployment) -> None:
    """Issue 8, defect 7: `Vault:setFoo(..)` used to be proposed, voted on and then fail."""
    with pytest.raises(InputError, match=r"Vault has no function setFoo\(uint256\)"):
        parse_action("Vault:setFoo(uint256):1", deployment)
    with pytest.raises(InputError, match=r"did you mean setRewardRate\(uint256\)"):
        parse_action("Vault:setRewardRate(uint128):1", deployment)
    # a target outside the deployment has no known ABI: taken as given
    other = "0x" + "12" * 20
    assert parse_action(f"{other}:anything(uint256):1", deployment).target.lower() == other


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Vault", "expected target:signature:args"),
        ("Nowhere:setRewardRate(uint256):1", "neither an address nor a deployed contract"),
        ("Vault:setRewardRate:1", "not like name(type,...)"),
        ("Vault:setRewardRate(uint256):1,2", "takes 1 arguments, got 2"),
        ("Vault:setRewardRate(uint256):lots", "uint256 argument 'lots'"),
        ("Vault:setTreasury(address):0x12", "not an address"),
        ("Vault:setRewardRate(uint256):0.0000000000000000001PHA", "more than 18 decimals"),
    ],
)
def test_bad_actions_name_the_action(deployment: Deployment, text: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        parse_action(text, deployment)


def test_actions_file(tmp_path: Path, deployment: Deployment) -> None:
    path = tmp_path / "actions.json"
    path.write_text(json.dumps([{"target": "Vault", "signature": "setRewardRate(uint256)",
                                 "args": ["5"]}]))  # fmt: skip
    [action] = load_actions(path, deployment)
    assert decode(["uint256"], action.calldata[4:]) == (5,)
    path.write_text(json.dumps([{"target": "Vault"}]))
    with pytest.raises(InputError, match="entry 0"):
        load_actions(path, deployment)
    path.write_text("{}")
    with pytest.raises(InputError, match="non-empty JSON list"):
        load_actions(path, deployment)
