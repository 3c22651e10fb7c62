"""The app identity a dstack CVM measures into RTMR3, read from its runtime events.

These values are only measured facts after the event log has replayed to the quote's
RTMRs; before that they are claims. The verifier reads them from the replayed log only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from veil.tee.eventlog import Event

#: The RTMR3 event a CVM extends with sha256 of the GPU evidence it attested (see gpu.py).
GPU_EVIDENCE_EVENT = "gpu-evidence-hash"


@dataclass(frozen=True)
class AppIdentity:
    """Who the CVM says it runs; hex strings, or None when the event is absent."""

    app_id: str | None = None
    compose_hash: str | None = None
    instance_id: str | None = None
    os_image_hash: str | None = None
    key_provider: str | None = None
    gpu_evidence_hash: str | None = None
    other_events: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def _text_or_hex(payload: bytes) -> str:
    """key-provider is JSON text; the rest are binary ids shown as hex."""
    try:
        text = payload.decode()
    except UnicodeDecodeError:
        return payload.hex()
    return text if text.isprintable() else payload.hex()


def app_identity(events: Iterable[Event]) -> AppIdentity:
    """Collect the named RTMR3 runtime events; a later event of the same name wins."""
    found: dict[str, bytes] = {}
    other: dict[str, str] = {}
    for event in events:
        if not event.is_runtime or event.imr != 3:
            continue
        found[event.event] = event.payload
        if event.event not in _NAMED:
            other[event.event] = _text_or_hex(event.payload) if event.payload else ""

    def get_hex(name: str) -> str | None:
        return found[name].hex() if name in found else None

    key_provider = found.get("key-provider")
    return AppIdentity(
        app_id=get_hex("app-id"),
        compose_hash=get_hex("compose-hash"),
        instance_id=get_hex("instance-id"),
        os_image_hash=get_hex("os-image-hash"),
        key_provider=_text_or_hex(key_provider) if key_provider is not None else None,
        gpu_evidence_hash=get_hex(GPU_EVIDENCE_EVENT),
        other_events=other,
    )


_NAMED = {
    "app-id",
    "compose-hash",
    "instance-id",
    "os-image-hash",
    "key-provider",
    GPU_EVIDENCE_EVENT,
}
