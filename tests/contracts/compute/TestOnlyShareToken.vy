# pragma version ~=0.4.3
"""
@title TEST-ONLY stand-in for the vPHA vault share token
@notice Used only by tests/contracts/compute/ while contracts/staking/Vault.vy is not
        available: a bare ERC-20 whose decimals are chosen at deploy (the real vault
        has 18 + offset) and that anyone can mint. Never deploy this.
"""

from ethereum.ercs import IERC20

implements: IERC20

name: public(constant(String[32])) = "TEST ONLY vPHA"
symbol: public(constant(String[8])) = "tvPHA"
decimals: public(immutable(uint8))

balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
totalSupply: public(uint256)


@deploy
def __init__(decimals_: uint8):
    """
    @notice Test-only token with `decimals_` decimals.
    """
    decimals = decimals_


@external
def mint(owner: address, amount: uint256):
    """
    @notice Test-only: anyone mints.
    """
    self.balanceOf[owner] += amount
    self.totalSupply += amount
    log IERC20.Transfer(sender=empty(address), receiver=owner, value=amount)


@external
def transfer(to: address, amount: uint256) -> bool:
    """
    @notice ERC-20 transfer.
    """
    self.balanceOf[msg.sender] -= amount
    self.balanceOf[to] += amount
    log IERC20.Transfer(sender=msg.sender, receiver=to, value=amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @notice ERC-20 transferFrom.
    """
    self.allowance[owner][msg.sender] -= amount
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount
    log IERC20.Transfer(sender=owner, receiver=to, value=amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    """
    @notice ERC-20 approve.
    """
    self.allowance[msg.sender][spender] = amount
    log IERC20.Approval(owner=msg.sender, spender=spender, value=amount)
    return True
