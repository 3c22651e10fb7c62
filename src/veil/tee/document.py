"""TEE evidence arrives as JSON text from many hands (workers, dstack, NRAS, a PCCS): one
reader turns any of it into parsed JSON, or into one line naming the document."""

from __future__ import annotations

import json
from typing import Any

from veil.errors import InputError


def json_document(source: Any, name: str) -> Any:
    """`source` parsed if it is JSON text (str or bytes); already-parsed data as it is."""
    if not isinstance(source, str | bytes | bytearray):
        return source
    try:
        return json.loads(source)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{name}: not JSON ({error})") from None
