"""The Grafana dashboard only charts metrics that /metrics exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "deploy" / "grafana" / "veil-dashboard.json"
SOURCES = [
    ROOT / "src" / "veil" / "services" / "cloud" / "monitoring.py",
    ROOT / "src" / "veil" / "network" / "metrics.py",
    ROOT / "src" / "veil" / "services" / "attester" / "metrics.py",
]
#: What the exposition appends to a family's name (counters, histograms).
SUFFIXES = ("_total", "_bucket", "_sum", "_count")


def _family(name: str, exported: set[str]) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in exported:
            return name[: -len(suffix)]
    return name


def test_dashboard_metrics_are_exported() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert len(exprs) >= 15
    used = {name for expr in exprs for name in re.findall(r"\bveil_[a-z_]+", expr)}
    exported = set()
    for source in SOURCES:
        exported |= set(re.findall(r'"(veil_[a-z_]+)"', source.read_text()))
    families = {_family(name, exported) for name in used}
    assert used and families <= exported, sorted(families - exported)
    # the escrow and attester rows chart the new families
    for wanted in ("veil_escrow_runway_seconds", "veil_app_runway_seconds",
                   "veil_attester_heartbeats_refused", "veil_attester_workers_seen"):  # fmt: skip
        assert wanted in families, wanted
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
