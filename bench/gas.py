"""Gas per operation, veil vs OpenZeppelin 5.x, from real receipts on one anvil.

Both sides are deployed on the same fresh chain and driven through the same scenario:
the same accounts, amounts, order and proposal, so that each ratio compares like with like.
OpenZeppelin's ERC-4626 has no unlock queue; veil's `requestRedeem` and `claim` are each
compared with OpenZeppelin's `redeem`, which does both jobs at once, and their sum is
reported too.  Prints one JSON line per operation and a summary line.

Run: .venv/bin/python bench/gas.py
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chainbench import deploy_reference, emit, machine, reference_artifacts, scratch_chain
from veil.chain.client import event_args
from veil.devnet.accounts import devnet_account
from veil.devnet.client import DevnetChain
from veil.devnet.network import fund_accounts
from veil.network.deploy import NetworkParameters, deploy_network

PHA = 10**18
VOTING_DELAY = 3_600
VOTING_PERIOD = 3 * 86_400
TIMELOCK_DELAY = 86_400
TARGETS = {"vault": 0.85, "vote": 0.85, "default": 1.0}
KIND = {
    "deposit_first": "vault",
    "deposit_later": "vault",
    "redeem_request": "vault",
    "claim": "vault",
    "delegate": "vote",
    "delegated_transfer": "vote",
    "castVote": "vote",
}


@dataclass
class Side:
    """One implementation under test: its four contracts and how to unstake on it."""

    name: str
    token: Contract
    vault: Contract
    governor: Contract
    timelock: Contract


def gas(chain: DevnetChain, signer: LocalAccount, call: Any, label: str) -> int:
    """Gas of one call mined a second after the previous block, on both sides alike:
    vote checkpoints (and reward accrual) cost differently within the same second."""
    chain.advance_time(1)
    return int(chain.send(signer, call, label)["gasUsed"])


def permit_signature(token: Contract, owner: LocalAccount, spender: str, value: int) -> tuple:
    domain = token.functions.eip712Domain().call()
    deadline = 2**48
    nonce = token.functions.nonces(owner.address).call()
    typed = {
        "domain": {
            "name": domain[1],
            "version": domain[2],
            "chainId": domain[3],
            "verifyingContract": domain[4],
        },
        "types": {
            "Permit": [
                {"name": "owner", "type": "address"},
                {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ]
        },
        "primaryType": "Permit",
        "message": {
            "owner": owner.address,
            "spender": spender,
            "value": value,
            "nonce": nonce,
            "deadline": deadline,
        },
    }
    signed = Account.sign_typed_data(owner.key, full_message=typed)
    return (owner.address, spender, value, deadline, signed.v, signed.r.to_bytes(32, "big"),
            signed.s.to_bytes(32, "big"))  # fmt: skip


def deploy_openzeppelin(chain: DevnetChain, deployer: LocalAccount, funded: list[str]) -> Side:
    artifacts = reference_artifacts()["contracts"]

    def deploy(name: str, *args: Any) -> Contract:
        return deploy_reference(chain, deployer, artifacts[name], *args)

    token = deploy("ReferenceToken")
    chain.send(deployer, token.functions.setMinter(deployer.address, True), "setMinter")
    for address in funded:
        chain.send(deployer, token.functions.mint(address, 1_000_000 * PHA), "mint")
    vault = deploy("ReferenceVault", token.address, 6)
    zero = "0x" + "00" * 20
    timelock = deploy("TimelockController", TIMELOCK_DELAY, [], [zero], deployer.address)
    threshold = 10_000 * PHA * 10**6
    governor = deploy(
        "ReferenceGovernor", vault.address, timelock.address, VOTING_DELAY, VOTING_PERIOD,
        threshold, 4,
    )  # fmt: skip
    for role in ("PROPOSER_ROLE", "CANCELLER_ROLE"):
        role_id = timelock.functions[role]().call()
        chain.send(deployer, timelock.functions.grantRole(role_id, governor.address), "grant")
    return Side("openzeppelin", token, vault, governor, timelock)


def deploy_veil(chain: DevnetChain, deployer: LocalAccount, funded: dict[str, str]) -> Side:
    params = NetworkParameters(
        timelock_delay=TIMELOCK_DELAY,
        voting_delay=VOTING_DELAY,
        voting_period=VOTING_PERIOD,
        reward_rate=0,
        reward_reserve_pha=0,
    )
    url = chain.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    deploy_network(chain, deployer, "bench", url, params, genesis_mints=fund_accounts(funded))
    c = chain.contract
    return Side("veil", c("PHA"), c("Vault"), c("Governor"), c("Timelock"))


def unstake(chain: DevnetChain, side: Side, who: LocalAccount, shares: int) -> dict[str, int]:
    """veil queues then claims after the unlock period; OpenZeppelin redeems at once."""
    if side.name == "openzeppelin":
        used = gas(chain, who, side.vault.functions.redeem(shares, who.address, who.address), "r")
        return {"redeem_request": used, "claim": used, "unstake_total": used}
    receipt = chain.send(
        who, side.vault.functions.requestRedeem(shares, who.address, who.address), "request"
    )
    request_id = event_args(side.vault, receipt, "RedeemRequest")["requestId"]
    chain.advance_time(side.vault.functions.unlockPeriod().call() + 1)
    claimed = gas(chain, who, side.vault.functions.claim(request_id), "claim")
    requested = int(receipt["gasUsed"])
    return {"redeem_request": requested, "claim": claimed, "unstake_total": requested + claimed}


def scenario(chain: DevnetChain, side: Side) -> dict[str, int]:
    alice, bob, carol = (devnet_account(n) for n in ("alice", "bob", "carol"))
    t, v, g = side.token, side.vault, side.governor
    out: dict[str, int] = {}
    out["transfer"] = gas(chain, alice, t.functions.transfer(bob.address, 10 * PHA), "transfer")
    permit = permit_signature(t, bob, carol.address, 5 * PHA)
    out["permit"] = gas(chain, carol, t.functions.permit(*permit), "permit")

    for who in (alice, bob):
        chain.send(who, t.functions.approve(v.address, 2**255), "approve")
    out["deposit_first"] = gas(chain, alice, v.functions.deposit(300_000 * PHA, alice.address), "d")
    out["deposit_later"] = gas(chain, alice, v.functions.deposit(100_000 * PHA, alice.address), "d")
    chain.send(bob, v.functions.deposit(50_000 * PHA, bob.address), "deposit bob")
    out["delegate"] = gas(chain, alice, v.functions.delegate(alice.address), "delegate")
    chain.send(bob, v.functions.delegate(bob.address), "delegate bob")
    one_share = v.functions.convertToShares(PHA).call()
    out["delegated_transfer"] = gas(
        chain, alice, v.functions.transfer(bob.address, one_share), "delegated transfer"
    )
    out.update(unstake(chain, side, bob, 1_000 * one_share))

    chain.advance_time(1)  # proposers' votes are read at clock() - 1
    new_threshold = 20_000 * PHA * 10**6
    data = g.encode_abi("setProposalThreshold", args=[new_threshold])
    targets, values, calldatas = [g.address], [0], [bytes.fromhex(data[2:])]
    description = f"raise the proposal threshold ({side.name})"
    out["propose"] = gas(chain, alice, g.functions.propose(targets, values, calldatas, description),
                         "propose")  # fmt: skip
    pid = g.functions.hashProposal(targets, values, calldatas, Web3.keccak(text=description)).call()
    chain.advance_time(VOTING_DELAY + 1)
    out["castVote"] = gas(chain, alice, g.functions.castVote(pid, 1), "castVote")
    chain.advance_time(VOTING_PERIOD + 1)
    dh = Web3.keccak(text=description)
    out["queue"] = gas(chain, alice, g.functions.queue(targets, values, calldatas, dh), "queue")
    chain.advance_time(TIMELOCK_DELAY + 1)
    out["execute"] = gas(chain, alice, g.functions.execute(targets, values, calldatas, dh), "exec")
    if g.functions.proposalThreshold().call() != new_threshold:
        raise SystemExit(f"{side.name}: the executed proposal did not change the threshold")
    return out


def main() -> None:
    started = time.time()
    with scratch_chain() as chain:
        deployer = devnet_account("deployer")
        names = ("alice", "bob", "carol")
        funded = {n: devnet_account(n).address for n in names}
        reference = deploy_openzeppelin(chain, deployer, list(funded.values()))
        veil = deploy_veil(chain, deployer, funded)
        ours = scenario(chain, veil)
        theirs = scenario(chain, reference)
    worst: dict[str, float] = {}
    misses = []
    for op, used in ours.items():
        ratio = used / theirs[op]
        kind = KIND.get(op, "default")
        target = TARGETS[kind]
        met = ratio <= target
        if not met:
            misses.append(op)
        worst[kind] = max(worst.get(kind, 0.0), ratio)
        emit({"bench": "gas", "op": op, "veil": used, "openzeppelin": theirs[op],
              "ratio": round(ratio, 3), "target": target, "met": met})  # fmt: skip
    worst_ratio = {k: round(v, 3) for k, v in worst.items()}
    emit({"bench": "gas", "summary": True, "worst_ratio": worst_ratio,
          "targets_missed": misses, "seconds": round(time.time() - started, 1),
          "machine": machine(), "openzeppelin": "5.7.0"})  # fmt: skip


if __name__ == "__main__":
    main()
