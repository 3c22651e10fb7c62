"""Gas of the Market's main operations, from real receipts on a throwaway anvil.

Deploys the real PHA and Market, prices an H100, and drives one scenario: deposits (plain
and with an EIP-2612 permit), leases opened by the customer's own transaction and by its
EIP-712 signature submitted by a control plane, settlements (the provider's first and a
steady one), top-ups (of a running lease and one that resumes a stopped lease), a provider
withdrawal over 100 leases in one transaction, a close and a fee collection. Prints one
JSON line per operation (with the issue's limit where it sets one) and a summary line.

Run: .venv/bin/python bench/market_gas.py [--out bench/results/market_gas.jsonl]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3.contract import Contract

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chainbench import emit, machine, scratch_chain
from veil import atomic
from veil.chain.client import Chain
from veil.chain.compile import compile_contract
from veil.devnet.accounts import devnet_account

PHA = 10**18
H100 = keccak(text="h100")
H100_RATE = 2 * PHA // 3_600
BATCH = 100
#: Limits from issue 13 (gas per operation; the withdrawal's is per lease).
LIMITS = {
    "openLease": 150_000,
    "openLease_later": 150_000,
    "openLeaseFor": 150_000,
    "settle": 45_000,
    "topUp": 50_000,
    "withdrawEarnings_per_lease": 25_000,
}
OPEN_TYPES = {
    "OpenLease": [
        {"name": "customer", "type": "address"},
        {"name": "provider", "type": "address"},
        {"name": "deployment", "type": "bytes32"},
        {"name": "instanceType", "type": "bytes32"},
        {"name": "amount", "type": "uint256"},
        {"name": "maxRate", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
}
PERMIT_TYPES = {
    "Permit": [
        {"name": "owner", "type": "address"},
        {"name": "spender", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
}


def travel(chain: Chain, seconds: int) -> None:
    """Devnet clock: anvil's own RPC, so the bench needs no time travel from the library."""
    chain.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def domain(contract: Contract) -> dict[str, Any]:
    _fields, name, version, chain_id, verifying, _salt, _ext = (
        contract.functions.eip712Domain().call()
    )
    return {"name": name, "version": version, "chainId": chain_id, "verifyingContract": verifying}


def signed(key: LocalAccount, contract: Contract, types: dict, message: dict) -> Any:
    typed = encode_typed_data(
        domain_data=domain(contract), message_types=types, message_data=message
    )
    return Account.sign_message(typed, key.key)


def run() -> list[dict[str, Any]]:
    deployer = devnet_account("deployer")
    customer = devnet_account("alice")
    provider = devnet_account("provider")
    control_plane = devnet_account("bob")
    keeper = devnet_account("carol")
    rows: list[dict[str, Any]] = []
    with scratch_chain() as chain:

        def gas(signer: LocalAccount, call: Any, op: str, per: int = 1) -> int:
            used = int(chain.send(signer, call, op)["gasUsed"])
            row: dict[str, Any] = {"bench": "market_gas", "op": op, "gas": used}
            if per > 1:
                row["leases"] = per
                row["per_lease"] = used // per
                op = f"{op}_per_lease"
                used //= per
            if op in LIMITS:
                row |= {"limit": LIMITS[op], "met": used <= LIMITS[op]}
            rows.append(row)
            return used

        def deploy(name: str, *args: Any) -> Contract:
            artifact = compile_contract(name)
            address, _ = chain.deploy(deployer, artifact, *args)
            return chain.at(address, artifact.abi)

        pha = deploy("PHA")
        market = deploy("Market", pha.address, deployer.address, deployer.address)
        send = chain.send
        send(deployer, pha.functions.setMinter(deployer.address, True), "setMinter")
        send(deployer, market.functions.setPrice(H100, H100_RATE), "setPrice")
        send(deployer, pha.functions.mint(customer.address, 10_000 * PHA), "mint")

        fn = market.functions
        approve = pha.functions.approve(market.address, 1_000 * PHA)
        send(customer, approve, "approve")
        gas(customer, fn.deposit(500 * PHA), "deposit_first")
        gas(customer, fn.deposit(400 * PHA), "deposit")
        deadline = 2**40
        permit = signed(
            customer,
            pha,
            PERMIT_TYPES,
            {
                "owner": customer.address,
                "spender": market.address,
                "value": 50 * PHA,
                "nonce": pha.functions.nonces(customer.address).call(),
                "deadline": deadline,
            },
        )
        permit_args = (50 * PHA, deadline, permit.v, permit.r.to_bytes(32), permit.s.to_bytes(32))
        gas(customer, fn.depositWithPermit(*permit_args), "depositWithPermit")

        def dep(i: int) -> bytes:
            return keccak(text=f"deployment {i}")

        gas(customer, fn.openLease(provider.address, dep(0), H100, 2 * PHA, H100_RATE), "openLease")
        message = {
            "customer": customer.address,
            "provider": provider.address,
            "deployment": dep(1),
            "instanceType": H100,
            "amount": 2 * PHA,
            "maxRate": H100_RATE,
            "deadline": deadline,
        }
        sig = signed(customer, market, OPEN_TYPES, message).signature
        call = fn.openLeaseFor(*message.values(), sig)
        gas(control_plane, call, "openLeaseFor")
        for i in range(2, BATCH):
            send(customer, fn.openLease(provider.address, dep(i), H100, 2 * PHA, H100_RATE), "open")

        ids = [fn.leaseId(customer.address, dep(i)).call() for i in range(BATCH)]
        gas(
            customer,
            fn.openLease(provider.address, dep(BATCH), H100, 2 * PHA, H100_RATE),
            "openLease_later",
        )
        travel(chain, 60)
        gas(keeper, fn.settle(ids[0]), "settle_first_for_provider")
        travel(chain, 60)
        gas(keeper, fn.settle(ids[0]), "settle")
        gas(customer, fn.topUp(ids[0], PHA), "topUp")
        travel(chain, 600)
        gas(provider, fn.withdrawEarnings(ids), "withdrawEarnings", BATCH)
        travel(chain, 2 * 3_600)  # lease 1 runs dry (1 h of funding) and stops billing
        send(keeper, fn.settle(ids[1]), "settle")
        gas(customer, fn.topUp(ids[1], PHA), "topUp_resume")
        gas(customer, fn.closeLease(ids[2]), "closeLease")
        gas(keeper, fn.collectFees([provider.address]), "collectFees")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also append the lines to this JSONL file")
    args = parser.parse_args()
    started = time.monotonic()
    rows = run()
    missed = [r["op"] for r in rows if r.get("met") is False]
    summary = {
        "bench": "market_gas",
        "summary": True,
        "limits_missed": missed,
        "seconds": round(time.monotonic() - started, 1),
        "machine": machine(),
    }
    for row in [*rows, summary]:
        emit(row)
    if args.out:
        previous = args.out.read_text() if args.out.is_file() else ""
        lines = "".join(json.dumps(r) + "\n" for r in [*rows, summary])
        atomic.write_text(args.out, previous + lines)
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
