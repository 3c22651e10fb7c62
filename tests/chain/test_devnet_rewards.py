"""The devnet's reward stream is a realistic yield at the demo's stake, not a doubling in weeks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from veil.chain.units import WEI_PER_PHA
from veil.devnet.accounts import devnet_account
from veil.devnet.anvil import Devnet, free_port
from veil.devnet.client import DevnetChain
from veil.devnet.network import devnet_up
from veil.staking.vault import deposit

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("anvil")]

DEMO_STAKES = {"alice": 250_000, "bob": 100_000, "carol": 20_000}  # what `make demo` stakes
YEAR = 365 * 86_400


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevnetChain]:
    root = tmp_path_factory.mktemp("rewards")
    devnet = Devnet(root / "home")
    up = devnet_up(devnet, root / "deployment.json", port=free_port())
    try:
        yield DevnetChain.open(up.deployment, up.process.rpc_url)
    finally:
        devnet.stop()


def test_demo_stake_earns_ten_to_fifteen_percent_a_year(chain: DevnetChain) -> None:
    vault = chain.contract("Vault")
    for name, pha in DEMO_STAKES.items():
        deposit(chain, devnet_account(name), pha * WEI_PER_PHA)
    alice = devnet_account("alice").address
    shares = vault.functions.balanceOf(alice).call()
    before = vault.functions.convertToAssets(shares).call()
    chain.advance_time(YEAR)
    after = vault.functions.convertToAssets(shares).call()
    yearly = (after - before) / before
    assert 0.10 <= yearly <= 0.15, f"alice's stake grew {yearly:.1%} in a year"
    # and a month shows up in the demo's `stake status` (whole PHA, not dust)
    assert (after - before) / 12 > 1_000 * WEI_PER_PHA
