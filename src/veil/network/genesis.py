"""What the devnet allows at genesis so that simulated workers can join it.

The devnet has no TDX hardware, so its workers run the simulator. The registry only
accepts workers whose OS image and compose hash are allowlisted, and only governance can
change the allowlist after genesis; the deploy therefore allowlists the simulator's
default app before it hands ownership to the timelock. The devnet's attester policy
allows simulated TEEs; a production policy never does (it is the default: refuse).
"""

from __future__ import annotations

from veil.compute.evidence import WORKER_TAG
from veil.tee.simulator import AppSpec


def devnet_allowlist() -> tuple[list[bytes], list[bytes]]:
    """(OS image hashes, compose hashes) the simulator's default app measures into RTMR3."""
    app = AppSpec()
    return [app.os_image_hash], [app.compose_hash]


def devnet_policy() -> str:
    """The devnet attester's policy TOML: simulated TEEs allowed, only the default app."""
    images, composes = devnet_allowlist()
    return f"""\
# veil devnet attestation policy: SIMULATED TEEs are accepted (the devnet has no TDX).
# Never use this policy on a real network.
allow_simulated = true
require_event_log = true
allowed_compose_hashes = ["{composes[0].hex()}"]

[[os_images]]
name = "veil simulated os image"
os_image_hash = "{images[0].hex()}"

[report_data]
mode = "sha512"
tag = "{WORKER_TAG}"
"""
