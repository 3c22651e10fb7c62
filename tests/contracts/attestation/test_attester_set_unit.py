"""The attester_set module: every setter, every refusal, the scope, and the signer check."""

from __future__ import annotations

from typing import Any

import boa
import pytest
from attester_keys import ADDRESSES, SECP256K1_N, by_address, sign
from eth_utils import keccak

DIGEST = keccak(text="an attested statement")
ROOT = keccak(text="a Merkle root")
ZERO = "0x" + "00" * 20
MAX_SIGNATURES = 8
MAX_ATTESTERS = 64


def owner_of(host: Any) -> str:
    return host.owner()


def add(host: Any, indices: list[int], threshold: int | None = None) -> None:
    with boa.env.prank(owner_of(host)):
        for i in indices:
            host.setAttester(ADDRESSES[i], True)
        if threshold is not None:
            host.setThreshold(threshold)


def signatures(indices: list[int], digest: bytes = DIGEST) -> list[tuple[bytes, bytes]]:
    return [sign(i, digest) for i in indices]


# ------------------------------------------------------------ initial state and views


def test_starts_empty_with_threshold_one_under_the_empty_scope(host: Any) -> None:
    assert host.threshold() == 1
    assert host.scope() == b"\x00" * 32
    assert host.attesterCount() == 0 and host.attesters() == []
    assert not host.isAttester(ADDRESSES[0])


def test_set_attester_adds_and_removes_with_events(host: Any) -> None:
    with boa.env.prank(owner_of(host)):
        host.setAttester(ADDRESSES[0], True)
        (log,) = host.get_logs()
        assert type(log).__name__ == "AttesterSet"
        assert log.attester == ADDRESSES[0] and log.allowed is True
        host.setAttester(ADDRESSES[1], True)
        host.setAttester(ADDRESSES[2], True)
        assert host.attesterCount() == 3 and host.isAttester(ADDRESSES[1])
        host.setAttester(ADDRESSES[0], False)
        (log,) = host.get_logs()
        assert type(log).__name__ == "AttesterSet"
        assert log.attester == ADDRESSES[0] and log.allowed is False
    assert not host.isAttester(ADDRESSES[0])
    assert sorted(host.attesters()) == sorted(ADDRESSES[1:3])


def test_setters_are_owner_only(host: Any) -> None:
    stranger = boa.env.generate_address("stranger")
    with boa.env.prank(stranger), boa.reverts("ownable: caller is not the owner"):
        host.setAttester(ADDRESSES[0], True)
    add(host, [0, 1])
    with boa.env.prank(stranger), boa.reverts("ownable: caller is not the owner"):
        host.setAttester(ADDRESSES[0], False)
    with boa.env.prank(stranger), boa.reverts("ownable: caller is not the owner"):
        host.setThreshold(2)
    assert host.threshold() == 1 and host.isAttester(ADDRESSES[0])


def test_set_attester_refusals(host: Any) -> None:
    add(host, [0, 1], threshold=2)
    with boa.env.prank(owner_of(host)):
        with boa.reverts("attester_set: zero attester"):
            host.setAttester(ZERO, True)
        with boa.reverts("attester_set: attester unchanged"):
            host.setAttester(ADDRESSES[0], True)
        with boa.reverts("attester_set: attester unchanged"):
            host.setAttester(ADDRESSES[5], False)
        # the one removal rule: never fewer attesters than the threshold
        with boa.reverts("attester_set: below threshold"):
            host.setAttester(ADDRESSES[0], False)
        host.setThreshold(1)
        host.setAttester(ADDRESSES[0], False)
        with boa.reverts("attester_set: below threshold"):
            host.setAttester(ADDRESSES[1], False)
    assert host.attesters() == [ADDRESSES[1]]


def test_the_set_is_bounded(host: Any) -> None:
    with boa.env.prank(owner_of(host)):
        for i in range(MAX_ATTESTERS):
            host.setAttester(boa.env.generate_address(f"attester {i}"), True)
        with boa.reverts():
            host.setAttester(ADDRESSES[0], True)
    assert host.attesterCount() == MAX_ATTESTERS


def test_set_threshold_bounds_and_event(host: Any) -> None:
    add(host, list(range(MAX_SIGNATURES + 1)))
    with boa.env.prank(owner_of(host)):
        with boa.reverts("attester_set: zero threshold"):
            host.setThreshold(0)
        with boa.reverts("attester_set: threshold above signature bound"):
            host.setThreshold(MAX_SIGNATURES + 1)
        host.setThreshold(MAX_SIGNATURES)
        (log,) = host.get_logs()
        assert type(log).__name__ == "ThresholdSet" and log.threshold == MAX_SIGNATURES
    assert host.threshold() == MAX_SIGNATURES


def test_threshold_cannot_exceed_the_attesters(host: Any) -> None:
    add(host, [0, 1])
    with boa.env.prank(owner_of(host)), boa.reverts("attester_set: threshold above attesters"):
        host.setThreshold(3)


# ------------------------------------------------------------ the signer check


def test_check_accepts_a_threshold_of_sorted_attesters(host: Any) -> None:
    add(host, [0, 1, 2], threshold=2)
    assert host.check(b"\x00" * 32, DIGEST, signatures(by_address([0, 1])))
    assert host.check(b"\x00" * 32, DIGEST, signatures(by_address([0, 1, 2])))


def test_check_refuses_too_few(host: Any) -> None:
    add(host, [0, 1, 2], threshold=2)
    with boa.reverts("attester_set: too few signatures"):
        host.check(b"\x00" * 32, DIGEST, signatures([0]))
    with boa.reverts("attester_set: too few signatures"):
        host.check(b"\x00" * 32, DIGEST, [])


def test_check_refuses_a_repeated_or_unsorted_signer(host: Any) -> None:
    add(host, [0, 1], threshold=2)
    low, high = by_address([0, 1])
    with boa.reverts("attester_set: signers not strictly increasing"):
        host.check(b"\x00" * 32, DIGEST, signatures([low, low]))
    with boa.reverts("attester_set: signers not strictly increasing"):
        host.check(b"\x00" * 32, DIGEST, signatures([high, low]))


def test_check_refuses_a_signature_that_recovers_nothing(host: Any) -> None:
    add(host, [0])
    _, vs = sign(0, DIGEST)
    with boa.reverts("attester_set: signers not strictly increasing"):
        host.check(b"\x00" * 32, DIGEST, [(b"\x00" * 32, vs)])


def test_check_refuses_high_s(host: Any) -> None:
    add(host, [0])
    r, _ = sign(0, DIGEST)
    for s in (SECP256K1_N // 2 + 1, (1 << 255) - 1):
        for bit in (0, 1 << 255):
            with boa.reverts("attester_set: high-s signature"):
                host.check(b"\x00" * 32, DIGEST, [(r, (bit | s).to_bytes(32, "big"))])


def test_check_refuses_a_signature_over_another_digest(host: Any) -> None:
    add(host, [0])
    with boa.reverts():  # recovers to some unregistered address
        host.check(b"\x00" * 32, DIGEST, signatures([0], keccak(text="something else")))


def test_check_refuses_an_unknown_signer(host: Any) -> None:
    add(host, [0, 1], threshold=2)
    with boa.reverts("attester_set: unknown attester"):
        host.check(b"\x00" * 32, DIGEST, signatures(by_address([0, 5])))


def test_a_removed_attester_no_longer_counts(host: Any) -> None:
    add(host, [0, 1])
    assert host.check(b"\x00" * 32, DIGEST, signatures([0]))
    with boa.env.prank(owner_of(host)):
        host.setAttester(ADDRESSES[0], False)
    with boa.reverts("attester_set: unknown attester"):
        host.check(b"\x00" * 32, DIGEST, signatures([0]))


def test_a_new_threshold_applies_to_every_attester(host: Any) -> None:
    add(host, [0, 1, 2])
    assert host.check(b"\x00" * 32, DIGEST, signatures([2]))
    with boa.env.prank(owner_of(host)):
        host.setThreshold(2)
    with boa.reverts("attester_set: too few signatures"):
        host.check(b"\x00" * 32, DIGEST, signatures([2]))
    add(host, [3])  # added after: counts under the new threshold too
    with boa.reverts("attester_set: too few signatures"):
        host.check(b"\x00" * 32, DIGEST, signatures([3]))
    assert host.check(b"\x00" * 32, DIGEST, signatures(by_address([2, 3])))


# ------------------------------------------------------------ scope


def test_scope_moves_every_attester(host: Any) -> None:
    add(host, [0, 1])
    with boa.env.prank(owner_of(host)):
        host.setScope(ROOT, 0)
    assert host.scope() == ROOT
    assert host.isAccepted(ROOT, ADDRESSES[0]) and host.isAccepted(ROOT, ADDRESSES[1])
    assert not host.isAccepted(b"\x00" * 32, ADDRESSES[0])
    assert host.isAttester(ADDRESSES[0])
    assert host.check(ROOT, DIGEST, signatures([0]))
    # a statement proved under another scope: False, for the host to name
    assert host.check(b"\x00" * 32, DIGEST, signatures([0])) is False
    assert host.check(keccak(text="another root"), DIGEST, signatures([0])) is False
    # an unknown signer under the current scope is still an unknown attester
    with boa.reverts("attester_set: unknown attester"):
        host.check(ROOT, DIGEST, signatures([7]))


def test_set_changes_follow_the_current_scope(host: Any) -> None:
    add(host, [0])
    with boa.env.prank(owner_of(host)):
        host.setScope(ROOT, 0)
        host.setAttester(ADDRESSES[1], True)
        host.setThreshold(2)
    assert host.isAccepted(ROOT, ADDRESSES[1]) and not host.isAccepted(b"\x00" * 32, ADDRESSES[1])
    assert host.check(ROOT, DIGEST, signatures(by_address([0, 1])))
    with boa.env.prank(owner_of(host)):
        host.setScope(ROOT, 0)  # the same scope again keeps everyone
    assert host.check(ROOT, DIGEST, signatures(by_address([0, 1])))


def test_set_scope_is_the_hosts_to_guard(host: Any) -> None:
    stranger = boa.env.generate_address("stranger")
    with boa.env.prank(stranger), boa.reverts("ownable: caller is not the owner"):
        host.setScope(ROOT, 0)


TAG = 0xDEADBEEF << 8  # a host's tag sits above the threshold's 8 bits


def test_the_lookup_returns_the_threshold_and_the_scopes_tag(host: Any) -> None:
    add(host, [0, 1], threshold=1)
    with boa.env.prank(owner_of(host)):
        host.setScope(ROOT, TAG)
    assert host.checkTagged(ROOT, DIGEST, signatures([0])) == TAG | 1
    assert host.check(ROOT, DIGEST, signatures([0])) is True
    # another scope finds nothing: 0, for the host to name
    assert host.checkTagged(keccak(text="another root"), DIGEST, signatures([0])) == 0
    with boa.env.prank(owner_of(host)):
        host.setAttester(ADDRESSES[2], True)  # a new attester gets the current tag
        host.setThreshold(2)  # a new threshold keeps it
    assert host.checkTagged(ROOT, DIGEST, signatures(by_address([0, 2]))) == TAG | 2
    with boa.env.prank(owner_of(host)):
        host.setTag(TAG << 1)  # rewrites every attester's entry
    for pair in ([0, 1], [1, 2], [0, 2]):
        assert host.checkTagged(ROOT, DIGEST, signatures(by_address(pair))) == (TAG << 1) | 2
    with boa.env.prank(owner_of(host)):
        host.setScope(keccak(text="next root"), 0)  # a new scope starts with its own tag
    assert host.checkTagged(keccak(text="next root"), DIGEST, signatures(by_address([0, 1]))) == 2
    assert not host.isAccepted(ROOT, ADDRESSES[0])


@pytest.mark.parametrize("tag", [1, 255, TAG | 7])
def test_a_tag_may_not_overlap_the_threshold(host: Any, tag: int) -> None:
    add(host, [0])
    with boa.env.prank(owner_of(host)):
        with boa.reverts("attester_set: tag overlaps the threshold"):
            host.setScope(ROOT, tag)
        with boa.reverts("attester_set: tag overlaps the threshold"):
            host.setTag(tag)
    assert host.checkTagged(b"\x00" * 32, DIGEST, signatures([0])) == 1


def test_set_tag_is_the_hosts_to_guard(host: Any) -> None:
    stranger = boa.env.generate_address("stranger")
    with boa.env.prank(stranger), boa.reverts("ownable: caller is not the owner"):
        host.setTag(TAG)


@pytest.mark.parametrize("count", [1, MAX_SIGNATURES])
def test_signatures_up_to_the_bound(host: Any, count: int) -> None:
    add(host, list(range(count)), threshold=count)
    assert host.check(b"\x00" * 32, DIGEST, signatures(by_address(list(range(count)))))
