# pragma version ~=0.4.3
"""
@title Test double: ERC-5805 votes token with an ERC-6372 timestamp clock
@notice TEST ONLY. A minimal, unowned token that lets the Governor's unit tests
        control balances, delegation and vote history without depending on the
        vPHA vault. Anyone may mint: never deploy it outside tests.
        It has vPHA's 24 decimals, so amounts in tests are written at vPHA's scale
        (a double with 18 decimals is how tallies too narrow for vPHA went unseen).
        Unlike the vault it does not cap its supply at 2**160 - 1, so that tests can
        feed the Governor weights no real vPHA holder could have.
"""

decimals: public(constant(uint8)) = 24

struct Checkpoint:
    key: uint256
    value: uint256

balanceOf: public(HashMap[address, uint256])
totalSupply: public(uint256)
delegates: public(HashMap[address, address])

_votes: HashMap[address, DynArray[Checkpoint, 256]]
_supply: DynArray[Checkpoint, 256]


@external
@view
def clock() -> uint48:
    return convert(block.timestamp, uint48)


@external
@view
def CLOCK_MODE() -> String[64]:
    return "mode=timestamp"


@external
def mint(to: address, amount: uint256):
    self.balanceOf[to] += amount
    self.totalSupply += amount
    self._push_supply(self.totalSupply)
    self._move(empty(address), self.delegates[to], amount)


@external
def burn(owner: address, amount: uint256):
    self.balanceOf[owner] -= amount
    self.totalSupply -= amount
    self._push_supply(self.totalSupply)
    self._move(self.delegates[owner], empty(address), amount)


@external
def transfer(to: address, amount: uint256) -> bool:
    self.balanceOf[msg.sender] -= amount
    self.balanceOf[to] += amount
    self._move(self.delegates[msg.sender], self.delegates[to], amount)
    return True


@external
def delegate(delegatee: address):
    old: address = self.delegates[msg.sender]
    self.delegates[msg.sender] = delegatee
    self._move(old, delegatee, self.balanceOf[msg.sender])


@external
@view
def getVotes(account: address) -> uint256:
    return self._latest(self._votes[account])


@external
@view
def getPastVotes(account: address, timepoint: uint256) -> uint256:
    assert timepoint < block.timestamp, "votes: future lookup"
    return self._lookup(self._votes[account], timepoint)


@external
@view
def getPastTotalSupply(timepoint: uint256) -> uint256:
    assert timepoint < block.timestamp, "votes: future lookup"
    return self._lookup(self._supply, timepoint)


@internal
def _move(src: address, dst: address, amount: uint256):
    if src == dst or amount == 0:
        return
    if src != empty(address):
        self._push(src, self._latest(self._votes[src]) - amount)
    if dst != empty(address):
        self._push(dst, self._latest(self._votes[dst]) + amount)


@internal
def _push(account: address, amount: uint256):
    n: uint256 = len(self._votes[account])
    if n != 0 and self._votes[account][n - 1].key == block.timestamp:
        self._votes[account][n - 1].value = amount
    else:
        self._votes[account].append(Checkpoint(key=block.timestamp, value=amount))


@internal
def _push_supply(amount: uint256):
    n: uint256 = len(self._supply)
    if n != 0 and self._supply[n - 1].key == block.timestamp:
        self._supply[n - 1].value = amount
    else:
        self._supply.append(Checkpoint(key=block.timestamp, value=amount))


@internal
@pure
def _latest(history: DynArray[Checkpoint, 256]) -> uint256:
    if len(history) == 0:
        return 0
    return history[len(history) - 1].value


@internal
@pure
def _lookup(history: DynArray[Checkpoint, 256], timepoint: uint256) -> uint256:
    result: uint256 = 0
    for cp: Checkpoint in history:
        if cp.key > timepoint:
            break
        result = cp.value
    return result
