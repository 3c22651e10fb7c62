"""httpx transports that verify the AI gateway before the first request and every answer after.

Use with the official openai package, so that every call is verified and a failure raises
instead of returning unverified text:

    transport = VerifyingTransport("https://gw.example", policy)
    client = openai.OpenAI(base_url="https://gw.example/v1", api_key=...,
                           http_client=httpx.Client(transport=transport), max_retries=0)

openai wraps transport exceptions in `APIConnectionError` (the refusal is its `__cause__`)
and retries them unless `max_retries=0`; streamed answers raise the refusal itself while
iterating. Only signed endpoints (chat completions, embeddings) are checked; other paths
(models, attestation) pass through once the gateway is attested.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx

from veil.inference.receipt import ECDSA, ED25519
from veil.inference.verify import (
    AttestedGateway,
    CheckedResponse,
    StreamCheck,
    VerificationRefused,
    check_algo,
    check_signature,
    fresh_nonce,
    verify_report,
)
from veil.tee.collateral import Collateral, CollateralCache
from veil.tee.policy import DEFAULT_POLICY, Policy

SIGNED_PATHS = ("/v1/chat/completions", "/v1/embeddings")
# a proxy on the way must not compress a signed answer: the signature covers the plain bytes
IDENTITY = "identity"


class _Verifier:
    """What the sync and async transports share: the policy, the attested gateway, the checks."""

    def __init__(
        self,
        gateway_url: str,
        policy: Policy,
        collateral: Collateral | CollateralCache | None,
        signing_algo: str,
    ) -> None:
        self.url = httpx.URL(gateway_url.rstrip("/") + "/")
        self.policy = policy
        self.collateral = collateral
        self.signing_algo = check_algo(signing_algo)
        self.gateway: AttestedGateway | None = None
        self.failure: VerificationRefused | None = None
        self.checked: list[CheckedResponse] = []

    def report_request(self, algo: str, nonce: bytes) -> httpx.Request:
        return httpx.Request(
            "GET",
            self.url.join("v1/attestation/report"),
            params={"nonce": nonce.hex(), "signing_algo": algo},
        )

    def signature_request(self, receipt_id: str) -> httpx.Request:
        return httpx.Request(
            "GET",
            self.url.join(f"v1/signature/{receipt_id}"),
            params={"signing_algo": self.signing_algo},
        )

    def algos(self) -> list[str]:
        # receipts are ECDSA (EIP-712): the ECDSA key is attested even when ed25519 is chosen
        return [ECDSA] if self.signing_algo == ECDSA else [ECDSA, ED25519]

    def judge_report(self, algo: str, nonce: bytes, response: httpx.Response) -> AttestedGateway:
        if response.status_code != 200:
            raise VerificationRefused(
                "report_unavailable", f"attestation report: HTTP {response.status_code}"
            )
        try:
            body = json.loads(response.content)
        except ValueError:
            raise VerificationRefused("bad_report", "attestation report is not JSON") from None
        return verify_report(body, nonce, self.policy, self.collateral, signing_algo=algo)

    def combine(self, reports: list[AttestedGateway]) -> AttestedGateway:
        first = reports[0]
        if len(reports) == 1:
            return first
        ed = reports[1]
        if ed.attestation_digest and ed.attestation_digest != first.attestation_digest:
            raise VerificationRefused("bad_report", "the two reports describe different TDs")
        return replace(
            ed, ecdsa_address=first.ecdsa_address, attestation_digest=first.attestation_digest
        )

    def remember(
        self, gateway: AttestedGateway | None, failure: VerificationRefused | None
    ) -> None:
        self.gateway, self.failure = gateway, failure

    def is_signed(self, request: httpx.Request) -> bool:
        return request.method == "POST" and request.url.path.endswith(SIGNED_PATHS)

    def receipt_id(self, response: httpx.Response) -> str:
        receipt_id = str(response.headers.get("x-receipt-id", ""))
        if not receipt_id:
            raise VerificationRefused("unsigned_response", "the answer has no x-receipt-id")
        return receipt_id

    def judge_signature(
        self,
        answer: httpx.Response,
        request_body: bytes,
        response_body: bytes | None = None,
        response_hash: str | None = None,
    ) -> CheckedResponse:
        assert self.gateway is not None
        if answer.status_code != 200:
            raise VerificationRefused(
                "unsigned_response", f"signature lookup: HTTP {answer.status_code}"
            )
        try:
            body = json.loads(answer.content)
        except ValueError:
            raise VerificationRefused("bad_signature", "signature answer is not JSON") from None
        checked = check_signature(
            self.gateway, body, request_body, response_body, response_hash=response_hash
        )
        self.checked.append(checked)
        return checked


class VerifyingTransport(httpx.BaseTransport):
    """Sync transport: attests once (fresh nonce), then checks every signed answer."""

    def __init__(
        self,
        gateway_url: str,
        policy: Policy = DEFAULT_POLICY,
        *,
        collateral: Collateral | CollateralCache | None = None,
        signing_algo: str = ECDSA,
        inner: httpx.BaseTransport | None = None,
    ) -> None:
        self.verifier = _Verifier(gateway_url, policy, collateral, signing_algo)
        self.inner = inner or httpx.HTTPTransport()

    @property
    def gateway(self) -> AttestedGateway | None:
        return self.verifier.gateway

    @property
    def checked(self) -> list[CheckedResponse]:
        return self.verifier.checked

    def _fetch(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        response.close()
        return response

    def attest(self) -> AttestedGateway:
        """Verify the gateway now (cached; a refusal is cached too: it fails closed)."""
        v = self.verifier
        if v.failure is not None:
            raise v.failure
        if v.gateway is None:
            try:
                reports = []
                for algo in v.algos():
                    nonce = fresh_nonce()
                    answer = self._fetch(v.report_request(algo, nonce))
                    reports.append(v.judge_report(algo, nonce, answer))
                v.remember(v.combine(reports), None)
            except VerificationRefused as refusal:
                v.remember(None, refusal)
                raise
        assert v.gateway is not None
        return v.gateway

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.attest()
        v = self.verifier
        if not v.is_signed(request):
            return self.inner.handle_request(request)
        request_body = request.read()
        request.headers["Accept-Encoding"] = IDENTITY  # hashes are over the bytes as sent
        response = self.inner.handle_request(request)
        if response.status_code != 200:
            return response
        receipt_id = v.receipt_id(response)
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            check = StreamCheck()

            def finish() -> None:
                digest = check.finish()
                answer = self._fetch(v.signature_request(receipt_id))
                v.judge_signature(answer, request_body, response_hash=digest)

            stream = _SyncChecked(response.stream, check, finish)
            return httpx.Response(
                response.status_code,
                headers=response.headers,
                stream=stream,
                extensions=response.extensions,
            )
        body = response.read()
        response.close()
        v.judge_signature(self._fetch(v.signature_request(receipt_id)), request_body, body)
        return httpx.Response(
            response.status_code, headers=response.headers, content=body,
            extensions=response.extensions,
        )  # fmt: skip

    def close(self) -> None:
        self.inner.close()


class _SyncChecked(httpx.SyncByteStream):
    """Yields only lines already checked; the signature is checked at the end of the stream.

    openai stops reading at `data: [DONE]` and closes: closing then reads the few bytes left
    (the last running hash) and checks the signature, so the refusal still reaches the
    caller. A stream abandoned before [DONE] is closed unverified: nothing was signed yet.
    """

    def __init__(self, inner: Any, check: StreamCheck, finish: Callable[[], None]) -> None:
        self.inner, self.check, self.finish = inner, check, finish
        self.chunks = iter(inner)

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            verified = self.check.feed(chunk)
            if verified:
                yield verified
        if not self.check.finished:
            self.finish()
        if self.check.pending:
            yield self.check.pending

    def close(self) -> None:
        try:
            if self.check.saw_done and not self.check.finished:
                for chunk in self.chunks:
                    self.check.feed(chunk)
                self.finish()
        finally:
            close = getattr(self.inner, "close", None)
            if close is not None:
                close()


class AsyncVerifyingTransport(httpx.AsyncBaseTransport):
    """Async twin of VerifyingTransport, for `openai.AsyncOpenAI(http_client=...)`."""

    def __init__(
        self,
        gateway_url: str,
        policy: Policy = DEFAULT_POLICY,
        *,
        collateral: Collateral | CollateralCache | None = None,
        signing_algo: str = ECDSA,
        inner: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.verifier = _Verifier(gateway_url, policy, collateral, signing_algo)
        self.inner = inner or httpx.AsyncHTTPTransport()

    @property
    def gateway(self) -> AttestedGateway | None:
        return self.verifier.gateway

    @property
    def checked(self) -> list[CheckedResponse]:
        return self.verifier.checked

    async def _fetch(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await response.aread()
        await response.aclose()
        return response

    async def attest(self) -> AttestedGateway:
        v = self.verifier
        if v.failure is not None:
            raise v.failure
        if v.gateway is None:
            try:
                reports = []
                for algo in v.algos():
                    nonce = fresh_nonce()
                    answer = await self._fetch(v.report_request(algo, nonce))
                    reports.append(v.judge_report(algo, nonce, answer))
                v.remember(v.combine(reports), None)
            except VerificationRefused as refusal:
                v.remember(None, refusal)
                raise
        assert v.gateway is not None
        return v.gateway

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self.attest()
        v = self.verifier
        if not v.is_signed(request):
            return await self.inner.handle_async_request(request)
        request_body = await request.aread()
        request.headers["Accept-Encoding"] = IDENTITY
        response = await self.inner.handle_async_request(request)
        if response.status_code != 200:
            return response
        receipt_id = v.receipt_id(response)
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            check = StreamCheck()

            async def finish() -> None:
                digest = check.finish()
                answer = await self._fetch(v.signature_request(receipt_id))
                v.judge_signature(answer, request_body, response_hash=digest)

            return httpx.Response(
                response.status_code,
                headers=response.headers,
                stream=_AsyncChecked(response.stream, check, finish),
                extensions=response.extensions,
            )
        body = await response.aread()
        await response.aclose()
        answer = await self._fetch(v.signature_request(receipt_id))
        v.judge_signature(answer, request_body, body)
        return httpx.Response(
            response.status_code, headers=response.headers, content=body,
            extensions=response.extensions,
        )  # fmt: skip

    async def aclose(self) -> None:
        await self.inner.aclose()


class _AsyncChecked(httpx.AsyncByteStream):
    """Async twin of _SyncChecked."""

    def __init__(self, inner: Any, check: StreamCheck, finish: Callable[[], Any]) -> None:
        self.inner, self.check, self.finish = inner, check, finish
        self.chunks = inner.__aiter__()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.chunks:
            verified = self.check.feed(chunk)
            if verified:
                yield verified
        if not self.check.finished:
            await self.finish()
        if self.check.pending:
            yield self.check.pending

    async def aclose(self) -> None:
        try:
            if self.check.saw_done and not self.check.finished:
                async for chunk in self.chunks:
                    self.check.feed(chunk)
                await self.finish()
        finally:
            close = getattr(self.inner, "aclose", None)
            if close is not None:
                await close()
