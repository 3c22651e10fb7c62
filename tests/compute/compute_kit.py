"""Shared pieces of the compute tests: the scratch network and a restartable attester."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from veil.chain.deployment import Deployment
from veil.compute.heartbeat_log import read_entries
from veil.compute.registry import RegistryClient
from veil.devnet.anvil import Devnet
from veil.devnet.client import DevnetChain
from veil.services.attester.server import AttesterServer
from veil.services.attester.service import AttesterConfig, build_server


@dataclass
class ComputeNetwork:
    devnet: Devnet
    chain: DevnetChain
    deployment: Deployment
    deployment_path: Path
    registry: RegistryClient


@dataclass
class RunningAttester:
    server: AttesterServer
    config: AttesterConfig
    thread: threading.Thread

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def restart(self) -> RunningAttester:
        return start_attester(self.config)


def start_attester(config: AttesterConfig) -> RunningAttester:
    server = build_server(config)
    if config.port == 0:
        config.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return RunningAttester(server, config, thread)


def stored_heartbeats(config: AttesterConfig, worker: str) -> list[int]:
    """The sequences of `worker`'s heartbeats in the attester's journals, in file order
    (whole lines only: a batch may be mid-write)."""
    directory = config.heartbeat_dir or config.db.with_suffix(".heartbeats")
    sequences: list[int] = []
    for path in sorted(directory.glob("epoch-*.ndjson")):
        data = path.read_bytes()
        log = read_entries(data[: data.rfind(b"\n") + 1], int(path.stem.split("-")[1]))
        sequences += [
            log.sequence[i] for i in range(len(log)) if log.workers[log.worker_index[i]] == worker
        ]
    return sequences
