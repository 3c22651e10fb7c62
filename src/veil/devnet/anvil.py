"""The embedded devnet: an anvil process in optimism mode whose state lives on disk.

anvil dumps its whole state to `state.json` on SIGTERM and every few seconds, and loads it
on start, so `down` then `up` resumes the same chain (same blocks, same contracts). The pid
and the port are kept beside the state so `status` and `down` find the process again.

anvil restores the blocks but not the clock: a resumed anvil stamps new blocks with the wall
clock, which is behind a chain that was moved forward with `advance`, and contracts that
compare timestamps then revert. `start` therefore sets the clock to no earlier than one
second after the last block, so chain time never goes backwards across `down`/`up`.

A start that fails or is interrupted (Ctrl-C) stops the anvil it launched and removes every
file it created, so no orphan process holds the port and no stray files are left.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from veil import atomic
from veil.chain.home import veil_home
from veil.devnet.accounts import DEVNET_MNEMONIC
from veil.errors import VeilError

DEVNET_CHAIN_ID = 73217  # not a public chain's id (checked against chainlist)
# A second devnet (tests, the docs test, a scratch chain) needs no flag on every command:
# VEIL_DEVNET_HOME and VEIL_DEVNET_PORT move the defaults of `--home` and `--port`; the home
# is otherwise `$VEIL_HOME/devnet` (`.veil/devnet` in the working directory).
DEFAULT_HOME = Path(os.environ.get("VEIL_DEVNET_HOME") or veil_home() / "devnet")
_PORT_TEXT = os.environ.get("VEIL_DEVNET_PORT", "").strip()
DEFAULT_PORT = int(_PORT_TEXT) if _PORT_TEXT.isdigit() else 8545
STATE_INTERVAL_SECONDS = 2
MAX_PORT = 65_535


class DevnetError(VeilError):
    """The devnet cannot be started, found or stopped as asked."""


class DevnetInterrupted(DevnetError):
    """Ctrl-C during a start: anvil was stopped and the start's files removed."""

    exit_code = 130


@dataclass(frozen=True)
class DevnetProcess:
    pid: int
    port: int
    chain_id: int
    started_at: float

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


ANVIL_ENV = "VEIL_ANVIL"
LOCAL_ANVIL = Path("node_modules") / ".bin" / "anvil"


def anvil_binary() -> Path:
    """$VEIL_ANVIL, else the project's pinned anvil (./node_modules/.bin), else one on PATH.

    The project's own comes before PATH as with `npx`: the repository pins the version
    whose optimism mode and state files the devnet was written against.
    """
    explicit = os.environ.get(ANVIL_ENV)
    if explicit:
        if not Path(explicit).is_file():
            raise DevnetError(f"${ANVIL_ENV} {explicit}: no such file")
        return Path(explicit)
    if LOCAL_ANVIL.is_file():
        return LOCAL_ANVIL.absolute()
    found = shutil.which("anvil")
    if found:
        return Path(found)
    raise DevnetError(
        "anvil not found (not in ./node_modules/.bin nor on PATH): install it with "
        "`npm install @foundry-rs/anvil` (`make setup` in the repository) or set $VEIL_ANVIL"
    )


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


def check_port(port: int) -> None:
    """A port outside 1..65535 is refused here, before anything is launched or written."""
    if not 1 <= port <= MAX_PORT:
        raise DevnetError(f"--port {port}: not a TCP port (use 1 to {MAX_PORT})")


def _rpc(url: str, method: str, params: list[Any], timeout: float = 5) -> Any:
    """One JSON-RPC call without web3 (this module stays light: the CLI imports it)."""
    import urllib.request

    payload = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    request = urllib.request.Request(
        url, data=payload.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        answer = json.loads(response.read())
    if "error" in answer:
        raise DevnetError(f"anvil refused {method}: {answer['error'].get('message', answer)}")
    return answer.get("result")


def _wait_for_rpc(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
            raise DevnetError(f"anvil exited with code {process.returncode}: {' '.join(tail)}")
        try:
            _rpc(url, "eth_chainId", [], timeout=1)
            return
        except (OSError, ValueError):
            time.sleep(0.1)
    raise DevnetError(f"anvil did not answer on {url} within {timeout:.0f} s")


def _keep_clock_monotonic(url: str) -> None:
    """Set anvil's clock to at least one second after the last block (see module docstring).

    `evm_setTime` moves anvil's time offset, so later blocks keep following the wall clock
    from there; on a chain already behind the wall clock this changes nothing.
    """
    latest = _rpc(url, "eth_getBlockByNumber", ["latest", False])
    last = int(latest["timestamp"], 16)
    now = int(time.time())
    if last >= now:
        _rpc(url, "evm_setTime", [last + 1])


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
        check_port(port)
        current = self.running()
        if current is not None:
            raise DevnetError(
                f"devnet already running (pid {current.pid}, {current.rpc_url}); "
                "`veil devnet down` first"
            )
        if _port_busy(port):
            raise DevnetError(f"port {port} is busy: another process listens there (use --port)")
        binary = anvil_binary()
        created = self._missing_paths()
        pid: int | None = None
        try:
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
            pid = process.pid
            record = DevnetProcess(pid, port, chain_id, time.time())
            _wait_for_rpc(record.rpc_url, process, self.log_file, timeout)
            _keep_clock_monotonic(record.rpc_url)
            atomic.write_json(self.process_file, asdict(record))
        except BaseException as error:
            self._abandon(pid, created)
            replacement = self._one_line(error)
            if replacement is error:
                raise
            raise replacement from error
        return record

    @contextlib.contextmanager
    def started(self, port: int = DEFAULT_PORT) -> Iterator[DevnetProcess]:
        """Start, and undo the whole start if the caller's setup (a deploy) fails or is ^C'd.

        Undoing means: anvil stopped (SIGTERM, so a resumed chain's state file stays intact)
        and every file this start created removed, so a failed `up` leaves nothing behind.
        """
        created = self._missing_paths()
        process = self.start(port=port)
        try:
            yield process
        except BaseException as error:
            self._abandon(process.pid, created)
            replacement = self._one_line(error)
            if replacement is error:
                raise
            raise replacement from error

    def _one_line(self, error: BaseException) -> BaseException:
        """Ctrl-C and OS errors become the one-line errors the CLI prints; others pass."""
        if isinstance(error, KeyboardInterrupt):
            return DevnetInterrupted("interrupted: devnet start undone, no anvil left running")
        if isinstance(error, OSError):
            return DevnetError(f"devnet {self.home}: cannot start ({error})")
        return error

    def _missing_paths(self) -> list[Path]:
        """The paths a start may create, deepest first: a failed start removes exactly these."""
        missing = [p for p in (self.log_file, self.state_file) if not p.exists()]
        directory = self.home
        while not directory.exists():
            missing.append(directory)
            directory = directory.parent
        return missing

    def _abandon(self, pid: int | None, created: list[Path]) -> None:
        """Stop the anvil a start launched and remove what it created; a second ^C waits."""
        with _ctrl_c_deferred():
            if pid is not None:
                _terminate(pid)
            self.process_file.unlink(missing_ok=True)
            for path in created:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)

    def stop(self, timeout: float = 20) -> DevnetProcess:
        """SIGTERM anvil so it dumps its state, and wait until it has gone."""
        current = self.running()
        if current is None:
            raise DevnetError("devnet is not running")
        with _ctrl_c_deferred():  # a half-done stop would leave a record of a dead process
            gone = _terminate(current.pid, timeout)
            self.process_file.unlink(missing_ok=True)
        if not gone:
            raise DevnetError(f"anvil (pid {current.pid}) ignored SIGTERM; killed, state may lag")
        return current

    def reset(self) -> None:
        """Forget the saved chain (only while stopped)."""
        if self.running() is not None:
            raise DevnetError("devnet is running: `veil devnet down` before --fresh")
        self.state_file.unlink(missing_ok=True)


@contextlib.contextmanager
def _ctrl_c_deferred() -> Iterator[None]:
    """Ignore SIGINT while a stop or an undo finishes (bounded: anvil gets SIGKILL at worst).

    Signal handlers can only be set from the main thread; elsewhere Ctrl-C never lands.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _reap(pid: int) -> None:
    """Collect our own child's exit status so it stops counting as alive (a zombie)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _terminate(pid: int, timeout: float = 20) -> bool:
    """SIGTERM (anvil then writes a whole state file) and wait; SIGKILL if it lingers.

    Returns whether anvil went on SIGTERM alone.
    """
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    if not _pid_alive(pid):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    while _pid_alive(pid):
        _reap(pid)
        time.sleep(0.05)
    return False
