"""Schemathesis fuzzes the published OpenAPI contract (SQLite): no request, however
malformed, gets a 500, and every answer matches the schema the API publishes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from cloud_kit import CloudKit, account, make_kit
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance

from veil.services.cloud.app import create_app
from veil.services.cloud.service import CloudConfig

_SCHEMA = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(CloudConfig(db_url="sqlite://", run_scheduler=False))
)
_ALL = [op.ok() for op in _SCHEMA.get_all_operations()]
#: Every operation with valid data; those that take input also with invalid data.
CASES = [(op, GenerationMode.POSITIVE) for op in _ALL] + [
    (op, GenerationMode.NEGATIVE)
    for op in _ALL
    if op.body or op.path_parameters or op.query or op.headers
]


@pytest.fixture(scope="module")
def fuzz_kit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudKit]:
    kit = make_kit(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.sqlite'}")
    kit.sync(account("w1"))
    kit.deploy("alice")
    yield kit
    kit.client.close()
    kit.state.engine.dispose()


@pytest.mark.parametrize(
    ("operation", "mode"), CASES, ids=[f"{op.label} {mode.value}" for op, mode in CASES]
)
def test_api_contract(operation: Any, mode: GenerationMode, fuzz_kit: CloudKit) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_kit.client.app)
    live = schema[operation.path][operation.method.upper()]

    @given(case=live.as_strategy(generation_mode=mode))
    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    def fuzz(case: Any) -> None:
        if case.path == "/v1/apps/{app_id}/events":
            case.query = {**(case.query or {}), "follow": "false"}
        headers = dict(case.headers or {})
        if "authorization" not in {key.lower() for key in headers}:
            headers.update(fuzz_kit.key("alice"))
        response = case.call(headers=headers)
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

    fuzz()
