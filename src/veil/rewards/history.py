"""A worker's uptime and rewards per epoch, read back from the epoch reports.

`veil worker status` shows it so that a provider sees, epoch by epoch, what the report
counted and why a reward is zero (too few heartbeats, inactive), instead of learning it
from a claim that is smaller than expected.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from veil.rewards.report import rewards_dir

_REPORT = re.compile(r"^epoch-(\d+)\.json$")


def worker_history(
    worker: str, directory: Path | None = None, last: int = 24
) -> list[dict[str, Any]]:
    """The worker's rows of the `last` most recent reports that list it, oldest first."""
    folder = directory or rewards_dir()
    if not folder.is_dir():
        return []
    numbered = sorted(
        (int(m.group(1)), p) for p in folder.iterdir() if (m := _REPORT.match(p.name))
    )
    rows = []
    for epoch, path in numbered[-last:] if last > 0 else []:
        try:
            doc = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        for row in doc.get("workers", []):
            if row.get("worker", "").lower() == worker.lower():
                rows.append(
                    {
                        "epoch": epoch,
                        "uptimeBps": row["uptimeBps"],
                        "accepted": row["heartbeats"]["accepted"],
                        "expected": row["heartbeats"]["expected"],
                        "refused": row["heartbeats"]["refused"],
                        "weightBps": row["weightBps"],
                        "eligible": row["eligible"],
                        "reward": row["reward"],
                        "provider": row["provider"],
                    }
                )
                break
    return rows
