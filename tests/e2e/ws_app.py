"""A WebSocket app the cloud e2e deploys: greets with its version and a secret's presence.

On connect it sends `hello v<APP_VERSION> greeting=<yes|no>` (whether `$GREETING`, a
secret, arrived), then echoes each text message as `echo <text>`. It listens on `$PORT`.
"""

import os

from websockets.sync.server import ServerConnection, serve


def handler(connection: ServerConnection) -> None:
    present = "yes" if os.environ.get("GREETING") else "no"
    connection.send(f"hello v{os.environ.get('APP_VERSION', '?')} greeting={present}")
    for message in connection:
        connection.send(f"echo {message}")


if __name__ == "__main__":
    with serve(handler, "127.0.0.1", int(os.environ["PORT"])) as server:
        server.serve_forever()
