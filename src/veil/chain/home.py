"""Where veil keeps what it writes, so an installed veil works outside the repository.

Nothing is located relative to the source tree. State (devnet, worker, demo) lives under
`$VEIL_HOME`, default `./.veil` in the working directory, and deployment records under
`$VEIL_DEPLOYMENTS_DIR`, default `./deployments`: run from a project directory (the
repository root included) both sit beside the project, as they always have. Compiled
contracts are a cache keyed by their sources' hash, shared by every project of the user.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "VEIL_HOME"
DEPLOYMENTS_ENV = "VEIL_DEPLOYMENTS_DIR"
CACHE_ENV = "VEIL_CACHE_DIR"


def veil_home() -> Path:
    """`$VEIL_HOME`, else `.veil` in the working directory."""
    return Path(os.environ.get(HOME_ENV) or ".veil")


def deployments_dir() -> Path:
    """`$VEIL_DEPLOYMENTS_DIR`, else `deployments` in the working directory."""
    return Path(os.environ.get(DEPLOYMENTS_ENV) or "deployments")


def cache_dir() -> Path:
    """`$VEIL_CACHE_DIR`, else veil's directory in the user's cache (XDG)."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "veil"
