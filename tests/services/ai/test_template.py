"""The app template is a compose file veil cloud accepts, running the gateway under dstack."""

from __future__ import annotations

from pathlib import Path

import veil.services.ai
from veil.cloud.compose_spec import app_compose, app_compose_hash, parse_compose

TEMPLATE = Path(veil.services.ai.__file__).parent / "template" / "compose.yaml"


def test_template_parses_and_has_an_app_identity() -> None:
    spec = parse_compose(TEMPLATE.read_text())
    assert set(spec.services) == {"llm", "gateway"}
    gateway = spec.services["gateway"]
    assert isinstance(gateway.command, tuple)
    assert gateway.command[:3] == ("veil", "ai", "serve")
    assert gateway.command[gateway.command.index("--tee") + 1] == "dstack"
    assert [p.target for p in gateway.ports] == [8080]
    assert spec.services["llm"].ports == ()  # the model server is reachable only inside
    assert spec.env_references() == {"HF_TOKEN", "VEIL_AI_USAGE_TOKEN"}
    document = app_compose("my-ai", spec.text, sorted(spec.env_references()))
    assert len(bytes.fromhex(app_compose_hash(document))) == 32


def test_the_gateway_reads_the_lease_a_dstack_worker_puts_in_the_user_config() -> None:
    import yaml

    document = yaml.safe_load(TEMPLATE.read_text())
    gateway = document["services"]["gateway"]
    command = gateway["command"]
    mounted = command[command.index("--user-config") + 1]
    assert gateway["volumes"] == [f"/dstack/.host-shared/.user-config:{mounted}:ro"]
    # billing needs only the price: no lease variable is asked of the customer
    assert not {"VEIL_AI_LEASE_ID", "VEIL_LEASE_ID"} & set(gateway["environment"])
