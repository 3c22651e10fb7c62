"""Receipts and usage survive a restart, are kept for the retention period, then purged."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from ai_kit import SIM_APP, RunningGateway, run_gateway

from veil.compute.quote_source import Simulator
from veil.inference.metering import TokenPrice, charges
from veil.services.ai.app import GatewayConfig
from veil.services.ai.store import ReceiptStore, StoredReceipt, UsageRow


def _stored(receipt_id: str, created_at: int) -> tuple[StoredReceipt, UsageRow]:
    stored = StoredReceipt(
        receipt_id, created_at, "a:b", {"ecdsa": ("0x1", "0xA"), "ed25519": ("2", "B")},
        {"id": receipt_id}, "0x3",
    )  # fmt: skip
    return stored, UsageRow(receipt_id, created_at, "chat", "m", "c", 5, 7)


def test_retention_purges_old_receipts_and_their_usage(tmp_path: Path) -> None:
    store = ReceiptStore(tmp_path / "r.sqlite", retention_seconds=100)
    now = int(time.time())
    store.add(*_stored("old", now - 500))
    store.add(*_stored("new", now))
    assert store.get("old") is None  # past retention: not served even before the purge
    assert store.purge(now) == 1
    assert [row.receipt_id for row in store.usage()] == ["new"]
    store.close()
    reopened = ReceiptStore(tmp_path / "r.sqlite", retention_seconds=100)
    got = reopened.get("new")
    assert got is not None and got.signatures["ed25519"] == ("2", "B")
    reopened.close()


def test_a_restarted_gateway_still_serves_earlier_receipts(
    tmp_path: Path, backend_url: str
) -> None:
    config = GatewayConfig(state_dir=tmp_path, quote_source=Simulator(SIM_APP), backend=backend_url)
    first = run_gateway(config)
    answer = httpx.post(
        first.url + "/v1/chat/completions",
        json={"model": "fake-llm", "messages": [{"role": "user", "content": "keep me"}]},
        headers={"Authorization": "Bearer alice"},
    )
    receipt_id = answer.headers["x-receipt-id"]
    before = httpx.get(first.url + f"/v1/signature/{receipt_id}").json()
    first.stop()
    second = run_gateway(config)
    try:
        after = httpx.get(second.url + f"/v1/signature/{receipt_id}").json()
        assert after == before
        # a new key per start: the key never leaves memory, old receipts keep the old address
        assert second.gateway.keys.ecdsa_address != before["signing_address"]
    finally:
        second.stop()


def test_usage_is_metered_per_request_and_guarded(gateway: RunningGateway) -> None:
    since = int(time.time()) - 1
    httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "fake-llm", "messages": [{"role": "user", "content": "bill me twice"}]},
        headers={"Authorization": "Bearer bob"},
    )
    assert httpx.get(gateway.url + "/v1/usage").status_code == 401
    rows = httpx.get(
        gateway.url + "/v1/usage", params={"since": since},
        headers={"Authorization": "Bearer usage-secret"},
    ).json()["data"]  # fmt: skip
    mine = [row for row in rows if row["completion_tokens"] == 4 and row["endpoint"] == "chat"]
    assert mine and mine[-1]["prompt_tokens"] == 6 and mine[-1]["customer"] != "-"
    bill = charges(mine[-1:], {"fake-llm": TokenPrice(prompt=2, completion=5)})
    assert bill[mine[-1]["customer"]].amount == 6 * 2 + 4 * 5
