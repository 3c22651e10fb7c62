"""The devnet process: resume after down/up, and one clear error for each misuse."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from anvil_processes import anvil_pids
from web3 import Web3

from veil.devnet import anvil as devnet_module
from veil.devnet.anvil import Devnet, DevnetError, free_port

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
    monkeypatch.chdir(tmp_path)  # no ./node_modules/.bin/anvil here
    monkeypatch.delenv(devnet_module.ANVIL_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DevnetError, match=r"anvil not found .*npm install @foundry-rs/anvil"):
        Devnet(tmp_path).start(port=free_port())
    monkeypatch.setenv(devnet_module.ANVIL_ENV, str(tmp_path / "nowhere" / "anvil"))
    with pytest.raises(DevnetError, match=r"VEIL_ANVIL .*: no such file"):
        Devnet(tmp_path).start(port=free_port())
    assert not (tmp_path / "process.json").exists()


def test_anvil_is_found_from_the_working_directory_not_the_source_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An installed veil has no checkout to look in: the project's node_modules comes
    first (the pinned version), then PATH."""
    monkeypatch.delenv(devnet_module.ANVIL_ENV, raising=False)
    on_path = tmp_path / "bin" / "anvil"
    on_path.parent.mkdir()
    on_path.write_text("#!/bin/sh\n")
    on_path.chmod(0o755)
    monkeypatch.setenv("PATH", str(on_path.parent))
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    assert devnet_module.anvil_binary() == on_path
    pinned = project / "node_modules" / ".bin" / "anvil"
    pinned.parent.mkdir(parents=True)
    pinned.write_text("#!/bin/sh\n")
    assert devnet_module.anvil_binary() == pinned


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


def _rpc_block(w3: Web3) -> tuple[int, int]:
    block = w3.eth.get_block("latest")
    return int(block["number"]), int(block["timestamp"])


def test_resumed_chain_never_turns_its_clock_back(tmp_path: Path) -> None:
    """Issue 8, defect 1: anvil reloads the blocks, not the clock, so a chain moved ahead
    with time travel got new blocks stamped with the (earlier) wall clock after down/up."""
    devnet = Devnet(tmp_path / "home")
    process = devnet.start(port=free_port())
    try:
        w3 = Web3(Web3.HTTPProvider(process.rpc_url))
        w3.provider.make_request("evm_increaseTime", [86_400])
        w3.provider.make_request("evm_mine", [])
        ahead_number, ahead_time = _rpc_block(w3)
    finally:
        devnet.stop()
    process = devnet.start(port=free_port())
    try:
        w3 = Web3(Web3.HTTPProvider(process.rpc_url))
        stamps = [ahead_time]
        for _ in range(3):
            w3.provider.make_request("evm_mine", [])
            number, stamp = _rpc_block(w3)
            stamps.append(stamp)
        assert number == ahead_number + 3
        assert stamps == sorted(stamps) and stamps[1] > ahead_time, stamps
        # a transaction (not only an empty block) also lands after the advanced time
        alice, bob = w3.eth.accounts[1], w3.eth.accounts[2]
        tx = w3.eth.send_transaction({"from": alice, "to": bob, "value": 1})
        receipt = w3.eth.wait_for_transaction_receipt(tx)
        assert w3.eth.get_block(receipt["blockNumber"])["timestamp"] >= stamps[-1]
    finally:
        devnet.stop()


def test_port_out_of_range_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with pytest.raises(DevnetError, match="--port 70000: not a TCP port"):
        Devnet(home).start(port=70_000)
    assert not home.exists()


def test_anvil_that_fails_to_start_leaves_no_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "anvil"
    broken.write_text("#!/bin/sh\necho 'boom: cannot bind' >&2\nexit 7\n")
    broken.chmod(0o755)
    monkeypatch.setattr(devnet_module, "anvil_binary", lambda: broken)
    home = tmp_path / "nested" / "home"
    with pytest.raises(DevnetError, match="anvil exited with code 7: boom: cannot bind"):
        Devnet(home).start(port=free_port())
    assert not (tmp_path / "nested").exists()


def test_failed_setup_after_start_undoes_the_start(tmp_path: Path) -> None:
    """A deploy that fails (or is interrupted) inside `started` stops anvil, frees the port
    and removes the home it created; an existing chain's state file is kept."""
    home = tmp_path / "home"
    devnet = Devnet(home)
    port = free_port()
    with pytest.raises(RuntimeError, match="deploy failed"), devnet.started(port=port):
        raise RuntimeError("deploy failed")
    assert not home.exists()
    assert not anvil_pids(str(home))
    assert not socket_busy(port)

    devnet.start(port=port)
    devnet.stop()
    saved = (home / "state.json").read_bytes()
    with pytest.raises(DevnetError, match="interrupted"), devnet.started(port=port):
        raise KeyboardInterrupt
    assert devnet.running() is None and not anvil_pids(str(home))
    assert (home / "state.json").exists() and len((home / "state.json").read_bytes()) > 0
    assert len(saved) > 0


def socket_busy(port: int) -> bool:
    return devnet_module._port_busy(port)
