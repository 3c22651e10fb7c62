"""The close fast path: a canonical log reduces exactly as the full reader reduces it, and
anything else is handed to the full reader (None), which accepts it or names the line."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.attestation.typed_data import DigestSigner
from veil.compute.heartbeat_log import LogHeader, entry_line, read_log, write_log
from veil.errors import InputError
from veil.rewards.closing import PoolState, log_heartbeats, read_logs, scanned_heartbeats
from veil.rewards.epochs import EpochClock
from veil.rewards.log_scan import scan_log

ATTESTER = DigestSigner(b"\x0a" * 32)
WORKERS = [DigestSigner(bytes([i]) * 32).address for i in (1, 2, 3)]
REGISTRY = DigestSigner(b"\x0b" * 32).address
STATE = PoolState(31337, REGISTRY, REGISTRY, EpochClock(0, 3600), 8000, 1, (ATTESTER.address,), 4)
EPOCH = 4


def lines_for(plan: dict[str, list[int]], epoch: int = EPOCH) -> list[bytes]:
    out = []
    for worker, seqs in plan.items():
        for seq in seqs:
            ts = 3600 * epoch + seq % 1000
            block = bytes([seq % 256]) * 32
            out.append(entry_line(worker, epoch, seq, ts, block, bytes([7]) * 65, ts + 1))
    return out


def write(tmp_path, lines: list[bytes], tallies=None, name="log.ndjson"):
    header = LogHeader(EPOCH, ATTESTER.address, 31337, REGISTRY, True)
    tallies = (
        {(WORKERS[1], "replayed"): 3, (WORKERS[2], "future"): 1} if tallies is None else tallies
    )
    path = tmp_path / name
    chunks = write_log(header, ATTESTER, iter([(b"".join(lines), len(lines))]), tallies)
    path.write_bytes(b"".join(chunks))
    return path


def reduced_by_full_reader(path):
    return log_heartbeats(read_log(path, keep_signatures=False), STATE, EPOCH)


def test_a_canonical_log_reduces_as_the_full_reader_does(tmp_path):
    path = write(tmp_path, lines_for({WORKERS[0]: [1, 2, 5], WORKERS[1]: [3], WORKERS[2]: [9, 10]}))
    scanned = scan_log(path)
    assert scanned is not None and scanned.accepted == 6
    assert scanned_heartbeats(scanned, STATE, EPOCH) == reduced_by_full_reader(path)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2**64 - 1)), max_size=40))
def test_any_interleaving_of_workers_agrees_with_the_full_reader(tmp_path_factory, beats):
    tmp_path = tmp_path_factory.mktemp("scan")
    plan: dict[str, list[int]] = {}
    lines = []
    for index, seq in beats:  # keep each worker's sequences rising, interleaved in file order
        worker = WORKERS[index]
        if plan.get(worker) and seq <= plan[worker][-1]:
            continue
        plan.setdefault(worker, []).append(seq)
        lines += lines_for({worker: [seq]})
    path = write(tmp_path, lines)
    full = reduced_by_full_reader(path)
    scanned = scan_log(path)
    if any(seq >= 10**19 for seqs in plan.values() for seq in seqs):
        assert scanned is None  # 20 digits: the full reader decides (and accepts)
    else:
        assert scanned is not None and scanned_heartbeats(scanned, STATE, EPOCH) == full


def test_lower_case_worker_spelling_is_accepted_as_the_reader_accepts_it(tmp_path):
    lower = WORKERS[0].lower()
    path = write(tmp_path, lines_for({lower: [1, 2]}))
    scanned = scan_log(path)
    assert scanned is not None and list(scanned.sequences) == [WORKERS[0]]
    assert scanned_heartbeats(scanned, STATE, EPOCH) == reduced_by_full_reader(path)


def _edit(path, old: bytes, new: bytes, count: int = 1) -> None:
    data = path.read_bytes()
    assert data.count(old) >= count
    path.write_bytes(data.replace(old, new, count))


def test_altered_content_fails_the_signed_hash_with_the_reader_message(tmp_path):
    path = write(tmp_path, lines_for({WORKERS[0]: [1, 2, 5]}))
    _edit(path, b'"sequence":2,', b'"sequence":4,')  # still rising, still canonical
    with pytest.raises(InputError, match="does not match the content"):
        scan_log(path)
    with pytest.raises(InputError, match="does not match the content"):
        read_log(path)


def test_end_counts_must_match(tmp_path):
    path = write(tmp_path, lines_for({WORKERS[0]: [1, 2, 3]}))
    data = path.read_bytes().splitlines(keepends=True)
    end = json.loads(data[-1])
    end["end"]["accepted"] = 2
    path.write_bytes(b"".join(data[:-1]) + json.dumps(end, separators=(",", ":")).encode() + b"\n")
    with pytest.raises(InputError, match="end says 2 accepted, the log has 3"):
        scan_log(path)


@pytest.mark.parametrize(
    ("old", "new", "reader_says"),
    [
        (b'"sequence":2,', b'"sequence":1,', "sequence"),  # not rising
        (b'"epoch":4,"sequence":2', b'"epoch":5,"sequence":2', "epoch"),
        (b'"blockHash":"0x02', b'"blockHash":"0xA2', "blockHash"),  # upper-case hex
        (b'"blockHash":"0x02', b'"blockHash":"0xg2', "blockHash"),
        (b'"timestamp":14402,', b'"timestamp":014402,', "line 3"),  # leading zero
        (b'"signature":"0x07', b'"signature":"0x7', "signature"),  # short
    ],
)
def test_a_bad_line_goes_to_the_full_reader_which_names_it(tmp_path, old, new, reader_says):
    path = write(tmp_path, lines_for({WORKERS[0]: [1, 2, 3]}))
    _edit(path, old, new)
    assert scan_log(path) is None
    with pytest.raises(InputError, match=r"heartbeat log line [23]: ") as error:
        read_log(path, verify=False)
    assert reader_says.lower() in str(error.value).lower() or reader_says == "line 3"


def test_a_valid_but_non_canonical_log_is_read_by_the_full_reader_in_close(tmp_path):
    lines = lines_for({WORKERS[0]: [1, 2], WORKERS[1]: [1]})
    reordered = json.loads(lines[1])
    lines[1] = json.dumps(dict(reversed(reordered.items())), separators=(",", ":")).encode() + b"\n"
    path = write(tmp_path, lines)
    assert scan_log(path) is None
    [(_, beats)] = read_logs([str(path)], STATE, EPOCH)
    assert beats == reduced_by_full_reader(path)
    assert {w: list(s) for w, s in beats.accepted.items()} == {WORKERS[0]: [1, 2], WORKERS[1]: [1]}


def test_a_truncated_log_is_one_line(tmp_path):
    path = write(tmp_path, lines_for({WORKERS[0]: [1]}))
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(InputError, match="does not end in a newline"):
        scan_log(path)


def test_an_empty_epoch_and_no_tallies(tmp_path):
    path = write(tmp_path, [], tallies={})
    scanned = scan_log(path)
    assert scanned is not None and scanned.accepted == 0 and scanned.sequences == {}
    assert scanned_heartbeats(scanned, STATE, EPOCH) == reduced_by_full_reader(path)


def test_three_logs_each_in_its_own_process_agree_with_serial(tmp_path, monkeypatch):
    import veil.rewards.closing as closing

    others = [DigestSigner(bytes([0x0C + i]) * 32) for i in range(2)]
    state = PoolState(31337, REGISTRY, REGISTRY, STATE.clock, 8000, 2,
                      (ATTESTER.address, *(o.address for o in others)), 4)  # fmt: skip
    paths = [write(tmp_path, lines_for({WORKERS[0]: list(range(1, 2 + i))}), name=f"{i}.ndjson")
             for i in range(3)]  # fmt: skip
    monkeypatch.setattr(closing, "can_fork", lambda rows: True)
    forked = read_logs([str(p) for p in paths], state, EPOCH)
    monkeypatch.setattr(closing, "can_fork", lambda rows: False)
    serial = read_logs([str(p) for p in paths], state, EPOCH)
    assert [b for _, b in forked] == [b for _, b in serial]
    assert [len(b.accepted[WORKERS[0]]) for _, b in forked] == [1, 2, 3]
