# pragma version ~=0.4.3
"""
@title TEST-ONLY host of the attester_set module
@notice What a contract that accepts attested statements does with the module:
        initializes it next to snekmate's ownable and exports its setters and views.
        `check`, `checkTagged`, `setScope` and `setTag` expose the module's internals to the tests. Never deploy.
"""

from snekmate.auth import ownable

from ....src.veil.contracts.attestation import attester_set

initializes: ownable
initializes: attester_set[ownable := ownable]

exports: (
    ownable.owner,
    ownable.transfer_ownership,
    attester_set.setAttester,
    attester_set.setThreshold,
    attester_set.threshold,
    attester_set.scope,
    attester_set.isAttester,
    attester_set.isAccepted,
    attester_set.attesters,
    attester_set.attesterCount,
)


@deploy
def __init__():
    ownable.__init__()
    attester_set.__init__()


@view
@external
def check(
    scope: bytes32,
    digest: bytes32,
    signatures: DynArray[attester_set.Signature, attester_set.MAX_SIGNATURES],
) -> bool:
    return attester_set._check(scope, digest, signatures) != 0


@view
@external
def checkTagged(
    scope: bytes32,
    digest: bytes32,
    signatures: DynArray[attester_set.Signature, attester_set.MAX_SIGNATURES],
) -> uint256:
    return attester_set._check(scope, digest, signatures)


@external
def setScope(scope: bytes32, tag: uint256):
    ownable._check_owner()
    attester_set._set_scope(scope, tag)


@external
def setTag(tag: uint256):
    ownable._check_owner()
    attester_set._set_tag(tag)
