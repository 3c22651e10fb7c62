"""`veil attest`: verify TDX evidence, compute compose hashes, judge GPU claims, simulate a TEE."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import typer

from veil.atomic import write_json
from veil.cli.options import AtOpt, deprecated, out_path, parse_time
from veil.errors import InputError
from veil.tee.collateral import CollateralCache, default_cache_dir, load_collateral
from veil.tee.compose import compose_hash, load_app_compose, raw_compose_hash
from veil.tee.evidence import load_evidence
from veil.tee.gpu import gpu_evidence_hash, gpu_problems, parse_claim_set
from veil.tee.policy import DEFAULT_POLICY, load_policy
from veil.tee.simulator import AppSpec, is_simulated_quote, load_key_file, simulate
from veil.tee.tdx import parse_measurements
from veil.tee.verdict import SIMULATED_BANNER
from veil.tee.verification import verify_evidence

app = typer.Typer(
    no_args_is_help=True, help="Verify TEE attestation evidence (Intel TDX, NVIDIA GPU)."
)


def _hex_option(value: str | None, name: str) -> bytes | None:
    if value is None:
        return None
    try:
        return bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raise InputError(f"{name}: not hex") from None


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise InputError(f"{what} {path}: cannot read ({error.strerror})") from None


@app.command(
    epilog="Example: veil attest verify --quote evidence.json --collateral collateral.json"
    " --at 2026-02-18T12:00:00Z --json"
)
def verify(
    quote: Path = typer.Option(..., "--quote", help="Quote: raw bytes, hex text, or dstack JSON."),
    collateral: Path | None = typer.Option(None, "--collateral", help="Collateral JSON file."),
    pccs: str | None = typer.Option(None, "--pccs", help="Fetch collateral from this PCCS URL."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Collateral cache directory."),
    event_log: Path | None = typer.Option(None, "--event-log", help="Event log JSON file."),
    vm_config: Path | None = typer.Option(None, "--vm-config", help="VM config JSON file."),
    policy: Path | None = typer.Option(None, "--policy", help="Policy TOML file."),
    at: str | None = AtOpt,
    now: str | None = typer.Option(None, "--now", hidden=True, help="Deprecated: use --at."),
    bind_key: str | None = typer.Option(
        None, "--bind-key", help="Hex key that report data must bind (sha512 of tag:key)."
    ),
    bind_tag: str | None = typer.Option(None, "--bind-tag", help="Tag for --bind-key."),
    nonce: str | None = typer.Option(None, "--nonce", help="Hex nonce report data must equal."),
    gpu: Path | None = typer.Option(None, "--gpu", help="NVIDIA GPU claim set JSON."),
    as_json: bool = typer.Option(False, "--json", help="Print the verdict as JSON."),
) -> None:
    """Verify a quote and event log against Intel collateral and a policy; exit 0 if accepted."""
    if now is not None:
        deprecated("--now", "--at")
        at = at or now
    moment = parse_time(at)
    evidence = load_evidence(quote, event_log=event_log, vm_config=vm_config)
    rules = load_policy(policy) if policy else DEFAULT_POLICY
    key = _hex_option(bind_key, "--bind-key")
    if bind_tag is not None:
        rules = replace(rules, report_data=replace(rules.report_data, tag=bind_tag))
    if key is not None and not rules.report_data.tag:
        raise InputError("--bind-key: give --bind-tag or a [report_data] tag in the policy")
    rules = rules.binding(content=key, nonce=_hex_option(nonce, "--nonce"))
    moment = int(time.time()) if moment is None else moment
    found = None
    if collateral is not None:
        found = load_collateral(collateral)
    elif pccs is not None and not is_simulated_quote(evidence.quote):
        measured = parse_measurements(evidence.quote)
        if measured.fmspc is None:
            raise InputError(f"quote {quote}: no FMSPC in the PCK certificate, cannot fetch")
        cache = CollateralCache(cache_dir or default_cache_dir(), pccs)
        found = cache.get(measured.fmspc, moment, tee=measured.tee)
    gpu_bytes = _read(gpu, "gpu evidence") if gpu is not None else None
    verdict = verify_evidence(evidence, found, rules, moment, gpu_evidence=gpu_bytes)
    if as_json:
        typer.echo(json.dumps(verdict.to_json(), indent=2))
    else:
        typer.echo(verdict.render())
    raise typer.Exit(0 if verdict.accepted else 1)


@app.command("compose-hash", epilog="Example: veil attest compose-hash app-compose.json")
def compose_hash_command(
    app_compose: Path = typer.Argument(..., help="app-compose.json"),
    raw: bool = typer.Option(False, "--raw", help="Hash the file bytes verbatim."),
) -> None:
    """Print the compose hash a dstack CVM measures into RTMR3 (the `compose-hash` event)."""
    data = _read(app_compose, "app-compose")
    if raw:
        typer.echo(raw_compose_hash(data))
        return
    canonical = compose_hash(load_app_compose(data, f"app-compose {app_compose}"))
    typer.echo(canonical)
    verbatim = raw_compose_hash(data)
    if verbatim != canonical:
        typer.echo(
            f"note: the file is not in dstack's canonical form; a CVM booted with these exact"
            f" bytes measures {verbatim}",
            err=True,
        )


@app.command(
    "simulate", epilog="Example: veil attest simulate --report-data 0x1234 --out evidence.json"
)
def simulate_evidence(
    report_data: str = typer.Option(..., "--report-data", help="Hex, at most 64 bytes."),
    out: Path = typer.Option(..., "--out", help="Where to write the simulated evidence JSON."),
    app_compose: Path | None = typer.Option(None, "--compose", help="app-compose.json to measure."),
    gpu: Path | None = typer.Option(None, "--gpu", help="GPU evidence to bind in RTMR3."),
    key_file: Path | None = typer.Option(None, "--key-file", help="Simulator key (hex seed)."),
) -> None:
    """Write SIMULATED evidence (dstack JSON shape) signed by a development key."""
    out_path(out)
    data = _hex_option(report_data, "--report-data") or b""
    spec = AppSpec()
    if app_compose is not None:
        compose_bytes = _read(app_compose, "app-compose")
        load_app_compose(compose_bytes, f"app-compose {app_compose}")
        spec = replace(spec, compose_hash=bytes.fromhex(raw_compose_hash(compose_bytes)))
    gpu_bytes = _read(gpu, "gpu evidence") if gpu is not None else None
    key = load_key_file(key_file) if key_file is not None else None
    evidence = simulate(data, app=spec, gpu_evidence=gpu_bytes, key=key)
    write_json(out, evidence)
    typer.echo(f"{SIMULATED_BANNER}: wrote {out}")


@app.command("gpu", epilog="Example: veil attest gpu claims.json --nonce 0xNONCE --json")
def gpu_command(
    evidence: Path = typer.Argument(..., help="NVIDIA claim set JSON."),
    policy: Path | None = typer.Option(None, "--policy", help="Policy TOML ([gpu] table)."),
    nonce: str | None = typer.Option(None, "--nonce", help="Expected eat_nonce (hex)."),
    as_json: bool = typer.Option(False, "--json", help="Print the verdict as JSON."),
) -> None:
    """Judge a GPU claim set against the GPU policy (binding needs `verify --gpu`)."""
    rules = (load_policy(policy) if policy else DEFAULT_POLICY).gpu
    if nonce is not None:
        rules = replace(rules, nonce=nonce.removeprefix("0x"))
    data = _read(evidence, "gpu evidence")
    claims = parse_claim_set(data, f"gpu evidence {evidence}")
    problems = gpu_problems(claims, rules)
    if as_json:
        result = {
            "accepted": not problems,
            "reasons": problems,
            "evidence_hash": gpu_evidence_hash(data),
            "claims": [c.to_json() for c in claims],
        }
        typer.echo(json.dumps(result, indent=2))
    else:
        typer.echo(f"verdict: {'ACCEPTED' if not problems else 'REFUSED'}")
        for problem in problems:
            typer.echo(f"refused: {problem}")
        for claim in claims:
            typer.echo(f"gpu: {claim.hwmodel} measres={claim.measres} secboot={claim.secboot}"
                       f" dbgstat={claim.dbgstat} driver={claim.driver_version}")  # fmt: skip
        typer.echo(f"gpu-evidence-hash: {gpu_evidence_hash(data)}")
        typer.echo("note: NVIDIA's certificate chain was checked by NVIDIA's verifier, not here")
    raise typer.Exit(0 if not problems else 1)
