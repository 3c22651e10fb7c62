"""What the devnet benchmarks share: a throwaway anvil, signers, and gas from receipts.

Benchmarks never reuse the developer's devnet: each run starts its own anvil on a free
port in a temporary directory, so numbers come from a clean chain and nothing is left
behind.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from web3.contract import Contract

from veil.chain.client import Chain, connect
from veil.chain.compile import Artifact
from veil.devnet.anvil import Devnet, free_port
from veil.devnet.client import DevnetChain

REPO_ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def scratch_chain() -> Iterator[DevnetChain]:
    """A fresh anvil (optimism mode) for one benchmark run, stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix="veil-bench-") as home:
        devnet = Devnet(Path(home))
        process = devnet.start(port=free_port())
        try:
            yield DevnetChain(connect(process.rpc_url))
        finally:
            devnet.stop()


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def reference_artifacts() -> dict[str, Any]:
    """OpenZeppelin reference contracts compiled by solc-js (bench/reference/build.mjs)."""
    out = subprocess.run(
        ["node", "bench/reference/build.mjs"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def deploy_reference(
    chain: Chain, deployer: LocalAccount, artifact: dict[str, Any], *args: Any
) -> Contract:
    """Deploy one solc-js artifact ({abi, bytecode}) and return its handle."""
    compiled = Artifact("reference", artifact["abi"], bytes.fromhex(artifact["bytecode"]), "", "")
    address, _ = chain.deploy(deployer, compiled, *args)
    return chain.at(address, artifact["abi"])


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record, sort_keys=False), flush=True)
