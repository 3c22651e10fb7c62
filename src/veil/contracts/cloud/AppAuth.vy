# pragma version ~=0.4.3
"""
@title veil AppAuth: which compose hashes each confidential app allows
@custom:contract-name AppAuth
@license MIT
@notice The on-chain authority the KMS consults before it releases an app's keys, in the
        spirit of dstack's IAppAuth/DstackApp: an app has one owner (the customer's
        account) and a set of allowed compose hashes (sha256 of the app-compose document
        a CVM measures into RTMR3). A worker receives the app's keys only if its verified
        quote shows a compose hash this contract allows for that app; an upgrade is the
        owner adding the new hash, and revoking a version is removing its hash.

        An app's id is derived, not chosen: `appIdOf(owner, salt)` =
        `keccak256(abi.encode(owner, salt))[12:]`, with salt = keccak256(app name) by
        convention. So the control plane computes the id off-chain for (customer, name),
        an id cannot be squatted by someone else (it depends on the registrant), and
        deploying an existing name addresses the same app.

        There is no contract owner and no global parameter: every state change is made by
        an app's own owner on its own app, so governance has nothing to hold here.
@dev Events carry everything needed to rebuild each app's allowed set from logs.
"""

event AppRegistered:
    appId: indexed(address)
    owner: indexed(address)
    salt: bytes32

event ComposeHashAdded:
    appId: indexed(address)
    composeHash: indexed(bytes32)

event ComposeHashRemoved:
    appId: indexed(address)
    composeHash: indexed(bytes32)

event AppOwnershipTransferred:
    appId: indexed(address)
    previousOwner: indexed(address)
    newOwner: indexed(address)


# @notice The owner of each registered app; the zero address for an unknown app id.
appOwner: public(HashMap[address, address])

# @notice How many compose hashes each app allows now.
composeHashCount: public(HashMap[address, uint256])

_allowed: HashMap[address, HashMap[bytes32, bool]]

_ADDRESS_MASK: constant(uint256) = 2**160 - 1


@external
@pure
def appIdOf(owner: address, salt: bytes32) -> address:
    """
    @notice The app id `owner` gets when it registers with `salt`.
    @param owner The registering account.
    @param salt keccak256 of the app's name, by convention.
    @return The low 20 bytes of keccak256(abi.encode(owner, salt)).
    """
    return self._app_id(owner, salt)


@internal
@pure
def _app_id(owner: address, salt: bytes32) -> address:
    digest: uint256 = convert(keccak256(abi_encode(owner, salt)), uint256)
    return convert(convert(digest & _ADDRESS_MASK, uint160), address)


@external
def registerApp(salt: bytes32, composeHash: bytes32) -> address:
    """
    @notice Register a new app owned by the caller, allowing its first compose hash.
    @dev Reverts if the caller already registered this salt, or the hash is zero.
    @param salt keccak256 of the app's name, by convention.
    @param composeHash sha256 of the app-compose document the app boots with.
    @return appId The new app's id, `appIdOf(msg.sender, salt)`.
    """
    app_id: address = self._app_id(msg.sender, salt)
    assert self.appOwner[app_id] == empty(address), "AppAuth: app already registered"
    assert composeHash != empty(bytes32), "AppAuth: zero compose hash"
    self.appOwner[app_id] = msg.sender
    self._allowed[app_id][composeHash] = True
    self.composeHashCount[app_id] = 1
    log AppRegistered(appId=app_id, owner=msg.sender, salt=salt)
    log ComposeHashAdded(appId=app_id, composeHash=composeHash)
    return app_id


@internal
@view
def _only_app_owner(app_id: address):
    assert msg.sender == self.appOwner[app_id], "AppAuth: caller is not the app owner"


@external
def addComposeHash(appId: address, composeHash: bytes32):
    """
    @notice Allow another compose hash for an app (an upgrade); app owner only.
    @dev Reverts for a zero hash or one already allowed, so every event is a change.
    @param appId The app.
    @param composeHash sha256 of the new app-compose document.
    """
    self._only_app_owner(appId)
    assert composeHash != empty(bytes32), "AppAuth: zero compose hash"
    assert not self._allowed[appId][composeHash], "AppAuth: compose hash already allowed"
    self._allowed[appId][composeHash] = True
    self.composeHashCount[appId] += 1
    log ComposeHashAdded(appId=appId, composeHash=composeHash)


@external
def removeComposeHash(appId: address, composeHash: bytes32):
    """
    @notice Stop allowing a compose hash: the KMS refuses its keys to CVMs running it.
    @dev App owner only; reverts if the hash is not allowed. Removing the last hash is
         allowed: the app then releases keys to nothing until a hash is added again.
    @param appId The app.
    @param composeHash The hash to revoke.
    """
    self._only_app_owner(appId)
    assert self._allowed[appId][composeHash], "AppAuth: compose hash not allowed"
    self._allowed[appId][composeHash] = False
    self.composeHashCount[appId] -= 1
    log ComposeHashRemoved(appId=appId, composeHash=composeHash)


@external
def transferAppOwnership(appId: address, newOwner: address):
    """
    @notice Hand an app to another owner; app owner only. The app id does not change.
    @param appId The app.
    @param newOwner The new owner (not the zero address, which would orphan the app).
    """
    self._only_app_owner(appId)
    assert newOwner != empty(address), "AppAuth: new owner is the zero address"
    log AppOwnershipTransferred(appId=appId, previousOwner=msg.sender, newOwner=newOwner)
    self.appOwner[appId] = newOwner


@external
@view
def isComposeAllowed(appId: address, composeHash: bytes32) -> bool:
    """
    @notice Whether the KMS may release `appId`'s keys to a CVM measuring `composeHash`.
    @param appId The app.
    @param composeHash The compose-hash event of the CVM's verified RTMR3 log.
    @return True only for a registered app that allows this hash now.
    """
    return self._allowed[appId][composeHash]
