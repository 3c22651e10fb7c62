"""Shared pieces of the compute tests: the scratch network and a restartable attester."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from veil.chain.deployment import Deployment
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
