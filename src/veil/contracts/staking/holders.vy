# pragma version ~=0.4.3
"""
@title The two packed storage words every vPHA holder has
@custom:contract-name holders
@license MIT
@notice Storage only, shared by the vault's ERC-20 core, its votes and its unlock queue.
        It is a module of its own because each word serves two of them: packing them is
        what keeps a transfer, a mint, a burn and an unlock request at one storage slot
        per account (the gas benchmark against OpenZeppelin depends on it).
@dev   balances shares(160) | ... | chosen(1, bit 253) | delegation mode(2, top bits):
                none, self or another delegate, so a transfer, mint or burn learns the
                delegate from the slot it already reads and loads `accounts` only for
                delegation to someone else. `chosen` records that the holder called
                delegate/delegateBySig, even to zero, so depositAndDelegate never
                overrides a choice.
       accounts delegate(160) | unlock queue head(40) | tail(40) | count(16): the queue
                of a controller shares the slot its delegation already uses. The
                delegate field is meaningful only in the other-delegate mode (self mode
                may be set by depositAndDelegate without touching this word).
"""

SELF_DELEGATED: constant(uint256) = 2**254  # the delegate is the holder itself
OTHER_DELEGATED: constant(uint256) = 2**255  # the delegate is in `account`
MODES: constant(uint256) = 2**255 | 2**254
CHOSEN: constant(uint256) = 2**253  # the holder has chosen a delegate (maybe zero)

balances: HashMap[address, uint256]
accounts: HashMap[address, uint256]
