"""An attester as its own process, for tests that kill it: `python attester_process.py
DB PORT_FILE HOLDERS`. It serves bindings for the first HOLDERS of binding_kit's holders
and writes its port to PORT_FILE once it listens."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from binding_kit import ATTESTER, CONTEXT, make_holders, tree_for

from veil.atomic import write_text
from veil.services.attester.service import AttesterConfig, build_server

SCHEMES = ("ed25519", "sr25519")


def main() -> None:
    db, port_file, count = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    config = AttesterConfig(
        signer=ATTESTER, db=db, port=0, tree=tree_for(make_holders(count, SCHEMES)),
        context=CONTEXT,
    )  # fmt: skip
    server = build_server(config)
    write_text(port_file, str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
