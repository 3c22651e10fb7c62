"""The embedded devnet: an anvil process in optimism mode whose state lives on disk.

anvil dumps its whole state to `state.json` on SIGTERM and every few seconds, and loads it
on start, so `down` then `up` resumes the same chain (same blocks, same contracts). The pid
and the port are kept beside the state so `status` and `down` find the process again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from veil import atomic
from veil.chain.accounts import DEVNET_MNEMONIC
from veil.chain.compile import REPO_ROOT
from veil.errors import VeilError

DEVNET_CHAIN_ID = 73217  # not a public chain's id (checked against chainlist)
DEFAULT_PORT = 8545
DEFAULT_HOME = REPO_ROOT / ".veil" / "devnet"
STATE_INTERVAL_SECONDS = 2


class DevnetError(VeilError):
    """The devnet cannot be started, found or stopped as asked."""


@dataclass(frozen=True)
class DevnetProcess:
    pid: int
    port: int
    chain_id: int
    started_at: float

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def anvil_binary() -> Path:
    """anvil pinned in package.json (node_modules/.bin), else one on PATH."""
    local = REPO_ROOT / "node_modules" / ".bin" / "anvil"
    if local.exists():
        return local
    found = shutil.which("anvil")
    if found:
        return Path(found)
    raise DevnetError("anvil not found: run `make setup` (installs @foundry-rs/anvil from npm)")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _port_busy(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def free_port(preferred: int | None = None) -> int:
    """`preferred` if nothing listens there, else a port the kernel hands out."""
    if preferred is not None and not _port_busy(preferred):
        return preferred
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_rpc(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    import urllib.request

    payload = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
            raise DevnetError(f"anvil exited with code {process.returncode}: {' '.join(tail)}")
        try:
            request = urllib.request.Request(
                url, data=payload, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise DevnetError(f"anvil did not answer on {url} within {timeout:.0f} s (log: {log})")


class Devnet:
    """One devnet home directory: state, pid file and log of one anvil process."""

    def __init__(self, home: Path = DEFAULT_HOME) -> None:
        self.home = home
        self.state_file = home / "state.json"
        self.process_file = home / "process.json"
        self.log_file = home / "anvil.log"

    def running(self) -> DevnetProcess | None:
        """The live process recorded here, or None (a stale record is removed)."""
        if not self.process_file.exists():
            return None
        try:
            record = DevnetProcess(**json.loads(self.process_file.read_text()))
        except (ValueError, TypeError):
            self.process_file.unlink(missing_ok=True)
            return None
        if not _pid_alive(record.pid):
            self.process_file.unlink(missing_ok=True)
            return None
        return record

    def start(
        self, port: int = DEFAULT_PORT, chain_id: int = DEVNET_CHAIN_ID, timeout: float = 30
    ) -> DevnetProcess:
        """Start anvil resuming any saved state; refuse a second start or a busy port."""
        current = self.running()
        if current is not None:
            raise DevnetError(
                f"devnet already running (pid {current.pid}, {current.rpc_url}); "
                "`veil devnet down` first"
            )
        if _port_busy(port):
            raise DevnetError(f"port {port} is busy: another process listens there (use --port)")
        binary = anvil_binary()
        self.home.mkdir(parents=True, exist_ok=True)
        args = [
            str(binary),
            "--network", "optimism",
            "--chain-id", str(chain_id),
            "--port", str(port),
            "--host", "127.0.0.1",
            "--mnemonic", DEVNET_MNEMONIC,
            "--accounts", "10",
            "--balance", "10000",
            "--state", str(self.state_file),
            "--state-interval", str(STATE_INTERVAL_SECONDS),
        ]  # fmt: skip
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        record = DevnetProcess(process.pid, port, chain_id, time.time())
        try:
            _wait_for_rpc(record.rpc_url, process, self.log_file, timeout)
        except DevnetError:
            if process.poll() is None:
                process.kill()
            raise
        atomic.write_json(self.process_file, asdict(record))
        return record

    def stop(self, timeout: float = 20) -> DevnetProcess:
        """SIGTERM anvil so it dumps its state, and wait until it has gone."""
        current = self.running()
        if current is None:
            raise DevnetError("devnet is not running")
        os.kill(current.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid_alive(current.pid) and time.monotonic() < deadline:
            _reap(current.pid)
            time.sleep(0.05)
        if _pid_alive(current.pid):
            os.kill(current.pid, signal.SIGKILL)
            raise DevnetError(f"anvil (pid {current.pid}) ignored SIGTERM; killed, state may lag")
        self.process_file.unlink(missing_ok=True)
        return current

    def reset(self) -> None:
        """Forget the saved chain (only while stopped)."""
        if self.running() is not None:
            raise DevnetError("devnet is running: `veil devnet down` before --fresh")
        self.state_file.unlink(missing_ok=True)


def _reap(pid: int) -> None:
    """Collect our own child's exit status so it stops counting as alive (a zombie)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
