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
]


def test_dashboard_metrics_are_exported() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert len(exprs) >= 15
    used = {name for expr in exprs for name in re.findall(r"\bveil_[a-z_]+", expr)}
    exported = set()
    for source in SOURCES:
        exported |= set(re.findall(r'"(veil_[a-z_]+)"', source.read_text()))
    assert used and used <= exported, sorted(used - exported)
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
