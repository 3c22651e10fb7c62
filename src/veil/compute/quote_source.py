"""Where a worker gets a quote whose report data binds its key: TDX, dstack, or simulator.

Each source returns the evidence as dstack-shaped JSON text (`quote` hex, `event_log`,
`vm_config`), the form the attester verifies.

- `ConfigfsTsm`: the Linux kernel's TSM report interface (TDX guests, Linux >= 6.7). Make
  a directory under /sys/kernel/config/tsm/report, write the 64-byte report data to
  `inblob`, read the quote from `outblob`; `generation` counts inblob writes, so on our fresh
  entry anything but 1 means another process raced us. configfs gives no event
  log, so the RTMR3 app identity the registry needs must come from an event-log file
  (`event_log=`); a plain TDX VM without one is refused by the attester.
- `DstackSocket`: the dstack guest agent on its unix socket (/var/run/dstack.sock):
  `POST /GetQuote {"report_data": hex}` answers quote, event log and VM config. GPU
  evidence is bound first with `POST /EmitEvent` (event `gpu-evidence-hash`, payload
  sha256 of the evidence), which extends RTMR3 before the quote is taken.
- `Simulator`: veil's development TEE (veil.tee.simulator); SIMULATED, no hardware.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from veil.errors import VeilError
from veil.tee.identity import GPU_EVIDENCE_EVENT
from veil.tee.simulator import AppSpec, simulate

TSM_REPORT_ROOT = Path("/sys/kernel/config/tsm/report")
DSTACK_SOCKET = Path("/var/run/dstack.sock")


class QuoteError(VeilError):
    """The TEE would not produce a quote (missing device, agent down, race)."""


class QuoteSource(Protocol):
    name: str

    def evidence(self, report_data: bytes, gpu_evidence: bytes | None = None) -> str:
        """Evidence JSON text for a quote carrying `report_data` (64 bytes)."""
        ...


def _check_report_data(report_data: bytes) -> None:
    if len(report_data) != 64:
        raise QuoteError(f"report data: {len(report_data)} bytes, expected 64")


@dataclass
class ConfigfsTsm:
    root: Path = TSM_REPORT_ROOT
    event_log: Path | None = None
    timeout: float = 10.0
    name: str = "tdx"

    def evidence(self, report_data: bytes, gpu_evidence: bytes | None = None) -> str:
        _check_report_data(report_data)
        if gpu_evidence is not None:
            raise QuoteError("configfs-tsm: cannot bind GPU evidence (no RTMR3 extension);"
                             " run under dstack")  # fmt: skip
        if not self.root.is_dir():
            raise QuoteError(f"configfs-tsm: {self.root} absent (not a TDX guest, or configfs"
                             " not mounted)")  # fmt: skip
        entry = self.root / f"veil-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            entry.mkdir()
        except OSError as error:
            raise QuoteError(f"configfs-tsm: cannot create {entry} ({error.strerror})") from None
        try:
            (entry / "inblob").write_bytes(report_data)
            quote = self._outblob(entry)
            # our entry is fresh and we wrote inblob once: any other count means a race
            generation = self._generation(entry)
            if generation not in (None, "1"):
                raise QuoteError("configfs-tsm: another process wrote inblob meanwhile; retry")
        finally:
            # a configfs entry goes with its attributes; a plain directory is left behind
            with contextlib.suppress(OSError):
                entry.rmdir()
        doc: dict[str, Any] = {"quote": quote.hex()}
        if self.event_log is not None:
            doc["event_log"] = self.event_log.read_text()
        return json.dumps(doc)

    @staticmethod
    def _generation(entry: Path) -> str | None:
        file = entry / "generation"
        return file.read_text().strip() if file.exists() else None

    def _outblob(self, entry: Path) -> bytes:
        """The kernel fills outblob when it is read; wait briefly for a slow provider."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                data = (entry / "outblob").read_bytes()
            except FileNotFoundError:
                data = b""
            except OSError as error:
                detail = error.strerror
                raise QuoteError(f"configfs-tsm: reading outblob failed ({detail})") from None
            if data:
                return data
            if time.monotonic() > deadline:
                raise QuoteError(f"configfs-tsm: no quote in {entry}/outblob")
            time.sleep(0.02)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


@dataclass
class DstackSocket:
    path: Path = DSTACK_SOCKET
    timeout: float = 30.0
    name: str = "dstack"

    def call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        connection = _UnixConnection(self.path, self.timeout)
        try:
            connection.request(
                "POST", f"/{method}", json.dumps(body), {"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            raw = response.read()
        except OSError as error:
            raise QuoteError(f"dstack {self.path}: {method} failed ({error})") from None
        finally:
            connection.close()
        if response.status != 200:
            text = raw[:200].decode(errors="replace")
            raise QuoteError(f"dstack {method}: HTTP {response.status} {text}")
        if not raw.strip():
            return {}
        try:
            answer = json.loads(raw)
        except ValueError:
            raise QuoteError(f"dstack {method}: answer is not JSON") from None
        if not isinstance(answer, dict):
            raise QuoteError(f"dstack {method}: answer is not a JSON object")
        return answer

    def evidence(self, report_data: bytes, gpu_evidence: bytes | None = None) -> str:
        _check_report_data(report_data)
        if gpu_evidence is not None:
            digest = hashlib.sha256(gpu_evidence).hexdigest()
            self.call("EmitEvent", {"event": GPU_EVIDENCE_EVENT, "payload": digest})
        answer = self.call("GetQuote", {"report_data": report_data.hex()})
        if not isinstance(answer.get("quote"), str):
            raise QuoteError("dstack GetQuote: no quote in the answer")
        keys = ("quote", "event_log", "report_data", "vm_config")
        return json.dumps({k: answer[k] for k in keys if k in answer})


@dataclass
class Simulator:
    app: AppSpec = field(default_factory=AppSpec)
    name: str = "sim"

    def evidence(self, report_data: bytes, gpu_evidence: bytes | None = None) -> str:
        _check_report_data(report_data)
        return json.dumps(simulate(report_data, app=self.app, gpu_evidence=gpu_evidence))


def quote_source(kind: str, *, tsm_root: Path | None = None, socket_path: Path | None = None,
                 event_log: Path | None = None) -> QuoteSource:  # fmt: skip
    """The source named on the command line: tdx, dstack or sim."""
    if kind == "tdx":
        return ConfigfsTsm(tsm_root or TSM_REPORT_ROOT, event_log)
    if kind == "dstack":
        return DstackSocket(socket_path or DSTACK_SOCKET)
    if kind == "sim":
        return Simulator()
    raise QuoteError(f"tee {kind!r}: expected tdx, dstack or sim")
