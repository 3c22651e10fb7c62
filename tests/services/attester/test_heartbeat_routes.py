"""Heartbeat v2 over real HTTP: every refusal by its code and tally, durable storage across
restarts, and the signed per-epoch log read back with `read_log`."""

from __future__ import annotations

import json
import threading
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from veil.attestation.api import HEARTBEATS, REGISTRATIONS
from veil.compute import heartbeat
from veil.compute.attestation import RegistryDomain
from veil.compute.evidence import worker_report_data
from veil.compute.heartbeat import EpochSchedule
from veil.compute.heartbeat_log import ZERO_ADDRESS, read_entries, read_log
from veil.errors import InputError
from veil.network.genesis import devnet_policy
from veil.services.attester.service import AttesterConfig, build_server
from veil.tee.policy import policy_from_dict
from veil.tee.simulator import simulate

ATTESTER = Account.from_key(b"\x07" * 32)
WORKER = Account.from_key(b"\x21" * 32)
OTHER = Account.from_key(b"\x22" * 32)
STRANGER = Account.from_key(b"\x23" * 32)
PROVIDER = "0x" + "ab" * 20
DOMAIN = RegistryDomain(73217, "0x" + "12" * 20)
POLICY = policy_from_dict(tomllib.loads(devnet_policy()))
GENESIS = 1_800_000_000
LENGTH = 3_600
EPOCHS = EpochSchedule(GENESIS, LENGTH)
NOW = GENESIS + 2 * LENGTH + 100  # early in epoch 2
BLOCK = bytes.fromhex("aa" * 32)
OLD_BLOCK = bytes.fromhex("bb" * 32)


class Attester:
    def __init__(self, tmp_path: Path, **extra: Any) -> None:
        self.tmp_path = tmp_path
        self.clock = {"now": NOW}
        self.blocks = {BLOCK}
        self.extra = extra
        self.server: Any = None
        self.start()

    def start(self) -> None:
        config = AttesterConfig(
            signer=ATTESTER, db=self.tmp_path / "attester.sqlite", port=0, policy=POLICY,
            registry=DOMAIN, clock=lambda: self.clock["now"], epochs=EPOCHS,
            blocks=self.blocks, **self.extra,
        )  # fmt: skip
        self.server = build_server(config)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = self.server.url

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        req = urllib.request.Request(
            self.url + path, json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=20) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def get(self, path: str) -> tuple[int, bytes, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=20) as response:
                return response.status, response.read(), response.headers["Content-Type"]
        except urllib.error.HTTPError as error:
            return error.code, error.read(), ""

    def register(self, worker: Any = WORKER) -> None:
        evidence = simulate(worker_report_data(worker.address))
        body = {"evidence": json.dumps(evidence), "worker": worker.address,
                "provider": PROVIDER, "gpu_model": "CPU_TDX", "gpu_count": 0}  # fmt: skip
        status, answer = self.post(REGISTRATIONS, body)
        assert status == 200, answer

    def beat(self, sequence: int, timestamp: int | None = None, **change: Any) -> tuple[int, Any]:
        return self.post(HEARTBEATS, beat_body(sequence, timestamp, **change))

    def log(self, epoch: int) -> bytes:
        status, body, kind = self.get(f"{HEARTBEATS}?epoch={epoch}")
        assert status == 200 and kind == "application/x-ndjson", body
        return body


def beat_body(
    sequence: int,
    timestamp: int | None = None,
    key: Any = WORKER,
    worker: str | None = None,
    epoch: int | None = None,
    block: bytes = BLOCK,
    domain: RegistryDomain = DOMAIN,
) -> dict[str, Any]:
    ts = NOW if timestamp is None else timestamp
    number = EPOCHS.epoch(ts) if epoch is None else epoch
    beat = heartbeat.Heartbeat(worker or key.address, number, sequence, ts, block)
    return heartbeat.to_json(beat, heartbeat.sign(beat, domain, key.key))


@pytest.fixture
def attester(tmp_path: Path) -> Iterator[Callable[..., Attester]]:
    made: list[Attester] = []

    def make(**extra: Any) -> Attester:
        made.append(Attester(tmp_path, **extra))
        return made[-1]

    yield make
    for one in made:
        one.stop()


def test_every_refusal_has_its_code_and_is_tallied(attester: Callable[..., Attester]) -> None:
    a = attester(min_heartbeat_interval=30)
    got = a.beat(1)
    assert got[0] == 404 and got[1]["code"] == "unregistered"
    a.register()
    a.register(OTHER)
    assert a.beat(1) == (200, {"worker": WORKER.address, "epoch": 2, "sequence": 1,
                               "timestamp": NOW, "stored": True})  # fmt: skip
    assert a.beat(2, NOW + 30)[0] == 200
    unsigned = {k: v for k, v in beat_body(3, NOW + 60).items() if k != "signature"}
    garbage = {**beat_body(3, NOW + 60), "signature": "0x" + "00" * 65}
    short = {**beat_body(3, NOW + 60), "signature": "0x1234"}
    cases = {
        "duplicate": beat_body(2, NOW + 60),
        "replayed": beat_body(1, NOW + 90),
        "too_frequent": beat_body(3, NOW + 45),
        "future": beat_body(3, NOW + 301),
        "stale": beat_body(3, NOW - 301),
        "wrong_epoch": beat_body(3, NOW + 60, epoch=1),
        "unknown_block": beat_body(3, NOW + 60, block=OLD_BLOCK),
    }
    for reason, body in cases.items():
        status, answer = a.post(HEARTBEATS, body)
        assert answer["code"] == reason, (reason, answer)
        assert status == (409 if reason in ("duplicate", "replayed") else 422)
    for body in (unsigned, garbage, short, beat_body(3, NOW + 60, key=OTHER, worker=WORKER.address),
                 beat_body(3, NOW + 60, domain=RegistryDomain(1, DOMAIN.registry))):  # fmt: skip
        status, answer = a.post(HEARTBEATS, body)
        assert (status, answer["code"]) == (401, "bad_signature"), answer
    # an epoch that has not started, even within the clock skew, is the future
    a.clock["now"] = EPOCHS.end(2) - 10
    status, answer = a.beat(3, EPOCHS.end(2) + 5)
    assert (status, answer["code"]) == (422, "future")
    assert "has not started" in answer["message"]
    assert a.beat(3, EPOCHS.end(2) - 10)[0] == 200
    a.clock["now"] = NOW
    # malformed requests are not heartbeats: 400, not tallied
    assert a.post(HEARTBEATS, {**beat_body(4), "block_hash": "0x12"})[0] == 400
    assert a.post(HEARTBEATS, {**beat_body(4), "extra": 1})[0] == 400
    a.stop()  # flushes the tallies
    a.start()
    log = read_log(a.log(2))
    assert [log.workers[i] for i in log.worker_index] == [WORKER.address] * 3
    assert list(log.sequence) == [1, 2, 3]
    expected = {(WORKER.address, reason): 1 for reason in cases}
    expected[(WORKER.address, "bad_signature")] = 5
    expected[(WORKER.address, "future")] = 2
    expected[(ZERO_ADDRESS, "unregistered")] = 1
    assert log.refusals == expected
    assert log.refused == sum(expected.values())


def test_an_expired_attestation_is_unregistered(attester: Callable[..., Attester]) -> None:
    a = attester()
    a.register()
    a.clock["now"] = NOW + 86_400 + 1
    a.blocks.add(BLOCK)
    status, answer = a.beat(1, NOW + 86_401)
    assert (status, answer["code"]) == (403, "unregistered") and "expired" in answer["message"]
    a.register()  # re-attested: heartbeats count again
    assert a.beat(1, NOW + 86_401)[0] == 200


def test_log_round_trip_complete_flag_and_worker_signatures(
    attester: Callable[..., Attester],
) -> None:
    a = attester()
    a.register()
    a.register(OTHER)
    for n in range(1, 6):
        assert a.beat(n, NOW + 10 * n)[0] == 200
        assert a.beat(n, NOW + 10 * n, key=OTHER)[0] == 200
    first = read_log(a.log(2))
    assert not first.complete and len(first) == 10
    assert first.attester == ATTESTER.address and first.header.registry == DOMAIN.registry
    assert first.counts_by_worker() == {WORKER.address: 5, OTHER.address: 5}
    for entry in first:
        beat = heartbeat.Heartbeat(entry.worker, entry.epoch, entry.sequence, entry.timestamp,
                                   entry.block_hash)  # fmt: skip
        assert heartbeat.recover(beat, DOMAIN, entry.signature) == entry.worker
        assert entry.received_at == NOW
    # an epoch with nothing in it is a valid, signed, empty log
    empty = read_log(a.log(0))
    assert len(empty) == 0 and empty.complete
    # complete once the epoch's end plus the skew has passed; the same bytes every time
    a.clock["now"] = EPOCHS.end(2) + 299
    assert not read_log(a.log(2)).complete
    a.clock["now"] = EPOCHS.end(2) + 300
    final = a.log(2)
    assert read_log(final).complete and a.log(2) == final
    # bad queries
    for query in ("?epoch=x", "?epoch=", "?epoch=1&x=2", "?epochs=1"):
        status, _body, _ = a.get(HEARTBEATS + query)
        assert status == 400, query


def test_tampered_logs_are_refused(attester: Callable[..., Attester]) -> None:
    a = attester()
    a.register()
    for n in range(1, 4):
        assert a.beat(n, NOW + n)[0] == 200
    data = a.log(2)
    lines = data.splitlines(keepends=True)
    dropped = b"".join(lines[:1] + lines[2:])  # a heartbeat deleted from the log
    with pytest.raises(InputError, match="end says 3 accepted, the log has 2"):
        read_log(dropped)
    with pytest.raises(InputError, match="sha256"):  # and the count fixed up to match
        read_log(dropped.replace(b'"accepted":3', b'"accepted":2'))
    altered = data.replace(b'"complete":false', b'"complete":true')
    with pytest.raises(InputError, match="sha256"):
        read_log(altered)


def test_accepted_heartbeats_survive_a_restart_and_replays_stay_refused(
    attester: Callable[..., Attester],
) -> None:
    a = attester()
    a.register()
    for n in range(1, 4):
        assert a.beat(n, NOW + n)[0] == 200
    before = a.log(2)
    a.stop()
    # a crash mid-write left a torn line: it was never answered, and is cut off
    journal = a.tmp_path / "attester.heartbeats" / "epoch-00000002.ndjson"
    with open(journal, "ab") as handle:
        handle.write(b'{"worker":"0x')
    a.start()
    assert journal.read_bytes().endswith(b"}\n")
    assert read_log(a.log(2)).sequence.tolist() == [1, 2, 3]
    assert a.log(2) == before
    got = a.beat(3, NOW + 4)
    assert got[1]["code"] == "duplicate"
    assert a.beat(2, NOW + 5)[1]["code"] == "replayed"
    assert a.beat(4, NOW + 6)[0] == 200
    assert read_entries(journal, 2).sequence.tolist() == [1, 2, 3, 4]
    status, view, _ = a.get("/v1/compute/workers/" + WORKER.address)
    assert status == 200
    assert [b["sequence"] for b in json.loads(view)["heartbeats"]] == [4, 3, 2, 1]


def test_old_epochs_are_pruned_by_retention(attester: Callable[..., Attester]) -> None:
    a = attester(retention=2 * LENGTH)
    a.register()
    assert a.beat(1)[0] == 200
    a.clock["now"] = NOW + 5 * LENGTH
    a.blocks.add(BLOCK)
    status, body, _ = a.get(f"{HEARTBEATS}?epoch=2")
    assert status == 404 and json.loads(body)["code"] == "epoch_pruned"
    beats = a.server.closers[0].__self__  # the journal
    assert beats.prune(5) == 1
    assert not (a.tmp_path / "attester.heartbeats" / "epoch-00000002.ndjson").exists()


def test_the_client_fetches_and_downloads_the_log(
    attester: Callable[..., Attester], tmp_path: Path
) -> None:
    from veil.attestation.client import AttesterClient, AttesterRefused

    a = attester()
    a.register()
    assert a.beat(1)[0] == 200
    client = AttesterClient(a.url)
    data = client.heartbeat_log(2)
    assert read_log(data).sequence.tolist() == [1]
    saved = client.download_heartbeat_log(2, tmp_path / "logs" / "2.ndjson")
    assert saved.read_bytes() == data
    with pytest.raises(AttesterRefused, match="expected"):
        AttesterClient(a.url).call(HEARTBEATS + "?epoch=x")


def _raw(url: str, request: bytes) -> bytes:
    import socket

    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", b"200"),
        (b"GET /v1/health HTTP/2.0\r\n\r\n", b"505"),
        (b"GET /v1/health\r\n\r\n", b"400"),
        (b"GET /v1/health HTTP/1.1\r\nno colon here\r\n\r\n", b"400"),
        (b"GET /v1/health HTTP/1.1\r\nName : spaced\r\n\r\n", b"400"),
        (b"GET /v1/health HTTP/1.1\r\n" + b"X-A: 1\r\n" * 101 + b"\r\n", b"431"),
        (b"GET /v1/health HTTP/1.1\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n", b"431"),
    ],
)
def test_request_heads_are_parsed_strictly(
    attester: Callable[..., Attester], request_bytes: bytes, status: bytes
) -> None:
    """The attester reads request heads itself (not with the email package): well-formed
    ones are served, anything else refused in the one error shape."""
    answer = _raw(attester().url, request_bytes)
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:200]
    if status != b"200":
        body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
        assert body["code"] and body["message"] and body["request_id"]


def test_expect_continue_and_http10_close(attester: Callable[..., Attester]) -> None:
    a = attester()
    body = json.dumps(beat_body(1)).encode()
    head = (
        f"POST {HEARTBEATS} HTTP/1.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    )
    answer = _raw(a.url, head.encode() + body)
    assert answer.startswith(b"HTTP/1.1 100"), answer[:100]
    assert b"HTTP/1.1 404" in answer  # then the answer proper: this worker is unregistered
    answer = _raw(a.url, b"GET /v1/health HTTP/1.0\r\n\r\n")  # 1.0: closed after one answer
    assert answer.startswith(b"HTTP/1.1 200") or answer.startswith(b"HTTP/1.0 200")


def test_a_governed_change_of_the_epoch_length_is_picked_up(
    attester: Callable[..., Attester],
) -> None:
    """The pool re-anchors genesisTime when the length changes; the attester re-reads the
    schedule and numbers heartbeats by the new one from then on."""
    a = attester()
    a.register()
    service = a.server.posts[HEARTBEATS].handler.__self__
    current = EPOCHS.epoch(NOW)
    start = EPOCHS.start(current)
    shorter = EpochSchedule(start - current * 600, 600)  # epoch `current` keeps its start
    service.schedule_source = lambda: shorter
    service.schedule_every = 0.0
    old_number = beat_body(1, NOW)  # numbered by the old schedule: the same epoch here
    assert a.post(HEARTBEATS, old_number)[0] == 200
    later = start + 700  # epoch current+1 under the new length, still `current` under the old
    a.clock["now"] = later
    got = a.post(HEARTBEATS, beat_body(2, later, epoch=current))
    assert got[1]["code"] == "wrong_epoch"
    assert a.post(HEARTBEATS, beat_body(3, later, epoch=current + 1))[0] == 200


def test_only_the_newest_journals_stay_open(attester: Callable[..., Attester]) -> None:
    """Serving or writing many epochs does not hold a file descriptor per epoch."""
    a = attester()
    a.register()
    journal = a.server.closers[0].__self__
    for n in range(6):
        now = EPOCHS.start(3 + n) + 10
        a.clock["now"] = now
        assert a.beat(n + 1, now)[0] == 200
    assert len(journal._files) <= 3
    for epoch in range(3, 9):
        assert len(read_log(a.log(epoch))) == 1
    assert len(journal._files) <= 3
