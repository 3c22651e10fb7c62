"""Deploy the veil economy and hand every parameter to the timelock.

The order matters: the timelock comes first because it is the treasury and the owner of
everything; the deployer keeps temporary powers (timelock admin, PHA minter, Migrator
owner) only long enough to wire the system, commit the migration root and fund the reward
reserve, then renounces them, so the finished deployment has exactly one master:
governance. This path funds no account: the devnet mints its demo balances through the
`genesis_mints` hook, from `veil.devnet`, which the library never imports.

The root must be committed before the handover on a network without demo accounts:
governance votes with vPHA, vPHA exists only once holders claim, and claims need a root.
A Migrator handed to the timelock without one can never be started (issue 7, finding 3).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import Nonce
from web3.utils.address import get_create_address

from veil.chain.client import Chain
from veil.chain.compile import compile_contract
from veil.chain.deployment import ContractRecord, Deployment
from veil.chain.units import WEI_PER_PHA
from veil.errors import ChainError, InputError
from veil.market.typed_data import instance_type_key

DAY = 86_400
HOUR = 3_600
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


def _market_prices() -> dict[str, int]:
    """The genesis price list of the market, wei of PHA per second by instance-type name
    (the names `veil.cloud.instance_types` accepts, GPU types in canonical form: `h100`,
    `h100x2` .. `h100x8`). Prices per hour: CPU 0.5 / 1 / 2 PHA; per GPU H100 20, H200
    25, B200 40 PHA. A GPU type's rate is the per-GPU rate times the count, so N GPUs
    cost exactly N times one. Governance re-prices with `Market.setPrice`."""
    milli_pha_per_hour = {"tdx.small": 500, "tdx.medium": 1_000, "tdx.large": 2_000}
    prices = {name: m * WEI_PER_PHA // 1_000 // HOUR for name, m in milli_pha_per_hour.items()}
    for gpu, pha_per_hour in (("h100", 20), ("h200", 25), ("b200", 40)):
        per_gpu = pha_per_hour * WEI_PER_PHA // HOUR
        prices[gpu] = per_gpu
        for count in range(2, 9):
            prices[f"{gpu}x{count}"] = per_gpu * count
    return prices


class SlashWindowRefused(InputError):
    """Genesis parameters under which a provider could withdraw before a slash executes."""


@dataclass
class NetworkParameters:
    """Governed parameters at genesis; governance may change every one of them later."""

    timelock_delay: int = 2 * DAY
    voting_delay: int = DAY
    voting_period: int = 5 * DAY
    proposal_threshold_pha: int = 10_000
    quorum_numerator: int = 4
    unlock_period: int = 21 * DAY
    reward_rate: int = WEI_PER_PHA // 10
    reward_reserve_pha: int = 10_000_000
    max_open_requests: int = 16
    treasury_share_bps: int = 1_000
    attesters: list[str] = field(default_factory=list)
    attester_threshold: int = 1
    os_images: list[bytes] = field(default_factory=list)
    compose_hashes: list[bytes] = field(default_factory=list)
    # Slashing: a deregistered worker's collateral cools down for `collateral_cooldown`;
    # the registry's guardian (none if empty) can freeze a provider for `max_freeze`;
    # `guardian_reaction` is the time the guardian is given to notice a slash proposal and
    # freeze. See check_slash_window for how they must relate to the governance path.
    collateral_cooldown: int = 10 * DAY
    max_freeze: int = 14 * DAY
    guardian_reaction: int = DAY
    registry_guardian: str = ""
    # The market (issue 13): price list by instance-type name (wei per second), protocol
    # fee to the treasury (the timelock), grace of a paused lease, prepaid shutdown window.
    market_prices: dict[str, int] = field(default_factory=_market_prices)
    market_fee_bps: int = 250
    market_grace_period: int = 7 * DAY
    market_shutdown_window: int = 300

    def governance_path(self) -> int:
        """Seconds from a proposal's creation until the timelock can first execute it."""
        return self.voting_delay + self.voting_period + self.timelock_delay


def check_slash_window(params: NetworkParameters) -> None:
    """Refuse parameters under which a slash can be dodged.

    A provider sees a slash proposal the moment it is made, and can deregister at once. Its
    collateral must still be cooling when the slash can execute, with room left for the
    guardian to react, so the cooldown must cover the governance path plus the guardian's
    reaction time; and a freeze the guardian makes as the proposal appears must last until
    the proposal can execute, so the maximum freeze must cover the governance path.
    """
    path = params.governance_path()
    needed = path + params.guardian_reaction
    if params.collateral_cooldown < needed:
        raise SlashWindowRefused(
            f"collateral cooldown {params.collateral_cooldown} s is shorter than the "
            f"{needed} s a slash needs (voting delay {params.voting_delay} + voting period "
            f"{params.voting_period} + timelock delay {params.timelock_delay} + guardian "
            f"reaction {params.guardian_reaction}): a provider could withdraw before it executes"
        )
    if params.max_freeze < path:
        raise SlashWindowRefused(
            f"maximum freeze {params.max_freeze} s is shorter than the governance path "
            f"{path} s (voting delay {params.voting_delay} + voting period "
            f"{params.voting_period} + timelock delay {params.timelock_delay}): a freeze "
            "would lapse before the slash can execute"
        )


@dataclass(frozen=True)
class MigrationRoot:
    """What the Migrator commits to: the tree's root, its exact totals and the deadline.

    Committed by the deployer while it still owns the Migrator, so holders can claim (and
    so gain the votes governance needs) from the first block after the deployment.
    """

    root: bytes
    total_free: int
    total_staked: int
    leaf_count: int
    deadline: int

    def to_json(self) -> dict[str, object]:
        return {
            "root": "0x" + self.root.hex(),
            "total_free_wei": str(self.total_free),
            "total_staked_wei": str(self.total_staked),
            "leaf_count": self.leaf_count,
            "deadline": self.deadline,
        }


Progress = Callable[[str], None]


@dataclass(frozen=True)
class GenesisMinter:
    """The deployment in progress, handed to a `genesis_mints` hook while the deployer may
    still mint PHA (and before any power is handed to the timelock)."""

    chain: Chain
    deployer: LocalAccount
    deployment: Deployment
    progress: Progress

    def mint(self, to: str, amount: int, label: str) -> None:
        """Mint `amount` wei of PHA to `to` as the (still) minting deployer."""
        call = self.chain.contract("PHA").functions.mint(to, amount)
        self.chain.send(self.deployer, call, label)


GenesisMints = Callable[[GenesisMinter], None]


def deploy_network(
    chain: Chain,
    deployer: LocalAccount,
    network: str,
    rpc_url: str,
    params: NetworkParameters,
    *,
    guardian: str | None = None,
    migration: MigrationRoot | None = None,
    genesis_mints: GenesisMints | None = None,
    progress: Progress = lambda _msg: None,
) -> Deployment:
    """Deploy all contracts, wire roles, fund the reward reserve, and renounce the deployer.

    `guardian` may pause claims; None deploys the Migrator without one (never the
    deployer by default: its key should hold nothing once governance owns the network).
    `migration`, when given, is committed before the handover so claims open at once.
    `genesis_mints`, when given, runs while the deployer may still mint (the devnet funds
    its demo accounts there); a production deploy passes none.
    """
    check_slash_window(params)
    deployment = Deployment(
        network=network,
        chain_id=chain.w3.eth.chain_id,
        rpc_url=rpc_url,
        parameters=_public_parameters(params),
    )
    deployment.parameters["migrator_guardian"] = guardian or ZERO_ADDRESS
    if migration is not None:
        deployment.parameters["migration"] = migration.to_json()
    chain.deployment = deployment
    me = deployer.address

    def deploy(name: str, *args: object) -> str:
        artifact = compile_contract(name)
        address, block = chain.deploy(deployer, artifact, *args)
        deployment.contracts[name] = ContractRecord(
            address=address, block=block, source_hash=artifact.source_hash, abi=artifact.abi
        )
        progress(f"deployed {name} at {address}")
        return address

    def send(name: str, fn: str, *args: object) -> None:
        chain.send(deployer, getattr(chain.contract(name).functions, fn)(*args), f"{name}.{fn}")

    timelock = deploy("Timelock", params.timelock_delay, [], [ZERO_ADDRESS], me)
    # PHA names the Migrator as its minter at construction (an immutable: no storage read
    # on each claim), and the Migrator needs PHA and the vault: PHA, the vault and the
    # Migrator go out as three consecutive transactions, so the Migrator's address is the
    # deployer's CREATE address two nonces after PHA's.
    nonce = chain.w3.eth.get_transaction_count(me, "pending")
    predicted = get_create_address(me, Nonce(nonce + 2))
    pha = deploy("PHA", predicted)
    vault = deploy("Vault", pha, me, timelock)
    migrator = deploy("Migrator", pha, vault, me, guardian or ZERO_ADDRESS, timelock)
    if migrator.lower() != predicted.lower():
        raise ChainError(
            f"deploy: the Migrator landed at {migrator}, not at {predicted} that PHA names as "
            "its minter (did another transaction from the deployer key interleave?)"
        )
    governor = deploy(
        "Governor",
        vault,
        timelock,
        params.voting_delay,
        params.voting_period,
        params.proposal_threshold_pha * 10 ** _vault_decimals(chain),
        params.quorum_numerator,
    )
    deploy("ComputeRegistry", vault, me, timelock)
    # AppAuth has no owner and no parameter: each app's owner alone changes its hashes.
    deploy("AppAuth")
    deploy("Market", pha, me, timelock)  # the timelock is the treasury: fees go to it

    send("Vault", "setUnlockPeriod", params.unlock_period)
    send("Vault", "setMaxOpenRequests", params.max_open_requests)
    send("Vault", "setTreasuryShareBps", params.treasury_share_bps)
    for attester in params.attesters:
        send("Migrator", "setAttester", attester, True)
        send("ComputeRegistry", "setAttester", attester, True)
    if params.attesters:
        send("Migrator", "setThreshold", params.attester_threshold)
        send("ComputeRegistry", "setThreshold", params.attester_threshold)
        progress(f"registered {len(params.attesters)} attester(s), threshold "
                 f"{params.attester_threshold}")  # fmt: skip
    if migration is not None:
        send(
            "Migrator",
            "setRoot",
            migration.root,
            migration.total_free,
            migration.total_staked,
            migration.leaf_count,
            migration.deadline,
        )
        progress(f"committed the migration root 0x{migration.root.hex()} "
                 f"({migration.leaf_count} leaves, claims until {migration.deadline})")  # fmt: skip
    for image in params.os_images:
        send("ComputeRegistry", "setOsImageAllowed", image, True)
    for compose in params.compose_hashes:
        send("ComputeRegistry", "setComposeHashAllowed", compose, True)
    send("ComputeRegistry", "setCooldown", params.collateral_cooldown)
    send("ComputeRegistry", "setMaxFreeze", params.max_freeze)
    if params.registry_guardian:
        send("ComputeRegistry", "setGuardian", params.registry_guardian)
    for name, rate in sorted(params.market_prices.items()):
        send("Market", "setPrice", instance_type_key(name), rate)
    send("Market", "setFeeBps", params.market_fee_bps)
    send("Market", "setGracePeriod", params.market_grace_period)
    send("Market", "setShutdownWindow", params.market_shutdown_window)
    progress(f"priced {len(params.market_prices)} instance types on the market")

    if genesis_mints is not None or params.reward_reserve_pha:
        send("PHA", "setMinter", me, True)
        if genesis_mints is not None:
            genesis_mints(GenesisMinter(chain, deployer, deployment, progress))
        if params.reward_reserve_pha:
            reserve = params.reward_reserve_pha * WEI_PER_PHA
            send("PHA", "mint", me, reserve)
            send("PHA", "approve", vault, reserve)
            send("Vault", "fundRewards", reserve)
            progress(f"funded the reward reserve with {params.reward_reserve_pha:,} PHA")
        send("PHA", "setMinter", me, False)
    send("Vault", "setRewardRate", params.reward_rate)

    proposer = Web3.keccak(text="PROPOSER_ROLE")
    canceller = Web3.keccak(text="CANCELLER_ROLE")
    admin = b"\x00" * 32
    send("Timelock", "grantRole", proposer, governor)
    send("Timelock", "grantRole", canceller, governor)
    for name in ("PHA", "Vault", "Migrator", "ComputeRegistry", "Market"):
        send(name, "transfer_ownership", timelock)
    send("Timelock", "renounceRole", admin, me)
    progress("handed every parameter to the timelock; the deployer holds no role")
    return deployment


def _public_parameters(params: NetworkParameters) -> dict[str, object]:
    """What the deployment file records of the genesis parameters (JSON-safe)."""
    out: dict[str, object] = {}
    for key, value in asdict(params).items():
        if isinstance(value, list):
            value = [v.hex() if isinstance(v, bytes) else v for v in value]
        out[key] = value
    return out


def _vault_decimals(chain: Chain) -> int:
    return int(chain.contract("Vault").functions.decimals().call())
