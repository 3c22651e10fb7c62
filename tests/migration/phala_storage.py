"""Raw Phala storage built from Phala's own indexer dumps, for tests of the staking derivation.

Every value is encoded by scalecodec with the real runtime metadata's types and every key
with the real hashers written out here (not veil's decoder or key code), so a test that
decodes this storage with veil and derives positions checks veil against an independent
encoding of what the chain stores.

The dumps give pools (total shares and value, free value, owner reward, withdraw queue)
and delegation NFTs; the W-PHA each pool account holds follows Phala's bookkeeping: a
pool's `bp/` account holds its free value, a stake pool's `sl/` account what its workers
lock (total value - free value) and its `so/` account the owner reward. What the dumps do
not have (native balances, idle W-PHA, the treasury) is drawn from a seeded generator and
returned in `expected` so a test can compute every holder's position by itself.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xxhash

SUBSTRATE = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "substrate"
STAKING = SUBSTRATE / "staking"
METADATA = SUBSTRATE / "metadata"
PLANCK = 10**12

BASEPOOL = b"basepool".ljust(32, b"\0")
WPHA = b"wpha/".ljust(32, b"\0")
BUDGET = b"modlphala/pp".ljust(32, b"\0")
TREASURY = b"modlpy/trsry".ljust(32, b"\0")

_SS58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def ss58_account(address: str) -> bytes:
    """The 32-byte id inside an SS58 address (Khala's 2-byte-prefix addresses included)."""
    number = 0
    for char in address:
        number = number * 58 + _SS58_ALPHABET.index(char)
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    prefix = 2 if raw[0] & 0x40 else 1
    return raw[prefix : prefix + 32]


def twox128(data: bytes) -> bytes:
    return xxhash.xxh64_digest(data, seed=0)[::-1] + xxhash.xxh64_digest(data, seed=1)[::-1]


def twox64_concat(data: bytes) -> bytes:
    return xxhash.xxh64_digest(data, seed=0)[::-1] + data


def blake2_128_concat(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest() + data


def derived(prefix: bytes, pid: int, who: bytes, length: int) -> bytes:
    return (
        prefix + hashlib.blake2b(pid.to_bytes(8, "little") + who, digest_size=32).digest()[:length]
    )


@functools.cache
def _runtime(name: str) -> tuple[Any, dict[tuple[str, str], dict[str, Any]]]:
    from scalecodec.base import RuntimeConfigurationObject, ScaleBytes
    from scalecodec.type_registry import load_type_registry_preset

    # Not scalecodec's `RuntimeConfiguration`: that one is a process-wide singleton, and a
    # second runtime's registry would overwrite the first's type ids.
    config = RuntimeConfigurationObject()
    config.update_type_registry(load_type_registry_preset("core"))
    metadata = config.create_scale_object(
        "MetadataVersioned", data=ScaleBytes((METADATA / f"{name}.scale").read_bytes())
    )
    metadata.decode()
    config.add_portable_registry(metadata)
    body = metadata.value[1]
    body = body[next(iter(body))]
    items = {}
    for pallet in body["pallets"]:
        for entry in (pallet.get("storage") or {}).get("entries", []):
            items[(pallet["name"], entry["name"])] = entry["type"]
    return config, items


@dataclass
class PhalaStorage:
    """RAW.json contents plus what each holder must end up with (planck)."""

    raw: dict[str, str]
    native: dict[bytes, int]  # free + reserved per account
    wpha: dict[bytes, int]
    pools: list[dict[str, Any]]
    nfts: list[dict[str, Any]]
    legacy: dict[tuple[bytes, int], int]
    reimbursements: dict[tuple[bytes, int], int]
    unmintable_dust: int
    wpha_residual: int
    has_items: set[str] = field(default_factory=set)

    def document(self) -> dict[str, str]:
        return dict(self.raw)


class _Writer:
    def __init__(self, runtime: str) -> None:
        self.config, self.items = _runtime(runtime)
        self.raw: dict[str, str] = {}

    def has(self, pallet: str, item: str) -> bool:
        return (pallet, item) in self.items

    def encode(self, pallet: str, item: str, value: Any) -> bytes:
        kind = self.items[(pallet, item)]
        type_id = kind["Plain"] if "Plain" in kind else kind["Map"]["value"]
        scale = self.config.create_scale_object(f"scale_info::{type_id}")
        return bytes(scale.encode(value).data)

    def put(self, pallet: str, item: str, key_parts: list[bytes], value: Any) -> None:
        kind = self.items[(pallet, item)]
        hashers = [] if "Plain" in kind else kind["Map"]["hashers"]
        assert len(hashers) == len(key_parts), (pallet, item, hashers)
        key = twox128(pallet.encode()) + twox128(item.encode())
        for hasher, part in zip(hashers, key_parts, strict=True):
            key += {"Blake2_128Concat": blake2_128_concat, "Twox64Concat": twox64_concat}[hasher](
                part
            )
        self.raw["0x" + key.hex()] = "0x" + self.encode(pallet, item, value).hex()


def _u32(n: int) -> bytes:
    return n.to_bytes(4, "little")


def _u64(n: int) -> bytes:
    return n.to_bytes(8, "little")


def build(dump: str, runtime: str = "phala-1291", *, seed: int = 7) -> PhalaStorage:
    """Raw storage of the pools and NFTs in `staking/<dump>` plus the real reward lists."""
    rng = random.Random(seed)
    data = json.loads((STAKING / dump).read_text())
    writer = _Writer(runtime)
    wpha: dict[bytes, int] = {}
    native: dict[bytes, int] = {}

    def add(book: dict[bytes, int], account: bytes, amount: int) -> None:
        if amount:
            book[account] = book.get(account, 0) + amount

    pools = []
    holders: set[bytes] = set()
    for pool in data["basePools"]:
        pid, owner = int(pool["pid"]), ss58_account(pool["owner"])
        holders.add(owner)
        bp, sl, so = (derived(p, pid, owner, 29) for p in (b"bp/", b"sl/", b"so/"))
        assert bp == ss58_account(pool["poolAccountId"]), pid
        free, total = int(pool["freeValue"]), int(pool["totalValue"])
        queue = [
            {"user": "0x" + ss58_account(w["user"]).hex(), "start_time": int(w["startTime"]),
             "nft_id": int(w["nftId"])}
            for w in pool["withdrawQueue"]
        ]  # fmt: skip
        base = {
            "pid": pid, "owner": "0x" + owner.hex(), "total_shares": int(pool["totalShares"]),
            "total_value": total, "withdraw_queue": queue, "value_subscribers": [],
            "cid": int(pool["cid"]), "pool_account_id": "0x" + bp.hex(),
        }  # fmt: skip
        add(wpha, bp, free)
        add(native, bp, PLANCK // 100)  # the existential deposit every pool account keeps
        record: dict[str, Any] = {"pid": pid, "owner": owner, "bp": bp, "cid": base["cid"],
                                  "total_shares": base["total_shares"], "total_value": total,
                                  "queue": {q["nft_id"]: ss58_account(w["user"])
                                            for q, w in zip(queue, pool["withdrawQueue"],
                                                            strict=True)}}  # fmt: skip
        if "stakePool" in pool:
            sp = pool["stakePool"]
            workers = ["0x" + w[2:] for w in sp["workers"]]
            value = {"StakePool": {
                "basepool": base, "payout_commission": None, "cap": None,
                "workers": workers, "cd_workers": [], "lock_account": "0x" + sl.hex(),
                "owner_reward_account": "0x" + so.hex(),
            }}  # fmt: skip
            add(wpha, sl, total - free)
            add(wpha, so, int(sp["ownerReward"]))
            for worker in sp["workers"]:
                add(native, derived(b"spm/", pid, bytes.fromhex(worker[2:]), 28), 3 * PLANCK)
            record.update(kind="stake-pool", sl=sl, so=so, reward=int(sp["ownerReward"]))
        else:
            owner_shares = int(pool["vault"].get("ownerShares") or 0)
            value = {"Vault": {
                "basepool": base, "last_share_price_checkpoint": int(
                    pool["vault"]["lastSharePriceCheckpoint"]),
                "commission": None, "owner_shares": owner_shares, "invest_pools": [],
            }}  # fmt: skip
            record.update(kind="vault", owner_shares=owner_shares)
        writer.put("PhalaBasePool", "Pools", [twox_key(pid)], value)
        pools.append(record)

    nfts = []
    for nft in data.get("delegationNfts", data.get("nfts", [])):
        owner = ss58_account(nft["owner"])
        cid, nft_id, shares = int(nft["cid"]), int(nft["nftId"]), int(nft["shares"])
        writer.put(
            "RmrkCore", "Nfts", [_u32(cid), _u32(nft_id)],
            {"owner": {"AccountId": "0x" + owner.hex()}, "royalty": None, "metadata": "0x",
             "equipped": None, "pending": False, "transferable": True},
        )  # fmt: skip
        key = _u32(cid) + b"\x01" + _u32(nft_id)
        name = bytes([len(b"stake-info") << 2]) + b"stake-info"
        writer.put(
            "RmrkCore",
            "Properties",
            [_u32(cid), key[4:], name],
            "0x" + shares.to_bytes(16, "little").hex(),
        )
        nfts.append({"cid": cid, "nft_id": nft_id, "owner": owner, "shares": shares})
        if owner != BASEPOOL and not owner.startswith(b"bp/"):
            holders.add(owner)
    # An NFT of a collection that is no pool, and a property other than stake-info: ignored.
    writer.put(
        "RmrkCore", "Nfts", [_u32(77), _u32(1)],
        {"owner": {"AccountId": "0x" + (b"\x42" * 32).hex()}, "royalty": None,
         "metadata": "0x", "equipped": None, "pending": False, "transferable": True},
    )  # fmt: skip
    writer.put("RmrkCore", "Properties", [_u32(77), b"\x01" + _u32(1), b"\x14color"], "0x01")

    legacy: dict[tuple[bytes, int], int] = {}
    reimbursements: dict[tuple[bytes, int], int] = {}
    sources = [("PhalaStakePoolv2", "LegacyRewards", "legacyRewards.json", legacy),
               ("PhalaBasePool", "Reimbursements", "vault_cheat_reimbursements.json",
                reimbursements)]  # fmt: skip
    for pallet, item, name, book in sources:
        if not writer.has(pallet, item):
            continue
        document = json.loads((STAKING / name).read_text())
        document = document.get("legacyRewards", document)
        for address, pairs in sorted(document.items())[:120]:
            account = ss58_account(address)
            for pid, amount in pairs:
                book[(account, int(pid))] = book.get((account, int(pid)), 0) + int(amount)
    for pallet, item, book in [(s[0], s[1], s[3]) for s in sources]:
        for (account, pid), amount in book.items():
            writer.put(pallet, item, [account + _u64(pid)], amount)
            holders.add(account)

    # Holders' own native PHA and idle W-PHA; some hold only W-PHA, none of them a leaf's
    # worth of nothing.
    for number, account in enumerate(sorted(holders)):
        if number % 5 != 4:
            add(native, account, rng.randint(1, 10_000) * PLANCK + rng.randint(0, PLANCK))
        if number % 3 == 0:
            add(wpha, account, rng.randint(1, 5_000) * PLANCK + rng.randint(0, PLANCK))
    only_wpha = bytes(range(1, 33))
    add(wpha, only_wpha, 123 * PLANCK + 45)
    supply = sum(wpha.values())
    dust, residual = 987_654_321, 12_345
    add(native, WPHA, supply + dust + residual)
    owed = sum(legacy.values()) + sum(reimbursements.values())
    add(native, BUDGET, owed + 5_000 * PLANCK)
    add(native, TREASURY, 1_000_000 * PLANCK + 7)
    add(native, BASEPOOL, PLANCK // 10)

    asset_details = {
        "owner": "0x" + WPHA.hex(), "issuer": "0x" + WPHA.hex(), "admin": "0x" + WPHA.hex(),
        "freezer": "0x" + WPHA.hex(), "supply": supply, "deposit": 0, "min_balance": 1,
        "is_sufficient": True, "accounts": len(wpha), "sufficients": len(wpha), "approvals": 0,
        "status": "Live",
    }  # fmt: skip
    writer.put("Assets", "Asset", [_u32(10000)], asset_details)
    # Another asset's balances must not count as W-PHA.
    writer.put("Assets", "Account", [_u32(10001), only_wpha], _asset_account(writer, 999))
    for account, amount in wpha.items():
        writer.put("Assets", "Account", [_u32(10000), account], _asset_account(writer, amount))
    writer.put("PhalaWrappedBalances", "UnmintableDust", [], dust)
    for account, amount in native.items():
        writer.put("System", "Account", [account], _account_info(writer, amount))
    writer.put("Balances", "TotalIssuance", [], sum(native.values()))
    return PhalaStorage(
        raw=writer.raw, native=native, wpha=wpha, pools=pools, nfts=nfts, legacy=legacy,
        reimbursements=reimbursements, unmintable_dust=dust, wpha_residual=residual,
    )  # fmt: skip


def twox_key(pid: int) -> bytes:
    return _u64(pid)


def _asset_account(writer: _Writer, amount: int) -> dict[str, Any]:
    """`AssetAccount` in the runtime's shape: khala 1251 still has `is_frozen`."""
    value: dict[str, Any] = {"balance": amount, "reason": "Sufficient", "extra": ()}
    try:
        writer.encode("Assets", "Account", {**value, "status": "Liquid"})
        return {**value, "status": "Liquid"}
    except Exception:  # scalecodec: a field the type does not have
        return {**value, "is_frozen": False}


def _account_info(writer: _Writer, amount: int) -> dict[str, Any]:
    reserved = amount // 7 if amount > 10 * PLANCK else 0
    return {
        "nonce": 1, "consumers": 0, "providers": 1, "sufficients": 0,
        "data": {"free": amount - reserved, "reserved": reserved, "frozen": 0,
                 "flags": 1 << 127},
    }  # fmt: skip
