"""A tiny app the runtime tests deploy: it serves its own environment over HTTP.

`GET /env/NAME` answers the variable's value (404 if unset), `GET /crash` exits with code 3
(to test restarts), anything else answers 200 `ok <service>`. It listens on `$PORT`.
"""

import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/crash":
            print("crashing on request", flush=True)
            os._exit(3)
        if self.path.startswith("/env/"):
            value = os.environ.get(self.path[5:])
            body = (value or "").encode()
            self.send_response(200 if value is not None else 404)
        else:
            body = f"ok {os.environ.get('VEIL_SERVICE', '?')}".encode()
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        print("request", self.path, flush=True)


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ["PORT"])
    print(f"listening on {port}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
