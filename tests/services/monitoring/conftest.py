"""Monitoring tests reuse the control-plane kit and run on SQLite and PostgreSQL."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cloud"))
from cloud_fixtures import cloud, db_url, pg_base

__all__ = ["cloud", "db_url", "pg_base"]
