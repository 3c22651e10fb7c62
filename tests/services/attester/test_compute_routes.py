"""Compute routes over real HTTP: attest only verified, key-bound evidence; keep honest uptime.

The attestation digest is cross-checked against ComputeRegistry.attestationDigest on an
in-process registry (titanoboa), so a drift between the library and the contract fails.
"""

from __future__ import annotations

import hashlib
import json
import threading
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boa
import pytest
from eth_account import Account

from veil.attestation.api import EVIDENCE_PREFIX
from veil.attestation.api import REGISTRATIONS as REGISTRATIONS_PATH
from veil.chain.compile import CONTRACTS_DIR
from veil.compute import attestation
from veil.compute.attestation import RegistryDomain, WorkerAttestation
from veil.compute.evidence import EvidenceBundle, worker_report_data
from veil.network.genesis import devnet_allowlist, devnet_policy
from veil.services.attester.service import AttesterConfig, build_server
from veil.services.attester.store import Store
from veil.tee import Policy
from veil.tee.policy import policy_from_dict
from veil.tee.simulator import AppSpec, simulate

REPO_ROOT = Path(__file__).resolve().parents[3]
FIXTURES = REPO_ROOT.parent / "shared" / "fixtures" / "tee"
ATTESTER = Account.from_key(b"\x07" * 32)
WORKER = Account.from_key(b"\x21" * 32)
OTHER = Account.from_key(b"\x22" * 32)
PROVIDER = "0x" + "ab" * 20
NOW = 1_800_000_000
DEVNET_POLICY = policy_from_dict(tomllib.loads(devnet_policy()))


@pytest.fixture(scope="module")
def registry() -> Any:
    """A real ComputeRegistry (in titanoboa) over the test-only share token."""
    token = boa.load(str(REPO_ROOT / "tests/contracts/compute/TestOnlyShareToken.vy"), 18)
    owner = boa.env.generate_address()
    return boa.load(str(CONTRACTS_DIR / "compute" / "ComputeRegistry.vy"), token, owner, owner)


@pytest.fixture(scope="module")
def domain(registry: Any) -> RegistryDomain:
    return RegistryDomain(boa.env.evm.patch.chain_id, str(registry.address))


Serve = Callable[..., tuple[str, Path]]


@pytest.fixture
def serve(tmp_path: Path, domain: RegistryDomain) -> Iterator[Serve]:
    servers = []
    clock = {"now": NOW}

    def start(policy: Policy = DEVNET_POLICY, **extra: Any) -> tuple[str, Path]:
        db = tmp_path / f"attester{len(servers)}.sqlite"
        config = AttesterConfig(
            signer=ATTESTER, db=db, port=0, policy=policy, registry=domain,
            clock=lambda: clock["now"], **extra,
        )  # fmt: skip
        server = build_server(config)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.url, db

    start.clock = clock  # type: ignore[attr-defined]
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def request(url: str, path: str, body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": "application/json"}
    req = urllib.request.Request(url + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def get_bytes(url: str, path: str) -> bytes:
    with urllib.request.urlopen(url + path, timeout=20) as response:
        return response.read()


def sim_body(worker: str = WORKER.address, bind: str | None = None, **extra: Any) -> dict[str, Any]:
    evidence = simulate(worker_report_data(bind or worker), **extra.pop("sim", {}))
    return {
        "evidence": json.dumps(evidence),
        "worker": worker,
        "provider": PROVIDER,
        "gpu_model": "CPU_TDX",
        "gpu_count": 0,
        **extra,
    }


def test_accepted_simulated_evidence_is_signed_for_the_registry(
    serve: Serve, registry: Any, domain: RegistryDomain
) -> None:
    url, db = serve()
    body = sim_body()
    status, answer = request(url, REGISTRATIONS_PATH, body)
    assert status == 200, answer
    signed = WorkerAttestation.from_json(answer["attestation"])
    signature = bytes.fromhex(answer["signature"][2:])
    assert attestation.recover(signed, domain, signature) == ATTESTER.address
    on_chain = registry.attestationDigest(signed.as_tuple())
    assert "0x" + on_chain.hex() == answer["digest"]
    assert answer["simulated"] is True and answer["verdict"]["accepted"] is True

    images, composes = devnet_allowlist()
    assert signed.os_image_hash == images[0] and signed.compose_hash == composes[0]
    assert signed.worker == WORKER.address and signed.provider.lower() == PROVIDER
    assert signed.expiry == NOW + 86_400
    quote = bytes.fromhex(json.loads(body["evidence"])["quote"])
    assert signed.quote_hash == hashlib.sha256(quote).digest()
    measured = answer["verdict"]["measurements"]
    registers = b"".join(bytes.fromhex(measured[k]) for k in ("mr_td", "rtmr0", "rtmr1", "rtmr2",
                                                              "rtmr3"))  # fmt: skip
    assert signed.measurement_hash == hashlib.sha256(registers).digest()

    published = get_bytes(url, answer["evidence_url"])
    assert hashlib.sha256(published).digest() == signed.evidence_hash
    assert EvidenceBundle.decode(published).evidence == body["evidence"]

    row = Store(db).latest_registration(WORKER.address)
    assert row is not None and row["evidence_hash"] == answer["evidence_hash"]
    assert json.loads(row["attestation"])["signature"] == answer["signature"]


def test_requested_expiry_lets_several_attesters_sign_one_struct(serve: Serve) -> None:
    url, _ = serve()
    status, first = request(url, REGISTRATIONS_PATH, sim_body(expiry=NOW + 3600))
    assert status == 200 and first["attestation"]["expiry"] == NOW + 3600
    status, again = request(url, REGISTRATIONS_PATH, sim_body(expiry=NOW + 3600))
    assert status == 200 and again["digest"] == first["digest"]
    status, answer = request(url, REGISTRATIONS_PATH, sim_body(expiry=NOW + 2 * 86_400))
    assert status == 422 and "expiry" in answer["error"]
    status, answer = request(url, REGISTRATIONS_PATH, sim_body(expiry=NOW))
    assert status == 422 and "expiry" in answer["error"]


def test_default_policy_refuses_simulated_evidence(serve: Serve) -> None:
    url, db = serve(Policy())
    status, answer = request(url, REGISTRATIONS_PATH, sim_body())
    assert status == 422
    assert "SIMULATED evidence is refused by policy" in answer["error"]
    assert Store(db).latest_registration(WORKER.address) is None


def test_report_data_must_bind_the_worker_key(serve: Serve) -> None:
    url, _ = serve()
    status, answer = request(url, REGISTRATIONS_PATH, sim_body(bind=OTHER.address))
    assert status == 422
    assert "report data does not bind" in answer["error"]


def test_app_outside_the_policy_is_refused(serve: Serve) -> None:
    url, _ = serve()
    body = sim_body(sim={"app": AppSpec(compose_hash=b"\x99" * 32)})
    status, answer = request(url, REGISTRATIONS_PATH, body)
    assert status == 422 and "compose hash" in answer["error"]


def test_real_quote_with_stale_collateral_is_refused(serve: Serve) -> None:
    url, _ = serve(Policy())
    body = {
        "evidence": (FIXTURES / "dstack-quote-report.json").read_text(),
        "collateral": (FIXTURES / "tdx_quote_outdated_collateral.json").read_text(),
        "worker": WORKER.address,
        "provider": PROVIDER,
        "gpu_model": 0,
        "gpu_count": 0,
    }
    serve.clock["now"] = 1_790_000_000  # type: ignore[attr-defined]
    status, answer = request(url, REGISTRATIONS_PATH, body)
    assert status == 422
    assert "collateral stale" in answer["error"]
    # at the fixture's own time the collateral is fine: what remains is the key binding
    serve.clock["now"] = 1_771_415_931  # type: ignore[attr-defined]
    status, answer = request(url, REGISTRATIONS_PATH, body)
    assert status == 422
    assert "collateral" not in answer["error"] and "report data does not bind" in answer["error"]


def test_gpu_evidence_must_match_model_count_and_be_bound(serve: Serve) -> None:
    url, _ = serve()
    gpu = (FIXTURES / "gpu_attestation_h100.json").read_text()
    bound = {"gpu_evidence": gpu.encode()}
    status, answer = request(
        url, REGISTRATIONS_PATH,
        sim_body(sim=bound, gpu_model="H100", gpu_count=1, gpu_evidence=gpu),
    )  # fmt: skip
    assert status == 200, answer
    assert answer["attestation"]["gpuModel"] == 1 and answer["attestation"]["gpuCount"] == 1
    status, answer = request(
        url, REGISTRATIONS_PATH,
        sim_body(sim=bound, gpu_model="H100", gpu_count=2, gpu_evidence=gpu),
    )  # fmt: skip
    assert status == 422 and "gpu_count 2" in answer["error"]
    status, answer = request(
        url, REGISTRATIONS_PATH,
        sim_body(sim=bound, gpu_model="B200", gpu_count=1, gpu_evidence=gpu),
    )  # fmt: skip
    assert status == 422 and "is not a B200" in answer["error"]
    status, answer = request(
        url, REGISTRATIONS_PATH, sim_body(gpu_model="H100", gpu_count=1, gpu_evidence=gpu)
    )
    assert status == 422 and "gpu" in answer["error"]  # not measured into this TD
    status, answer = request(url, REGISTRATIONS_PATH, sim_body(gpu_model="H100", gpu_count=1))
    assert status == 422 and "needs GPU evidence" in answer["error"]


@pytest.mark.parametrize(
    ("change", "status", "needle"),
    [
        ({"worker": "0x1234"}, 400, "worker"),
        ({"gpu_model": "TPU"}, 400, "gpu model"),
        ({"gpu_count": -1}, 400, "gpu_count"),
        ({"evidence": '{"quote": "zz"}'}, 400, "not hex"),
        ({"evidence": ""}, 400, "evidence"),
        ({"surprise": 1}, 400, "unknown field"),
        ({"collateral": "{}"}, 400, "collateral"),
    ],
)
def test_malformed_registrations_are_refused(
    serve: Serve, change: dict[str, Any], status: int, needle: str
) -> None:
    url, _ = serve()
    got, answer = request(url, REGISTRATIONS_PATH, {**sim_body(), **change})
    assert got == status and needle in answer["error"], answer


def test_oversized_and_non_json_bodies_are_refused(serve: Serve) -> None:
    url, _ = serve()
    status, answer = request(url, REGISTRATIONS_PATH, raw=b"{" + b" " * (600 * 1024) + b"}")
    assert status == 413 and "exceeds" in answer["error"]
    status, answer = request(url, REGISTRATIONS_PATH, raw=b"not json")
    assert status == 400 and "not JSON" in answer["error"]
    status, answer = request(url, REGISTRATIONS_PATH, raw=b"[1, 2]")
    assert status == 400 and "JSON object" in answer["error"]


def test_reads_refuse_unknown_things(serve: Serve) -> None:
    url, _ = serve()
    status, answer = request(url, EVIDENCE_PREFIX + "0x" + "00" * 32)
    assert status == 404 and "not stored" in answer["error"]
    status, answer = request(url, EVIDENCE_PREFIX + "nothex")
    assert status == 400
    status, answer = request(url, "/v1/compute/workers/" + OTHER.address)
    assert status == 404 and "never attested" in answer["error"]
    status, answer = request(url, "/v1/health")
    assert status == 200 and answer["compute"]["allow_simulated"] is True


def test_a_registration_posted_again_gets_the_stored_answer_and_no_new_row(
    serve: Serve,
) -> None:
    url, db = serve()
    body = sim_body()
    first = request(url, REGISTRATIONS_PATH, body)
    assert first[0] == 200
    for _ in range(20):  # the same request, the same second: the same answer
        assert request(url, REGISTRATIONS_PATH, body) == first
    assert Store(db).count("registrations") == 1
    # a request naming its expiry is answered from the record at any later time
    fixed = sim_body(expiry=NOW + 3600)
    signed = request(url, REGISTRATIONS_PATH, fixed)
    serve.clock["now"] = NOW + 600  # type: ignore[attr-defined]
    for _ in range(20):
        assert request(url, REGISTRATIONS_PATH, fixed) == signed
    assert Store(db).count("registrations") == 2
    # without an expiry, a later request is a refresh: verified and signed anew, later
    again = request(url, REGISTRATIONS_PATH, body)
    assert again[0] == 200
    assert again[1]["attestation"]["expiry"] == first[1]["attestation"]["expiry"] + 600
    assert Store(db).count("registrations") == 3


def test_expired_registrations_are_pruned_but_each_workers_latest_kept(
    serve: Serve, domain: RegistryDomain
) -> None:
    url, db = serve()
    for step in range(3):
        serve.clock["now"] = NOW + step  # type: ignore[attr-defined]
        assert request(url, REGISTRATIONS_PATH, sim_body())[0] == 200
    store = Store(db)
    assert store.count("registrations") == 3
    assert store.prune_registrations(expired_before=NOW + 10 * 86_400) == 2
    assert store.latest_registration(WORKER.address)["expiry"] == NOW + 2 + 86_400  # type: ignore[index]


def test_retention_applies_when_the_service_starts(serve: Serve, domain: RegistryDomain) -> None:
    url, db = serve()
    for step in range(3):
        serve.clock["now"] = NOW + step  # type: ignore[attr-defined]
        assert request(url, REGISTRATIONS_PATH, sim_body())[0] == 200
    from veil.services.attester.workers import ComputeService

    later = NOW + 40 * 86_400
    service = ComputeService(
        DEVNET_POLICY, domain, ATTESTER, Store(db), retention=35 * 86_400, clock=lambda: later
    )
    assert service.store.count("registrations") == 1
    assert service.store.latest_registration(WORKER.address)["expiry"] == NOW + 2 + 86_400  # type: ignore[index]
