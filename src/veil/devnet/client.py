"""The devnet's chain client: the transport client plus anvil's time travel.

Moving the clock is an anvil-only RPC; a production client that offered it would fail
late and confusingly on a real L2, so only the devnet (its CLI, demo and tests) has it.
"""

from __future__ import annotations

from veil.chain.client import Chain


class DevnetChain(Chain):
    """A `Chain` on anvil, which may also move its clock forward."""

    def advance_time(self, seconds: int) -> int:
        """Move the clock forward and mine a block; returns the new block timestamp."""
        from web3.types import RPCEndpoint

        self.w3.provider.make_request(RPCEndpoint("evm_increaseTime"), [int(seconds)])
        self.w3.provider.make_request(RPCEndpoint("evm_mine"), [])
        return int(self.w3.eth.get_block("latest")["timestamp"])
