"""Receipts leave the response path but never the guarantees: durable before served, none lost.

The gateway answers first and signs and commits receipts in batches afterwards; these tests
hold it to what that must not change: each answer has its own committed receipt when its
signature is served, a shutdown commits what is queued, and one bad row in a batch costs
only itself.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from ai_kit import SIM_APP, run_gateway

from veil.compute.quote_source import Simulator
from veil.inference.receipt import ECDSA, Receipt, verify_receipt_signature
from veil.services.ai.app import Gateway, GatewayConfig
from veil.services.ai.store import ReceiptStore, StoredReceipt, UsageRow


def _row(receipt_id: str) -> tuple[StoredReceipt, UsageRow]:
    now = int(time.time())
    stored = StoredReceipt(
        receipt_id, now, "a:b", {"ecdsa": ("0x1", "0xA"), "ed25519": ("2", "B")},
        {"id": receipt_id}, "0x3",
    )  # fmt: skip
    return stored, UsageRow(receipt_id, now, "chat", "m", "c", 5, 7)


def _chat(index: int) -> dict[str, object]:
    return {"model": "fake-llm", "messages": [{"role": "user", "content": f"batch {index}"}]}


async def _answers(url: str, count: int) -> list[str]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        answers = await asyncio.gather(
            *(client.post("/v1/chat/completions", json=_chat(i)) for i in range(count))
        )
    assert [answer.status_code for answer in answers] == [200] * count
    return [answer.headers["x-receipt-id"] for answer in answers]


def test_a_batch_is_stored_whole_or_not_at_all(tmp_path: Path) -> None:
    store = ReceiptStore(tmp_path / "r.sqlite", retention_seconds=3600)
    store.add(*_row("first"))
    with pytest.raises(sqlite3.IntegrityError):
        store.add_many([_row("second"), _row("first")])
    assert store.get("second") is None
    assert [row.receipt_id for row in store.usage()] == ["first"]
    store.add_many([_row("second"), _row("third")])
    assert [row.receipt_id for row in store.usage()] == ["first", "second", "third"]
    store.close()


def test_a_bad_row_in_a_batch_costs_only_its_own_receipt(tmp_path: Path) -> None:
    gateway = Gateway(GatewayConfig(state_dir=tmp_path, quote_source=Simulator(SIM_APP)))
    gateway.store.add(*_row("taken"))
    now = int(time.time())
    batch = [
        (receipt_id, "chat", "fake-llm", "c", b"{}", "ab" * 32, 3, 4, now)
        for receipt_id in ("before", "taken", "after")
    ]
    gateway._sign_and_store(batch)
    for receipt_id in ("before", "after"):
        stored = gateway.store.get(receipt_id)
        assert stored is not None
        receipt = Receipt.from_message(stored.receipt)
        verify_receipt_signature(receipt, stored.receipt_signature, stored.signatures[ECDSA][1])
    taken = gateway.store.get("taken")
    assert taken is not None and taken.text == "a:b"  # the first one stays as it was
    gateway.store.close()


def test_concurrent_answers_each_get_a_committed_receipt_when_asked(
    tmp_path: Path, backend_url: str
) -> None:
    running = run_gateway(
        GatewayConfig(state_dir=tmp_path, quote_source=Simulator(SIM_APP), backend=backend_url)
    )
    try:
        ids = asyncio.run(_answers(running.url, 40))
        assert len(set(ids)) == 40
        for receipt_id in ids:
            # served only once committed: the store has it the moment the route answers
            answer = httpx.get(running.url + f"/v1/signature/{receipt_id}")
            assert answer.status_code == 200
            assert running.gateway.store.get(receipt_id) is not None
        assert not running.gateway.pending
        assert len(running.gateway.store.usage()) == 40
    finally:
        running.stop()


def test_a_shutdown_commits_every_queued_receipt(
    tmp_path: Path, backend_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = GatewayConfig(state_dir=tmp_path, quote_source=Simulator(SIM_APP), backend=backend_url)
    running = run_gateway(config)
    store = running.gateway.store
    commit = store.add_many

    def slow_commit(rows: list[tuple[StoredReceipt, UsageRow]]) -> None:
        time.sleep(0.3)  # a slow disk: commits still running when the shutdown comes
        commit(rows)

    monkeypatch.setattr(store, "add_many", slow_commit)
    ids = asyncio.run(_answers(running.url, 30))
    assert running.gateway.pending  # answered, not yet committed
    running.stop()  # at once: nobody asked for a signature, some receipts may still be queued
    assert not running.thread.is_alive()
    reopened = ReceiptStore(tmp_path / "receipts.sqlite", retention_seconds=3600)
    try:
        assert sorted(row.receipt_id for row in reopened.usage()) == sorted(ids)
        assert all(reopened.get(receipt_id) is not None for receipt_id in ids)
    finally:
        reopened.close()


def test_a_failed_batch_answers_404_and_later_receipts_still_commit(
    tmp_path: Path, backend_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    running = run_gateway(
        GatewayConfig(state_dir=tmp_path, quote_source=Simulator(SIM_APP), backend=backend_url)
    )
    try:
        store = running.gateway.store
        commit = store.add_many

        def broken(rows: list[tuple[StoredReceipt, UsageRow]]) -> None:
            raise OSError("disk gone")

        monkeypatch.setattr(store, "add_many", broken)
        lost = httpx.post(running.url + "/v1/chat/completions", json=_chat(0))
        assert lost.status_code == 200
        missing = httpx.get(running.url + f"/v1/signature/{lost.headers['x-receipt-id']}")
        assert missing.status_code == 404  # at once, not after the 30 s wait
        assert missing.json()["code"] == "receipt_not_found"
        monkeypatch.setattr(store, "add_many", commit)
        kept = httpx.post(running.url + "/v1/chat/completions", json=_chat(1))
        found = httpx.get(running.url + f"/v1/signature/{kept.headers['x-receipt-id']}")
        assert found.status_code == 200
    finally:
        running.stop()
