"""The process runtime with real processes: env delivery, ports, boot diagnosis, restarts."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from runtime_kit import APP_ID, ECHO_APP, deployment, echo_compose

from veil.cloud.runtime.process import ProcessRuntime, interpolate
from veil.errors import InputError

SECRET = "s3cr3t-value-only-in-memory"


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[ProcessRuntime]:
    engine = ProcessRuntime(tmp_path / "state", settle=0.3, boot_timeout=20, stop_grace=2)
    yield engine
    for deployment_id in engine.deployments():
        engine.remove(deployment_id)


def _get(status_ports: dict[str, str], path: str) -> httpx.Response:
    return httpx.get(f"http://{status_ports['8080']}{path}", timeout=5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_env_is_delivered_and_the_port_is_reported(runtime: ProcessRuntime, tmp_path: Path):
    item = deployment(echo_compose({"TOKEN": "${SECRET}"}))
    first = runtime.start(item, {"SECRET": SECRET, "NAME": "veil"})
    assert first.state == "starting" and first.simulated and 10 <= first.boot_progress < 100
    status = runtime.wait(item.deployment_id, ("running", "failed"), 20)
    assert status.state == "running", status.error
    assert "SIMULATED" in status.stage and status.simulated and status.boot_progress == 100
    host, port = status.ports["8080"].split(":")
    assert host == "127.0.0.1" and port != "8080"
    assert _get(status.ports, "/env/SECRET").text == SECRET  # the decrypted key itself
    assert _get(status.ports, "/env/TOKEN").text == SECRET  # interpolated into compose env
    assert _get(status.ports, "/env/GREETING").text == "hello veil"
    assert _get(status.ports, "/env/PORT").text == port
    assert _get(status.ports, "/env/VEIL_PORT_8080").text == port
    assert _get(status.ports, "/env/VEIL_SIMULATED").text == "1"
    assert _get(status.ports, "/env/VEIL_APP_ID").text == APP_ID
    assert _get(status.ports, "/env/VEIL_COMPOSE_HASH").text == item.compose_hash
    # nothing of the worker's own environment leaks into the app
    os.environ["VEIL_TEST_WORKER_ONLY"] = "x"
    try:
        runtime.remove(item.deployment_id)
        runtime.start(item, {"SECRET": SECRET})
        status = runtime.wait(item.deployment_id, ("running", "failed"), 20)
        assert _get(status.ports, "/env/VEIL_TEST_WORKER_ONLY").status_code == 404
        assert _get(status.ports, "/env/GREETING").text == "hello world"  # the default
    finally:
        del os.environ["VEIL_TEST_WORKER_ONLY"]
    # the decrypted env is never written under the state directory
    for file in (tmp_path / "state").rglob("*"):
        if file.is_file():
            assert SECRET not in file.read_text(errors="replace"), file


def test_the_lease_facts_reach_the_process_and_compose_interpolation(runtime: ProcessRuntime):
    facts = {"VEIL_LEASE_ID": "0x" + "00" * 31 + "2a", "VEIL_MARKET": "0x" + "cd" * 20,
             "VEIL_CHAIN_ID": "31337"}  # fmt: skip
    compose = echo_compose(
        {"BILLING": "${VEIL_LEASE_ID}@${VEIL_CHAIN_ID}", "VEIL_MARKET": "from-the-compose"},
        command=[sys.executable, ECHO_APP, "${PORT:-8080}", "${VEIL_MARKET}"],
    )
    item = replace(deployment(compose), platform_env=facts)
    runtime.start(item, {"SECRET": SECRET, "VEIL_LEASE_ID": "0x01"})
    status = runtime.wait(item.deployment_id, ("running", "failed"), 20)
    assert status.state == "running", status.error
    for key, value in facts.items():  # the worker's facts win over the env and the compose
        assert _get(status.ports, f"/env/{key}").text == value
    assert _get(status.ports, "/env/BILLING").text == f"{facts['VEIL_LEASE_ID']}@31337"
    assert _get(status.ports, "/env/SECRET").text == SECRET
    # the command was interpolated too (echo_app ignores its second argument)
    (service,) = runtime._apps[item.deployment_id].services.values()
    assert service.argv[-1] == facts["VEIL_MARKET"]
    runtime.remove(item.deployment_id)
    plain = deployment(echo_compose())
    runtime.start(plain, {})
    status = runtime.wait(plain.deployment_id, ("running", "failed"), 20)
    for key in facts:  # no lease, no lease facts
        assert _get(status.ports, f"/env/{key}").status_code == 404


def test_logs_are_timestamped_per_service(runtime: ProcessRuntime):
    item = deployment()
    before = time.time()
    runtime.start(item, {})
    status = runtime.wait(item.deployment_id, ("running", "failed"), 20)
    _get(status.ports, "/health")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = runtime.logs(item.deployment_id, "web", since=before - 1)
        if any("request /health" in line for line in lines):
            break
        time.sleep(0.05)
    assert any(line.endswith("listening on " + status.ports["8080"].split(":")[1])
               for line in lines)  # fmt: skip
    assert all(line[:4].isdigit() and "T" in line.split(" ")[0] for line in lines)
    assert runtime.logs(item.deployment_id, "web", since=time.time() + 60) == []
    with pytest.raises(InputError, match="no log for service 'db'"):
        runtime.logs(item.deployment_id, "db")


def test_a_service_dying_in_boot_is_diagnosed(runtime: ProcessRuntime):
    script = "import sys; print('missing DATABASE_URL'); sys.exit(7)"
    item = deployment(echo_compose(command=[sys.executable, "-c", script]))
    runtime.start(item, {})
    status = runtime.wait(item.deployment_id, ("running", "failed"), 20)
    assert status.state == "failed"
    assert "boot failed: service web exited with code 7" in (status.error or "")
    assert "missing DATABASE_URL" in (status.error or "")
    assert status.restarts == 0 and status.ports == {}


def test_a_missing_command_or_executable_fails_with_a_reason(runtime: ProcessRuntime):
    no_command = json.dumps({"services": {"web": {"image": "nginx"}}})
    status = runtime.start(deployment(no_command), {})
    assert status.state == "failed"
    assert "no command" in (status.error or "") and "ignores its image (nginx)" in status.error
    missing = deployment(echo_compose(command=["/nonexistent/veil-app"]), deployment_id="dep-2")
    status = runtime.start(missing, {})
    assert status.state == "failed" and "cannot run '/nonexistent/veil-app'" in status.error
    broken = deployment("services: [", deployment_id="dep-3")
    assert runtime.start(broken, {}).error.startswith("compose:")


def test_boot_timeout_names_the_late_service(tmp_path: Path):
    engine = ProcessRuntime(tmp_path / "state", boot_timeout=0.5, stop_grace=1)
    item = deployment(echo_compose(command=[sys.executable, "-c", "import time; time.sleep(30)"]))
    try:
        engine.start(item, {})
        status = engine.wait(item.deployment_id, ("running", "failed"), 10)
        assert status.state == "failed"
        assert "boot timed out after 0.5 s: service web not up (ports 8080)" in status.error
    finally:
        engine.remove(item.deployment_id)


def test_a_crash_after_boot_restarts_and_is_counted(runtime: ProcessRuntime):
    item = deployment()
    runtime.start(item, {})
    status = runtime.wait(item.deployment_id, ("running", "failed"), 20)
    with pytest.raises(httpx.HTTPError):
        _get(status.ports, "/crash")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status = runtime.status(item.deployment_id)
        if status.restarts == 1 and status.state == "running":
            break
        time.sleep(0.05)
    assert status.restarts == 1 and status.state == "running"
    assert _get(status.ports, "/health").text == "ok web"


def test_too_many_crashes_fail_the_app(tmp_path: Path):
    engine = ProcessRuntime(tmp_path / "state", max_restarts=1, stop_grace=1)
    item = deployment()
    try:
        engine.start(item, {})
        status = engine.wait(item.deployment_id, ("running", "failed"), 20)
        for _ in range(2):
            with pytest.raises(httpx.HTTPError):
                _get(status.ports, "/crash")
            status = engine.wait(item.deployment_id, ("failed",), 1)
            status = engine.wait(item.deployment_id, ("running", "failed"), 20)
        assert status.state == "failed"
        assert "service web crashed 2 times; last exit code 3" in status.error
        assert "crashing on request" in status.error
    finally:
        engine.remove(item.deployment_id)


def test_stop_and_remove_leave_nothing_running(runtime: ProcessRuntime, tmp_path: Path):
    # the service forks a grandchild: stopping the group must reach it too
    script = (
        "import subprocess, sys, time; "
        f"child = subprocess.Popen([sys.executable, {ECHO_APP!r}]); "
        "print('child', child.pid, flush=True); time.sleep(60)"
    )
    item = deployment(echo_compose(command=[sys.executable, "-c", script]))
    runtime.start(item, {})
    status = runtime.wait(item.deployment_id, ("running", "failed"), 20)
    assert status.state == "running", status.error
    lines = runtime.logs(item.deployment_id, "web")
    child = int(next(line for line in lines if " child " in line).split()[-1])
    assert _alive(child)
    runtime.stop(item.deployment_id)
    assert runtime.status(item.deployment_id).state == "stopped"
    deadline = time.monotonic() + 5  # SIGKILL is delivered asynchronously
    while _alive(child) and not _zombie(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(child) or _zombie(child)
    with pytest.raises(httpx.HTTPError):
        _get(status.ports, "/health")
    # start again after stop: it runs again
    runtime.start(item, {})
    assert runtime.wait(item.deployment_id, ("running", "failed"), 20).state == "running"
    runtime.remove(item.deployment_id)
    assert runtime.status(item.deployment_id) is None
    assert runtime.deployments() == []
    assert not (tmp_path / "state" / "apps" / item.deployment_id).exists()


def test_a_new_revision_replaces_the_running_one(runtime: ProcessRuntime):
    item = deployment()
    runtime.start(item, {"SECRET": "one"})
    first = runtime.wait(item.deployment_id, ("running", "failed"), 20)
    same = runtime.start(item, {"SECRET": "one"})  # unchanged: a no-op
    assert same.ports == first.ports
    updated = deployment(encrypted_env="01")
    runtime.start(updated, {"SECRET": "two"})
    second = runtime.wait(item.deployment_id, ("running", "failed"), 20)
    assert _get(second.ports, "/env/SECRET").text == "two"
    assert runtime.deployments() == [item.deployment_id]


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${A}", "1"),
        ("$A-$B", "1-"),
        ("${B:-dflt}", "dflt"),
        ("${E:-dflt}", "dflt"),
        ("${E-dflt}", ""),
        ("${B-dflt}", "dflt"),
        ("$$A", "$A"),
        ("x${A}y", "x1y"),
    ],
)
def test_interpolation_follows_compose(text: str, expected: str):
    assert interpolate(text, {"A": "1", "E": ""}) == expected


def test_a_new_runtime_reclaims_what_a_crashed_one_left_running(tmp_path: Path):
    crashed = ProcessRuntime(tmp_path / "state", stop_grace=1)
    item = deployment()
    crashed.start(item, {})
    status = crashed.wait(item.deployment_id, ("running", "failed"), 20)
    pid = crashed._apps[item.deployment_id].services["web"].process.pid
    assert _alive(pid)
    # the worker dies without stopping anything; a new one starts on the same state dir
    successor = ProcessRuntime(tmp_path / "state", stop_grace=1)
    deadline = time.monotonic() + 5
    while _alive(pid) and not _zombie(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    crashed._apps[item.deployment_id].services["web"].process.wait(timeout=5)
    assert not _alive(pid)
    assert successor.deployments() == [] and list((tmp_path / "state" / "apps").glob("*")) == []
    with pytest.raises(httpx.HTTPError):
        _get(status.ports, "/health")


def test_reclaim_spares_a_reused_pid(tmp_path: Path):
    runtime = ProcessRuntime(tmp_path / "state")
    record = tmp_path / "state" / "apps" / "old" / "pids" / "web.json"
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"pid": os.getpid(), "start": "1"}))  # not our start time
    assert runtime.reclaim() == 0
    assert _alive(os.getpid()) and not record.exists()


@given(st.text(alphabet=st.characters(blacklist_characters="$"), max_size=40))
def test_text_without_dollars_is_untouched(text: str):
    assert interpolate(text, {"A": "1"}) == text


@given(
    st.dictionaries(
        st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True),
        st.text(alphabet=st.characters(blacklist_characters="$"), max_size=10),
        max_size=5,
    ),
)
def test_every_set_variable_is_substituted(variables: dict[str, str]):
    text = "|".join(f"${{{name}}}" for name in variables)
    assert interpolate(text, variables) == "|".join(variables.values())
    assert interpolate(text.replace("$", "$$"), variables) == text
