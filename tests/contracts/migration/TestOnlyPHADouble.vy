# pragma version ~=0.4.3
"""
@title TEST-ONLY double of PHA for the Migrator tests
@notice Implements contracts/interfaces/IPHA.vyi with minters and the 1e27 cap,
        only until contracts/token/PHA.vy exists. Never deploy.
"""

from ....src.veil.contracts.interfaces import IPHA

implements: IPHA

CAP: constant(uint256) = 10**27

owner: public(address)
minters: public(HashMap[address, bool])
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
totalSupply: public(uint256)


@deploy
def __init__():
    self.owner = msg.sender


@external
def setMinter(minter: address, allowed: bool):
    assert msg.sender == self.owner, "double: not owner"
    self.minters[minter] = allowed


@external
def mint(owner: address, amount: uint256):
    assert self.minters[msg.sender], "double: not minter"
    supply: uint256 = self.totalSupply + amount
    assert supply <= CAP, "double: cap"
    self.totalSupply = supply
    self.balanceOf[owner] += amount


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    return True


@external
def transfer(to: address, amount: uint256) -> bool:
    self.balanceOf[msg.sender] -= amount
    self.balanceOf[to] += amount
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    allowed: uint256 = self.allowance[owner][msg.sender]
    if allowed != max_value(uint256):
        self.allowance[owner][msg.sender] = allowed - amount
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount
    return True
