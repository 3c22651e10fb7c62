"""The resume record both RPC readers share (accounts and Phala staking items)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from veil.errors import InputError
from veil.migration.page_log import PageLog

HEADER = {"format": "test-progress-v1", "at": "0x" + "ab" * 32}
A, B = "0x" + "aa" * 32, "0x" + "bb" * 32


def _log(path: Path, prefixes: list[str] | None = None) -> PageLog:
    return PageLog(path, HEADER, prefixes or [A, B], "progress file", "node, block or prefix")


def test_pages_survive_a_restart_per_prefix(tmp_path: Path) -> None:
    path = tmp_path / "p.partial"
    first = _log(path)
    first.append(A, [(A + "01", "0x01")], A + "01", False, ["0xn1"])
    first.append(B, [(B + "01", "0x02")], B + "01", True, ["0xn2"])
    again = _log(path)
    again.load()
    assert again.items[A].pairs == [(A + "01", "0x01")] and not again.items[A].done
    assert again.items[A].last_key == A + "01" and again.items[A].proof == ["0xn1"]
    assert again.items[B].done and again.items[B].pairs == [(B + "01", "0x02")]


def test_a_torn_line_is_dropped_so_later_pages_are_not_hidden_behind_it(tmp_path: Path) -> None:
    path = tmp_path / "p.partial"
    log = _log(path)
    log.append(A, [(A + "01", "0x01")], A + "01", False, [])
    with path.open("a") as handle:
        handle.write('{"prefix": "' + A + '", "last_k')  # a crash in mid-write
    resumed = _log(path)
    resumed.load()
    assert resumed.items[A].pairs == [(A + "01", "0x01")] and resumed.items[A].last_key == A + "01"
    assert all(json.loads(line) for line in path.read_text().splitlines())
    resumed.append(A, [(A + "02", "0x02")], A + "02", True, [])
    final = _log(path)
    final.load()
    assert [k for k, _ in final.items[A].pairs] == [A + "01", A + "02"] and final.items[A].done


def test_a_first_write_cut_short_leaves_nothing_to_resume(tmp_path: Path) -> None:
    path = tmp_path / "p.partial"
    path.write_text('{"format": "test-pro')
    log = _log(path)
    log.load()
    assert not path.exists() and all(not item.pairs for item in log.items.values())


def test_a_file_for_another_block_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "p.partial"
    path.write_text(json.dumps({**HEADER, "at": "0x" + "cd" * 32}) + "\n")
    with pytest.raises(InputError, match=r"progress file is for another node, block or prefix"):
        _log(path).load()


def test_pages_written_before_prefixes_were_recorded_load_for_a_single_prefix(
    tmp_path: Path,
) -> None:
    path = tmp_path / "p.partial"
    page = {"last_key": A + "01", "done": False, "pairs": [[A + "01", "0x01"]], "proof": []}
    path.write_text(json.dumps(HEADER) + "\n" + json.dumps(page) + "\n")
    log = _log(path, [A])
    log.load()
    assert log.items[A].pairs == [(A + "01", "0x01")]
