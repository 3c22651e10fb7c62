"""The app `make demo` deploys to veil cloud: it proves it holds the secret without showing it.

`GET /` answers JSON with the app's version, the SHA-256 of `$DEMO_SECRET` (so the
customer can compare it with the hash of what they encrypted) and whether the runtime is
simulated; the secret itself is never printed, logged or served. It listens on `$PORT`
(the process runtime chooses it), so the same file runs under any runtime.
"""

from __future__ import annotations

import hashlib
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        secret = os.environ.get("DEMO_SECRET", "")
        body = json.dumps(
            {
                "app": "hello",
                "version": os.environ.get("APP_VERSION", "?"),
                "secret_sha256": hashlib.sha256(secret.encode()).hexdigest() if secret else None,
                "simulated": os.environ.get("VEIL_SIMULATED") == "1",
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: request lines would only repeat the path."""


def main() -> None:
    port = int(os.environ.get("PORT", "8080"))
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
