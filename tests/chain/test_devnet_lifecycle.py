"""The devnet process: resume after down/up, and one clear error for each misuse."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from web3 import Web3

from veil.chain import devnet as devnet_module
from veil.chain.devnet import Devnet, DevnetError, free_port

pytestmark = pytest.mark.xdist_group("anvil")


def test_down_then_up_resumes_the_same_chain(tmp_path: Path) -> None:
    devnet = Devnet(tmp_path)
    process = devnet.start(port=free_port())
    try:
        w3 = Web3(Web3.HTTPProvider(process.rpc_url))
        assert w3.eth.chain_id == devnet_module.DEVNET_CHAIN_ID
        w3.provider.make_request("evm_mine", [])
        w3.provider.make_request("evm_mine", [])
        mined = w3.eth.block_number
        head = w3.eth.get_block("latest")["hash"]
    finally:
        devnet.stop()
    assert devnet.running() is None
    process = devnet.start(port=free_port())
    try:
        w3 = Web3(Web3.HTTPProvider(process.rpc_url))
        assert w3.eth.block_number == mined
        assert w3.eth.get_block(mined)["hash"] == head
    finally:
        devnet.stop()


def test_starting_twice_is_refused(tmp_path: Path) -> None:
    devnet = Devnet(tmp_path)
    devnet.start(port=free_port())
    try:
        with pytest.raises(DevnetError, match="already running"):
            devnet.start(port=free_port())
    finally:
        devnet.stop()


def test_busy_port_is_refused(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(DevnetError, match=f"port {port} is busy"):
            Devnet(tmp_path).start(port=port)
    assert not (tmp_path / "process.json").exists()


def test_missing_anvil_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devnet_module, "REPO_ROOT", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DevnetError, match="anvil not found: run `make setup`"):
        Devnet(tmp_path).start(port=free_port())


def test_stop_when_not_running(tmp_path: Path) -> None:
    with pytest.raises(DevnetError, match="not running"):
        Devnet(tmp_path).stop()


def test_stale_process_record_is_forgotten(tmp_path: Path) -> None:
    (tmp_path / "process.json").write_text(
        '{"pid": 999999, "port": 1, "chain_id": 1, "started_at": 0}'
    )
    assert Devnet(tmp_path).running() is None
    assert not (tmp_path / "process.json").exists()


def test_wrong_network_and_dead_rpc_are_one_line(tmp_path: Path) -> None:
    from veil.chain.client import connect
    from veil.errors import ChainError

    devnet = Devnet(tmp_path)
    process = devnet.start(port=free_port())
    try:
        with pytest.raises(ChainError, match="chain id 73217, but the deployment is for 1"):
            connect(process.rpc_url, expected_chain_id=1)
    finally:
        devnet.stop()
    with pytest.raises(ChainError, match="no answer"):
        connect(process.rpc_url, timeout=2)
