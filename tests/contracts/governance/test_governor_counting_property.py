"""Property: vote totals equal the summed weights per support, each voter counts once, and the
outcome (succeeded or defeated, quorum) is the arithmetic one, for weights up to vPHA's supply."""

from __future__ import annotations

import boa
from governance_kit import (
    ABSTAIN,
    AGAINST,
    DEFEATED,
    FOR,
    QUORUM_NUMERATOR,
    SUCCEEDED,
    System,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# Weights in vPHA wei (24 decimals) up to the whole supply vPHA can ever have: the vault
# refuses to mint past 2**160 - 1 (the kit's voters already hold 1,000 vPHA), so eight
# ballots of up to an eighth of the rest together reach it. Also drawn: weights around
# the real network's scale (1 B PHA at the opening price is 10**33 wei).
VPHA_MAX_SUPPLY = 2**160 - 1
KIT_VOTES = 1_000 * 10**24
WEIGHT = st.one_of(
    st.integers(min_value=0, max_value=(VPHA_MAX_SUPPLY - KIT_VOTES) // 8),
    st.integers(min_value=0, max_value=10**33),
    st.integers(min_value=2**104 - 2**20, max_value=2**104 + 2**20),
)
BALLOTS = st.lists(
    st.tuples(
        WEIGHT,
        st.sampled_from([AGAINST, FOR, ABSTAIN]),  # support
        st.integers(min_value=0, max_value=3),  # how many extra attempts to vote again
    ),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ballots=BALLOTS)
def test_tallies_are_sums_of_distinct_voters(
    system: System, ballots: list[tuple[int, int, int]]
) -> None:
    with boa.env.anchor():
        gov, token = system.governor, system.token
        voters = []
        for i, (weight, _, _) in enumerate(ballots):
            voter = boa.env.generate_address(f"voter{i}")
            token.mint(voter, weight)
            with boa.env.prank(voter):
                token.delegate(voter)
            voters.append(voter)
        boa.env.time_travel(seconds=1)
        pid = system.propose(system.fee_proposal(description="property"))
        system.to_active()

        expected = {AGAINST: 0, FOR: 0, ABSTAIN: 0}
        for voter, (weight, support, retries) in zip(voters, ballots, strict=True):
            with boa.env.prank(voter):
                assert gov.castVote(pid, support) == weight
                for attempt in range(retries):
                    with boa.reverts("Governor: vote already cast"):
                        gov.castVote(pid, (support + attempt) % 3)
            expected[support] += weight
            assert gov.hasVoted(pid, voter)
            assert gov.proposalVotes(pid) == (expected[AGAINST], expected[FOR], expected[ABSTAIN])

        system.to_ended()
        supply = token.totalSupply()  # unchanged since the snapshot
        quorum = supply * QUORUM_NUMERATOR // 100
        assert gov.quorum(gov.proposalSnapshot(pid)) == quorum
        succeeded = (
            expected[FOR] > expected[AGAINST] and expected[FOR] + expected[ABSTAIN] >= quorum
        )
        assert gov.state(pid) == (SUCCEEDED if succeeded else DEFEATED)
