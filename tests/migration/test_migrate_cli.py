"""`veil migrate` end to end through the real entry point: files in, files and errors out."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from veil.cli.main import main
from veil.merkle import load_tree, verify_multiproof, verify_proof
from veil.migration.binding import BindingContext, binding_message
from veil.migration.synthetic import keypair
from veil.substrate import ss58
from veil.substrate.signature import wrap_bytes

RECEIVER = "0x" + "ab" * 20
MIGRATOR = "0x" + "cd" * 20


def veil(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `veil` in process through the real `main()` (its error handling included)."""
    argv = ["veil", *map(str, args)]
    out, err = io.StringIO(), io.StringIO()
    code = 0
    saved_argv, saved_cwd = sys.argv, os.getcwd()
    try:
        sys.argv = argv
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as done:
                code = int(done.code or 0)
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def test_entry_point_in_a_real_process(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from veil.cli.main import main; main()", "migrate", "tree",
         "missing.json", "--out", "t.json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: missing.json: cannot read (No such file or directory)"
    ]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    steps = [
        ("migrate", "generate-state", "--accounts", "400", "--out", "raw.json",
         "--positions", "pos.json", "--exclusions", "exc.json", "--keys", "keys.json"),
        ("migrate", "snapshot", "--raw-state", "raw.json", "--out", "snap.json"),
        ("migrate", "ledger", "snap.json", "--positions", "pos.json", "--exclusions", "exc.json",
         "--out", "ledger.json"),
        ("migrate", "tree", "ledger.json", "--out", "tree.json"),
    ]  # fmt: skip
    for step in steps:
        done = veil(*step, cwd=folder)
        assert done.returncode == 0, done.stderr
    deployment = {"chain_id": 31337, "contracts": {"Migrator": {"address": MIGRATOR}}}
    (folder / "deployment.json").write_text(json.dumps(deployment))
    return folder


def test_pipeline_outputs_and_reconciliation(pipeline: Path) -> None:
    ledger = json.loads((pipeline / "ledger.json").read_text())
    totals = ledger["totals"]
    assert int(ledger["total_issuance_wei"]) == sum(
        int(totals[k]) for k in ("free_wei", "staked_wei", "excluded_wei")
    )
    tree = load_tree(pipeline / "tree.json")
    assert tree.metadata["ledger"]["snapshot"]["genesis_hash"].startswith("0x")
    dump = json.loads((pipeline / "tree.json").read_text())
    assert dump["veil"]["totals"]["free_wei"] == totals["free_wei"]
    assert dump["veil"]["totals"]["leaf_count"] == totals["leaf_count"] == len(tree.values)


def test_proof_and_multiproof_commands(pipeline: Path) -> None:
    keys = json.loads((pipeline / "keys.json").read_text())["keys"]
    done = veil("migrate", "proof", "tree.json", keys[0]["address"], cwd=pipeline)
    assert done.returncode == 0, done.stderr
    proof = json.loads(done.stdout)
    value = (proof["index"], bytes.fromhex(proof["account"][2:]), int(proof["free"]),
             int(proof["staked"]))  # fmt: skip
    assert proof["account"] == keys[0]["account"] and int(proof["staked"]) > 0
    root = bytes.fromhex(proof["root"][2:])
    assert verify_proof(root, value, [bytes.fromhex(p[2:]) for p in proof["proof"]])
    done = veil(
        "migrate", "multiproof", "tree.json", *(k["address"] for k in keys[:4]), cwd=pipeline
    )
    assert done.returncode == 0, done.stderr
    multi = json.loads(done.stdout)
    from veil.merkle import Multiproof

    parsed = Multiproof(
        [(int(v[0]), bytes.fromhex(v[1][2:]), int(v[2]), int(v[3])) for v in multi["leaves"]],
        [bytes.fromhex(p[2:]) for p in multi["proof"]],
        multi["proofFlags"],
    )
    assert len(parsed.leaves) == 4 and verify_multiproof(root, parsed)
    stranger = ss58.encode(bytes([9]) * 32)
    done = veil("migrate", "proof", "tree.json", stranger, cwd=pipeline)
    assert done.returncode == 2 and done.stderr.strip().endswith("not in this tree")


def test_binding_round_trip_through_the_cli(pipeline: Path) -> None:
    keys = json.loads((pipeline / "keys.json").read_text())
    chain = ("--tree", "tree.json", "--deployment", "deployment.json")
    for entry in keys["keys"][:3]:
        done = veil("migrate", "binding-message", "--holder", entry["address"], "--to", RECEIVER,
                    *chain, cwd=pipeline)  # fmt: skip
        assert done.returncode == 0, done.stderr
        message = done.stdout.rstrip("\n")
        context = BindingContext(bytes.fromhex(keys["genesis_hash"][2:]), 31337, MIGRATOR)
        key = keypair(entry["scheme"], bytes.fromhex(entry["seed"][2:]))
        assert message == binding_message(key.account, RECEIVER, context)
        for needle in ("veil", keys["genesis_hash"], "L2 chain id: 31337", entry["address"]):
            assert needle in message
        signature = "0x" + key.sign(wrap_bytes(message.encode())).hex()
        extra = ("--pubkey", entry["public_key"]) if entry["scheme"] == "ecdsa" else ()
        done = veil("migrate", "verify-binding", "--holder", entry["address"], "--to", RECEIVER,
                    "--signature", signature, *extra, *chain, cwd=pipeline)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert f"valid: {entry['scheme']}" in done.stdout
        # The same signature for another chain id, migrator or receiver is refused with exit 1.
        for other in (
            ("--genesis", keys["genesis_hash"], "--chain-id", "1", "--migrator", MIGRATOR,
             "--to", RECEIVER),
            ("--genesis", keys["genesis_hash"], "--chain-id", "31337", "--migrator",
             "0x" + "ce" * 20, "--to", RECEIVER),
            ("--genesis", "0x" + "00" * 32, "--chain-id", "31337", "--migrator", MIGRATOR,
             "--to", RECEIVER),
            (*chain, "--to", "0x" + "ac" * 20),
        ):  # fmt: skip
            done = veil("migrate", "verify-binding", "--holder", entry["address"],
                        "--signature", signature, *other, cwd=pipeline)  # fmt: skip
            assert done.returncode == 1
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: binding for")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("migrate", "snapshot", "--out", "x.json"), "exactly one of --raw-state or --rpc"),
        (("migrate", "snapshot", "--raw-state", "missing.json", "--out", "x.json"), "cannot read"),
        (("migrate", "ledger", "raw.json", "--out", "x.json"), "not a veil snapshot"),
        (("migrate", "tree", "snap.json", "--out", "x.json"), "not a veil ledger"),
        (("migrate", "ledger", "snap.json", "--positions", "pos.json", "--out", "x.json"),
         "ledger refused: pool 'vault-1'"),
        (("migrate", "binding-message", "--holder", "0x12", "--to", RECEIVER, "--genesis",
          "0x" + "00" * 32, "--chain-id", "1", "--migrator", MIGRATOR), "expected 32 bytes"),
        (("migrate", "binding-message", "--holder", "0x" + "00" * 32, "--to", "0x12",
          "--genesis", "0x" + "00" * 32, "--chain-id", "1", "--migrator", MIGRATOR),
         "--to '0x12': not an address"),
        (("migrate", "verify-binding", "--holder", "0x" + "00" * 32, "--to", RECEIVER,
          "--signature", "0x00", "--tree", "tree.json"), "--tree and --deployment go together"),
    ],
)  # fmt: skip
def test_bad_input_gives_one_error_line(
    pipeline: Path, args: tuple[str, ...], message: str
) -> None:
    done = veil(*args, cwd=pipeline)
    assert done.returncode != 0
    error_lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1 and message in error_lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not (pipeline / "x.json").exists()
