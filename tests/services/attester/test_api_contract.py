"""The attester server and the one client speak the API of veil.attestation.api: the
server serves exactly its paths, its answers read back as its types, and its refusals
arrive at the client with their code."""

from __future__ import annotations

from pathlib import Path

import pytest
from binding_kit import ATTESTER, CONTEXT, body_for, make_holders, serving

from veil.attestation import api
from veil.attestation.client import AttesterClient, AttesterRefused
from veil.compute.attestation import RegistryDomain
from veil.migration import attestation
from veil.services.attester import metrics
from veil.services.attester.service import AttesterConfig, build_server
from veil.tee import DEFAULT_POLICY


def test_the_server_serves_exactly_the_api_paths(tmp_path: Path) -> None:
    holders = make_holders(1)
    with serving(tmp_path / "a.sqlite", holders) as served:
        assert set(served.server.posts) == {api.BINDINGS}
    config = AttesterConfig(
        signer=ATTESTER, db=tmp_path / "b.sqlite", port=0, policy=DEFAULT_POLICY,
        registry=RegistryDomain(31337, "0x" + "ab" * 20), blocks=set(),
    )  # fmt: skip
    server = build_server(config)
    try:
        assert set(server.posts) == {api.REGISTRATIONS, api.HEARTBEATS}
        logs = api.HEARTBEATS + "?"
        reads = {api.EVIDENCE_PREFIX, api.WORKERS_PREFIX, logs, metrics.PATH}
        assert set(server.readers) == reads
        assert server.posts[api.REGISTRATIONS].max_body == api.MAX_REGISTRATION_BODY
        assert server.posts[api.HEARTBEATS].max_body == api.MAX_BODY
    finally:
        server.server_close()


def test_the_client_reads_a_real_binding_answer_and_refusal(tmp_path: Path) -> None:
    holders = make_holders(2)
    stranger = make_holders(3)[2]  # a valid holder, but not a leaf of the served tree
    with serving(tmp_path / "a.sqlite", holders) as served:
        client = AttesterClient(served.url)
        request = api.BindingRequest(**body_for(holders[0]))
        answer = client.bind(request)
        assert answer.attestation.signer == ATTESTER.address
        assert answer.account == request.account and answer.rebinding is False
        signed = attestation.Attestation.of(ATTESTER.address, answer.attestation.signature)
        recovered = attestation.recover_signer(
            signed, bytes.fromhex(request.account[2:]), request.receiver,
            answer.signature_hash, CONTEXT.chain_id, CONTEXT.migrator,
        )  # fmt: skip
        assert recovered == ATTESTER.address
        assert client.bind(request) == answer  # replayed from the record, same answer
        assert client.health()["attester"] == ATTESTER.address
        with pytest.raises(AttesterRefused, match="not in the migration tree") as refused:
            client.bind(api.BindingRequest(**body_for(stranger)))
        assert (refused.value.status, refused.value.code) == (404, "not_found")
        with pytest.raises(AttesterRefused, match="unknown field") as refused:
            client.post(api.BINDINGS, {**request.to_json(), "amount": "1000"})
        assert refused.value.status == 400
