"""The resume record of a snapshot read over RPC: every proven page, as it arrives.

An RPC snapshot of a real chain takes a long time and a node or a connection can fail at
any page, so each proven page is appended (and fsynced) to a file beside the output, one
JSON line after a header naming the node's block and what is read. A rerun with the same
header continues after the last saved page of each storage prefix and yields the identical
snapshot. A line cut short by a crash is dropped, and the file is rewritten atomically
without it before anything is appended, so later pages never land behind a broken line.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from veil.atomic import write_text
from veil.errors import InputError


@dataclass
class PrefixPages:
    """What is saved under one storage prefix: its entries so far and where to go on."""

    pairs: list[tuple[str, str]] = field(default_factory=list)
    proof: list[str] = field(default_factory=list)
    last_key: str | None = None
    done: bool = False


class PageLog:
    """Append-only record of proven pages, one JSON line each after a header.

    `what` and `scope` name the file and what its header pins in the refusal of a file
    written for something else (`progress file`, `node, block or prefix`)."""

    def __init__(
        self, path: Path, header: dict[str, Any], prefixes: list[str], what: str, scope: str
    ) -> None:
        self.path = path
        self.header = header
        self.what = what
        self.scope = scope
        self.items: dict[str, PrefixPages] = {prefix: PrefixPages() for prefix in prefixes}

    def load(self) -> None:
        if not self.path.exists():
            return
        lines = self.path.read_text().splitlines()
        if not lines:
            return
        try:
            header = json.loads(lines[0])
        except json.JSONDecodeError:
            if len(lines) == 1:  # the very first write was cut short: nothing was saved
                self.path.unlink()
                return
            header = None
        if header != self.header:
            at = header.get("at") if isinstance(header, dict) else None
            raise InputError(
                f"{self.path}: {self.what} is for another {self.scope} ({at}); "
                "delete it to start over"
            )
        only = next(iter(self.items)) if len(self.items) == 1 else None
        kept = [lines[0]]
        for line in lines[1:]:
            try:
                page = json.loads(line)
                item = self.items[page.get("prefix", only)]
                pairs = [(str(k), str(v)) for k, v in page["pairs"]]
                proof = [str(node) for node in page["proof"]]
            except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
                break
            item.pairs.extend(pairs)
            item.proof.extend(proof)
            item.last_key = page["last_key"]
            item.done = bool(page["done"])
            kept.append(line)
        if len(kept) != len(lines):
            write_text(self.path, "".join(line + "\n" for line in kept))

    def append(
        self,
        prefix: str,
        pairs: list[tuple[str, str]],
        last_key: str | None,
        done: bool,
        proof: list[str],
    ) -> None:
        new_file = not self.path.exists() or self.path.stat().st_size == 0
        page = {"prefix": prefix, "last_key": last_key, "done": done, "pairs": pairs,
                "proof": proof}  # fmt: skip
        with self.path.open("a") as handle:
            if new_file:
                handle.write(json.dumps(self.header) + "\n")
            handle.write(json.dumps(page) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        item = self.items[prefix]
        item.pairs.extend(pairs)
        item.proof.extend(proof)
        item.last_key = last_key
        item.done = done
