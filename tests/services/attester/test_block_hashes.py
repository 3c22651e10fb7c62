"""The attester's window of recent block hashes: refreshed on a miss, reorg-aware, bounded."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from veil.services.attester.heartbeats import BlockHashes


class FakeChain:
    """Blocks numbered 0..head; `fork` replaces the newest ones (a reorg)."""

    def __init__(self, head: int) -> None:
        self.hashes = [self._hash(n, 0) for n in range(head + 1)]
        self.calls = 0

    @staticmethod
    def _hash(number: int, branch: int) -> bytes:
        return hashlib.sha256(b"%d/%d" % (number, branch)).digest()

    def mine(self, count: int = 1) -> None:
        for _ in range(count):
            self.hashes.append(self._hash(len(self.hashes), 0))

    def fork(self, depth: int, branch: int) -> None:
        for n in range(len(self.hashes) - depth, len(self.hashes)):
            self.hashes[n] = self._hash(n, branch)

    def latest(self) -> tuple[int, bytes, bytes]:
        self.calls += 1
        n = len(self.hashes) - 1
        return n, self.hashes[n], self.hashes[n - 1] if n else bytes(32)

    def by_number(self, n: int) -> tuple[bytes, bytes]:
        return self.hashes[n], self.hashes[n - 1] if n else bytes(32)

    def window(self, depth: int = 256) -> set[bytes]:
        return set(self.hashes[-depth:])


def test_window_is_the_last_256_and_a_new_block_is_found_on_a_miss() -> None:
    chain = FakeChain(1_000)
    blocks = BlockHashes(chain.latest, chain.by_number, min_refresh=0)
    blocks.refresh()
    assert blocks._known == chain.window()
    assert chain.hashes[1_000 - 255] in blocks and chain.hashes[1_000 - 256] not in blocks
    chain.mine()
    assert chain.hashes[-1] in blocks  # not known yet: the miss refreshes
    assert chain.hashes[1_001 - 256] not in blocks and len(blocks._known) == 256
    assert b"\x00" * 32 not in blocks


def test_a_reorg_replaces_the_forked_blocks() -> None:
    chain = FakeChain(300)
    blocks = BlockHashes(chain.latest, chain.by_number, min_refresh=0)
    blocks.refresh()
    gone = chain.hashes[-3:]
    chain.fork(3, branch=1)
    chain.mine(2)
    blocks.refresh()
    assert blocks._known == chain.window()
    assert not any(h in blocks._known for h in gone)


def test_refreshes_are_spaced_and_concurrent_misses_share_one() -> None:
    """Junk hashes cannot make the attester hammer the chain: refreshes are at least
    `min_refresh` apart, and misses that wait together are answered by one refresh."""
    import threading
    import time

    chain = FakeChain(10)
    blocks = BlockHashes(chain.latest, chain.by_number, min_refresh=0.05)
    start = time.monotonic()
    for n in range(5):
        assert bytes([n]) * 32 not in blocks
    assert chain.calls == 5 and time.monotonic() - start >= 4 * 0.05
    chain.calls = 0
    threads = [threading.Thread(target=lambda n=n: bytes([n]) * 32 in blocks) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert chain.calls <= 3


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 5)), min_size=1, max_size=12))
def test_the_window_always_equals_the_chains_last_blocks(steps: list[tuple[int, int]]) -> None:
    chain = FakeChain(5)
    blocks = BlockHashes(chain.latest, chain.by_number, depth=16, min_refresh=0)
    for branch, (mined, forked) in enumerate(steps, start=1):
        chain.fork(min(forked, len(chain.hashes) - 1), branch)
        chain.mine(mined)
        blocks.refresh()
        assert blocks._known == chain.window(16)
