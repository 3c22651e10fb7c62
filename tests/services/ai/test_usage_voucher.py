"""Usage vouchers: the gateway signs, with its attested key, every token and wei it metered.

Checked independently: eth-account recovers the EIP-712 signature (the typed data as the
gateway serves it), the counts are the receipts' own token counts, the amount is
`metering.charges` over the gateway's usage rows; a restart (new key) counts from zero.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from ai_kit import SIM_APP, RunningGateway, run_gateway, sim_policy, start_backend
from eth_account import Account
from eth_account.messages import encode_typed_data

from veil.compute.quote_source import Simulator
from veil.errors import InputError
from veil.inference.embedding import MODEL_NAME, EmbeddingModel
from veil.inference.metering import TokenPrice, charges
from veil.inference.transport import VerifyingTransport
from veil.inference.verify import VerificationRefused
from veil.inference.voucher import fetch_voucher, read_voucher
from veil.services.ai.app import GatewayConfig

CHAIN_ID = 31337
MARKET = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
LEASE = int("ab" * 32, 16)
PRICES = {"fake-llm": TokenPrice(prompt=1_000, completion=3_000), MODEL_NAME: TokenPrice(7, 0)}


def _config(state: Path, backend_url: str, model: EmbeddingModel, **extra: object) -> GatewayConfig:
    return GatewayConfig(
        state_dir=state,
        quote_source=Simulator(SIM_APP),
        backend=backend_url,
        embedding_model=model,
        usage_token="usage-secret",
        prices=dict(PRICES),
        lease_id=LEASE,
        market=MARKET,
        chain_id=CHAIN_ID,
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "gateway"


@pytest.fixture
def metered_gateway(
    state: Path, backend_url: str, embedding_model: EmbeddingModel
) -> Iterator[RunningGateway]:
    running = run_gateway(_config(state, backend_url, embedding_model))
    yield running
    running.stop()


def _voucher_doc(url: str) -> dict:
    answer = httpx.get(url + "/v1/usage/voucher", timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _recovered(doc: dict) -> str:
    """The signer as eth-account sees it, from the typed data exactly as served."""
    typed = encode_typed_data(full_message=doc["typed_data"])
    return Account.recover_message(typed, signature=doc["signature"])


def test_voucher_counts_every_signed_answer_and_recovers_to_the_attested_key(
    metered_gateway: RunningGateway,
) -> None:
    url = metered_gateway.url
    empty = _voucher_doc(url)
    assert (empty["tokens"], empty["amount"]) == (0, "0")

    transport = VerifyingTransport(url, sim_policy())
    client = openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0,
                           http_client=httpx.Client(transport=transport))  # fmt: skip
    client.chat.completions.create(
        model="fake-llm", messages=[{"role": "user", "content": "count these tokens"}]
    )
    stream = client.chat.completions.create(
        model="fake-llm", messages=[{"role": "user", "content": "one two three"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    client.embeddings.create(model=MODEL_NAME, input=["a few words", "more"])
    assert len(transport.checked) == 3

    doc = _voucher_doc(url)
    attested = transport.gateway
    assert attested is not None
    # the signature recovers, with eth-account, to the key the attestation report binds
    assert _recovered(doc) == attested.ecdsa_address == doc["meter"]
    assert doc["lease_id"] == "0x" + "ab" * 32
    assert doc["typed_data"]["domain"] == {
        "name": "veil Market", "version": "1", "chainId": CHAIN_ID, "verifyingContract": MARKET,
    }  # fmt: skip
    assert doc["typed_data"]["message"] == {
        "leaseId": LEASE, "meter": doc["meter"], "tokens": doc["tokens"],
        "amount": int(doc["amount"]),
    }  # fmt: skip
    # counts: the sum of the verified receipts' own token counts
    receipts = [c.receipt for c in transport.checked]
    assert doc["tokens"] == sum(r.prompt_tokens + r.completion_tokens for r in receipts) > 0
    # amount: metering.charges over the gateway's usage rows, and by hand from the receipts
    rows = httpx.get(url + "/v1/usage", headers={"Authorization": "Bearer usage-secret"}).json()
    assert int(doc["amount"]) == sum(c.amount for c in charges(rows["data"], PRICES).values())
    by_hand = sum(
        r.prompt_tokens * PRICES[r.model].prompt + r.completion_tokens * PRICES[r.model].completion
        for r in receipts
    )
    assert int(doc["amount"]) == by_hand > 0
    # the library's reader agrees, and binds it to the attested key
    voucher = fetch_voucher(url, CHAIN_ID, MARKET, attested.ecdsa_address)
    assert (voucher.tokens, voucher.amount) == (doc["tokens"], int(doc["amount"]))


def test_unpriced_model_is_refused_before_the_backend_and_not_metered(
    metered_gateway: RunningGateway,
) -> None:
    answer = httpx.post(
        metered_gateway.url + "/v1/chat/completions",
        json={"model": "free-lunch", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert answer.status_code == 400 and answer.json()["code"] == "model_not_priced"
    assert (_voucher_doc(metered_gateway.url)["tokens"]) == 0


def test_a_restart_is_a_new_key_counting_from_zero(
    state: Path, backend_url: str, embedding_model: EmbeddingModel
) -> None:
    first = run_gateway(_config(state, backend_url, embedding_model))
    try:
        httpx.post(first.url + "/v1/embeddings", json={"model": MODEL_NAME, "input": "x y z"})
        before = _voucher_doc(first.url)
        assert before["tokens"] > 0
    finally:
        first.stop()
    second = run_gateway(_config(state, backend_url, embedding_model))
    try:
        after = _voucher_doc(second.url)
        # the receipts survive (same state dir); the count belongs to the old key only
        auth = {"Authorization": "Bearer usage-secret"}
        rows = httpx.get(second.url + "/v1/usage", headers=auth).json()["data"]
        assert len(rows) == 1
        assert after["meter"] != before["meter"]
        assert (after["tokens"], after["amount"]) == (0, "0")
        assert _recovered(after) == after["meter"]
    finally:
        second.stop()


def test_a_stream_the_client_cuts_off_is_signed_and_metered(
    tmp_path: Path, embedding_model: EmbeddingModel
) -> None:
    """Otherwise closing a stream just before its end would make any answer free."""
    backend, slow_url = start_backend(tmp_path, "--token-delay", "0.3")
    running = run_gateway(_config(tmp_path / "gateway", slow_url, embedding_model))
    try:
        words = "one two three four five six seven eight"
        body = {"model": "fake-llm", "messages": [{"role": "user", "content": words}],
                "stream": True}  # fmt: skip
        with httpx.stream("POST", running.url + "/v1/chat/completions", json=body) as answer:
            receipt_id = answer.headers["x-receipt-id"]
            seen = 0
            for line in answer.iter_lines():
                seen += line.startswith("data: ")
                if seen == 3:  # the role chunk and two words, then hang up
                    break
        deadline = time.monotonic() + 20
        while (found := httpx.get(f"{running.url}/v1/signature/{receipt_id}")).status_code != 200:
            assert time.monotonic() < deadline, found.text
            time.sleep(0.2)
        message = found.json()["receipt"]["message"]
        # the words handed over before the hang-up, not the nine the answer would have had
        assert 2 <= message["completionTokens"] < 9
        assert message["promptTokens"] == 0  # the usage chunk comes last: it never came
        doc = _voucher_doc(running.url)
        assert doc["tokens"] == message["completionTokens"]
        assert int(doc["amount"]) == message["completionTokens"] * PRICES["fake-llm"].completion
    finally:
        running.stop()
        backend.terminate()
        backend.wait(10)


def test_without_a_lease_there_is_no_voucher(gateway: RunningGateway) -> None:
    answer = httpx.get(gateway.url + "/v1/usage/voucher")
    assert answer.status_code == 404 and answer.json()["code"] == "metering_disabled"
    with pytest.raises(VerificationRefused, match="no_voucher"):
        fetch_voucher(gateway.url, CHAIN_ID, MARKET)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"lease_id": 1, "market": None}, "market missing"),
        ({"chain_id": None}, "chain id missing"),
        ({"prices": {}}, "no price table"),
    ],
)
def test_incomplete_metering_is_refused_at_start(
    tmp_path: Path, changes: dict, problem: str
) -> None:
    base = {"lease_id": LEASE, "market": MARKET, "chain_id": CHAIN_ID, "prices": PRICES}
    config = GatewayConfig(state_dir=tmp_path, quote_source=Simulator(SIM_APP),
                           **{**base, **changes})  # fmt: skip
    with pytest.raises(InputError, match=problem):
        config.check_metering()


def test_tampered_or_misdirected_vouchers_are_refused(metered_gateway: RunningGateway) -> None:
    httpx.post(metered_gateway.url + "/v1/embeddings", json={"model": MODEL_NAME, "input": "a"})
    doc = _voucher_doc(metered_gateway.url)
    assert read_voucher(doc, CHAIN_ID, MARKET).amount == int(doc["amount"]) > 0
    # more wei than signed: the signature no longer recovers to the meter
    inflated = {**doc, "amount": str(int(doc["amount"]) + 1)}
    with pytest.raises(VerificationRefused, match="bad_signature"):
        read_voucher(inflated, CHAIN_ID, MARKET)
    # a gateway metering for another market or chain (as its typed data says)
    with pytest.raises(VerificationRefused, match="wrong_market"):
        read_voucher(doc, CHAIN_ID + 1, MARKET)
    with pytest.raises(VerificationRefused, match="wrong_market"):
        read_voucher(doc, CHAIN_ID, "0x" + "22" * 20)
    # signed by the gateway, but not by the key the customer attested
    with pytest.raises(VerificationRefused, match="wrong_meter"):
        read_voucher(doc, CHAIN_ID, MARKET, meter="0x" + "11" * 20)
    # another signer named as meter: its own signature does not recover to it
    with pytest.raises(VerificationRefused, match="bad_signature"):
        read_voucher({**doc, "meter": "0x" + "11" * 20}, CHAIN_ID, MARKET)
    with pytest.raises(InputError, match="missing field"):
        read_voucher({"lease_id": "0x01"}, CHAIN_ID, MARKET)
