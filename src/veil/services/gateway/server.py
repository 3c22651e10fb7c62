"""`veil gateway serve`: the gateway on uvicorn, plain HTTP on the devnet, TLS in production."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from veil.errors import InputError
from veil.services.gateway.proxy import Gateway, RouteTable


@dataclass(frozen=True)
class GatewayConfig:
    control_plane: str
    token: str
    domain: str | None = None
    host: str = "127.0.0.1"
    port: int = 8780
    tls_cert: Path | None = None
    tls_key: Path | None = None
    cache_ttl: float = 3.0

    def check(self) -> None:
        """Refuse a configuration that could only fail later, one line each."""
        if not self.control_plane.startswith(("http://", "https://")):
            raise InputError(f"--control-plane {self.control_plane!r}: expected an http(s) URL")
        if not self.token:
            raise InputError("--token: the control plane's gateway token is required")
        if not 0 <= self.port <= 65535:
            raise InputError(f"--port {self.port}: not a TCP port")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise InputError("--tls-cert and --tls-key go together")
        for flag, path in (("--tls-cert", self.tls_cert), ("--tls-key", self.tls_key)):
            if path is not None and not path.is_file():
                raise InputError(f"{flag} {path}: no such file")
        if self.cache_ttl < 0:
            raise InputError("--cache-ttl: must not be negative")
        if self.domain is not None and not self.domain.strip("."):
            raise InputError("--domain: empty")

    def application(self) -> Gateway:
        routes = RouteTable(self.control_plane, self.token, ttl=self.cache_ttl)
        return Gateway(routes, domain=self.domain.strip(".") if self.domain else None)


def serve(config: GatewayConfig) -> None:
    """Run until interrupted."""
    import uvicorn

    config.check()
    uvicorn.run(
        config.application(),
        host=config.host,
        port=config.port,
        ssl_certfile=str(config.tls_cert) if config.tls_cert else None,
        ssl_keyfile=str(config.tls_key) if config.tls_key else None,
        log_level="warning",
        proxy_headers=False,
        server_header=False,
    )
