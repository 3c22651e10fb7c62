"""Request and response bodies: the OpenAPI contract schemathesis fuzzes.

Field limits sit here (lengths, patterns, sizes) so a malformed request is refused as
`invalid_request` before any handler runs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ADDRESS = r"^0x[0-9a-fA-F]{40}$"
APP_NAME = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
ENV_KEY = r"^[A-Za-z_][A-Za-z0-9_]*$"
HEX = r"^(0x)?[0-9a-fA-F]*$"
#: An encrypted env: epk(32) + iv(12) + ciphertext + tag(16), hex; 64 KiB of plaintext at most.
MAX_ENCRYPTED_ENV = 2 * (32 + 12 + 16 + 64 * 1024)

AppState = Literal[
    "pending", "scheduled", "pulling", "starting", "running", "stopped", "failed", "deleted"
]
DeploymentState = Literal["pulling", "starting", "running", "stopped", "failed"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    code: str
    message: str
    request_id: str
    details: dict[str, Any] | None = None


class NonceOut(BaseModel):
    nonce: str
    expires_at: int
    domain: str
    chain_id: int


class SiweIn(Strict):
    message: str = Field(max_length=4096)
    signature: str = Field(pattern=HEX, max_length=140)
    scopes: list[str] | None = Field(default=None, max_length=8)
    label: str = Field(default="siwe", max_length=100)


class KeyOut(BaseModel):
    key_id: str
    address: str
    scopes: list[str]
    label: str
    created_at: int
    revoked_at: int | None = None


class NewKeyOut(KeyOut):
    api_key: str = Field(description="Shown once; only its sha256 is stored.")


class NewKeyIn(Strict):
    scopes: list[str] = Field(min_length=1, max_length=8)
    label: str = Field(default="", max_length=100)


class ProvisionIn(Strict):
    name: str = Field(pattern=APP_NAME, max_length=63)
    compose: str = Field(max_length=64 * 1024)
    instance_type: str = Field(default="tdx.small", max_length=32)
    allowed_envs: list[str] = Field(default_factory=list, max_length=256)


class ProvisionOut(BaseModel):
    provision_id: str
    app_id: str
    compose_hash: str
    app_compose: dict[str, Any]
    env_public_key: str
    env_public_key_signature: str
    kms_signer: str
    expires_at: int
    updates: bool


class CommitIn(Strict):
    provision_id: str = Field(max_length=40)
    encrypted_env: str = Field(default="", pattern=HEX, max_length=MAX_ENCRYPTED_ENV)
    env_keys: list[str] = Field(default_factory=list, max_length=256)


class AppOut(BaseModel):
    app_id: str
    name: str
    owner: str
    instance_type: str
    compose_hash: str
    allowed_envs: list[str]
    env_keys: list[str]
    desired: Literal["running", "stopped"]
    status: AppState
    status_reason: str
    boot_progress: int
    error: str
    worker: str | None
    deployment_id: str | None
    simulated: bool | None
    ports: dict[str, str]
    version: int
    created_at: int
    updated_at: int


class AttestationOut(BaseModel):
    quote: str
    event_log: Any
    vm_config: Any
    compose_hash: str
    os_image_hash: str | None
    worker: str
    simulated: bool


class Capacity(Strict):
    vcpu: int = Field(ge=0, le=1 << 20)
    memory_mb: int = Field(ge=0, le=1 << 40)
    disk_gb: int = Field(ge=0, le=1 << 40)
    gpu_model: int = Field(default=0, ge=0, le=255)
    gpu_count: int = Field(default=0, ge=0, le=64)


class AppReport(BaseModel):
    deployment_id: str = Field(max_length=40)
    app_id: str = Field(pattern=ADDRESS)
    state: DeploymentState
    boot_progress: int = Field(default=0, ge=0, le=100)
    error: str | None = Field(default=None, max_length=8192)
    ports: dict[str, str] = Field(default_factory=dict)
    attestation: dict[str, Any] | None = None


class SyncIn(BaseModel):
    worker: str = Field(pattern=ADDRESS)
    provider: str = Field(pattern=ADDRESS)
    runtime: Literal["process", "docker", "dstack"]
    simulated: bool
    capacity: Capacity
    address: str | None = Field(default=None, max_length=200)
    apps: list[AppReport] = Field(default_factory=list, max_length=1024)


class DeploymentOut(BaseModel):
    deployment_id: str
    app_id: str
    name: str
    desired: Literal["running", "stopped"]
    compose: str
    app_compose: dict[str, Any]
    compose_hash: str
    encrypted_env: str
    instance_type: str
    kms_url: str | None
    #: The market lease the worker checks on the chain before running ("" when unbilled).
    lease_id: str = ""


class SyncOut(BaseModel):
    deployments: list[DeploymentOut]
    #: sha256 of the deployments' canonical JSON: send it back as `known` to long-poll.
    version: str = ""


class RouteOut(BaseModel):
    url: str
