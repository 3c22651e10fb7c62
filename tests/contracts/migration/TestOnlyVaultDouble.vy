# pragma version ~=0.4.3
"""
@title TEST-ONLY double of the vPHA vault for the Migrator tests
@notice Implements contracts/interfaces/IVault.vyi with 1:1 shares, only until
        contracts/staking/Vault.vy exists. Never deploy.
"""

from ....contracts.interfaces import IPHA
from ....contracts.interfaces import IVault

implements: IVault

asset: public(address)
balanceOf: public(HashMap[address, uint256])
totalSupply: public(uint256)


@deploy
def __init__(asset: address, owner: address, treasury: address):
    self.asset = asset


@external
def deposit(assets: uint256, receiver: address) -> uint256:
    extcall IPHA(self.asset).transferFrom(msg.sender, self, assets)
    self.balanceOf[receiver] += assets
    self.totalSupply += assets
    return assets


@external
def transfer(to: address, amount: uint256) -> bool:
    self.balanceOf[msg.sender] -= amount
    self.balanceOf[to] += amount
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    raise "double: not supported"


@view
@external
def convertToAssets(shares: uint256) -> uint256:
    return shares


@view
@external
def convertToShares(assets: uint256) -> uint256:
    return assets
