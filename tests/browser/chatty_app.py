"""A customer's app for the console tests: boots slowly, logs steadily, uses some CPU,
and prints whatever `GET /say?text=...` asks, so a test can time one line end to end."""

import hashlib
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

PORT = int(sys.argv[1])
BOOT_SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        query = parse_qs(urlparse(self.path).query)
        for text in query.get("text", []):
            print(text, flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_args: object) -> None:
        pass


def chatter() -> None:
    tick = 0
    while True:
        tick += 1
        busy_until = time.monotonic() + 0.05 + 0.05 * (tick % 4)
        digest = b""
        while time.monotonic() < busy_until:
            digest = hashlib.sha256(digest).digest()
        print(f"tick {tick}: served requests, cache warm, digest {digest.hex()[:12]}", flush=True)
        time.sleep(0.4)


print(f"booting on port {PORT}", flush=True)
time.sleep(BOOT_SECONDS)
threading.Thread(target=chatter, daemon=True).start()
print("ready: listening", flush=True)
ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
