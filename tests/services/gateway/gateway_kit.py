"""An upstream app, a fake control plane route table and a server thread for gateway tests."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from server_thread import ServerThread

__all__ = ["TOKEN", "FakeRoutes", "ServerThread", "upstream_app"]

TOKEN = "gateway-test-token"


async def _echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse(
        {
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "headers": {k: v for k, v in request.headers.items()},
            "body_bytes": len(body),
        },
        headers={"Connection": "close, X-Secret-Hop", "X-Secret-Hop": "hop", "X-App": "echo"},
    )


async def _stream(request: Request) -> StreamingResponse:
    async def chunks() -> Any:
        for index in range(5):
            yield f"chunk {index}\n".encode()
            await asyncio.sleep(0.05)

    return StreamingResponse(chunks(), media_type="text/plain")


async def _ws(websocket: WebSocket) -> None:
    await websocket.accept(subprotocol=(websocket.scope.get("subprotocols") or [None])[0])
    await websocket.send_text(f"hello {websocket.headers.get('x-forwarded-proto')}")
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") == "bye":
                await websocket.close(code=4001)
                return
            if message.get("text") is not None:
                await websocket.send_text("echo " + message["text"])
            else:
                await websocket.send_bytes(bytes(reversed(message["bytes"])))
    except WebSocketDisconnect:
        return


def upstream_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/stream", _stream),
            WebSocketRoute("/ws", _ws),
            Route("/{path:path}", _echo, methods=["GET", "POST", "PUT", "DELETE"]),
        ]
    )


@dataclass
class FakeRoutes:
    """The control plane's `/v1/internal/routes` with a table the test edits."""

    table: dict[tuple[str, int], str] = field(default_factory=dict)
    stopped: set[str] = field(default_factory=set)
    calls: int = 0

    async def route(self, request: Request) -> JSONResponse:
        self.calls += 1
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"code": "unauthorized", "message": "", "request_id": "r"}, 401)
        app_id = request.path_params["app_id"].lower()
        port = int(request.path_params["port"])
        if app_id in self.stopped:
            return JSONResponse(
                {"code": "app_not_running", "message": f"app {app_id} is not running",
                 "request_id": "r"}, 503)  # fmt: skip
        url = self.table.get((app_id, port))
        if url is None:
            return JSONResponse(
                {"code": "app_not_found", "message": f"no app {app_id}", "request_id": "r"}, 404
            )
        return JSONResponse({"url": url})

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/internal/routes/{app_id}/{port}", self.route)])
