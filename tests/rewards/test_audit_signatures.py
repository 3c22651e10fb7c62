"""The audit re-verifies every heartbeat's worker signature, once per heartbeat."""

from __future__ import annotations

from veil.attestation.typed_data import DigestSigner, Domain
from veil.compute.heartbeat import struct_hash
from veil.compute.heartbeat_log import LogHeader, entry_line, read_log, write_log
from veil.rewards.audit import bad_heartbeat_signatures

REGISTRY = DigestSigner(b"\x0b" * 32).address
WORKER = DigestSigner(b"\x01" * 32)
BLOCK = b"\x05" * 32


def make_log(tmp_path, attester_key: bytes, forge: int | None = None):
    attester = DigestSigner(attester_key)
    domain = Domain("veil ComputeRegistry", "1", 31337, REGISTRY)
    raw = bytes.fromhex(WORKER.address[2:])
    lines = []
    for seq in range(1, 6):
        digest = domain.digest(struct_hash(raw, 2, seq, 7200 + seq, BLOCK))
        signer = DigestSigner(b"\x66" * 32) if seq == forge else WORKER
        signature = signer.sign(digest).to_bytes()
        lines.append(entry_line(WORKER.address, 2, seq, 7200 + seq, BLOCK, signature, 0))
    header = LogHeader(2, attester.address, 31337, REGISTRY, True)
    path = tmp_path / f"{attester.address}.ndjson"
    path.write_bytes(b"".join(write_log(header, attester, iter([(b"".join(lines), 5)]), {})))
    return read_log(path)


def test_only_the_forged_heartbeat_is_named(tmp_path):
    honest = make_log(tmp_path, b"\x0a" * 32)
    forged = make_log(tmp_path, b"\x0c" * 32, forge=3)
    verified: set[bytes] = set()
    assert bad_heartbeat_signatures(honest, 31337, REGISTRY, verified) == []
    assert len(verified) == 5
    [problem] = bad_heartbeat_signatures(forged, 31337, REGISTRY, verified)
    assert f"heartbeat {WORKER.address} sequence 3 is not signed by the worker" in problem
    assert DigestSigner(b"\x0c" * 32).address in problem


def test_a_signature_under_another_network_fails(tmp_path):
    honest = make_log(tmp_path, b"\x0a" * 32)
    assert len(bad_heartbeat_signatures(honest, 1, REGISTRY)) == 5
