"""`veil wallet` on a real devnet: balances read back from the chain, transfers checked
before anything is sent, and a keystore made by `veil keys` signing a transfer."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from eth_account import Account

from veil.chain import deployment as deployments
from veil.chain.client import Chain
from veil.devnet.accounts import DEVNET_MNEMONIC, devnet_account
from veil.devnet.anvil import free_port
from veil.devnet.demo import veil_executable

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("anvil")]
PHA, VPHA = 10**18, 10**24
PASSWORD = "wallet test password"


def veil(*args: str, stdin: str = "", env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    environ = {k: v for k, v in os.environ.items() if not k.startswith("VEIL_")}
    environ.update(env or {})
    return subprocess.run([str(veil_executable()), *args], input=stdin, capture_output=True,
                          text=True, env=environ, timeout=300, start_new_session=True)  # fmt: skip


class Devnet:
    def __init__(self, root: Path) -> None:
        self.home, self.deployment = root / "devnet", root / "deployment.json"

    def veil(self, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return veil(*args, "-d", str(self.deployment), **kwargs)  # type: ignore[arg-type]

    def ok(self, *args: str, **kwargs: object) -> str:
        done = self.veil(*args, **kwargs)
        assert done.returncode == 0, f"veil {' '.join(args)}: {done.stderr}"
        return done.stdout

    def chain(self) -> Chain:
        return Chain.open(deployments.load(self.deployment))


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    net = Devnet(tmp_path_factory.mktemp("wallet"))
    up = veil("devnet", "up", "--port", str(free_port()), "--home", str(net.home),
              "-d", str(net.deployment))  # fmt: skip
    assert up.returncode == 0, up.stderr
    yield net
    veil("devnet", "down", "--home", str(net.home))


def address(name: str) -> str:
    return str(devnet_account(name).address)


def test_transfer_pha_moves_exactly_that_amount(devnet: Devnet) -> None:
    pha = devnet.chain().contract("PHA")
    alice, bob = address("alice"), address("bob")
    before = (pha.functions.balanceOf(alice).call(), pha.functions.balanceOf(bob).call())
    sent = json.loads(devnet.ok("wallet", "transfer", "12.5", "bob", "-a", "alice", "--json"))
    assert sent["token"] == "PHA" and (sent["from"], sent["to"]) == (alice, bob)
    assert sent["amount"] == {"raw": str(125 * PHA // 10), "amount": "12.5"}
    after = (pha.functions.balanceOf(alice).call(), pha.functions.balanceOf(bob).call())
    assert after == (before[0] - 125 * PHA // 10, before[1] + 125 * PHA // 10)
    receipt = devnet.chain().w3.eth.get_transaction_receipt(sent["tx"])
    assert receipt["status"] == 1 and receipt["blockNumber"] == sent["block"]
    text = devnet.ok("wallet", "balance", bob)
    assert f"PHA       {after[1] // PHA:,}.5 PHA" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["1,5", "bob"], "PHA amount '1,5': ','"),
        (["1.000,5", "bob"], "PHA amount '1.000,5'"),
        (["-1", "bob"], "must not be negative"),
        (["1e3", "bob"], "not an amount"),
        (["0", "bob"], "must be more than zero"),
        (["0.0000000000000000001", "bob"], "more than 18 decimals"),
        (["1", "0x3c44cdddb6a900fa2b585dd299e03d12fa4293BC"], "wrong EIP-55 checksum"),
        (["1", "0x" + "0" * 40], "the zero address"),
        (["1", "0xZZ"], "not an address"),
        (["1", "mallory"], "not an address"),
        (["99999999", "bob"], "needs 99,999,999 PHA, 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 "
                              "holds"),
        (["1", "--vpha", "bob"], "needs 1 vPHA"),
        (["1", "{PHA}"], "the PHA contract itself"),
    ],
)  # fmt: skip
def test_bad_transfers_are_refused_before_sending(
    devnet: Devnet, args: list[str], message: str
) -> None:
    chain = devnet.chain()
    pha_address = chain.contract("PHA").address
    nonce = chain.w3.eth.get_transaction_count(address("alice"))
    # dave holds no vPHA; alice is the sender for everything else
    sender = "dave" if "--vpha" in args else "alice"
    # options first, then `--`, so that "-1" reaches the amount parser as an amount
    done = veil("wallet", "transfer", "-a", sender, "-d", str(devnet.deployment),
                *[a for a in args if a.startswith("--")], "--",
                *[a.format(PHA=pha_address) for a in args if not a.startswith("--")])  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert message in lines[0]
    assert chain.w3.eth.get_transaction_count(address("alice")) == nonce


def test_balance_shows_stake_votes_delegate_and_unlocks(devnet: Devnet) -> None:
    devnet.ok("stake", "deposit", "100", "-a", "carol")
    devnet.ok("gov", "delegate", "self", "-a", "carol")
    devnet.ok("stake", "request-unlock", "10", "-a", "carol")
    chain = devnet.chain()
    vault, pha = chain.contract("Vault"), chain.contract("PHA")
    carol = address("carol")
    view = json.loads(devnet.ok("wallet", "balance", "-a", "carol", "--json"))
    shares = vault.functions.balanceOf(carol).call()
    assert view["address"] == carol
    assert view["pha"]["raw"] == str(pha.functions.balanceOf(carol).call())
    assert view["vpha"]["raw"] == str(shares) and shares > 0
    assert view["vpha_value_pha"]["raw"] == str(vault.functions.convertToAssets(shares).call())
    assert view["votes_vpha"]["raw"] == str(vault.functions.getVotes(carol).call())
    assert view["delegate"] == carol
    (request,) = view["unlock_requests"]
    _, owed, burned, claimable_at, _ = vault.functions.redeemRequest(request["id"]).call()
    assert request["pha"]["raw"] == str(owed) and request["vpha_burned"]["raw"] == str(burned)
    assert request["claimable_at"] == datetime.fromtimestamp(claimable_at, UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert request["ready"] is False
    text = devnet.ok("wallet", "balance", "carol")
    assert f"delegate  {carol} (itself)" in text
    assert f"#{request['id']}" in text and request["claimable_at"] in text and "in " in text
    # someone who never staked: no delegate, nothing open
    fresh = json.loads(devnet.ok("wallet", "balance", "guardian", "--json"))
    assert fresh["delegate"] is None and fresh["unlock_requests"] == []
    assert fresh["vpha"] == {"raw": "0", "amount": "0"}


def test_vpha_transfer_carries_the_voting_power(devnet: Devnet) -> None:
    devnet.ok("stake", "deposit", "50", "-a", "bob")
    devnet.ok("gov", "delegate", "self", "-a", "bob")
    vault = devnet.chain().contract("Vault")
    bob, dave = address("bob"), address("dave")
    votes = vault.functions.getVotes(bob).call()
    devnet.ok("gov", "delegate", "self", "-a", "dave")
    devnet.ok("wallet", "transfer", "1.5", "dave", "--vpha", "-a", "bob")
    assert vault.functions.balanceOf(dave).call() == 15 * VPHA // 10
    assert vault.functions.getVotes(bob).call() == votes - 15 * VPHA // 10
    assert vault.functions.getVotes(dave).call() == 15 * VPHA // 10


def test_a_keystore_from_veil_keys_signs_a_transfer(devnet: Devnet, tmp_path: Path) -> None:
    """The path from the devnet's names to a real key: import it, fund it, use it."""
    Account.enable_unaudited_hdwallet_features()
    spare = Account.from_mnemonic(DEVNET_MNEMONIC, account_path="m/44'/60'/0'/0/9")
    env = {"VEIL_KEYSTORE_PASSWORD": PASSWORD}
    made = veil("keys", "import", "--dir", str(tmp_path), "--name", "mine", "--json",
                stdin=spare.key.hex(), env=env)  # fmt: skip
    assert made.returncode == 0, made.stderr
    keyfile = json.loads(made.stdout)["path"]
    devnet.ok("wallet", "transfer", "20", spare.address, "-a", "alice")
    # reading a keystore's balance needs no password
    view = json.loads(devnet.ok("wallet", "balance", "--keystore", keyfile, "--json"))
    assert view["address"] == spare.address and view["pha"]["amount"] == "20"
    gas_before = int(view["gas_eth"]["raw"])
    devnet.ok("wallet", "transfer", "7.25", "carol", "--keystore", keyfile, env=env)
    pha = devnet.chain().contract("PHA")
    assert pha.functions.balanceOf(spare.address).call() == 1275 * PHA // 100
    assert devnet.chain().w3.eth.get_balance(spare.address) < gas_before  # it paid the gas


def test_eth_transfer_gives_a_new_key_gas(devnet: Devnet) -> None:
    fresh = Account.create()
    w3 = devnet.chain().w3
    sent = json.loads(devnet.ok("wallet", "transfer", "0.25", fresh.address, "--eth",
                                "-a", "guardian", "--json"))  # fmt: skip
    assert sent["token"] == "ETH" and sent["amount"]["raw"] == str(25 * 10**16)
    assert w3.eth.get_balance(fresh.address) == 25 * 10**16
    both = devnet.veil("wallet", "transfer", "1", "bob", "--eth", "--vpha", "-a", "alice")
    assert both.returncode == 2 and "exclude each other" in both.stderr
