# pragma version ~=0.4.3
"""
@title Test double: a parameter owned by the timelock
@notice TEST ONLY. Stands in for any veil contract whose setter only its owner
        (the timelock) may call, so tests can prove a proposal really changes it.
"""

owner: public(address)
fee: public(uint256)
received: public(uint256)


@deploy
def __init__(owner: address):
    self.owner = owner


@external
def setFee(new_fee: uint256):
    assert msg.sender == self.owner, "target: only owner"
    self.fee = new_fee


@external
@payable
def receiveValue():
    assert msg.sender == self.owner, "target: only owner"
    self.received += msg.value


@external
def fail():
    raise "target: failed on purpose"
