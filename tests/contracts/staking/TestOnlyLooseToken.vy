# pragma version ~=0.4.3
"""
@title Test-only ERC-20 without a cap, that can be told to return false
@notice Lets the vault tests reach the packing bounds (more than 2**96 wei, which real
        PHA's 1e27 cap never allows) and the "transfer returned false" paths.
        Never deployed outside tests.
"""

balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
totalSupply: public(uint256)
failing: public(bool)


@external
def mint(to: address, amount: uint256):
    """
    @notice Anyone mints: test-only.
    @param to Recipient.
    @param amount Amount.
    """
    self.balanceOf[to] += amount
    self.totalSupply += amount


@external
def setFailing(failing: bool):
    """
    @notice Make transfer and transferFrom return false without moving anything.
    @param failing Whether to fail.
    """
    self.failing = failing


@external
def approve(spender: address, amount: uint256) -> bool:
    """
    @notice Set an allowance.
    @param spender Spender.
    @param amount Allowance.
    @return bool True.
    """
    self.allowance[msg.sender][spender] = amount
    return True


@external
def transfer(to: address, amount: uint256) -> bool:
    """
    @notice Move tokens, or return false when failing.
    @param to Recipient.
    @param amount Amount.
    @return bool Whether it moved.
    """
    if self.failing:
        return False
    self.balanceOf[msg.sender] -= amount
    self.balanceOf[to] += amount
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @notice Move tokens with an allowance, or return false when failing.
    @param owner Source.
    @param to Recipient.
    @param amount Amount.
    @return bool Whether it moved.
    """
    if self.failing:
        return False
    self.allowance[owner][msg.sender] -= amount
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount
    return True
