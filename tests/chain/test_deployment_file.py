"""Deployment files that are not deployments: one line naming the file, never a KeyError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from veil.chain import deployment as deployments
from veil.errors import InputError

GOOD = {
    "network": "devnet",
    "chain_id": 73217,
    "rpc_url": "http://127.0.0.1:8545",
    "contracts": {"PHA": {"address": "0x" + "ab" * 20, "block": 3, "abi": []}},
}


def _with(**changes: object) -> dict[str, object]:
    return {**GOOD, **changes}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{}", "no 'network'"),
        ("[]", "a JSON list, expected an object"),
        ("null", "a JSON NoneType, expected an object"),
        ('"devnet"', "a JSON str, expected an object"),
        ('{"network": "devnet", "chain_id": 1', "not JSON"),
        (json.dumps(_with(chain_id="73217")), "'chain_id' '73217' is not a positive integer"),
        (json.dumps(_with(chain_id=True)), "'chain_id' True is not a positive integer"),
        (json.dumps(_with(contracts=[])), "'contracts' is not an object"),
        (json.dumps(_with(contracts={"PHA": []})), "contract 'PHA' is not an object"),
        (json.dumps(_with(contracts={"PHA": {"abi": []}})), "contract 'PHA' has no address"),
        (json.dumps(_with(contracts={"PHA": {"address": "0x12", "abi": []}})),
         "contract 'PHA' has no address"),
        (json.dumps(_with(contracts={"PHA": {"address": "0x" + "ab" * 20}})),
         "contract 'PHA' has no ABI list"),
        (json.dumps(_with(accounts=["alice"])), "'accounts' is not an object"),
    ],
)  # fmt: skip
def test_malformed_file_is_one_line_naming_it(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "deployment.json"
    path.write_text(content)
    with pytest.raises(InputError) as caught:
        deployments.load(path)
    message = str(caught.value)
    assert message.startswith(f"deployment {path}: ")
    assert problem in message
    assert "\n" not in message


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        deployments.load(tmp_path)


def test_saved_deployment_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "deployment.json"
    path.write_text(json.dumps(_with(accounts={"alice": "0x" + "cd" * 20})))
    loaded = deployments.load(path)
    loaded.save(tmp_path / "again.json")
    again = deployments.load(tmp_path / "again.json")
    assert again.to_json() == loaded.to_json()
    assert again.address("PHA") == "0x" + "ab" * 20 and again.contracts["PHA"].block == 3
