"""Which anvil processes are alive, read from /proc: how the devnet tests prove that an
interrupted or failed start left nothing running."""

from __future__ import annotations

from pathlib import Path


def anvil_pids(marker: str) -> list[int]:
    """Live anvil processes whose command line names `marker` (a test's own home)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and "anvil" in cmdline and state != "Z":
            found.append(int(entry.name))
    return found
