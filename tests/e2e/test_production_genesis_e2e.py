"""Issue 7, findings 3 and 7, on a real anvil: the production genesis starts, the old one cannot.

The production profile funds nobody, so the only way to vPHA (and to votes) is a migration
claim. `veil network deploy` commits the root before the handover; holders then bind and
claim through a real attester process, and the first governance proposal passes on the
claimed stake alone. Beside it, the deployment without a root (the code path before the
fix) is shown deadlocked: no vote exists, nobody may propose, nobody may set the root.
Every step runs the `veil` CLI as a subprocess, as an operator would.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from veil.chain import deployment as deployments
from veil.chain.accounts import KEYSTORE_PASSWORD_ENV
from veil.chain.client import Chain, connect
from veil.devnet.accounts import devnet_account
from veil.devnet.anvil import DEVNET_CHAIN_ID, Devnet, DevnetProcess, free_port
from veil.devnet.client import DevnetChain
from veil.devnet.demo import veil_executable
from veil.errors import ChainError
from veil.merkle import load_tree
from veil.migration.binding import binding_message, context_from_files
from veil.migration.synthetic import keypair
from veil.network.deploy import DAY, ZERO_ADDRESS, deploy_network
from veil.network.production import production_parameters
from veil.substrate import ss58
from veil.substrate.signature import wrap_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("anvil")]

VEIL = str(veil_executable())
PASSWORD = "genesis-test-password"
GOVERNOR_ABI_STATES = ("Pending", "Active", "Canceled", "Defeated", "Succeeded", "Queued",
                       "Expired", "Executed")  # fmt: skip


@dataclass
class Net:
    process: DevnetProcess
    work: Path
    tree: Path
    ledger: Path
    keys: Path
    keystore: Path

    @property
    def rpc(self) -> str:
        return self.process.rpc_url

    def deploy_args(self, record: Path, **overrides: str) -> list[str]:
        """`veil network deploy` as the docs give it; `overrides` replace single options."""
        options = {
            "--rpc": self.rpc,
            "--chain-id": str(DEVNET_CHAIN_ID),
            "--keystore": str(self.keystore),
            "--tree": str(self.tree),
            "--ledger": str(self.ledger),
            "--attester": devnet_account("attester").address,
            "--threshold": "1",
            "--guardian": devnet_account("guardian").address,
            "--out": str(record),
        }
        options.update({f"--{k.replace('_', '-')}": v for k, v in overrides.items()})
        return ["network", "deploy", *(x for pair in options.items() for x in pair)]


def veil(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, KEYSTORE_PASSWORD_ENV: PASSWORD}
    done = subprocess.run([VEIL, *args], capture_output=True, text=True, timeout=300, env=env)
    if check and done.returncode != 0:
        raise AssertionError(f"veil {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return done


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    work = tmp_path_factory.mktemp("genesis")
    raw, pos, exc, keys = (work / n for n in ("raw.json", "pos.json", "exc.json", "keys.json"))
    snap, ledger, tree = work / "snapshot.json", work / "ledger.json", work / "tree.json"
    veil("migrate", "generate-state", "--accounts", "60", "--out", str(raw), "--positions",
         str(pos), "--exclusions", str(exc), "--keys", str(keys))  # fmt: skip
    veil("migrate", "snapshot", "--raw-state", str(raw), "--out", str(snap))
    veil("migrate", "ledger", str(snap), "--positions", str(pos), "--exclusions", str(exc),
         "--out", str(ledger))  # fmt: skip
    veil("migrate", "tree", str(ledger), "--out", str(tree))
    # the operator's key in a keystore, as production keeps it (cheap KDF: a test key)
    keystore = work / "deployer.json"
    keystore.write_text(
        json.dumps(
            Account.encrypt(devnet_account("deployer").key, PASSWORD, kdf="pbkdf2", iterations=2)
        )
    )
    devnet = Devnet(work / "anvil")
    process = devnet.start(port=free_port())
    try:
        yield Net(process, work, tree, ledger, keys, keystore)
    finally:
        devnet.stop()


def _nonce(net: Net, address: str) -> int:
    return connect(net.rpc).eth.get_transaction_count(address)


def test_production_deploy_refuses_bad_input_before_any_transaction(net: Net) -> None:
    deployer = devnet_account("deployer").address
    before = _nonce(net, deployer)
    out = net.work / "refused.json"

    # a ledger whose amounts moved between free and staked: same issuance, other totals
    document = json.loads(net.ledger.read_text())
    leaf = next(row for row in document["leaves"] if int(row[2]) > 0)
    leaf[2], leaf[3] = str(int(leaf[2]) - 1), str(int(leaf[3]) + 1)
    document["totals"]["free_wei"] = str(int(document["totals"]["free_wei"]) - 1)
    document["totals"]["staked_wei"] = str(int(document["totals"]["staked_wei"]) + 1)
    other_ledger = net.work / "other-ledger.json"
    other_ledger.write_text(json.dumps(document))

    # a key that never held ETH, and a deployment record that already exists
    empty = net.work / "empty-key.json"
    empty.write_text(json.dumps(Account.create().encrypt(PASSWORD, kdf="pbkdf2", iterations=2)))
    existing = net.work / "existing.json"
    existing.write_text("{}")

    cases = [
        ({"keystore": str(empty)}, "no ETH for gas"),
        ({"out": str(existing)}, "exists; a deployment record is never overwritten"),
        ({"chain_id": "10"}, f"chain id {DEVNET_CHAIN_ID}, not --chain-id 10"),
        ({"ledger": str(other_ledger)}, "do not match ledger"),
        ({"threshold": "2"}, "--threshold 2: must be 1..1"),
        ({"guardian": deployer}, "is the deployer"),
        ({"guardian": "nobody"}, "--guardian 'nobody': not an address"),
        ({"attester": deployer}, "is the deployer"),
        ({"tree": str(net.work / "missing.json")}, "cannot read"),
    ]
    for overrides, expected in cases:
        done = veil(*net.deploy_args(out, **overrides), check=False)
        lines = done.stderr.strip().splitlines()
        assert done.returncode != 0, (overrides, done.stdout)
        assert len(lines) == 1 and lines[0].startswith("error: "), (overrides, done.stderr)
        assert expected in lines[0], (overrides, lines[0])
    # no root at all: the option is required (usage error, exit 2)
    args = net.deploy_args(out)
    at = args.index("--tree")
    done = veil(*args[:at], *args[at + 2 :], check=False)
    assert done.returncode == 2 and "--tree" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists()
    assert _nonce(net, deployer) == before  # every refusal came before the first transaction


def test_genesis_without_root_deadlocks(net: Net) -> None:
    """The code path before the fix: production parameters, every role handed over, no root."""
    deployer, alice = devnet_account("deployer"), devnet_account("alice")
    chain = Chain(connect(net.rpc))
    params = production_parameters([devnet_account("attester").address], 1)
    deployment = deploy_network(chain, deployer, "deadlocked", net.rpc, params)
    c = chain.contract
    governor, vault, migrator = c("Governor"), c("Vault"), c("Migrator")
    timelock = c("Timelock")

    # finding 7: no guardian named, so none, not the deployer
    assert migrator.functions.guardian().call() == ZERO_ADDRESS
    assert deployment.parameters["migrator_guardian"] == ZERO_ADDRESS
    # no vPHA exists, so nobody has votes and nobody reaches the proposal threshold
    assert vault.functions.totalSupply().call() == 0
    assert c("PHA").functions.totalSupply().call() == 0
    assert governor.functions.proposalThreshold().call() > 0
    for who in (deployer, alice):
        chain.send(who, vault.functions.delegate(who.address), "Vault.delegate")
        assert vault.functions.getVotes(who.address).call() == 0
        propose = governor.functions.propose([migrator.address], [0], [b"\x00" * 4], "start")
        with pytest.raises(ChainError, match="proposer votes below threshold"):
            chain.send(who, propose, "Governor.propose")
    # the root can only come from the timelock, which only the Governor may drive
    assert migrator.functions.root().call() == b"\x00" * 32
    tree = load_tree(net.tree)
    set_root = migrator.functions.setRoot(tree.root, 1, 1, 1, 2**40)
    for who in (deployer, alice):
        with pytest.raises(ChainError, match="caller is not the owner"):
            chain.send(who, set_root, "Migrator.setRoot")
    schedule = timelock.functions.schedule(
        migrator.address, 0, set_root._encode_transaction_data(), b"\x00" * 32, b"\x00" * 32,
        timelock.functions.get_minimum_delay().call(),
    )  # fmt: skip
    with pytest.raises(ChainError, match="reverted"):
        chain.send(deployer, schedule, "Timelock.schedule")
    # and no claim can pass without a root: the deadline word is zero, claims are closed
    assert migrator.functions.deadline().call() == 0


def _sample_holders(net: Net, count: int) -> list[tuple[object, tuple[int, bytes, int, int]]]:
    """The `count` keyed sample holders with the most stake, with their leaves."""
    tree = load_tree(net.tree)
    found = []
    for entry in json.loads(net.keys.read_text())["keys"]:
        holder = keypair(entry["scheme"], bytes.fromhex(entry["seed"][2:]))
        found.append((holder, tree.values[tree.value_index(holder.account)]))
    found.sort(key=lambda pair: -pair[1][3])
    return found[:count]


def _start_attester(net: Net, deployment: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`veil attester serve` as its own process, as an operator runs it; (process, URL)."""
    port = free_port()
    process = subprocess.Popen(
        [VEIL, "attester", "serve", "--tree", str(net.tree), "--deployment", str(deployment),
         "--db", str(net.work / "attester.sqlite"), "--port", str(port), "--account", "attester"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=2):
                return process, f"http://127.0.0.1:{port}"
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError("attester did not start") from None
            time.sleep(0.3)


def test_production_genesis_claims_then_first_proposal_passes(net: Net) -> None:
    out = net.work / "deployments" / "mainnet.json"
    deployer, guardian = devnet_account("deployer").address, devnet_account("guardian").address
    deployed = veil(*net.deploy_args(out))
    assert f"deployer {deployer} holds no role" in deployed.stdout
    d = ["--deployment", str(out)]
    deployment = deployments.load(out)
    assert deployment.network == "mainnet" and deployment.chain_id == DEVNET_CHAIN_ID
    assert deployment.accounts == {}
    chain = DevnetChain.open(deployment)
    pha, vault, migrator, governor = (
        chain.contract(n) for n in ("PHA", "Vault", "Migrator", "Governor")
    )
    tree = load_tree(net.tree)
    totals = tree.totals()

    # genesis: nobody funded, root and totals committed, guardian named, deployer holds nothing;
    # the only PHA is the committed free total, held by the Migrator for free claims
    free_total = int(totals["free_wei"])
    assert pha.functions.totalSupply().call() == free_total
    assert pha.functions.balanceOf(migrator.address).call() == free_total
    assert vault.functions.totalSupply().call() == 0
    assert migrator.functions.root().call() == tree.root
    assert migrator.functions.totalFree().call() == int(totals["free_wei"])
    assert migrator.functions.totalStaked().call() == int(totals["staked_wei"])
    assert migrator.functions.leafCount().call() == totals["leaf_count"]
    assert migrator.functions.guardian().call() == guardian
    assert "deployer holds no role" in veil("network", "check", "--deployer", deployer, *d).stdout
    refused = veil("network", "check", "--deployer", guardian, *d, check=False)
    assert refused.returncode == 1 and "the deployer is the Migrator guardian" in refused.stderr
    # a deployment record that claims another root or attester set does not check out
    record = json.loads(out.read_text())
    record["parameters"]["migration"]["root"] = "0x" + "00" * 32
    record["parameters"]["attesters"] = [devnet_account("dave").address]
    forged = net.work / "forged.json"
    forged.write_text(json.dumps(record))
    refused = veil("network", "check", "--deployer", deployer, "-d", str(forged), check=False)
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
    assert "the Migrator commits" in refused.stderr and "attesters are" in refused.stderr

    # first claims: each holder binds its account to a receiver, the attester signs, dave sends
    receivers = [devnet_account(n) for n in ("alice", "bob", "carol")]
    context = context_from_files(net.tree, out)
    attester, url = _start_attester(net, out)
    try:
        for receiver, (holder, leaf) in zip(
            receivers, _sample_holders(net, len(receivers)), strict=True
        ):
            message = binding_message(holder.account, receiver.address, context).encode()
            signature = "0x" + holder.sign(wrap_bytes(message)).hex()
            extra = ["--pubkey", "0x" + holder.public_key.hex()] if holder.scheme == "ecdsa" else []
            veil("migrate", "claim", "--tree", str(net.tree),
                 "--holder", ss58.encode(holder.account), "--to", receiver.address,
                 "--signature", signature, *extra, "--attester", url,
                 "--account", "dave", *d)  # fmt: skip
            index, _, free, staked = leaf
            assert migrator.functions.isClaimed(index).call()
            assert free > 0 and staked > 0
            assert pha.functions.balanceOf(receiver.address).call() == free
            shares = vault.functions.balanceOf(receiver.address).call()
            assert vault.functions.convertToAssets(shares).call() == staked
            # Votes arrive with the stake: a receiver that never delegated votes at once.
            assert vault.functions.getVotes(receiver.address).call() == shares
            assert vault.functions.delegates(receiver.address).call() == receiver.address
    finally:
        attester.terminate()
        attester.wait(timeout=10)
    assert pha.functions.balanceOf(devnet_account("dave").address).call() == 0

    alice, bob, carol = (r.address for r in receivers)
    threshold = governor.functions.proposalThreshold().call()
    assert vault.functions.getVotes(alice).call() >= threshold > 0

    # the first proposal: governance names a new Migrator guardian
    new_guardian = devnet_account("dave").address
    veil("gov", "propose", "-m", "First proposal: the Migrator guardian becomes dave",
         "--action", f"Migrator:setGuardian(address):{new_guardian}", "--account", "alice",
         *d)  # fmt: skip
    proposal_id = governor.functions.hashProposal(
        [migrator.address],
        [0],
        [migrator.functions.setGuardian(new_guardian)._encode_transaction_data()],
        Web3.keccak(text="First proposal: the Migrator guardian becomes dave"),
    ).call()

    def state() -> str:
        return GOVERNOR_ABI_STATES[governor.functions.state(proposal_id).call()]

    assert state() == "Pending"
    chain.advance_time(governor.functions.votingDelay().call() + 1)
    assert state() == "Active"
    veil("gov", "vote", str(proposal_id), "for", "--account", "alice", *d)
    veil("gov", "vote", str(proposal_id), "for", "--account", "bob", *d)
    veil("gov", "vote", str(proposal_id), "against", "--account", "carol", *d)
    chain.advance_time(governor.functions.votingPeriod().call() + 1)
    assert state() == "Succeeded"
    veil("gov", "queue", str(proposal_id), "--account", "carol", *d)
    min_delay = chain.contract("Timelock").functions.get_minimum_delay().call()
    assert min_delay == 2 * DAY  # the production timings, not the devnet's
    chain.advance_time(min_delay + 1)
    veil("gov", "execute", str(proposal_id), "--account", "carol", *d)
    assert state() == "Executed"
    assert migrator.functions.guardian().call() == new_guardian

    # the votes that passed it are exactly the claimed stake of the voters
    snapshot = governor.functions.proposalSnapshot(proposal_id).call()
    against, for_, _ = governor.functions.proposalVotes(proposal_id).call()
    past = [vault.functions.getPastVotes(a, snapshot).call() for a in (alice, bob, carol)]
    assert for_ == past[0] + past[1] and against == past[2]
    assert sum(past) == vault.functions.getPastTotalSupply(snapshot).call()
