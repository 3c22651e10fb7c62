"""`veil cloud`: run the control plane, and deploy and manage confidential apps on it.

The customer's secrets never leave this machine in clear: `deploy` checks that the env
public key the control plane relays was signed by the KMS, encrypts the env to it here
(dstack's format), and sends only the ciphertext and the key names. An API key, from
`veil cloud login` (Sign-In with Ethereum), is kept under $VEIL_HOME with mode 0600.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from veil.chain.home import veil_home
from veil.cli.accounts import resolve_signer
from veil.cli.options import AccountOpt, KeystoreOpt, RpcOpt
from veil.errors import InputError, VeilError

app = typer.Typer(
    no_args_is_help=True, help="Deploy confidential apps and run the cloud control plane."
)
console = Console(highlight=False, soft_wrap=True)

URL_ENV = "VEIL_CLOUD_URL"
KEY_ENV = "VEIL_CLOUD_API_KEY"
DEFAULT_URL = "http://127.0.0.1:8800"
UrlOpt = typer.Option(None, "--url", help=f"Control plane URL (default: login's, ${URL_ENV}).")
JsonOpt = typer.Option(False, "--json", help="Print JSON.")
_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


def credentials_path() -> Path:
    return veil_home() / "cloud" / "credentials.json"


class ApiFailure(VeilError):
    """The control plane refused: its code, message and request id in one line."""


def _credentials() -> dict[str, Any]:
    path = credentials_path()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        raise InputError(f"{path}: unreadable; run `veil cloud login` again") from None
    return data if isinstance(data, dict) else {}


def _client(url: str | None, *, auth: bool = True) -> Any:
    import httpx

    saved = _credentials()
    base = url or os.environ.get(URL_ENV) or saved.get("url") or DEFAULT_URL
    headers = {}
    if auth:
        key = os.environ.get(KEY_ENV) or saved.get("api_key")
        if not key:
            raise InputError(f"not logged in: run `veil cloud login` (or set ${KEY_ENV})")
        headers["Authorization"] = f"Bearer {key}"
    return httpx.Client(base_url=base.rstrip("/"), headers=headers, timeout=30)


def _call(client: Any, method: str, path: str, **kwargs: Any) -> Any:
    import httpx

    try:
        answer = client.request(method, path, **kwargs)
    except httpx.HTTPError as error:
        raise VeilError(f"control plane {client.base_url}: {type(error).__name__}") from None
    if answer.status_code >= 400:
        try:
            body = answer.json()
            text = f"{body['code']}: {body['message']} (request {body['request_id']})"
            if body.get("details"):
                text += f" {json.dumps(body['details'])}"
        except (ValueError, KeyError, TypeError):
            text = f"HTTP {answer.status_code}: {answer.text[:200]}"
        raise ApiFailure(text)
    return answer.json()


def _app_id(client: Any, app: str) -> str:
    """An app id, or the name of one of the caller's apps."""
    if re.fullmatch(r"0x[0-9a-fA-F]{40}", app):
        return app
    for entry in _call(client, "GET", "/v1/apps"):
        if entry["name"] == app:
            return str(entry["app_id"])
    raise InputError(f"no app named {app!r} (see `veil cloud ls`)")


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (dotenv): comments and blank lines skipped, one pair of quotes removed."""
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise InputError(f"--env-file {path}: cannot read ({error.strerror})") from None
    env: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _ENV_LINE.match(line)
        if match is None:
            raise InputError(f"--env-file {path}:{number}: expected KEY=VALUE")
        key, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key] = value
    return env


@app.command(epilog="Example: veil cloud serve --kms-url http://127.0.0.1:8701 --port 8800")
def serve(
    db: str = typer.Option(None, "--db", help="Database URL (default: sqlite under $VEIL_HOME)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8800, "--port", min=1, max=65535, help="TCP port."),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="Server processes."),
    kms_url: str = typer.Option(None, "--kms-url", help="KMS the control plane asks."),
    worker_kms_url: str = typer.Option(None, "--worker-kms-url", help="KMS URL for workers."),
    gateway_token: str = typer.Option(
        None, "--gateway-token", envvar="VEIL_GATEWAY_TOKEN", help="Token the gateway sends."
    ),
    worker_timeout: int = typer.Option(30, "--worker-timeout", min=1, help="Seconds."),
    provision_ttl: int = typer.Option(600, "--provision-ttl", min=1, help="Seconds."),
    siwe_domain: str = typer.Option(None, "--siwe-domain", help="SIWE domain (default: Host)."),
    chain_id: int = typer.Option(None, "--chain-id", help="SIWE chain id (default: deployment's)."),
    deployment: Path = typer.Option(
        None, "--deployment", "-d", help="Deployment file: workers must be active in its registry."
    ),
    rpc: str = RpcOpt,
    auth_rate: int = typer.Option(
        60, "--auth-rate", min=0, help="SIWE requests per client per minute (0: no limit)."
    ),
    log_level: str = typer.Option("warning", "--log-level", help="uvicorn log level."),
    db_read_connections: int = typer.Option(
        2, "--db-read-connections", min=1, max=64, help="PostgreSQL: read connections per process."
    ),
    operator_key: str = typer.Option(
        None,
        "--operator-key",
        envvar="VEIL_OPERATOR_KEY",
        help="Key that submits customers' signed leases (needed when -d has a Market).",
    ),
) -> None:
    """Serve the control plane API (OpenAPI at /openapi.json, docs at /docs) until stopped.

    The database is upgraded to the newest schema first; PostgreSQL
    (postgresql+psycopg://...) lets several replicas share one database.
    """
    import uvicorn

    from veil.services.cloud import asgi
    from veil.services.cloud.database import default_url, open_engine, upgrade

    url = db or default_url(veil_home().resolve())
    if chain_id is None and deployment is not None:
        from veil.chain import deployment as deployments

        chain_id = deployments.load(deployment).chain_id
    settings: dict[str, Any] = {
        "db_url": url,
        "kms_url": kms_url,
        "worker_kms_url": worker_kms_url,
        "gateway_token": gateway_token,
        "worker_timeout": worker_timeout,
        "provision_ttl": provision_ttl,
        "siwe_domain": siwe_domain,
        "chain_id": chain_id or 31337,
        "deployment": str(deployment) if deployment else None,
        "rpc": rpc,
        "auth_rate": auth_rate,
        "operator_key": operator_key,
        "pg_read_connections": db_read_connections,
    }
    checked = asgi.config_from_json(settings)  # refuse bad settings before anything listens
    if checked.escrow is not None:
        console.print(
            f"billing: per second through Market {checked.escrow.market.address} "
            f"(leases submitted by {checked.operator.address})"
        )
    else:
        why = "no -d deployment" if deployment is None else "no Market or no --operator-key"
        console.print(f"billing: off ({why}): apps run unbilled")
    engine = open_engine(url)
    try:
        upgrade(engine)
    except Exception as error:
        raise InputError(f"--db: cannot open or upgrade the database ({error})") from None
    finally:
        engine.dispose()
    os.environ[asgi.CONFIG_ENV] = json.dumps(settings)
    console.print(f"veil cloud control plane on http://{host}:{port} (db {url.split('@')[-1]})")
    uvicorn.run(
        "veil.services.cloud.asgi:app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
    )


@app.command(epilog="Example: veil cloud login --url http://127.0.0.1:8800 -a alice")
def login(
    url: str = UrlOpt,
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Sign in with Ethereum; the API key is saved under $VEIL_HOME (mode 0600)."""
    from eth_account.messages import encode_defunct

    from veil.atomic import write_json
    from veil.services.cloud.siwe import SiweMessage, rfc3339

    signer = resolve_signer(account, keystore)
    client = _client(url, auth=False)
    nonce = _call(client, "POST", "/v1/auth/siwe/nonce")
    now = int(time.time())
    message = SiweMessage(
        domain=nonce["domain"],
        address=signer.address,
        statement="Sign in to veil cloud",
        uri=str(client.base_url),
        version="1",
        chain_id=int(nonce["chain_id"]),
        nonce=nonce["nonce"],
        issued_at=rfc3339(now),
        expiration_time=rfc3339(now + 300),
    ).text()
    signature = signer.sign_message(encode_defunct(text=message)).signature.hex()
    key = _call(
        client,
        "POST",
        "/v1/auth/siwe/verify",
        json={"message": message, "signature": signature, "label": "cli"},
    )
    path = credentials_path()
    write_json(
        path,
        {
            "url": str(client.base_url),
            "address": key["address"],
            "key_id": key["key_id"],
            "api_key": key["api_key"],
        },
    )
    os.chmod(path, 0o600)
    if as_json:
        typer.echo(
            json.dumps(
                {"address": key["address"], "key_id": key["key_id"], "credentials": str(path)}
            )
        )
        return
    console.print(f"logged in as {key['address']} (key {key['key_id']}, saved in {path})")


def _print_app(entry: dict[str, Any]) -> None:
    sim = " SIMULATED" if entry.get("simulated") else ""
    console.print(f"{entry['name']}  {entry['app_id']}")
    console.print(f"  status   {entry['status']}{sim} (desired {entry['desired']})")
    if entry.get("status_reason"):
        console.print(f"  reason   {entry['status_reason']}")
    if entry.get("error"):
        console.print(f"  error    {entry['error']}")
    if entry["status"] in ("pulling", "starting"):
        console.print(f"  boot     {entry['boot_progress']}%")
    console.print(f"  type     {entry['instance_type']}   version {entry['version']}")
    console.print(f"  compose  {entry['compose_hash']}")
    if entry.get("worker"):
        console.print(f"  worker   {entry['worker']}")
    for port, target in sorted(entry.get("ports", {}).items()):
        console.print(f"  port     {port} -> {target}")


@app.command(epilog="Example: veil cloud deploy compose.yaml --env-file .env --name web --wait")
def deploy(
    compose: Path = typer.Argument(..., help="docker-compose file."),
    env_file: Path = typer.Option(None, "--env-file", help="Secrets as KEY=VALUE lines."),
    instance: str = typer.Option("tdx.small", "--instance", help="Instance type."),
    name: str = typer.Option(None, "--name", help="App name (default: the compose's folder)."),
    kms_signer: str = typer.Option(
        None, "--kms-signer", envvar="VEIL_KMS_SIGNER", help="The KMS address to trust."
    ),
    deployment: Path = typer.Option(
        None, "--deployment", "-d", help="Register the compose hash on this network's AppAuth."
    ),
    rpc: str = RpcOpt,
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    wait: bool = typer.Option(False, "--wait", help="Follow the app until running or failed."),
    timeout: float = typer.Option(120, "--timeout", help="Seconds --wait waits."),
    fund: str = typer.Option(
        None, "--fund", help="PHA the app's lease starts with (default: 24 h of runway)."
    ),
    url: str = UrlOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Deploy an app, or update it when the name exists; secrets are encrypted here.

    Provision, check the KMS signature on the env key, encrypt the env locally, allow the
    compose hash on AppAuth (with -d), commit, and sign the app's lease when the control
    plane bills (with -d; deposits first what the escrow lacks)."""
    from veil.cloud.envcrypt import encrypt_env
    from veil.cloud.kms import verify_env_pubkey

    try:
        text = compose.read_text()
    except OSError as error:
        raise InputError(f"{compose}: cannot read ({error.strerror})") from None
    folder = re.sub(r"[^a-z0-9-]+", "-", compose.resolve().parent.name.lower()).strip("-")
    app_name = name or folder[:63].strip("-") or "app"
    env = read_env_file(env_file) if env_file else {}
    client = _client(url)
    if deployment is None and _call(client, "GET", "/v1/info").get("market"):
        raise InputError(
            "this control plane bills through the market: pass -d DEPLOYMENT (and -a) "
            "so the lease can be signed here"
        )
    provisioned = _call(
        client,
        "POST",
        "/v1/apps/provision",
        json={
            "name": app_name,
            "compose": text,
            "instance_type": instance,
            "allowed_envs": sorted(env),
        },
    )
    app_id = provisioned["app_id"]
    if provisioned["updates"]:
        console.print(f"updating {app_name} ({app_id})")
    trusted = kms_signer or provisioned["kms_signer"]
    if not verify_env_pubkey(
        app_id, provisioned["env_public_key"], provisioned["env_public_key_signature"], trusted
    ):
        raise VeilError(
            f"env public key for {app_id} is not signed by the KMS {trusted}; "
            "refusing to encrypt secrets to it"
        )
    if kms_signer is None:
        console.print(
            f"warning: KMS signer {trusted} taken from the control plane (pin it with --kms-signer)"
        )
    encrypted = encrypt_env(env, provisioned["env_public_key"]) if env else ""
    if deployment is not None:
        from veil.chain import deployment as deployments
        from veil.chain.client import Chain
        from veil.cloud.app_auth import AppAuthClient, app_id_for

        signer = resolve_signer(account, keystore)
        if app_id_for(signer.address, app_name).lower() != app_id.lower():
            raise InputError(
                f"-a/--keystore {signer.address} is not the account you logged in as: the "
                "app must be registered on AppAuth by the account that owns it"
            )
        auth = AppAuthClient.from_chain(Chain.open(deployments.load(deployment), rpc))
        auth.allow(signer, app_name, provisioned["compose_hash"])
        console.print(f"compose hash {provisioned['compose_hash']} allowed on AppAuth")
    # an update follows only what happens after its commit, not the last version's "running"
    since = _last_event_id(client, app_id) if wait and provisioned["updates"] else 0
    committed = _call(
        client,
        "POST",
        f"/v1/apps/{app_id}/commit",
        json={
            "provision_id": provisioned["provision_id"],
            "encrypted_env": encrypted,
            "env_keys": sorted(env),
        },
    )
    from veil.cli.cloud_billing import open_app_lease

    signer = resolve_signer(account, keystore) if deployment is not None else None
    billed = open_app_lease(client, app_id, signer, deployment, rpc, fund)
    if as_json:
        pass
    elif not billed.get("billed"):
        console.print(f"billing: not billed ({billed.get('reason', '')})")
    else:
        console.print(
            f"billing: lease {billed['lease_id']} at {billed['rate_wei_per_second']} wei/s, "
            f"runway {billed['runway_seconds']} s"
        )
    if wait:
        committed = _follow(client, app_id, timeout, since)
    if as_json:
        typer.echo(json.dumps(committed))
    else:
        _print_app(committed)
    if committed["status"] == "failed":
        raise VeilError(f"app {app_name} failed to boot: {committed['error']}")


def _last_event_id(client: Any, app_id: str) -> int:
    last = 0
    with client.stream("GET", f"/v1/apps/{app_id}/events?follow=0") as answer:
        for line in answer.iter_lines():
            if line.startswith("id: "):
                last = int(line[4:])
    return last


def _follow(client: Any, app_id: str, timeout: float, since: int = 0) -> Any:
    """Print the app's state stream (after event `since`) until it runs, fails, or `timeout`."""
    deadline = time.monotonic() + timeout
    last = since
    while time.monotonic() < deadline:
        with client.stream(
            "GET", f"/v1/apps/{app_id}/events?follow=0", headers={"Last-Event-ID": str(last)}
        ) as answer:
            for line in answer.iter_lines():
                if line.startswith("id: "):
                    last = int(line[4:])
                if not line.startswith("data: "):
                    continue
                event = json.loads(line[6:])
                detail = event.get("reason") or event.get("error") or ""
                if "boot_progress" in event:
                    detail = f"{event['boot_progress']}% {detail}".strip()
                console.print(f"  {event['state']:<12} {detail}")
                if event["state"] in ("running", "failed", "deleted"):
                    return _call(client, "GET", f"/v1/apps/{app_id}")
        time.sleep(0.2)
    raise VeilError(f"app {app_id} not running after {timeout:.0f} s (see `veil cloud status`)")


@app.command("ls", epilog="Example: veil cloud ls --json")
def list_apps(url: str = UrlOpt, as_json: bool = JsonOpt) -> None:
    """Your apps and their status."""
    apps = _call(_client(url), "GET", "/v1/apps")
    if as_json:
        typer.echo(json.dumps(apps))
        return
    if not apps:
        console.print("no apps (deploy one with `veil cloud deploy compose.yaml`)")
    for entry in apps:
        sim = " SIMULATED" if entry.get("simulated") else ""
        console.print(
            f"{entry['app_id']}  {entry['name']:<20} {entry['status']}{sim}  "
            f"{entry['instance_type']}"
        )


@app.command(epilog="Example: veil cloud status web")
def status(
    app_ref: str = typer.Argument(..., metavar="APP", help="App id or name."),
    url: str = UrlOpt,
    as_json: bool = JsonOpt,
) -> None:
    """One app: status, reason or boot error, worker, ports."""
    client = _client(url)
    entry = _call(client, "GET", f"/v1/apps/{_app_id(client, app_ref)}")
    if as_json:
        typer.echo(json.dumps(entry))
    else:
        _print_app(entry)


def _lifecycle(app_ref: str, url: str | None, action: str, as_json: bool) -> None:
    client = _client(url)
    app_id = _app_id(client, app_ref)
    if action == "delete":
        entry = _call(client, "DELETE", f"/v1/apps/{app_id}")
    else:
        entry = _call(client, "POST", f"/v1/apps/{app_id}/{action}")
    if as_json:
        typer.echo(json.dumps(entry))
    else:
        console.print(f"{action}: {entry['name']} ({app_id}) is {entry['status']}")


@app.command(epilog="Example: veil cloud stop web")
def stop(
    app_ref: str = typer.Argument(..., metavar="APP", help="App id or name."),
    url: str = UrlOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Stop the app; it keeps its placement until started again."""
    _lifecycle(app_ref, url, "stop", as_json)


@app.command(epilog="Example: veil cloud start web")
def start(
    app_ref: str = typer.Argument(..., metavar="APP", help="App id or name."),
    url: str = UrlOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Start a stopped app."""
    _lifecycle(app_ref, url, "start", as_json)


@app.command(epilog="Example: veil cloud restart web")
def restart(
    app_ref: str = typer.Argument(..., metavar="APP", help="App id or name."),
    url: str = UrlOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Boot the app again from scratch."""
    _lifecycle(app_ref, url, "restart", as_json)


@app.command(epilog="Example: veil cloud delete web -d devnet.json -a alice")
def delete(
    app_ref: str = typer.Argument(..., metavar="APP", help="App id or name."),
    deployment: Path = typer.Option(
        None, "--deployment", "-d", help="Close the app's lease on this network (refund now)."
    ),
    rpc: str = RpcOpt,
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    url: str = UrlOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Remove the app from every worker; with -d, also close its lease (refund now).

    The lease is closed as its customer, which refunds the unspent balance at once."""
    from veil.cli.cloud_billing import close_app_lease

    client = _client(url)
    app_id = _app_id(client, app_ref)
    signer = resolve_signer(account, keystore) if deployment is not None else None
    closed = close_app_lease(client, app_id, signer, deployment, rpc)
    _lifecycle(app_id, url, "delete", as_json)
    if closed:
        console.print(closed)


@app.command(epilog="Example: veil cloud events web --follow")
def events(
    app_ref: str = typer.Argument(..., metavar="APP", help="App id or name."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new events."),
    url: str = UrlOpt,
) -> None:
    """The app's history: provisioning, placement, boot progress, running, boot errors."""
    client = _client(url)
    app_id = _app_id(client, app_ref)
    path = f"/v1/apps/{app_id}/events?follow={'1' if follow else '0'}"
    with client.stream("GET", path, timeout=None) as answer:
        for line in answer.iter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                extra = {k: v for k, v in event.items() if k not in ("state", "at")}
                console.print(
                    f"{time.strftime('%H:%M:%S', time.gmtime(event['at']))} "
                    f"{event['state']:<12} {json.dumps(extra) if extra else ''}"
                )


@app.command(epilog="Example: veil cloud attestation web --policy policy.toml")
def attestation(
    app_ref: str = typer.Argument(..., metavar="APP", help="App id or name."),
    policy: Path = typer.Option(None, "--policy", help="Policy TOML (default: strict)."),
    pccs: str = typer.Option(None, "--pccs", help="Fetch Intel collateral from this PCCS."),
    url: str = UrlOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Verify the running app's quote; exit 0 only if compose hash and OS image pass.

    The compose hash must be the one you deployed; the OS image one the policy allows."""
    from veil.tee.collateral import CollateralCache, default_cache_dir
    from veil.tee.evidence import evidence_from_json
    from veil.tee.policy import DEFAULT_POLICY, ReportDataRule, load_policy
    from veil.tee.tdx import parse_measurements
    from veil.tee.verification import verify_evidence

    client = _client(url)
    app_id = _app_id(client, app_ref)
    deployed = _call(client, "GET", f"/v1/apps/{app_id}")
    evidence_json = _call(client, "GET", f"/v1/apps/{app_id}/attestation")
    evidence = evidence_from_json(evidence_json, f"app {app_id} attestation")
    rules = load_policy(policy) if policy else DEFAULT_POLICY
    # The compose hash must be the one this account deployed; report data binds the app's
    # own key, which this command cannot know, so it is shown, not judged.
    rules = replace(
        rules,
        allowed_compose_hashes=(deployed["compose_hash"],),
        report_data=ReportDataRule(),
        require_event_log=True,
    )
    collateral = None
    if pccs is not None and not evidence.claims_simulated:
        measured = parse_measurements(evidence.quote)
        if measured.fmspc is not None:
            cache = CollateralCache(default_cache_dir(), pccs)
            collateral = cache.get(measured.fmspc, int(time.time()), tee=measured.tee)
    verdict = verify_evidence(evidence, collateral, rules)
    if as_json:
        typer.echo(
            json.dumps({"app_id": app_id, "worker": evidence_json["worker"], **verdict.to_json()})
        )
    else:
        console.print(f"app {deployed['name']} ({app_id}) on worker {evidence_json['worker']}")
        console.print(verdict.render())
    if not verdict.accepted:
        raise typer.Exit(1)


# `billing`, `topup`, `statement` register themselves on `app`.
from veil.cli import cloud_billing as _cloud_billing  # noqa: E402, F401
