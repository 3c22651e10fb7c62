"""The production genesis: deploy with the migration root committed and nobody funded.

On a real network there are no demo accounts, so the first vPHA (and with it the first
votes) can only come from migration claims. The deployer therefore commits the operator's
Merkle root and its totals while it still owns the Migrator, registers the attesters that
will sign bindings, names the guardian (or none) and only then hands everything to the
timelock. Every input is checked before the first transaction: a deployment that starts
with a wrong root or an attester set that cannot sign can only be fixed by governance,
which cannot act until claims have happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3 import Web3

from veil.chain.client import Chain
from veil.chain.deployment import Deployment
from veil.errors import ChainError, InputError
from veil.merkle import load_tree
from veil.migration.ledger_format import load_ledger
from veil.network.deploy import (
    DAY,
    ZERO_ADDRESS,
    MigrationRoot,
    NetworkParameters,
    Progress,
    deploy_network,
)

# PHA.vy's CAP (1 B PHA in wei): a root committing more could never be claimed in full.
PHA_CAP_WEI = 10**27
# attester_set.vy's MAX_SIGNATURES: a statement carries at most this many attester signatures.
MAX_THRESHOLD = 8
DEFAULT_CLAIM_DAYS = 180


@dataclass(frozen=True)
class MigrationSource:
    """The published tree, checked leaf by leaf against the ledger it was built from."""

    root: bytes
    total_free: int
    total_staked: int
    leaf_count: int
    genesis_hash: str

    def commit(self, deadline: int) -> MigrationRoot:
        return MigrationRoot(
            self.root, self.total_free, self.total_staked, self.leaf_count, deadline
        )


def migration_source(tree_path: Path, ledger_path: Path) -> MigrationSource:
    """Read TREE.json and LEDGER.json as `veil migrate` writes them; refuse any mismatch.

    The totals committed on chain are the ledger's (the reconciled 1:1 amounts), so the
    tree must hold exactly the ledger's leaves: then its root pays exactly those totals.
    """
    ledger = load_ledger(ledger_path)  # re-checks the reconciliation to TotalIssuance
    tree = load_tree(tree_path)  # re-hashes every node up to the root
    tree_totals = (sum(v[2] for v in tree.values), sum(v[3] for v in tree.values))
    ledger_totals = (ledger.free_wei, ledger.staked_wei)
    if tree_totals != ledger_totals or len(tree.values) != len(ledger.leaves):
        raise InputError(
            f"tree {tree_path}: totals (free {tree_totals[0]}, staked {tree_totals[1]} wei, "
            f"{len(tree.values)} leaves) do not match ledger {ledger_path} (free "
            f"{ledger_totals[0]}, staked {ledger_totals[1]} wei, {len(ledger.leaves)} leaves)"
        )
    for position, (value, leaf) in enumerate(zip(tree.values, ledger.leaves, strict=True)):
        if tuple(value) != tuple(leaf):
            raise InputError(
                f"tree {tree_path}: leaf {position} ({value[0]}, 0x{value[1].hex()}) differs "
                f"from ledger {ledger_path}"
            )
    snapshot = tree.metadata.get("ledger", {}).get("snapshot", {})
    tree_genesis = str(snapshot.get("genesis_hash") or "")
    ledger_genesis = str(ledger.snapshot.get("genesis_hash") or "")
    if not tree_genesis:
        raise InputError(
            f"tree {tree_path}: records no source genesis hash (bindings could not name it)"
        )
    if ledger_genesis and ledger_genesis.lower() != tree_genesis.lower():
        raise InputError(
            f"tree {tree_path}: genesis {tree_genesis} is not ledger {ledger_path}'s "
            f"{ledger_genesis}"
        )
    if sum(tree_totals) > PHA_CAP_WEI:
        raise InputError(
            f"tree {tree_path}: commits {sum(tree_totals)} wei, above PHA's cap {PHA_CAP_WEI}"
        )
    return MigrationSource(tree.root, *tree_totals, len(tree.values), tree_genesis)


def production_parameters(
    attesters: list[str],
    threshold: int,
    os_images: list[bytes] | None = None,
    compose_hashes: list[bytes] | None = None,
) -> NetworkParameters:
    """Governance timings of NetworkParameters; no demo accounts, no reward reserve.

    Nothing is minted at genesis: every PHA in existence comes from a verified claim, and
    rewards start when governance funds the reserve and sets the rate.
    """
    return NetworkParameters(
        reward_rate=0,
        reward_reserve_pha=0,
        attesters=attesters,
        attester_threshold=threshold,
        os_images=list(os_images or []),
        compose_hashes=list(compose_hashes or []),
    )


def check_production(
    params: NetworkParameters, deployer: str, guardian: str | None, claim_days: int
) -> None:
    """Refuse what would leave the network unable to start or with a privileged deployer."""
    if params.reward_reserve_pha:
        raise InputError("production deploy: funds nobody (no reward reserve at genesis)")
    if not params.attesters:
        raise InputError("production deploy: no --attester; without one no claim can pass")
    if len(set(params.attesters)) != len(params.attesters):
        raise InputError("production deploy: an --attester is given twice")
    if not 1 <= params.attester_threshold <= min(len(params.attesters), MAX_THRESHOLD):
        raise InputError(
            f"--threshold {params.attester_threshold}: must be 1..{len(params.attesters)} "
            f"(the attesters given, at most {MAX_THRESHOLD})"
        )
    if deployer in params.attesters:
        raise InputError(f"--attester {deployer}: is the deployer; attesters use their own keys")
    if guardian is not None and guardian == deployer:
        raise InputError(
            f"--guardian {guardian}: is the deployer, whose key should hold nothing after "
            "the handover; name another address or 'none'"
        )
    if claim_days <= 0:
        raise InputError(f"--claim-days {claim_days}: must be at least 1")


def deploy_production(
    chain: Chain,
    deployer: LocalAccount,
    network: str,
    rpc_url: str,
    params: NetworkParameters,
    source: MigrationSource,
    *,
    expected_chain_id: int,
    guardian: str | None,
    claim_days: int = DEFAULT_CLAIM_DAYS,
    progress: Progress = lambda _msg: None,
) -> Deployment:
    """Check everything, deploy with the root committed, then read the handover back."""
    chain_id = chain.w3.eth.chain_id
    if chain_id != expected_chain_id:
        raise ChainError(f"rpc {rpc_url}: chain id {chain_id}, not --chain-id {expected_chain_id}")
    check_production(params, deployer.address, guardian, claim_days)
    if chain.w3.eth.get_balance(deployer.address) == 0:
        raise ChainError(f"deployer {deployer.address}: no ETH for gas on chain {chain_id}")
    now = int(chain.w3.eth.get_block("latest")["timestamp"])
    migration = source.commit(now + claim_days * DAY)
    deployment = deploy_network(
        chain,
        deployer,
        network,
        rpc_url,
        params,
        guardian=guardian,
        migration=migration,
        progress=progress,
    )
    deployment.parameters["migration"]["genesis_hash"] = source.genesis_hash
    problems = genesis_problems(chain, deployment, deployer.address)
    if problems:
        raise ChainError(f"deployment {network}: handover incomplete: {'; '.join(problems)}")
    return deployment


def genesis_problems(chain: Chain, deployment: Deployment, deployer: str) -> list[str]:
    """Read the finished genesis back from the chain: what is not as governance needs it.

    Empty means: the timelock owns every contract and is its own admin, the Governor is its
    only proposer, the deployer holds no role and minted nothing, the Migrator alone may
    mint and has the committed root and attesters, and the guardian is the one the
    deployment names.
    """
    c = chain.contract
    timelock = deployment.address("Timelock")
    problems = []
    for name in ("PHA", "Vault", "Migrator", "ComputeRegistry"):
        owner = c(name).functions.owner().call()
        if owner.lower() != timelock.lower():
            problems.append(f"{name} is owned by {owner}, not the timelock")
    lock = c("Timelock").functions
    admin = b"\x00" * 32
    proposer = Web3.keccak(text="PROPOSER_ROLE")
    if lock.hasRole(admin, deployer).call():
        problems.append("the deployer is still timelock admin")
    if lock.hasRole(proposer, deployer).call():
        problems.append("the deployer may propose to the timelock")
    if not lock.hasRole(proposer, deployment.address("Governor")).call():
        problems.append("the Governor may not propose to the timelock")
    pha = c("PHA").functions
    if pha.isMinter(deployer).call():
        problems.append("the deployer is still a PHA minter")
    if not pha.isMinter(deployment.address("Migrator")).call():
        problems.append("the Migrator is not a PHA minter")
    migrator = c("Migrator").functions
    committed = deployment.parameters.get("migration")
    # The Migrator holds the committed free total from the root on; nothing else exists.
    genesis_free = int(committed["total_free_wei"]) if committed else 0
    supply = pha.totalSupply().call()
    held = pha.balanceOf(deployment.address("Migrator")).call()
    if (supply, held) != (genesis_free, genesis_free):
        problems.append(
            f"PHA supply is {supply} wei at genesis ({held} held by the Migrator), "
            f"not the committed free total {genesis_free}"
        )
    if committed is None:
        problems.append("no migration root recorded in the deployment")
    else:
        on_chain = (
            "0x" + bytes(migrator.root().call()).hex(),
            str(migrator.totalFree().call()),
            str(migrator.totalStaked().call()),
            migrator.leafCount().call(),
            migrator.deadline().call(),
        )
        wanted = tuple(
            committed[k]
            for k in ("root", "total_free_wei", "total_staked_wei", "leaf_count", "deadline")
        )
        if on_chain != wanted:
            problems.append(f"the Migrator commits {on_chain}, not {wanted}")
    attesters = sorted(a.lower() for a in migrator.attesters().call())
    wanted_attesters = sorted(str(a).lower() for a in deployment.parameters.get("attesters", []))
    if attesters != wanted_attesters:
        problems.append(f"the Migrator's attesters are {attesters}, not {wanted_attesters}")
    threshold = migrator.threshold().call()
    if threshold != deployment.parameters.get("attester_threshold"):
        problems.append(f"the Migrator's attester threshold is {threshold}")
    guardian = migrator.guardian().call()
    named = deployment.parameters.get("migrator_guardian", ZERO_ADDRESS)
    if guardian.lower() != str(named).lower():
        problems.append(f"the Migrator guardian is {guardian}, not {named}")
    if guardian.lower() == deployer.lower():
        problems.append("the deployer is the Migrator guardian")
    return problems
