"""AppAuth: registration, upgrades, revocation, ownership; a negative test per revert."""

from __future__ import annotations

import boa
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.cloud.app_auth import app_id_for, app_id_of, app_salt

OWNER = boa.env.generate_address("owner")
STRANGER = boa.env.generate_address("stranger")
HEIR = boa.env.generate_address("heir")
V1 = bytes.fromhex("11" * 32)
V2 = bytes.fromhex("22" * 32)
ZERO_HASH = bytes(32)
ZERO = "0x" + "00" * 20


def _register(auth, owner=OWNER, name="web", compose=V1) -> str:
    with boa.env.prank(owner):
        return auth.registerApp(app_salt(name), compose)


def _names(auth) -> list[str]:
    return [type(e).__name__ for e in auth.get_logs()]


@settings(max_examples=30, deadline=None)
@given(owner=st.binary(min_size=20, max_size=20), salt=st.binary(min_size=32, max_size=32))
def test_app_id_matches_the_off_chain_rule(app_auth_deployer, owner, salt):
    with boa.env.anchor():
        auth = app_auth_deployer.deploy()
        address = "0x" + owner.hex()
        assert auth.appIdOf(address, salt).lower() == app_id_of(address, salt)


def test_register_makes_the_caller_owner_and_allows_the_hash(auth):
    app = _register(auth)
    assert _names(auth) == ["AppRegistered", "ComposeHashAdded"]
    assert app.lower() == app_id_for(OWNER, "web")
    assert auth.appOwner(app) == OWNER
    assert auth.isComposeAllowed(app, V1) and not auth.isComposeAllowed(app, V2)
    assert auth.composeHashCount(app) == 1


def test_same_name_different_owner_is_a_different_app(auth):
    mine, theirs = _register(auth), _register(auth, owner=STRANGER)
    assert mine != theirs
    assert auth.appOwner(theirs) == STRANGER


def test_register_twice_reverts(auth):
    _register(auth)
    with boa.env.prank(OWNER), boa.reverts("AppAuth: app already registered"):
        auth.registerApp(app_salt("web"), V2)


def test_register_zero_hash_reverts(auth):
    with boa.env.prank(OWNER), boa.reverts("AppAuth: zero compose hash"):
        auth.registerApp(app_salt("web"), ZERO_HASH)


def test_owner_upgrades_by_adding_a_hash(auth):
    app = _register(auth)
    with boa.env.prank(OWNER):
        auth.addComposeHash(app, V2)
    assert auth.isComposeAllowed(app, V1) and auth.isComposeAllowed(app, V2)
    assert auth.composeHashCount(app) == 2


def test_add_by_a_stranger_reverts(auth):
    app = _register(auth)
    with boa.env.prank(STRANGER), boa.reverts("AppAuth: caller is not the app owner"):
        auth.addComposeHash(app, V2)


def test_add_to_an_unregistered_app_reverts(auth):
    with boa.env.prank(STRANGER), boa.reverts("AppAuth: caller is not the app owner"):
        auth.addComposeHash(app_id_for(STRANGER, "nope"), V2)


def test_add_zero_or_duplicate_reverts(auth):
    app = _register(auth)
    with boa.env.prank(OWNER):
        with boa.reverts("AppAuth: zero compose hash"):
            auth.addComposeHash(app, ZERO_HASH)
        with boa.reverts("AppAuth: compose hash already allowed"):
            auth.addComposeHash(app, V1)


def test_removed_hash_is_refused(auth):
    app = _register(auth)
    with boa.env.prank(OWNER):
        auth.addComposeHash(app, V2)
        auth.removeComposeHash(app, V1)
    assert _names(auth) == ["ComposeHashRemoved"]
    assert not auth.isComposeAllowed(app, V1) and auth.isComposeAllowed(app, V2)
    assert auth.composeHashCount(app) == 1


def test_remove_by_a_stranger_reverts(auth):
    app = _register(auth)
    with boa.env.prank(STRANGER), boa.reverts("AppAuth: caller is not the app owner"):
        auth.removeComposeHash(app, V1)
    assert auth.isComposeAllowed(app, V1)


def test_remove_a_hash_not_allowed_reverts(auth):
    app = _register(auth)
    with boa.env.prank(OWNER), boa.reverts("AppAuth: compose hash not allowed"):
        auth.removeComposeHash(app, V2)


def test_transfer_moves_every_power(auth):
    app = _register(auth)
    with boa.env.prank(OWNER):
        auth.transferAppOwnership(app, HEIR)
    assert auth.appOwner(app) == HEIR
    with boa.env.prank(OWNER), boa.reverts("AppAuth: caller is not the app owner"):
        auth.addComposeHash(app, V2)
    with boa.env.prank(HEIR):
        auth.addComposeHash(app, V2)
    assert auth.isComposeAllowed(app, V2)


def test_transfer_by_a_stranger_reverts(auth):
    app = _register(auth)
    with boa.env.prank(STRANGER), boa.reverts("AppAuth: caller is not the app owner"):
        auth.transferAppOwnership(app, STRANGER)


def test_transfer_to_zero_reverts(auth):
    app = _register(auth)
    with boa.env.prank(OWNER), boa.reverts("AppAuth: new owner is the zero address"):
        auth.transferAppOwnership(app, ZERO)


def test_unknown_app_allows_nothing(auth):
    unknown = app_id_for(OWNER, "never")
    assert auth.appOwner(unknown) == ZERO
    assert not auth.isComposeAllowed(unknown, V1)
