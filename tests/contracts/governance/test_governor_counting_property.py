"""Property: vote totals equal the summed weights per support, and each voter counts once."""

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

BALLOTS = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=10**27),  # weight in wei
        st.sampled_from([AGAINST, FOR, ABSTAIN]),  # support
        st.integers(min_value=0, max_value=3),  # how many extra attempts to vote again
    ),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
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
