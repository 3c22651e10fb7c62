"""The registry's state over an epoch, read from a real devnet's events and views.

Workers register, deregister and expire at real block times inside an epoch; the
time-weighted weight the report pays must equal what the block timestamps say.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from veil.compute.attestation import RegistryDomain, WorkerAttestation, sign
from veil.compute.registry import RegistryClient
from veil.devnet.accounts import devnet_account
from veil.devnet.anvil import Devnet, free_port
from veil.devnet.client import DevnetChain
from veil.devnet.network import devnet_parameters, fund_accounts
from veil.network.deploy import deploy_network
from veil.network.genesis import devnet_allowlist
from veil.rewards.activity import read_activity
from veil.rewards.epochs import EpochClock
from veil.staking.vault import deposit

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("anvil")]

LENGTH = 1000


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevnetChain]:
    devnet = Devnet(tmp_path_factory.mktemp("activity") / "devnet")
    process = devnet.start(port=free_port())
    try:
        from veil.chain.client import connect

        base = DevnetChain(connect(process.rpc_url))
        params = devnet_parameters([devnet_account("attester").address])
        params.os_images, params.compose_hashes = devnet_allowlist()
        provider = devnet_account("provider").address
        deployment = deploy_network(
            base, devnet_account("deployer"), "devnet", process.rpc_url, params,
            genesis_mints=fund_accounts({"provider": provider}),
        )  # fmt: skip
        yield DevnetChain(base.w3, deployment)
    finally:
        devnet.stop()


def _register(chain: DevnetChain, key_seed: int, model: int, expiry: int) -> tuple[str, int]:
    registry = RegistryClient.from_chain(chain)
    provider = devnet_account("provider")
    worker = "0x" + f"{key_seed:040x}"
    images, composes = devnet_allowlist()
    attestation = WorkerAttestation(
        worker, provider.address, bytes(32), bytes(32), images[0], composes[0],
        model, 1, expiry, bytes(32),
    )  # fmt: skip
    domain = RegistryDomain(chain.w3.eth.chain_id, registry.contract.address)
    signature = sign(attestation, domain, devnet_account("attester").key)
    receipt = registry.register_worker(provider, attestation, [signature])
    return attestation.worker, int(chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"])


def _provider_with_collateral(chain: DevnetChain) -> None:
    """Each test stands alone: the module's devnet may be fresh (xdist can run a module's
    tests apart, which rebuilds the module fixture)."""
    registry = RegistryClient.from_chain(chain)
    provider = devnet_account("provider")
    if registry.provider(provider.address).registered:
        return
    registry.register_provider(provider)
    registry.deposit_collateral(provider, deposit(chain, provider, 20_000 * 10**18))


def test_weights_follow_registration_deregistration_and_expiry(chain: DevnetChain) -> None:
    registry = RegistryClient.from_chain(chain)
    provider = devnet_account("provider")
    _provider_with_collateral(chain)
    now = int(chain.w3.eth.get_block("latest")["timestamp"])
    clock = EpochClock(now + 100, LENGTH)
    h100, _ = _register(chain, 0xA1, 1, 2**40)  # before the epoch: active from its start
    cpu, _ = _register(chain, 0xC1, 0, 2**40)
    chain.advance_time(clock.start(0) + 200 - now)
    h200, h200_at = _register(chain, 0xB2, 2, clock.start(0) + 700)  # expires inside
    chain.advance_time(100)
    receipt = chain.send(
        provider, registry.contract.functions.deregisterWorker(cpu), "deregisterWorker"
    )
    cpu_gone = int(chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"])
    chain.advance_time(clock.end(0) + 50 - cpu_gone)
    block = chain.deployment.contracts["ComputeRegistry"].block
    rows = {a.worker: a for a in read_activity(registry.contract, clock, 0, block)}
    assert rows[h100].weight_seconds == 10_000 * LENGTH
    assert rows[h100].active_seconds == LENGTH and rows[h100].model == "h100"
    assert rows[cpu].active_seconds == cpu_gone - clock.start(0)
    assert rows[cpu].weight_seconds == 1_000 * (cpu_gone - clock.start(0))
    h200_time = clock.start(0) + 700 - h200_at
    assert rows[h200].weight_seconds == 15_000 * h200_time and rows[h200].model == "h200"
    # the next epoch: the deregistered and the expired workers earn nothing at all
    chain.advance_time(LENGTH)
    later = {a.worker: a for a in read_activity(registry.contract, clock, 1, block)}
    assert later[cpu].weight_seconds == 0 and later[h200].weight_seconds == 0
    assert later[h100].weight_seconds == 10_000 * LENGTH


def test_an_epoch_not_over_is_refused(chain: DevnetChain) -> None:
    from veil.errors import InputError

    now = int(chain.w3.eth.get_block("latest")["timestamp"])
    clock = EpochClock(now - 10, LENGTH)
    registry = RegistryClient.from_chain(chain)
    with pytest.raises(InputError, match="not over on chain"):
        read_activity(registry.contract, clock, 0)


def _as_timelock(chain: DevnetChain, call, label: str) -> int:
    """Send `call` from the timelock (anvil impersonation stands in for a governance
    round); returns the block timestamp it landed at."""
    from web3.types import RPCEndpoint

    timelock = chain.deployment.address("Timelock")
    make = chain.w3.provider.make_request
    make(RPCEndpoint("anvil_impersonateAccount"), [timelock])
    make(RPCEndpoint("anvil_setBalance"), [timelock, hex(10**20)])
    try:
        tx = call.transact({"from": timelock})
        receipt = chain.w3.eth.wait_for_transaction_receipt(tx)
        assert receipt["status"] == 1, label
    finally:
        make(RPCEndpoint("anvil_stopImpersonatingAccount"), [timelock])
    return int(chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"])


def test_allowlist_revocation_and_collateral_shortfall_stop_earning(chain: DevnetChain) -> None:
    registry = RegistryClient.from_chain(chain)
    provider = devnet_account("provider")
    _provider_with_collateral(chain)
    functions = registry.contract.functions
    now = int(chain.w3.eth.get_block("latest")["timestamp"])
    clock = EpochClock(now + 100, LENGTH)
    worker, _ = _register(chain, 0xD1, 1, 2**40)
    chain.advance_time(clock.start(0) + 100 - now)
    _, composes = devnet_allowlist()
    revoked = _as_timelock(chain, functions.setComposeHashAllowed(composes[0], False), "revoke")
    chain.advance_time(100)
    restored = _as_timelock(chain, functions.setComposeHashAllowed(composes[0], True), "allow")
    chain.advance_time(100)
    collateral = registry.provider(provider.address).collateral
    slashed = _as_timelock(chain, functions.slash(provider.address, collateral, "test"), "slash")
    assert not functions.isActive(worker).call()
    chain.advance_time(100)
    refill = deposit(chain, provider, 30_000 * 10**18)
    receipt = registry.deposit_collateral(provider, refill)
    refilled = int(chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"])
    assert functions.isActive(worker).call()
    chain.advance_time(clock.end(0) + 10 - refilled)
    block = chain.deployment.contracts["ComputeRegistry"].block
    row = {a.worker: a for a in read_activity(registry.contract, clock, 0, block)}[worker]
    active = (revoked - clock.start(0)) + (slashed - restored) + (clock.end(0) - refilled)
    assert row.active_seconds == active
    assert row.weight_seconds == 10_000 * active


def test_batched_views_equal_single_calls(chain: DevnetChain, monkeypatch) -> None:
    from veil.rewards import activity

    registry = RegistryClient.from_chain(chain).contract
    from eth_utils import to_checksum_address

    workers = [to_checksum_address(f"0x{k:040x}") for k in (0xA1, 0xC1, 0xB2, 0xD1, 0xEE)]
    block = int(chain.w3.eth.block_number)
    calls = []
    real = chain.w3.provider.make_batch_request
    monkeypatch.setattr(chain.w3.provider, "make_batch_request",
                        lambda requests: calls.append(len(requests)) or real(requests))  # fmt: skip
    monkeypatch.setattr(activity, "BATCH", 2)
    batched = activity.worker_views(registry, workers, block)
    assert calls == [4, 4, 2]  # three batches of (worker, rewardWeight) pairs
    for w in workers:
        record = registry.functions.worker(w).call(block_identifier=block)
        weight = registry.functions.rewardWeight(w).call(block_identifier=block)
        view = batched[w]
        assert (view.gpu_model, view.gpu_count, view.expiry, view.weight) == (
            record[1],
            record[2],
            record[3],
            weight,
        )
    assert any(view.weight for view in batched.values())
