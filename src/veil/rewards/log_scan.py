"""What `rewards close` needs from an attester's heartbeat log, read at C speed.

Close needs only each worker's accepted sequence numbers, the refusal tallies and the
proof that the log is the attester's (its sha256 and signature). The full reader
(`veil.compute.heartbeat_log.read_log`) builds every column of every line, several
microseconds a line: 5.2 M lines for three attesters' logs of 29,000 workers. Here a log
whose entry lines are exactly in the writer's canonical form is checked and reduced with
a handful of whole-block C operations (one compiled regex, one `translate`, `count`):

- the regex is derived from `entry_line` itself (so the format is defined once), anchored
  at each line start and matching up to its newline, so a match count equal to the line
  count means every line is canonical; the epoch is the header's, numbers have no leading
  zero and fit 64 bits, the worker is 40 hex digits;
- deleting hex digits from the block must leave the template's skeleton once per line,
  so the block hash and signature are hex of the right length;
- the block's upper-case A-F count must equal the workers' own (EIP-55 letters), so the
  hashes are lower case, as the full reader requires;
- each distinct worker spelling is checked as the full reader does (EIP-55 or one case),
  sequences must rise per worker, the end's counts must match, the sha256 of everything
  before the end must be the one the attester signed.

Anything else (a non-canonical but valid line, or a broken log) returns None, and the
caller reads the log with the full reader, which accepts it or names the offending line.
"""

from __future__ import annotations

import hashlib
import re
from array import array
from dataclasses import dataclass, field
from operator import lt
from pathlib import Path
from typing import Any

from veil.compute.heartbeat_log import (
    CHUNK,
    HeartbeatLog,
    LogHeader,
    _checksummed,
    _Columns,
    _end,
    _header,
    _line,
    entry_line,
    verify_end,
)
from veil.errors import InputError

_WORKER = "0x" + "a" * 40
_SEQUENCE, _TIMESTAMP, _RECEIVED = 1111111111111, 2222222222222, 3333333333333
_BLOCK, _SIGNATURE = b"\xcc" * 32, b"\xdd" * 65
_HEX = b"0123456789abcdefABCDEF"
_LOWER_HEX = b"0123456789abcdef"
_UPPER = tuple(bytes([c]) for c in b"ABCDEF")
# Below 10**19, so always a uint64; a 20-digit number sends the log to the full reader.
_NUMBER = rb"(?:0|[1-9][0-9]{0,18})"
_TAIL_LIMIT = 64 << 20  # tallies are one line per worker and reason; more is not a log


@dataclass
class ScannedLog:
    """A verified log reduced to what close counts: sequences per worker (checksummed)."""

    header: LogHeader
    sequences: dict[str, array[int]] = field(default_factory=dict)
    refusals: dict[tuple[str, str], int] = field(default_factory=dict)
    accepted: int = 0
    sha256: str = ""


def _template(epoch: int) -> bytes:
    return entry_line(_WORKER, epoch, _SEQUENCE, _TIMESTAMP, _BLOCK, _SIGNATURE, _RECEIVED)


def _entry_pattern(epoch: int) -> re.Pattern[bytes]:
    """The canonical entry line of `epoch`, capturing (worker, sequence)."""
    pattern = re.escape(_template(epoch))
    for value, replacement in (
        (_WORKER.encode(), rb"(0x[0-9a-fA-F]{40})"),
        (b"%d" % _SEQUENCE, b"(" + _NUMBER + b")"),
        (b"%d" % _TIMESTAMP, _NUMBER),
        (b"%d" % _RECEIVED, _NUMBER),
        (_BLOCK.hex().encode(), rb".{64}"),  # hex-ness checked by the skeleton, cheaper
        (_SIGNATURE.hex().encode(), rb".{130}"),
    ):
        assert pattern.count(value) == 1, value  # the template's sentinels are unique
        pattern = pattern.replace(value, replacement)
    return re.compile(b"(?m)^" + pattern)


class _Entries:
    """The entry lines of one log, block by block."""

    def __init__(self, epoch: int) -> None:
        self.pattern = _entry_pattern(epoch)
        template = _template(epoch)
        self.skeleton = template.translate(None, _HEX)
        self.key_upper = sum(map(template.count, _UPPER))  # the keys' own ("receivedAt")
        self.groups: dict[bytes, list[bytes]] = {}
        self.lines = 0
        self.upper = 0

    def add(self, block: bytes) -> bool:
        found = self.pattern.findall(block)
        # lower-case hex and digits out; what is left is the skeleton plus the workers'
        # EIP-55 capitals (and the keys' own), which come out second, on a tenth the bytes
        rest = block.translate(None, _LOWER_HEX)
        skeleton = rest.translate(None, b"ABCDEF")
        if skeleton != self.skeleton * len(found):  # also: every line matched (newlines)
            return False
        self.lines += len(found)
        self.upper += len(rest) - len(skeleton)
        groups = self.groups
        for worker, sequence in found:
            seqs = groups.get(worker)
            if seqs is None:
                seqs = groups[worker] = []
            seqs.append(sequence)
        return True

    def sequences(self) -> dict[str, array[int]] | None:
        """Per checksummed worker, or None if any check fails (the full reader says which)."""
        out: dict[str, array[int]] = {}
        upper = self.key_upper * self.lines
        for spelling, raw in self.groups.items():
            try:
                worker = _checksummed(spelling.decode(), 0)
            except InputError:
                return None
            if worker in out:  # one worker spelled two ways: the full reader orders them
                return None
            seqs = array("Q", map(int, raw))
            if not all(map(lt, seqs, seqs[1:])):
                return None
            out[worker] = seqs
            upper += sum(map(spelling.count, _UPPER)) * len(seqs)
        return out if upper == self.upper else None


def scan_log(path: Path) -> ScannedLog | None:
    """The log at `path` if canonical and intact; None if the full reader must decide.

    Raises InputError only for what makes any reading fail the same way (unreadable, not
    a log, a bad header, end or signature), with the full reader's messages."""
    hasher = hashlib.sha256()
    header: LogHeader | None = None
    entries: _Entries | None = None
    tail = b""  # from the first non-entry line (tallies, end) on: small
    number = 0
    try:
        with open(path, "rb") as handle:
            pending = b""
            while chunk := handle.read(CHUNK):
                block = pending + chunk
                cut = block.rfind(b"\n") + 1
                block, pending = block[:cut], block[cut:]
                if header is None and block:
                    first = block.find(b"\n") + 1
                    header = _header(block[:first])
                    hasher.update(block[:first])
                    block, number = block[first:], 1
                    entries = _Entries(header.epoch)
                if tail or not block:
                    tail += block
                    if len(tail) > _TAIL_LIMIT:
                        return None
                    continue
                stop = _first_other(block)
                assert entries is not None
                if not entries.add(block[:stop]):
                    return None
                hasher.update(block[:stop])
                tail = block[stop:]
            if pending:
                raise InputError(
                    "heartbeat log: the last line does not end in a newline (truncated?)"
                )
    except OSError as error:
        raise InputError(f"heartbeat log {path}: unreadable ({error.strerror})") from None
    if header is None or entries is None:
        raise InputError("heartbeat log: no header and end (fewer than two lines)")
    return _finish(header, entries, tail, hasher, number + entries.lines)


def _first_other(block: bytes) -> int:
    """Where the block's leading entry lines end: after the last line that starts as an
    entry (searched from the end, where it is; a tally before it fails the entry check)."""
    at = block.rfind(b'\n{"worker":')
    if at < 0:
        return 0 if not block.startswith(b'{"worker":') else block.find(b"\n") + 1
    return block.find(b"\n", at + 1) + 1


def _finish(
    header: LogHeader, entries: _Entries, tail: bytes, hasher: Any, number: int
) -> ScannedLog | None:
    lines = tail.split(b"\n")
    lines.pop()  # the tail ends in a newline
    if not lines:
        raise InputError("heartbeat log: no header and end (fewer than two lines)")
    refusals: dict[tuple[str, str], int] = {}
    columns = _Columns(header.epoch, False)
    for line in lines[:-1]:
        number += 1
        if not line.startswith(b'{"refused":'):
            return None  # an entry after the tallies, or a stray line: the reader names it
        _line(line, number, columns, refusals)
        hasher.update(line + b"\n")
    number += 1
    end = _end(lines[-1], number, header)
    sequences = entries.sequences()
    if sequences is None:
        return None
    accepted = sum(map(len, sequences.values()))
    if end["accepted"] != accepted:
        raise InputError(f"heartbeat log line {number}: end says {end['accepted']} accepted,"
                         f" the log has {accepted}")  # fmt: skip
    if end["refused"] != sum(refusals.values()):
        raise InputError(f"heartbeat log line {number}: end says {end['refused']} refused, the"
                         f" tallies add up to {sum(refusals.values())}")  # fmt: skip
    signed = HeartbeatLog(header, sha256=end["sha256"], attester_signature=end["signature"])
    verify_end(signed, hasher.hexdigest(), number)
    return ScannedLog(header, sequences, refusals, accepted, end["sha256"])
