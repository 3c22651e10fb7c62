"""Heartbeats at the attester: check each one, keep the accepted ones durably per epoch,
tally every refusal, and serve each epoch as a signed log (`veil.compute.heartbeat_log`).

A heartbeat v2 (`veil.compute.heartbeat`) is refused, with the reason as its error code
and a tally in the epoch's log, when it is:

- `unregistered`: its worker never attested here, or its attestation expired;
- `bad_signature`: unsigned, malformed, or signed by another key than the worker's;
- `future`: its timestamp is more than `max_skew` ahead of the attester's clock, or it
  falls in an epoch that has not started; `stale`: more than `max_skew` behind;
- `wrong_epoch`: its epoch is not the one its timestamp falls in;
- `unknown_block`: its block hash is not one of the chain's last 256 blocks;
- `replayed`: its sequence is below the worker's last accepted one; `duplicate`: equal;
- `too_frequent`: less than `min_interval` seconds (by signed timestamps) after the
  worker's last accepted one (uptime needs one per interval, and each accepted heartbeat
  costs a line in the log every auditor downloads).

Checks run cheapest first, and a refusal is tallied under the worker only once the
signature is known to be the worker's (before that, under the claimed worker only if it
is registered here, else under the zero address), so nobody can inflate another
worker's refusals or grow the tallies without bound.

Storage: one append-only file per epoch (`epoch-<N>.ndjson`, the log's entry lines
exactly), written by one committer thread that takes every heartbeat accepted since its
last pass, appends them with one write per file, and fsyncs (`fdatasync`) before any of
them is answered (group commit: one fsync serves every request that arrived while the
previous one ran). So a heartbeat answered 200 survives a crash or a power cut; a crash
loses only heartbeats not yet answered, and a torn last line is cut off at the next
start. Refusal tallies are counters, written (atomically) at most once a second and at
shutdown: a crash loses at most the last second's tallies, never an accepted heartbeat.

After a restart, each worker's last sequence and timestamp come back from the current
and previous epochs' files. A heartbeat older than that is refused as stale whatever
its sequence, so replay protection does not need the files' whole history, and files
older than the retention window are deleted.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import coincurve
import orjson

from veil.atomic import write_bytes
from veil.attestation import api
from veil.attestation.typed_data import HALF_N, DigestSigner, checksum, keccak256
from veil.compute.attestation import RegistryDomain
from veil.compute.heartbeat import EpochSchedule, struct_hash
from veil.compute.heartbeat_log import (
    ZERO_ADDRESS,
    LogHeader,
    LogWriter,
    entry_line,
    read_entries,
)
from veil.errors import InputError
from veil.services.attester.requests import (
    Refused,
    hex_field,
    int_field,
    require_object,
    text_field,
)

log = logging.getLogger("veil.attester.heartbeats")

RECENT_PER_WORKER = 10  # heartbeats a worker view shows
BLOCK_DEPTH = 256  # block hashes a heartbeat may name: the EVM's BLOCKHASH window
TALLY_EVERY = 1.0  # seconds between writes of changed refusal tallies
PRUNE_EVERY = 600.0  # seconds between retention passes
READ_CHUNK = 1 << 20
OPEN_EPOCHS = 3  # journal files kept open for appending

STATUS = {
    "bad_signature": 401,
    "unregistered": 403,
    "replayed": 409,
    "duplicate": 409,
    "future": 422,
    "stale": 422,
    "wrong_epoch": 422,
    "unknown_block": 422,
    "too_frequent": 422,
}
assert set(STATUS) == set(api.HEARTBEAT_REFUSALS)


class _Refusal(Exception):
    def __init__(self, reason: str, message: str, worker: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.worker = worker  # whom the tally goes to


# --- recent blocks ---------------------------------------------------------------------

LatestBlock = Callable[[], tuple[int, bytes, bytes]]  # () -> (number, hash, parent hash)
BlockByNumber = Callable[[int], tuple[bytes, bytes]]  # number -> (hash, parent hash)


class BlockHashes:
    """The chain's last `depth` block hashes, refreshed when a heartbeat names one not
    known yet. Refreshes are serialized and spaced at least `min_refresh` apart, and a
    heartbeat that missed waits for the next refresh instead of being refused at once (a
    worker reads a block moments before signing; the attester may not have it yet). Only
    registered workers with valid signatures get this far, so forcing refreshes costs an
    attacker a registered, attested worker, and costs the chain one call per spacing."""

    def __init__(
        self,
        latest: LatestBlock,
        by_number: BlockByNumber,
        depth: int = BLOCK_DEPTH,
        min_refresh: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._latest = latest
        self._by_number = by_number
        self.depth = depth
        self.min_refresh = min_refresh
        self._clock = clock
        self._known: set[bytes] = set()
        self._chain: deque[tuple[int, bytes]] = deque()  # (number, hash), oldest first
        self._lock = threading.Lock()
        self._refreshed = -float("inf")

    def __contains__(self, block_hash: object) -> bool:
        if block_hash in self._known:
            return True
        asked = self._clock()
        with self._lock:
            if self._refreshed < asked:  # nobody refreshed since we looked
                wait = self._refreshed + self.min_refresh - self._clock()
                if wait > 0:
                    time.sleep(wait)
                self._refresh()
                self._refreshed = self._clock()
        return block_hash in self._known

    def refresh(self) -> None:
        with self._lock:
            self._refresh()
            self._refreshed = self._clock()

    def _refresh(self) -> None:
        number, head, parent = self._latest()
        if self._chain and self._chain[-1] == (number, head):
            return
        newest = self._chain[-1][0] if self._chain else -1
        fetched: list[tuple[int, bytes, bytes]] = [(number, head, parent)]
        lowest = max(0, number - self.depth + 1)
        n = number - 1
        # walk back until we meet what we have (on the same chain) or the window ends
        while n >= lowest and not (n <= newest and self._hash_at(n) == fetched[-1][2]):
            block, up = self._by_number(n)
            fetched.append((n, block, up))
            n -= 1
        if n >= lowest and n <= newest:
            while self._chain and self._chain[-1][0] > n:  # a reorg replaced these
                self._chain.pop()
        else:
            self._chain.clear()
        for block_number, block, _ in reversed(fetched):
            self._chain.append((block_number, block))
        while len(self._chain) > self.depth:
            self._chain.popleft()
        self._known = {block for _, block in self._chain}

    def _hash_at(self, number: int) -> bytes | None:
        if not self._chain:
            return None
        offset = number - self._chain[0][0]
        if 0 <= offset < len(self._chain):
            return self._chain[offset][1]
        return None


def chain_blocks(w3: Any) -> tuple[LatestBlock, BlockByNumber]:
    """The two reads BlockHashes needs, from a web3 connection."""

    def latest() -> tuple[int, bytes, bytes]:
        block = w3.eth.get_block("latest")
        return int(block["number"]), bytes(block["hash"]), bytes(block["parentHash"])

    def by_number(number: int) -> tuple[bytes, bytes]:
        block = w3.eth.get_block(number)
        return bytes(block["hash"]), bytes(block["parentHash"])

    return latest, by_number


# --- the journal -----------------------------------------------------------------------


@dataclass
class _Batch:
    """Lines written and fsynced together; their requests are answered when `done`."""

    lines: list[tuple[int, bytes]] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


@dataclass
class _Epoch:
    fd: int
    size: int  # bytes fsynced (whole lines)


class HeartbeatJournal:
    """Append-only per-epoch files of accepted heartbeats, with group commit; and the
    refusal tallies beside them (`refusals-<N>.json`)."""

    def __init__(self, directory: Path, sync: bool = True) -> None:
        self.directory = directory
        self.sync = sync
        directory.mkdir(parents=True, exist_ok=True)
        self._files: dict[int, _Epoch] = {}
        self._cond = threading.Condition()
        self._batch = _Batch()  # the lines the next fsync will cover
        self._error: BaseException | None = None
        self._closing = False
        self.tallies: dict[int, dict[tuple[str, str], int]] = {}
        self._dirty: set[int] = set()
        self._tally_lock = threading.Lock()
        self.commits = 0  # fsync passes, for the bench
        self.on_idle: Callable[[], None] | None = None  # called by the committer ~1/s
        for path in sorted(directory.glob("refusals-*.json")):
            epoch = _epoch_of(path, "refusals-", ".json")
            if epoch is not None:
                self.tallies[epoch] = _read_tallies(path)
        self._thread = threading.Thread(target=self._commit_loop, name="heartbeat-journal")
        self._thread.daemon = True
        self._thread.start()

    def path(self, epoch: int) -> Path:
        return self.directory / f"epoch-{epoch:08d}.ndjson"

    def epochs(self) -> list[int]:
        found = (_epoch_of(p, "epoch-", ".ndjson") for p in self.directory.glob("epoch-*.ndjson"))
        return sorted(e for e in found if e is not None)

    def _file(self, epoch: int) -> _Epoch:
        entry = self._files.get(epoch)
        if entry is None:
            path = self.path(epoch)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
            size = os.fstat(fd).st_size
            whole = _whole_lines(fd, size)
            if whole != size:  # a torn last line: its heartbeat was never answered
                log.warning("%s: cutting a torn last line (%d bytes)", path, size - whole)
                os.ftruncate(fd, whole)
                os.fsync(fd)
            entry = self._files[epoch] = _Epoch(fd, whole)
        return entry

    def open_epoch(self, epoch: int) -> int:
        """Open (repairing a torn tail) and return the committed size."""
        with self._cond:
            return self._file(epoch).size

    # appends ------------------------------------------------------------------------

    def enqueue(self, epoch: int, line: bytes) -> _Batch:
        """Queue a line; returns the batch to `wait` for. Lines of one epoch reach its
        file in the order they were enqueued."""
        with self._cond:
            if self._error is not None:
                raise OSError(f"heartbeat journal failed: {self._error}")
            batch = self._batch
            batch.lines.append((epoch, line))
            if len(batch.lines) == 1:
                self._cond.notify()  # the committer sleeps only when there is nothing
            return batch

    @staticmethod
    def wait(batch: _Batch) -> None:
        """Return once the batch is on disk (fsynced). Each waiter wakes once."""
        batch.done.wait()
        if batch.error is not None:
            raise OSError(f"heartbeat journal failed: {batch.error}")

    def _commit_loop(self) -> None:
        last_idle = time.monotonic()
        while True:
            with self._cond:
                while not self._batch.lines and not self._closing:
                    self._cond.wait(timeout=TALLY_EVERY)
                    if time.monotonic() - last_idle >= TALLY_EVERY:
                        break
                batch, self._batch = self._batch, _Batch()
                closing = self._closing
            try:
                if batch.lines:
                    self._write(batch.lines)
                batch.done.set()
                if time.monotonic() - last_idle >= TALLY_EVERY or closing:
                    last_idle = time.monotonic()
                    self.flush_tallies()
                    if self.on_idle is not None:
                        self.on_idle()
            except BaseException as error:  # a full disk: refuse from now on, loudly
                log.exception("heartbeat journal: write failed")
                with self._cond:
                    self._error = error
                    for failed in (batch, self._batch):
                        failed.error = error
                        failed.done.set()
                return
            if closing and not batch.lines:
                return

    def _write(self, batch: list[tuple[int, bytes]]) -> None:
        by_epoch: dict[int, list[bytes]] = {}
        for epoch, line in batch:
            by_epoch.setdefault(epoch, []).append(line)
        with self._cond:
            files = {epoch: self._file(epoch) for epoch in by_epoch}
        for epoch, lines in by_epoch.items():
            data = memoryview(b"".join(lines))
            fd = files[epoch].fd
            while data:
                written = os.write(fd, data)
                data = data[written:]
        for epoch in by_epoch:
            if self.sync:
                os.fdatasync(files[epoch].fd)
        with self._cond:
            for epoch, lines in by_epoch.items():
                files[epoch].size += sum(map(len, lines))
            # keep open only the newest epochs written to (late heartbeats reach the
            # previous one for at most the clock skew)
            for epoch in sorted(self._files)[:-OPEN_EPOCHS]:
                if epoch not in by_epoch:
                    os.close(self._files.pop(epoch).fd)
        self.commits += 1

    def committed(self, epoch: int) -> int:
        """Bytes of the epoch's file that are on disk as whole lines (0: no file)."""
        with self._cond:
            entry = self._files.get(epoch)
            if entry is not None:
                return entry.size
        try:
            fd = os.open(self.path(epoch), os.O_RDONLY)
        except FileNotFoundError:
            return 0
        try:  # an epoch nobody writes to: measured, not kept open (fds are finite)
            return _whole_lines(fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)

    def read(self, epoch: int, size: int) -> Iterator[bytes]:
        """The first `size` bytes of the epoch's file, in chunks."""
        if size == 0:
            return
        with open(self.path(epoch), "rb") as handle:
            left = size
            while left > 0:
                chunk = handle.read(min(READ_CHUNK, left))
                if not chunk:
                    raise OSError(f"{self.path(epoch)}: shorter than its committed size")
                left -= len(chunk)
                yield chunk

    # tallies ------------------------------------------------------------------------

    def tally(self, epoch: int, worker: str, reason: str) -> None:
        with self._tally_lock:
            counts = self.tallies.setdefault(epoch, {})
            counts[(worker, reason)] = counts.get((worker, reason), 0) + 1
            self._dirty.add(epoch)

    def tallies_of(self, epoch: int) -> dict[tuple[str, str], int]:
        with self._tally_lock:
            return dict(self.tallies.get(epoch, {}))

    def flush_tallies(self) -> None:
        with self._tally_lock:
            dirty, self._dirty = self._dirty, set()
            snapshot = {epoch: dict(self.tallies.get(epoch, {})) for epoch in dirty}
        for epoch, counts in snapshot.items():
            rows = [[w, r, c] for (w, r), c in sorted(counts.items())]
            write_bytes(self.directory / f"refusals-{epoch:08d}.json", orjson.dumps(rows))

    # lifetime -----------------------------------------------------------------------

    def prune(self, before_epoch: int) -> int:
        """Delete the files of epochs below `before_epoch`; returns how many went."""
        gone = 0
        for epoch in self.epochs():
            if epoch >= before_epoch:
                continue
            with self._cond:
                entry = self._files.pop(epoch, None)
            if entry is not None:
                os.close(entry.fd)
            self.path(epoch).unlink(missing_ok=True)
            gone += 1
        with self._tally_lock:
            for epoch in [e for e in self.tallies if e < before_epoch]:
                del self.tallies[epoch]
                self._dirty.discard(epoch)
                (self.directory / f"refusals-{epoch:08d}.json").unlink(missing_ok=True)
        return gone

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout=10)
        with self._cond:
            for entry in self._files.values():
                os.close(entry.fd)
            self._files.clear()


def _epoch_of(path: Path, prefix: str, suffix: str) -> int | None:
    text = path.name.removeprefix(prefix).removesuffix(suffix)
    return int(text) if text.isdigit() else None


def _whole_lines(fd: int, size: int) -> int:
    """The length of the file's prefix that ends in a newline (0 if none)."""
    position = size
    while position > 0:
        start = max(0, position - 65536)
        chunk = os.pread(fd, position - start, start)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            return start + cut + 1
        position = start
    return 0


def _read_tallies(path: Path) -> dict[tuple[str, str], int]:
    try:
        rows = orjson.loads(path.read_bytes())
        return {(str(w), str(r)): int(c) for w, r, c in rows}
    except (OSError, ValueError, TypeError) as error:
        raise InputError(f"{path}: unreadable refusal tallies ({error})") from None


# --- the service -----------------------------------------------------------------------


@dataclass
class _Worker:
    """What the checks need about one worker, in memory."""

    raw: bytes  # 20-byte address
    expiry: int  # of its latest attestation here
    public_key: bytes | None = None  # 64 bytes, once a signature has shown it
    sequence: int = -1  # last accepted
    timestamp: int = -1
    recent: deque[tuple[int, int, int, int, str]] = field(
        default_factory=lambda: deque(maxlen=RECENT_PER_WORKER)
    )  # (epoch, sequence, timestamp, received_at, signature hex)


class CachedClock:
    """Chain time without a chain call per heartbeat: the latest block's timestamp, read
    at most once per `ttl` seconds and advanced by the wall clock in between (expiries
    are compared with it; a second's error is immaterial next to a day's validity)."""

    def __init__(self, read: Callable[[], int], ttl: float = 1.0) -> None:
        self._read = read
        self.ttl = ttl
        self._value = 0
        self._at = -float("inf")
        self._lock = threading.Lock()

    def __call__(self) -> int:
        now = time.monotonic()
        if now - self._at >= self.ttl:
            with self._lock:
                if now - self._at >= self.ttl:
                    self._value, self._at = self._read(), time.monotonic()
        return self._value + int(time.monotonic() - self._at)


RegistrationLookup = Callable[[str], int | None]  # worker -> attestation expiry, or None


@dataclass
class HeartbeatService:
    """Checks, stores and serves heartbeats for one registry (the EIP-712 domain)."""

    domain: RegistryDomain
    signer: DigestSigner
    schedule: EpochSchedule
    journal: HeartbeatJournal
    registration: RegistrationLookup
    blocks: Container[bytes]  # the recent block hashes (a BlockHashes on a live chain)
    max_skew: int = 300
    min_interval: int = 0
    retention: int | None = None  # seconds of epochs kept on disk; None: all
    clock: Callable[[], int] = field(default=lambda: int(time.time()))
    chain_clock: Callable[[], int] | None = None  # attestation expiries are chain time
    # re-read every `schedule_every` s (governance may change the epoch length; the pool
    # then re-anchors genesisTime so the same formula numbers epochs from then on)
    schedule_source: Callable[[], EpochSchedule | None] | None = None
    schedule_every: float = 60.0
    _workers: dict[str, _Worker] = field(default_factory=dict, init=False)
    _unknown: set[str] = field(default_factory=set, init=False)
    # how registered workers spell their address -> checksummed (EIP-55 costs a keccak)
    _spellings: dict[str, str] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _separator: bytes = field(init=False)

    def __post_init__(self) -> None:
        self._separator = b"\x19\x01" + self.domain.eip712.separator
        if self.chain_clock is not None:
            self.chain_clock = CachedClock(self.chain_clock)
        self.recover()
        self.journal.on_idle = self._maybe_prune
        self._pruned_at = 0.0
        self._schedule_at = time.monotonic()
        self._schedule_lock = threading.Lock()

    # startup --------------------------------------------------------------------------

    def recover(self) -> None:
        """Each worker's last accepted heartbeat, from the current and previous epochs."""
        now_epoch = self._epoch_now()
        for epoch in self.journal.epochs():
            if now_epoch is not None and epoch < now_epoch - 1:
                continue
            size = self.journal.open_epoch(epoch)
            if size == 0:
                continue
            entries = read_entries(self.journal.path(epoch), epoch, keep_signatures=True)
            states = [self._workers.get(w) or self._state(w) for w in entries.workers]
            columns = zip(entries.worker_index, entries.sequence, entries.timestamp)  # noqa: B905
            kept: dict[int, deque[int]] = {}  # per worker, its latest positions
            for i, (index, sequence, timestamp) in enumerate(columns):
                state = states[index]
                if state is None:  # no longer registered here: nothing to protect
                    continue
                if sequence > state.sequence:
                    state.sequence, state.timestamp = sequence, timestamp
                positions = kept.get(index)
                if positions is None:
                    positions = kept[index] = deque(maxlen=RECENT_PER_WORKER)
                positions.append(i)
            for index, positions in kept.items():  # hex signatures only for what views keep
                recent = states[index].recent  # type: ignore[union-attr]
                for i in positions:
                    signature = "0x" + entries.signature(i).hex()
                    at = entries.received_at[i]
                    recent.append((epoch, entries.sequence[i], entries.timestamp[i], at, signature))

    def _epoch_now(self) -> int | None:
        try:
            return self.schedule.epoch(self.clock())
        except InputError:
            return None

    def _state(self, worker: str) -> _Worker | None:
        state = self._workers.get(worker)
        if state is None:
            expiry = self.registration(worker)
            if expiry is None:
                return None
            state = self._workers[worker] = _Worker(bytes.fromhex(worker[2:]), expiry)
        return state

    def registered(self, worker: str, expiry: int) -> None:
        """A registration was just signed here: the worker may heartbeat until `expiry`."""
        with self._lock:
            state = self._workers.get(worker)
            if state is None:
                self._workers[worker] = _Worker(bytes.fromhex(worker[2:]), expiry)
            else:
                state.expiry = expiry
            self._unknown.discard(worker)

    # the route ------------------------------------------------------------------------

    def heartbeat(self, body: Any) -> dict[str, Any]:
        body = require_object(body, api.HEARTBEAT_FIELDS)
        worker, epoch, sequence, timestamp, block, signature = _fields(body, self._spellings)
        now = self.clock()
        try:
            state = self._check(worker, epoch, sequence, timestamp, block, signature, now)
            assert signature is not None  # _check refuses an unsigned heartbeat
            if len(self._spellings) < 4 * len(self._workers) + 16:  # bounded by real workers
                self._spellings[body["worker"]] = worker
            line = entry_line(worker, epoch, sequence, timestamp, block, signature, now)
            with self._lock:
                self._check_order(state, worker, sequence, timestamp)
                state.sequence, state.timestamp = sequence, timestamp
                batch = self.journal.enqueue(epoch, line)
                state.recent.append((epoch, sequence, timestamp, now, "0x" + signature.hex()))
        except _Refusal as refusal:
            # under the epoch of its arrival: a claimed epoch can be anything
            self.journal.tally(self._epoch_now() or 0, refusal.worker, refusal.reason)
            status = STATUS[refusal.reason]
            if refusal.reason == "unregistered" and refusal.worker == ZERO_ADDRESS:
                status = 404
            raise Refused(status, f"heartbeat: {refusal.message}", refusal.reason) from None
        try:
            self.journal.wait(batch)
        except OSError as error:
            raise Refused(503, f"heartbeat: not stored ({error})", "storage_failed") from None
        # the shape of api.HeartbeatAnswer, built directly: asdict() costs more than a recovery
        return {"worker": worker, "epoch": epoch, "sequence": sequence, "timestamp": timestamp,
                "stored": True}  # fmt: skip

    def _check(
        self,
        worker: str,
        epoch: int,
        sequence: int,
        timestamp: int,
        block: bytes,
        signature: bytes | None,
        now: int,
    ) -> _Worker:
        state = self._workers.get(worker)
        if state is None:
            if worker in self._unknown:
                raise _Refusal("unregistered", f"worker {worker} never attested here",
                               ZERO_ADDRESS)  # fmt: skip
            with self._lock:
                state = self._state(worker)
                if state is None:
                    if len(self._unknown) < 100_000:
                        self._unknown.add(worker)
                    raise _Refusal("unregistered", f"worker {worker} never attested here",
                                   ZERO_ADDRESS)  # fmt: skip
        chain_now = self.chain_clock() if self.chain_clock is not None else now
        if state.expiry <= chain_now:
            raise _Refusal("unregistered", f"worker {worker}'s attestation expired at"
                           f" {state.expiry}; re-attest first", worker)  # fmt: skip
        if signature is None:
            raise _Refusal("bad_signature", "unsigned (no signature)", worker)
        self._refresh_schedule()
        digest = keccak256(
            self._separator + struct_hash(state.raw, epoch, sequence, timestamp, block)
        )
        public = _public_key(digest, signature)
        if public is None or public != state.public_key:
            signer = keccak256(public)[-20:] if public is not None else None
            if signer != state.raw:
                who = "an invalid signature" if signer is None else "0x" + signer.hex()
                raise _Refusal("bad_signature", f"signed by {who}, not by worker {worker}",
                               worker)  # fmt: skip
            state.public_key = public  # the worker's key: later ones compare without hashing
        if timestamp > now + self.max_skew:
            raise _Refusal("future", f"timestamp {timestamp} is {timestamp - now} s ahead"
                           f" (limit {self.max_skew} s)", worker)  # fmt: skip
        if timestamp < now - self.max_skew:
            raise _Refusal("stale", f"timestamp {timestamp} is {now - timestamp} s old"
                           f" (limit {self.max_skew} s)", worker)  # fmt: skip
        try:
            actual = self.schedule.epoch(timestamp)
        except InputError:
            actual = None
        if actual != epoch:
            raise _Refusal("wrong_epoch", f"epoch {epoch}, but timestamp {timestamp} is in"
                           f" epoch {actual}", worker)  # fmt: skip
        current = self.schedule.epoch(max(now, self.schedule.genesis_time))
        if epoch > current:
            raise _Refusal("future", f"epoch {epoch} has not started (now {current})", worker)
        if block not in self.blocks:
            raise _Refusal("unknown_block", f"block 0x{block.hex()} is not one of the chain's"
                           f" last {BLOCK_DEPTH} blocks", worker)  # fmt: skip
        return state

    def _check_order(self, state: _Worker, worker: str, sequence: int, timestamp: int) -> None:
        """Under the lock: against the worker's last accepted heartbeat."""
        if sequence == state.sequence:
            raise _Refusal("duplicate", f"sequence {sequence} already accepted", worker)
        if sequence < state.sequence:
            raise _Refusal("replayed", f"sequence {sequence} replayed (last accepted"
                           f" {state.sequence})", worker)  # fmt: skip
        if state.timestamp >= 0 and timestamp - state.timestamp < self.min_interval:
            raise _Refusal("too_frequent", f"{timestamp - state.timestamp} s after the last"
                           f" accepted one (minimum {self.min_interval} s)", worker)  # fmt: skip

    def _refresh_schedule(self) -> None:
        if self.schedule_source is None:
            return
        if time.monotonic() - self._schedule_at < self.schedule_every:
            return
        with self._schedule_lock:
            if time.monotonic() - self._schedule_at < self.schedule_every:
                return
            self._schedule_at = time.monotonic()
            fresh = self.schedule_source()
            if fresh is not None and fresh != self.schedule:
                log.info("epoch schedule changed: %s -> %s", self.schedule, fresh)
                self.schedule = fresh

    # reads ----------------------------------------------------------------------------

    def recent(self, worker: str) -> list[dict[str, Any]]:
        """The worker's latest accepted heartbeats, newest first."""
        with self._lock:
            state = self._workers.get(worker)
            rows = list(state.recent) if state is not None else []
        return [
            {"epoch": e, "sequence": s, "sent_at": t, "received_at": r, "signature": sig}
            for e, s, t, r, sig in reversed(rows)
        ]

    def complete(self, epoch: int) -> bool:
        """No heartbeat of the epoch can be accepted any more."""
        return self.clock() >= self.schedule.end(epoch) + self.max_skew

    def log(self, query: str) -> tuple[str, Iterator[bytes]]:
        """`GET /v1/compute/heartbeats?epoch=N`: the signed log, streamed."""
        epoch = _epoch_query(query)
        if self.retention is not None and self.schedule.end(epoch) + self.retention < (
            self.clock()
        ):
            raise Refused(404, f"epoch {epoch}: older than this attester's retention",
                          "epoch_pruned")  # fmt: skip
        complete = self.complete(epoch)  # decided before the snapshot: nothing can follow
        size = self.journal.committed(epoch)
        tallies = self.journal.tallies_of(epoch)
        header = LogHeader(epoch, self.signer.address, self.domain.chain_id,
                           self.domain.registry, complete)  # fmt: skip
        writer = LogWriter(header, self.signer)

        def chunks() -> Iterator[bytes]:
            yield writer.header()
            for chunk in self.journal.read(epoch, size):
                yield writer.entries(chunk, chunk.count(b"\n"))
            yield writer.tallies(tallies)
            yield writer.end()

        return api.HEARTBEAT_LOG_TYPE, chunks()

    def _maybe_prune(self) -> None:
        if self.retention is None or time.monotonic() - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = time.monotonic()
        cutoff = self.clock() - self.retention
        if cutoff <= self.schedule.genesis_time:
            return
        self.journal.prune(self.schedule.epoch(cutoff))


def _fields(
    body: dict[str, Any], spellings: dict[str, str]
) -> tuple[str, int, int, int, bytes, bytes | None]:
    text = body.get("worker")
    worker = spellings.get(text) if isinstance(text, str) else None
    if worker is None:
        try:
            worker = checksum(text_field(body, "worker", 42), "worker")
        except InputError as error:
            raise Refused(400, str(error)) from None
    epoch = int_field(body, "epoch")
    sequence = int_field(body, "sequence")
    timestamp = int_field(body, "timestamp")
    block = hex_field(body, "block_hash", (32,))
    if body.get("signature") in (None, "", "0x"):
        return worker, epoch, sequence, timestamp, block, None
    try:
        signature = hex_field(body, "signature", (65,))
    except Refused:
        signature = b""  # malformed: the worker's tally says bad_signature
    return worker, epoch, sequence, timestamp, block, signature


def _public_key(digest: bytes, signature: bytes) -> bytes | None:
    """The 64-byte public key that signed, refusing what the contracts refuse (a wrong
    length, v other than 27/28, a zero or high s); None if there is none."""
    if len(signature) != 65 or signature[64] not in (27, 28):
        return None
    s = int.from_bytes(signature[32:64], "big")
    if not 0 < s <= HALF_N:
        return None
    try:
        public = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([signature[64] - 27]), digest, hasher=None
        )
    except Exception:  # r out of range, no point: not a signature
        return None
    return bytes(public.format(compressed=False)[1:])


def _epoch_query(query: str) -> int:
    params = dict(part.partition("=")[::2] for part in query.split("&") if part)
    text = params.get("epoch", "")
    if set(params) != {"epoch"} or not text.isdigit() or len(text) > 19:
        raise Refused(400, "query: expected ?epoch=N (a non-negative integer)")
    return int(text)
