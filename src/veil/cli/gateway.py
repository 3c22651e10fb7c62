"""`veil gateway serve`: route app hostnames and /apps/ paths to the workers running them."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from veil.services.gateway.server import GatewayConfig, serve

app = typer.Typer(no_args_is_help=True, help="Run the app gateway (HTTP and WebSocket).")
console = Console(highlight=False, soft_wrap=True)


@app.command(
    "serve",
    epilog="Example: veil gateway serve --control-plane http://127.0.0.1:8790 --token $TOKEN"
    " --domain apps.localhost --port 8780",
)
def serve_command(
    control_plane: str = typer.Option(..., "--control-plane", help="Control plane URL."),
    token: str = typer.Option(
        "", "--token", envvar="VEIL_GATEWAY_TOKEN", help="Gateway token of the control plane."
    ),
    domain: str = typer.Option(
        None, "--domain", help="Route <app_id>-<port>.<domain> by Host (paths always work)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8780, "--port", help="Port to listen on."),
    tls_cert: Path = typer.Option(None, "--tls-cert", help="TLS certificate (PEM)."),
    tls_key: Path = typer.Option(None, "--tls-key", help="TLS private key (PEM)."),
    cache_ttl: float = typer.Option(3.0, "--cache-ttl", help="Seconds a route is reused."),
) -> None:
    """Serve the gateway until interrupted."""
    config = GatewayConfig(
        control_plane=control_plane,
        token=token,
        domain=domain,
        host=host,
        port=port,
        tls_cert=tls_cert,
        tls_key=tls_key,
        cache_ttl=cache_ttl,
    )
    config.check()
    scheme = "https" if tls_cert else "http"
    routed = f" and <app_id>-<port>.{domain}" if domain else ""
    console.print(f"gateway on {scheme}://{host}:{port}: /apps/<app_id>/<port>/{routed}"
                  f" -> {control_plane}")  # fmt: skip
    serve(config)
