# pragma version ~=0.4.3
"""
@title TEST-ONLY double of the vPHA vault for the Migrator tests
@notice Implements contracts/interfaces/IVault.vyi with 1:1 shares, so the Migrator
        tests can run without the real vault (VEIL_MIGRATOR_DOUBLES=1). `dustBelow`
        stands in for a share price so high that small deposits mint no share: like
        the real vault, previewDeposit is then 0 and a deposit reverts. Never deploy.
"""

from ....src.veil.contracts.interfaces import IPHA
from ....src.veil.contracts.interfaces import IVault

implements: IVault

asset: public(address)
balanceOf: public(HashMap[address, uint256])
totalSupply: public(uint256)
delegates: public(HashMap[address, address])
chose: public(HashMap[address, bool])
getVotes: public(HashMap[address, uint256])
dustBelow: public(uint256)


@deploy
def __init__(asset: address, owner: address, treasury: address):
    self.asset = asset


@external
def setDustBelow(amount: uint256):
    self.dustBelow = amount


@external
def delegate(delegatee: address):
    old: address = self.delegates[msg.sender]
    if old != empty(address):
        self.getVotes[old] -= self.balanceOf[msg.sender]
    self.delegates[msg.sender] = delegatee
    self.chose[msg.sender] = True
    if delegatee != empty(address):
        self.getVotes[delegatee] += self.balanceOf[msg.sender]


@internal
def _deposit(assets: uint256, receiver: address, self_delegate: bool) -> uint256:
    assert assets >= self.dustBelow and assets != 0, "double: deposit too small for one share"
    extcall IPHA(self.asset).transferFrom(msg.sender, self, assets)
    if self_delegate and not self.chose[receiver]:
        self.chose[receiver] = True
        self.delegates[receiver] = receiver
    self.balanceOf[receiver] += assets
    self.totalSupply += assets
    delegatee: address = self.delegates[receiver]
    if delegatee != empty(address):
        self.getVotes[delegatee] += assets
    return assets


@external
def deposit(assets: uint256, receiver: address) -> uint256:
    return self._deposit(assets, receiver, False)


@external
def depositAndDelegate(assets: uint256, receiver: address) -> uint256:
    return self._deposit(assets, receiver, True)


@view
@external
def previewDeposit(assets: uint256) -> uint256:
    if assets < self.dustBelow:
        return 0
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
