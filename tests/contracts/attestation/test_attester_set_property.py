"""Property: the signer check accepts exactly when at least `threshold` distinct
registered attesters signed, in strictly increasing address order, and nobody else did.

Hypothesis draws the registered set, the threshold and a list of signers (registered or
not, repeats and any order allowed); the model says what the check must answer, and the
contract must answer the same: True, or a revert.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import boa
from attester_keys import ADDRESSES, KEYS, sign
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

DIGEST = keccak(text="a property statement")
SCOPE = b"\x00" * 32
MAX_SIGNATURES = 8
SIGNATURES = {i: sign(i, DIGEST) for i in range(len(KEYS))}


def model_accepts(registered: set[int], threshold: int, signers: list[int]) -> bool:
    addresses = [int(ADDRESSES[i], 16) for i in signers]
    increasing = all(a < b for a, b in pairwise(addresses))
    return increasing and all(i in registered for i in signers) and len(signers) >= threshold


@st.composite
def cases(draw: Any) -> tuple[set[int], int, list[int]]:
    registered = draw(st.sets(st.integers(0, len(KEYS) - 1), min_size=1, max_size=9))
    threshold = draw(st.integers(1, min(len(registered), MAX_SIGNATURES)))
    pool = st.sampled_from(sorted(registered)) if draw(st.booleans()) else st.integers(0, 11)
    signers = draw(st.lists(pool, max_size=MAX_SIGNATURES))
    if draw(st.booleans()):  # often give well-formed inputs a chance
        signers = sorted(set(signers), key=lambda i: int(ADDRESSES[i], 16))
    return registered, threshold, signers


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=cases())
def test_check_accepts_iff_threshold_of_distinct_sorted_attesters(
    deployed_host: Any, case: tuple[set[int], int, list[int]]
) -> None:
    registered, threshold, signers = case
    with boa.env.anchor():
        with boa.env.prank(deployed_host.owner()):
            for i in sorted(registered):
                deployed_host.setAttester(ADDRESSES[i], True)
            deployed_host.setThreshold(threshold)
        sigs = [SIGNATURES[i] for i in signers]
        try:
            answer = deployed_host.check(SCOPE, DIGEST, sigs)
        except boa.BoaError:
            answer = False
        assert answer is model_accepts(registered, threshold, signers)
