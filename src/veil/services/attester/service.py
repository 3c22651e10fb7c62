"""Assemble an attester from its parts: key, store, the deployment, and what it attests.

Migration bindings need the published tree (amounts and leaf indices) and the deployment
(chain id, Migrator); compute registrations need the network's attestation policy;
heartbeats need those and a view of the chain's recent blocks (the chain, or `blocks`)
and the epoch schedule (the RewardPool's, or given). An operator may run either or both;
each is enabled by the inputs it needs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from web3.exceptions import ProviderConnectionError

from veil.attestation import api
from veil.attestation.typed_data import DigestSigner
from veil.chain.client import Chain
from veil.compute.attestation import RegistryDomain
from veil.compute.heartbeat import (
    DEFAULT_SCHEDULE,
    REWARD_POOL,
    EpochSchedule,
    schedule_from_chain,
)
from veil.errors import ChainError
from veil.merkle import MerkleTree
from veil.migration.binding import BindingContext
from veil.services.attester import metrics
from veil.services.attester.bindings import MAX_BINDINGS_PER_ACCOUNT, BindingService, ClaimedCheck
from veil.services.attester.heartbeats import (
    BlockHashes,
    HeartbeatJournal,
    HeartbeatService,
    chain_blocks,
)
from veil.services.attester.requests import Refused
from veil.services.attester.server import AttesterServer, Limits, Reader, Route
from veil.services.attester.store import Store
from veil.services.attester.workers import CollateralSource, ComputeService
from veil.tee import Policy


@dataclass
class AttesterConfig:
    signer: LocalAccount
    db: Path
    host: str = "127.0.0.1"
    port: int = 8700
    tree: MerkleTree | None = None
    context: BindingContext | None = None
    chain: Chain | None = None
    is_claimed: ClaimedCheck | None = None  # default: ask the Migrator on `chain`
    extra_routes: dict[str, Route] = field(default_factory=dict)
    policy: Policy | None = None  # enables the compute routes, with `registry`
    registry: RegistryDomain | None = None
    validity: int = 86_400
    max_skew: int = 300
    clock: Callable[[], int] | None = None
    chain_clock: Callable[[], int] | None = None  # default: the chain's, when `chain` is set
    collateral_source: CollateralSource | None = None
    limits: Limits = field(default_factory=Limits)
    max_bindings_per_account: int = MAX_BINDINGS_PER_ACCOUNT
    min_heartbeat_interval: int = 0  # seconds between a worker's heartbeats; 0: any
    retention: int | None = None  # seconds; None: keep every heartbeat and registration
    epochs: EpochSchedule | None = None  # default: the RewardPool's on `chain`, else hourly
    heartbeat_dir: Path | None = None  # default: <db without suffix>.heartbeats/
    blocks: Container[bytes] | None = None  # recent block hashes; default: from `chain`
    fsync: bool = True  # heartbeats fsynced before they are answered (off: tests only)


def _chain_guarded(call: Callable[..., Any], chain: Chain) -> Callable[..., Any]:
    """`call` reads the chain; if the chain does not answer, the client gets a 503 that names
    it (the request may be retried as is) instead of a 500 and a traceback in the log."""
    endpoint = getattr(chain.w3.provider, "endpoint_uri", None) or "(unknown rpc)"

    def guarded(*args: Any) -> Any:
        try:
            return call(*args)
        except (OSError, TimeoutError, ChainError, ProviderConnectionError) as error:
            # requests' ConnectionError and Timeout are OSErrors
            raise Refused(
                503,
                f"chain unavailable: the L2 at {endpoint} does not answer "
                f"({type(error).__name__}); retry later",
                code="chain_unavailable",
            ) from None

    return guarded


def _json_reader(read: Callable[[str], dict[str, Any]]) -> Reader:
    return lambda suffix: ("application/json", json.dumps(read(suffix)).encode())


def _heartbeats(
    config: AttesterConfig, store: Store, chain_clock: Callable[[], int] | None
) -> HeartbeatService | None:
    """The heartbeat service, if the attester can check block hashes (a chain, or given)."""
    assert config.registry is not None
    blocks = config.blocks
    if blocks is None:
        if config.chain is None:
            return None
        latest, by_number = chain_blocks(config.chain.w3)
        blocks = BlockHashes(
            _chain_guarded(latest, config.chain), _chain_guarded(by_number, config.chain)
        )
    directory = config.heartbeat_dir or config.db.with_suffix(".heartbeats")

    def expiry(worker: str) -> int | None:
        row = store.latest_registration(worker)
        return int(row["expiry"]) if row is not None else None

    chain = config.chain
    schedule = config.epochs
    if schedule is None:
        schedule = (schedule_from_chain(chain) if chain is not None else None) or DEFAULT_SCHEDULE
    service = HeartbeatService(
        config.registry,
        DigestSigner(bytes(config.signer.key)),
        schedule,
        HeartbeatJournal(directory, sync=config.fsync),
        expiry,
        blocks,
        max_skew=config.max_skew,
        min_interval=config.min_heartbeat_interval,
        retention=config.retention,
        chain_clock=chain_clock,
    )
    if config.clock is not None:
        service.clock = config.clock
    if chain is not None and REWARD_POOL in getattr(chain.deployment, "contracts", {}):
        service.schedule_source = _chain_guarded(lambda: schedule_from_chain(chain), chain)
    return service


def build_server(config: AttesterConfig) -> AttesterServer:
    store = Store(config.db)
    routes: dict[str, Route] = dict(config.extra_routes)
    readers: dict[str, Reader] = {}
    beats: HeartbeatService | None = None
    info: dict[str, Any] = {"attester": config.signer.address, "routes": []}
    if config.policy is not None and config.registry is not None:
        compute = ComputeService(
            config.policy,
            config.registry,
            config.signer,
            store,
            validity=config.validity,
            max_skew=config.max_skew,
            collateral_source=config.collateral_source,
            retention=config.retention,
        )
        if config.clock is not None:
            compute.clock = config.clock
        if config.chain_clock is not None:
            compute.chain_clock = config.chain_clock
        elif config.chain is not None:
            w3 = config.chain.w3
            compute.chain_clock = _chain_guarded(
                lambda: int(w3.eth.get_block("latest")["timestamp"]), config.chain
            )
        routes[api.REGISTRATIONS] = Route(compute.register, api.MAX_REGISTRATION_BODY)
        beats = _heartbeats(config, store, compute.chain_clock)
        if beats is not None:
            compute.on_registered = beats.registered
            compute.recent_heartbeats = beats.recent
            routes[api.HEARTBEATS] = Route(beats.heartbeat)
            readers[api.HEARTBEATS + "?"] = beats.log
            readers[metrics.PATH] = metrics.reader(beats)
        readers[api.EVIDENCE_PREFIX] = lambda h: ("application/json", compute.evidence(h))
        readers[api.WORKERS_PREFIX] = _json_reader(compute.worker_view)
        info["compute"] = {
            "chain_id": config.registry.chain_id,
            "registry": config.registry.registry,
            "allow_simulated": config.policy.allow_simulated,
            "validity": config.validity,
            "epoch": None
            if beats is None
            else {
                "genesis_time": beats.schedule.genesis_time,
                "epoch_length": beats.schedule.epoch_length,
            },
            "heartbeats": beats is not None,
        }
    if config.tree is not None and config.context is not None:
        service = BindingService(
            config.tree,
            config.context,
            config.signer,
            store,
            max_bindings_per_account=config.max_bindings_per_account,
        )
        if config.is_claimed is not None:
            service.is_claimed = config.is_claimed
        elif config.chain is not None:
            migrator = config.chain.contract("Migrator")
            service.is_claimed = _chain_guarded(
                lambda index: bool(migrator.functions.isClaimed(index).call()), config.chain
            )
        routes[api.BINDINGS] = Route(service.attest)
        info.update(
            {
                "chain_id": config.context.chain_id,
                "migrator": config.context.migrator,
                "genesis_hash": "0x" + config.context.genesis_hash.hex(),
                "root": "0x" + config.tree.root.hex(),
            }
        )
    info["routes"] = sorted(routes)
    info["reads"] = sorted(readers)
    server = AttesterServer(
        (config.host, config.port), routes, lambda: info, readers, limits=config.limits
    )
    if beats is not None:
        server.closers.append(beats.journal.close)
    return server
