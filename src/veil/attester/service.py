"""Assemble an attester from its parts: key, store, the deployment, and what it attests.

Migration bindings need the published tree (amounts and leaf indices) and the deployment
(chain id, Migrator); compute registrations need the network's attestation policy. An
operator may run either or both; each is enabled by the inputs it needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount

from veil.attester.bindings import BindingService, ClaimedCheck
from veil.attester.server import AttesterServer, Route
from veil.attester.store import Store
from veil.chain.client import Chain
from veil.migration.binding import BindingContext
from veil.migration.merkle import MerkleTree

BINDINGS_PATH = "/v1/migration/bindings"


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


def build_server(config: AttesterConfig) -> AttesterServer:
    store = Store(config.db)
    routes: dict[str, Route] = dict(config.extra_routes)
    info: dict[str, Any] = {"attester": config.signer.address, "routes": []}
    if config.tree is not None and config.context is not None:
        service = BindingService(config.tree, config.context, config.signer, store)
        if config.is_claimed is not None:
            service.is_claimed = config.is_claimed
        elif config.chain is not None:
            migrator = config.chain.contract("Migrator")
            service.is_claimed = lambda index: bool(migrator.functions.isClaimed(index).call())
        routes[BINDINGS_PATH] = Route(service.attest)
        info.update(
            {
                "chain_id": config.context.chain_id,
                "migrator": config.context.migrator,
                "genesis_hash": "0x" + config.context.genesis_hash.hex(),
                "root": "0x" + config.tree.root.hex(),
            }
        )
    info["routes"] = sorted(routes)
    return AttesterServer((config.host, config.port), routes, lambda: info)
