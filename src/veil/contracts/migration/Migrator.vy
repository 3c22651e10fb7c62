# pragma version ~=0.4.3
"""
@title veil Migrator
@custom:contract-name Migrator
@license MIT
@notice Pays out the parachain snapshot on the L2: each Merkle leaf
        (index, account id, free wei, staked wei) is paid once, to the
        receiver that a threshold of registered attesters bound to the
        account with an EIP-712
        `Binding(bytes32 account,address receiver,bytes32 signatureHash)`.
        `free` is paid as PHA to the receiver out of the PHA this contract
        holds for free claims (minted to it when the root is committed);
        `staked` is minted to this contract and deposited into the vPHA vault for the receiver with
        `depositAndDelegate`, so the receiver is staked, and votes (a
        receiver that never chose a delegate is self-delegated; one that
        chose keeps its choice), from that block on. A staked part too small
        for one vPHA share (`previewDeposit` is 0, so a deposit would revert
        and freeze the whole leaf) is paid as PHA instead, and
        `StakePaidAsPHA` says so.

        Leaves are OpenZeppelin `StandardMerkleTree` leaves of types
        ["uint256","bytes32","uint256","uint256"]:
        keccak256(keccak256(abi.encode(index, account, free, staked))),
        with sorted-pair hashing.

        Rules, all enforced here:
        - Root: the owner (the timelock) sets the root with the committed
          totals and a deadline. The root can be replaced only until the
          first claim; after that it is frozen, because replacing it would
          let leaves of two trees be paid against one set of totals.
        - Conservation: for free and for staked separately,
          claimed + swept + remaining == committed total, all >= 0, so a
          root that commits smaller totals than its leaves can never pay
          more than it committed. Free: `setRoot` mints the committed free
          total to this contract (a replacement root mints or burns the
          difference), and a claim transfers from that balance, so the
          token's own balance check is the bound and a free claim writes no
          state of this contract. Staked: a claim debits `remaining staked`
          in the state word and mints only then. PHA that anyone else sends
          here joins the free balance and goes to the treasury at the sweep.
        - Attestations: checked by the shared `attester_set` module (the same
          rules as every attested statement in veil): EIP-2098 compact
          signatures sorted by strictly increasing signer, each a registered
          attester, low-s only, at least `threshold` of them. The attester set
          is scoped to the current root.
        - The holder's signature: the contract cannot verify sr25519 or
          ed25519 (the attesters do), but the binding the attesters sign
          covers it: signatureHash = keccak256(scheme ++ signature), the
          scheme as one byte (0 ed25519, 1 sr25519, 2 ecdsa: Substrate's
          MultiSignature variant, so this is the hash of the SCALE-encoded
          MultiSignature) followed by the bare 64-byte (ed25519, sr25519)
          or 65-byte (ecdsa) signature. The contract recomputes it from the
          signature in the calldata, so a claim that carries any other
          signature than the one the attesters checked reverts, and the
          signature that `Claimed` publishes is always the one they
          verified: anyone can re-verify every claim later.
        - After the deadline, claims stop. The owner may `sweep` the
          remaining amounts once (minted to the treasury as PHA) and may
          still honour late claims with `honourLateClaim`: before the sweep
          it mints from `remaining` like a claim; after the sweep it pulls
          the amount back from the treasury (which must have approved this
          contract) and debits `swept`, so claimed + swept never exceeds the
          committed totals.
        - Batches: `claimMany` takes an OpenZeppelin multiproof with its
          proof flags packed into one uint256 (flag i in bit i).

        Gas layout: remaining staked, deadline and the paused/frozen/swept
        flags share one storage slot (the state word). The root and the
        attester registry are checked with one lookup per signer: the
        attester set is scoped to the root (`setRoot` moves it), and a claim
        looks each signer up under the root its proof computes, so a wrong
        proof or an unknown signer both find nothing (the revert reason then
        says which). That lookup also yields the threshold and this
        contract's tag for the root: the deadline and the paused and
        claimed flags, mirrored from the state word whenever they change
        (pause, unpause, setRoot, sweep, the first claim). So a free-only
        claim reads no state word at all: its storage is the bitmap word,
        the signer's lookup and the two PHA balances.
"""

from snekmate.auth import ownable
from snekmate.utils import eip712_domain_separator as eip712

from ..attestation import attester_set
from ..interfaces import IPHA
from ..interfaces import IVault

initializes: ownable
initializes: eip712
initializes: attester_set[ownable := ownable]

exports: (
    ownable.owner,
    ownable.transfer_ownership,
    eip712.eip712Domain,
    attester_set.setAttester,
    attester_set.setThreshold,
    attester_set.threshold,
    attester_set.isAttester,
    attester_set.isAccepted,
    attester_set.attesters,
    attester_set.attesterCount,
)


struct Claim:
    index: uint256
    account: bytes32
    free: uint256
    staked: uint256
    receiver: address
    substrateSignature: Bytes[65]
    scheme: uint8
    attestations: DynArray[attester_set.Signature, attester_set.MAX_SIGNATURES]


event Claimed:
    index: uint256
    account: indexed(bytes32)
    receiver: indexed(address)
    free: uint256
    staked: uint256
    substrateSignature: Bytes[65]
    scheme: uint8


event RootSet:
    root: indexed(bytes32)
    totalFree: uint256
    totalStaked: uint256
    leafCount: uint256
    deadline: uint256


event GuardianSet:
    guardian: indexed(address)


event TreasurySet:
    treasury: indexed(address)


event Paused:
    by: indexed(address)


event Unpaused:
    by: indexed(address)


event Swept:
    treasury: indexed(address)
    free: uint256
    staked: uint256


event LateClaimHonoured:
    index: uint256
    fromTreasury: bool


event StakePaidAsPHA:
    index: uint256
    receiver: indexed(address)
    amount: uint256


MAX_PROOF: constant(uint256) = 32
MAX_BATCH: constant(uint256) = 16
MAX_MULTIPROOF: constant(uint256) = 256

# Substrate MultiSignature order: 0 ed25519, 1 sr25519, 2 ecdsa.
_MAX_SCHEME: constant(uint8) = 2

BINDING_TYPEHASH: public(constant(bytes32)) = keccak256(
    "Binding(bytes32 account,address receiver,bytes32 signatureHash)"
)

# Layout of `_state` (one storage word, read and written once per claim).
_MASK_96: constant(uint256) = (1 << 96) - 1
_MASK_128: constant(uint256) = (1 << 128) - 1
_STAKED_SHIFT: constant(uint256) = 96
_DEADLINE_SHIFT: constant(uint256) = 192
_MASK_48: constant(uint256) = (1 << 48) - 1
_PAUSED: constant(uint256) = 1 << 248
_FROZEN: constant(uint256) = 1 << 249
_SWEPT: constant(uint256) = 1 << 250
# The tag the attester lookup returns (above the threshold's 8 bits): deadline and flags.
_TAG_DEADLINE_SHIFT: constant(uint256) = 8
_TAG_PAUSED: constant(uint256) = 1 << 56
_TAG_CLAIMED: constant(uint256) = 1 << 57
_AMOUNTS: constant(uint256) = (1 << 192) - 1

PHA: public(immutable(address))
VAULT: public(immutable(address))

root: public(bytes32)
totalFree: public(uint256)
totalStaked: public(uint256)
leafCount: public(uint256)
guardian: public(address)
treasury: public(address)

_state: uint256
_swept: uint256  # swept free (low 128 bits) and swept staked (high 128 bits)
_claimed_words: HashMap[uint256, uint256]


@deploy
def __init__(pha: address, vault: address, owner: address, guardian: address, treasury: address):
    """
    @notice Deploy the migrator for one PHA token and one vPHA vault.
    @dev Approves the vault for PHA once (an unlimited allowance the token
         does not decrement), so each staked claim only deposits.
    @param pha The PHA token; this contract must be appointed its minter.
    @param vault The vPHA vault that staked amounts are deposited into.
    @param owner The governance timelock, owner of every parameter.
    @param guardian May pause claims (only the owner unpauses).
    @param treasury Receives the swept unclaimed amounts.
    """
    assert pha != empty(address) and vault != empty(address), "Migrator: zero token or vault"
    assert owner != empty(address), "Migrator: zero owner"
    assert treasury != empty(address), "Migrator: zero treasury"
    ownable.__init__()
    ownable._transfer_ownership(owner)
    eip712.__init__("veil Migrator", "1")
    attester_set.__init__()
    PHA = pha
    VAULT = vault
    self.guardian = guardian
    self.treasury = treasury
    extcall IPHA(pha).approve(vault, max_value(uint256))


# ---------------------------------------------------------------- claims


@external
def claim(
    index: uint256,
    account: bytes32,
    free: uint256,
    staked: uint256,
    receiver: address,
    proof: DynArray[bytes32, MAX_PROOF],
    substrateSignature: Bytes[65],
    scheme: uint8,
    attestations: DynArray[attester_set.Signature, attester_set.MAX_SIGNATURES],
):
    """
    @notice Pay one leaf to the receiver its account is bound to. Anyone may
            submit; the funds only go to `receiver`.
    @param index The leaf's index in the snapshot.
    @param account The 32-byte parachain account id.
    @param free Free balance in wei, minted as PHA to `receiver`.
    @param staked Staked balance in wei, deposited into the vault for
           `receiver` (self-delegated if it never chose a delegate), or
           paid as PHA if it is worth less than one vPHA share.
    @param receiver The L2 address the attesters bound `account` to.
    @param proof The Merkle proof of the leaf against `root`.
    @param substrateSignature The holder's signature of the binding message
           (bare: 64 bytes for ed25519/sr25519, 65 for ecdsa), published in
           `Claimed`; it must be the one the attesters bound.
    @param scheme The signature scheme (0 ed25519, 1 sr25519, 2 ecdsa).
    @param attestations At least `threshold` attester signatures over
           `bindingDigest(account, receiver, signatureHash(...))`, sorted by
           signer address.
    """
    assert scheme <= _MAX_SCHEME, "Migrator: unknown scheme"
    computed: bytes32 = keccak256(keccak256(abi_encode(index, account, free, staked)))
    for sibling: bytes32 in proof:
        if convert(computed, uint256) < convert(sibling, uint256):
            computed = keccak256(abi_encode(computed, sibling))
        else:
            computed = keccak256(abi_encode(sibling, computed))
    word: uint256 = index >> 8
    bits: uint256 = self._claimed_words[word]
    bit: uint256 = 1 << (index & 255)
    assert bits & bit == 0, "Migrator: already claimed"
    self._claimed_words[word] = bits | bit
    # The root is checked by the attester lookup under the root the proof computed,
    # which also returns the root's tag: deadline, paused, claimed.
    digest: bytes32 = self._binding_digest(
        account, receiver, keccak256(concat(convert(scheme, bytes1), substrateSignature))
    )
    tag: uint256 = attester_set._check(computed, digest, attestations)
    if tag == 0:
        assert self.root != empty(bytes32), "Migrator: no root"
        raise "Migrator: invalid proof"
    assert tag & _TAG_PAUSED == 0, "Migrator: paused"
    assert block.timestamp <= (tag >> _TAG_DEADLINE_SHIFT) & _MASK_48, "Migrator: claim period closed"
    if tag & _TAG_CLAIMED == 0 or staked != 0:  # the first claim freezes the root
        self._write_state(self._debit(self._state, staked) | _FROZEN)
    if free != 0:
        self._pay_free(receiver, free)
    if staked != 0:
        extcall IPHA(PHA).mint(self, staked)
        self._stake_for(index, receiver, staked)
    log Claimed(
        index=index,
        account=account,
        receiver=receiver,
        free=free,
        staked=staked,
        substrateSignature=substrateSignature,
        scheme=scheme,
    )


@external
def claimMany(
    claims: DynArray[Claim, MAX_BATCH],
    proof: DynArray[bytes32, MAX_MULTIPROOF],
    proofFlags: uint256,
):
    """
    @notice Pay many leaves with one OpenZeppelin multiproof. Each claim
            carries its own receiver, holder signature and attestations.
    @dev `claims` must be in the order of the multiproof's `leaves`
         (as `StandardMerkleTree.getMultiProof` returns them). The
         multiproof's `proofFlags` come packed into one word, flag i in bit
         i (a `bool[]` costs 32 calldata bytes per flag); their count is
         implied, len(claims) + len(proof) - 1, as OpenZeppelin requires.
         Each bitmap word is written once per run of claims that share it,
         and the staked total is minted to this contract in one call.
    @param claims The leaves with their receivers, signatures and attestations.
    @param proof The multiproof's sibling hashes.
    @param proofFlags The multiproof's flags, flag i in bit i, higher bits zero.
    """
    state: uint256 = self._open_state()
    assert len(claims) != 0, "Migrator: no claims"
    leaves: DynArray[bytes32, MAX_BATCH] = []
    for c: Claim in claims:
        assert c.scheme <= _MAX_SCHEME, "Migrator: unknown scheme"
        leaves.append(self._leaf(c.index, c.account, c.free, c.staked))
    computed: bytes32 = self._multiproof_root(leaves, proof, proofFlags)
    assert computed == self.root, "Migrator: invalid proof"

    separator: bytes32 = eip712._domain_separator_v4()
    word: uint256 = max_value(uint256)
    bits: uint256 = 0
    staked_sum: uint256 = 0
    for c: Claim in claims:
        w: uint256 = c.index >> 8
        if w != word:
            if word != max_value(uint256):
                self._claimed_words[word] = bits
            word = w
            bits = self._claimed_words[w]
        bit: uint256 = 1 << (c.index & 255)
        assert bits & bit == 0, "Migrator: already claimed"
        bits |= bit
        state = self._debit(state, c.staked)
        staked_sum += c.staked
        struct_hash: bytes32 = keccak256(
            abi_encode(
                BINDING_TYPEHASH,
                c.account,
                c.receiver,
                keccak256(concat(convert(c.scheme, bytes1), c.substrateSignature)),
            )
        )
        digest: bytes32 = keccak256(concat(b"\x19\x01", separator, struct_hash))
        # never false: `computed` is the current root, so the set is scoped to it
        assert attester_set._check(computed, digest, c.attestations) != 0
    self._claimed_words[word] = bits
    self._write_state(state | _FROZEN)

    if staked_sum != 0:
        extcall IPHA(PHA).mint(self, staked_sum)
    for c: Claim in claims:
        if c.free != 0:
            self._pay_free(c.receiver, c.free)
        if c.staked != 0:
            self._stake_for(c.index, c.receiver, c.staked)
        log Claimed(
            index=c.index,
            account=c.account,
            receiver=c.receiver,
            free=c.free,
            staked=c.staked,
            substrateSignature=c.substrateSignature,
            scheme=c.scheme,
        )


@external
def honourLateClaim(
    index: uint256,
    account: bytes32,
    free: uint256,
    staked: uint256,
    receiver: address,
    proof: DynArray[bytes32, MAX_PROOF],
    substrateSignature: Bytes[65],
    scheme: uint8,
    attestations: DynArray[attester_set.Signature, attester_set.MAX_SIGNATURES],
):
    """
    @notice Owner only, after the deadline: pay a leaf that missed the
            claim period, with the same proof and attestation checks as
            `claim`. Before `sweep` it mints from the remaining amounts;
            after `sweep` it pulls `free + staked` PHA back from the
            treasury (which must have approved this contract) and reduces
            the swept amounts, so claimed + swept stays within the totals.
    @dev Works while paused: governance decides when to honour.
    @param index The leaf's index in the snapshot.
    @param account The 32-byte parachain account id.
    @param free Free balance in wei, paid as PHA to `receiver`.
    @param staked Staked balance in wei, deposited into the vault for
           `receiver` (or paid as PHA if worth less than one vPHA share).
    @param receiver The L2 address the attesters bound `account` to.
    @param proof The Merkle proof of the leaf against `root`.
    @param substrateSignature The holder's signature the attesters bound, published in `Claimed`.
    @param scheme The signature scheme (0 ed25519, 1 sr25519, 2 ecdsa).
    @param attestations At least `threshold` attester signatures, sorted by signer.
    """
    ownable._check_owner()
    state: uint256 = self._state
    assert self.root != empty(bytes32), "Migrator: no root"
    assert block.timestamp > (state >> _DEADLINE_SHIFT) & _MASK_48, "Migrator: claim period open"
    assert scheme <= _MAX_SCHEME, "Migrator: unknown scheme"
    leaf: bytes32 = self._leaf(index, account, free, staked)
    computed: bytes32 = self._proof_root(proof, leaf)
    assert computed == self.root, "Migrator: invalid proof"
    word: uint256 = index >> 8
    bits: uint256 = self._claimed_words[word]
    bit: uint256 = 1 << (index & 255)
    assert bits & bit == 0, "Migrator: already claimed"
    self._claimed_words[word] = bits | bit
    digest: bytes32 = self._binding_digest(
        account, receiver, keccak256(concat(convert(scheme, bytes1), substrateSignature))
    )
    # never false: `computed` is the current root, so the set is scoped to it
    assert attester_set._check(computed, digest, attestations) != 0

    from_treasury: bool = state & _SWEPT != 0
    if from_treasury:
        swept: uint256 = self._swept
        swept_free: uint256 = swept & _MASK_128
        swept_staked: uint256 = swept >> 128
        assert free <= swept_free and staked <= swept_staked, "Migrator: exceeds committed totals"
        self._swept = ((swept_staked - staked) << 128) | (swept_free - free)
        if free + staked != 0:
            assert extcall IPHA(PHA).transferFrom(self.treasury, self, free + staked)
        if free != 0:
            assert extcall IPHA(PHA).transfer(receiver, free)
    else:
        self._write_state(self._debit(state, staked) | _FROZEN)
        if free != 0:
            self._pay_free(receiver, free)
        if staked != 0:
            extcall IPHA(PHA).mint(self, staked)
    if staked != 0:
        self._stake_for(index, receiver, staked)
    log Claimed(
        index=index,
        account=account,
        receiver=receiver,
        free=free,
        staked=staked,
        substrateSignature=substrateSignature,
        scheme=scheme,
    )
    log LateClaimHonoured(index=index, fromTreasury=from_treasury)


@external
def sweep():
    """
    @notice Owner only, once, after the deadline: send every unclaimed
            amount to the treasury as PHA: the free balance this contract
            holds (transferred) and the remaining staked total (minted).
            Late claims can still be honoured from the treasury.
    """
    ownable._check_owner()
    state: uint256 = self._state
    assert self.root != empty(bytes32), "Migrator: no root"
    assert block.timestamp > (state >> _DEADLINE_SHIFT) & _MASK_48, "Migrator: claim period open"
    assert state & _SWEPT == 0, "Migrator: already swept"
    held: uint256 = staticcall IPHA(PHA).balanceOf(self)
    free: uint256 = min(held, self.totalFree)  # anything above came from elsewhere
    staked: uint256 = (state >> _STAKED_SHIFT) & _MASK_96
    self._swept = (staked << 128) | free
    self._write_state((state & ~_AMOUNTS) | _SWEPT | _FROZEN)
    treasury: address = self.treasury
    if held != 0:
        assert extcall IPHA(PHA).transfer(treasury, held)
    if staked != 0:
        extcall IPHA(PHA).mint(treasury, staked)
    log Swept(treasury=treasury, free=free, staked=staked)


# ---------------------------------------------------------------- governance


@external
def setRoot(root: bytes32, totalFree: uint256, totalStaked: uint256, leafCount: uint256, deadline: uint256):
    """
    @notice Owner only: commit the snapshot root, its totals and the claim
            deadline. Allowed until the first claim (or sweep), then frozen.
            Mints the free total to this contract, which pays free claims
            from it; a replacement mints or burns the difference (burned PHA
            still counts against PHA's lifetime cap).
    @param root The StandardMerkleTree root.
    @param totalFree The sum of the leaves' free amounts, in wei.
    @param totalStaked The sum of the leaves' staked amounts, in wei.
    @param leafCount The number of leaves.
    @param deadline Unix time after which claims stop.
    """
    ownable._check_owner()
    state: uint256 = self._state
    assert state & _FROZEN == 0, "Migrator: root frozen"
    assert root != empty(bytes32), "Migrator: zero root"
    assert leafCount != 0, "Migrator: no leaves"
    assert totalFree <= _MASK_96 and totalStaked <= _MASK_96, "Migrator: totals too large"
    assert deadline > block.timestamp and deadline <= _MASK_48, "Migrator: bad deadline"
    held: uint256 = self.totalFree
    if totalFree > held:
        extcall IPHA(PHA).mint(self, totalFree - held)
    elif totalFree < held:
        extcall IPHA(PHA).burn(held - totalFree)
    state = (state & _PAUSED) | (deadline << _DEADLINE_SHIFT) | (totalStaked << _STAKED_SHIFT)
    attester_set._set_scope(root, self._tag_of(state))
    self.root = root
    self.totalFree = totalFree
    self.totalStaked = totalStaked
    self.leafCount = leafCount
    self._state = state
    log RootSet(
        root=root,
        totalFree=totalFree,
        totalStaked=totalStaked,
        leafCount=leafCount,
        deadline=deadline,
    )


@external
def setGuardian(guardian: address):
    """
    @notice Owner only: the address that may pause claims.
    @param guardian The new guardian (zero disables it).
    """
    ownable._check_owner()
    self.guardian = guardian
    log GuardianSet(guardian=guardian)


@external
def setTreasury(treasury: address):
    """
    @notice Owner only: where `sweep` sends unclaimed amounts and where
            late claims after a sweep are paid from.
    @param treasury The new treasury.
    """
    ownable._check_owner()
    assert treasury != empty(address), "Migrator: zero treasury"
    self.treasury = treasury
    log TreasurySet(treasury=treasury)


@external
def pause():
    """
    @notice Guardian or owner: stop claims.
    """
    assert msg.sender == self.guardian or msg.sender == ownable.owner, "Migrator: not guardian"
    self._write_state(self._state | _PAUSED)
    log Paused(by=msg.sender)


@external
def unpause():
    """
    @notice Owner only: resume claims.
    """
    ownable._check_owner()
    self._write_state(self._state & ~_PAUSED)
    log Unpaused(by=msg.sender)


# ---------------------------------------------------------------- views


@view
@external
def DOMAIN_SEPARATOR() -> bytes32:
    """
    @notice The EIP-712 domain separator attesters sign under.
    @return bytes32 The domain separator for this chain and contract.
    """
    return eip712._domain_separator_v4()


@view
@external
def bindingDigest(account: bytes32, receiver: address, signatureHash: bytes32) -> bytes32:
    """
    @notice The EIP-712 digest of `Binding(account, receiver, signatureHash)`
            for off-chain tooling.
    @param account The 32-byte parachain account id.
    @param receiver The L2 receiver.
    @param signatureHash `signatureHash(substrateSignature, scheme)`.
    @return bytes32 The digest attesters sign.
    """
    return self._binding_digest(account, receiver, signatureHash)


@pure
@external
def signatureHash(substrateSignature: Bytes[65], scheme: uint8) -> bytes32:
    """
    @notice The hash a binding commits the holder's signature with:
            keccak256(scheme ++ substrateSignature), the scheme as one byte
            (0 ed25519, 1 sr25519, 2 ecdsa), the signature bare (64 or 65
            bytes), i.e. the hash of the SCALE-encoded MultiSignature.
    @param substrateSignature The holder's bare signature.
    @param scheme The signature scheme.
    @return bytes32 The signatureHash field of the Binding.
    """
    return keccak256(concat(convert(scheme, bytes1), substrateSignature))


@view
@external
def isClaimed(index: uint256) -> bool:
    """
    @notice Whether leaf `index` has been paid.
    @param index The leaf index.
    @return bool True once claimed (or honoured late).
    """
    return (self._claimed_words[index >> 8] >> (index & 255)) & 1 == 1


@view
@external
def claimedFree() -> uint256:
    """
    @notice Free wei paid out so far (claims and late claims).
    @return uint256 totalFree - remaining - swept, where remaining is the PHA
            this contract holds for free claims (at most totalFree; PHA sent
            here by others counts as held, so it can hide as much claimed).
    """
    return self.totalFree - self._remaining_free() - (self._swept & _MASK_128)


@view
@external
def remainingFree() -> uint256:
    """
    @notice Free wei still to be claimed: the PHA held for free claims.
    @return uint256 At most totalFree; 0 after the sweep.
    """
    return self._remaining_free()


@view
@external
def claimedStaked() -> uint256:
    """
    @notice Staked wei paid out so far (claims and late claims).
    @return uint256 totalStaked - remaining - swept.
    """
    return self.totalStaked - ((self._state >> _STAKED_SHIFT) & _MASK_96) - (self._swept >> 128)


@view
@external
def sweptFree() -> uint256:
    """
    @notice Free wei swept to the treasury and not yet returned to late claims.
    @return uint256 The swept free amount.
    """
    return self._swept & _MASK_128


@view
@external
def sweptStaked() -> uint256:
    """
    @notice Staked wei swept to the treasury and not yet returned to late claims.
    @return uint256 The swept staked amount.
    """
    return self._swept >> 128


@view
@external
def deadline() -> uint256:
    """
    @notice Unix time after which claims stop (0 before a root is set).
    @return uint256 The deadline.
    """
    return (self._state >> _DEADLINE_SHIFT) & _MASK_48


@view
@external
def paused() -> bool:
    """
    @notice Whether claims are paused.
    @return bool True while paused.
    """
    return self._state & _PAUSED != 0


@view
@external
def swept() -> bool:
    """
    @notice Whether the unclaimed amounts have been swept.
    @return bool True after `sweep`.
    """
    return self._state & _SWEPT != 0


@view
@external
def rootFrozen() -> bool:
    """
    @notice Whether the root can no longer be replaced (a claim or sweep happened).
    @return bool True once frozen.
    """
    return self._state & _FROZEN != 0


# ---------------------------------------------------------------- internals


@internal
@view
def _open_state() -> uint256:
    state: uint256 = self._state
    assert state & _PAUSED == 0, "Migrator: paused"
    assert block.timestamp <= (state >> _DEADLINE_SHIFT) & _MASK_48, "Migrator: claim period closed"
    return state


@internal
@pure
def _leaf(index: uint256, account: bytes32, free: uint256, staked: uint256) -> bytes32:
    return keccak256(keccak256(abi_encode(index, account, free, staked)))


@internal
@pure
def _proof_root(proof: DynArray[bytes32, MAX_PROOF], leaf: bytes32) -> bytes32:
    computed: bytes32 = leaf
    for sibling: bytes32 in proof:
        if convert(computed, uint256) < convert(sibling, uint256):
            computed = keccak256(abi_encode(computed, sibling))
        else:
            computed = keccak256(abi_encode(sibling, computed))
    return computed


@internal
@pure
def _multiproof_root(
    leaves: DynArray[bytes32, MAX_BATCH], proof: DynArray[bytes32, MAX_MULTIPROOF], flags: uint256
) -> bytes32:
    # OpenZeppelin's processMultiProof with the flags packed into a word: each step
    # hashes the next queued node (leaves first, then computed hashes) with either
    # the following queued node (flag set) or the next proof element (flag clear).
    leaf_count: uint256 = len(leaves)
    total: uint256 = leaf_count + len(proof) - 1
    assert total <= 256, "Migrator: multiproof too long"
    if total < 256:
        assert flags >> total == 0, "Migrator: invalid multiproof"
    hashes: bytes32[256] = empty(bytes32[256])
    leaf_pos: uint256 = 0
    hash_pos: uint256 = 0
    proof_pos: uint256 = 0
    for i: uint256 in range(total, bound=256):
        a: bytes32 = empty(bytes32)
        b: bytes32 = empty(bytes32)
        if leaf_pos < leaf_count:
            a = leaves[leaf_pos]
            leaf_pos += 1
        else:
            assert hash_pos < i, "Migrator: invalid multiproof"
            a = hashes[hash_pos]
            hash_pos += 1
        if (flags >> i) & 1 == 1:
            if leaf_pos < leaf_count:
                b = leaves[leaf_pos]
                leaf_pos += 1
            else:
                assert hash_pos < i, "Migrator: invalid multiproof"
                b = hashes[hash_pos]
                hash_pos += 1
        else:
            b = proof[proof_pos]
            proof_pos += 1
        if convert(a, uint256) < convert(b, uint256):
            hashes[i] = keccak256(abi_encode(a, b))
        else:
            hashes[i] = keccak256(abi_encode(b, a))
    if total == 0:
        return leaves[0]  # one leaf and no proof: the leaf is the root
    assert proof_pos == len(proof) and leaf_pos == leaf_count, "Migrator: invalid multiproof"
    return hashes[total - 1]


@internal
@pure
def _debit(state: uint256, staked: uint256) -> uint256:
    assert staked <= (state >> _STAKED_SHIFT) & _MASK_96, "Migrator: exceeds committed totals"
    return state - (staked << _STAKED_SHIFT)


@internal
def _pay_free(receiver: address, free: uint256):
    # The balance held for free claims is the remaining free total: PHA refuses a
    # transfer beyond it, which means the leaves exceed what the root committed.
    ok: bool = raw_call(
        PHA,
        abi_encode(receiver, free, method_id=method_id("transfer(address,uint256)")),
        revert_on_failure=False,
    )
    assert ok, "Migrator: exceeds committed totals"


@internal
def _write_state(state: uint256):
    # Every change of the deadline or a flag is mirrored into the attester lookup's
    # tag, which claims read instead of the state word.
    old: uint256 = self._state
    if state == old:
        return
    if self._tag_of(state) != self._tag_of(old):
        attester_set._set_tag(self._tag_of(state))
    self._state = state


@internal
@pure
def _tag_of(state: uint256) -> uint256:
    tag: uint256 = ((state >> _DEADLINE_SHIFT) & _MASK_48) << _TAG_DEADLINE_SHIFT
    if state & _PAUSED != 0:
        tag |= _TAG_PAUSED
    if state & _FROZEN != 0:
        tag |= _TAG_CLAIMED
    return tag


@internal
@view
def _remaining_free() -> uint256:
    if self._state & _SWEPT != 0:
        return 0
    return min(staticcall IPHA(PHA).balanceOf(self), self.totalFree)


@internal
@view
def _binding_digest(account: bytes32, receiver: address, signature_hash: bytes32) -> bytes32:
    struct_hash: bytes32 = keccak256(abi_encode(BINDING_TYPEHASH, account, receiver, signature_hash))
    return keccak256(concat(b"\x19\x01", eip712._domain_separator_v4(), struct_hash))


@internal
def _stake_for(index: uint256, receiver: address, staked: uint256):
    # The Migrator holds `staked` PHA here. A part worth less than one share would make
    # the vault revert, freezing the whole leaf; it is paid as PHA instead.
    if staticcall IVault(VAULT).previewDeposit(staked) == 0:
        assert extcall IPHA(PHA).transfer(receiver, staked)
        log StakePaidAsPHA(index=index, receiver=receiver, amount=staked)
    else:
        extcall IVault(VAULT).depositAndDelegate(staked, receiver)
