"""ComputeRegistry unit and negative tests: every external function, every revert path,
and every privileged function refused for any caller but the owner (the timelock)."""

from __future__ import annotations

import boa
import pytest
from eth_account import Account
from eth_utils import keccak
from registry_world import (
    ATTESTER_KEYS,
    COMPOSE,
    DAY,
    OS_IMAGE,
    UNIT,
    World,
)

from veil.attestation.typed_data import Signature
from veil.compute import attestation as att

H100 = 1_250 * UNIT
STATUS_REGISTERED = 1
STATUS_DEREGISTERED = 2


def funded(world: World, amount: int = 10 * H100) -> str:
    provider = str(boa.env.generate_address())
    world.fund(provider, amount)
    return provider


# --- deployment and defaults --------------------------------------------------------


def test_constructor_sets_parameters_from_vault_decimals(world: World) -> None:
    r = world.registry
    assert r.owner() == world.owner
    assert r.treasury() == world.treasury
    assert r.vault() == world.token.address
    assert r.cooldown() == 7 * DAY
    assert r.threshold() == 1
    expected = {0: (250, 1_000), 1: (1_250, 10_000), 2: (1_875, 15_000), 3: (2_250, 18_000)}
    for model, (collateral, weight) in expected.items():
        t = r.acceleratorType(model)
        assert (t.collateral, t.weightBps, t.enabled) == (collateral * UNIT, weight, True)
    assert r.acceleratorType(4).enabled is False
    domain = r.eip712Domain()
    assert domain[1:5] == ("veil ComputeRegistry", "1", world.domain.chain_id, r.address)


@pytest.mark.parametrize("zero", ["vault", "owner", "treasury"])
def test_constructor_refuses_zero_addresses(registry_deployer, world: World, zero: str) -> None:
    args = {"vault": world.token.address, "owner": world.owner, "treasury": world.treasury}
    args[zero] = "0x" + "00" * 20
    with boa.reverts(f"registry: zero {zero}"):
        registry_deployer.deploy(args["vault"], args["owner"], args["treasury"])


def test_domain_separator_matches_library(world: World) -> None:
    a = world.attestation(funded(world))
    assert world.registry.attestationDigest(a.as_tuple()) == att.digest(a, world.domain)
    assert world.registry.ATTESTATION_TYPEHASH() == att.type_hash()


# --- providers and collateral ---------------------------------------------------------


def test_register_provider_once(world: World) -> None:
    p = str(boa.env.generate_address())
    with boa.env.prank(p):
        world.registry.registerProvider()
        logs = world.registry.get_logs()
        assert type(logs[0]).__name__ == "ProviderRegistered"
        assert world.registry.provider(p).registered
        with boa.reverts("registry: provider already registered"):
            world.registry.registerProvider()


def test_deposit_pulls_shares(world: World) -> None:
    p = funded(world, 3 * H100)
    assert world.token.balanceOf(world.registry.address) == 3 * H100
    info = world.registry.provider(p)
    assert (info.collateral, info.locked, info.cooling) == (3 * H100, 0, 0)
    assert world.registry.freeCollateral(p) == 3 * H100


def test_deposit_requires_registration_and_amount(world: World) -> None:
    p = str(boa.env.generate_address())
    world.token.mint(p, H100)
    with boa.env.prank(p):
        world.token.approve(world.registry.address, H100)
        with boa.reverts("registry: provider not registered"):
            world.registry.depositCollateral(H100)
        world.registry.registerProvider()
        with boa.reverts("registry: zero amount"):
            world.registry.depositCollateral(0)
        with boa.reverts():  # allowance exceeded in the token
            world.registry.depositCollateral(H100 + 1)


def test_withdraw_free_collateral(world: World) -> None:
    p = funded(world, 2 * H100)
    with boa.env.prank(p):
        world.registry.withdrawCollateral(H100 // 2)
    assert world.token.balanceOf(p) == H100 // 2
    assert world.registry.provider(p).collateral == 2 * H100 - H100 // 2


def test_withdraw_of_locked_collateral_refused(world: World) -> None:
    p = funded(world, H100 + 5)
    world.register(world.attestation(p))
    with boa.env.prank(p):
        with boa.reverts("registry: exceeds free collateral"):
            world.registry.withdrawCollateral(6)
        world.registry.withdrawCollateral(5)
        with boa.reverts("registry: zero amount"):
            world.registry.withdrawCollateral(0)
    assert world.token.balanceOf(p) == 5


# --- worker registration ------------------------------------------------------------------


def test_register_worker_locks_collateral_and_records_evidence(world: World) -> None:
    p = funded(world)
    a = world.attestation(p, model=att.GpuModel.H200, count=2, evidence=b"full evidence")
    logs = world.register(a)
    w = world.registry.worker(a.worker)
    assert w.provider == p
    assert (w.gpuModel, w.gpuCount, w.expiry, w.status) == (2, 2, a.expiry, STATUS_REGISTERED)
    assert w.evidenceHash == att.evidence_hash(b"full evidence")
    assert (w.quoteHash, w.measurementHash) == (a.quote_hash, a.measurement_hash)
    assert w.collateral == 2 * 1_875 * UNIT
    info = world.registry.provider(p)
    assert info.locked == info.required == 2 * 1_875 * UNIT
    assert info.workers == 1
    assert world.registry.isActive(a.worker)
    assert world.registry.rewardWeight(a.worker) == 2 * 15_000
    (log,) = [e for e in logs if type(e).__name__ == "WorkerRegistered"]
    assert log.evidenceHash == a.evidence_hash


def test_cpu_worker_locks_one_unit_with_zero_count(world: World) -> None:
    p = funded(world)
    a = world.attestation(p, model=att.GpuModel.CPU_TDX, count=0)
    world.register(a)
    assert world.registry.provider(p).locked == 250 * UNIT
    assert world.registry.rewardWeight(a.worker) == 1_000
    assert world.registry.requiredCollateral(0, 0) == 250 * UNIT
    assert world.registry.requiredCollateral(3, 8) == 8 * 2_250 * UNIT


def test_insufficient_collateral_refused(world: World) -> None:
    p = funded(world, 2 * H100 - 1)
    with boa.reverts("registry: insufficient free collateral"):
        world.register(world.attestation(p, count=2))
    world.register(world.attestation(p, count=1))
    with boa.reverts("registry: insufficient free collateral"):
        world.register(world.attestation(p, count=1))


def test_unregistered_provider_refused(world: World) -> None:
    p = str(boa.env.generate_address())
    with boa.reverts("registry: provider not registered"):
        world.register(world.attestation(p))


def test_unregistered_attester_refused(world: World) -> None:
    p = funded(world)
    with boa.reverts("attester_set: unknown attester"):
        world.register(world.attestation(p), keys=[ATTESTER_KEYS[3]])


def test_duplicate_attester_refused(world: World) -> None:
    p = funded(world)
    with boa.env.prank(world.owner):
        world.registry.setThreshold(2)
    a = world.attestation(p)
    sig = Signature.from_bytes(att.sign(a, world.domain, ATTESTER_KEYS[0].key)).compact()
    with boa.env.prank(p), boa.reverts("attester_set: signers not strictly increasing"):
        world.registry.registerWorker(a.as_tuple(), [sig, sig])


def test_signers_out_of_order_refused(world: World) -> None:
    p = funded(world)
    a = world.attestation(p)
    ordered = world.signatures(a, ATTESTER_KEYS[:2])
    with boa.env.prank(p), boa.reverts("attester_set: signers not strictly increasing"):
        world.registry.registerWorker(a.as_tuple(), list(reversed(ordered)))


def test_too_few_attestations_refused(world: World) -> None:
    p = funded(world)
    with boa.env.prank(world.owner):
        world.registry.setThreshold(3)
    a = world.attestation(p)
    with boa.reverts("attester_set: too few signatures"):
        world.register(a, keys=ATTESTER_KEYS[:2])
    world.register(a, keys=ATTESTER_KEYS[:3])
    assert world.registry.isActive(a.worker)


def test_threshold_with_one_outsider_refused(world: World) -> None:
    p = funded(world)
    with boa.env.prank(world.owner):
        world.registry.setThreshold(2)
    with boa.reverts("attester_set: unknown attester"):
        world.register(world.attestation(p), keys=[ATTESTER_KEYS[0], ATTESTER_KEYS[3]])


def test_expired_attestation_refused(world: World) -> None:
    p = funded(world)
    a = world.attestation(p, ttl=10)
    boa.env.time_travel(seconds=10)
    with boa.reverts("registry: attestation expired"):
        world.register(a)


def test_attestation_for_another_provider_refused(world: World) -> None:
    p, other = funded(world), funded(world)
    a = world.attestation(other)
    sigs = world.signatures(a)
    with boa.env.prank(p), boa.reverts("registry: attestation is for another provider"):
        world.registry.registerWorker(a.as_tuple(), sigs)


def test_provider_field_tampered_breaks_signature(world: World) -> None:
    """Re-labelling another provider's attestation changes the digest: no attester signed it."""
    p, other = funded(world), funded(world)
    a = world.attestation(other)
    sigs = world.signatures(a)
    forged = att.WorkerAttestation(**{**a.__dict__, "provider": p})
    with boa.env.prank(p), boa.reverts():
        world.registry.registerWorker(forged.as_tuple(), sigs)
    assert world.registry.worker(a.worker).status == 0


def test_os_image_not_allowlisted_refused(world: World) -> None:
    p = funded(world)
    with boa.reverts("registry: os image not allowed"):
        world.register(world.attestation(p, os_image=keccak(text="other image")))


def test_compose_hash_not_allowlisted_refused(world: World) -> None:
    p = funded(world)
    with boa.reverts("registry: compose hash not allowed"):
        world.register(world.attestation(p, compose=keccak(text="other compose")))


def test_unknown_accelerator_type_refused(world: World) -> None:
    p = funded(world)
    with boa.reverts("registry: unknown accelerator type"):
        world.register(world.attestation(p, model=7))


def test_high_s_signature_refused(world: World) -> None:
    p = funded(world)
    a = world.attestation(p)
    sig = att.sign(a, world.domain, ATTESTER_KEYS[0].key)
    s = int.from_bytes(sig[32:64], "big")
    high = sig[:32] + (att.SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])
    with pytest.raises(att.InputError, match="high-s"):
        att.recover(a, world.domain, high)
    # s above half the order, below 2**255 so the compact form can carry it
    vs = (1 << 255) | (att.SECP256K1_N // 2 + 1)
    with boa.env.prank(p), boa.reverts("attester_set: high-s signature"):
        world.registry.registerWorker(a.as_tuple(), [(sig[:32], vs.to_bytes(32, "big"))])


def test_signature_that_recovers_nothing_refused(world: World) -> None:
    """r = 0 recovers no key (ecrecover answers the zero address), which never counts."""
    p = funded(world)
    a = world.attestation(p)
    r, vs = Signature.from_bytes(att.sign(a, world.domain, ATTESTER_KEYS[0].key)).compact()
    with boa.env.prank(p), boa.reverts("attester_set: signers not strictly increasing"):
        world.registry.registerWorker(a.as_tuple(), [(bytes(32), vs)])
    with boa.env.prank(p):
        world.registry.registerWorker(a.as_tuple(), [(r, vs)])


def test_zero_worker_refused(world: World) -> None:
    p = funded(world)
    a = world.attestation(p, worker="0x" + "00" * 20)
    with boa.reverts("registry: zero worker"):
        world.register(a)


def test_worker_registered_twice_refused(world: World) -> None:
    p = funded(world)
    a = world.attestation(p)
    world.register(a)
    again = world.attestation(p, worker=a.worker, ttl=2 * DAY)
    with boa.reverts("registry: worker already registered"):
        world.register(again)


# --- re-attestation and expiry ---------------------------------------------------------------


def test_reattest_before_expiry_keeps_worker_active(world: World) -> None:
    p = funded(world)
    a = world.attestation(p, ttl=DAY)
    world.register(a)
    boa.env.time_travel(seconds=DAY - 100)
    b = world.attestation(p, worker=a.worker, ttl=DAY, evidence=b"fresh evidence")
    logs = world.reattest(b)
    assert [type(e).__name__ for e in logs] == ["WorkerReattested"]
    assert logs[0].evidenceHash == b.evidence_hash
    boa.env.time_travel(seconds=200)
    assert world.registry.isActive(a.worker)
    w = world.registry.worker(a.worker)
    assert (w.expiry, w.evidenceHash) == (b.expiry, att.evidence_hash(b"fresh evidence"))
    assert world.registry.provider(p).locked == H100


def test_worker_inactive_after_expiry_and_reattestable(world: World) -> None:
    p = funded(world)
    a = world.attestation(p, ttl=DAY)
    world.register(a)
    boa.env.time_travel(seconds=DAY)
    assert not world.registry.isActive(a.worker)
    assert world.registry.rewardWeight(a.worker) == 0
    world.reattest(world.attestation(p, worker=a.worker, ttl=DAY))
    assert world.registry.isActive(a.worker)
    assert world.registry.rewardWeight(a.worker) == 10_000


def test_reattest_refusals(world: World) -> None:
    p, other = funded(world), funded(world)
    a = world.attestation(p, ttl=2 * DAY)
    with boa.reverts("registry: worker not registered"):
        world.reattest(a)
    world.register(a)
    with boa.reverts("registry: attestation older than the last one"):
        world.reattest(world.attestation(p, worker=a.worker, ttl=DAY))
    with boa.reverts("registry: gpu count changed"):
        world.reattest(world.attestation(p, worker=a.worker, ttl=3 * DAY, count=2))
    with boa.reverts("registry: gpu model changed"):
        world.reattest(world.attestation(p, worker=a.worker, ttl=3 * DAY, model=2))
    with boa.reverts("registry: not the worker's provider"):
        world.reattest(world.attestation(other, worker=a.worker, ttl=3 * DAY))
    with boa.reverts("registry: os image not allowed"):
        world.reattest(world.attestation(p, worker=a.worker, ttl=3 * DAY, os_image=b"\x01" * 32))


def test_revoking_os_image_or_compose_deactivates(world: World) -> None:
    p = funded(world)
    a = world.attestation(p)
    world.register(a)
    with boa.env.prank(world.owner):
        world.registry.setOsImageAllowed(OS_IMAGE, False)
    assert not world.registry.isActive(a.worker)
    with boa.env.prank(world.owner):
        world.registry.setOsImageAllowed(OS_IMAGE, True)
        world.registry.setComposeHashAllowed(COMPOSE, False)
    assert not world.registry.isActive(a.worker)
    with boa.env.prank(world.owner):
        world.registry.setComposeHashAllowed(COMPOSE, True)
    assert world.registry.isActive(a.worker)


# --- deregistration, cooldown, release ---------------------------------------------------------


def test_deregister_cooldown_release(world: World) -> None:
    p = funded(world, H100)
    a = world.attestation(p)
    world.register(a)
    with boa.env.prank(p):
        world.registry.deregisterWorker(a.worker)
    info = world.registry.provider(p)
    assert (info.locked, info.cooling, info.required, info.workers) == (0, H100, 0, 0)
    assert info.cooldownEnd == world.now() + 7 * DAY
    assert world.registry.worker(a.worker).status == STATUS_DEREGISTERED
    assert not world.registry.isActive(a.worker)
    with boa.env.prank(p):
        with boa.reverts("registry: cooldown not over"):
            world.registry.releaseCollateral()
        with boa.reverts("registry: exceeds free collateral"):
            world.registry.withdrawCollateral(1)
    boa.env.time_travel(seconds=7 * DAY - 1)
    with boa.env.prank(p), boa.reverts("registry: cooldown not over"):
        world.registry.releaseCollateral()
    boa.env.time_travel(seconds=1)
    assert world.registry.freeCollateral(p) == H100
    with boa.env.prank(p):
        world.registry.releaseCollateral()
        assert world.registry.provider(p).cooling == 0
        with boa.reverts("registry: nothing cooling"):
            world.registry.releaseCollateral()
        world.registry.withdrawCollateral(H100)
    assert world.token.balanceOf(p) == H100


def test_withdraw_folds_in_matured_release(world: World) -> None:
    p = funded(world, H100)
    a = world.attestation(p)
    world.register(a)
    with boa.env.prank(p):
        world.registry.deregisterWorker(a.worker)
    boa.env.time_travel(seconds=7 * DAY)
    with boa.env.prank(p):
        world.registry.withdrawCollateral(H100)
        logs = world.registry.get_logs()
        names = [type(e).__name__ for e in logs if e.address == world.registry.address]
    assert world.registry.provider(p).collateral == 0
    assert names == ["CollateralReleased", "CollateralWithdrawn"]


def test_deregister_refusals(world: World) -> None:
    p, other = funded(world), funded(world)
    a = world.attestation(p)
    with boa.env.prank(p), boa.reverts("registry: worker not registered"):
        world.registry.deregisterWorker(a.worker)
    world.register(a)
    with boa.env.prank(other), boa.reverts("registry: not the worker's provider"):
        world.registry.deregisterWorker(a.worker)
    with boa.env.prank(p):
        world.registry.deregisterWorker(a.worker)
        with boa.reverts("registry: worker not registered"):
            world.registry.deregisterWorker(a.worker)


def test_deregistered_worker_can_register_again_with_newer_attestation(world: World) -> None:
    p = funded(world)
    a = world.attestation(p, ttl=DAY)
    world.register(a)
    with boa.env.prank(p):
        world.registry.deregisterWorker(a.worker)
    with boa.reverts("registry: attestation older than the last one"):
        world.register(a)
    world.register(world.attestation(p, worker=a.worker, ttl=2 * DAY))
    assert world.registry.isActive(a.worker)


# --- slashing -------------------------------------------------------------------------------


def test_slash_takes_free_then_cooling_then_locked(world: World) -> None:
    p = funded(world, 3 * H100)
    a, b = world.attestation(p), world.attestation(p)
    world.register(a)
    world.register(b)
    with boa.env.prank(p):
        world.registry.deregisterWorker(b.worker)
    # free H100, cooling H100, locked H100
    with boa.env.prank(world.owner):
        world.registry.slash(p, H100 + H100 // 2, "double signing")
        (log,) = [e for e in world.registry.get_logs() if type(e).__name__ == "Slashed"]
    info = world.registry.provider(p)
    assert (info.collateral, info.cooling, info.locked) == (3 * H100 // 2, H100 // 2, H100)
    assert world.token.balanceOf(world.treasury) == 3 * H100 // 2
    assert log.reason == "double signing"
    assert log.shortfall == 0
    assert world.registry.isActive(a.worker)


def test_slash_into_locked_deactivates_until_refilled(world: World) -> None:
    p = funded(world, 2 * H100)
    a, b = world.attestation(p), world.attestation(p)
    world.register(a)
    world.register(b)
    with boa.env.prank(world.owner):
        world.registry.slash(p, H100 // 4, "downtime")
    assert not world.registry.isActive(a.worker)
    assert world.registry.rewardWeight(b.worker) == 0
    with boa.reverts("registry: provider has a collateral shortfall"):
        world.register(world.attestation(p, model=att.GpuModel.CPU_TDX))
    world.fund(p, H100 // 4 - 1, register=False)
    assert not world.registry.isActive(a.worker)
    world.fund(p, 1, register=False)
    assert world.registry.isActive(a.worker)
    info = world.registry.provider(p)
    assert info.locked == info.required == 2 * H100


def test_deregister_during_shortfall_absorbs_it(world: World) -> None:
    p = funded(world, 2 * H100)
    a, b = world.attestation(p), world.attestation(p)
    world.register(a)
    world.register(b)
    with boa.env.prank(world.owner):
        world.registry.slash(p, H100 // 4, "downtime")
    with boa.env.prank(p):
        world.registry.deregisterWorker(b.worker)
    info = world.registry.provider(p)
    assert (info.locked, info.required, info.cooling) == (H100, H100, H100 - H100 // 4)
    assert world.registry.isActive(a.worker)


def test_slash_refusals(world: World) -> None:
    p = funded(world, H100)
    with boa.env.prank(world.owner):
        with boa.reverts("registry: exceeds collateral"):
            world.registry.slash(p, H100 + 1, "too much")
        with boa.reverts("registry: zero amount"):
            world.registry.slash(p, 0, "nothing")


def test_slash_by_non_owner_refused(world: World) -> None:
    p = funded(world, H100)
    for caller in (p, world.treasury, str(boa.env.generate_address())):
        with boa.env.prank(caller), boa.reverts("ownable: caller is not the owner"):
            world.registry.slash(p, 1, "not yours")


# --- governance setters --------------------------------------------------------------------


SETTERS = [
    ("setOsImageAllowed", (b"\x05" * 32, True)),
    ("setComposeHashAllowed", (b"\x05" * 32, True)),
    ("setAttester", (Account.from_key(b"\x07" * 32).address, True)),
    ("setThreshold", (2,)),
    ("setAcceleratorType", (4, 100, 500)),
    ("disableAcceleratorType", (3,)),
    ("setCooldown", (DAY,)),
    ("setTreasury", ("0x" + "11" * 20,)),
    ("setGuardian", ("0x" + "44" * 20,)),
    ("setMaxFreeze", (DAY,)),
    ("slash", ("0x" + "22" * 20, 1, "x")),
    ("transfer_ownership", ("0x" + "33" * 20,)),
]


@pytest.mark.parametrize(("name", "args"), SETTERS, ids=[s[0] for s in SETTERS])
def test_privileged_refused_for_other_callers(world: World, name: str, args: tuple) -> None:
    outsiders = [funded(world), world.treasury, ATTESTER_KEYS[0].address]
    for caller in outsiders:
        with boa.env.prank(caller), boa.reverts("ownable: caller is not the owner"):
            getattr(world.registry, name)(*args)


def test_renounce_ownership_not_exposed(world: World) -> None:
    assert not hasattr(world.registry, "renounce_ownership")


def test_allowlist_setters(world: World) -> None:
    h = keccak(text="image v2")
    with boa.env.prank(world.owner):
        world.registry.setOsImageAllowed(h, True)
        (log,) = world.registry.get_logs()
        assert (log.kind, log.item, log.allowed) == (
            "osImage",
            h,
            True,
        )
        world.registry.setComposeHashAllowed(h, True)
    assert world.registry.osImageAllowed(h) and world.registry.composeHashAllowed(h)


def test_attester_set_and_threshold(world: World) -> None:
    r = world.registry
    new = ATTESTER_KEYS[3].address
    with boa.env.prank(world.owner):
        r.setAttester(new, True)
        assert r.isAttester(new) and r.attesterCount() == 4
        with boa.reverts("attester_set: attester unchanged"):
            r.setAttester(new, True)
        with boa.reverts("attester_set: zero attester"):
            r.setAttester("0x" + "00" * 20, True)
        r.setThreshold(4)
        with boa.reverts("attester_set: threshold above attesters"):
            r.setThreshold(5)
        with boa.reverts("attester_set: zero threshold"):
            r.setThreshold(0)
        # the one rule: a removal may not leave fewer attesters than the threshold
        with boa.reverts("attester_set: below threshold"):
            r.setAttester(new, False)
        r.setThreshold(3)
        r.setAttester(new, False)
        assert not r.isAttester(new) and r.attesterCount() == 3
    assert r.threshold() == 3


def test_removed_attester_signature_refused(world: World) -> None:
    p = funded(world)
    with boa.env.prank(world.owner):
        world.registry.setAttester(ATTESTER_KEYS[0].address, False)
    with boa.reverts("attester_set: unknown attester"):
        world.register(world.attestation(p), keys=[ATTESTER_KEYS[0]])


def test_accelerator_types(world: World) -> None:
    r = world.registry
    p = funded(world, 10 * H100)
    with boa.env.prank(world.owner):
        r.setAcceleratorType(9, 300 * UNIT, 2_500)
        with boa.reverts("registry: zero collateral"):
            r.setAcceleratorType(9, 0, 1)
    a = world.attestation(p, model=9, count=2)
    world.register(a)
    assert r.provider(p).locked == 600 * UNIT
    assert r.rewardWeight(a.worker) == 5_000
    with boa.env.prank(world.owner):
        r.setAcceleratorType(9, 400 * UNIT, 3_000)  # weight applies now, lock stays
        r.disableAcceleratorType(9)
        with boa.reverts("registry: unknown accelerator type"):
            r.disableAcceleratorType(9)
    assert r.rewardWeight(a.worker) == 6_000
    assert r.worker(a.worker).collateral == 600 * UNIT
    with boa.reverts("registry: unknown accelerator type"):
        world.register(world.attestation(p, model=9))


def test_cooldown_and_treasury_setters(world: World) -> None:
    r = world.registry
    with boa.env.prank(world.owner):
        r.setCooldown(DAY)
        with boa.reverts("registry: cooldown too long"):
            r.setCooldown(366 * DAY)
        r.setTreasury("0x" + "44" * 20)
        with boa.reverts("registry: zero treasury"):
            r.setTreasury("0x" + "00" * 20)
    assert r.cooldown() == DAY
    assert r.treasury() == "0x" + "44" * 20
    p = funded(world, H100)
    a = world.attestation(p)
    world.register(a)
    with boa.env.prank(p):
        r.deregisterWorker(a.worker)
    boa.env.time_travel(seconds=DAY)
    with boa.env.prank(p):
        r.releaseCollateral()
    assert r.freeCollateral(p) == H100


def test_slash_goes_to_current_treasury(world: World) -> None:
    p = funded(world, H100)
    new_treasury = "0x" + "55" * 20
    with boa.env.prank(world.owner):
        world.registry.setTreasury(new_treasury)
        world.registry.slash(p, 7, "fraud")
    assert world.token.balanceOf(new_treasury) == 7


def test_transfer_ownership_moves_every_privilege(world: World) -> None:
    new_owner = str(boa.env.generate_address())
    with boa.env.prank(world.owner):
        world.registry.transfer_ownership(new_owner)
    with boa.env.prank(world.owner), boa.reverts("ownable: caller is not the owner"):
        world.registry.setCooldown(1)
    with boa.env.prank(new_owner):
        world.registry.setCooldown(1)
    assert world.registry.cooldown() == 1
