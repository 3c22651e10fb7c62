"""A simulated TEE: quote-shaped evidence signed by a development key, for laptops and CI.

Real TDX needs Intel hardware. So that the whole network (attester, registry, worker)
runs on a laptop, this module produces evidence of the same JSON shape as a dstack
attestation (`quote`, `event_log`, `vm_config`) plus `"simulated": true`. The quote has a
TDX v4 header and TD report layout, so the same measurement and event-log code reads it,
but it is signed with an ed25519 development key instead of Intel's chain, and its
header's QE vendor id is the ASCII marker `VEIL-SIMULATED`, so it can never pass for real.

The default development key is DETERMINISTIC and PUBLIC (derived from a fixed string
below): anyone can forge evidence with it. That is the point: it proves nothing, it only
lets code paths run. Verification refuses simulated evidence unless a policy says
`allow_simulated = true`, and every output says SIMULATED.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.signing

from veil.atomic import write_text
from veil.errors import InputError
from veil.tee.eventlog import Event, events_json, replay, runtime_event
from veil.tee.identity import GPU_EVIDENCE_EVENT
from veil.tee.tdx import TEE_TDX, Measurements

SIM_VENDOR_ID = b"VEIL-SIMULATED\0\0"
SIM_USER_DATA = b"SIMULATED TEE ONLY\0\0"
SIM_KEY_TYPE = 0xED25
DEV_KEY_SEED = hashlib.sha256(b"veil simulated TEE development key - public, NOT A SECRET").digest()
SIM_MRTD = hashlib.sha384(b"veil simulated TD: MRTD").digest()

HEADER_SIZE = 48
BODY_SIZE = 584
SIGNATURE_SIZE = 64 + 32

# TD report 1.0 field layout (name, size) as in Intel's TDX quote format.
_TD10 = (
    ("tee_tcb_svn", 16), ("mr_seam", 48), ("mr_signer_seam", 48), ("seam_attributes", 8),
    ("td_attributes", 8), ("xfam", 8), ("mr_td", 48), ("mr_config_id", 48), ("mr_owner", 48),
    ("mr_owner_config", 48), ("rtmr0", 48), ("rtmr1", 48), ("rtmr2", 48), ("rtmr3", 48),
    ("report_data", 64),
)  # fmt: skip


def dev_signing_key() -> nacl.signing.SigningKey:
    """The shared, public development key (see module docstring)."""
    return nacl.signing.SigningKey(DEV_KEY_SEED)


def dev_public_key() -> str:
    return bytes(dev_signing_key().verify_key).hex()


def generate_key_file(path: str | os.PathLike[str]) -> str:
    """Write a fresh random simulator key (32-byte seed, hex); returns its public key."""
    key = nacl.signing.SigningKey.generate()
    write_text(path, bytes(key).hex() + "\n")
    return bytes(key.verify_key).hex()


def load_key_file(path: str | os.PathLike[str]) -> nacl.signing.SigningKey:
    file = Path(path)
    try:
        seed = bytes.fromhex(file.read_text().strip())
    except OSError as error:
        raise InputError(f"simulator key {file}: cannot read ({error.strerror})") from None
    except ValueError:
        raise InputError(f"simulator key {file}: expected a 32-byte hex seed") from None
    if len(seed) != 32:
        raise InputError(f"simulator key {file}: expected a 32-byte hex seed, got {len(seed)}")
    return nacl.signing.SigningKey(seed)


def is_simulated_quote(raw: bytes) -> bool:
    """True when the quote header carries the simulator's vendor marker."""
    return len(raw) >= HEADER_SIZE and raw[12:28] == SIM_VENDOR_ID


def _boot_events() -> list[Event]:
    """Fixed stand-ins for firmware, kernel and initrd measurements (RTMR0-2)."""
    names = [(0, 0x80000001, "firmware"), (1, 0x80000003, "kernel"), (2, 0x6, "initrd")]
    return [
        Event(imr, kind, hashlib.sha384(f"veil simulated {what}".encode()).digest(), "", b"")
        for imr, kind, what in names
    ]


@dataclass(frozen=True)
class AppSpec:
    """What the simulated CVM claims to run, measured into RTMR3 as dstack would."""

    compose_hash: bytes = hashlib.sha256(b"veil simulated app-compose").digest()
    app_id: bytes | None = None
    instance_id: bytes = hashlib.sha256(b"veil simulated instance").digest()[:20]
    os_image_hash: bytes = hashlib.sha256(b"veil simulated os image").digest()
    key_provider: bytes = b'{"name":"none","id":"simulated"}'


def simulate(
    report_data: bytes,
    *,
    app: AppSpec | None = None,
    gpu_evidence: bytes | None = None,
    key: nacl.signing.SigningKey | None = None,
) -> dict[str, Any]:
    """Produce simulated evidence whose event log replays to its RTMRs; JSON-ready dict."""
    if len(report_data) > 64:
        raise InputError(f"report data: at most 64 bytes, got {len(report_data)}")
    app = app or AppSpec()
    signer = key or dev_signing_key()
    app_id = app.app_id if app.app_id is not None else app.compose_hash[:20]
    runtime = [
        runtime_event("system-preparing", b""),
        runtime_event("app-id", app_id),
        runtime_event("compose-hash", app.compose_hash),
        runtime_event("instance-id", app.instance_id),
        runtime_event("boot-mr-done", b""),
        runtime_event("os-image-hash", app.os_image_hash),
        runtime_event("key-provider", app.key_provider),
    ]
    if gpu_evidence is not None:
        runtime.append(runtime_event(GPU_EVIDENCE_EVENT, hashlib.sha256(gpu_evidence).digest()))
    runtime.append(runtime_event("system-ready", b""))
    events = _boot_events() + runtime
    rtmrs = replay(events).rtmrs
    fields = {name: bytes(size) for name, size in _TD10}
    fields.update(
        mr_td=SIM_MRTD,
        rtmr0=rtmrs[0],
        rtmr1=rtmrs[1],
        rtmr2=rtmrs[2],
        rtmr3=rtmrs[3],
        report_data=report_data.ljust(64, b"\0"),
        xfam=bytes.fromhex("e702060000000000"),
    )
    header = struct.pack("<HHIHH", 4, SIM_KEY_TYPE, TEE_TDX, 0, 0) + SIM_VENDOR_ID + SIM_USER_DATA
    body = b"".join(fields[name] for name, _ in _TD10)
    signed = header + body
    signature = signer.sign(signed).signature
    quote = signed + struct.pack("<I", SIGNATURE_SIZE) + signature + bytes(signer.verify_key)
    vm_config = {
        "spec_version": 1,
        "os_image_hash": app.os_image_hash.hex(),
        "cpu_count": 2,
        "memory_size": 2 * 1024**3,
        "num_gpus": 1 if gpu_evidence is not None else 0,
        "simulated": True,
    }
    return {
        "simulated": True,
        "warning": "SIMULATED TEE: development evidence, not hardware-backed",
        "quote": quote.hex(),
        "event_log": events_json(events),
        "report_data": report_data.ljust(64, b"\0").hex(),
        "vm_config": json.dumps(vm_config),
    }


@dataclass(frozen=True)
class SimulatedQuote:
    measurements: Measurements
    public_key: str


def parse_simulated_quote(raw: bytes) -> SimulatedQuote:
    """Read a simulated quote's measurements and signer key (signature not yet checked)."""
    if not is_simulated_quote(raw):
        raise InputError("simulated quote: missing the VEIL-SIMULATED header marker")
    if len(raw) != HEADER_SIZE + BODY_SIZE + 4 + SIGNATURE_SIZE:
        raise InputError(f"simulated quote: unexpected length {len(raw)}")
    pos = HEADER_SIZE
    values: dict[str, str] = {}
    for name, size in _TD10:
        values[name] = raw[pos : pos + size].hex()
        pos += size
    measurements = Measurements(
        tee="tdx",
        quote_version=struct.unpack_from("<H", raw, 0)[0],
        fmspc=None,
        mr_td=values["mr_td"],
        rtmr0=values["rtmr0"],
        rtmr1=values["rtmr1"],
        rtmr2=values["rtmr2"],
        rtmr3=values["rtmr3"],
        mr_seam=values["mr_seam"],
        mr_config_id=values["mr_config_id"],
        mr_owner=values["mr_owner"],
        td_attributes=values["td_attributes"],
        xfam=values["xfam"],
        report_data=values["report_data"],
    )
    return SimulatedQuote(measurements, raw[-32:].hex())


def simulated_signature_problem(raw: bytes, trusted_keys: tuple[str, ...]) -> str | None:
    """None when a trusted simulator key signed this quote, else the refusal reason."""
    parsed = parse_simulated_quote(raw)
    if parsed.public_key not in trusted_keys:
        return (
            f"simulator signature: key {parsed.public_key[:16]}... is not a trusted simulator key"
        )
    signed = raw[: HEADER_SIZE + BODY_SIZE]
    signature = raw[HEADER_SIZE + BODY_SIZE + 4 : HEADER_SIZE + BODY_SIZE + 4 + 64]
    try:
        nacl.signing.VerifyKey(bytes.fromhex(parsed.public_key)).verify(signed, signature)
    except nacl.exceptions.BadSignatureError:
        return "simulator signature invalid: the simulated quote was altered"
    return None
