"""Every command block in README.md and docs/*.md runs as written, in order, per document.

Convention (also stated in docs/devnet.md, "Documentation commands are tested"):

- A fenced block tagged `sh` (or `bash`, `shell`) is commands: this test runs it.
- Output, diagrams and formulas are tagged `text`; files are tagged by their format
  (`toml`, `json`, ...). An untagged fence fails this test, so every new block says which
  it is.
- A command block that cannot run here starts with `# docs-test: not run (REASON)`, for
  instance when it needs a live parachain node or a holder's own wallet; the reason is
  required, and such blocks should stay rare.

Each document runs in a fresh temporary directory (the working directory of every block)
against a fresh devnet with the contracts deployed, found by the commands through
VEIL_DEVNET_HOME, VEIL_DEVNET_PORT and VEIL_DEPLOYMENTS_DIR (so `deployments/devnet.json`
in that directory is the deployment). A document whose first command is `veil devnet up`
starts its own devnet instead. `.venv` in that directory points at the repository's, and
`.venv/bin` is on PATH, as after `. .venv/bin/activate`. The blocks of one document share
one shell state: variables a block sets are seen by the next ones. Background processes a
block starts (an attester with `&`) are stopped when the document ends.

A failure names the document, the line of the failing command and the command's output.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN = frozenset({"sh", "bash", "shell"})
NOT_RUN = re.compile(r"^# docs-test: not run \((?P<reason>.*\S.*)\)\s*$")
FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
BLOCK_TIMEOUT = 240


@dataclass(frozen=True)
class Block:
    doc: str
    line: int  # line number of the block's first content line in the document
    lang: str
    text: str

    @property
    def skip_reason(self) -> str | None:
        first = self.text.lstrip("\n").splitlines()[0] if self.text.strip() else ""
        match = NOT_RUN.match(first)
        return match["reason"] if match else None


def documents() -> list[Path]:
    return [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]


def blocks(path: Path) -> list[Block]:
    """Top-level fenced blocks (a fence at column 0), with their info string's first word."""
    found: list[Block] = []
    lines = path.read_text().splitlines()
    name = str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else path.name
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        fence, info = opening["fence"], opening["info"].strip()
        end = i + 1
        while end < len(lines) and not lines[end].startswith(fence):
            end += 1
        lang = info.split()[0].lower() if info else ""
        found.append(Block(name, i + 2, lang, "\n".join(lines[i + 1 : end]) + "\n"))
        i = end + 1
    return found


def test_every_block_says_what_it_is() -> None:
    """Untagged fences and reasonless markers are refused, with the document and line."""
    problems = []
    for path in documents():
        for block in blocks(path):
            where = f"{block.doc}:{block.line - 1}"
            if not block.lang:
                problems.append(
                    f"{where}: untagged fence: ```sh for commands (run by tests/docs), "
                    "```text for output or diagrams, or the file's format"
                )
            elif "docs-test" in block.text and block.lang in RUN and block.skip_reason is None:
                problems.append(f"{where}: write the marker as `# docs-test: not run (REASON)`")
    assert not problems, "\n".join(problems)


def test_harness_reads_blocks_markers_and_lines(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text(
        "# t\n\n```sh\necho one\n```\n\n```text\nout\n```\n\n"
        "```sh\n# docs-test: not run (needs a parachain node)\nveil migrate snapshot\n```\n"
        "````sh\n```\n````\n"
    )
    found = blocks(doc)
    assert [(b.line, b.lang) for b in found] == [(4, "sh"), (8, "text"), (12, "sh"), (16, "sh")]
    assert found[0].skip_reason is None and found[2].skip_reason == "needs a parachain node"
    assert found[3].text == "```\n"


# --- running ---------------------------------------------------------------------------

PRELUDE = """set -euo pipefail
trap 'echo "$LINENO" > "$DOCS_TEST_FAILED_AT"' ERR
if [ -f "$DOCS_TEST_STATE" ]; then . "$DOCS_TEST_STATE"; fi
"""
PRELUDE_LINES = PRELUDE.count("\n")
# After the block: keep the variables it set (not bash's own, not read-only) for the next.
EPILOGUE = """
__vars=$(compgen -v | grep -vxF -f "$DOCS_TEST_BASELINE" | grep -v '^__' || true)
if [ -n "$__vars" ]; then
  declare -p $__vars 2>/dev/null | grep -v '^declare -[a-zA-Z]*r' > "$DOCS_TEST_STATE" || true
fi
"""


@dataclass
class Session:
    """One document's run: its directory, its environment, the process groups it started."""

    work: Path
    env: dict[str, str]
    groups: list[int]

    def run(self, block: Block) -> None:
        failed_at = self.work.parent / "failed_at"
        failed_at.unlink(missing_ok=True)
        env = {**self.env, "DOCS_TEST_FAILED_AT": str(failed_at)}
        script = PRELUDE + block.text + EPILOGUE
        # Output goes to a file, not a pipe: a process the block leaves running in the
        # background (`veil attester serve ... &`) keeps its copy open, and reading a pipe
        # to its end would wait for that process instead of for the block.
        log = self.work.parent / "block.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                ["bash", "-c", script],
                cwd=self.work,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.groups.append(process.pid)
        try:
            process.wait(timeout=BLOCK_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            output = log.read_text(errors="replace")
            pytest.fail(f"{block.doc}:{block.line}: block ran over {BLOCK_TIMEOUT} s\n{output}")
        output = log.read_text(errors="replace")
        if process.returncode != 0:
            line = block.line
            if failed_at.exists() and failed_at.read_text().strip().isdigit():
                line = block.line + int(failed_at.read_text()) - PRELUDE_LINES - 1
            command = _line(block, line)
            pytest.fail(
                f"{block.doc}:{line}: `{command}` exited {process.returncode}\n"
                f"--- output ---\n{output[-4000:]}",
                pytrace=False,
            )

    def close(self) -> None:
        """Stop whatever the blocks left running (an attester started with `&`)."""
        for group in self.groups:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                if not _group_alive(group):
                    break
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group, sig)
                deadline = time.monotonic() + 5
                while _group_alive(group) and time.monotonic() < deadline:
                    time.sleep(0.05)


def _line(block: Block, line: int) -> str:
    lines = block.text.splitlines()
    index = line - block.line
    return lines[index].strip() if 0 <= index < len(lines) else "?"


def _starts_own_devnet(runnable: list[Block]) -> bool:
    for block in runnable:
        for raw in block.text.splitlines():
            command = raw.split("#", 1)[0].strip()
            if command:
                return command.startswith("veil devnet up")
    return False


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    from veil.devnet.anvil import free_port

    work = tmp_path / "work"
    work.mkdir()
    (work / ".venv").symlink_to(REPO_ROOT / ".venv")
    # Commands written "from the repository root" reach the tests' data and the shared
    # fixtures beside the clone the same way from the scratch directory.
    (work / "tests").symlink_to(REPO_ROOT / "tests")
    (work / "node_modules").symlink_to(REPO_ROOT / "node_modules")  # the pinned anvil
    (tmp_path / "shared").symlink_to(REPO_ROOT.parent / "shared")
    venv_bin = REPO_ROOT / ".venv" / "bin"
    env = {
        **os.environ,
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "VIRTUAL_ENV": str(REPO_ROOT / ".venv"),
        "VEIL_DEVNET_HOME": str(tmp_path / "devnet"),
        "VEIL_DEVNET_PORT": str(free_port()),
        "VEIL_DEPLOYMENTS_DIR": str(work / "deployments"),
        "DOCS_TEST_STATE": str(tmp_path / "state.sh"),
        "DOCS_TEST_BASELINE": str(tmp_path / "baseline"),
        "PYTHONUNBUFFERED": "1",
        "NO_COLOR": "1",
    }
    baseline = subprocess.run(
        ["bash", "-c", PRELUDE + "compgen -v"], env={**env, "DOCS_TEST_FAILED_AT": "/dev/null"},
        capture_output=True, text=True, check=True, cwd=work,
    ).stdout  # fmt: skip
    (tmp_path / "baseline").write_text(baseline + "BASH_COMMAND\nLINENO\n")
    current = Session(work, env, [])
    yield current
    current.close()
    from veil.devnet.anvil import Devnet

    devnet = Devnet(tmp_path / "devnet")
    if devnet.running() is not None:
        devnet.stop()


@pytest.mark.e2e
@pytest.mark.xdist_group("anvil")
@pytest.mark.parametrize("doc", [str(p.relative_to(REPO_ROOT)) for p in documents()])
def test_document_commands_run(doc: str, session: Session) -> None:
    runnable = [b for b in blocks(REPO_ROOT / doc) if b.lang in RUN and b.skip_reason is None]
    if runnable and not _starts_own_devnet(runnable):
        from veil.devnet.anvil import Devnet
        from veil.devnet.network import devnet_up

        devnet_up(
            Devnet(Path(session.env["VEIL_DEVNET_HOME"])),
            Path(session.env["VEIL_DEPLOYMENTS_DIR"]) / "devnet.json",
            port=int(session.env["VEIL_DEVNET_PORT"]),
        )
    for block in runnable:
        session.run(block)


def test_failure_names_document_line_and_output(session: Session, tmp_path: Path) -> None:
    """The harness itself: shared variables, background jobs, and where a failure is."""
    doc = tmp_path / "guide.md"
    doc.write_text(
        "# g\n\n```sh\nGREETING=hello\nsleep 300 &\n```\n\n"
        '```sh\necho "$GREETING from the first block"\nfalse\necho not reached\n```\n'
    )
    first, second = blocks(doc)
    session.run(first)
    with pytest.raises(pytest.fail.Exception) as failed:
        session.run(second)
    message = str(failed.value)
    assert message.startswith("guide.md:10: `false` exited 1")
    assert "hello from the first block" in message and "not reached" not in message
    session.close()
    assert all(not _group_alive(group) for group in session.groups)


def _group_alive(group: int) -> bool:
    """A live (not zombie) process in the group; a container's init may not reap zombies."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            return True
    return False
