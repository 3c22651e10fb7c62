"""The walk-through `make demo` runs: each step is a real `veil` command on the devnet.

The demo drives the same commands a user types (in-process, so it is quick) and prints
each one before its output, so reading the demo teaches the CLI. It runs on its own
devnet home and deployment file so it never disturbs a devnet the user already has, and
it leaves that chain on disk: `veil devnet up --home .veil/demo -d deployments/demo.json`
resumes it for exploring.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.rule import Rule

from veil.chain import deployment as deployments
from veil.chain.home import deployments_dir, veil_home
from veil.devnet.anvil import Devnet, free_port
from veil.devnet.client import DevnetChain
from veil.errors import VeilError
from veil.substrate.signature import Scheme

# Beside the user's own devnet, never on it: `.veil/demo` and `deployments/demo.json`.
DEMO_HOME = veil_home() / "demo"
# What the demo's worker offers apps: tdx.small asks 20 GB of disk each, and the process
# runtime reserves none, so the demo does not depend on this machine's free disk.
DEMO_DISK = ("--disk-gb", "100")
DEMO_DEPLOYMENT = deployments_dir() / "demo.json"

Runner = Callable[[Sequence[str]], None]


def veil_executable() -> Path:
    """The `veil` script installed beside this interpreter (the venv's)."""
    return Path(sys.executable).with_name("veil")


class Walkthrough:
    """Prints a numbered step, then each command and what it printed."""

    def __init__(self, run: Runner, console: Console, home: Path, deployment: Path) -> None:
        self._run = run
        self.console = console
        self.home = home
        self.deployment = deployment
        self._step = 0

    def step(self, title: str) -> None:
        self._step += 1
        self.console.print()
        self.console.print(Rule(f"[bold]{self._step}. {title}", align="left"))

    def say(self, text: str) -> None:
        self.console.print(f"[dim]{text}[/dim]")

    def veil(self, *args: str, chain: bool = True, extra: Sequence[str] = ()) -> None:
        """Run `veil ARGS` (adding the demo's deployment for chain commands, or EXTRA)."""
        extra = ["--deployment", str(self.deployment)] if chain else list(extra)
        shown = " ".join(shlex.quote(a) for a in args)
        self.console.print(f"[bold cyan]$ veil {shown}[/bold cyan]")
        self._run([*args, *extra])

    def veil_to_file(self, path: Path, *args: str) -> None:
        """`veil ARGS > PATH`, as its own process so the file holds exactly its output."""
        shown = " ".join(shlex.quote(a) for a in args)
        self.console.print(f"[bold cyan]$ veil {shown} > {path.name}[/bold cyan]")
        with path.open("w") as out:
            done = subprocess.run([str(veil_executable()), *args], stdout=out, timeout=120)
        if done.returncode != 0:
            raise VeilError(f"demo step `veil {shown}` exited with {done.returncode}")

    def chain(self) -> DevnetChain:
        """The demo's chain, for the few values a step reads back (ids, chain time)."""
        return DevnetChain.open(deployments.load(self.deployment))

    def devnet(self, *args: str) -> None:
        shown = " ".join(shlex.quote(a) for a in args)
        self.console.print(f"[bold cyan]$ veil devnet {shown}[/bold cyan]")
        self._run(["devnet", *args, "--home", str(self.home)])


def bring_up(w: Walkthrough, port: int) -> None:
    w.step("Bring up the L2 devnet and deploy the economy")
    w.say("anvil in optimism mode; every parameter ends up owned by the timelock")
    w.devnet("up", "--fresh", "--port", str(port), "--deployment", str(w.deployment))


def stake_and_delegate(w: Walkthrough) -> None:
    w.step("Stake PHA into the vPHA vault")
    w.veil("stake", "deposit", "250000", "--account", "alice")
    w.veil("stake", "deposit", "100000", "--account", "bob")
    w.veil("stake", "deposit", "20000", "--account", "carol")

    w.step("Delegate voting power (undelegated vPHA does not vote)")
    w.veil("gov", "delegate", "self", "--account", "alice")
    w.veil("gov", "delegate", "self", "--account", "bob")


def economy(w: Walkthrough, port: int) -> None:
    """Issue 2's story: stake, delegate, and change a parameter through governance."""
    bring_up(w, port)
    stake_and_delegate(w)
    rewards(w, DEMO_HOME / "rewards", attester_port=free_port(preferred=8702))

    w.step("Rewards stream into the vault while the reserve covers them")
    w.say(
        "0.0014 PHA a second shared by the 370,000 staked PHA: about 10.7% a year to stakers "
        "after the treasury's 10%; a month later alice's vPHA is worth about 0.9% more"
    )
    w.devnet("advance", "--days", "30")
    w.veil("stake", "status", "--account", "alice")
    w.say("the wallet view: PHA, vPHA and its PHA value, voting power and delegate together")
    w.veil("wallet", "balance", "--account", "alice")

    w.step("Alice proposes raising the reward rate; alice votes for, bob against")
    w.say("voting opens after the voting delay; queue after the vote, execute after the timelock")
    proposal = govern(
        w,
        "Raise the vPHA reward rate to 0.0018 PHA per second (about 13.8% a year to stakers)",
        ["Vault:setRewardRate(uint256):0.0018PHA"],
        [("alice", "for"), ("bob", "against")],
    )
    w.veil("gov", "status", proposal)
    w.veil("stake", "status", "--account", "bob")

    w.step("Unstake through the unlock queue (21 days), cancel one, claim one")
    w.veil("stake", "request-unlock", "5000", "--account", "carol")
    w.veil("stake", "request-unlock", "1000", "--account", "carol")
    w.veil("stake", "cancel", _latest_request(w, "carol"), "--account", "carol")
    w.devnet("advance", "--days", "21", "--seconds", "1")
    w.veil("stake", "claim", "--all", "--account", "carol")
    w.veil("stake", "status", "--account", "carol")


def govern(
    w: Walkthrough, description: str, actions: list[str], votes: list[tuple[str, str]]
) -> str:
    """Propose, vote, queue and execute, advancing the devnet clock past each delay."""
    args = ["gov", "propose", "-m", description]
    for action in actions:
        args += ["--action", action]
    # The Governor reads the proposer's votes one second in the past (ERC-6372 timestamp
    # clock): a delegation made this very second does not count yet.
    w.devnet("advance", "--seconds", "1")
    w.veil(*args, "--account", "alice")
    proposal = _latest_proposal(w)
    w.devnet("advance", "--seconds", "3601")
    for voter, support in votes:
        w.veil("gov", "vote", proposal, support, "--account", voter)
    w.devnet("advance", "--days", "3")
    w.veil("gov", "queue", proposal, "--account", "carol")
    w.devnet("advance", "--days", "1", "--seconds", "1")
    w.veil("gov", "execute", proposal, "--account", "carol")
    return proposal


def _latest_proposal(w: Walkthrough) -> str:
    from veil.governance import governor as governance

    return str(governance.proposals(w.chain())[-1].proposal_id)


def _latest_request(w: Walkthrough, name: str) -> str:
    from veil.devnet.accounts import devnet_account
    from veil.staking import vault as staking

    requests = staking.open_requests(w.chain(), devnet_account(name).address)
    return str(requests[-1].request_id)


def run_demo(run: Runner, port: int, console: Console | None = None) -> None:
    """The whole walk-through; the devnet is stopped at the end (its state kept)."""
    console = console or Console(highlight=False)
    devnet = Devnet(DEMO_HOME)
    if devnet.running() is not None:
        devnet.stop()
    w = Walkthrough(run, console, DEMO_HOME, DEMO_DEPLOYMENT)
    try:
        economy(w, port)
        work = DEMO_HOME / "migration"
        work.mkdir(parents=True, exist_ok=True)
        migration(w, work, accounts=5_000, attester_port=free_port(preferred=8700))
        compute(w, DEMO_HOME / "compute", attester_port=free_port(preferred=8701))
        cloud(w, DEMO_HOME / "cloud", DEMO_HOME / "compute")
        billing(w, DEMO_HOME / "billing", DEMO_HOME / "compute")
    finally:
        if devnet.running() is not None:
            devnet.stop()
    console.print()
    console.print(
        "[bold green]demo complete.[/bold green] The chain is kept: "
        f"`veil devnet up --home {DEMO_HOME} -d {DEMO_DEPLOYMENT}` resumes it."
    )


SAMPLE_HOLDERS: tuple[Scheme, ...] = ("sr25519", "ed25519", "ecdsa")


def migration(w: Walkthrough, work: Path, accounts: int, attester_port: int) -> None:
    """Issue 3's story: the parachain state becomes PHA and vPHA on the L2, auditable."""
    import json

    from eth_account import Account

    from veil.merkle import load_tree
    from veil.migration.binding import binding_message, context_from_files
    from veil.migration.synthetic import keypair
    from veil.substrate import ss58
    from veil.substrate.signature import wrap_bytes

    raw, pos, exc, keys = (work / n for n in ("raw.json", "positions.json", "exclusions.json",
                                              "keys.json"))  # fmt: skip
    snap, ledger, tree = work / "snapshot.json", work / "ledger.json", work / "tree.json"
    dep = str(w.deployment)

    w.step(f"A parachain state: {accounts:,} holders, stake pools, treasury, bridge reserve")
    w.say("real sr25519/ed25519/ECDSA keys for a sample of holders, real SCALE encoding")
    w.veil("migrate", "generate-state", "--accounts", str(accounts), "--out", str(raw),
           "--positions", str(pos), "--exclusions", str(exc), "--keys", str(keys),
           chain=False)  # fmt: skip

    w.step("Snapshot, ledger (exact 1:1, reconciled) and Merkle tree")
    w.veil("migrate", "snapshot", "--raw-state", str(raw), "--out", str(snap), chain=False)
    w.veil("migrate", "ledger", str(snap), "--positions", str(pos), "--exclusions", str(exc),
           "--out", str(ledger), chain=False)  # fmt: skip
    w.veil("migrate", "tree", str(ledger), "--out", str(tree), chain=False)

    w.step("Governance commits the root and its totals to the Migrator")
    published = load_tree(tree)
    totals = published.totals()
    deadline = _chain_time(w) + 180 * 86_400
    action = (
        "Migrator:setRoot(bytes32,uint256,uint256,uint256,uint256):"
        f"0x{published.root.hex()},{totals['free_wei']},{totals['staked_wei']},"
        f"{totals['leaf_count']},{deadline}"
    )
    govern(w, "Commit the parachain snapshot root", [action], [("alice", "for"), ("bob", "for")])

    w.step("An attester verifies bindings and signs them (EIP-712)")
    url = f"http://127.0.0.1:{attester_port}"
    attester = _start_attester(w, work / "attester.sqlite", attester_port, ["--tree", str(tree)])
    try:
        context = context_from_files(tree, w.deployment)
        secrets = json.loads(keys.read_text())["keys"]
        for scheme in SAMPLE_HOLDERS:
            entry = next(k for k in secrets if k["scheme"] == scheme)
            holder = keypair(scheme, bytes.fromhex(entry["seed"][2:]))
            address = ss58.encode(holder.account)
            receiver = Account.from_key(bytes(31) + bytes([SAMPLE_HOLDERS.index(scheme) + 1]))
            w.step(f"A {scheme} holder binds {address[:10]}… to a fresh L2 address and claims")
            w.veil("migrate", "binding-message", "--holder", address, "--to", receiver.address,
                   "--tree", str(tree), "--deployment", dep, chain=False)  # fmt: skip
            message = binding_message(holder.account, receiver.address, context).encode()
            signature = "0x" + holder.sign(wrap_bytes(message)).hex()
            w.say(f"the holder's wallet signs it (signRaw, <Bytes>-wrapped): {signature[:26]}…")
            extra = ["--pubkey", "0x" + holder.public_key.hex()] if scheme == "ecdsa" else []
            w.veil("migrate", "verify-binding", "--holder", address, "--to", receiver.address,
                   "--signature", signature, *extra, "--tree", str(tree), "--deployment", dep,
                   chain=False)  # fmt: skip
            w.veil("migrate", "claim", "--tree", str(tree), "--holder", address,
                   "--to", receiver.address, "--signature", signature, *extra,
                   "--attester", url, "--account", "dave")  # fmt: skip
    finally:
        attester.terminate()
        attester.wait(timeout=10)

    w.step("Anyone audits the migration from public data and the chain")
    w.veil("migrate", "audit", "--snapshot", str(snap), "--tree", str(tree),
           "--positions", str(pos), "--exclusions", str(exc), "--ledger", str(ledger))  # fmt: skip


def compute(w: Walkthrough, work: Path, attester_port: int) -> None:
    """Issue 4's story: a provider stakes collateral and a (simulated) TDX worker joins."""
    from veil.devnet.accounts import devnet_account

    work.mkdir(parents=True, exist_ok=True)
    policy = work / "devnet-policy.toml"
    provider = devnet_account("provider").address
    state = work / "worker"

    w.step("The attester takes the network's attestation policy")
    w.say("the devnet has no TDX hardware: its policy admits SIMULATED TEEs, production never")
    w.veil_to_file(policy, "attester", "devnet-policy")
    url = f"http://127.0.0.1:{attester_port}"
    # The demo's worker beats every second; keep each beat (production thins to one per 10 s).
    keep_every_beat = ["--min-heartbeat-interval", "0"]
    attester = _start_attester(w, work / "attester.sqlite", attester_port,
                               ["--policy", str(policy), *keep_every_beat])  # fmt: skip
    try:
        w.step("A provider stakes PHA and posts the vPHA as collateral")
        w.veil("worker", "provider", "--stake", "2000", "--account", "provider")

        w.step("A worker proves its machine, registers on chain and sends heartbeats")
        w.say("its key is bound into the quote's report data; the attester verifies, then signs")
        w.veil("worker", "run", "--provider", provider, "--tee", "sim", "--attester", url,
               "--state-dir", str(state), "--iterations", "3", "--interval", "1",
               "--account", "provider")  # fmt: skip
        w.veil("worker", "status", "--state-dir", str(state), "--attester", url)

        w.step("Anyone re-verifies the registered worker from its published evidence")
        worker = _worker_address(state)
        w.veil("worker", "verify", "--worker", worker, "--attester", url,
               "--policy", str(policy))  # fmt: skip
    finally:
        attester.terminate()
        attester.wait(timeout=10)


CLOUD_GATEWAY_TOKEN = "demo-gateway-token"


def cloud(w: Walkthrough, work: Path, compute_dir: Path) -> None:
    """Issue 12's story: a secret-holding app deployed onto the attested worker, then updated.

    Every service runs as its own process, as an operator starts it; the customer's commands
    run in-process like the rest of the demo, with `$VEIL_HOME` pointed into the demo's home so
    the login's API key never replaces one the user saved.
    """
    import hashlib
    import os
    import secrets
    import shutil

    # a previous run's control plane knows apps of a chain that no longer exists
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    home = work / "home"
    policy = compute_dir / "devnet-policy.toml"
    env = {**os.environ, "VEIL_HOME": str(home), "VEIL_GATEWAY_TOKEN": CLOUD_GATEWAY_TOKEN}
    ports = {name: free_port() for name in ("attester", "kms", "cloud", "gateway")}
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    dep = ["--deployment", str(w.deployment)]
    services = _Services(w, work, env)
    saved_home = os.environ.get("VEIL_HOME")
    os.environ["VEIL_HOME"] = str(home)
    try:
        w.step("The cloud: control plane, KMS and gateway, each one command")
        w.say("the KMS derives each app's keys from its root secret and releases them only to an")
        w.say("active worker whose quote names a compose hash the app's owner allowed on AppAuth")
        services.start("attester", ["attester", "serve", "--policy", str(policy), *dep,
                       "--db", str(compute_dir / "attester.sqlite"), "--port",
                       str(ports["attester"]), "--account", "attester",
                       "--min-heartbeat-interval", "0"],
                       url["attester"] + "/v1/health")  # fmt: skip
        services.start("kms", ["kms", "serve", "--root-secret-file", str(work / "kms-root.hex"),
                       *dep, "--devnet", "--port", str(ports["kms"])],
                       url["kms"] + "/v1/kms/info")  # fmt: skip
        db = work / "cloud.sqlite"
        services.start("cloud", ["cloud", "serve", "--db", f"sqlite:///{db}", "--port",
                       str(ports["cloud"]), "--kms-url", url["kms"], *dep],
                       url["cloud"] + "/openapi.json")  # fmt: skip
        services.start("gateway", ["gateway", "serve", "--control-plane", url["cloud"],
                       "--port", str(ports["gateway"]), "--domain", "apps.localhost"],
                       url["gateway"] + "/")  # fmt: skip

        w.step("The attested worker also runs apps now (process runtime: SIMULATED)")
        state = compute_dir / "worker"
        provider = _worker_provider()
        worker_log = services.start("worker", ["worker", "run", "--provider", provider, "--tee",
                                    "sim", "--attester", url["attester"], "--state-dir",
                                    str(state), "--interval", "5", "--account", "provider", *dep,
                                    "--control-plane", url["cloud"], "--runtime", "process",
                                    "--sync-interval", "0.5", *DEMO_DISK])  # fmt: skip
        services.wait_for_log("worker", worker_log, "apps: synced with the control plane")
        w.say("worker synced with the control plane")

        w.step("alice signs in with Ethereum and deploys an app holding a secret")
        app_dir = work / "hello"
        app_dir.mkdir(exist_ok=True)
        secret = "demo-secret-" + secrets.token_hex(12)
        digest = hashlib.sha256(secret.encode()).hexdigest()
        _write(app_dir / ".env", f"DEMO_SECRET={secret}\n")
        _write(app_dir / "compose.yaml", _hello_compose("1"))
        w.say("compose.yaml runs a tiny HTTP server that answers the secret's hash, never it;")
        w.say(f".env holds DEMO_SECRET (its sha256 starts {digest[:16]})")
        w.veil("cloud", "login", "--url", url["cloud"], "--account", "alice", chain=False)
        w.say("the secret is encrypted here, to the KMS-signed env key; AppAuth allows the hash")
        signer = _kms_signer(url["kms"])
        w.say(f"alice pins the KMS signer she trusts ({signer}, from the KMS operator)")
        deploy = ["cloud", "deploy", str(app_dir / "compose.yaml"), "--env-file",
                  str(app_dir / ".env"), "--name", "hello", "--account", "alice",
                  "--kms-signer", signer, "--wait"]  # fmt: skip
        w.veil(*deploy, chain=False, extra=dep)
        app_id = _app_id(url["cloud"], home)
        app_url = f"{url['gateway']}/apps/{app_id}/8080/"

        w.step("Reach it through the gateway; the secret arrived only inside")
        answer = _fetch_json(w, app_url, lambda body: body.get("version") == "1")
        if answer.get("secret_sha256") != digest:
            raise VeilError(f"the app reports secret hash {answer.get('secret_sha256')}")
        w.say("the app's hash of DEMO_SECRET matches ours: it decrypted the secret inside")
        for where, files in (("control plane's database", work.glob("cloud.sqlite*")),
                             ("worker's disk", state.rglob("*"))):  # fmt: skip
            leaked = [f for f in files if f.is_file() and secret.encode() in f.read_bytes()]
            if leaked:
                raise VeilError(f"the secret is in {leaked[0]}")
            w.say(f"the secret is not in the {where} (every file searched)")
        w.veil("cloud", "attestation", "hello", "--policy", str(policy), chain=False)

        w.step("Update: the same name with a new compose (a new hash, allowed on AppAuth)")
        _write(app_dir / "compose.yaml", _hello_compose("2"))
        w.veil(*deploy, chain=False, extra=dep)
        answer = _fetch_json(w, app_url, lambda body: body.get("version") == "2")
        if answer.get("secret_sha256") != digest:
            raise VeilError("the updated app lost its secret")

        w.step("Delete it: the worker removes it and the gateway stops routing")
        w.veil("cloud", "delete", "hello", chain=False)
        status = _wait_gone(app_url)
        w.say(f"GET {app_url} -> {status}")
    finally:
        if saved_home is None:
            os.environ.pop("VEIL_HOME", None)
        else:
            os.environ["VEIL_HOME"] = saved_home
        services.stop()


def billing(w: Walkthrough, work: Path, compute_dir: Path) -> None:
    """Issue 13's story: apps billed per second from the market escrow; one runs dry, is
    paused (the worker stops it on its own reading of the chain), is topped up and resumes;
    the provider collects from several leases in one transaction; deletes refund at once.

    The services run as processes again, now with the control plane's operator key (the
    account that submits the customer's signed lease and pays its gas).
    """
    import os
    import shutil

    from veil.devnet.accounts import devnet_account

    # a previous run's control plane holds leases of a chain that no longer exists
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    home = work / "home"
    policy = compute_dir / "devnet-policy.toml"
    operator = devnet_account("dave")
    env = {**os.environ, "VEIL_HOME": str(home), "VEIL_OPERATOR_KEY": operator.key.hex(),
           "VEIL_GATEWAY_TOKEN": CLOUD_GATEWAY_TOKEN}  # fmt: skip
    ports = {name: free_port() for name in ("attester", "kms", "cloud", "gateway")}
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    dep = ["--deployment", str(w.deployment)]
    services = _Services(w, work, env)
    saved_home = os.environ.get("VEIL_HOME")
    os.environ["VEIL_HOME"] = str(home)
    try:
        w.step("Billing: the control plane opens each app's lease on the market escrow")
        w.say(f"--operator-key (here $VEIL_OPERATOR_KEY, dave {operator.address}) submits the")
        w.say("customer's signed lease and pays its gas; only the signature moves her money")
        services.start("attester", ["attester", "serve", "--policy", str(policy), *dep,
                       "--db", str(compute_dir / "attester.sqlite"), "--port",
                       str(ports["attester"]), "--account", "attester",
                       "--min-heartbeat-interval", "0"],
                       url["attester"] + "/v1/health")  # fmt: skip
        services.start("kms", ["kms", "serve", "--root-secret-file", str(work / "kms-root.hex"),
                       *dep, "--devnet", "--port", str(ports["kms"])],
                       url["kms"] + "/v1/kms/info")  # fmt: skip
        services.start("cloud", ["cloud", "serve", "--db", f"sqlite:///{work / 'cloud.sqlite'}",
                       "--port", str(ports["cloud"]), "--kms-url", url["kms"], *dep],
                       url["cloud"] + "/openapi.json")  # fmt: skip
        services.start("gateway", ["gateway", "serve", "--control-plane", url["cloud"],
                       "--port", str(ports["gateway"]), "--domain", "apps.localhost"],
                       url["gateway"] + "/")  # fmt: skip
        worker_log = services.start("worker", ["worker", "run", "--provider",
                                    _worker_provider(), "--tee", "sim", "--attester",
                                    url["attester"], "--state-dir", str(compute_dir / "worker"),
                                    "--interval", "5", "--account", "provider", *dep,
                                    "--control-plane", url["cloud"], "--runtime", "process",
                                    "--sync-interval", "0.5", "--charge-usage-every", "5",
                                    *DEMO_DISK])  # fmt: skip
        services.wait_for_log("worker", worker_log, "apps: synced with the control plane")
        w.say("the worker reads each app's lease from the chain before running it")

        w.step("alice deploys two apps; each deploy signs its lease (EIP-712) and funds it")
        w.veil("cloud", "login", "--url", url["cloud"], "--account", "alice", chain=False)
        signer = _kms_signer(url["kms"])
        app_dir = work / "meter"
        app_dir.mkdir(exist_ok=True)
        _write(app_dir / "compose.yaml", _meter_compose())
        w.say("tdx.small costs 0.5 PHA/h; 0.05 PHA buys 360 s, of which the last 300 s are")
        w.say("the prepaid shutdown window: 'meter' has about a minute of runway")
        for name, fund in (("meter", "0.05"), ("meter-b", "1")):
            w.veil("cloud", "deploy", str(app_dir / "compose.yaml"), "--name", name,
                   "--fund", fund, "--account", "alice", "--kms-signer", signer, "--wait",
                   chain=False, extra=dep)  # fmt: skip
        w.veil("cloud", "billing", "meter", chain=False)

        w.step("'meter' runs dry: its lease pauses and the worker stops it (disk kept)")
        w.devnet("advance", "--seconds", "120")
        status = _wait_status(url["cloud"], home, "meter", "stopped")
        w.say(f"worker: {status.get('status_reason') or status.get('error')}")
        w.veil("cloud", "billing", "meter", chain=False)

        w.step("alice tops up: the lease resumes and the worker starts the app again")
        w.veil("cloud", "topup", "1", "--app", "meter", "--account", "alice", chain=False,
               extra=dep)  # fmt: skip
        _wait_status(url["cloud"], home, "meter", "running")
        w.say("meter is running again")
        w.veil("cloud", "billing", chain=False)

        w.step("Per-second usage: alice's monthly statement (CSV), rebuilt from the chain")
        month = time.strftime("%Y-%m", time.gmtime(_chain_time(w)))
        statement = work / f"statement-{month}.csv"
        w.veil("cloud", "statement", month, "--csv", "--out", str(statement), chain=False)
        rows = statement.read_text().splitlines()[1:]
        w.say(f"{len(rows)} usage record(s); the first: {rows[0] if rows else '-'}")

        w.step("The provider collects its earnings from every lease in one transaction")
        w.veil("cloud", "earnings", "--withdraw", "--account", "provider", chain=False,
               extra=dep)  # fmt: skip

        w.step("Delete both apps: alice closes their leases, the unspent PHA comes back now")
        for name in ("meter", "meter-b"):
            w.veil("cloud", "delete", name, "--account", "alice", chain=False, extra=dep)

        confidential_ai(w, work, home, url, dep, signer, worker_log)
    finally:
        if saved_home is None:
            os.environ.pop("VEIL_HOME", None)
        else:
            os.environ["VEIL_HOME"] = saved_home
        services.stop()


#: What the demo's AI gateway charges per prompt token of its built-in embeddings model
#: (0.0001 PHA), and the most alice lets a voucher charge per token.
AI_PRICE = 10**14
AI_CAP = 2 * 10**14


def confidential_ai(
    w: Walkthrough,
    work: Path,
    home: Path,
    url: dict[str, str],
    dep: list[str],
    signer: str,
    worker_log: Path,
) -> None:
    """Issue 15's story on the billing section's cloud: an OpenAI-compatible gateway
    deployed as a billed app, attested before anything is sent, every answer signed, its
    tokens metered under the key alice verified and charged to her lease by the provider."""
    from veil.tee.simulator import AppSpec

    w.step("Confidential AI: alice deploys an OpenAI-compatible gateway, priced per token")
    app_dir = work / "ai"
    app_dir.mkdir(exist_ok=True)
    _write(app_dir / "compose.yaml", _ai_compose())
    w.say("the gateway serves all-MiniLM-L6-v2 embeddings itself; its price list is on its")
    w.say(f"command line ({AI_PRICE} wei per prompt token), so the compose hash covers it")
    w.veil("cloud", "deploy", str(app_dir / "compose.yaml"), "--name", "ai", "--fund", "1",
           "--account", "alice", "--kms-signer", signer, "--wait", chain=False,
           extra=dep)  # fmt: skip
    app = _wait_status(url["cloud"], home, "ai", "running")
    gateway = f"{url['gateway']}/apps/{app['app_id']}/8080"
    policy = app_dir / "policy.toml"
    compose_hash = str(app["compose_hash"]).removeprefix("0x")
    _write(policy, "allow_simulated = true  # the devnet's worker has no TDX\n"
           f'allowed_compose_hashes = ["{compose_hash}"]\n'
           f'[[os_images]]\nname = "sim"\nos_image_hash = "{AppSpec().os_image_hash.hex()}"\n'
           )  # fmt: skip
    w.say(f"alice's policy pins the compose hash she deployed ({compose_hash[:16]}…)")

    w.step("alice attests it with a fresh nonce, then names its key her lease's meter")
    w.veil("ai", "verify", gateway, "--policy", str(policy), chain=False)
    w.veil("ai", "meter", gateway, "--max-token-rate", str(AI_CAP), "--policy", str(policy),
           "--account", "alice", chain=False, extra=dep)  # fmt: skip

    w.step("Each answer is signed and metered; the worker charges the lease per token")
    w.say("one more verified call (the probe embeds a sentence); the provider's worker submits")
    w.say("the gateway's signed voucher itself (every 5 s here, every 10 min by default)")
    w.veil("ai", "verify", gateway, "--policy", str(policy), chain=False)
    voucher = _fetch_json(w, gateway + "/v1/usage/voucher", lambda body: body.get("tokens", 0) > 0)
    charged = f"lease {int(voucher['lease_id'], 16):#x} charged"
    signed = f"({voucher['tokens']} in all)"
    deadline = time.monotonic() + 60
    while not any(charged in line and signed in line for line in _lines(worker_log)):
        if time.monotonic() > deadline:
            raise VeilError(f"demo: the worker did not charge {signed[1:-1]} (see {worker_log})")
        time.sleep(0.3)
    for line in _lines(worker_log):
        if "apps: usage:" in line:
            w.say(f"worker: {line.removeprefix('apps: usage: ')}")
    w.say("by hand, the same voucher has nothing new to charge:")
    w.veil("ai", "charge", gateway, "--account", "provider", chain=False, extra=dep)
    w.veil("cloud", "delete", "ai", "--account", "alice", chain=False, extra=dep)


def _lines(log: Path) -> list[str]:
    return log.read_text(errors="replace").splitlines()


def _ai_compose() -> str:
    veil = veil_executable()
    return (
        "services:\n  gateway:\n    image: ghcr.io/veil-network/veil:0.1.0\n"
        f'    command: ["{veil}", "ai", "serve", "--tee", "sim", "--compose-hash",'
        ' "${VEIL_COMPOSE_HASH:-}", "--state-dir", "state", "--price",'
        f' "all-MiniLM-L6-v2={AI_PRICE}:0"]\n'
        '    ports:\n      - "8080"\n'
    )


def _meter_compose() -> str:
    app = Path(__file__).with_name("demo_app.py")
    return (
        "services:\n  web:\n    image: python:3.12-slim\n"
        f'    command: ["{sys.executable}", "{app}"]\n'
        '    environment:\n      APP_VERSION: "meter"\n'
        '    ports:\n      - "8080"\n'
    )


def _wait_status(cloud_url: str, home: Path, name: str, status: str) -> dict[str, Any]:
    """Poll the app (with the saved API key) until it reports `status` (60 s at most)."""
    import json
    import urllib.request

    key = json.loads((home / "cloud" / "credentials.json").read_text())["api_key"]
    request = urllib.request.Request(
        cloud_url + "/v1/apps", headers={"Authorization": f"Bearer {key}"}
    )
    deadline = time.monotonic() + 60
    entry: dict[str, Any] = {}
    while time.monotonic() < deadline:
        with urllib.request.urlopen(request, timeout=10) as answer:
            apps = json.loads(answer.read())
        entry = next((a for a in apps if a["name"] == name), {})
        if entry.get("status") == status:
            return entry
        time.sleep(0.3)
    raise VeilError(f"demo: app {name} not {status} within 60 s (last: {entry.get('status')})")


def _hello_compose(version: str) -> str:
    app = Path(__file__).with_name("demo_app.py")
    return (
        "services:\n  web:\n    image: python:3.12-slim\n"
        f'    command: ["{sys.executable}", "{app}"]\n'
        f'    environment:\n      APP_VERSION: "{version}"\n      DEMO_SECRET: ${{DEMO_SECRET}}\n'
        '    ports:\n      - "8080"\n'
    )


def _write(path: Path, text: str) -> None:
    from veil.atomic import write_text

    write_text(path, text)


def _worker_provider() -> str:
    from veil.devnet.accounts import devnet_account

    return devnet_account("provider").address


def _app_id(cloud_url: str, home: Path) -> str:
    """The app id the control plane gave `hello`, read with the saved API key."""
    import json
    import urllib.request

    key = json.loads((home / "cloud" / "credentials.json").read_text())["api_key"]
    request = urllib.request.Request(
        cloud_url + "/v1/apps", headers={"Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        apps = json.loads(answer.read())
    listed = apps["apps"] if isinstance(apps, dict) else apps
    return next(str(a["app_id"]) for a in listed if a["name"] == "hello")


def _kms_signer(kms_url: str) -> str:
    import json
    import urllib.request

    with urllib.request.urlopen(kms_url + "/v1/kms/info", timeout=10) as answer:
        return str(json.loads(answer.read())["signer"])


def _fetch_json(
    w: Walkthrough, url: str, ready: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """GET through the gateway until the app answers what the step expects (30 s at most)."""
    import json
    import urllib.request

    w.console.print(f"[bold cyan]$ curl {url}[/bold cyan]")
    deadline = time.monotonic() + 30
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                body = json.loads(answer.read())
            if ready(body):
                w.console.print(json.dumps(body))
                return body
        except (OSError, ValueError):
            pass
        time.sleep(0.3)
    raise VeilError(f"demo: {url} did not answer as expected within 30 s (last: {body})")


def _wait_gone(url: str) -> int:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=5).close()
        except urllib.error.HTTPError as error:
            if error.code in (404, 503):
                return error.code
        except OSError:
            pass
        time.sleep(0.3)
    raise VeilError(f"demo: {url} still answers 30 s after the delete")


class _Services:
    """The cloud section's background processes, each logging to a file, all stopped at the end."""

    def __init__(self, w: Walkthrough, work: Path, env: dict[str, str]) -> None:
        self.w, self.work, self.env = w, work, env
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, args: list[str], health: str | None = None) -> Path:
        import urllib.request

        self.w.console.print(f"[bold cyan]$ veil {' '.join(args)} &[/bold cyan]")
        log = self.work / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen([str(veil_executable()), *args], stdout=out,
                                       stderr=subprocess.STDOUT, env=self.env)  # fmt: skip
        self.running.append(process)
        deadline = time.monotonic() + 60
        while health is not None:
            if process.poll() is not None:
                raise VeilError(f"{name} exited: {log.read_text().strip().splitlines()[-1:]}")
            try:
                urllib.request.urlopen(health, timeout=1).close()
                self.w.say(f"{name} up")
                break
            except urllib.error.HTTPError:
                self.w.say(f"{name} up")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise VeilError(f"{name} did not answer {health} within 60 s") from None
                time.sleep(0.2)
        return log

    def wait_for_log(self, name: str, log: Path, line: str) -> None:
        deadline = time.monotonic() + 120  # registration, then the registry cache's refresh
        while line not in log.read_text():
            process = self.running[-1]
            if process.poll() is not None:
                raise VeilError(f"{name} exited: {log.read_text().strip().splitlines()[-1:]}")
            if time.monotonic() > deadline:
                raise VeilError(f"{name}: no `{line}` within 120 s (see {log})")
            time.sleep(0.2)

    def stop(self) -> None:
        """SIGINT first (the worker stops its apps on it), then wait; kill what hangs."""
        import signal

        for process in reversed(self.running):
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in reversed(self.running):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _worker_address(state: Path) -> str:
    from veil.compute.identity import load_identity

    identity = load_identity(state)
    if identity is None:
        raise VeilError(f"worker state {state}: no worker key was created")
    return identity.address


def _chain_time(w: Walkthrough) -> int:
    return int(w.chain().w3.eth.get_block("latest")["timestamp"])


def _start_attester(
    w: Walkthrough, db: Path, port: int, inputs: list[str]
) -> subprocess.Popen[bytes]:
    """`veil attester serve` as its own process, as an operator would run it, on a fresh
    database: each demo deploys a new chain, and a previous run's records (bindings of its
    fresh receivers, four per holder at most) would refuse this run's."""
    import urllib.request

    for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        stale.unlink(missing_ok=True)
    args = ["attester", "serve", *inputs, "--deployment", str(w.deployment),
            "--db", str(db), "--port", str(port), "--account", "attester"]  # fmt: skip
    w.console.print(f"[bold cyan]$ veil {' '.join(args)} &[/bold cyan]")
    process = subprocess.Popen([str(veil_executable()), *args], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read().decode() if process.stderr else ""
            raise VeilError(f"attester exited: {error.strip().splitlines()[-1:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=1) as r:
                w.say(f"attester up: {r.read().decode()[:160]}")
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise VeilError(f"attester did not answer on port {port} within 30 s")


# The demo's three simulated workers: (name, GPU model, GPUs, heartbeats sent). The hour
# is compressed: heartbeats go out every 0.1 s of wall clock, and the report expects one
# per 180 s of the epoch (`--heartbeat-interval 180`), so 20 heartbeats are a full epoch.
REWARD_WORKERS = (("cpu", "CPU_TDX", 0, 20), ("h100", "H100", 1, 17), ("h200", "H200", 1, 10))
REWARD_INTERVAL = "180"


def rewards(w: Walkthrough, work: Path, attester_port: int) -> None:
    """Issue 11's story: one hourly epoch of three workers, settled, claimed and audited.

    It runs before the demo's first time jump: heartbeats carry wall-clock timestamps, which
    match chain time only until then, and epoch 0 (from the pool's genesis at deploy) is
    the one still open. The attester runs with `--chain-clock`, so `devnet advance` ends
    the epoch and completes its log instead of an hour of waiting.
    """
    import json
    import shutil

    from veil.devnet.accounts import devnet_account

    shutil.rmtree(work, ignore_errors=True)  # a previous run's reports and signatures
    work.mkdir(parents=True)
    policy, reports = work / "devnet-policy.toml", str(work / "reports")
    provider = devnet_account("dave").address
    url = f"http://127.0.0.1:{attester_port}"
    chain = w.chain()
    pool, vault, pha = (chain.contract(n) for n in ("RewardPool", "Vault", "PHA"))

    w.step("Compute rewards: a provider runs a CPU, an H100 and an H200 worker for an epoch")
    w.say("epochs are an hour of chain time from the pool's genesis; this is epoch 0")
    w.veil_to_file(policy, "attester", "devnet-policy")
    attester = _start_attester(w, work / "attester.sqlite", attester_port,
                               ["--policy", str(policy), "--min-heartbeat-interval", "0",
                                "--chain-clock"])  # fmt: skip
    try:
        w.veil("worker", "provider", "--stake", "5000", "--account", "dave")
        # What NVIDIA's local verifier reports for a healthy H100/H200 (both GH100 parts):
        # the devnet has no GPU either, so the demo writes the claim set it would send.
        claim = {"hwmodel": "GH100 A01 GSP BROM", "measres": "success", "secboot": True,
                 "dbgstat": "disabled", "x-nvidia-gpu-attestation-report-signature-verified":
                 True, "x-nvidia-gpu-attestation-report-nonce-match": True}  # fmt: skip
        gpu = work / "gpu-claims.json"
        gpu.write_text(json.dumps({"claims": [claim], "result_code": 0}))
        for name, model, gpus, beats in REWARD_WORKERS:
            evidence = ["--gpu-evidence", str(gpu)] if gpus else []
            if beats < 20:
                w.say(f"the {model} worker is offline for the last {20 - beats} of 20 beats")
            w.veil("worker", "run", "--provider", provider, "--tee", "sim",
                   "--gpu-model", model, "--gpu-count", str(gpus), *evidence, "--attester", url,
                   "--state-dir", str(work / name), "--iterations", str(beats),
                   "--interval", "0.1", "--account", "dave")  # fmt: skip

        w.step("The epoch ends; the attester's signed log is complete; close it")
        clock = pool.functions
        end = int(clock.genesisTime().call()) + int(clock.epochLength().call())
        w.devnet("advance", "--seconds", str(end + 301 - _chain_time(w)))
        _await_complete_log(url, 0)
        w.say("weight (H100 1.0, H200 1.5, CPU 0.1) x uptime; below 80% uptime: nothing")
        w.veil("rewards", "close", "0", "--log", url, "--heartbeat-interval", REWARD_INTERVAL,
               "--sign", "--dir", reports, "--account", "attester")  # fmt: skip

        w.step("Anyone publishes the signed root; after the challenge window, anyone finalizes")
        w.veil("rewards", "publish", "0", "--dir", reports, "--account", "alice")
        w.devnet("advance", "--seconds", str(int(clock.challengeWindow().call()) + 1))
        treasury = clock.treasury().call()
        before = (pha.functions.balanceOf(treasury).call(),
                  pha.functions.balanceOf(vault.address).call())  # fmt: skip
        w.veil("rewards", "finalize", "0", "--account", "alice")
        budget = int(clock.epochBudget(0).call())
        to_treasury, to_stakers, _ = (int(x) for x in clock.split(budget).call())
        got_treasury = pha.functions.balanceOf(treasury).call() - before[0]
        got_vault = pha.functions.balanceOf(vault.address).call() - before[1]
        w.say(f"treasury +{got_treasury / 10**18:,.6f} PHA (its {to_treasury / 10**18:,.0f} "
              "plus what no worker earned); the vault's reward reserve "
              f"+{got_vault / 10**18:,.0f} PHA (the stakers' {to_stakers / 10**18:,.0f}, "
              "streamed into the vPHA price)")  # fmt: skip

        w.step("The provider claims its workers' rewards as vPHA")
        w.veil("rewards", "claim", "--as", "vpha", "--dir", reports, "--account", "dave")
        w.veil("stake", "status", "--account", "dave")

        w.step("Anyone recomputes the epoch from the attester's log and the chain")
        w.veil("rewards", "audit", "0", "--log", url, "--heartbeat-interval", REWARD_INTERVAL,
               "--dir", reports)  # fmt: skip
    finally:
        attester.terminate()
        attester.wait(timeout=10)


def _await_complete_log(url: str, epoch: int) -> None:
    """The attester reads chain time at most once a second: wait until its log says done."""
    import json
    import urllib.request

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{url}/v1/compute/heartbeats?epoch={epoch}") as answer:
            if json.loads(answer.readline()).get("complete"):
                return
        time.sleep(0.5)
    raise VeilError(f"attester {url}: epoch {epoch}'s log is still not complete")
