"""Every API test runs twice: on SQLite and on a throwaway PostgreSQL server."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cloud_fixtures import cloud, db_url, pg_base

__all__ = ["cloud", "db_url", "pg_base"]
