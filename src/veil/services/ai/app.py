"""`veil ai serve`: an OpenAI-compatible gateway inside the CVM that signs every answer.

It proxies chat completions (plain and SSE streams) and embeddings to an OpenAI-compatible
backend (vLLM, llama.cpp server), serves all-MiniLM-L6-v2 embeddings itself, and answers
the vllm-proxy attestation and signature routes. The signing format lives in
`veil.inference.receipt` so that the verifier and this server cannot drift apart.

Errors are `{code, message, request_id}` (with `X-Request-Id`) plus OpenAI's `error` object,
so both veil tools and the openai package read them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import re
import sqlite3
import subprocess
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse

from veil.compute.quote_source import QuoteError, QuoteSource
from veil.errors import InputError
from veil.inference.embedding import MODEL_NAME, EmbeddingModel
from veil.inference.metering import TokenPrice, metered, price_of
from veil.inference.receipt import (
    ECDSA,
    ED25519,
    SIGNING_ALGOS,
    Receipt,
    SigningKeys,
    StreamFramer,
    attestation_digest,
    report_data,
    signature_text,
)
from veil.inference.verify import attested_identity, quote_measurements
from veil.inference.voucher import VOUCHER_PATH, voucher_json
from veil.services.ai.store import ReceiptStore, StoredReceipt, UsageRow
from veil.tee.evidence import evidence_from_json
from veil.tee.identity import app_identity

_log = logging.getLogger(__name__)
_NONCE = re.compile(r"(0x)?[0-9a-fA-F]{64}")
_BOOT_NONCE = hashlib.sha256(b"veil-ai-gateway boot").digest()


@dataclass
class GatewayConfig:
    """What `veil ai serve` was told; tests build one directly."""

    state_dir: Path
    quote_source: QuoteSource
    backend: str | None = None
    backend_key: str | None = None
    embedding_model: EmbeddingModel | None = None
    retention_days: int = 30
    usage_token: str | None = None
    backend_timeout: float = 600.0
    nonce_memory: int = 100_000
    gpu_evidence: Callable[[bytes], bytes] | None = None
    #: Per-token billing: wei per prompt/completion token by model (`*` for any other),
    #: and the lease whose meter this gateway is, in which market on which chain.
    prices: dict[str, TokenPrice] = field(default_factory=dict)
    lease_id: int | None = None
    market: str | None = None
    chain_id: int | None = None

    @property
    def metering(self) -> bool:
        return self.lease_id is not None

    def check_metering(self) -> None:
        """Metering needs all of lease, market and chain id, and a price table: a voucher
        missing any of them could not be charged, or would charge nothing."""
        given = {"lease id": self.lease_id, "market": self.market, "chain id": self.chain_id}
        missing = [name for name, value in given.items() if value is None]
        if missing and len(missing) < len(given):
            raise InputError(f"metering: {', '.join(missing)} missing (give all three or none)")
        if self.metering and not self.prices:
            raise InputError("metering: no price table (--price MODEL=PROMPT_WEI:COMPLETION_WEI)")


#: The facts a veil cloud worker tells a billed app (`veil.cloud.agent.lease_env`).
LEASE_FACTS = ("VEIL_LEASE_ID", "VEIL_MARKET", "VEIL_CHAIN_ID")


def user_config_lease(path: Path) -> dict[str, str]:
    """The lease facts in a dstack CVM's user config (a JSON object); {} when it has none.

    Under the dstack runtime the worker cannot set a container's environment (the CVM
    decrypts its own env, and the facts must stay out of it), so it puts them in the VM's
    `user_config`, which dstack stores unmeasured at `/dstack/.host-shared/.user-config`.
    A missing or empty file, or a directory (docker creates one for a bind mount whose file
    is absent), means an app without a lease. The facts are not trusted for anything: they
    only name the lease the vouchers are for, and a voucher for a lease whose meter is
    another key pays nothing.
    """
    try:
        text = path.read_text() if path.is_file() else ""
    except OSError as error:
        raise InputError(f"--user-config {path}: cannot read ({error.strerror})") from None
    if not text.strip():
        return {}
    try:
        document = json.loads(text)
    except ValueError:
        raise InputError(f"--user-config {path}: not JSON") from None
    if not isinstance(document, dict):
        raise InputError(f"--user-config {path}: expected a JSON object")
    return {key: str(document[key]) for key in LEASE_FACTS if document.get(key) is not None}


def gpu_evidence_command(argv: list[str], timeout: float = 120.0) -> Callable[[bytes], bytes]:
    """NVIDIA evidence from an operator's command, run with the client's nonce (hex) appended.

    Why a command: collecting GPU evidence needs NVIDIA's nvtrust tools and driver inside
    the CVM, which veil does not bundle. The command prints the verifier's claim set (JSON,
    `eat_nonce` = the nonce); the gateway binds its sha256 into RTMR3 with the quote.
    """

    def collect(nonce: bytes) -> bytes:
        try:
            done = subprocess.run(
                [*argv, nonce.hex()], capture_output=True, timeout=timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise QuoteError(f"gpu evidence command {argv[0]}: {error}") from None
        if done.returncode != 0:
            detail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
            raise QuoteError(f"gpu evidence command exited {done.returncode}: {detail[0]}")
        return done.stdout

    return collect


class GatewayError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(status: int, code: str, message: str) -> JSONResponse:
    request_id = uuid.uuid4().hex
    body = {
        "code": code,
        "message": message,
        "request_id": request_id,
        "error": {"message": message, "type": "invalid_request_error", "code": code},
    }
    return JSONResponse(body, status_code=status, headers={"X-Request-Id": request_id})


class Gateway:
    """The gateway's state: keys, the boot attestation digest, the backend client, the store."""

    def __init__(self, config: GatewayConfig) -> None:
        config.check_metering()
        self.config = config
        #: (tokens, wei) metered under this key: only answers whose receipts are committed,
        #: in memory because the key is; a restart starts a new key from zero.
        self.metered: tuple[int, int] = (0, 0)
        self.keys = SigningKeys()
        self.store = ReceiptStore(
            config.state_dir / "receipts.sqlite", config.retention_days * 86_400
        )
        evidence = json.loads(
            config.quote_source.evidence(report_data(self._bound(ECDSA), _BOOT_NONCE))
        )
        measurements = quote_measurements(bytes.fromhex(evidence["quote"].removeprefix("0x")))
        events = evidence_from_json(evidence, "boot evidence").event_log
        identity = attested_identity(measurements, app_identity(events) if events else None)
        self.attestation_digest = attestation_digest(identity, self.keys.ecdsa_address)
        self.simulated = bool(evidence.get("simulated", False))
        self.client: httpx.AsyncClient | None = None
        self._nonces: OrderedDict[str, None] = OrderedDict()
        self.pending: dict[str, asyncio.Event] = {}
        self._queue: list[tuple[Any, ...]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.session: aiohttp.ClientSession | None = None

    def signed(
        self,
        content: bytes,
        receipt_id: str,
        endpoint: str,
        model: str,
        customer: str,
        request_body: bytes,
        prompt_tokens: int,
        completion_tokens: int,
    ) -> Response:
        """The answer now; its signatures and receipt follow in the next batch (`enqueue`)."""
        response_hash = hashlib.sha256(content).hexdigest()
        self.enqueue(receipt_id, endpoint, model, customer, request_body, response_hash,
                     prompt_tokens, completion_tokens)  # fmt: skip
        return Response(
            content, 200, media_type="application/json", headers={"x-receipt-id": receipt_id}
        )

    def enqueue(
        self,
        receipt_id: str,
        endpoint: str,
        model: str,
        customer: str,
        request_body: bytes,
        response_hash: str,
        prompt_tokens: int,
        completion_tokens: int,
    ) -> None:
        """Queue an answer's receipt; a flusher signs and commits the queue in batches.

        Why off the response path: signing three ways and a SQLite commit cost more than
        the rest of the gateway's work per answer, and the caller need not wait for them.
        Why batches: everything queued while a commit runs goes in the next transaction,
        so under load there is one commit per batch, not per answer. The guarantee stays:
        `GET /v1/signature/{id}` waits on the id's pending event, set only after its
        receipt is committed, so no receipt is served before it is durable; shutdown
        drains the queue before the store closes. The receipt's time is the answer's.
        """
        self.pending.setdefault(receipt_id, asyncio.Event())
        item = (receipt_id, endpoint, model, customer, request_body, response_hash,
                prompt_tokens, completion_tokens, int(time.time()))  # fmt: skip
        self._queue.append(item)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                await run_in_threadpool(self._sign_and_store, batch)
            except Exception:  # the flusher must outlive a bad batch; those ids answer 404
                _log.exception("receipts of %d answers could not be stored", len(batch))
            finally:
                for item in batch:
                    done = self.pending.pop(item[0], None)
                    if done is not None:
                        done.set()

    async def drain(self) -> None:
        """Wait until every queued receipt is committed (at shutdown)."""
        while self._flusher is not None and not self._flusher.done():
            await self._flusher

    def _sign_and_store(self, batch: list[tuple[Any, ...]]) -> None:
        """One transaction for the batch; if it fails, each receipt alone, so one bad row
        (a duplicate id) costs only its own receipt, never its neighbours'."""
        rows = [self._signed_receipt(*item) for item in batch]
        try:
            self.store.add_many(rows)
            self._meter([usage for _, usage in rows])
        except sqlite3.Error:
            for row in rows:
                with contextlib.suppress(sqlite3.Error):
                    self.store.add(*row)
                    self._meter([row[1]])

    def _meter(self, rows: list[UsageRow]) -> None:
        """Add committed answers to the meter. Runs in the one flusher, so never twice at
        once; the tuple is replaced whole, so a voucher reads a consistent pair.

        An answer naming a model without a price (a backend that renames the requested,
        priced model) is left out, tokens too, and logged: it costs the provider, never
        the customer, and keeps every voucher re-derivable from receipts and prices.
        """
        if not self.config.metering:
            return
        priced = []
        for row in rows:
            if price_of(self.config.prices, row.model) is None:
                _log.warning("answer %s names unpriced model %r: not metered", row.receipt_id,
                             row.model)  # fmt: skip
            else:
                priced.append(row)
        tokens, amount = metered(priced, self.config.prices)
        self.metered = (self.metered[0] + tokens, self.metered[1] + amount)

    def require_price(self, model: str) -> None:
        """Refuse, before the backend is asked, a model the meter could not bill."""
        if self.config.metering and price_of(self.config.prices, model) is None:
            raise GatewayError(400, "model_not_priced", f"model {model!r} has no price here")

    async def committed(self, timeout: float = 5.0) -> None:
        """Wait (a little) for answers already sent to be committed, so a voucher counts
        them; under constant load the next voucher counts the rest."""
        flusher = self._flusher
        if flusher is not None and not flusher.done():
            await asyncio.wait([flusher], timeout=timeout)

    def unique_id(self, chat_id: str) -> str:
        """The chat id as receipt id, unless a backend repeats ids: then a fresh suffix.

        A receipt id must name one answer only; a backend that reuses ids (some test
        servers answer a constant) would otherwise make one id point at two answers.
        """
        if not chat_id:
            return f"chatcmpl-{uuid.uuid4().hex}"
        if chat_id in self.pending or self.store.exists(chat_id):
            return f"{chat_id}-{uuid.uuid4().hex[:12]}"
        return chat_id

    def _bound(self, algo: str) -> bytes:
        return bytes.fromhex(self.keys.address(algo).removeprefix("0x"))

    def backend_client(self) -> httpx.AsyncClient:
        if self.client is None:
            headers = {}
            if self.config.backend_key:
                headers["Authorization"] = f"Bearer {self.config.backend_key}"
            self.client = httpx.AsyncClient(
                base_url=self.config.backend or "",
                headers=headers,
                timeout=httpx.Timeout(self.config.backend_timeout, connect=10.0),
                # drop idle backend connections before a 5 s server keep-alive closes them
                limits=httpx.Limits(
                    max_connections=1000, max_keepalive_connections=200, keepalive_expiry=2.0
                ),
            )
        return self.client

    async def backend_post(self, path: str, raw: bytes) -> tuple[int, bytes]:
        """POST a JSON body to the backend: (status, body).

        Why aiohttp here and httpx elsewhere: this is the path every plain answer takes,
        and aiohttp's client costs about 0.2 ms of CPU per request against httpx's 0.85 ms
        (measured against tests/services/ai/fake_backend.py), most of the gateway's own
        cost. Streams and /v1/models stay on httpx.
        """
        if self.session is None:
            headers = {"Content-Type": "application/json"}
            if self.config.backend_key:
                headers["Authorization"] = f"Bearer {self.config.backend_key}"
            self.session = aiohttp.ClientSession(
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.config.backend_timeout, connect=10.0),
                # idle backend connections close before a 5 s server keep-alive closes them
                connector=aiohttp.TCPConnector(limit=1000, keepalive_timeout=2.0),
            )
        try:
            async with self.session.post(f"{self.config.backend}{path}", data=raw) as answer:
                return answer.status, await answer.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            detail = str(error) or type(error).__name__
            raise GatewayError(502, "backend_unavailable", f"inference backend: {detail}") from None

    def remember_nonce(self, nonce: str) -> bool:
        """False when this nonce was already answered (a client must never reuse one)."""
        if nonce in self._nonces:
            return False
        self._nonces[nonce] = None
        while len(self._nonces) > self.config.nonce_memory:
            self._nonces.popitem(last=False)
        return True

    def _signed_receipt(
        self,
        receipt_id: str,
        endpoint: str,
        model: str,
        customer: str,
        request_body: bytes,
        response_hash: str,
        prompt_tokens: int,
        completion_tokens: int,
        now: int,
    ) -> tuple[StoredReceipt, UsageRow]:
        """Sign the exchange three ways (ECDSA text, ed25519 text, EIP-712)."""
        request_hash = hashlib.sha256(request_body).hexdigest()
        text = signature_text(request_hash, response_hash)
        receipt = Receipt(
            id=receipt_id,
            request_hash=request_hash,
            response_hash=response_hash,
            model=model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            attestation_digest=self.attestation_digest,
            issued_at=now,
        )
        stored = StoredReceipt(
            id=receipt_id,
            created_at=now,
            text=text,
            signatures={
                ECDSA: (self.keys.sign_text(text, ECDSA), self.keys.ecdsa_address),
                ED25519: (self.keys.sign_text(text, ED25519), self.keys.ed25519_public_key),
            },
            receipt=receipt.message(),
            receipt_signature=self.keys.sign_receipt(receipt),
        )
        usage = UsageRow(
            receipt_id, now, endpoint, model, customer, prompt_tokens, completion_tokens
        )
        return stored, usage


def _customer(request: Request) -> str:
    """Who to bill: a hash of the bearer key (the cloud gateway in front authenticates it)."""
    auth = request.headers.get("authorization", "")
    if not auth:
        return "-"
    return hashlib.sha256(auth.encode()).hexdigest()[:16]


def _json_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise GatewayError(400, "bad_json", "request body is not JSON") from None
    if not isinstance(body, dict):
        raise GatewayError(400, "bad_json", "request body must be a JSON object")
    return body


def _usage(body: Any) -> tuple[int, int]:
    usage = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(usage, dict):
        return 0, 0
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


def create_app(config: GatewayConfig) -> FastAPI:
    gateway = Gateway(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await gateway.drain()
        if gateway.client is not None:
            await gateway.client.aclose()
        if gateway.session is not None:
            await gateway.session.close()
        gateway.store.close()

    app = FastAPI(
        lifespan=lifespan,
        title="veil AI gateway",
        version="1",
        description="OpenAI-compatible inference inside an attested CVM; every answer signed.",
    )
    app.state.gateway = gateway

    @app.exception_handler(GatewayError)
    async def _gateway_error(request: Request, error: GatewayError) -> JSONResponse:
        return _error(error.status, error.code, error.message)

    @app.exception_handler(httpx.HTTPError)
    async def _backend_down(request: Request, error: httpx.HTTPError) -> JSONResponse:
        detail = str(error) or type(error).__name__
        return _error(502, "backend_unavailable", f"inference backend: {detail}")

    def need_backend() -> httpx.AsyncClient:
        if not config.backend:
            raise GatewayError(503, "no_backend", "this gateway has no inference backend")
        return gateway.backend_client()

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        data: list[dict[str, Any]] = []
        if config.backend:
            answer = await gateway.backend_client().get("/v1/models")
            if answer.status_code == 200:
                data = list(answer.json().get("data", []))
        if config.embedding_model is not None:
            data.append({"id": MODEL_NAME, "object": "model", "created": 0, "owned_by": "veil"})
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        raw = await request.body()
        body = _json_body(raw)
        client = need_backend()
        customer = _customer(request)
        model = str(body.get("model", ""))
        gateway.require_price(model)
        if body.get("stream"):
            return await _stream_chat(gateway, client, raw, body, model, customer)
        status, content = await gateway.backend_post("/v1/chat/completions", raw)
        if status != 200:
            return Response(content, status, media_type="application/json")
        try:
            parsed = json.loads(content)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise GatewayError(502, "bad_backend", "backend answered something not a JSON object")
        receipt_id = gateway.unique_id(str(parsed.get("id") or ""))
        prompt, completion = _usage(parsed)
        return gateway.signed(content, receipt_id, "chat", str(parsed.get("model") or model),
                              customer, raw, prompt, completion)  # fmt: skip

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Response:
        raw = await request.body()
        body = _json_body(raw)
        model = str(body.get("model", ""))
        customer = _customer(request)
        local = config.embedding_model is not None and (model == MODEL_NAME or not config.backend)
        gateway.require_price(MODEL_NAME if local else model)
        if not local:
            need_backend()
            status, content = await gateway.backend_post("/v1/embeddings", raw)
            if status != 200:
                return Response(content, status, media_type="application/json")
            receipt_id = f"emb-{uuid.uuid4().hex}"
            try:
                prompt, _ = _usage(json.loads(content))
            except ValueError:
                raise GatewayError(502, "bad_backend", "backend answered non-JSON") from None
        else:
            content, prompt = await _embed_locally(gateway, body)
            receipt_id = f"emb-{uuid.uuid4().hex}"
            model = MODEL_NAME  # what answered, as the answer says (and what is priced)
        return gateway.signed(content, receipt_id, "embeddings", model, customer, raw, prompt, 0)

    @app.get("/v1/attestation/report")
    async def attestation_report(
        nonce: str | None = None, signing_algo: str = ECDSA
    ) -> dict[str, Any]:
        if not nonce:
            raise GatewayError(400, "nonce_required", "pass nonce=<32-byte hex> (yours, fresh)")
        if not _NONCE.fullmatch(nonce):
            raise GatewayError(400, "bad_nonce", "nonce must be 32 bytes of hex")
        if signing_algo not in SIGNING_ALGOS:
            raise GatewayError(400, "bad_signing_algo", "signing_algo must be ecdsa or ed25519")
        nonce_bytes = bytes.fromhex(nonce.removeprefix("0x"))
        if not gateway.remember_nonce(nonce_bytes.hex()):
            raise GatewayError(400, "nonce_reused", "this nonce was already used; take a new one")
        data = report_data(gateway._bound(signing_algo), nonce_bytes)
        try:
            gpu = None
            if config.gpu_evidence is not None:
                gpu = await run_in_threadpool(config.gpu_evidence, nonce_bytes)
            text = await run_in_threadpool(config.quote_source.evidence, data, gpu)
        except QuoteError as error:
            raise GatewayError(503, "quote_unavailable", str(error)) from None
        evidence = json.loads(text)
        event_log = evidence.get("event_log")
        return {
            "signing_address": gateway.keys.address(signing_algo),
            "signing_algo": signing_algo,
            "signing_public_key": gateway.keys.public_key(signing_algo),
            "request_nonce": nonce_bytes.hex(),
            "intel_quote": evidence["quote"],
            "event_log": json.loads(event_log) if isinstance(event_log, str) else event_log,
            "vm_config": evidence.get("vm_config"),
            "nvidia_payload": gpu.decode() if gpu is not None else None,
            "gpu": (
                "claim set bound to this quote (RTMR3 gpu-evidence-hash) and to your nonce"
                if gpu is not None
                else "none: no NVIDIA GPU evidence on this machine"
            ),
            "simulated": bool(evidence.get("simulated", False)),
            "attestation_digest": gateway.attestation_digest,
            "tee": config.quote_source.name,
        }

    @app.get("/v1/signature/{receipt_id}")
    async def signature(receipt_id: str, signing_algo: str = ECDSA) -> dict[str, Any]:
        if signing_algo not in SIGNING_ALGOS:
            raise GatewayError(400, "bad_signing_algo", "signing_algo must be ecdsa or ed25519")
        pending = gateway.pending.get(receipt_id)
        if pending is not None:
            await asyncio.wait_for(pending.wait(), timeout=30)
        stored = gateway.store.get(receipt_id)
        if stored is None:
            raise GatewayError(404, "receipt_not_found", f"no receipt {receipt_id!r} (expired?)")
        sig, address = stored.signatures[signing_algo]
        return {
            "id": stored.id,
            "text": stored.text,
            "signature": sig,
            "signing_address": address,
            "signing_algo": signing_algo,
            "receipt": {
                "types": Receipt.from_message(stored.receipt).typed_data()["types"],
                "primaryType": "Receipt",
                "domain": Receipt.from_message(stored.receipt).typed_data()["domain"],
                "message": stored.receipt,
                "signature": stored.receipt_signature,
                "signing_address": stored.signatures[ECDSA][1],
            },
        }

    @app.get("/v1/usage")
    async def usage(request: Request, since: int = 0, until: int | None = None) -> Any:
        if not config.usage_token:
            raise GatewayError(404, "usage_disabled", "start the gateway with --usage-token")
        if request.headers.get("authorization") != f"Bearer {config.usage_token}":
            raise GatewayError(401, "unauthorized", "usage needs the gateway's usage token")
        rows = gateway.store.usage(since, until)
        return {"data": [row.__dict__ for row in rows]}

    @app.get(VOUCHER_PATH)
    async def usage_voucher() -> dict[str, Any]:
        """Open to anyone, unlike `/v1/usage`: a voucher can only pay the lease's provider
        what the meter counted (the chain publishes each charged voucher's counts anyway),
        and a token held by the customer would let the customer withhold payment."""
        if not config.metering:
            raise GatewayError(
                404, "metering_disabled", "start the gateway with --lease-id, --market, --chain-id"
            )
        await gateway.committed()
        tokens, amount = gateway.metered
        assert config.lease_id is not None and config.market and config.chain_id is not None
        return voucher_json(
            gateway.keys, config.chain_id, config.market, config.lease_id, tokens, amount
        )

    return app


async def _embed_locally(gateway: Gateway, body: dict[str, Any]) -> tuple[bytes, int]:
    model = gateway.config.embedding_model
    assert model is not None
    given = body.get("input")
    texts = [given] if isinstance(given, str) else given
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise GatewayError(400, "bad_input", "input must be a string or a list of strings")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise GatewayError(400, "bad_encoding_format", "encoding_format: float or base64")
    vectors, tokens = await run_in_threadpool(model.embed, texts)
    data = []
    for index, vector in enumerate(vectors):
        value: Any = (
            base64.b64encode(vector.astype("<f4").tobytes()).decode()
            if encoding == "base64"
            else [float(x) for x in vector]
        )
        data.append({"object": "embedding", "index": index, "embedding": value})
    answer = {
        "object": "list",
        "data": data,
        "model": MODEL_NAME,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return json.dumps(answer, separators=(",", ":")).encode(), tokens


def _split_events(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Complete SSE events (without their blank line) and the incomplete rest."""
    buffer = buffer.replace(b"\r\n", b"\n")
    parts = buffer.split(b"\n\n")
    return parts[:-1], parts[-1]


async def _stream_chat(
    gateway: Gateway,
    client: httpx.AsyncClient,
    raw: bytes,
    body: dict[str, Any],
    model: str,
    customer: str,
) -> Response:
    """Forward the backend's events unchanged, each followed by the running-hash comment."""
    wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    forward = dict(body)
    forward["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    request = client.build_request(
        "POST", "/v1/chat/completions", content=json.dumps(forward).encode(),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    answer = await client.send(request, stream=True)
    if answer.status_code != 200:
        content = await answer.aread()
        await answer.aclose()
        return Response(content, answer.status_code, media_type="application/json")
    chunks = answer.aiter_raw()
    buffer = b""
    first: list[bytes] = []
    # wait for the first event: its chat id is the receipt id, sent as a header
    async for chunk in chunks:
        events, buffer = _split_events(buffer + chunk)
        first.extend(events)
        if first:
            break
    receipt_id = ""
    for event in first:
        receipt_id = _event_id(event) or receipt_id
        if receipt_id:
            break
    receipt_id = gateway.unique_id(receipt_id)
    framer = StreamFramer()
    usage: dict[str, Any] = {"prompt": 0, "completion": 0, "model": model, "chunks": 0}

    def emit(event: bytes) -> bytes | None:
        data = event[6:] if event.startswith(b"data: ") else None
        if data is not None and data.strip() != b"[DONE]":
            try:
                parsed = json.loads(data)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                if isinstance(parsed.get("usage"), dict):
                    usage["prompt"], usage["completion"] = _usage(parsed)
                    if not parsed.get("choices") and not wants_usage:
                        return None  # the usage chunk we asked for, not the client
                usage["model"] = str(parsed.get("model") or usage["model"])
                usage["chunks"] += 1
        return framer.frame(event)

    def record() -> None:
        # without the backend's usage chunk, one token per content chunk (the first
        # chunk carries only the role)
        completion = usage["completion"] or max(usage["chunks"] - 1, 0)
        gateway.enqueue(receipt_id, "chat", str(usage["model"]), customer, raw,
                        framer.hexdigest(), int(usage["prompt"]), int(completion))  # fmt: skip

    async def relay() -> AsyncIterator[bytes]:
        """Why a cut-off stream is signed and metered too: the tokens handed to the client
        were generated and are billed; otherwise closing a stream just before its end would
        make any answer free. Its receipt covers the bytes handed to the connection; its
        prompt tokens are 0 when the backend's usage chunk (sent last) never came."""
        nonlocal buffer
        try:
            for event in first:
                if (out := emit(event)) is not None:
                    yield out
            async for chunk in chunks:
                events, buffer = _split_events(buffer + chunk)
                for event in events:
                    if (out := emit(event)) is not None:
                        yield out
            if buffer.strip() and (out := emit(buffer.rstrip(b"\n"))) is not None:
                yield out
        except BaseException:  # the client went away, or the backend broke off
            if usage["chunks"]:
                record()  # synchronous: a cancelled task may not await any more
            raise
        finally:
            await answer.aclose()
        record()

    return StreamingResponse(
        relay(),
        media_type="text/event-stream",
        headers={"x-receipt-id": receipt_id, "Cache-Control": "no-cache"},
    )


def _event_id(event: bytes) -> str:
    for line in event.split(b"\n"):
        if line.startswith(b"data: ") and line[6:].strip() != b"[DONE]":
            try:
                parsed = json.loads(line[6:])
            except ValueError:
                return ""
            if isinstance(parsed, dict) and parsed.get("id"):
                return str(parsed["id"])
    return ""
