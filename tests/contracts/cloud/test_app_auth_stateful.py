"""AppAuth against a model: only an app's owner changes its hashes; a removed hash is refused.

Random callers (owners, strangers) register, add, remove and transfer on a handful of
apps; after every step the contract's allowed sets, counts and owners equal the model,
which only ever changes on a call by the app's current owner.
"""

from __future__ import annotations

import boa
from compiled import compiled
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from veil.cloud.app_auth import app_id_for, app_salt

ACCOUNTS = [boa.env.generate_address(f"account{i}") for i in range(3)]
NAMES = ["web", "db"]
HASHES = [bytes([i]) * 32 for i in range(1, 4)]
APPS = [(owner, name) for owner in ACCOUNTS for name in NAMES]


class AppAuthModel(RuleBasedStateMachine):
    @initialize()
    def deploy(self) -> None:
        self._anchor = boa.env.anchor()
        self._anchor.__enter__()
        self.auth = compiled("AppAuth").deploy()
        self.owner: dict[str, str] = {}
        self.allowed: dict[str, set[bytes]] = {}

    def teardown(self) -> None:
        if hasattr(self, "_anchor"):
            self._anchor.__exit__(None, None, None)

    @rule(app=st.sampled_from(APPS), compose=st.sampled_from(HASHES))
    def register(self, app: tuple[str, str], compose: bytes) -> None:
        sender, name = app
        app_id = app_id_for(sender, name)
        with boa.env.prank(sender):
            if app_id in self.owner:
                with boa.reverts("AppAuth: app already registered"):
                    self.auth.registerApp(app_salt(name), compose)
                return
            assert self.auth.registerApp(app_salt(name), compose).lower() == app_id
        self.owner[app_id] = sender
        self.allowed[app_id] = {compose}

    @rule(app=st.sampled_from(APPS), sender=st.sampled_from(ACCOUNTS),
          compose=st.sampled_from(HASHES))  # fmt: skip
    def add(self, app: tuple[str, str], sender: str, compose: bytes) -> None:
        app_id = app_id_for(*app)
        with boa.env.prank(sender):
            if self.owner.get(app_id) != sender:
                with boa.reverts("AppAuth: caller is not the app owner"):
                    self.auth.addComposeHash(app_id, compose)
            elif compose in self.allowed[app_id]:
                with boa.reverts("AppAuth: compose hash already allowed"):
                    self.auth.addComposeHash(app_id, compose)
            else:
                self.auth.addComposeHash(app_id, compose)
                self.allowed[app_id].add(compose)

    @rule(app=st.sampled_from(APPS), sender=st.sampled_from(ACCOUNTS),
          compose=st.sampled_from(HASHES))  # fmt: skip
    def remove(self, app: tuple[str, str], sender: str, compose: bytes) -> None:
        app_id = app_id_for(*app)
        with boa.env.prank(sender):
            if self.owner.get(app_id) != sender:
                with boa.reverts("AppAuth: caller is not the app owner"):
                    self.auth.removeComposeHash(app_id, compose)
            elif compose not in self.allowed[app_id]:
                with boa.reverts("AppAuth: compose hash not allowed"):
                    self.auth.removeComposeHash(app_id, compose)
            else:
                self.auth.removeComposeHash(app_id, compose)
                self.allowed[app_id].discard(compose)
                assert not self.auth.isComposeAllowed(app_id, compose)

    @rule(app=st.sampled_from(APPS), sender=st.sampled_from(ACCOUNTS),
          heir=st.sampled_from(ACCOUNTS))  # fmt: skip
    def transfer(self, app: tuple[str, str], sender: str, heir: str) -> None:
        app_id = app_id_for(*app)
        with boa.env.prank(sender):
            if self.owner.get(app_id) != sender:
                with boa.reverts("AppAuth: caller is not the app owner"):
                    self.auth.transferAppOwnership(app_id, heir)
                return
            self.auth.transferAppOwnership(app_id, heir)
        self.owner[app_id] = heir

    @invariant()
    def matches_model(self) -> None:
        if not hasattr(self, "auth"):
            return
        for app in APPS:
            app_id = app_id_for(*app)
            want = self.allowed.get(app_id, set())
            assert (
                self.auth.appOwner(app_id).lower()
                == self.owner.get(app_id, "0x" + "00" * 20).lower()
            )
            assert self.auth.composeHashCount(app_id) == len(want)
            for compose in HASHES:
                assert self.auth.isComposeAllowed(app_id, compose) == (compose in want)


TestAppAuthModel = AppAuthModel.TestCase
TestAppAuthModel.settings = settings(max_examples=25, stateful_step_count=30, deadline=None)
