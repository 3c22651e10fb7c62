"""Staking as a holder does it: deposit PHA, queue an unlock, cancel it, claim it.

The vault fixes the PHA owed when an unlock is requested, so a request is described by
assets (exact wei) and the time it becomes claimable; shares are what was burned.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from web3 import Web3

from veil.chain.client import Chain, event_args
from veil.chain.units import format_amount, format_vpha
from veil.errors import InputError

STATUS = {0: "none", 1: "pending", 2: "claimed", 3: "cancelled"}


@dataclass(frozen=True)
class UnlockRequest:
    request_id: int
    controller: str
    assets: int
    shares: int
    claimable_at: int

    def ready(self, now: int) -> bool:
        return now >= self.claimable_at


@dataclass(frozen=True)
class Position:
    address: str
    pha: int
    shares: int
    staked_value: int
    votes: int
    delegate: str
    requests: list[UnlockRequest]


def deposit(chain: Chain, signer: LocalAccount, assets: int, receiver: str | None = None) -> int:
    """Approve (only if needed) and deposit; returns the vPHA shares minted."""
    if assets <= 0:
        raise InputError("deposit: amount must be positive")
    pha, vault = chain.contract("PHA"), chain.contract("Vault")
    balance = pha.functions.balanceOf(signer.address).call()
    if balance < assets:
        raise InputError(
            f"deposit: needs {format_amount(assets)}, {signer.address} holds "
            f"{format_amount(balance)}"
        )
    if pha.functions.allowance(signer.address, vault.address).call() < assets:
        chain.send(signer, pha.functions.approve(vault.address, assets), "PHA.approve")
    to = Web3.to_checksum_address(receiver or signer.address)
    receipt = chain.send(signer, vault.functions.deposit(assets, to), "Vault.deposit")
    return int(event_args(vault, receipt, "Deposit")["shares"])


def request_unlock(
    chain: Chain, signer: LocalAccount, *, assets: int | None = None, all_shares: bool = False
) -> UnlockRequest:
    """Queue an unlock of `assets` PHA (shares rounded up) or of every share held."""
    vault = chain.contract("Vault")
    held = vault.functions.balanceOf(signer.address).call()
    if all_shares:
        shares = held
    elif assets is not None:
        shares = shares_for_at_least(chain, assets)
    else:
        raise InputError("request-unlock: give an amount or --all")
    if shares == 0:
        raise InputError("request-unlock: nothing to unlock")
    if shares > held:
        raise InputError(
            f"request-unlock: needs {format_vpha(shares)}, {signer.address} holds "
            f"{format_vpha(held)}"
        )
    call = vault.functions.requestRedeem(shares, signer.address, signer.address)
    receipt = chain.send(signer, call, "Vault.requestRedeem")
    request_id = event_args(vault, receipt, "RedeemRequest")["requestId"]
    return read_request(chain, request_id)


def shares_for_at_least(chain: Chain, assets: int) -> int:
    """The fewest shares whose unlock request queues at least `assets` PHA at today's
    price. The vault's previewWithdraw reverts (ERC-7540: a request's price is fixed when
    it is made), so the rounding up is done here from the two exact conversions. Rewards
    only raise the price before the request is mined, so it still covers `assets`."""
    vault = chain.contract("Vault")
    shares = vault.functions.convertToShares(assets).call()
    if vault.functions.convertToAssets(shares).call() < assets:
        shares += 1
    return int(shares)


def cancel(chain: Chain, signer: LocalAccount, request_id: int) -> int:
    """Cancel a pending request; returns the shares minted back at the current price."""
    vault = chain.contract("Vault")
    before = vault.functions.balanceOf(signer.address).call()
    chain.send(signer, vault.functions.cancelRedeemRequest(request_id), "Vault.cancelRedeemRequest")
    return int(vault.functions.balanceOf(signer.address).call() - before)


def claim(chain: Chain, signer: LocalAccount, request_id: int) -> int:
    """Claim a matured request; returns the PHA paid."""
    pha, vault = chain.contract("PHA"), chain.contract("Vault")
    request = read_request(chain, request_id)
    before = pha.functions.balanceOf(request.controller).call()
    chain.send(signer, vault.functions.claim(request_id), "Vault.claim")
    return int(pha.functions.balanceOf(request.controller).call() - before)


def read_request(chain: Chain, request_id: int) -> UnlockRequest:
    vault = chain.contract("Vault")
    controller, assets, shares, claimable_at = vault.functions.redeemRequest(request_id).call()[:4]
    if int(controller, 16) == 0:
        raise InputError(f"unlock request {request_id}: no such request")
    return UnlockRequest(request_id, controller, assets, shares, claimable_at)


def open_requests(chain: Chain, owner: str) -> list[UnlockRequest]:
    vault = chain.contract("Vault")
    ids = vault.functions.openRequests(Web3.to_checksum_address(owner)).call()
    return [read_request(chain, i) for i in ids]


def position(chain: Chain, address: str) -> Position:
    pha, vault = chain.contract("PHA"), chain.contract("Vault")
    who = Web3.to_checksum_address(address)
    shares = vault.functions.balanceOf(who).call()
    return Position(
        address=who,
        pha=pha.functions.balanceOf(who).call(),
        shares=shares,
        staked_value=vault.functions.convertToAssets(shares).call(),
        votes=vault.functions.getVotes(who).call(),
        delegate=vault.functions.delegates(who).call(),
        requests=open_requests(chain, who),
    )
