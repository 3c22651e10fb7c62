"""Bad input at the command line: one `error:` line naming the problem, non-zero, no traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from veil.devnet.demo import veil_executable


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(veil_executable()), *args], capture_output=True, text=True,
                          timeout=60)  # fmt: skip


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["stake", "deposit", "10", "--account", "alice", "-d", "{missing}"], 2,
         "error: deployment {missing}: not found"),
        (["stake", "deposit", "1.0000000000000000001", "--account", "alice", "-d", "{dep}"], 2,
         "more than 18 decimals"),
        (["stake", "deposit", "10", "--account", "mallory", "-d", "{dep}"], 2,
         "not a devnet name"),
        (["gov", "vote", "1", "maybe", "-d", "{dep}"], 2, "choose for, against or abstain"),
        (["devnet", "down", "--home", "{tmp}"], 1, "error: devnet is not running"),
        (["migrate", "snapshot", "--raw-state", "{missing}", "--out", "{tmp}/s.json"], 2,
         "{missing}"),
    ],
)  # fmt: skip
def test_one_line_errors(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    dep = tmp_path / "dep.json"
    dep.write_text(
        '{"network": "t", "chain_id": 73217, "rpc_url": "http://127.0.0.1:9", "contracts": {}}'
    )
    names = {"missing": str(tmp_path / "missing.json"), "dep": str(dep), "tmp": str(tmp_path)}
    done = run(*[a.format(**names) for a in args])
    assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert message.format(**names) in lines[0]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "s.json").exists()


def test_claim_with_a_bad_signature_fails_before_any_chain_call(tmp_path: Path) -> None:
    """The claim client checks the binding locally: no attester, no RPC is bothered."""
    from veil.atomic import write_json
    from veil.merkle import build_tree
    from veil.migration.synthetic import keypair
    from veil.substrate import ss58

    holder = keypair("sr25519", b"\x01" * 32)
    tree = build_tree([(0, holder.account, 10**18, 0)],
                      {"ledger": {"snapshot": {"genesis_hash": "0x" + "11" * 32}}})  # fmt: skip
    write_json(tmp_path / "tree.json", tree.dump())
    dep = tmp_path / "dep.json"
    dep.write_text(
        '{"network": "t", "chain_id": 73217, "rpc_url": "http://127.0.0.1:9", '
        '"contracts": {"Migrator": {"address": "0x' + "ab" * 20 + '", "abi": []}}}'
    )
    done = run("migrate", "claim", "--tree", str(tmp_path / "tree.json"),
               "--holder", ss58.encode(holder.account), "--to", "0x" + "cd" * 20,
               "--signature", "0x" + "00" * 64, "--attester", "http://127.0.0.1:9",
               "--account", "dave", "-d", str(dep))  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "not a valid" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "no answer" not in done.stderr


ALICE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
ALICE_TYPO = ALICE[:-2] + "c8"  # one letter's case wrong: a broken EIP-55 checksum
ZERO = "0x" + "00" * 20
HOLDER = "0x" + "11" * 32


def one_error_line(done: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert done.returncode == code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.fixture
def dep(tmp_path: Path) -> str:
    """A deployment whose chain is down: every check below must happen before the chain."""
    path = tmp_path / "dep.json"
    migrator = '"contracts": {"Migrator": {"address": "0x' + "ab" * 20 + '", "abi": []}}}'
    path.write_text(
        '{"network": "t", "chain_id": 73217, "rpc_url": "http://127.0.0.1:9", ' + migrator
    )
    return str(path)


@pytest.mark.parametrize(
    ("amount", "problem"),
    [("1,5", "',' is neither a decimal point"), ("1.000,5", "',' is neither a decimal point"),
     ("1e3", "not an amount"), ("-1", "must not be negative"), ("1_000", "not an amount")],
)  # fmt: skip
def test_amounts_follow_one_grammar(dep: str, amount: str, problem: str) -> None:
    """Issue 8, defect 2: `1,5` staked 15 PHA and `1.000,5` staked 1.0005 PHA."""
    signer = ["-a", "alice", "-d", dep]
    for args in (
        ["stake", "deposit", *signer, "--", amount],
        ["stake", "request-unlock", *signer, "--", amount],
        ["worker", "provider", *signer, f"--stake={amount}"],
    ):
        line = one_error_line(run(*args))
        assert problem in line and repr(amount) in line, line


@pytest.mark.parametrize(
    ("receiver", "problem"),
    [("0xZZZ", "not an address"), (ALICE_TYPO, "wrong EIP-55 checksum"),
     (ZERO, "zero address"), ("mallory", "neither an address nor a devnet name")],
)  # fmt: skip
def test_addresses_are_strict(dep: str, tmp_path: Path, receiver: str, problem: str) -> None:
    """Issue 8, defects 3 and 5: a typo'd checksum was re-checksummed, 0xZZZ gave a traceback."""
    line = one_error_line(run("stake", "deposit", "1", "--receiver", receiver, "-a", "alice",
                              "-d", dep))  # fmt: skip
    assert problem in line, line
    if receiver != "mallory":
        context = ("--genesis", "0x" + "22" * 32, "--chain-id", "1", "--migrator", ALICE)
        line = one_error_line(run("migrate", "binding-message", "--holder", HOLDER,
                                  "--to", receiver, *context))  # fmt: skip
        assert problem in line, line
        tree = tmp_path / "tree.json"
        tree.write_text("{}")
        line = one_error_line(run("migrate", "claim", "--tree", str(tree), "--holder", HOLDER,
                                  "--to", receiver, "--signature", "0x00", "--attester",
                                  "http://127.0.0.1:9", "-a", "dave", "-d", dep))  # fmt: skip
        assert "receiver" in line and problem in line, line


def test_all_lowercase_address_is_accepted(dep: str) -> None:
    done = run("migrate", "binding-message", "--holder", HOLDER, "--to", ALICE.lower(),
               "--genesis", "0x" + "22" * 32, "--chain-id", "1", "--migrator", ALICE)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert ALICE in done.stdout


def test_delegatee_zero_and_typo_refused(dep: str) -> None:
    assert "zero address" in one_error_line(run("gov", "delegate", ZERO, "-a", "alice", "-d", dep))
    line = one_error_line(run("gov", "delegate", ALICE_TYPO, "-a", "alice", "-d", dep))
    assert "wrong EIP-55 checksum" in line


@pytest.mark.parametrize(
    ("where", "problem"),
    [("{tmp}/file.txt/out.json", "is not a directory"),
     ("{tmp}/missing/out.json", "does not exist"),
     ("/proc/veil-out.json", "cannot write in /proc"),
     ("{tmp}", "is a directory")],
)  # fmt: skip
def test_out_paths_are_checked_first(tmp_path: Path, where: str, problem: str) -> None:
    """Issue 8, defect 5: a traceback under a regular file or /proc; a silent mkdir."""
    (tmp_path / "file.txt").write_text("x")
    out = where.format(tmp=tmp_path)
    for args in (
        ["migrate", "snapshot", "--raw-state", str(tmp_path / "file.txt"), "--out", out],
        ["migrate", "generate-state", "--accounts", "3", "--out", out, "--positions",
         str(tmp_path / "p.json"), "--exclusions", str(tmp_path / "e.json")],
        ["attest", "simulate", "--report-data", "00", "--out", out],
        ["attester", "devnet-policy", "--out", out],
    ):  # fmt: skip
        line = one_error_line(run(*args))
        assert problem in line and "--out" in line, line
    assert not (tmp_path / "missing").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_keystore_errors_are_one_line(tmp_path: Path) -> None:
    import json
    import os

    from eth_account import Account

    not_a_keystore = tmp_path / "wallet.json"
    not_a_keystore.write_text('{"address": "abc", "version": 3}')
    line = one_error_line(run("stake", "deposit", "1", "--keystore", str(not_a_keystore)))
    assert "not a keystore" in line
    keystore = tmp_path / "key.json"
    keystore.write_text(json.dumps(Account.encrypt("0x" + "11" * 32, "pw", iterations=2)))
    env = {k: v for k, v in os.environ.items() if k != "VEIL_KEYSTORE_PASSWORD"}
    done = subprocess.run([str(veil_executable()), "stake", "deposit", "1", "--keystore",
                           str(keystore)], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env=env)  # fmt: skip
    assert "set $VEIL_KEYSTORE_PASSWORD" in one_error_line(done)


def test_old_spellings_still_work_but_warn(dep: str, tmp_path: Path) -> None:
    """Issue 8, defect 6: `--from` (migrate claim) and `--now` (attest verify) became
    `--account` and `--at`; the old names warn instead of breaking scripts at once."""
    done = run("migrate", "binding-message", "--account", HOLDER, "--to", ALICE,
               "--genesis", "0x" + "22" * 32, "--chain-id", "1", "--migrator", ALICE)  # fmt: skip
    assert done.returncode == 0 and "--account (the holder) is deprecated" in done.stderr
    done = run("migrate", "claim", "--tree", str(tmp_path / "t.json"), "--holder", HOLDER,
               "--to", ALICE, "--signature", "0x00", "--attester", "http://127.0.0.1:9",
               "--from", "dave", "-d", dep)  # fmt: skip
    assert done.stderr.startswith("warning: --from is deprecated"), done.stderr
    done = run("attest", "verify", "--quote", str(tmp_path / "q"), "--now", "123")
    assert done.stderr.startswith("warning: --now is deprecated"), done.stderr
    done = run("attest", "verify", "--quote", str(tmp_path / "q"), "--at", "yesterday")
    assert "--at 'yesterday': not a time" in one_error_line(done)


def test_every_command_has_help_with_summary_options_and_example() -> None:
    """Issue 8: every command's help has a one-line summary, every option described, an
    example. Checked through click's own model of the commands, not the rendered text."""
    import typer.main

    from veil.cli.main import app

    root = typer.main.get_command(app)
    checked = 0
    for group_name, group in root.commands.items():  # type: ignore[attr-defined]
        if hasattr(group, "load"):  # sub-apps are imported on first use
            group = group.load()
        commands = group.commands.items() if hasattr(group, "commands") else [(None, group)]
        for name, command in commands:
            where = f"veil {group_name} {name or ''}"
            summary = (command.help or "").strip().splitlines()[0]
            assert summary.endswith("."), f"{where}: summary {summary!r} breaks mid-sentence"
            assert command.epilog and "Example: veil " in command.epilog, f"{where}: no example"
            for param in command.params:
                if param.param_type_name == "option" and not param.hidden:
                    assert param.help, f"{where}: option {param.opts} has no help"
                if param.param_type_name == "argument":
                    assert getattr(param, "help", None), f"{where}: argument {param.name}"
            opts = {o for param in command.params for o in getattr(param, "opts", [])}
            l2 = any("--rpc" in p.opts and "deployment" in (getattr(p, "help", "") or "")
                     for p in command.params)  # fmt: skip
            if l2:  # an L2 command (not the parachain's --rpc): the same -d everywhere
                assert {"-d", "--deployment"} <= opts, f"{where}: no -d/--deployment"
            assert not {"--from", "--now"} & {
                o for p in command.params if not getattr(p, "hidden", False) for o in p.opts
            }, f"{where}: an old spelling is still advertised"
            checked += 1
    assert checked >= 25


def test_binding_message_for_a_holder_not_in_the_tree_says_so(tmp_path: Path, dep: str) -> None:
    """Issue 8, defect 7: the message was printed for an account that can never claim."""
    from veil.atomic import write_json
    from veil.merkle import build_tree
    from veil.migration.synthetic import keypair
    from veil.substrate import ss58

    inside, outside = keypair("sr25519", b"\x01" * 32), keypair("sr25519", b"\x02" * 32)
    tree = build_tree([(0, inside.account, 10**18, 0)],
                      {"ledger": {"snapshot": {"genesis_hash": "0x" + "11" * 32}}})  # fmt: skip
    write_json(tmp_path / "tree.json", tree.dump())
    common = ("--to", ALICE, "--tree", str(tmp_path / "tree.json"), "-d", dep)
    done = run("migrate", "binding-message", "--holder", ss58.encode(inside.account), *common)
    assert done.returncode == 0, done.stderr
    line = one_error_line(
        run("migrate", "binding-message", "--holder", ss58.encode(outside.account), *common)
    )
    assert f"holder {ss58.encode(outside.account)}: not in the tree" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [(["stake", "deposit"], "Missing argument 'amount'"),
     (["attester", "serve", "--port", "70000"], "'--port'"),
     (["stake", "nosuch"], "No such command 'nosuch'")],
)  # fmt: skip
def test_usage_errors_are_one_line_pointing_at_help(args: list[str], message: str) -> None:
    line = one_error_line(run(*args))
    assert message in line and "--help`" in line, line


def test_a_bare_group_still_shows_its_help() -> None:
    done = run("stake")
    assert done.returncode == 2 and "request-unlock" in done.stdout + done.stderr
