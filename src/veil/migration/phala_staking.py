"""Phala's stake pool v2 state, read from storage, and every holder's position derived from it.

Since stake pool v2 all staked PHA sits as native PHA in one account (`wpha/`) behind the
W-PHA asset, and W-PHA sits in pool accounts (`bp/`, `sl/`, `so/`) that nobody has a key
for. Migrating balances alone would hand that PHA to those accounts; what belongs to a
delegator is only visible in the pools, their delegation NFTs and withdraw queues. This
module reads exactly those storage items (decoded with the runtime's own types) and turns
them into free and staked amounts per holder by the rules the issue fixes, so no operator
ever writes a positions file by hand for Phala.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from veil.errors import InputError
from veil.substrate.metadata import Metadata
from veil.substrate.scale_types import StorageMap, TypeRegistry
from veil.substrate.storage import SYSTEM_ACCOUNT_PREFIX

WPHA_ASSET_ID = 10000
MODULE_PREFIX = b"modl"
BASEPOOL_ACCOUNT = b"basepool".ljust(32, b"\0")
WPHA_ACCOUNT = b"wpha/".ljust(32, b"\0")
BUDGET_PALLET_ID = b"phala/pp"
BUDGET_ACCOUNT = (MODULE_PREFIX + BUDGET_PALLET_ID).ljust(32, b"\0")
STAKE_INFO = b"stake-info"
DERIVED_PREFIXES = (b"bp/", b"sl/", b"so/", b"spm/")
# Module accounts Phala's runtime uses without declaring a PalletId constant.
KNOWN_PALLET_IDS = {"phala/pp": "PhalaComputation reward budget"}

STAKING_ITEMS = {
    "asset": ("Assets", "Asset"),
    "asset_account": ("Assets", "Account"),
    "dust": ("PhalaWrappedBalances", "UnmintableDust"),
    "pools": ("PhalaBasePool", "Pools"),
    "nfts": ("RmrkCore", "Nfts"),
    "properties": ("RmrkCore", "Properties"),
    "legacy": ("PhalaStakePoolv2", "LegacyRewards"),
    "reimbursements": ("PhalaBasePool", "Reimbursements"),
}


def staker_hash(pid: int, owner: bytes) -> bytes:
    """blake2_256(pid as u64 LE ‖ owner): the root of a pool's bp/, sl/ and so/ accounts."""
    return hashlib.blake2b(pid.to_bytes(8, "little") + owner, digest_size=32).digest()


def pool_accounts(pid: int, owner: bytes) -> tuple[bytes, bytes, bytes]:
    """(bp/, sl/, so/) of pool `pid` as Phala's `generate_staker_account` derives them."""
    digest = staker_hash(pid, owner)[:29]
    return b"bp/" + digest, b"sl/" + digest, b"so/" + digest


def worker_session_account(pid: int, worker: bytes) -> bytes:
    """spm/ account of one worker of a stake pool (`pool_sub_account`)."""
    return b"spm/" + staker_hash(pid, worker)[:28]


@dataclass(frozen=True)
class Pool:
    """One `PhalaBasePool.Pools` entry, in the fields the derivation needs."""

    pid: int
    kind: str  # "stake-pool" or "vault"
    owner: bytes
    total_shares: int
    total_value: int
    cid: int
    pool_account: bytes
    lock_account: bytes | None = None
    owner_reward_account: bytes | None = None
    owner_shares: int = 0
    workers: tuple[bytes, ...] = ()
    withdraw_queue: tuple[tuple[bytes, int], ...] = ()  # (user, nft id)

    def to_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "kind": self.kind,
            "owner": _hex(self.owner),
            "total_shares": str(self.total_shares),
            "total_value": str(self.total_value),
            "cid": self.cid,
            "pool_account": _hex(self.pool_account),
            "lock_account": _hex(self.lock_account) if self.lock_account else None,
            "owner_reward_account": (
                _hex(self.owner_reward_account) if self.owner_reward_account else None
            ),
            "owner_shares": str(self.owner_shares),
            "workers": [_hex(w) for w in self.workers],
            "withdraw_queue": [[_hex(user), nft] for user, nft in self.withdraw_queue],
        }

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> Pool:
        return cls(
            pid=int(item["pid"]),
            kind=str(item["kind"]),
            owner=_bytes(item["owner"]),
            total_shares=int(item["total_shares"]),
            total_value=int(item["total_value"]),
            cid=int(item["cid"]),
            pool_account=_bytes(item["pool_account"]),
            lock_account=_bytes(item["lock_account"]) if item.get("lock_account") else None,
            owner_reward_account=(
                _bytes(item["owner_reward_account"]) if item.get("owner_reward_account") else None
            ),
            owner_shares=int(item.get("owner_shares") or 0),
            workers=tuple(_bytes(w) for w in item.get("workers") or ()),
            withdraw_queue=tuple((_bytes(u), int(n)) for u, n in item.get("withdraw_queue") or ()),
        )


@dataclass(frozen=True)
class Nft:
    """A delegation NFT: `owner` is None when the NFT is owned by another NFT."""

    cid: int
    nft_id: int
    owner: bytes | None
    shares: int | None  # the `stake-info` property; None when the NFT has none


@dataclass
class StakingState:
    """Everything of stake pool v2 a migration needs, decoded from one block's storage."""

    wpha_supply: int
    unmintable_dust: int
    wpha_balances: dict[bytes, int]
    pools: list[Pool]
    nfts: list[Nft]
    legacy_rewards: list[tuple[bytes, int, int]]  # (account, pid, planck)
    reimbursements: list[tuple[bytes, int, int]]
    wpha_account: bytes = WPHA_ACCOUNT
    pallet_ids: dict[str, str] = field(default_factory=dict)
    entries_sha256: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "wpha_asset_id": WPHA_ASSET_ID,
            "wpha_account": _hex(self.wpha_account),
            "wpha_supply": str(self.wpha_supply),
            "unmintable_dust": str(self.unmintable_dust),
            "entries_sha256": self.entries_sha256,
            "pallet_ids": dict(sorted(self.pallet_ids.items())),
            "pools": [p.to_json() for p in self.pools],
            "nfts": [
                [
                    n.cid,
                    n.nft_id,
                    _hex(n.owner) if n.owner else None,
                    None if n.shares is None else str(n.shares),
                ]
                for n in self.nfts
            ],
            "legacy_rewards": [[_hex(a), p, str(v)] for a, p, v in self.legacy_rewards],
            "reimbursements": [[_hex(a), p, str(v)] for a, p, v in self.reimbursements],
            # An object, not a list of pairs: half a million entries read back in one pass.
            "wpha_balances": {_hex(a): str(v) for a, v in sorted(self.wpha_balances.items())},
        }

    @classmethod
    def from_json(cls, item: Any, where: str) -> StakingState:
        try:
            return cls(
                wpha_supply=int(item["wpha_supply"]),
                unmintable_dust=int(item["unmintable_dust"]),
                wpha_balances={_bytes(a): int(v) for a, v in item["wpha_balances"].items()},
                pools=[Pool.from_json(p) for p in item["pools"]],
                nfts=[
                    Nft(int(c), int(n), _bytes(o) if o else None, None if s is None else int(s))
                    for c, n, o, s in item["nfts"]
                ],
                legacy_rewards=[(_bytes(a), int(p), int(v)) for a, p, v in item["legacy_rewards"]],
                reimbursements=[(_bytes(a), int(p), int(v)) for a, p, v in item["reimbursements"]],
                wpha_account=_bytes(item["wpha_account"]),
                pallet_ids={str(k): str(v) for k, v in (item.get("pallet_ids") or {}).items()},
                entries_sha256=str(item.get("entries_sha256") or ""),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise InputError(f"{where}: phala_staking section is malformed ({error})") from None


def _hex(account: bytes) -> str:
    return "0x" + account.hex()


def _bytes(text: Any) -> bytes:
    if not isinstance(text, str) or not text.startswith("0x"):
        raise ValueError(f"{text!r:.70} is not 0x-hex")
    return bytes.fromhex(text[2:])


def has_staking(metadata: Metadata) -> bool:
    """Whether this runtime has stake pool v2 (its base pools and wrapped balances)."""
    return "PhalaBasePool" in metadata.pallets and "PhalaWrappedBalances" in metadata.pallets


def _constant_bytes(value: Any) -> bytes | None:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        if value.startswith("0x"):
            try:
                return bytes.fromhex(value[2:])
            except ValueError:
                return None
        try:
            return value.encode("latin-1")
        except UnicodeEncodeError:
            return None
    return None


def pallet_ids(metadata: Metadata) -> dict[str, str]:
    """Every `PalletId` the runtime declares, as {pallet id text: pallet name}."""
    found = dict(KNOWN_PALLET_IDS)
    for name, pallet in metadata.pallets.items():
        for constant in pallet.get("constants") or []:
            path = metadata.types.get(constant["type"], {}).get("path") or []
            if constant["name"] != "PalletId" and path[-1:] != ["PalletId"]:
                continue
            raw = _constant_bytes(constant.get("value"))
            if raw is not None and len(raw) == 8:
                found[raw.decode("latin-1")] = name
    return found


def has_item(metadata: Metadata, pallet: str, item: str) -> bool:
    storage = (metadata.pallets.get(pallet) or {}).get("storage") or {}
    return any(entry["name"] == item for entry in storage.get("entries", []))


def staking_prefixes(metadata: Metadata) -> list[tuple[str, bool]]:
    """(0x-hex key prefix, whether it is a single plain value) of every staking item this
    runtime has: what a snapshot over RPC reads."""
    registry = TypeRegistry(metadata)
    found = []
    for item in STAKING_ITEMS.values():
        if has_item(metadata, *item):
            storage_map = StorageMap(registry, *item)
            found.append(("0x" + storage_map.prefix.hex(), not storage_map.hashers))
    return found


def read_staking(storage: dict[str, Any], metadata: Metadata) -> StakingState:
    """Decode the stake pool v2 items from raw storage (0x-hex keys and values)."""
    registry = TypeRegistry(metadata)
    maps = {
        name: StorageMap(registry, *item)
        for name, item in STAKING_ITEMS.items()
        if has_item(metadata, *item)
    }
    for required in ("asset", "asset_account", "dust", "pools", "nfts", "properties"):
        if required not in maps:
            pallet, item = STAKING_ITEMS[required]
            raise InputError(f"metadata {metadata.source}: no storage item {pallet}.{item}")
    by_prefix = {"0x" + m.prefix.hex(): name for name, m in maps.items()}
    grouped: dict[str, dict[bytes, bytes]] = defaultdict(dict)
    accounts_prefix = "0x" + SYSTEM_ACCOUNT_PREFIX.hex()
    # Most of a state is System.Account: one comprehension picks the staking entries out
    # (a Python loop over every key costs seconds on a million accounts).
    try:
        wanted = [
            (key, value)
            for key, value in storage.items()
            if (head := key[:66]) != accounts_prefix
            and (head in by_prefix or head.lower() in by_prefix)
        ]
    except TypeError:  # a key that is not text: not storage of any item
        wanted = [(k, v) for k, v in storage.items() if isinstance(k, str)]
    for key, value in wanted:
        head = key[:66]
        name = by_prefix.get(head) or by_prefix.get(head.lower())
        if name is None:
            continue
        try:
            raw_key = bytes.fromhex(key[2:])
            raw_value = bytes.fromhex(value[2:]) if value[:2] == "0x" else None
        except (ValueError, TypeError):
            raw_value = None
        if raw_value is None:
            raise InputError(f"storage key {key}: value is not 0x-hex")
        grouped[name][raw_key] = raw_value
    digest = hashlib.sha256()
    for raw_key, raw_value in sorted(pair for group in grouped.values() for pair in group.items()):
        digest.update(len(raw_key).to_bytes(4, "little") + raw_key)
        digest.update(len(raw_value).to_bytes(4, "little") + raw_value)

    supply = 0
    for (asset_id,), details in maps["asset"].entries(grouped["asset"]):
        if asset_id == WPHA_ASSET_ID:
            supply = int(details["supply"])
    balances = _wpha_balances(maps["asset_account"], grouped["asset_account"])
    dust = 0
    for _, value in maps["dust"].entries(grouped["dust"]):
        dust = int(value)

    pools = [_pool(pid, value) for (pid,), value in maps["pools"].entries(grouped["pools"])]
    pools.sort(key=lambda p: p.pid)
    shares: dict[tuple[int, int], int] = {}
    properties = maps["properties"]
    for raw_key, raw_value in grouped["properties"].items():
        cid, nft_id, name = properties.decode_key(raw_key)
        if nft_id is None or bytes(name) != STAKE_INFO:
            continue
        attr = properties.decode_value(raw_value, raw_key)
        if len(attr) != 16:
            raise InputError(
                f"RmrkCore.Properties ({cid}, {nft_id}, stake-info): NftAttr of {len(attr)} "
                "bytes, expected 16 (shares: u128)"
            )
        shares[(cid, nft_id)] = int.from_bytes(attr, "little")
    nfts = []
    for (cid, nft_id), info in maps["nfts"].entries(grouped["nfts"]):
        label, owner = info["owner"]
        nfts.append(
            Nft(cid, nft_id, bytes(owner) if label == "AccountId" else None,
                shares.get((cid, nft_id)))
        )  # fmt: skip
    nfts.sort(key=lambda n: (n.cid, n.nft_id))
    owed = {}
    for name in ("legacy", "reimbursements"):
        rows = []
        if name in maps:
            for ((account, pid),), amount in maps[name].entries(grouped[name]):
                rows.append((bytes(account), int(pid), int(amount)))
        owed[name] = sorted(rows)
    return StakingState(
        wpha_supply=supply,
        unmintable_dust=dust,
        wpha_balances=balances,
        pools=pools,
        nfts=nfts,
        legacy_rewards=owed["legacy"],
        reimbursements=owed["reimbursements"],
        pallet_ids=pallet_ids(metadata),
        entries_sha256="0x" + digest.hexdigest(),
    )


def _wpha_balances(asset_account: StorageMap, entries: dict[bytes, bytes]) -> dict[bytes, int]:
    """W-PHA balance per holder. `AssetAccount` starts with its u128 balance; the rest
    (status, reason, extra) takes few distinct byte strings, so each distinct rest is
    decoded once with the runtime's type and the balance is read by slicing."""
    balances: dict[bytes, int] = {}
    checked: set[bytes] = set()
    first = asset_account.registry.metadata.types[asset_account.value_type]["def"]
    fields = first.get("composite", {}).get("fields", [])
    sliceable = bool(fields) and fields[0].get("name") == "balance"
    sliceable = sliceable and asset_account.registry.metadata.types[fields[0]["type"]]["def"] == {
        "primitive": "u128"
    }
    # Keys of the usual shape (blake2_128_concat(u32 asset) ‖ blake2_128_concat(account))
    # are cut by offsets: the asset part is one constant, only the account's hash varies.
    start = len(asset_account.prefix)
    wpha_part = WPHA_ASSET_ID.to_bytes(4, "little")
    wpha_head = hashlib.blake2b(wpha_part, digest_size=16).digest() + wpha_part
    usual = asset_account.hashers == ["Blake2_128Concat"] * 2 and asset_account.fixed_parts == [
        4,
        32,
    ]
    blake2_128 = partial(hashlib.blake2b, digest_size=16)
    for raw_key, raw_value in entries.items():
        if usual and len(raw_key) == start + 68:
            if raw_key[start : start + 20] != wpha_head:
                continue  # another asset's balance (or a key the slow path names)
            account = raw_key[start + 36 :]
            if blake2_128(account).digest() != raw_key[start + 20 : start + 36]:
                asset_account.decode_key(raw_key)  # raises, naming the key
        else:
            asset_id, account = asset_account.decode_key(raw_key)
            if asset_id != WPHA_ASSET_ID:
                continue
        if sliceable and raw_value[16:] in checked:
            balance = int.from_bytes(raw_value[:16], "little")
        else:
            balance = int(asset_account.decode_value(raw_value, raw_key)["balance"])
            if sliceable:
                checked.add(raw_value[16:])
        if balance:
            balances[bytes(account)] = balance
    return balances


def _pool(pid: int, value: Any) -> Pool:
    label, body = value
    base = body["basepool"]
    common: dict[str, Any] = {
        "pid": int(base["pid"]),
        "owner": bytes(base["owner"]),
        "total_shares": int(base["total_shares"]),
        "total_value": int(base["total_value"]),
        "cid": int(base["cid"]),
        "pool_account": bytes(base["pool_account_id"]),
        "withdraw_queue": tuple(
            (bytes(w["user"]), int(w["nft_id"])) for w in base["withdraw_queue"]
        ),
    }
    if common["pid"] != pid:
        raise InputError(f"PhalaBasePool.Pools({pid}): holds a pool whose pid is {common['pid']}")
    if label == "StakePool":
        return Pool(
            kind="stake-pool",
            lock_account=bytes(body["lock_account"]),
            owner_reward_account=bytes(body["owner_reward_account"]),
            workers=tuple(
                bytes(w) for w in [*body.get("workers", []), *body.get("cd_workers", [])]
            ),
            **common,
        )
    if label == "Vault":
        return Pool(kind="vault", owner_shares=int(body["owner_shares"]), **common)
    raise InputError(f"PhalaBasePool.Pools({pid}): unknown pool kind {label}")


# --- derivation -------------------------------------------------------------------------


@dataclass
class PoolReport:
    """One pool's line in the operator's table: what we allocate beside the runtime's value."""

    pid: int
    kind: str
    account: bytes
    assets: int  # planck allocated to shareholders (W-PHA of bp/ (+ sl/), + vault inflow)
    held_shares: int
    total_shares: int
    runtime_value: int  # sum of shares x total_value / total_shares in U64F64, flooring
    holders: int

    @property
    def difference(self) -> int:
        return self.assets - self.runtime_value

    def to_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "kind": self.kind,
            "account": _hex(self.account),
            "assets_planck": str(self.assets),
            "held_shares": str(self.held_shares),
            "total_shares": str(self.total_shares),
            "runtime_value_planck": str(self.runtime_value),
            "difference_planck": str(self.difference),
            "holders": self.holders,
        }


@dataclass
class Derived:
    """What the rules give, in planck: per-holder free extras and stake, and exclusions."""

    free_extra: dict[bytes, int]
    staked: dict[bytes, int]
    set_aside: set[bytes]  # accounts whose own native balance gets no leaf
    excluded: list[tuple[bytes, str, str, int]]  # (account, reason, kind, planck)
    pools: list[PoolReport]
    wpha_rows: list[tuple[str, int]]
    problems: list[str]


def runtime_value(shares: int, total_shares: int, total_value: int) -> int:
    """The chain's `share_to_balance`: price = total_value / total_shares in U64F64
    (flooring), then shares x price, flooring again."""
    if not total_shares:
        return 0
    price = (total_value << 64) // total_shares
    return (shares * price) >> 64


def allocate(assets: int, shares: dict[bytes, int]) -> dict[bytes, int]:
    """Split `assets` planck exactly by `shares`: floors first, then one planck to each of
    the largest remainders, ties by ascending account id."""
    total = sum(shares.values())
    if not total:
        return {}
    out = {account: assets * held // total for account, held in shares.items()}
    left = assets - sum(out.values())
    if left:
        order = sorted(shares, key=lambda a: (-(assets * shares[a] % total), a))
        for account in order[:left]:
            out[account] += 1
    return out


def _module_reason(account: bytes, names: dict[str, str]) -> str:
    pallet_id = account[4:12].decode("latin-1")
    printable = "".join(c if 32 <= ord(c) < 127 else "?" for c in pallet_id)
    name = names.get(pallet_id, "pallet not named by the runtime's constants")
    sub = "" if not account[12:].strip(b"\0") else f" sub-account 0x{account[12:].hex()}"
    return f"module account modl{printable}{sub} ({name})"


def derive(
    balances: dict[bytes, int],
    state: StakingState,
    exclusions: dict[bytes, tuple[str, str]] | None = None,
) -> Derived:
    """Every holder's free extra and stake from the staking state, by the issue's rules.

    `balances` is native free + reserved per account (every System.Account row with a
    balance); `exclusions` maps operator-named accounts to (reason, kind).
    """
    exclusions = exclusions or {}
    problems: list[str] = []
    free_extra: dict[bytes, int] = defaultdict(int)
    staked: dict[bytes, int] = defaultdict(int)
    excluded: list[tuple[bytes, str, str, int]] = []
    wpha = state.wpha_balances

    # Which accounts are Phala's own, recomputed from the pools.
    roles: dict[bytes, str] = {}
    vault_by_account: dict[bytes, Pool] = {}
    for pool in state.pools:
        bp, sl, so = pool_accounts(pool.pid, pool.owner)
        if pool.pool_account != bp:
            problems.append(
                f"pool {pool.pid}: pool_account_id {_hex(pool.pool_account)} is not the bp/ "
                f"account its pid and owner derive ({_hex(bp)})"
            )
        roles[bp] = "bp/"
        if pool.kind == "stake-pool":
            if pool.lock_account not in (None, sl) or pool.owner_reward_account not in (None, so):
                problems.append(f"pool {pool.pid}: lock or owner reward account is not derived")
            roles[sl] = "sl/"
            roles[so] = "so/"
            for worker in pool.workers:
                roles[worker_session_account(pool.pid, worker)] = "spm/"
        else:
            vault_by_account[bp] = pool
    roles[BASEPOOL_ACCOUNT] = "basepool"
    roles[state.wpha_account] = "wpha/"
    roles[BUDGET_ACCOUNT] = "budget"
    underived = {
        account
        for source in (balances, wpha, [n.owner for n in state.nfts if n.owner])
        for account in source
        if account.startswith(DERIVED_PREFIXES) and account not in roles
    }
    for account in sorted(underived):
        kind = next(p for p in DERIVED_PREFIXES if account.startswith(p)).decode()
        problems.append(
            f"account {_hex(account)} has Phala's {kind} form but no pool derives it "
            "(a pool missing from PhalaBasePool.Pools, or storage of another chain)"
        )

    def special(account: bytes) -> bool:
        return account in roles or account.startswith(MODULE_PREFIX) or account in exclusions

    # Delegation shares per pool collection, withdraw-queue NFTs counting for their user.
    by_cid: dict[int, list[Nft]] = defaultdict(list)
    for nft in state.nfts:
        by_cid[nft.cid].append(nft)
    reports: list[PoolReport] = []
    vault_inflow: dict[bytes, int] = defaultdict(int)

    def holders_of(pool: Pool) -> tuple[dict[bytes, int], int]:
        queue = {nft_id: user for user, nft_id in pool.withdraw_queue}
        held: dict[bytes, int] = defaultdict(int)
        runtime = 0
        for nft in by_cid.get(pool.cid, ()):
            where = f"pool {pool.pid}: NFT ({nft.cid}, {nft.nft_id})"
            if nft.shares is None:
                problems.append(f"{where} has no stake-info property")
                continue
            owner = nft.owner
            if owner is None:
                problems.append(f"{where} is owned by another NFT; its shares have no holder")
                continue
            if owner == BASEPOOL_ACCOUNT:
                owner = queue.get(nft.nft_id)
                if owner is None:
                    problems.append(f"{where} is held by the basepool pallet but not queued")
                    continue
            held[owner] += nft.shares
            runtime += runtime_value(nft.shares, pool.total_shares, pool.total_value)
        if pool.kind == "vault" and pool.owner_shares:
            held[pool.owner] += pool.owner_shares
            runtime += runtime_value(pool.owner_shares, pool.total_shares, pool.total_value)
        return {a: s for a, s in held.items() if s}, runtime

    ordered = [p for p in state.pools if p.kind == "stake-pool"]
    ordered += [p for p in state.pools if p.kind == "vault"]
    pool_assets_total = {"stake-pool": 0, "vault": 0}
    for pool in ordered:
        bp, sl, so = pool_accounts(pool.pid, pool.owner)
        own = wpha.get(bp, 0) + (wpha.get(sl, 0) if pool.kind == "stake-pool" else 0)
        pool_assets_total[pool.kind] += own
        assets = own + vault_inflow.get(bp, 0)
        held, runtime = holders_of(pool)
        for holder in held:
            if holder in vault_by_account and pool.kind == "stake-pool":
                continue
            if special(holder):
                problems.append(
                    f"pool {pool.pid}: shares held by {_hex(holder)}, which is not a holder "
                    f"({roles.get(holder) or 'module or excluded account'})"
                )
        if assets and not held:
            excluded.append((bp, "pool assets without any shareholder", "pool", assets))
        for holder, amount in allocate(assets, held).items():
            if holder in vault_by_account and pool.kind == "stake-pool":
                vault_inflow[holder] += amount
            elif not special(holder):
                staked[holder] += amount
        reports.append(
            PoolReport(pool.pid, pool.kind, bp, assets, sum(held.values()), pool.total_shares,
                       runtime, len(held))
        )  # fmt: skip
        if pool.kind == "stake-pool":
            reward = wpha.get(so, 0)
            if reward:
                if special(pool.owner):
                    problems.append(
                        f"pool {pool.pid}: owner {_hex(pool.owner)} is a module account"
                    )
                else:
                    free_extra[pool.owner] += reward
    reports.sort(key=lambda r: (r.kind != "stake-pool", r.pid))

    # Idle W-PHA of holders; W-PHA of anyone else is excluded with the reason it has.
    idle = owner_rewards = excluded_wpha = 0
    for account, amount in wpha.items():
        role = roles.get(account)
        if role in ("bp/", "sl/"):
            continue
        if role == "so/":
            owner_rewards += amount
        elif special(account):
            reason = (
                exclusions[account][0]
                if account in exclusions
                else _module_reason(account, state.pallet_ids)
                if account.startswith(MODULE_PREFIX)
                else f"the {role} account"
            )
            excluded.append((account, f"W-PHA held by {reason}", "wpha", amount))
            excluded_wpha += amount
        else:
            free_extra[account] += amount
            idle += amount
    supply = state.wpha_supply
    pooled = pool_assets_total["stake-pool"] + pool_assets_total["vault"]
    wpha_rows = [
        ("W-PHA supply (Assets.Asset 10000)", supply),
        ("idle W-PHA of holders", idle),
        ("owner rewards (so/ accounts)", owner_rewards),
        ("stake pool assets (bp/ + sl/)", pool_assets_total["stake-pool"]),
        ("vault assets (bp/)", pool_assets_total["vault"]),
        ("W-PHA of excluded accounts", excluded_wpha),
        ("difference", supply - idle - owner_rewards - pooled - excluded_wpha),
    ]
    if wpha_rows[-1][1]:
        problems.append(
            f"W-PHA supply {supply} differs from the sum of W-PHA balances by {wpha_rows[-1][1]}"
        )

    # What the computation budget owes (claimable on chain), paid from its own balance.
    owed = 0
    for source, rows in (("LegacyRewards", state.legacy_rewards),
                         ("Reimbursements", state.reimbursements)):  # fmt: skip
        for account, pid, amount in rows:
            if special(account):
                problems.append(f"{source} ({_hex(account)}, {pid}): owed to a module account")
                continue
            free_extra[account] += amount
            owed += amount
    budget = balances.get(BUDGET_ACCOUNT, 0)
    if owed > budget:
        problems.append(
            f"LegacyRewards and Reimbursements owe {owed} planck but the computation budget "
            f"{_hex(BUDGET_ACCOUNT)} holds only {budget}"
        )
    elif budget - owed:
        excluded.append(
            (BUDGET_ACCOUNT,
             "computation budget (modlphala/pp) after what LegacyRewards and Reimbursements owe",
             "budget", budget - owed)
        )  # fmt: skip

    # Native balances that do not migrate.
    backing = balances.get(state.wpha_account, 0)
    excess = backing - supply
    if excess < state.unmintable_dust:
        problems.append(
            f"wpha/ {_hex(state.wpha_account)} holds {backing} planck, less than the W-PHA "
            f"supply {supply} plus UnmintableDust {state.unmintable_dust}"
        )
    else:
        if state.unmintable_dust:
            excluded.append(
                (state.wpha_account, "wpha/: UnmintableDust (PHA too small to mint as W-PHA)",
                 "wrapped-balance", state.unmintable_dust)
            )  # fmt: skip
        if excess - state.unmintable_dust:
            excluded.append(
                (state.wpha_account,
                 "wpha/: residual above W-PHA supply and UnmintableDust (no W-PHA claims it)",
                 "wrapped-balance", excess - state.unmintable_dust)
            )  # fmt: skip
    native_reasons = {
        "bp/": "native PHA of base pool accounts (bp/): not part of any share",
        "sl/": "native PHA of stake pool lock accounts (sl/)",
        "so/": "native PHA of owner reward accounts (so/)",
        "spm/": "native PHA of worker session accounts (spm/)",
        "basepool": "native PHA of the basepool pallet account",
    }
    for account, amount in balances.items():
        role = roles.get(account)
        if not amount or role in ("wpha/", "budget"):
            continue
        if role is not None:
            excluded.append((account, native_reasons[role], "pool-account", amount))
        elif account in exclusions:
            reason, kind = exclusions[account]
            excluded.append((account, reason, kind, amount))
        elif account.startswith(MODULE_PREFIX):
            excluded.append((account, _module_reason(account, state.pallet_ids), "module", amount))
    set_aside = {a for a in balances if special(a)}
    excluded.sort(key=lambda e: (e[1], e[0]))
    return Derived(
        free_extra=dict(free_extra),
        staked=dict(staked),
        set_aside=set_aside,
        excluded=excluded,
        pools=reports,
        wpha_rows=wpha_rows,
        problems=problems,
    )


def dust_problems(reports: list[PoolReport], accept_dust: int | None) -> list[str]:
    """Pools whose assets stray from what the runtime values their shares at by more than
    `--accept-dust` planck (nothing checked without one).

    On the built-in path `--accept-dust` bounds what a backing account may hold beyond
    its positions. Here positions are not written by an operator but allocated exactly
    from the pool's assets, so nothing is left over to exclude; what the limit still
    bounds is the gap between those assets and the runtime's own `share_to_balance` value
    of the same shares. A few planck is U64F64 flooring; more means shares nobody holds or
    a `total_value` behind the pool's W-PHA, which an operator who sets a limit wants to
    stop on rather than find in a table."""
    if accept_dust is None:
        return []
    return [
        f"{report.kind} {report.pid} ({_hex(report.account)}): assets {report.assets} planck "
        f"differ from the runtime's value of its shares {report.runtime_value} by "
        f"{report.difference} planck (more than --accept-dust {accept_dust})"
        for report in reports
        if abs(report.difference) > accept_dust
    ]
