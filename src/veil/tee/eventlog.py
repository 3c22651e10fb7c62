"""Event-log replay: the event log is only worth reading once it reproduces the RTMRs.

A TDX quote signs four runtime measurement registers (RTMR0-3); each starts at 48 zero
bytes and is extended as `rtmr = sha384(rtmr || digest)`. The event log lists those
digests in order. Replaying it and comparing with the signed RTMRs is what turns the
log's plain-text events (app id, compose hash...) into measured facts.

dstack's runtime events (`event_type == 0x08000001`, all in RTMR3) carry their digest
as `sha384(le32(event_type) || ":" || event || ":" || payload)`; we recompute it rather
than trusting the digest field, because the payload is what we later read.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from veil.errors import InputError
from veil.tee.document import json_document

RUNTIME_EVENT_TYPE = 0x08000001
RTMR_COUNT = 4
RTMR_SIZE = 48


@dataclass(frozen=True)
class Event:
    """One event-log entry; `payload` is the raw bytes behind `event_payload` (hex)."""

    imr: int
    event_type: int
    digest: bytes
    event: str
    payload: bytes

    @property
    def is_runtime(self) -> bool:
        return self.event_type == RUNTIME_EVENT_TYPE

    def to_json(self) -> dict[str, Any]:
        return {
            "imr": self.imr,
            "event_type": self.event_type,
            "digest": self.digest.hex(),
            "event": self.event,
            "event_payload": self.payload.hex(),
        }


def runtime_digest(event: str, payload: bytes, event_type: int = RUNTIME_EVENT_TYPE) -> bytes:
    """The digest dstack extends into RTMR3 for a named runtime event."""
    data = struct.pack("<I", event_type) + b":" + event.encode() + b":" + payload
    return hashlib.sha384(data).digest()


def runtime_event(event: str, payload: bytes) -> Event:
    """A runtime (RTMR3) event with its digest computed the dstack way."""
    return Event(3, RUNTIME_EVENT_TYPE, runtime_digest(event, payload), event, payload)


def _hex(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise InputError(f"event log {what}: expected a hex string, got {type(value).__name__}")
    try:
        return bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raise InputError(f"event log {what}: not hex") from None


def parse_event_log(source: str | bytes | Sequence[Any]) -> list[Event]:
    """Read a dstack event log: a JSON list (or its text) of {imr, event_type, digest, ...}."""
    raw = json_document(source, "event log")
    if not isinstance(raw, list):
        raise InputError("event log: expected a JSON list of events")
    events: list[Event] = []
    for index, item in enumerate(raw):
        where = f"entry {index}"
        if not isinstance(item, dict):
            raise InputError(f"event log {where}: expected an object")
        imr = item.get("imr")
        event_type = item.get("event_type")
        if not isinstance(imr, int) or not 0 <= imr < RTMR_COUNT:
            raise InputError(f"event log {where}: imr must be 0..3, got {imr!r}")
        if not isinstance(event_type, int) or event_type < 0:
            raise InputError(f"event log {where}: event_type must be a non-negative integer")
        digest = _hex(item.get("digest", ""), f"{where} digest")
        if len(digest) != RTMR_SIZE:
            raise InputError(f"event log {where}: digest must be 48 bytes, got {len(digest)}")
        name = item.get("event", "")
        if not isinstance(name, str):
            raise InputError(f"event log {where}: event name must be a string")
        payload = _hex(item.get("event_payload", ""), f"{where} event_payload")
        events.append(Event(imr, event_type, digest, name, payload))
    return events


@dataclass(frozen=True)
class Replay:
    """The RTMRs an event log produces, and the runtime events whose digest was wrong."""

    rtmrs: tuple[bytes, bytes, bytes, bytes]
    bad_digests: tuple[str, ...]

    def mismatches(self, quoted: Sequence[bytes]) -> list[int]:
        """Indexes of the RTMRs that differ from the ones the quote signed."""
        return [i for i in range(RTMR_COUNT) if self.rtmrs[i] != quoted[i]]


def replay(events: Iterable[Event]) -> Replay:
    """Extend every event into its RTMR; runtime digests are recomputed from the payload."""
    registers = [bytes(RTMR_SIZE)] * RTMR_COUNT
    bad: list[str] = []
    for event in events:
        digest = event.digest
        if event.is_runtime:
            computed = runtime_digest(event.event, event.payload, event.event_type)
            if computed != digest:
                bad.append(event.event)
            digest = computed
        registers[event.imr] = hashlib.sha384(registers[event.imr] + digest).digest()
    return Replay((registers[0], registers[1], registers[2], registers[3]), tuple(bad))


def events_json(events: Iterable[Event]) -> str:
    """The event log as dstack serialises it (a JSON list as text)."""
    return json.dumps([event.to_json() for event in events])
