"""`veil cloud` against a live control plane (uvicorn on a free port, SQLite, fake KMS):
login, deploy with a secret encrypted on the client, update, verify the attestation,
lifecycle. The worker side is played through signed syncs."""

from __future__ import annotations

import json
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cloud_kit import CloudKit, account, make_kit
from eth_utils import keccak
from typer.testing import CliRunner

from server_thread import ServerThread
from veil.cli import cloud as cloud_cli
from veil.cloud.envcrypt import open_env
from veil.tee.simulator import AppSpec, simulate

COMPOSE = """services:
  web:
    image: python:3.12-slim
    command: ["python", "-m", "http.server", "8080"]
    environment:
      GREETING: ${GREETING}
    ports: ["8080:8080"]
"""
POLICY = f"""allow_simulated = true
require_event_log = true
[[os_images]]
name = "simulated"
os_image_hash = "{AppSpec().os_image_hash.hex()}"
"""


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[CloudKit, str]]:
    kit = make_kit(f"sqlite:///{tmp_path / 'cloud.sqlite'}")
    server = ServerThread(kit.client.app)
    try:
        yield kit, server.url
    finally:
        server.close()
        kit.client.close()
        kit.state.engine.dispose()


def _run(home: Path, *args: str) -> Any:
    result = CliRunner().invoke(
        cloud_cli.app, list(args), env={"VEIL_HOME": str(home), "COLUMNS": "200"}
    )
    return result


def test_customer_flow(live: tuple[CloudKit, str], tmp_path: Path) -> None:
    kit, url = live
    home = tmp_path / "home"
    worker = account("w1")
    kit.sync(worker)
    login = _run(home, "login", "--url", url, "-a", "alice")
    assert login.exit_code == 0, login.output
    credentials = home / "cloud" / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert json.loads(credentials.read_text())["api_key"].startswith("veil_")

    app_dir = tmp_path / "web"
    app_dir.mkdir()
    (app_dir / "compose.yaml").write_text(COMPOSE)
    (app_dir / ".env").write_text("# secrets\nGREETING='hello from inside'\n")
    first = _run(
        home, "deploy", str(app_dir / "compose.yaml"), "--env-file", str(app_dir / ".env"), "--json"
    )
    assert first.exit_code == 0, first.output
    app = json.loads(first.output.splitlines()[-1])
    assert app["name"] == "web" and app["env_keys"] == ["GREETING"]

    [deployment] = kit.sync(worker).json()["deployments"]
    env_key = keccak(b"env" + bytes.fromhex(app["app_id"][2:]))  # the fake KMS's derivation
    plaintext = json.loads(open_env(deployment["encrypted_env"], env_key))
    assert plaintext == {"env": [{"key": "GREETING", "value": "hello from inside"}]}
    with kit.state.sessions() as session:  # the control plane holds ciphertext only
        from veil.services.cloud.models import App

        stored = session.get(App, app["app_id"])
        assert "hello from inside" not in json.dumps(stored.encrypted_env)

    evidence = simulate(b"", app=AppSpec(compose_hash=bytes.fromhex(app["compose_hash"])))
    evidence["compose_hash"] = app["compose_hash"]
    report = kit.report(
        deployment,
        "running",
        boot_progress=100,
        ports={"8080": "127.0.0.1:41000"},
        attestation=evidence,
    )
    kit.sync(worker, apps=[report])
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    verified = _run(home, "attestation", "web", "--policy", str(policy))
    assert verified.exit_code == 0, verified.output
    assert "ACCEPTED (SIMULATED)" in verified.output
    strict = _run(home, "attestation", "web")
    assert strict.exit_code == 1 and "REFUSED" in strict.output

    listed = _run(home, "ls")
    assert "web" in listed.output and "running SIMULATED" in listed.output
    (app_dir / "compose.yaml").write_text(COMPOSE.replace("8080", "8081"))
    second = _run(
        home, "deploy", str(app_dir / "compose.yaml"), "--env-file", str(app_dir / ".env")
    )
    assert second.exit_code == 0, second.output
    assert f"updating web ({app['app_id']})" in second.output

    # The worker still reports the old compose in its quote: the new version is not verified.
    [updated] = kit.sync(worker).json()["deployments"]
    kit.sync(worker, apps=[kit.report(updated, "running", boot_progress=100, attestation=evidence)])
    stale = _run(home, "attestation", "web", "--policy", str(policy))
    assert stale.exit_code == 1 and "compose" in stale.output
    assert app["compose_hash"] in stale.output

    for action in ("stop", "start", "restart"):
        done = _run(home, action, "web")
        assert done.exit_code == 0 and f"{action}: web" in done.output
    gone = _run(home, "delete", "web")
    assert gone.exit_code == 0 and "deleted" in gone.output
    assert "no apps" in _run(home, "ls").output


def test_cli_errors_are_one_line(live: tuple[CloudKit, str], tmp_path: Path) -> None:
    kit, url = live
    home = tmp_path / "home"
    not_logged_in = _run(home, "ls", "--url", url)
    assert not_logged_in.exit_code != 0
    assert "veil cloud login" in str(not_logged_in.exception)
    assert _run(home, "login", "--url", url, "-a", "alice").exit_code == 0
    bad = tmp_path / "compose.yaml"
    bad.write_text("services: [unclosed")
    kit.sync(account("w1"))
    refused = _run(home, "deploy", str(bad), "--name", "bad")
    message = str(refused.exception)
    assert refused.exit_code != 0 and message.startswith("invalid_compose: ")
    assert "(request " in message
    env = tmp_path / ".env"
    env.write_text("not a pair\n")
    bad.write_text(COMPOSE)
    wrong_env = _run(home, "deploy", str(bad), "--env-file", str(env))
    assert ".env:1: expected KEY=VALUE" in str(wrong_env.exception)


def test_deploy_refuses_a_key_the_kms_did_not_sign(
    live: tuple[CloudKit, str], tmp_path: Path
) -> None:
    kit, url = live
    home = tmp_path / "home"
    kit.sync(account("w1"))
    assert _run(home, "login", "--url", url, "-a", "alice").exit_code == 0
    compose = tmp_path / "compose.yaml"
    compose.write_text(COMPOSE)
    env = tmp_path / ".env"
    env.write_text("GREETING=hi\n")
    pinned = _run(
        home,
        "deploy",
        str(compose),
        "--env-file",
        str(env),
        "--kms-signer",
        account("someone-else").address,
    )
    assert pinned.exit_code != 0
    assert "not signed by the KMS" in str(pinned.exception)
    assert "no apps" in _run(home, "ls").output


def test_event_stream_follows_live_and_resumes(live: tuple[CloudKit, str]) -> None:
    """A following client sees events written after it connected, by id, and the stream
    ends after `deleted`; a reconnect with Last-Event-ID gets only what came after."""
    import httpx

    kit, url = live
    worker = account("w1")
    kit.sync(worker)
    app = kit.deploy("alice")
    headers = kit.key("alice")
    seen: list[dict[str, Any]] = []

    def follow() -> None:
        with httpx.stream(
            "GET", f"{url}/v1/apps/{app['app_id']}/events", headers=headers, timeout=30
        ) as answer:
            assert answer.headers["content-type"].startswith("text/event-stream")
            event: dict[str, Any] = {}
            for line in answer.iter_lines():
                if line.startswith("id: "):
                    event["id"] = int(line[4:])
                elif line.startswith("data: "):
                    event.update(json.loads(line[6:]))
                    seen.append(event)
                    event = {}

    reader = threading.Thread(target=follow)
    reader.start()
    deadline = time.time() + 10
    while len(seen) < 3 and time.time() < deadline:
        time.sleep(0.05)
    [d] = kit.sync(worker).json()["deployments"]
    kit.sync(worker, apps=[kit.report(d, "running", boot_progress=100)])
    kit.client.delete(f"/v1/apps/{app['app_id']}", headers=headers)
    reader.join(timeout=15)
    assert not reader.is_alive()
    states = [e["state"] for e in seen]
    assert states == ["provisioning", "pending", "scheduled", "running", "deleted"]
    resumed = kit.events("alice", app["app_id"], last=seen[2]["id"])
    assert [e["state"] for e in resumed] == ["running", "deleted"]


def test_serve_command(tmp_path: Path) -> None:
    """The real `veil cloud serve`: migrations applied, OpenAPI and docs served; a bad --db
    is one line and a non-zero exit."""
    import subprocess
    import sys
    import urllib.request

    veil = str(Path(sys.executable).parent / "veil")
    bad = subprocess.run(
        [veil, "cloud", "serve", "--db", "mysql://x"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode != 0
    assert bad.stderr.strip().count("\n") == 0 and "--db" in bad.stderr
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    db = tmp_path / "cloud.sqlite"
    server = subprocess.Popen(
        [veil, "cloud", "serve", "--db", f"sqlite:///{db}", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                spec = json.loads(
                    urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/openapi.json", timeout=2
                    ).read()
                )
                break
            except OSError:
                assert time.time() < deadline and server.poll() is None
                time.sleep(0.2)
        assert "/v1/apps/provision" in spec["paths"] and "/v1/workers/sync" in spec["paths"]
        docs = urllib.request.urlopen(f"http://127.0.0.1:{port}/docs", timeout=5).read()
        assert b"swagger" in docs.lower()
        assert db.exists()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_deploy_refuses_to_register_the_app_under_another_account(
    live: tuple[CloudKit, str], tmp_path: Path
) -> None:
    kit, url = live
    home = tmp_path / "home"
    kit.sync(account("w1"))
    assert _run(home, "login", "--url", url, "-a", "alice").exit_code == 0
    compose = tmp_path / "compose.yaml"
    compose.write_text(COMPOSE.replace("${GREETING}", "${GREETING:-x}"))
    wrong = _run(
        home, "deploy", str(compose), "--name", "web", "-d", str(tmp_path / "d.json"), "-a", "bob"
    )
    assert wrong.exit_code != 0
    assert "not the account you logged in as" in str(wrong.exception)
    assert "no apps" in _run(home, "ls").output
