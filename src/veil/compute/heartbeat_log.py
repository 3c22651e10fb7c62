"""An attester's signed heartbeat log for one epoch: what rewards are computed from.

The log is NDJSON (`application/x-ndjson`), so that it streams, can be appended to, and
is read with any JSON tool:

1. a header `{"format":"veil-heartbeat-log-v1","epoch":N,"attester":"0x..","chainId":C,
   "registry":"0x..","complete":bool}`; `complete` is true once no heartbeat of the epoch
   can be accepted any more (its end plus the attester's clock skew has passed);
2. one line per accepted heartbeat, in the order the attester accepted them:
   `{"worker":"0x..","epoch":N,"sequence":S,"timestamp":T,"blockHash":"0x..",
   "signature":"0x..","receivedAt":R}` (R: unix seconds at the attester), enough for
   anyone to re-check the worker's EIP-712 signature (`veil.compute.heartbeat`);
3. one line per (worker, reason) tally of refused heartbeats
   `{"refused":{"worker":"0x..","reason":"replayed","count":K}}`; refusals the attester
   cannot attribute to a worker it knows are tallied under the zero address;
4. last, `{"end":{"accepted":A,"refused":F,"sha256":"<hex>","attesterSignature":"0x.."}}`:
   `sha256` is over every byte before this line, and the attester signs (EIP-191
   personal_sign) `veil-heartbeat-log:{chainId}:{registry}:{epoch}:{sha256}`, with the
   registry as written in the header. The signature makes the attester accountable for
   exactly this content: a log it served cannot later be denied or quietly rewritten.

`LogWriter` produces the log as a stream of byte chunks (the attester never holds an
epoch in memory). `read_log` reads one back, refusing anything malformed with an
InputError that names the line, and checks the hash, the counts, and the attester's
signature. An epoch of 29,000 workers beating once a minute is 1.74 M lines (~600 MB),
so the reader streams the file in chunks, parses the canonical entry lines (those the
writer emits) with one regular expression per chunk, falls back to a JSON parser for any
other spelling, and keeps the heartbeats in columns (typed arrays, one worker table)
rather than one object per heartbeat.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from veil.attestation.typed_data import DigestSigner, Signature, checksum, keccak256, recover_digest
from veil.errors import InputError

FORMAT = "veil-heartbeat-log-v1"
MEDIA_TYPE = "application/x-ndjson"
ZERO_ADDRESS = "0x" + "00" * 20
CHUNK = 8 << 20

_U64 = 2**64
_ENTRY_KEYS = {"worker", "epoch", "sequence", "timestamp", "blockHash", "signature", "receivedAt"}
_ENTRY_KEYS_VIEW = dict.fromkeys(_ENTRY_KEYS).keys()
_HEADER_FIELDS = ("format", "epoch", "attester", "chainId", "registry", "complete")


@dataclass(frozen=True)
class LogHeader:
    epoch: int
    attester: str
    chain_id: int
    registry: str
    complete: bool

    def line(self) -> bytes:
        return (
            orjson.dumps(
                {
                    "format": FORMAT,
                    "epoch": self.epoch,
                    "attester": self.attester,
                    "chainId": self.chain_id,
                    "registry": self.registry,
                    "complete": self.complete,
                }
            )
            + b"\n"
        )


class Entry(NamedTuple):
    """One accepted heartbeat as the log records it."""

    worker: str
    epoch: int
    sequence: int
    timestamp: int
    block_hash: bytes
    signature: bytes
    received_at: int


def entry_line(
    worker: str,
    epoch: int,
    sequence: int,
    timestamp: int,
    block_hash: bytes,
    signature: bytes,
    received_at: int,
) -> bytes:
    """The canonical line of an accepted heartbeat (`worker` checksummed by the caller)."""
    return (
        f'{{"worker":"{worker}","epoch":{epoch},"sequence":{sequence},'
        f'"timestamp":{timestamp},"blockHash":"0x{block_hash.hex()}",'
        f'"signature":"0x{signature.hex()}","receivedAt":{received_at}}}\n'
    ).encode()


def refusal_line(worker: str, reason: str, count: int) -> bytes:
    return orjson.dumps({"refused": {"worker": worker, "reason": reason, "count": count}}) + b"\n"


def signed_text(chain_id: int, registry: str, epoch: int, sha256_hex: str) -> str:
    """What the attester signs for a log: the network, the epoch, and the content's hash."""
    return f"veil-heartbeat-log:{chain_id}:{registry}:{epoch}:{sha256_hex}"


def personal_digest(text: str) -> bytes:
    """EIP-191 version 0x45 (`personal_sign`, `eth_sign`): what a wallet signs for text."""
    raw = text.encode()
    return keccak256(b"\x19Ethereum Signed Message:\n" + str(len(raw)).encode() + raw)


class LogWriter:
    """The log of one epoch, as chunks to send or store: header, entries, tallies, end.

    Call `header()`, then `entries()` any number of times with canonical entry lines
    (already joined; `count` of them), then `tallies()` once, then `end()`. The hash is
    taken over exactly the bytes handed out, so what a client receives is what is signed.
    """

    def __init__(self, header: LogHeader, signer: DigestSigner) -> None:
        if checksum(signer.address, "log signer") != checksum(header.attester, "log attester"):
            raise InputError(f"heartbeat log: header names {header.attester}, key is"
                             f" {signer.address}")  # fmt: skip
        self._header = header
        self._signer = signer
        self._hash = hashlib.sha256()
        self.accepted = 0
        self.refused = 0
        self._stage = 0

    def _emit(self, data: bytes) -> bytes:
        self._hash.update(data)
        return data

    def header(self) -> bytes:
        self._advance(0, 1)
        return self._emit(self._header.line())

    def entries(self, lines: bytes, count: int) -> bytes:
        self._advance(1, 1)
        self.accepted += count
        return self._emit(lines)

    def tallies(self, tallies: Mapping[tuple[str, str], int]) -> bytes:
        """Refusal tallies by (worker, reason), written in sorted order."""
        self._advance(1, 2)
        lines = []
        for (worker, reason), count in sorted(tallies.items()):
            if count > 0:
                lines.append(refusal_line(worker, reason, count))
                self.refused += count
        return self._emit(b"".join(lines))

    def end(self) -> bytes:
        self._advance(2, 3)
        digest = self._hash.hexdigest()
        h = self._header
        message = signed_text(h.chain_id, h.registry, h.epoch, digest)
        signature = self._signer.sign(personal_digest(message)).to_bytes()
        end = {
            "accepted": self.accepted,
            "refused": self.refused,
            "sha256": digest,
            "attesterSignature": "0x" + signature.hex(),
        }
        return orjson.dumps({"end": end}) + b"\n"

    def _advance(self, expect: int, then: int) -> None:
        if self._stage != expect:
            raise RuntimeError(f"heartbeat log written out of order (stage {self._stage})")
        self._stage = then


def write_log(
    header: LogHeader,
    signer: DigestSigner,
    entries: Iterator[tuple[bytes, int]],
    tallies: Mapping[tuple[str, str], int],
) -> Iterator[bytes]:
    """The whole log as chunks: `entries` yields (joined canonical lines, how many)."""
    writer = LogWriter(header, signer)
    yield writer.header()
    for lines, count in entries:
        yield writer.entries(lines, count)
    yield writer.tallies(tallies)
    yield writer.end()


# --- reading ---------------------------------------------------------------------------


@dataclass
class HeartbeatLog:
    """A verified log in columns: heartbeat `i` is `workers[worker_index[i]]`,
    `sequence[i]`, `timestamp[i]`, `block_hashes[block_index[i]]`, `received_at[i]`, and
    `signature(i)` when signatures were kept."""

    header: LogHeader
    workers: list[str] = field(default_factory=list)
    worker_index: array[int] = field(default_factory=lambda: array("I"))
    sequence: array[int] = field(default_factory=lambda: array("Q"))
    timestamp: array[int] = field(default_factory=lambda: array("Q"))
    received_at: array[int] = field(default_factory=lambda: array("Q"))
    block_hashes: list[bytes] = field(default_factory=list)
    block_index: array[int] = field(default_factory=lambda: array("I"))
    signatures: bytearray | None = None  # 65 bytes per heartbeat
    refusals: dict[tuple[str, str], int] = field(default_factory=dict)  # (worker, reason)
    accepted: int = 0
    refused: int = 0
    sha256: str = ""
    attester_signature: bytes = b""

    @property
    def epoch(self) -> int:
        return self.header.epoch

    @property
    def attester(self) -> str:
        return self.header.attester

    @property
    def complete(self) -> bool:
        return self.header.complete

    def __len__(self) -> int:
        return len(self.sequence)

    def signature(self, i: int) -> bytes:
        if self.signatures is None:
            raise InputError("heartbeat log: read without signatures (keep_signatures=False)")
        return bytes(self.signatures[65 * i : 65 * i + 65])

    def entry(self, i: int) -> Entry:
        return Entry(
            self.workers[self.worker_index[i]],
            self.header.epoch,
            self.sequence[i],
            self.timestamp[i],
            self.block_hashes[self.block_index[i]],
            self.signature(i) if self.signatures is not None else b"",
            self.received_at[i],
        )

    def __iter__(self) -> Iterator[Entry]:
        return (self.entry(i) for i in range(len(self)))

    def counts_by_worker(self) -> dict[str, int]:
        """Accepted heartbeats per worker."""
        counts = [0] * len(self.workers)
        for index in self.worker_index:
            counts[index] += 1
        return {worker: counts[i] for i, worker in enumerate(self.workers)}


class _Columns:
    """What the reader accumulates. Entries arrive in blocks of parsed lines and are
    checked and stored a column at a time (C loops: `map`, `array`, one `fromhex` per
    block) instead of a Python statement per field per line; a block that fails any
    check is re-read line by line (`add`), which finds and names the offending line."""

    def __init__(self, epoch: int, keep_signatures: bool) -> None:
        self.epoch = epoch
        self.workers: list[str] = []
        self.worker_ids: dict[str | bytes, int] = {}  # the worker as a line spells it -> index
        self.by_address: dict[str, int] = {}  # checksummed -> index (one per worker)
        self.last_sequence: list[int] = []
        self.worker_index = array("I")
        self.sequence = array("Q")
        self.timestamp = array("Q")
        self.received_at = array("Q")
        self.block_hashes: list[bytes] = []
        self.block_ids: dict[str | bytes, int] = {}  # "0x.." as a line spells it -> index
        self.block_index = array("I")
        self.signatures: bytearray | None = bytearray() if keep_signatures else None

    def log(self, header: LogHeader, **end: Any) -> HeartbeatLog:
        """The log these columns hold, under `header`, with the end record's fields."""
        return HeartbeatLog(
            header=header,
            workers=self.workers,
            worker_index=self.worker_index,
            sequence=self.sequence,
            timestamp=self.timestamp,
            received_at=self.received_at,
            block_hashes=self.block_hashes,
            block_index=self.block_index,
            signatures=self.signatures,
            **end,
        )

    def _worker(self, text: Any, number: int, key: Any = None) -> int:
        """The index of the worker a line names (`key`: how the caller looks it up)."""
        key = text if key is None else key
        index = self.worker_ids.get(key) if isinstance(key, str | bytes) else None
        if index is None:
            worker = _checksummed(text, number)
            index = self.by_address.get(worker)
            if index is None:
                index = self.by_address[worker] = len(self.workers)
                self.workers.append(worker)
                self.last_sequence.append(-1)
            self.worker_ids[key] = index
        return index

    def _block(self, text: Any, number: int) -> int:
        index = self.block_ids.get(text) if isinstance(text, str | bytes) else None
        if index is None:
            value = text.decode() if isinstance(text, bytes) else text
            raw = _hex({"blockHash": value}, "blockHash", 32, number)
            if value != "0x" + raw.hex():
                raise InputError(f"heartbeat log line {number}: blockHash is not lower-case hex")
            index = self.block_ids[text] = len(self.block_hashes)
            self.block_hashes.append(raw)
        return index

    def add(self, data: dict[str, Any], number: int) -> None:
        """One entry line, every check spelled out."""
        if data.keys() != _ENTRY_KEYS:
            raise InputError(f"heartbeat log line {number}: fields {sorted(data)}, expected"
                             f" {sorted(_ENTRY_KEYS)} or a refusal tally")  # fmt: skip
        epoch = _uint(data, "epoch", number)
        if epoch != self.epoch:
            raise InputError(f"heartbeat log line {number}: epoch {epoch}, the log's is"
                             f" {self.epoch}")  # fmt: skip
        index = self._worker(data["worker"], number)
        sequence = _uint(data, "sequence", number)
        if sequence <= self.last_sequence[index]:
            raise InputError(f"heartbeat log line {number}: worker {self.workers[index]}"
                             f" sequence {sequence} not above its previous"
                             f" {self.last_sequence[index]}")  # fmt: skip
        timestamp = _uint(data, "timestamp", number)
        received_at = _uint(data, "receivedAt", number)
        block = self._block(data.get("blockHash"), number)
        signature = _hex(data, "signature", 65, number)
        self.last_sequence[index] = sequence
        self.worker_index.append(index)
        self.sequence.append(sequence)
        self.timestamp.append(timestamp)
        self.received_at.append(received_at)
        self.block_index.append(block)
        if self.signatures is not None:
            self.signatures += signature

    def add_canonical(self, block: bytes, count: int) -> bool:
        """`count` entry lines exactly as `entry_line` writes them, taken apart at their
        quotes: a canonical line splits into 20 pieces, always the same ones at the same
        places, so each field is one slice of the split, checked and converted as a
        column. False, with nothing stored, if the block is anything else."""
        pieces = block.split(b'"')
        if len(pieces) != 20 * count + 1 or pieces[0] != b"{":
            return False
        for offset, text in _CANONICAL_FIXED:
            if pieces[offset::20].count(text) != count:
                return False
        if pieces[6::20].count(b":%d," % self.epoch) != count:
            return False
        try:
            sequences = _numbers(b"".join(pieces[8::20]), count)
            timestamps = _numbers(b"".join(pieces[10::20]), count)
            tail = b"".join(pieces[20::20])
            if not tail.endswith(b"}\n"):
                return False
            received = _numbers(tail[:-2].replace(b"}\n{", b","), count, b"")
            workers, blocks = pieces[3::20], pieces[13::20]
            signatures = b""
            if self.signatures is not None:
                signatures = _hex_column(b"".join(pieces[17::20]), 65, count)
        except (OverflowError, ValueError):
            return False
        return self._store(workers, blocks, sequences, timestamps, received, signatures)

    def _store(
        self,
        workers: list[Any],
        blocks: list[Any],
        sequences: array[int],
        timestamps: array[int],
        received: array[int],
        signatures: bytes,
    ) -> bool:
        """Columns whose every field was checked, but for the worker and block names
        and the sequence order, which are checked here."""
        try:  # names seen before (nearly all, after the first block) cost one lookup each
            indexes = array("I", map(self.worker_ids.__getitem__, workers))
            block_indexes = array("I", map(self.block_ids.__getitem__, blocks))
        except KeyError:
            try:
                for text in set(workers).difference(self.worker_ids):
                    self._worker(text.decode() if isinstance(text, bytes) else text, 0, text)
                for text in set(blocks).difference(self.block_ids):
                    self._block(text, 0)
            except InputError:
                return False
            indexes = array("I", map(self.worker_ids.__getitem__, workers))
            block_indexes = array("I", map(self.block_ids.__getitem__, blocks))
        last = self.last_sequence
        before = last.copy()
        for index, sequence in zip(indexes, sequences):  # noqa: B905 (equal lengths)
            if sequence <= last[index]:
                last[:] = before
                return False
            last[index] = sequence
        self.worker_index += indexes
        self.sequence += sequences
        self.timestamp += timestamps
        self.received_at += received
        self.block_index += block_indexes
        if self.signatures is not None:
            self.signatures += signatures
        return True

    def add_block(self, entries: list[dict[str, Any]]) -> bool:
        """Entries (dicts with exactly the entry keys) if all pass every check; False,
        with nothing stored, if any does not."""
        count = len(entries)
        try:
            columns = {
                name: [entry[name] for entry in entries]
                for name in (
                    "worker",
                    "epoch",
                    "sequence",
                    "timestamp",
                    "receivedAt",
                    "blockHash",
                    "signature",
                )
            }
            for name in ("epoch", "sequence", "timestamp", "receivedAt"):
                if set(map(type, columns[name])) != {int}:  # not bool, not float
                    return False
            for name in ("worker", "blockHash", "signature"):
                if set(map(type, columns[name])) != {str}:
                    return False
            if set(columns["epoch"]) != {self.epoch}:
                return False
            sequences = array("Q", columns["sequence"])  # OverflowError: not a uint64
            timestamps = array("Q", columns["timestamp"])
            received = array("Q", columns["receivedAt"])
            signatures = b""
            if self.signatures is not None:
                joined = "".join(columns["signature"]).encode()
                signatures = _hex_column(joined, 65, count)
        except (OverflowError, ValueError, TypeError):
            return False
        return self._store(columns["worker"], columns["blockHash"], sequences, timestamps,
                           received, signatures)  # fmt: skip


_CANONICAL_FIXED = (
    (1, b"worker"), (2, b":"), (4, b","), (5, b"epoch"), (7, b"sequence"), (9, b"timestamp"),
    (11, b"blockHash"), (12, b":"), (14, b","), (15, b"signature"), (16, b":"), (18, b","),
    (19, b"receivedAt"),
)  # fmt: skip
_LEADING_ZERO = re.compile(rb"[:,]0[0-9]")


def _checksummed(text: Any, number: int) -> str:
    """The EIP-55 form of an address a line names, as `checksum` gives it (29,000 workers
    are checksummed once each per log; this is several times cheaper)."""
    if isinstance(text, str) and len(text) == 42 and text.startswith("0x"):
        lower = text[2:].lower()
        if not lower.translate(_NOT_HEX):
            digest = keccak256(lower.encode()).hex()
            upper = "".join(map(_EIP55_CASE.__getitem__, zip(lower, digest, strict=False)))
            if text[2:] in (upper, lower, lower.upper()):
                return "0x" + upper
    return checksum(text, f"heartbeat log line {number} worker")  # it raises, naming why


_NOT_HEX = str.maketrans("", "", "0123456789abcdef")
#: (address digit, hash digit) -> the digit in EIP-55 case: upper when the hash's is 8 or more
_EIP55_CASE = {
    (c, d): c.upper() if d in "89abcdef" else c
    for c in "0123456789abcdef"
    for d in "0123456789abcdef"
}


def _numbers(text: bytes, count: int, prefix: bytes = b",") -> array[int]:
    """`count` JSON unsigned integers written `:N,` (or `:N` joined by `,`, prefix b"")."""
    if text.translate(None, b"0123456789:,"):
        raise ValueError("not plain digits")
    if (b":0" in text or b",0" in text) and _LEADING_ZERO.search(text):
        raise ValueError("not plain digits")
    body = text.replace(b":", b"")
    if prefix:
        if not body.endswith(prefix):
            raise ValueError("unterminated")
        body = body[:-1]
    values = body.split(b",")
    if len(values) != count or b"" in values:
        raise ValueError("count")
    return array("Q", map(int, values))  # OverflowError: not a uint64


def _hex_column(joined: bytes, size: int, count: int) -> bytes:
    """`count` strings 0x + 2*size lower-case hex digits, joined; decoded."""
    width = 2 + 2 * size
    if len(joined) != width * count or joined[::width] != b"0" * count:
        raise ValueError("width")
    if joined[1::width] != b"x" * count:
        raise ValueError("prefix")
    digits = joined.replace(b"0x", b"")
    if digits.translate(None, b"0123456789abcdef"):
        raise ValueError("not lower-case hex")
    return binascii.unhexlify(digits)


def _object(line: bytes, number: int) -> dict[str, Any]:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise InputError(f"heartbeat log line {number}: not JSON ({error})") from None
    if not isinstance(value, dict):
        raise InputError(f"heartbeat log line {number}: expected a JSON object")
    return value


def _uint(data: dict[str, Any], name: str, number: int, bits: int = 64) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**bits:
        raise InputError(f"heartbeat log line {number}: {name} {value!r:.40} is not a uint{bits}")
    return value


def _hex(data: dict[str, Any], name: str, size: int, number: int) -> bytes:
    value = data.get(name)
    if isinstance(value, str) and value.startswith("0x") and len(value) == 2 + 2 * size:
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            pass
    raise InputError(f"heartbeat log line {number}: {name} is not 0x + {size} bytes of hex")


def _header(line: bytes) -> LogHeader:
    data = _object(line, 1)
    if data.get("format") != FORMAT:
        raise InputError(f"heartbeat log line 1: format {data.get('format')!r:.60}, expected"
                         f" {FORMAT!r}")  # fmt: skip
    if set(data) != set(_HEADER_FIELDS):
        raise InputError(f"heartbeat log line 1: header fields {sorted(data)}, expected"
                         f" {sorted(_HEADER_FIELDS)}")  # fmt: skip
    complete = data["complete"]
    if not isinstance(complete, bool):
        raise InputError("heartbeat log line 1: complete is not a boolean")
    chain_id = _uint(data, "chainId", 1, 256)
    attester = checksum(data["attester"], "heartbeat log line 1 attester")
    registry = data["registry"]
    if not isinstance(registry, str) or checksum(registry, "heartbeat log line 1") != registry:
        raise InputError("heartbeat log line 1: registry is not a checksummed address")
    return LogHeader(_uint(data, "epoch", 1), attester, chain_id, registry, complete)


def _chunks(data: bytes | Path) -> Iterator[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data)
        for start in range(0, len(view), CHUNK):
            yield bytes(view[start : start + CHUNK])
        return
    try:
        with open(data, "rb") as handle:
            while chunk := handle.read(CHUNK):
                yield chunk
    except OSError as error:
        raise InputError(f"heartbeat log {data}: unreadable ({error.strerror})") from None


def _lines(data: bytes | Path) -> Iterator[tuple[bytes, bool]]:
    """Blocks of whole lines (each ending in a newline); the flag is True for the last
    block, which holds only the final line (so the caller can treat it as the end)."""
    pending = b""
    held: bytes | None = None  # the latest block, held back until we know it is not last
    for chunk in _chunks(data):
        block = pending + chunk
        cut = block.rfind(b"\n") + 1
        pending = block[cut:]
        if cut:
            if held is not None:
                yield held, False
            held = block[:cut]
    if pending:
        raise InputError("heartbeat log: the last line does not end in a newline (truncated?)")
    if held is None:
        raise InputError("heartbeat log: empty")
    body = held[:-1]
    split = body.rfind(b"\n") + 1
    if split:
        yield held[:split], False
    yield held[split:], True


def _read_block(
    columns: _Columns, refusals: dict[tuple[str, str], int], block: bytes, number: int
) -> int:
    """Whole lines after line `number` (entries, then tallies); returns the last line's
    number."""
    if not refusals:  # the entries before the first tally, the fast way if canonical
        cut = block.find(b'\n{"refused":') + 1 or len(block)
        entries, block = block[:cut], block[cut:]
        count = entries.count(b"\n")
        if columns.add_canonical(entries, count):
            number += count
        else:
            block = entries + block
        if not block:
            return number
    first = number + 1
    number += block.count(b"\n")
    lines = block.split(b"\n")
    lines.pop()  # the block ends in a newline
    if not refusals:
        split = _add_entries(columns, lines, first)
        first += split
        lines = lines[split:]
    for offset, line in enumerate(lines):
        _line(line, first + offset, columns, refusals)
    return number


def read_entries(data: bytes | Path, epoch: int, *, keep_signatures: bool = False) -> HeartbeatLog:
    """Entry lines alone (what an attester journals for an epoch before it is signed into a
    log), with every check of `read_log` but the header, tallies, end and signature. The
    result's header names no attester (zero address, chain 0)."""
    columns = _Columns(epoch, keep_signatures)
    refusals: dict[tuple[str, str], int] = {}
    number, pending = 0, b""
    for chunk in _chunks(data):
        block = pending + chunk
        cut = block.rfind(b"\n") + 1
        pending = block[cut:]
        if cut:
            number = _read_block(columns, refusals, block[:cut], number)
            if refusals:
                raise InputError(f"heartbeat entries line {number}: a refusal tally")
    if pending:
        raise InputError(f"heartbeat entries line {number + 1}: no newline at the end")
    header = LogHeader(epoch, ZERO_ADDRESS, 0, ZERO_ADDRESS, False)
    return columns.log(header, accepted=len(columns.sequence))


def read_log(
    data: bytes | Path, *, keep_signatures: bool = True, verify: bool = True
) -> HeartbeatLog:
    """Read and check a heartbeat log. With `verify`, the sha256 must match the content
    and the end must be signed by the attester the header names; the counts and the
    epoch of every line are always checked. Any problem is an InputError naming the line."""
    number = 0
    hasher = hashlib.sha256()
    header: LogHeader | None = None
    columns: _Columns | None = None
    refusals: dict[tuple[str, str], int] = {}
    end: dict[str, Any] | None = None
    for block, last in _lines(data):
        if last:
            number += 1
            end = _end(block, number, header)
            break
        hasher.update(block)
        if header is None:
            cut = block.find(b"\n") + 1
            header, block = _header(block[:cut]), block[cut:]
            columns = _Columns(header.epoch, keep_signatures)
            number = 1
            if not block:
                continue
        assert columns is not None
        number = _read_block(columns, refusals, block, number)
    if header is None or columns is None or end is None:
        raise InputError("heartbeat log: no header and end (fewer than two lines)")
    log = columns.log(
        header,
        refusals=refusals,
        accepted=end["accepted"],
        refused=end["refused"],
        sha256=end["sha256"],
        attester_signature=end["signature"],
    )
    if log.accepted != len(log):
        raise InputError(f"heartbeat log line {number}: end says {log.accepted} accepted, the"
                         f" log has {len(log)}")  # fmt: skip
    if log.refused != sum(refusals.values()):
        raise InputError(f"heartbeat log line {number}: end says {log.refused} refused, the"
                         f" tallies add up to {sum(refusals.values())}")  # fmt: skip
    if verify:
        verify_end(log, hasher.hexdigest(), number)
    return log


def verify_end(log: HeartbeatLog, content_sha256: str, number: int) -> None:
    """The content hash must be the one signed, and the signer the header's attester."""
    if content_sha256 != log.sha256:
        raise InputError(f"heartbeat log line {number}: sha256 {log.sha256} does not match the"
                         f" content ({content_sha256}); the log was altered")  # fmt: skip
    h = log.header
    digest = personal_digest(signed_text(h.chain_id, h.registry, h.epoch, log.sha256))
    signer = recover_digest(digest, log.attester_signature, f"heartbeat log line {number}")
    if signer != h.attester:
        raise InputError(f"heartbeat log line {number}: signed by {signer}, not by the"
                         f" attester {h.attester} the header names")  # fmt: skip


def _line(
    line: bytes, number: int, columns: _Columns, refusals: dict[tuple[str, str], int]
) -> None:
    data = _object(line, number)
    refused = data.get("refused")
    if refused is not None:
        if set(data) != {"refused"} or not isinstance(refused, dict):
            raise InputError(f"heartbeat log line {number}: malformed refusal tally")
        if set(refused) != {"worker", "reason", "count"}:
            raise InputError(f"heartbeat log line {number}: a tally has worker, reason, count")
        worker = checksum(refused["worker"], f"heartbeat log line {number} worker")
        reason = refused["reason"]
        if not isinstance(reason, str) or not reason:
            raise InputError(f"heartbeat log line {number}: reason is not a string")
        key = (worker, reason)
        if key in refusals:
            raise InputError(f"heartbeat log line {number}: {worker} {reason} tallied twice")
        refusals[key] = _uint(refused, "count", number)
        return
    if refusals:
        raise InputError(f"heartbeat log line {number}: a heartbeat after the refusal tallies")
    columns.add(data, number)


def _add_entries(columns: _Columns, lines: list[bytes], first: int) -> int:
    """Store the block's leading entry lines the fast way; returns how many were taken
    (those after are refusal tallies, or need the line-by-line reader)."""
    try:
        parsed = orjson.loads(b"[" + b",".join(lines) + b"]")
    except orjson.JSONDecodeError:
        return 0  # the line-by-line reader names the line
    if len(parsed) != len(lines):
        return 0  # a line held more than one value
    try:
        same = list(map(_ENTRY_KEYS_VIEW.__eq__, map(dict.keys, parsed)))
    except TypeError:  # a line that is not an object
        same = [type(data) is dict and data.keys() == _ENTRY_KEYS for data in parsed]
    count = same.index(False) if False in same else len(same)
    if count and columns.add_block(parsed[:count]):
        return count
    for offset in range(count):  # something in there is wrong: find and name it
        columns.add(parsed[offset], first + offset)
    return count


def _end(line: bytes, number: int, header: LogHeader | None) -> dict[str, Any]:
    if header is None:
        raise InputError("heartbeat log: no header and end (fewer than two lines)")
    data = _object(line, number)
    end = data.get("end")
    if set(data) != {"end"} or not isinstance(end, dict):
        raise InputError(f"heartbeat log line {number}: the last line must be the end record"
                         " (truncated log?)")  # fmt: skip
    if set(end) != {"accepted", "refused", "sha256", "attesterSignature"}:
        raise InputError(f"heartbeat log line {number}: the end has accepted, refused, sha256,"
                         " attesterSignature")  # fmt: skip
    digest = end["sha256"]
    if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise InputError(f"heartbeat log line {number}: sha256 is not 64 lower-case hex digits")
    return {
        "accepted": _uint(end, "accepted", number),
        "refused": _uint(end, "refused", number),
        "sha256": digest,
        "signature": Signature.from_bytes(
            _hex(end, "attesterSignature", 65, number), f"heartbeat log line {number} signature"
        ).to_bytes(),
    }
