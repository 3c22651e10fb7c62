"""`veil ai serve` (the attested, signing AI gateway) and `veil ai verify URL` (its client)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from veil.cli.options import AccountOpt, DeploymentOpt, KeystoreOpt, RpcOpt
from veil.errors import InputError

app = typer.Typer(no_args_is_help=True, help="Confidential AI inference: serve and verify.")
console = Console(highlight=False, soft_wrap=True)


def _hex32(value: str | None, what: str) -> bytes | None:
    if value is None:
        return None
    try:
        raw = bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raise InputError(f"{what}: not hex") from None
    if len(raw) != 32:
        raise InputError(f"{what}: expected 32 bytes, got {len(raw)}")
    return raw


#: `veil ai serve`'s lease when no flag gives it: the gateway's own variables first, then
#: what a veil cloud worker tells every billed app (`veil.cloud.agent.lease_env`), so a
#: cloud-deployed gateway bills per token with only `--price` in its compose command.
LEASE_ID_ENV = ["VEIL_AI_LEASE_ID", "VEIL_LEASE_ID"]
MARKET_ENV = ["VEIL_AI_MARKET", "VEIL_MARKET"]
CHAIN_ID_ENV = ["VEIL_AI_CHAIN_ID", "VEIL_CHAIN_ID"]


def parse_lease_id(text: str, what: str = "--lease-id") -> int:
    """A lease id as the market prints it (0x + 64 hex) or as a decimal number."""
    try:
        value = int(text, 16) if text.startswith("0x") else int(text, 10)
    except ValueError:
        raise InputError(f"{what} {text!r}: expected 0x-hex or a decimal number") from None
    if not 0 <= value < 2**256:
        raise InputError(f"{what} {text!r}: out of uint256 range")
    return value


def _address(text: str, what: str) -> str:
    from eth_utils import is_address, to_checksum_address

    if not is_address(text):
        raise InputError(f"{what} {text!r}: expected a 0x address")
    return to_checksum_address(text)


@app.command(
    epilog="Example: veil ai serve --backend http://127.0.0.1:8000 --tee dstack --port 8080"
)
def serve(
    backend: str = typer.Option(
        None, "--backend", help="OpenAI-compatible backend URL (vLLM, llama.cpp server)."
    ),
    backend_key: str = typer.Option(
        None, "--backend-key", envvar="VEIL_AI_BACKEND_KEY", help="Bearer key for the backend."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(
        None, "--port", min=1, max=65535, help="TCP port (default: $PORT, else 8080)."
    ),
    state_dir: Path = typer.Option(
        Path(".veil/ai"), "--state-dir", help="Receipts and usage (SQLite) live here."
    ),
    tee: str = typer.Option("sim", "--tee", help="Quote source: dstack, tdx or sim (SIMULATED)."),
    compose_hash: str = typer.Option(
        None, "--compose-hash", help="sim only: the compose hash the simulated CVM claims."
    ),
    os_image_hash: str = typer.Option(
        None, "--os-image-hash", help="sim only: the OS image hash the simulated CVM claims."
    ),
    retention_days: int = typer.Option(
        30, "--retention-days", min=1, help="Keep receipts this long (governed in production)."
    ),
    usage_token: str = typer.Option(
        None, "--usage-token", envvar="VEIL_AI_USAGE_TOKEN", help="Bearer token for /v1/usage."
    ),
    embeddings: bool = typer.Option(
        True, "--embeddings/--no-embeddings", help="Serve all-MiniLM-L6-v2 embeddings."
    ),
    gpu_command: str = typer.Option(
        None,
        "--gpu-evidence-command",
        help="Prints the NVIDIA claim set for the nonce (hex) appended to it; bound per report.",
    ),
    prices: list[str] = typer.Option(
        [],
        "--price",
        envvar="VEIL_AI_PRICES",
        help="MODEL=PROMPT_WEI:COMPLETION_WEI, repeatable (* = any other model). Put it in "
        "the compose so the attestation covers it.",
    ),
    lease_id: str = typer.Option(
        None, "--lease-id", envvar=LEASE_ID_ENV, help="Meter this lease (per-token billing)."
    ),
    market: str = typer.Option(
        None, "--market", envvar=MARKET_ENV, help="The Market contract of the lease."
    ),
    chain_id: int = typer.Option(
        None, "--chain-id", envvar=CHAIN_ID_ENV, min=1, help="The chain of the Market."
    ),
    user_config: Path = typer.Option(
        None,
        "--user-config",
        help="JSON with VEIL_LEASE_ID/VEIL_MARKET/VEIL_CHAIN_ID (a dstack CVM's user config),"
        " read for what no flag or variable gives.",
    ),
) -> None:
    """Serve the OpenAI-compatible API; every answer signed by a key made inside the TEE."""
    import os

    # one BLAS thread per embeddings call: requests already run side by side in a thread
    # pool, and OpenBLAS's own threads only contend with them (3x slower on 2 cores)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import uvicorn

    from veil.compute.quote_source import Simulator, quote_source
    from veil.inference.embedding import EmbeddingModel
    from veil.inference.metering import parse_prices
    from veil.services.ai.app import GatewayConfig, create_app, gpu_evidence_command
    from veil.tee.simulator import AppSpec

    if tee == "sim":
        spec = AppSpec()
        if compose_hash is not None:
            spec = AppSpec(compose_hash=_hex32(compose_hash, "--compose-hash") or b"")
        if os_image_hash is not None:
            spec = AppSpec(
                compose_hash=spec.compose_hash,
                os_image_hash=_hex32(os_image_hash, "--os-image-hash") or b"",
            )
        source = Simulator(spec)
        console.print("[yellow]SIMULATED TEE: reports prove nothing; for laptops and CI[/]")
    else:
        if compose_hash is not None or os_image_hash is not None:
            raise InputError("--compose-hash/--os-image-hash: only with --tee sim")
        source = quote_source(tee)
    if port is None:
        # a veil cloud runtime chooses the port and says so in $PORT (as most PaaS do)
        given = os.environ.get("PORT", "8080")
        if not given.isdigit() or not 1 <= int(given) <= 65535:
            raise InputError(f"$PORT {given!r}: expected a TCP port (1-65535)")
        port = int(given)
    if backend is not None and not backend.startswith(("http://", "https://")):
        raise InputError(f"--backend {backend!r}: expected an http(s) URL")
    table = parse_prices(prices)
    if user_config is not None:  # the lease facts of a dstack worker, last in line
        from veil.services.ai.app import user_config_lease

        facts = user_config_lease(user_config)
        lease_id = lease_id if lease_id is not None else facts.get("VEIL_LEASE_ID")
        market = market if market is not None else facts.get("VEIL_MARKET")
        if chain_id is None and "VEIL_CHAIN_ID" in facts:
            given = facts["VEIL_CHAIN_ID"]
            if not given.isdigit() or int(given) < 1:
                raise InputError(f"--user-config: VEIL_CHAIN_ID {given!r} is not a chain id")
            chain_id = int(given)
    lease = parse_lease_id(lease_id) if lease_id is not None else None
    market_address = _address(market, "--market") if market is not None else None
    model = EmbeddingModel() if embeddings else None
    gpu = None
    if gpu_command is not None:
        import shlex

        argv = shlex.split(gpu_command)
        if not argv:
            raise InputError("--gpu-evidence-command: empty")
        gpu = gpu_evidence_command(argv)
    config = GatewayConfig(
        state_dir=state_dir,
        quote_source=source,
        backend=backend.rstrip("/") if backend else None,
        backend_key=backend_key,
        embedding_model=model,
        retention_days=retention_days,
        usage_token=usage_token,
        gpu_evidence=gpu,
        prices=table,
        lease_id=lease,
        market=market_address,
        chain_id=chain_id,
    )
    config.check_metering()
    application = create_app(config)
    gateway = application.state.gateway
    console.print(f"signing address (ecdsa): {gateway.keys.ecdsa_address}")
    console.print(f"signing key (ed25519): {gateway.keys.ed25519_public_key}")
    console.print(f"attestation digest: {gateway.attestation_digest}")
    if config.metering:
        console.print(f"metering lease {lease:#066x} in market {market_address} (chain {chain_id})")
    console.print(f"listening on http://{host}:{port}")
    # idle connections stay open 75 s (nginx's default), not uvicorn's 5 s: with 5 s, a
    # client pool that also expires at 5 s races the close and reuses a dead connection
    uvicorn.run(application, host=host, port=port, log_level="warning", timeout_keep_alive=75)


# How `verify` and `meter` check a gateway's quote: the same three options.
PolicyOpt = typer.Option(
    None, "--policy", help="Attestation policy TOML (default: production, no simulators)."
)
CollateralOpt = typer.Option(
    None, "--collateral", help="Intel collateral JSON for a real TDX quote."
)
PccsOpt = typer.Option(
    None, "--pccs", help="Fetch Intel collateral for the gateway's quote from this PCCS."
)


@app.command(epilog="Example: veil ai verify https://gw.example --policy policy.toml --probe")
def verify(
    url: str = typer.Argument(..., help="The gateway's root URL (no /v1)."),
    policy_file: Path = PolicyOpt,
    collateral_file: Path = CollateralOpt,
    pccs: str = PccsOpt,
    signing_algo: str = typer.Option("ecdsa", "--signing-algo", help="ecdsa or ed25519."),
    probe: bool = typer.Option(
        True, "--probe/--no-probe", help="Also send one embeddings request and verify it."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Attest the gateway with a fresh nonce, then check one signed answer; fails closed."""
    import httpx

    from veil.inference.transport import VerifyingTransport
    from veil.inference.verify import VerificationRefused
    from veil.tee import DEFAULT_POLICY, load_collateral, load_policy
    from veil.tee.collateral import Collateral, CollateralCache, default_cache_dir

    if not url.startswith(("http://", "https://")):
        raise InputError(f"URL {url!r}: expected http(s)://host[:port]")
    policy = load_policy(policy_file) if policy_file else DEFAULT_POLICY
    collateral: Collateral | CollateralCache | None = None
    if collateral_file is not None:
        collateral = load_collateral(collateral_file)
    elif pccs is not None:
        collateral = CollateralCache(default_cache_dir(), pccs)
    transport = VerifyingTransport(url, policy, collateral=collateral, signing_algo=signing_algo)
    try:
        gateway = transport.attest()
        probed = None
        if probe:
            with httpx.Client(transport=transport, base_url=url.rstrip("/"), timeout=60) as client:
                models = client.get("/v1/models").json().get("data", [])
                names = [m.get("id") for m in models]
                if "all-MiniLM-L6-v2" in names:
                    client.post(
                        "/v1/embeddings",
                        json={"model": "all-MiniLM-L6-v2", "input": "veil ai verify"},
                    )
                    probed = transport.checked[-1]
    except VerificationRefused:
        raise
    except httpx.HTTPError as error:
        raise InputError(f"{url}: cannot reach the gateway ({error})") from None
    verdict = gateway.verdict
    assert verdict is not None  # attest() always judges a report
    result = {
        "verified": True,
        "simulated": gateway.simulated,
        "signing_algo": gateway.signing_algo,
        "signing_address": gateway.signing_address,
        "ecdsa_address": gateway.ecdsa_address,
        "attestation_digest": gateway.attestation_digest,
        "compose_hash": verdict.app.compose_hash if verdict.app else None,
        "os_image_hash": verdict.app.os_image_hash if verdict.app else None,
        "tcb_status": verdict.tcb_status,
        "probe_receipt": probed.receipt_id if probed else None,
    }
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    word = "VERIFIED (SIMULATED)" if gateway.simulated else "VERIFIED"
    console.print(f"gateway: {word}")
    for key, value in result.items():
        if key != "verified":
            console.print(f"{key.replace('_', '-')}: {value}")


@app.command(
    epilog="Example: veil ai receipt https://gw.example chatcmpl-123 --request req.json"
    " --response resp.json"
)
def receipt(
    url: str = typer.Argument(..., help="The gateway's root URL (no /v1)."),
    receipt_id: str = typer.Argument(..., help="The answer's x-receipt-id (the chat id)."),
    request_file: Path = typer.Option(..., "--request", help="The exact request body sent."),
    response_file: Path = typer.Option(..., "--response", help="The exact response body."),
    signing_algo: str = typer.Option("ecdsa", "--signing-algo", help="ecdsa or ed25519."),
    as_json: bool = typer.Option(False, "--json", help="Print the receipt as JSON."),
) -> None:
    """Check a saved answer against its signatures and EIP-712 receipt: hashes rebuilt here."""
    import httpx

    from veil.inference.verify import check_algo, check_stored_receipt

    if not url.startswith(("http://", "https://")):
        raise InputError(f"URL {url!r}: expected http(s)://host[:port]")
    check_algo(signing_algo)
    bodies = []
    for path, what in ((request_file, "--request"), (response_file, "--response")):
        try:
            bodies.append(path.read_bytes())
        except OSError as error:
            raise InputError(f"{what} {path}: cannot read ({error.strerror})") from None
    try:
        answer = httpx.get(
            f"{url.rstrip('/')}/v1/signature/{receipt_id}",
            params={"signing_algo": signing_algo},
            timeout=30,
        )
    except httpx.HTTPError as error:
        raise InputError(f"{url}: cannot reach the gateway ({error})") from None
    if answer.status_code != 200:
        raise InputError(f"receipt {receipt_id}: HTTP {answer.status_code} {answer.text[:200]}")
    checked = check_stored_receipt(answer.json(), bodies[0], bodies[1])
    message = checked.receipt.message()
    if as_json:
        typer.echo(json.dumps({"verified": True, "text": checked.text, "receipt": message}))
        return
    console.print(f"receipt {checked.receipt_id}: signatures and hashes VERIFIED")
    console.print(f"text: {checked.text}")
    for key, value in message.items():
        console.print(f"{key}: {value}")


def _policy_and_collateral(
    policy_file: Path | None, collateral_file: Path | None, pccs: str | None
) -> tuple[Any, Any]:
    from veil.tee import DEFAULT_POLICY, load_collateral, load_policy
    from veil.tee.collateral import CollateralCache, default_cache_dir

    policy = load_policy(policy_file) if policy_file else DEFAULT_POLICY
    collateral: Any = None
    if collateral_file is not None:
        collateral = load_collateral(collateral_file)
    elif pccs is not None:
        collateral = CollateralCache(default_cache_dir(), pccs)
    return policy, collateral


def _escrow(deployment: Path | None, rpc: str | None) -> Any:
    from veil.cli.options import open_chain
    from veil.market.escrow import Escrow

    chain = open_chain(deployment, rpc)
    if chain.deployment is None or "Market" not in chain.deployment.contracts:
        raise InputError("this network has no Market deployed: nothing to meter")
    return Escrow(chain)


def _gateway_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise InputError(f"URL {url!r}: expected http(s)://host[:port]")
    return url.rstrip("/")


@app.command(
    epilog="Example: veil ai meter https://gw.example --max-token-rate 5000000000000"
    " --policy policy.toml -d deployments/devnet.json -a alice"
)
def meter(
    url: str = typer.Argument(..., help="The gateway's root URL (no /v1)."),
    max_token_rate: str = typer.Option(
        ..., "--max-token-rate", help="Most wei per token the lease may be charged (integer)."
    ),
    lease_id: str = typer.Option(
        None, "--lease-id", help="Your lease (default: the one the gateway meters; checked)."
    ),
    policy_file: Path = PolicyOpt,
    collateral_file: Path = CollateralOpt,
    pccs: str = PccsOpt,
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Customer: verify the gateway, then make its attested key your lease's meter.

    Nothing is sent to the chain unless the attestation verifies under the policy (whose
    compose hash pins the gateway's price table) and the gateway's voucher is signed by
    the attested key for your lease in this market."""
    from veil.cli.accounts import resolve_signer
    from veil.inference.voucher import authorise_meter

    base = _gateway_url(url)
    if not (max_token_rate.isascii() and max_token_rate.isdecimal()) or int(max_token_rate) == 0:
        raise InputError(f"--max-token-rate {max_token_rate!r}: expected a positive integer (wei)")
    lease = parse_lease_id(lease_id) if lease_id is not None else None
    policy, collateral = _policy_and_collateral(policy_file, collateral_file, pccs)
    signer = resolve_signer(account, keystore)
    escrow = _escrow(deployment, rpc)
    done = authorise_meter(
        escrow, signer, base, policy, int(max_token_rate), lease_id=lease, collateral=collateral
    )
    verdict = done.gateway.verdict
    result = {
        "lease_id": f"{done.lease_id:#066x}",
        "meter": done.meter,
        "max_token_rate": str(done.max_token_rate),
        "simulated": done.gateway.simulated,
        "compose_hash": verdict.app.compose_hash if verdict and verdict.app else None,
        "attestation_digest": done.gateway.attestation_digest,
        "transaction": done.transaction,
    }
    if as_json:
        typer.echo(json.dumps(result))
        return
    word = "VERIFIED (SIMULATED)" if done.gateway.simulated else "VERIFIED"
    console.print(f"gateway: {word}, compose hash {result['compose_hash']}")
    console.print(
        f"lease {result['lease_id']}: meter {done.meter}, at most {done.max_token_rate} wei/token"
    )


@app.command(
    epilog="Example: veil ai charge https://gw.example -d deployments/devnet.json -a provider"
)
def charge(
    url: str = typer.Argument(..., help="The gateway's root URL (no /v1)."),
    deployment: Path = DeploymentOpt,
    rpc: str = RpcOpt,
    account: str = AccountOpt,
    keystore: Path = KeystoreOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Provider (or anyone): submit the gateway's latest usage voucher to the escrow.

    The lease is charged what the meter counted since the last charge (at most the
    customer's cap per token); prints tokens, amount, fee and the lease's balance after."""
    from veil.chain.units import format_amount
    from veil.cli.accounts import resolve_signer
    from veil.inference.voucher import NothingToCharge, charge_voucher

    base = _gateway_url(url)
    signer = resolve_signer(account, keystore)
    escrow = _escrow(deployment, rpc)
    try:
        done = charge_voucher(escrow, signer, base)
    except NothingToCharge as nothing:
        if as_json:
            typer.echo(json.dumps({"charged": False, "reason": str(nothing)}))
        else:
            console.print(str(nothing))
        return
    result = {
        "charged": True,
        "lease_id": f"{done.lease_id:#066x}",
        "tokens": done.tokens,
        "amount": str(done.amount),
        "fee": str(done.fee),
        "balance": str(done.balance),
        "due": str(done.due),
        "voucher_tokens": done.voucher.tokens,
        "voucher_amount": str(done.voucher.amount),
    }
    if as_json:
        typer.echo(json.dumps(result))
        return
    console.print(
        f"lease {result['lease_id']}: charged the voucher for {done.voucher.tokens} tokens "
        f"({done.tokens} new)"
    )
    console.print(f"  amount   {format_amount(done.amount)} ({done.amount} wei)")
    console.print(f"  fee      {format_amount(done.fee)} (to the treasury)")
    console.print(f"  balance  {format_amount(done.balance)} left in the lease")
    if done.partial:
        console.print(
            f"  [yellow]partial: the lease could pay {done.amount} of {done.due} wei due "
            "(its shutdown window stays funded); the same voucher charges the rest after a "
            "top-up[/]"
        )
