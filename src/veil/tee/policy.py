"""Attestation policy: what, beyond a valid Intel signature, a verifier is willing to accept.

A policy is a TOML file (read with tomllib). Every field has a safe default, so an empty
policy means: TDX only, TCB `UpToDate` only, no advisories, collateral at most 30 days
old, no debug TDs, no simulated TEEs. Unknown keys are refused so that a typo never
silently widens what is accepted. docs/provider.md shows a complete example.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from veil.errors import InputError

DEFAULT_MAX_COLLATERAL_AGE = 30 * 24 * 3600
REPORT_DATA_MODES = ("any", "sha512", "nonce")


@dataclass(frozen=True)
class OsImage:
    """One allowed OS image: by its measured os-image-hash event, or by MRTD and RTMR0-2."""

    name: str = ""
    os_image_hash: str | None = None
    mrtd: str | None = None
    rtmr0: str | None = None
    rtmr1: str | None = None
    rtmr2: str | None = None


@dataclass(frozen=True)
class ReportDataRule:
    """How the quote's 64-byte report data must bind the attested key or a fresh nonce.

    `sha512`: report_data == sha512(tag.encode() + b":" + content), as dstack binds keys.
    `nonce`: report_data == nonce, right-padded with zero bytes to 64 bytes.
    `any`: report data is reported but not checked.
    """

    mode: str = "any"
    tag: str = ""
    content: bytes | None = None
    nonce: bytes | None = None

    def expected(self) -> bytes | None:
        if self.mode == "sha512" and self.content is not None:
            return bound_report_data(self.tag, self.content)
        if self.mode == "nonce" and self.nonce is not None:
            return self.nonce.ljust(64, b"\0")
        return None


def bound_report_data(tag: str, content: bytes) -> bytes:
    """The report data that binds `content` (e.g. a public key) under `tag`, dstack style."""
    return hashlib.sha512(tag.encode() + b":" + content).digest()


@dataclass(frozen=True)
class GpuPolicy:
    """What an NVIDIA GPU claim set must show (see gpu.py)."""

    required: bool = False
    allowed_hwmodels: tuple[str, ...] = ()
    require_secure_boot: bool = True
    allow_debug: bool = False
    nonce: str | None = None
    require_binding: bool = True


@dataclass(frozen=True)
class Policy:
    """Everything `verify_evidence` checks beyond the signature chain."""

    allowed_tee: tuple[str, ...] = ("tdx",)
    accepted_tcb_statuses: tuple[str, ...] = ("UpToDate",)
    accepted_advisories: tuple[str, ...] = ()
    max_collateral_age: int | None = DEFAULT_MAX_COLLATERAL_AGE
    allow_simulated: bool = False
    allow_debug: bool = False
    require_event_log: bool = False
    allowed_compose_hashes: tuple[str, ...] = ()
    allowed_app_ids: tuple[str, ...] = ()
    os_images: tuple[OsImage, ...] = ()
    simulator_keys: tuple[str, ...] = ()
    report_data: ReportDataRule = field(default_factory=ReportDataRule)
    gpu: GpuPolicy = field(default_factory=GpuPolicy)

    def needs_event_log(self) -> bool:
        """Compose, app and os-image-hash constraints can only be judged from a replayed log."""
        return (
            self.require_event_log
            or bool(self.allowed_compose_hashes)
            or bool(self.allowed_app_ids)
            or any(image.os_image_hash for image in self.os_images)
        )

    def binding(self, *, content: bytes | None = None, nonce: bytes | None = None) -> Policy:
        """This policy with the key or nonce known only at verification time filled in."""
        rule = self.report_data
        if content is not None:
            rule = replace(rule, mode="sha512", content=content)
        if nonce is not None:
            rule = replace(rule, mode="nonce", nonce=nonce)
        return replace(self, report_data=rule)


DEFAULT_POLICY = Policy()


def _hex(value: Any, where: str, size: int | None = None) -> str:
    if not isinstance(value, str):
        raise InputError(f"{where}: expected a hex string")
    text = value.lower().removeprefix("0x")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise InputError(f"{where}: not hex") from None
    if size is not None and len(raw) != size:
        raise InputError(f"{where}: expected {size} bytes, got {len(raw)}")
    return text


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{where}: expected a list of strings")
    return tuple(value)


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{where}: expected true or false")
    return value


def _check_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(unknown)}")


def policy_from_dict(data: dict[str, Any], name: str = "policy") -> Policy:
    """Build a Policy from parsed TOML, refusing unknown keys and malformed values."""
    top = {
        "allowed_tee", "accepted_tcb_statuses", "accepted_advisories", "max_collateral_age",
        "allow_simulated", "allow_debug", "require_event_log", "allowed_compose_hashes",
        "allowed_app_ids", "os_images", "simulator_keys", "report_data", "gpu",
    }  # fmt: skip
    _check_keys(data, top, name)
    kwargs: dict[str, Any] = {}
    if "allowed_tee" in data:
        tees = tuple(t.lower() for t in _strings(data["allowed_tee"], f"{name} allowed_tee"))
        if not set(tees) <= {"tdx", "sgx"}:
            raise InputError(f"{name} allowed_tee: only 'tdx' and 'sgx' are known")
        kwargs["allowed_tee"] = tees
    for key in ("accepted_tcb_statuses", "accepted_advisories"):
        if key in data:
            kwargs[key] = _strings(data[key], f"{name} {key}")
    if "max_collateral_age" in data:
        age = data["max_collateral_age"]
        if not isinstance(age, int) or isinstance(age, bool) or age <= 0:
            raise InputError(f"{name} max_collateral_age: expected a positive number of seconds")
        kwargs["max_collateral_age"] = age
    for key in ("allow_simulated", "allow_debug", "require_event_log"):
        if key in data:
            kwargs[key] = _bool(data[key], f"{name} {key}")
    if "allowed_compose_hashes" in data:
        hashes = _strings(data["allowed_compose_hashes"], f"{name} allowed_compose_hashes")
        kwargs["allowed_compose_hashes"] = tuple(
            _hex(h, f"{name} allowed_compose_hashes", 32) for h in hashes
        )
    if "allowed_app_ids" in data:
        ids = _strings(data["allowed_app_ids"], f"{name} allowed_app_ids")
        kwargs["allowed_app_ids"] = tuple(_hex(i, f"{name} allowed_app_ids") for i in ids)
    if "simulator_keys" in data:
        keys = _strings(data["simulator_keys"], f"{name} simulator_keys")
        kwargs["simulator_keys"] = tuple(_hex(k, f"{name} simulator_keys", 32) for k in keys)
    if "os_images" in data:
        kwargs["os_images"] = tuple(_os_images(data["os_images"], name))
    if "report_data" in data:
        kwargs["report_data"] = _report_data(data["report_data"], f"{name} report_data")
    if "gpu" in data:
        kwargs["gpu"] = _gpu(data["gpu"], f"{name} gpu")
    return Policy(**kwargs)


def _os_images(value: Any, name: str) -> list[OsImage]:
    if not isinstance(value, list):
        raise InputError(f"{name} os_images: expected [[os_images]] tables")
    images = []
    for index, entry in enumerate(value):
        where = f"{name} os_images[{index}]"
        if not isinstance(entry, dict):
            raise InputError(f"{where}: expected a table")
        _check_keys(entry, {"name", "os_image_hash", "mrtd", "rtmr0", "rtmr1", "rtmr2"}, where)
        fields: dict[str, Any] = {"name": str(entry.get("name", ""))}
        if "os_image_hash" in entry:
            fields["os_image_hash"] = _hex(entry["os_image_hash"], f"{where} os_image_hash", 32)
        for key in ("mrtd", "rtmr0", "rtmr1", "rtmr2"):
            if key in entry:
                fields[key] = _hex(entry[key], f"{where} {key}", 48)
        has_measurements = all(k in fields for k in ("mrtd", "rtmr0", "rtmr1", "rtmr2"))
        if "os_image_hash" not in fields and not has_measurements:
            raise InputError(f"{where}: give os_image_hash, or all of mrtd, rtmr0, rtmr1, rtmr2")
        images.append(OsImage(**fields))
    return images


def _report_data(value: Any, where: str) -> ReportDataRule:
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected a table")
    _check_keys(value, {"mode", "tag", "content", "nonce"}, where)
    mode = value.get("mode", "any")
    if mode not in REPORT_DATA_MODES:
        raise InputError(f"{where} mode: expected one of {', '.join(REPORT_DATA_MODES)}")
    tag = value.get("tag", "")
    if not isinstance(tag, str):
        raise InputError(f"{where} tag: expected a string")
    content = (
        bytes.fromhex(_hex(value["content"], f"{where} content")) if "content" in value else None
    )
    nonce = bytes.fromhex(_hex(value["nonce"], f"{where} nonce")) if "nonce" in value else None
    if nonce is not None and len(nonce) > 64:
        raise InputError(f"{where} nonce: at most 64 bytes")
    if mode == "sha512" and not tag:
        raise InputError(f"{where}: mode 'sha512' needs a tag")
    return ReportDataRule(mode=mode, tag=tag, content=content, nonce=nonce)


def _gpu(value: Any, where: str) -> GpuPolicy:
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected a table")
    allowed = {"required", "allowed_hwmodels", "require_secure_boot", "allow_debug", "nonce",
               "require_binding"}  # fmt: skip
    _check_keys(value, allowed, where)
    kwargs: dict[str, Any] = {}
    for key in ("required", "require_secure_boot", "allow_debug", "require_binding"):
        if key in value:
            kwargs[key] = _bool(value[key], f"{where} {key}")
    if "allowed_hwmodels" in value:
        kwargs["allowed_hwmodels"] = _strings(
            value["allowed_hwmodels"], f"{where} allowed_hwmodels"
        )
    if "nonce" in value:
        kwargs["nonce"] = _hex(value["nonce"], f"{where} nonce")
    return GpuPolicy(**kwargs)


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read a policy TOML file; one clear line naming the file when it is unusable."""
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text())
    except OSError as error:
        raise InputError(f"policy {file}: cannot read ({error.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"policy {file}: not TOML ({error})") from None
    return policy_from_dict(data, f"policy {file}")
