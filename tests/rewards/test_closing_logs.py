"""An attester's log enters the report only if it is for this network, epoch and set."""

from __future__ import annotations

import pytest

from veil.attestation.typed_data import DigestSigner
from veil.errors import InputError, VeilError
from veil.rewards.closing import PoolState, fetch_log, log_heartbeats, read_logs
from veil.rewards.epochs import EpochClock

ATTESTER = DigestSigner(b"\x0a" * 32)
WORKERS = [DigestSigner(bytes([i]) * 32).address for i in (1, 2)]
REGISTRY = DigestSigner(b"\x0b" * 32).address
STATE = PoolState(31337, REGISTRY, REGISTRY, EpochClock(0, 3600), 8000, 1, (ATTESTER.address,), 4)


def write(tmp_path, *, epoch=4, complete=True, chain_id=31337, registry=REGISTRY):
    from veil.compute.heartbeat_log import LogHeader, entry_line, write_log

    lines = [
        entry_line(w, epoch, seq, 3600 * epoch + seq, b"\x01" * 32, b"\x02" * 65, 0)
        for w in WORKERS
        for seq in range(1, 4 if w == WORKERS[0] else 2)
    ]
    header = LogHeader(epoch, ATTESTER.address, chain_id, registry, complete)
    tallies = {(WORKERS[1], "replayed"): 3, (WORKERS[1], "future"): 1}
    path = tmp_path / f"log-{epoch}-{complete}-{chain_id}.ndjson"
    chunks = write_log(header, ATTESTER, iter([(b"".join(lines), len(lines))]), tallies)
    path.write_bytes(b"".join(chunks))
    return path


def test_a_log_reduces_to_sequences_and_refusals(tmp_path):
    path = write(tmp_path)
    [(log, beats)] = read_logs([str(path)], STATE, 4, keep_signatures=True)
    assert len(log) == 4
    assert {w: list(s) for w, s in beats.accepted.items()} == {WORKERS[0]: [1, 2, 3],
                                                               WORKERS[1]: [1]}  # fmt: skip
    assert beats.refused == {WORKERS[1]: {"replayed": 3, "future": 1}}
    assert beats.attester == ATTESTER.address and beats.sha256 == log.sha256


def test_two_logs_read_in_two_processes_agree_with_one(tmp_path, monkeypatch):
    import veil.rewards.closing as closing

    other = DigestSigner(b"\x0c" * 32)
    state = PoolState(31337, REGISTRY, REGISTRY, STATE.clock, 8000, 1,
                      (ATTESTER.address, other.address), 4)  # fmt: skip
    path = write(tmp_path)
    monkeypatch.setattr(closing, "can_fork", lambda rows: True)
    forked = read_logs([str(path), str(path)], state, 4)
    monkeypatch.setattr(closing, "can_fork", lambda rows: False)
    serial = read_logs([str(path), str(path)], state, 4)
    assert [b for _, b in forked] == [b for _, b in serial]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epoch": 5}, "covers epoch 5, not 4"),
        ({"chain_id": 1}, "chain 1, this network is 31337"),
        ({"registry": ATTESTER.address}, "registry"),
        ({"complete": False}, "not complete yet"),
    ],
)
def test_a_log_for_something_else_is_refused(tmp_path, kwargs, message):
    from veil.compute.heartbeat_log import read_log

    log = read_log(write(tmp_path, **kwargs))
    with pytest.raises(InputError, match=message):
        log_heartbeats(log, STATE, 4)


def test_a_log_from_outside_the_attester_set_is_refused(tmp_path):
    from veil.compute.heartbeat_log import read_log

    log = read_log(write(tmp_path))
    outsider = PoolState(31337, REGISTRY, REGISTRY, STATE.clock, 8000, 1, (REGISTRY,), 4)
    with pytest.raises(InputError, match="is not one of the pool's attesters"):
        log_heartbeats(log, outsider, 4)


def test_a_missing_log_file_or_dead_attester_is_one_line(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        fetch_log(str(tmp_path / "missing.ndjson"), 4, tmp_path)
    with pytest.raises(VeilError, match=r"127\.0\.0\.1:9"):
        fetch_log("http://127.0.0.1:9", 4, tmp_path)


def test_a_log_is_fetched_from_the_attester_endpoint(tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = write(tmp_path).read_bytes()
    asked = []

    class Attester(BaseHTTPRequestHandler):
        def do_GET(self):
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Attester)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        [(_, beats)] = read_logs([url], STATE, 4)
    finally:
        server.shutdown()
    assert asked == ["/v1/compute/heartbeats?epoch=4"]
    assert sorted(beats.accepted) == sorted(WORKERS)
