"""The worker's persistent identity: one secp256k1 key, created once, never replaced.

The key's address is what the quote's report data binds and what the registry records,
so losing it means re-registering as a new worker (and unlocking the old collateral
through a cooldown). It lives in `<state dir>/worker.key` (hex, mode 0600), created with
an exclusive link so two agents starting together cannot both write one. Inside a real
CVM the state dir should be on the encrypted, measured disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from veil.atomic import write_json
from veil.errors import InputError

KEY_FILE = "worker.key"
STATE_FILE = "state.json"


def _read_key(file: Path) -> LocalAccount:
    try:
        text = file.read_text().strip()
        key: LocalAccount = Account.from_key(bytes.fromhex(text.removeprefix("0x")))
        return key
    except OSError as error:
        raise InputError(f"worker key {file}: cannot read ({error.strerror})") from None
    except ValueError:
        raise InputError(f"worker key {file}: not a 32-byte hex private key") from None


def load_identity(state_dir: Path) -> LocalAccount | None:
    """The existing key, or None if this state dir has none yet."""
    file = state_dir / KEY_FILE
    return _read_key(file) if file.exists() else None


def load_or_create_identity(state_dir: Path) -> LocalAccount:
    """The worker key in `state_dir`, created (0600) on first use."""
    file = state_dir / KEY_FILE
    if file.exists():
        return _read_key(file)
    state_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".worker.key.", dir=state_dir)  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_bytes(32).hex() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another agent was first: keep theirs
            os.link(tmp, file)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return _read_key(file)


def load_state(state_dir: Path) -> dict[str, Any]:
    """The agent's counters (heartbeat sequence); empty on first start."""
    file = state_dir / STATE_FILE
    if not file.exists():
        return {}
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError) as error:
        raise InputError(f"worker state {file}: unreadable ({error})") from None
    if not isinstance(data, dict):
        raise InputError(f"worker state {file}: expected a JSON object")
    return data


def save_state(state_dir: Path, state: dict[str, Any]) -> None:
    write_json(state_dir / STATE_FILE, state)
