"""Gas of ComputeRegistry's hot paths, as titanoboa estimates it (execution plus the
21,000 base and calldata cost). These are ceilings that catch regressions; the devnet
benchmark measures real receipts later. Run with `-s` to see the figures."""

from __future__ import annotations

from typing import Any

import boa
from registry_world import ATTESTER_KEYS, UNIT, World

H100 = 1_250 * UNIT


def _calldata_gas(data: bytes) -> int:
    return sum(4 if byte == 0 else 16 for byte in data)


def _tx_gas(contract: Any, name: str, *args: Any) -> int:
    """Execution gas of the last call plus the intrinsic cost of a transaction carrying it."""
    calldata = getattr(contract, name).prepare_calldata(*args)
    return contract._computation.get_gas_used() + 21_000 + _calldata_gas(calldata)


def test_gas_ceilings(world: World) -> None:
    r = world.registry
    p = str(boa.env.generate_address())
    world.token.mint(p, 10 * H100)
    with boa.env.prank(p):
        world.token.approve(r.address, 10 * H100)
        r.registerProvider()
        register_provider = _tx_gas(r, "registerProvider")
        r.depositCollateral(5 * H100)
        deposit = _tx_gas(r, "depositCollateral", 5 * H100)

    a = world.attestation(p)
    sigs = world.signatures(a)
    with boa.env.prank(p):
        r.registerWorker(a.as_tuple(), sigs)
        register_worker = _tx_gas(r, "registerWorker", a.as_tuple(), sigs)

    b = world.attestation(p, worker=a.worker, ttl=2 * 86_400, evidence=b"new")
    sigs_b = world.signatures(b)
    with boa.env.prank(p):
        r.reattestWorker(b.as_tuple(), sigs_b)
        reattest = _tx_gas(r, "reattestWorker", b.as_tuple(), sigs_b)

    with boa.env.prank(world.owner):
        r.setThreshold(3)
    c = world.attestation(p, worker=a.worker, ttl=3 * 86_400, evidence=b"three")
    sigs_c = world.signatures(c, ATTESTER_KEYS[:3])
    with boa.env.prank(p):
        r.reattestWorker(c.as_tuple(), sigs_c)
        reattest_3 = _tx_gas(r, "reattestWorker", c.as_tuple(), sigs_c)

    figures = {
        "registerProvider": register_provider,
        "depositCollateral (first)": deposit,
        "registerWorker (1 attestation)": register_worker,
        "reattestWorker (1 attestation)": reattest,
        "reattestWorker (3 attestations)": reattest_3,
    }
    print("\nComputeRegistry gas (titanoboa estimate, incl. 21,000 + calldata):")
    for name, gas in figures.items():
        print(f"  {name:34s} {gas:>8,}")
    assert register_provider + deposit < 150_000
    assert register_worker < 350_000
    assert reattest < 150_000
    # Each extra attestation costs one ecrecover plus an SLOAD and calldata, not storage.
    assert reattest_3 - reattest < 2 * 15_000
