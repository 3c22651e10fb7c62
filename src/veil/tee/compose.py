"""The compose hash dstack measures into RTMR3 as the `compose-hash` event.

A dstack CVM extends RTMR3 with sha256 of the app-compose.json bytes it booted with.
dstack's SDKs (TypeScript and Python `get_compose_hash`) produce those bytes
deterministically: top-level keys whose value is null are dropped, object keys are
sorted recursively, output is compact (`,` and `:` without spaces), non-ASCII is kept as
UTF-8, and NaN/Infinity become null. `canonical_app_compose` reproduces that form, so a
hash computed here from any equivalent JSON matches what a CVM deployed through dstack
tooling measures. `raw_compose_hash` hashes a file's bytes verbatim, which is what the
CVM measures when someone hand-wrote the file.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from veil.errors import InputError
from veil.tee.document import json_document

#: Nested objects whose declared fields the SDK drops when null (extra fields are kept).
_NULL_DROPPED_FIELDS = {
    "docker_config": {"registry", "username", "token_key"},
    "requirements": {
        "os_version",
        "platforms",
        "tdx_measure_acpi_tables",
        "launch_token_hash",
        "gpu_policy",
    },
}


def _finite(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def canonical_app_compose(app_compose: dict[str, Any]) -> str:
    """The deterministic JSON text dstack tooling writes for an app-compose document."""
    if not isinstance(app_compose, dict):
        raise InputError("app-compose: expected a JSON object")
    if "runner" not in app_compose:
        raise InputError("app-compose: missing required field 'runner'")
    data: dict[str, Any] = {}
    for key, value in app_compose.items():
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            continue  # the SDK turns top-level NaN/Infinity into null, then drops nulls
        if key in _NULL_DROPPED_FIELDS and isinstance(value, dict):
            dropped = _NULL_DROPPED_FIELDS[key]
            value = {k: v for k, v in value.items() if not (k in dropped and v is None)}
        data[key] = value
    return json.dumps(
        _sorted(_finite(data)), separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def compose_hash(app_compose: dict[str, Any]) -> str:
    """sha256 (hex) of the canonical app-compose text: the value of RTMR3 `compose-hash`."""
    return hashlib.sha256(canonical_app_compose(app_compose).encode()).hexdigest()


def raw_compose_hash(data: bytes) -> str:
    """sha256 (hex) of app-compose bytes exactly as given (what a CVM booted with them measures)."""
    return hashlib.sha256(data).hexdigest()


def load_app_compose(data: bytes, name: str = "app-compose") -> dict[str, Any]:
    """Parse app-compose JSON bytes; one clear line when they are not a JSON object."""
    parsed = json_document(data, name)
    if not isinstance(parsed, dict):
        raise InputError(f"{name}: expected a JSON object")
    return parsed
