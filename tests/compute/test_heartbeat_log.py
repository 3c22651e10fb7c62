"""The attester's signed per-epoch heartbeat log: written, read back, and every way it can
be wrong refused with the line named."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from veil.attestation.typed_data import DigestSigner
from veil.compute import heartbeat, heartbeat_log
from veil.compute.attestation import RegistryDomain
from veil.compute.heartbeat_log import LogHeader, entry_line, read_log, write_log
from veil.errors import InputError

ATTESTER = DigestSigner(b"\x07" * 32)
OTHER = DigestSigner(b"\x08" * 32)
DOMAIN = RegistryDomain(73217, "0x" + "12" * 20)
WORKERS = [Account.from_key(bytes([i + 1]) * 32) for i in range(3)]
EPOCH = 9
HEADER = LogHeader(EPOCH, ATTESTER.address, DOMAIN.chain_id, DOMAIN.registry, True)


def _entries(rounds: int, workers: list = WORKERS) -> list[heartbeat_log.Entry]:
    out = []
    for r in range(rounds):
        for w in workers:
            block = hashlib.sha256(b"block %d" % (r % 4)).digest()
            beat = heartbeat.Heartbeat(w.address, EPOCH, r + 1, 1_700_000_000 + 60 * r, block)
            signature = heartbeat.sign(beat, DOMAIN, w.key)
            out.append(
                heartbeat_log.Entry(
                    w.address, EPOCH, r + 1, beat.timestamp, block, signature, beat.timestamp + 1
                )
            )
    return out


def _log(entries: list, tallies: dict | None = None, header: LogHeader = HEADER,
         signer: DigestSigner = ATTESTER, spell=entry_line) -> bytes:  # fmt: skip
    lines = b"".join(spell(*e) for e in entries)
    chunks = [(lines, len(entries))] if entries else []
    return b"".join(write_log(header, signer, iter(chunks), tallies or {}))


def _loose(*fields: object) -> bytes:
    """The same entry, spelled differently (key order, spaces): still valid JSON."""
    w, epoch, seq, ts, block, sig, at = fields
    data = {
        "receivedAt": at,
        "signature": "0x" + bytes(sig).hex(),
        "worker": str(w).lower(),
        "sequence": seq,
        "timestamp": ts,
        "epoch": epoch,
        "blockHash": "0x" + block.hex(),
    }
    return orjson.dumps(data).replace(b",", b", ") + b"\n"


def test_round_trip_with_tallies_and_worker_signatures(tmp_path: Path) -> None:
    entries = _entries(4)
    zero = heartbeat_log.ZERO_ADDRESS
    tallies = {(WORKERS[1].address, "replayed"): 2, (zero, "unregistered"): 5}
    data = _log(entries, tallies)
    path = tmp_path / "epoch.ndjson"
    path.write_bytes(data)
    for source in (data, path):
        log = read_log(source)
        assert log.header == HEADER and log.epoch == EPOCH and log.complete
        assert len(log) == log.accepted == 12
        assert list(log) == entries
        assert log.refusals == tallies and log.refused == 7
        assert log.counts_by_worker() == {w.address: 4 for w in WORKERS}
        assert log.sha256 == hashlib.sha256(data[: data.rindex(b"\n", 0, -1) + 1]).hexdigest()
        for entry in log:  # anyone can re-check each worker's signature from the log alone
            beat = heartbeat.Heartbeat(entry.worker, entry.epoch, entry.sequence,
                                       entry.timestamp, entry.block_hash)  # fmt: skip
            assert heartbeat.recover(beat, DOMAIN, entry.signature) == entry.worker
    lines = data.splitlines()
    assert orjson.loads(lines[0])["format"] == "veil-heartbeat-log-v1"
    assert orjson.loads(lines[-1])["end"]["accepted"] == 12


def test_empty_epoch_and_columns_without_signatures() -> None:
    log = read_log(_log([]))
    assert len(log) == 0 and log.refusals == {}
    light = read_log(_log(_entries(2)), keep_signatures=False)
    assert light.signatures is None and len(light) == 6
    with pytest.raises(InputError, match="without signatures"):
        light.signature(0)


def test_loose_spelling_reads_the_same_as_canonical() -> None:
    entries = _entries(3)
    assert list(read_log(_log(entries, spell=_loose))) == list(read_log(_log(entries)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rounds=st.integers(0, 6),
    chunk=st.integers(1, 900),
    loose=st.sets(st.integers(0, 17)),
    tallied=st.booleans(),
)
def test_any_chunking_and_mix_of_spellings_reads_back(
    rounds: int, chunk: int, loose: set[int], tallied: bool
) -> None:
    """Blocks of any size, cut anywhere, canonical and loose lines mixed: the fast and the
    line-by-line reader must agree with what was written."""
    entries = _entries(rounds)
    lines = b"".join((_loose if i in loose else entry_line)(*e) for i, e in enumerate(entries))
    tallies = {(WORKERS[0].address, "stale"): 3} if tallied else {}
    data = b"".join(write_log(HEADER, ATTESTER, iter([(lines, len(entries))]), tallies))
    original = heartbeat_log.CHUNK
    heartbeat_log.CHUNK = chunk
    try:
        log = read_log(data)
    finally:
        heartbeat_log.CHUNK = original
    assert list(log) == entries and log.refusals == tallies


def _swap(data: bytes, old: bytes, new: bytes) -> bytes:
    assert old in data
    return data.replace(old, new, 1)


def test_altered_content_is_refused_by_the_hash() -> None:
    data = _log(_entries(2))
    forged = _swap(data, b'"sequence":2', b'"sequence":7')
    with pytest.raises(InputError, match=r"sha256 .* does not match the content"):
        read_log(forged)
    assert len(read_log(forged, verify=False)) == 6  # structurally fine, only unsigned


def test_rehashed_log_is_refused_by_the_signature() -> None:
    """Whoever alters a log and recomputes its hash cannot sign as the attester."""
    entries = _entries(2)
    honest = read_log(_log(entries))
    forged = _log(entries[:-1], header=LogHeader(EPOCH, OTHER.address, *[
        HEADER.chain_id, HEADER.registry, True]), signer=OTHER)  # fmt: skip
    forged = forged.replace(OTHER.address.encode(), ATTESTER.address.encode())
    with pytest.raises(InputError, match="sha256"):
        read_log(forged)
    # the same content re-signed by another key under the header's name
    lines = forged.splitlines(keepends=True)
    body = b"".join(lines[:-1])
    digest = hashlib.sha256(body).hexdigest()
    text = heartbeat_log.signed_text(HEADER.chain_id, HEADER.registry, EPOCH, digest)
    sig = OTHER.sign(heartbeat_log.personal_digest(text)).to_bytes()
    end = {"end": {"accepted": len(entries) - 1, "refused": 0, "sha256": digest,
                   "attesterSignature": "0x" + sig.hex()}}  # fmt: skip
    with pytest.raises(InputError, match=f"signed by {OTHER.address}, not by"):
        read_log(body + orjson.dumps(end) + b"\n")
    assert len(honest) == 6


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d[: d.rindex(b"\n", 0, -1) + 1], "last line must be the end record"),
        (lambda d: d[:-1], "does not end in a newline"),
        (lambda d: b"", "empty"),
        (lambda d: d.split(b"\n")[0] + b"\n", "fewer than two lines"),
        (lambda d: _swap(d, b'"epoch":9,"seq', b'"epoch":8,"seq'), "line 2: epoch 8"),
        (lambda d: _swap(d, b'"sequence":1,', b'"sequence":"1",'), "line 2: sequence"),
        (lambda d: _swap(d, b'{"worker"', b'{"worker'), "line 2: not JSON"),
        (lambda d: _swap(d, b'"receivedAt"', b'"received"'), "line 2: fields"),
        (lambda d: _swap(d, b"veil-heartbeat-log-v1", b"veil-heartbeat-log-v9"), "line 1"),
        (lambda d: _swap(d, b'"blockHash":"0x', b'"blockHash":"0xzz'), "line 2: blockHash"),
        (lambda d: _swap(d, b'"accepted":6', b'"accepted":5'), "end says 5 accepted"),
        (lambda d: _swap(d, b'"refused":2,"sha', b'"refused":3,"sha'), "end says 3 refused"),
    ],
)
def test_malformed_logs_name_the_line(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    data = _log(_entries(2), {(WORKERS[0].address, "duplicate"): 2})
    with pytest.raises(InputError, match=message):
        read_log(mutate(data), verify=False)


def test_a_worker_sequence_that_does_not_increase_is_refused() -> None:
    entries = _entries(2)
    twice = [*entries, entries[-1]]
    with pytest.raises(InputError, match=r"line 8: worker .* sequence 2 not above"):
        read_log(_log(twice))
    # the same address spelled in lower case is the same worker
    respelled = [*entries, entries[-1]._replace(worker=entries[-1].worker.lower())]
    with pytest.raises(InputError, match="line 8: worker"):
        read_log(_log(respelled, spell=_loose))


def test_heartbeats_after_the_tallies_and_tallies_twice_are_refused() -> None:
    entries = _entries(1)
    tally = heartbeat_log.refusal_line(WORKERS[0].address, "stale", 1)
    for lines, message in (
        (b"".join(entry_line(*e) for e in entries[:1]) + tally + entry_line(*entries[1]),
         "line 4: a heartbeat after the refusal tallies"),
        (tally + tally, "tallied twice"),
    ):  # fmt: skip
        writer = heartbeat_log.LogWriter(HEADER, ATTESTER)
        data = writer.header() + writer.entries(lines, 0) + writer.tallies({}) + writer.end()
        with pytest.raises(InputError, match=message):
            read_log(data, verify=False)


def test_writer_refuses_a_header_naming_another_key_and_out_of_order_use() -> None:
    with pytest.raises(InputError, match="header names"):
        heartbeat_log.LogWriter(HEADER, OTHER)
    writer = heartbeat_log.LogWriter(HEADER, ATTESTER)
    with pytest.raises(RuntimeError):
        writer.end()


@given(raw=st.binary(min_size=20, max_size=20))
def test_the_readers_eip55_equals_the_reference(raw: bytes) -> None:
    from eth_utils import to_checksum_address

    address = to_checksum_address(raw)
    assert heartbeat_log._checksummed(address, 1) == address
    assert heartbeat_log._checksummed(address.lower(), 1) == address
    if address.lower() != address.swapcase().lower() or address[2:] != address[2:].lower():
        wrong = address[:2] + address[2:].swapcase()
        if wrong[2:] not in (address[2:].lower(), address[2:].upper()):
            with pytest.raises(InputError):
                heartbeat_log._checksummed(wrong, 1)
