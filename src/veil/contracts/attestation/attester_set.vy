# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title Attester set with a threshold
@custom:contract-name attester_set
@license MIT
@notice The one place where veil decides whether a statement is attested: a set of
        attester keys that the owner (the governance timelock) manages, a threshold
        `k`, and the check that an EIP-712 digest carries signatures of at least `k`
        distinct registered attesters. Every contract that accepts attested
        statements (the Migrator's bindings, the ComputeRegistry's workers, and later
        rewards and app authorisation) `initializes` this module and `exports` its
        setters and views, so the rules below hold everywhere alike.

        Rules:
        - Threshold: at least 1 (the initial value), at most the number of attesters
          and at most `MAX_SIGNATURES`.
        - Removal: removing an attester that would leave fewer attesters than the
          threshold reverts ("attester_set: below threshold"). A compromised key is
          replaced by adding the new key first (or lowering the threshold), never by
          leaving a set that can no longer reach its threshold, or one where fewer
          keys than governance decided are enough.
        - Signatures: EIP-2098 compact (`r`, `vs`: the recovery bit in the top bit of
          `s`), 64 static calldata bytes each, the cheapest encoding on the claim
          path (a `(v, r, s)` struct takes 96 bytes, a 65-byte `bytes` 160 with its
          offset and length). `s` must be in the lower half of the curve order, so
          each signature has one encoding.
        - Distinct signers: the signatures are sorted by strictly increasing
          recovered address. That rejects a repeated signer in O(1) per signature,
          and an unrecoverable signature (address zero) with it.
        - Events: `AttesterSet(attester, allowed)` and `ThresholdSet(threshold)`.

        Scope. A host may tie the set to one statement it proves separately, for
        instance the Migrator's Merkle root: `_accepted[scope][attester]` is non-zero
        exactly for the current scope and a registered attester, so one storage
        lookup per signer checks both that the signer is an attester and that the
        caller proved against the current scope. The value is the threshold (low 8
        bits) plus the host's *tag* for the scope (the bits above), so the check
        reads no other storage: a host that must know per-statement facts on its hot
        path (the Migrator: its deadline, whether it is paused, whether anything was
        claimed) keeps them in the tag and reads them in the same lookup instead of
        loading a storage slot of its own (2,100 gas a claim). `_set_scope` moves
        every attester to a new scope with a tag; `_set_tag` rewrites the tag of the
        current scope. A host that never calls them uses the empty scope, tag 0.
@dev The host owns the access control: the setters require snekmate's `ownable`
     owner, which the host `initializes`.
"""

from snekmate.auth import ownable

uses: ownable


# Attesters the set can hold, and signatures one statement can carry.
MAX_ATTESTERS: constant(uint256) = 64
MAX_SIGNATURES: constant(uint256) = 8

# secp256k1n / 2: a larger s is the malleable twin of a valid signature (EIP-2).
_HALF_N: constant(uint256) = (
    57_896_044_618_658_097_711_785_492_504_343_953_926_418_782_139_537_452_191_302_581_570_759_080_747_168
)
_S_MASK: constant(uint256) = (1 << 255) - 1


struct Signature:
    r: bytes32
    vs: bytes32


event AttesterSet:
    attester: indexed(address)
    allowed: bool


event ThresholdSet:
    threshold: uint256


# @notice Signatures of distinct attesters a statement needs.
threshold: public(uint256)
# @notice The statement (e.g. a Merkle root) signatures count for; empty if unused.
scope: public(bytes32)

_attesters: DynArray[address, MAX_ATTESTERS]
# _accepted[s][a] == threshold | tag if s == scope and a is an attester, else 0.
_accepted: HashMap[bytes32, HashMap[address, uint256]]
# The host's tag of the current scope (low 8 bits zero: they hold the threshold).
_tag: uint256
_THRESHOLD_BITS: constant(uint256) = 255


@deploy
def __init__():
    """
    @notice An empty set with threshold 1 under the empty scope.
    """
    self.threshold = 1


@external
def setAttester(attester: address, allowed: bool):
    """
    @notice Owner only: add or remove an attester key. A removal that would
            leave fewer attesters than the threshold reverts.
    @param attester The attester's signing address.
    @param allowed True to add, False to remove.
    """
    ownable._check_owner()
    assert attester != empty(address), "attester_set: zero attester"
    scope: bytes32 = self.scope
    assert (self._accepted[scope][attester] != 0) != allowed, "attester_set: attester unchanged"
    threshold: uint256 = self.threshold
    if allowed:
        self._attesters.append(attester)
        self._accepted[scope][attester] = threshold | self._tag
    else:
        count: uint256 = len(self._attesters)
        assert count - 1 >= threshold, "attester_set: below threshold"
        for i: uint256 in range(MAX_ATTESTERS):
            if self._attesters[i] == attester:
                self._attesters[i] = self._attesters[count - 1]
                self._attesters.pop()
                break
        self._accepted[scope][attester] = 0
    log AttesterSet(attester=attester, allowed=allowed)


@external
def setThreshold(threshold: uint256):
    """
    @notice Owner only: how many distinct attesters must sign a statement.
    @param threshold At least 1, at most the number of attesters and `MAX_SIGNATURES`.
    """
    ownable._check_owner()
    assert threshold != 0, "attester_set: zero threshold"
    assert threshold <= len(self._attesters), "attester_set: threshold above attesters"
    assert threshold <= MAX_SIGNATURES, "attester_set: threshold above signature bound"
    self.threshold = threshold
    scope: bytes32 = self.scope
    value: uint256 = threshold | self._tag
    for a: address in self._attesters:
        self._accepted[scope][a] = value
    log ThresholdSet(threshold=threshold)


@view
@external
def isAttester(attester: address) -> bool:
    """
    @notice Whether `attester` is a registered attester key.
    @param attester An address.
    @return bool True if registered.
    """
    return self._accepted[self.scope][attester] != 0


@view
@external
def isAccepted(scope: bytes32, attester: address) -> bool:
    """
    @notice Whether a statement proved under `scope` may count `attester`'s
            signature: true exactly for the current scope and a registered
            attester (the one lookup a check makes for both).
    @param scope A scope, e.g. a Merkle root.
    @param attester An address.
    @return bool True for the current scope and a registered attester.
    """
    return self._accepted[scope][attester] != 0


@view
@external
def attesters() -> DynArray[address, MAX_ATTESTERS]:
    """
    @notice The registered attester keys (unordered).
    @return DynArray The attester set.
    """
    return self._attesters


@view
@external
def attesterCount() -> uint256:
    """
    @notice The number of registered attesters.
    @return uint256 The count.
    """
    return len(self._attesters)


@internal
def _set_scope(scope: bytes32, tag: uint256):
    """
    @dev Move every attester to `scope` with the host's `tag`, so that signatures
         count only for statements proved against it (the Migrator calls it with a
         new root).
    """
    assert tag & _THRESHOLD_BITS == 0, "attester_set: tag overlaps the threshold"
    old: bytes32 = self.scope
    value: uint256 = self.threshold | tag
    for a: address in self._attesters:
        self._accepted[old][a] = 0
        self._accepted[scope][a] = value
    self.scope = scope
    self._tag = tag


@internal
def _set_tag(tag: uint256):
    """
    @dev Rewrite the host's tag of the current scope (one store per attester).
    """
    assert tag & _THRESHOLD_BITS == 0, "attester_set: tag overlaps the threshold"
    scope: bytes32 = self.scope
    value: uint256 = self.threshold | tag
    for a: address in self._attesters:
        self._accepted[scope][a] = value
    self._tag = tag


@view
@internal
def _current_tag() -> uint256:
    return self._tag


@internal
@view
def _check(scope: bytes32, digest: bytes32, signatures: DynArray[Signature, MAX_SIGNATURES]) -> uint256:
    """
    @dev Revert unless at least `threshold` distinct registered attesters signed
         `digest`, in strictly increasing signer order, and return the value the
         lookup found (the threshold | the scope's tag, never 0). Returns 0 instead
         when a signer is not accepted because `scope` is not the current scope, so
         the host can say which statement was wrong (the Migrator: an invalid proof).
         Reads one storage slot per signature and, only on that failure, `scope`.
    """
    value: uint256 = 0
    previous: uint256 = 0
    for sig: Signature in signatures:
        vs: uint256 = convert(sig.vs, uint256)
        s: uint256 = vs & _S_MASK
        assert s <= _HALF_N, "attester_set: high-s signature"
        signer: address = ecrecover(digest, (vs >> 255) + 27, convert(sig.r, uint256), s)
        current: uint256 = convert(signer, uint256)
        assert current > previous, "attester_set: signers not strictly increasing"
        value = self._accepted[scope][signer]
        if value == 0:
            if scope != self.scope:
                return 0
            raise "attester_set: unknown attester"
        previous = current
    assert value != 0 and len(signatures) >= value & _THRESHOLD_BITS, "attester_set: too few signatures"
    return value
