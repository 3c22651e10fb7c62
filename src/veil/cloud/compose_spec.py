"""A docker-compose file as veil runs it, and the dstack app-compose document around it.

The customer sends docker-compose YAML. dstack does not measure that YAML alone: it
wraps it in an app-compose JSON document (runner, name, allowed env keys, KMS and
gateway switches) and RTMR3 records sha256 of that document's canonical form. So the
app's identity is `compose_hash(app_compose(...))`, computed here exactly as dstack's
SDKs do (`veil.tee.compose`), and the same text is what a worker boots.

`parse_compose` reads only what veil's runtimes act on (image, command, environment,
ports, per service) and refuses what they cannot honour with one line naming the
place, so a bad file fails at provision, not as a boot loop on a worker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from veil.errors import InputError
from veil.tee.compose import compose_hash

#: Service and env names as docker compose accepts them.
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Largest compose file accepted (dstack's own limit is in the same range).
MAX_COMPOSE_BYTES = 64 * 1024


@dataclass(frozen=True)
class PortMapping:
    """`published:target`; `published` is None when compose lets the runtime choose."""

    target: int
    published: int | None = None


@dataclass(frozen=True)
class Service:
    name: str
    image: str
    command: tuple[str, ...] | str | None
    environment: dict[str, str]
    ports: tuple[PortMapping, ...]


@dataclass(frozen=True)
class ComposeSpec:
    services: dict[str, Service]
    text: str

    def env_references(self) -> set[str]:
        """`${NAME}` references in the file: the keys the encrypted env must supply."""
        return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-[^}]*)?\}", self.text))


def _port(value: Any, where: str) -> PortMapping:
    if isinstance(value, int) and not isinstance(value, bool):
        return PortMapping(target=_port_number(value, where))
    if isinstance(value, str):
        text = value.split("/", 1)[0]
        parts = text.split(":")
        if len(parts) == 1:
            return PortMapping(target=_port_number(parts[0], where))
        if len(parts) in (2, 3):
            return PortMapping(
                target=_port_number(parts[-1], where), published=_port_number(parts[-2], where)
            )
    if isinstance(value, dict) and "target" in value:
        published = value.get("published")
        return PortMapping(
            target=_port_number(value["target"], where),
            published=None if published is None else _port_number(published, where),
        )
    raise InputError(f"compose: {where}: {value!r} is not a port mapping")


def _port_number(value: Any, where: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InputError(f"compose: {where}: {value!r} is not a port number") from None
    if not 1 <= number <= 65535:
        raise InputError(f"compose: {where}: port {number} is outside 1-65535")
    return number


def _environment(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    items: list[tuple[str, Any]]
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = []
        for entry in value:
            if not isinstance(entry, str):
                raise InputError(f"compose: {where}: {entry!r} is not KEY=VALUE")
            key, _, item = entry.partition("=")
            items.append((key, item))
    else:
        raise InputError(f"compose: {where}: expected a mapping or a list of KEY=VALUE")
    env: dict[str, str] = {}
    for key, item in items:
        if not isinstance(key, str) or not _ENV_KEY.match(key):
            raise InputError(f"compose: {where}: {key!r} is not an environment variable name")
        env[key] = "" if item is None else str(item)
    return env


def _command(value: Any, where: str) -> tuple[str, ...] | str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return tuple(value)
    raise InputError(f"compose: {where}: expected a string or a list of strings")


def _service(name: str, body: Any) -> Service:
    where = f"services.{name}"
    if not _NAME.match(name):
        raise InputError(f"compose: {where}: {name!r} is not a valid service name")
    if not isinstance(body, dict):
        raise InputError(f"compose: {where}: expected a mapping")
    image = body.get("image")
    if not isinstance(image, str) or not image:
        raise InputError(f"compose: {where}.image: every service needs an image")
    ports = body.get("ports") or []
    if not isinstance(ports, list):
        raise InputError(f"compose: {where}.ports: expected a list")
    return Service(
        name=name,
        image=image,
        command=_command(body.get("command"), f"{where}.command"),
        environment=_environment(body.get("environment"), f"{where}.environment"),
        ports=tuple(_port(port, f"{where}.ports[{i}]") for i, port in enumerate(ports)),
    )


def parse_compose(text: str) -> ComposeSpec:
    """Parse docker-compose YAML; an InputError names the first problem."""
    if len(text.encode()) > MAX_COMPOSE_BYTES:
        raise InputError(f"compose: larger than {MAX_COMPOSE_BYTES} bytes")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        place = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "not valid YAML"
        raise InputError(f"compose: {problem}{place}") from None
    if not isinstance(document, dict):
        raise InputError("compose: expected a mapping with a 'services' key")
    services = document.get("services")
    if not isinstance(services, dict) or not services:
        raise InputError("compose: 'services' must map at least one service name to its body")
    return ComposeSpec(
        services={str(name): _service(str(name), body) for name, body in services.items()},
        text=text,
    )


def app_compose(
    name: str, compose_text: str, allowed_envs: list[str], *, gateway: bool = True
) -> dict[str, Any]:
    """The dstack app-compose document (manifest v2) a CVM boots and measures."""
    for key in allowed_envs:
        if not _ENV_KEY.match(key):
            raise InputError(f"allowed_envs: {key!r} is not an environment variable name")
    return {
        "manifest_version": 2,
        "name": name,
        "runner": "docker-compose",
        "docker_compose_file": compose_text,
        "kms_enabled": True,
        "gateway_enabled": gateway,
        "public_logs": False,
        "public_sysinfo": False,
        "allowed_envs": sorted(set(allowed_envs)),
        "no_instance_id": False,
        "secure_time": False,
    }


def app_compose_hash(document: dict[str, Any]) -> str:
    """The RTMR3 `compose-hash` of an app-compose document (hex, no 0x)."""
    return compose_hash(document)
