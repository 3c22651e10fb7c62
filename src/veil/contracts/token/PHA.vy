# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title PHA, the Phala Network token on the L2
@custom:contract-name PHA
@license MIT
@notice ERC-20 ("Phala", "PHA", 18 decimals) with EIP-2612 permit and ERC-5267
        domain introspection. Minting is capped for the token's lifetime: at most
        1,000,000,000 PHA can ever be minted, counted cumulatively (`totalMinted`),
        so burning PHA destroys it for good and does not make room for new PHA. That
        is what holders read "1 B PHA, ever" to mean, and it leaves room to migrate
        the parachain's 1 B issuance 1:1 and nothing beyond it. Only minters can
        mint: the Migrator for verified claims (named at deployment, `MIGRATOR`),
        and governance-funded reserves the owner (the timelock after deployment)
        appoints. The owner can dismiss the Migrator like any other minter.
@dev Written without snekmate's erc20 module on purpose: that module keeps a role
     system and hooks that a fixed-cap token does not need, and the gas benchmark
     compares transfer and permit with OpenZeppelin 5.x. Storage is one slot per
     balance, allowance and nonce, and one slot for the supply: totalSupply (bits
     0..127) | totalMinted (128..255), so a mint reads and writes one slot, as a
     plain supply cap would (both stay <= CAP < 2**127); the EIP-712 domain separator is an immutable that is
     recomputed only if the chain id ever changes (a fork).

     The Migrator's minter right is an immutable plus one bit of the supply slot (bit
     255, set when the owner dismisses it), not a `HashMap` entry: a claim's mint reads
     the supply slot anyway, so the Migrator is checked without a cold storage read
     (2,100 gas on every claim). The deployer predicts the Migrator's address (it is
     deployed two transactions after PHA).
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed

implements: IERC20
implements: IERC20Detailed


# @dev ERC-5267: the EIP-712 domain fields that are set (name, version, chainId,
# verifyingContract).
interface IERC5267:
    def eip712Domain() -> (bytes1, String[50], String[20], uint256, address, bytes32, DynArray[uint256, 32]): view


implements: IERC5267


event MinterSet:
    minter: indexed(address)
    allowed: bool


event OwnershipTransferred:
    previous_owner: indexed(address)
    new_owner: indexed(address)


name: public(constant(String[25])) = "Phala"
symbol: public(constant(String[5])) = "PHA"
decimals: public(constant(uint8)) = 18

# @notice The lifetime cap on minting: 1,000,000,000 PHA in wei, ever.
CAP: constant(uint256) = 10**27
_MINTED_SHIFT: constant(uint256) = 128
_SUPPLY_MASK: constant(uint256) = (1 << 128) - 1
_MINTED_MASK: constant(uint256) = (1 << 127) - 1
# Set in `_supply` while the Migrator is dismissed as a minter.
_MIGRATOR_DISMISSED: constant(uint256) = 1 << 255

_VERSION: constant(String[20]) = "1"
_TYPE_HASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
_PERMIT_TYPE_HASH: constant(bytes32) = keccak256(
    "Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"
)
# @dev Upper bound of a canonical (low-s) secp256k1 signature, EIP-2.
_MAX_S: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168

_CACHED_CHAIN_ID: immutable(uint256)
_CACHED_DOMAIN_SEPARATOR: immutable(bytes32)

# @notice The Migrator, a minter from deployment on (zero if none was named).
MIGRATOR: public(immutable(address))

balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
_supply: uint256
nonces: public(HashMap[address, uint256])
_minters: HashMap[address, bool]
owner: public(address)


@deploy
def __init__(migrator: address):
    """
    @notice The deployer becomes the owner; the deploy script appoints other minters
            and then hands ownership to the timelock.
    @param migrator The Migrator, a minter from the start (zero for none).
    """
    _CACHED_CHAIN_ID = chain.id
    _CACHED_DOMAIN_SEPARATOR = self._build_domain_separator()
    MIGRATOR = migrator
    self.owner = msg.sender
    log OwnershipTransferred(previous_owner=empty(address), new_owner=msg.sender)
    if migrator != empty(address):
        log MinterSet(minter=migrator, allowed=True)


@external
def transfer(to: address, amount: uint256) -> bool:
    """
    @notice Move `amount` wei of PHA from the caller to `to`.
    @param to The recipient; not the zero address (use `burn`).
    @param amount The amount in wei.
    @return bool Always true; failures revert.
    """
    self._transfer(msg.sender, to, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    """
    @notice Allow `spender` to move up to `amount` of the caller's PHA.
    @dev An allowance of max_value(uint256) is infinite and never decreases.
    @param spender The account allowed to spend.
    @param amount The new allowance (replaces the old one).
    @return bool Always true.
    """
    self._approve(msg.sender, spender, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @notice Move `amount` from `owner` to `to` using the caller's allowance.
    @param owner The account whose PHA moves.
    @param to The recipient.
    @param amount The amount in wei.
    @return bool Always true; failures revert.
    """
    self._spend_allowance(owner, msg.sender, amount)
    self._transfer(owner, to, amount)
    return True


@external
def burn(amount: uint256):
    """
    @notice Destroy `amount` of the caller's PHA for good: the lifetime cap counts
            what was minted, so burned PHA cannot be minted again.
    @param amount The amount in wei.
    """
    self._burn(msg.sender, amount)


@external
def burnFrom(owner: address, amount: uint256):
    """
    @notice Destroy `amount` of `owner`'s PHA using the caller's allowance.
    @param owner The account whose PHA is burned.
    @param amount The amount in wei.
    """
    self._spend_allowance(owner, msg.sender, amount)
    self._burn(owner, amount)


@external
def mint(owner: address, amount: uint256):
    """
    @notice Create `amount` PHA for `owner`. Only an appointed minter may call it,
            and everything ever minted (`totalMinted`, burns not deducted) can
            never pass `cap()`.
    @param owner The recipient of the new PHA.
    @param amount The amount in wei.
    """
    packed: uint256 = self._supply
    if msg.sender != MIGRATOR or packed & _MIGRATOR_DISMISSED != 0:
        assert self._minters[msg.sender], "PHA: caller is not a minter"
    assert owner != empty(address), "PHA: mint to the zero address"
    minted: uint256 = ((packed >> _MINTED_SHIFT) & _MINTED_MASK) + amount
    assert minted <= CAP, "PHA: cap exceeded"
    # totalSupply <= totalMinted <= CAP < 2**127: neither half carries over.
    self._supply = (
        (packed & _MIGRATOR_DISMISSED) | (minted << _MINTED_SHIFT) | ((packed & _SUPPLY_MASK) + amount)
    )
    # Cannot overflow: a balance never exceeds the total supply, which is <= CAP.
    self.balanceOf[owner] = unsafe_add(self.balanceOf[owner], amount)
    log IERC20.Transfer(sender=empty(address), receiver=owner, value=amount)


@external
def setMinter(minter: address, allowed: bool):
    """
    @notice Appoint (`allowed` true) or dismiss a minter. Owner (the timelock) only.
    @param minter The account to appoint or dismiss.
    @param allowed Whether it may mint.
    """
    self._check_owner()
    assert minter != empty(address), "PHA: minter is the zero address"
    if minter == MIGRATOR:
        if allowed:
            self._supply &= ~_MIGRATOR_DISMISSED
        else:
            self._supply |= _MIGRATOR_DISMISSED
    else:
        self._minters[minter] = allowed
    log MinterSet(minter=minter, allowed=allowed)


@view
@external
def isMinter(account: address) -> bool:
    """
    @notice Whether `account` may mint.
    @param account Any address.
    @return bool True for an appointed minter, and for the Migrator unless dismissed.
    """
    if account == MIGRATOR and account != empty(address):
        return self._supply & _MIGRATOR_DISMISSED == 0
    return self._minters[account]


@external
def transferOwnership(new_owner: address):
    """
    @notice Hand ownership (minter appointment) to `new_owner`. Owner only.
    @param new_owner The new owner; not the zero address.
    """
    self._transfer_ownership(new_owner)


@external
def transfer_ownership(new_owner: address):
    """
    @notice Same as `transferOwnership`, under snekmate's name, which the deploy
            tooling of the other veil contracts uses.
    @param new_owner The new owner; not the zero address.
    """
    self._transfer_ownership(new_owner)


@external
def permit(
    owner: address,
    spender: address,
    amount: uint256,
    deadline: uint256,
    v: uint8,
    r: bytes32,
    s: bytes32,
):
    """
    @notice EIP-2612: set `spender`'s allowance over `owner`'s PHA with `owner`'s
            EIP-712 signature instead of a transaction from `owner`.
    @param owner The account that signed.
    @param spender The account allowed to spend.
    @param amount The allowance.
    @param deadline Last valid block timestamp.
    @param v Signature recovery id (27 or 28).
    @param r Signature r.
    @param s Signature s (low half only).
    """
    assert block.timestamp <= deadline, "PHA: permit expired"
    nonce: uint256 = self.nonces[owner]
    digest: bytes32 = keccak256(
        concat(
            b"\x19\x01",
            self._domain_separator(),
            keccak256(abi_encode(_PERMIT_TYPE_HASH, owner, spender, amount, nonce, deadline)),
        )
    )
    assert convert(s, uint256) <= _MAX_S, "PHA: invalid signature"
    signer: address = ecrecover(digest, v, r, s)
    assert signer == owner and signer != empty(address), "PHA: invalid signature"
    self.nonces[owner] = unsafe_add(nonce, 1)
    self._approve(owner, spender, amount)


@view
@external
def cap() -> uint256:
    """
    @notice The lifetime cap on minting, 1e27 wei (1,000,000,000 PHA): `totalMinted`
            never exceeds it, and so neither does `totalSupply`.
    @return uint256 The cap in wei.
    """
    return CAP


@view
@external
def totalSupply() -> uint256:
    """
    @notice PHA in existence: everything minted minus everything burned.
    @return uint256 The total supply in wei.
    """
    return self._supply & _SUPPLY_MASK


@view
@external
def totalMinted() -> uint256:
    """
    @notice PHA ever minted, burns not deducted; what the lifetime cap counts, so
            `cap() - totalMinted()` is all the PHA that can still be created.
    @return uint256 The cumulative minted amount in wei.
    """
    return (self._supply >> _MINTED_SHIFT) & _MINTED_MASK


@view
@external
def DOMAIN_SEPARATOR() -> bytes32:
    """
    @notice The EIP-712 domain separator that permit signatures are bound to.
    @return bytes32 The separator for the current chain.
    """
    return self._domain_separator()


@view
@external
def eip712Domain() -> (bytes1, String[50], String[20], uint256, address, bytes32, DynArray[uint256, 32]):
    """
    @notice ERC-5267: the EIP-712 domain, so wallets can show what a permit is for.
    @return bytes1 Fields present (0x0f: name, version, chainId, verifyingContract).
    @return String The domain name ("Phala").
    @return String The domain version ("1").
    @return uint256 The chain id.
    @return address This contract.
    @return bytes32 Salt (unused, zero).
    @return DynArray Extensions (none).
    """
    return (0x0f, name, _VERSION, chain.id, self, empty(bytes32), empty(DynArray[uint256, 32]))


@internal
def _transfer(owner: address, to: address, amount: uint256):
    assert to != empty(address), "PHA: transfer to the zero address"
    balance: uint256 = self.balanceOf[owner]
    assert balance >= amount, "PHA: transfer amount exceeds balance"
    self.balanceOf[owner] = unsafe_sub(balance, amount)
    # Cannot overflow: the sum of all balances is the total supply, <= CAP.
    self.balanceOf[to] = unsafe_add(self.balanceOf[to], amount)
    log IERC20.Transfer(sender=owner, receiver=to, value=amount)


@internal
def _burn(owner: address, amount: uint256):
    balance: uint256 = self.balanceOf[owner]
    assert balance >= amount, "PHA: burn amount exceeds balance"
    self.balanceOf[owner] = unsafe_sub(balance, amount)
    # Only the supply half shrinks: amount <= balance <= totalSupply, so no borrow
    # reaches totalMinted.
    self._supply = unsafe_sub(self._supply, amount)
    log IERC20.Transfer(sender=owner, receiver=empty(address), value=amount)


@internal
def _approve(owner: address, spender: address, amount: uint256):
    assert spender != empty(address), "PHA: approve to the zero address"
    self.allowance[owner][spender] = amount
    log IERC20.Approval(owner=owner, spender=spender, value=amount)


@internal
def _spend_allowance(owner: address, spender: address, amount: uint256):
    allowed: uint256 = self.allowance[owner][spender]
    if allowed != max_value(uint256):
        assert allowed >= amount, "PHA: insufficient allowance"
        self.allowance[owner][spender] = unsafe_sub(allowed, amount)


@internal
def _check_owner():
    assert msg.sender == self.owner, "PHA: caller is not the owner"


@internal
def _transfer_ownership(new_owner: address):
    self._check_owner()
    assert new_owner != empty(address), "PHA: new owner is the zero address"
    previous: address = self.owner
    self.owner = new_owner
    log OwnershipTransferred(previous_owner=previous, new_owner=new_owner)


@view
@internal
def _domain_separator() -> bytes32:
    if chain.id == _CACHED_CHAIN_ID:
        return _CACHED_DOMAIN_SEPARATOR
    return self._build_domain_separator()


@view
@internal
def _build_domain_separator() -> bytes32:
    return keccak256(
        abi_encode(_TYPE_HASH, keccak256(name), keccak256(_VERSION), chain.id, self)
    )
