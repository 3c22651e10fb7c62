"""A small OpenAI-compatible backend for tests and bench/inference.py, run as its own process.

`python fake_backend.py PORT_FILE [--token-delay SECONDS] [--fixed-id ID]` serves model
`fake-llm`: chat completions answer "echo: <last user message>" one word per token, plain
or as an SSE stream (with the usage chunk when `stream_options.include_usage` is set), as
vLLM does. It writes its port to PORT_FILE once it listens, so tests never guess a free port.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

MODEL = "fake-llm"
TOKEN_DELAY = 0.0
FIXED_ID: str | None = None  # some servers answer one constant id: the gateway must cope


def _reply(body: dict[str, Any]) -> list[str]:
    messages = body.get("messages") or [{}]
    text = str(messages[-1].get("content", ""))
    return ["echo:", *text.split()]


def _prompt_tokens(body: dict[str, Any]) -> int:
    return sum(len(str(m.get("content", "")).split()) + 3 for m in body.get("messages", []))


async def models(request: Request) -> JSONResponse:
    return JSONResponse(
        {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0,
                                      "owned_by": "fake"}]}
    )  # fmt: skip


async def chat(request: Request) -> Any:
    body = await request.json()
    if body.get("model") != MODEL:
        return JSONResponse(
            {"error": {"message": f"model {body.get('model')!r} not found", "code": 404}}, 404
        )
    words = _reply(body)
    chat_id = FIXED_ID or f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    usage = {
        "prompt_tokens": _prompt_tokens(body),
        "completion_tokens": len(words),
        "total_tokens": _prompt_tokens(body) + len(words),
    }
    if not body.get("stream"):
        return JSONResponse({
            "id": chat_id, "object": "chat.completion", "created": created, "model": MODEL,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": " ".join(words)}}],
            "usage": usage,
        })  # fmt: skip

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        doc = {"id": chat_id, "object": "chat.completion.chunk", "created": created,
               "model": MODEL,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
        return b"data: " + json.dumps(doc).encode() + b"\n\n"

    async def events() -> Any:
        yield chunk({"role": "assistant", "content": ""})
        for i, word in enumerate(words):
            if TOKEN_DELAY:
                await asyncio.sleep(TOKEN_DELAY)
            yield chunk({"content": word if i == 0 else " " + word})
        yield chunk({}, "stop")
        if (body.get("stream_options") or {}).get("include_usage"):
            doc = {"id": chat_id, "object": "chat.completion.chunk", "created": created,
                   "model": MODEL, "choices": [], "usage": usage}  # fmt: skip
            yield b"data: " + json.dumps(doc).encode() + b"\n\n"
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


app = Starlette(
    routes=[
        Route("/v1/models", models),
        Route("/v1/chat/completions", chat, methods=["POST"]),
    ]
)


def main() -> None:
    global TOKEN_DELAY, FIXED_ID
    port_file = Path(sys.argv[1])
    if "--token-delay" in sys.argv:
        TOKEN_DELAY = float(sys.argv[sys.argv.index("--token-delay") + 1])
    if "--fixed-id" in sys.argv:
        FIXED_ID = sys.argv[sys.argv.index("--fixed-id") + 1]
    sock = socket.socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted sockets inherit it
    sock.bind(("127.0.0.1", 0))
    tmp = port_file.with_suffix(".tmp")
    tmp.write_text(str(sock.getsockname()[1]))
    tmp.replace(port_file)
    config = uvicorn.Config(app, log_level="warning", backlog=2048)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
