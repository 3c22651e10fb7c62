"""Evidence as a worker hands it over: a quote, optionally with its event log and VM config.

Three shapes are accepted, because that is what TDX tooling produces: the raw quote
bytes, the quote as hex text, or a dstack attestation JSON object
(`{"quote": hex, "event_log": JSON text or list, "vm_config": JSON text or object}`,
plus `"simulated": true` for the development simulator).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dcap_qvl

from veil.errors import InputError
from veil.tee.document import json_document
from veil.tee.eventlog import Event, parse_event_log
from veil.tee.simulator import is_simulated_quote

_HEX = re.compile(r"(0x)?[0-9a-fA-F\s]+")


@dataclass(frozen=True)
class Evidence:
    """What `verify_evidence` judges. `claims_simulated` is the file's own marker."""

    quote: bytes
    event_log: tuple[Event, ...] | None = None
    vm_config: dict[str, Any] | None = None
    claims_simulated: bool = False


def _json_field(value: Any, what: str) -> Any:
    """A field that may hold JSON as text (dstack) or already parsed (our files)."""
    return json_document(value, what) if isinstance(value, str) else value


def evidence_from_json(data: Any, name: str = "evidence") -> Evidence:
    """A dstack-style attestation object (already parsed)."""
    if not isinstance(data, dict):
        raise InputError(f"{name}: expected a JSON object with a 'quote' field")
    quote_hex = data.get("quote")
    if not isinstance(quote_hex, str) or not quote_hex:
        raise InputError(f"{name}: missing 'quote' (hex string)")
    try:
        quote = bytes.fromhex(quote_hex.removeprefix("0x"))
    except ValueError:
        raise InputError(f"{name}: 'quote' is not hex") from None
    events = None
    if data.get("event_log") not in (None, "", []):
        events = tuple(parse_event_log(_json_field(data["event_log"], f"{name} event_log")))
    vm_config = None
    if data.get("vm_config") not in (None, ""):
        vm_config = _json_field(data["vm_config"], f"{name} vm_config")
        if not isinstance(vm_config, dict):
            raise InputError(f"{name}: vm_config must be a JSON object")
    simulated = data.get("simulated", False)
    if not isinstance(simulated, bool):
        raise InputError(f"{name}: 'simulated' must be true or false")
    return Evidence(quote, events, vm_config, simulated)


def evidence_from_bytes(data: bytes, name: str = "quote") -> Evidence:
    """Detect the shape (JSON, hex text, raw bytes) and read it."""
    stripped = data.strip()
    if not stripped:
        raise InputError(f"{name}: empty file")
    if stripped.startswith(b"{"):
        try:
            parsed = json.loads(stripped)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise InputError(f"{name}: looks like JSON but is not ({error})") from None
        return evidence_from_json(parsed, name)
    try:
        text = stripped.decode("ascii")
    except UnicodeDecodeError:
        text = ""
    if text and _HEX.fullmatch(text):
        compact = "".join(text.removeprefix("0x").split())
        try:
            return Evidence(bytes.fromhex(compact))
        except ValueError:
            raise InputError(f"{name}: hex text of odd length") from None
    return Evidence(data)


def load_evidence(
    path: str | os.PathLike[str],
    *,
    event_log: str | os.PathLike[str] | None = None,
    vm_config: str | os.PathLike[str] | None = None,
) -> Evidence:
    """Read a quote file, with a separate event log and VM config overriding embedded ones."""
    file = Path(path)
    evidence = evidence_from_bytes(_read(file, "quote"), f"quote {file}")
    if not is_simulated_quote(evidence.quote):
        try:
            dcap_qvl.parse_quote(evidence.quote)
        except (ValueError, RuntimeError) as error:
            detail = str(error).strip().splitlines()[0] if str(error).strip() else "unreadable"
            raise InputError(f"quote {file}: not a TDX/SGX DCAP quote ({detail})") from None
    events = evidence.event_log
    config = evidence.vm_config
    if event_log is not None:
        log_file = Path(event_log)
        events = tuple(parse_event_log(_read(log_file, "event log")))
    if vm_config is not None:
        config_file = Path(vm_config)
        config = _json_field(_read(config_file, "vm config").decode(), f"vm config {config_file}")
        if not isinstance(config, dict):
            raise InputError(f"vm config {config_file}: expected a JSON object")
    return Evidence(evidence.quote, events, config, evidence.claims_simulated)


def _read(file: Path, what: str) -> bytes:
    try:
        return file.read_bytes()
    except OSError as error:
        raise InputError(f"{what} {file}: cannot read ({error.strerror})") from None
