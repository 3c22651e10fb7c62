"""The official openai package against `veil ai serve`, through the verifying transport."""

from __future__ import annotations

import asyncio
import base64

import httpx
import numpy as np
import openai
import pytest
from ai_kit import RunningGateway, sim_policy

from veil.inference.embedding import MODEL_NAME, EmbeddingModel
from veil.inference.transport import AsyncVerifyingTransport, VerifyingTransport


def _client(gateway: RunningGateway, **kwargs: object) -> tuple[openai.OpenAI, VerifyingTransport]:
    transport = VerifyingTransport(gateway.url, sim_policy(), **kwargs)  # type: ignore[arg-type]
    client = openai.OpenAI(
        base_url=gateway.url + "/v1",
        api_key="customer-key",
        http_client=httpx.Client(transport=transport),
        max_retries=0,
    )
    return client, transport


def test_chat_plain_is_answered_and_verified(gateway: RunningGateway) -> None:
    client, transport = _client(gateway)
    answer = client.chat.completions.create(
        model="fake-llm", messages=[{"role": "user", "content": "hello confidential world"}]
    )
    assert answer.choices[0].message.content == "echo: hello confidential world"
    checked = transport.checked[-1]
    assert checked.receipt_id == answer.id
    assert checked.receipt.model == "fake-llm"
    assert checked.receipt.completion_tokens == 4
    assert checked.receipt.prompt_tokens == answer.usage.prompt_tokens  # type: ignore[union-attr]
    assert transport.gateway is not None and transport.gateway.simulated


def test_chat_stream_is_answered_and_every_chunk_verified(gateway: RunningGateway) -> None:
    client, transport = _client(gateway)
    stream = client.chat.completions.create(
        model="fake-llm",
        messages=[{"role": "user", "content": "one two three four five"}],
        stream=True,
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "echo: one two three four five"
    checked = transport.checked[-1]
    assert checked.receipt_id.startswith("chatcmpl-")
    # the usage chunk was asked by the gateway, not by us: metered, not forwarded
    assert checked.receipt.completion_tokens == 6
    assert checked.receipt.prompt_tokens == 8


def test_stream_with_usage_requested_forwards_usage(gateway: RunningGateway) -> None:
    client, transport = _client(gateway)
    stream = client.chat.completions.create(
        model="fake-llm",
        messages=[{"role": "user", "content": "count me"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    usage = [chunk.usage for chunk in stream if chunk.usage is not None]
    assert len(usage) == 1 and usage[0].completion_tokens == 3
    assert transport.checked[-1].receipt.completion_tokens == 3


def test_ed25519_signatures_are_verified_too(gateway: RunningGateway) -> None:
    client, transport = _client(gateway, signing_algo="ed25519")
    client.chat.completions.create(
        model="fake-llm", messages=[{"role": "user", "content": "ed25519 please"}]
    )
    assert transport.gateway is not None
    assert transport.gateway.signing_address == gateway.gateway.keys.ed25519_public_key
    assert transport.gateway.ecdsa_address == gateway.gateway.keys.ecdsa_address
    assert len(transport.checked) == 1


def test_embeddings_come_from_the_built_in_model(
    gateway: RunningGateway, embedding_model: EmbeddingModel
) -> None:
    client, transport = _client(gateway)
    texts = ["A man is eating food.", "A man is eating a piece of bread."]
    answer = client.embeddings.create(model=MODEL_NAME, input=texts)  # base64 on the wire
    vectors = np.array([item.embedding for item in answer.data], dtype=np.float32)
    expected, tokens = embedding_model.embed(texts)
    assert vectors.shape == (2, 384)
    assert np.allclose(vectors, expected, atol=1e-6)
    assert answer.usage.prompt_tokens == tokens
    assert transport.checked[-1].receipt.prompt_tokens == tokens
    floats = client.embeddings.create(model=MODEL_NAME, input="x", encoding_format="float")
    assert len(floats.data[0].embedding) == 384


def test_async_client_streams_and_verifies(gateway: RunningGateway) -> None:
    async def run() -> tuple[str, int]:
        transport = AsyncVerifyingTransport(gateway.url, sim_policy())
        async with openai.AsyncOpenAI(
            base_url=gateway.url + "/v1",
            api_key="k",
            http_client=httpx.AsyncClient(transport=transport),
            max_retries=0,
        ) as client:
            stream = await client.chat.completions.create(
                model="fake-llm", messages=[{"role": "user", "content": "async works"}],
                stream=True,
            )  # fmt: skip
            parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
            await client.chat.completions.create(
                model="fake-llm", messages=[{"role": "user", "content": "and plain"}]
            )
        return "".join(parts), len(transport.checked)

    text, checked = asyncio.run(run())
    assert text == "echo: async works"
    assert checked == 2


def test_models_lists_backend_and_built_in(gateway: RunningGateway) -> None:
    client, _ = _client(gateway)
    names = {model.id for model in client.models.list()}
    assert names == {"fake-llm", MODEL_NAME}


def test_backend_errors_pass_through_unsigned(gateway: RunningGateway) -> None:
    client, transport = _client(gateway)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "x"}]
        )
    assert transport.checked == []


def test_base64_embedding_bytes_are_little_endian_float32(gateway: RunningGateway) -> None:
    response = httpx.post(
        gateway.url + "/v1/embeddings",
        json={"model": MODEL_NAME, "input": "bytes", "encoding_format": "base64"},
    )
    raw = base64.b64decode(response.json()["data"][0]["embedding"])
    vector = np.frombuffer(raw, dtype="<f4")
    assert vector.shape == (384,) and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5


def test_openapi_describes_every_route(gateway: RunningGateway) -> None:
    paths = httpx.get(gateway.url + "/openapi.json").json()["paths"]
    assert set(paths) >= {
        "/v1/models", "/v1/chat/completions", "/v1/embeddings", "/v1/attestation/report",
        "/v1/signature/{receipt_id}", "/v1/usage",
    }  # fmt: skip
