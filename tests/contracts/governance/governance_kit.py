"""Shared deployment and constants for the Governor/Timelock tests.

A uniquely named module (not `conftest`) so that `from governance_kit import ...`
cannot pick up another directory's conftest when the whole suite runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boa
from compiled import compiled
from eth_utils import keccak

from veil.chain.compile import CONTRACTS_DIR

GOVERNOR = CONTRACTS_DIR / "governance" / "Governor.vy"
TIMELOCK = CONTRACTS_DIR / "governance" / "Timelock.vy"
PHA_SOURCE = CONTRACTS_DIR / "token" / "PHA.vy"
VAULT_SOURCE = CONTRACTS_DIR / "staking" / "Vault.vy"
HERE = Path(__file__).resolve().parent
VOTES_DOUBLE = HERE / "VotesTokenDouble.vy"
TARGET_DOUBLE = HERE / "TargetDouble.vy"

ZERO = "0x0000000000000000000000000000000000000000"
PROPOSER_ROLE = keccak(text="PROPOSER_ROLE")
EXECUTOR_ROLE = keccak(text="EXECUTOR_ROLE")
CANCELLER_ROLE = keccak(text="CANCELLER_ROLE")
DEFAULT_ADMIN_ROLE = b"\x00" * 32

VOTING_DELAY = 3_600
VOTING_PERIOD = 3 * 86_400
THRESHOLD = 10 * 10**24  # 10 vPHA
QUORUM_NUMERATOR = 4
MIN_DELAY = 2 * 86_400
# One vPHA in wei: 24 decimals, as the real vault (18 for PHA + its 6-digit offset).
# Votes doubles with 18 decimals are how the 104-bit tally overflow went unnoticed.
VPHA = 10**24

# OpenZeppelin ProposalState.
PENDING, ACTIVE, CANCELED, DEFEATED, SUCCEEDED, QUEUED, EXPIRED, EXECUTED = range(8)
AGAINST, FOR, ABSTAIN = 0, 1, 2


@dataclass
class Proposal:
    targets: list[str]
    values: list[int]
    calldatas: list[bytes]
    description: str

    @property
    def description_hash(self) -> bytes:
        return keccak(text=self.description)

    def args(self) -> tuple[list[str], list[int], list[bytes], bytes]:
        return self.targets, self.values, self.calldatas, self.description_hash


@dataclass
class System:
    """The deployed contracts and the accounts the tests act as."""

    token: Any
    timelock: Any
    governor: Any
    target: Any
    tl_admin: str
    voters: dict[str, str] = field(default_factory=dict)

    def propose(self, proposal: Proposal, proposer: str | None = None) -> int:
        with boa.env.prank(proposer or self.voters["alice"]):
            return self.governor.propose(
                proposal.targets, proposal.values, proposal.calldatas, proposal.description
            )

    def fee_proposal(self, fee: int = 42, description: str = "Set the fee") -> Proposal:
        return Proposal(
            [self.target.address], [0], [self.target.setFee.prepare_calldata(fee)], description
        )

    def self_proposal(self, calldata: bytes, description: str) -> Proposal:
        """A proposal whose only action calls the Governor itself."""
        return Proposal([self.governor.address], [0], [calldata], description)

    def vote(self, pid: int, who: str, support: int) -> int:
        with boa.env.prank(self.voters[who]):
            return self.governor.castVote(pid, support)

    def to_active(self) -> None:
        boa.env.time_travel(seconds=VOTING_DELAY + 1)

    def to_ended(self) -> None:
        boa.env.time_travel(seconds=VOTING_PERIOD + 1)

    def pass_and_queue(self, proposal: Proposal, supporters: tuple[str, ...] = ("alice",)) -> int:
        pid = self.propose(proposal)
        self.to_active()
        for name in supporters:
            self.vote(pid, name, FOR)
        self.to_ended()
        self.governor.queue(*proposal.args())
        return pid

    def enact(self, proposal: Proposal, supporters: tuple[str, ...] = ("alice",)) -> int:
        pid = self.pass_and_queue(proposal, supporters)
        boa.env.time_travel(seconds=MIN_DELAY)
        self.governor.execute(*proposal.args())
        return pid


def deploy_system() -> System:
    tl_admin = boa.env.generate_address("timelock-admin")
    token = compiled(VOTES_DOUBLE).deploy()
    with boa.env.prank(tl_admin):
        timelock = compiled(TIMELOCK).deploy(MIN_DELAY, [], [ZERO], tl_admin)
    governor = compiled(GOVERNOR).deploy(
        token.address,
        timelock.address,
        VOTING_DELAY,
        VOTING_PERIOD,
        THRESHOLD,
        QUORUM_NUMERATOR,
    )
    with boa.env.prank(tl_admin):
        timelock.grantRole(PROPOSER_ROLE, governor.address)
        timelock.grantRole(CANCELLER_ROLE, governor.address)
    target = compiled(TARGET_DOUBLE).deploy(timelock.address)
    system = System(token, timelock, governor, target, tl_admin)
    for name, amount in (("alice", 400), ("bob", 300), ("carol", 200), ("dave", 100)):
        account = boa.env.generate_address(name)
        system.voters[name] = account
        token.mint(account, amount * VPHA)
        with boa.env.prank(account):
            token.delegate(account)
    boa.env.time_travel(seconds=1)
    return system


def deploy_governed(threshold: int = THRESHOLD) -> tuple[Any, Any, Any, Any]:
    """The real PHA, Timelock, vPHA Vault and Governor wired as deploy wires them (the
    Governor proposes and cancels through the timelock); the deployer is still a PHA minter
    and the owner, so a test funds its stakers before handing over. (pha, timelock, vault,
    governor)."""
    deployer = boa.env.eoa
    pha = compiled(PHA_SOURCE).deploy("0x" + "00" * 20)  # no Migrator here
    timelock = compiled(TIMELOCK).deploy(MIN_DELAY, [], [ZERO], deployer)
    vault = compiled(VAULT_SOURCE).deploy(pha.address, deployer, timelock.address)
    governor = compiled(GOVERNOR).deploy(
        vault.address,
        timelock.address,
        VOTING_DELAY,
        VOTING_PERIOD,
        threshold,
        QUORUM_NUMERATOR,
    )
    timelock.grantRole(PROPOSER_ROLE, governor.address)
    timelock.grantRole(CANCELLER_ROLE, governor.address)
    pha.setMinter(deployer, True)
    return pha, timelock, vault, governor
