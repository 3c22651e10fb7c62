"""A realistic, self-consistent parachain state for demos, tests and benchmarks.

Real storage keys and real SCALE values, so the pipeline cannot tell it from a dump of
the live chain: ordinary holders (a sample with real sr25519, ed25519 and ECDSA
keypairs whose secrets are returned so the demo can sign bindings), stake pools and a
vault held by module accounts whose balances equal their delegators' positions, a
wrapped-balance account, a treasury and a bridge reserve to exclude, and a
TotalIssuance equal to the sum of all balances.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field
from typing import Any

import ed25519_zebra
import sr25519
import xxhash

from veil.migration.positions import Exclusion, Position, module_account
from veil.substrate import ss58
from veil.substrate.signature import Scheme
from veil.substrate.storage import (
    SYSTEM_ACCOUNT_PREFIX,
    TOTAL_ISSUANCE_KEY,
    blake2_128,
    blake2_256,
    twox128,
)

PLANCK_PER_PHA = 10**12
STAKE_POOL_PALLET = b"phala/sp"
VAULT_PALLET = b"phala/vt"
WRAPPED_PALLET = b"phala/wp"
TREASURY = module_account(b"py/trsry")
BRIDGE = module_account(b"cb/bridg")


@dataclass(frozen=True, slots=True)
class Keypair:
    """A sample holder's key: `seed` is the 32-byte secret polkadot.js `addFromSeed` takes."""

    scheme: Scheme
    seed: bytes
    public_key: bytes
    account: bytes

    def sign(self, message: bytes) -> bytes:
        """Sign as the wallets do for that scheme (ecdsa: over blake2_256(message))."""
        if self.scheme == "sr25519":
            public, secret = sr25519.pair_from_seed(self.seed)
            return bytes(sr25519.sign((public, secret), message))
        if self.scheme == "ed25519":
            return bytes(ed25519_zebra.ed_sign(self.seed, message))
        from eth_keys import keys as eth_keys  # ~0.1 s to import; only ECDSA keys need it

        signature = eth_keys.PrivateKey(self.seed).sign_msg_hash(blake2_256(message))
        return signature.to_bytes()

    def to_json(self) -> dict[str, str]:
        return {
            "scheme": self.scheme,
            "seed": "0x" + self.seed.hex(),
            "public_key": "0x" + self.public_key.hex(),
            "account": "0x" + self.account.hex(),
            "address": ss58.encode(self.account),
        }


def keypair(scheme: Scheme, seed: bytes) -> Keypair:
    if scheme == "sr25519":
        public, _ = sr25519.pair_from_seed(seed)
        return Keypair(scheme, seed, bytes(public), bytes(public))
    if scheme == "ed25519":
        public = bytes(ed25519_zebra.ed_public_from_secret(seed))
        return Keypair(scheme, seed, public, public)
    from eth_keys import keys as eth_keys

    public = eth_keys.PrivateKey(seed).public_key.to_compressed_bytes()
    return Keypair(scheme, seed, public, blake2_256(public))


@dataclass
class SyntheticState:
    raw: dict[str, str]
    positions: list[Position]
    exclusions: list[Exclusion]
    keys: list[Keypair]
    total_issuance: int
    genesis_hash: bytes
    block: bytes
    notes: dict[str, Any] = field(default_factory=dict)


def _account_value(nonce: int, free: int, reserved: int, frozen: int) -> str:
    head = struct.pack("<IIII", nonce, 0 if not reserved else 1, 1, 0)
    return (
        "0x"
        + (
            head
            + free.to_bytes(16, "little")
            + reserved.to_bytes(16, "little")
            + frozen.to_bytes(16, "little")
            + (1 << 127).to_bytes(16, "little")  # the "new logic" flag every migrated account has
        ).hex()
    )


def generate_state(accounts: int, *, seed: int = 0, sample_keys: int = 24) -> SyntheticState:
    """A state of `accounts` ordinary holders plus the module accounts around them."""
    if accounts < 3:
        raise ValueError("generate_state needs at least 3 accounts")
    rng = random.Random(seed)
    prefix_hex = "0x" + SYSTEM_ACCOUNT_PREFIX.hex()
    raw: dict[str, str] = {}
    balances: dict[bytes, int] = {}

    def put(account: bytes, free: int, reserved: int = 0, nonce: int = 0) -> None:
        key = prefix_hex + blake2_128(account).hex() + account.hex()
        raw[key] = _account_value(nonce, free, reserved, free // 4 if nonce % 3 == 0 else 0)
        balances[account] = balances.get(account, 0) + free + reserved

    schemes: tuple[Scheme, ...] = ("sr25519", "ed25519", "ecdsa")
    keys = [keypair(schemes[i % 3], rng.randbytes(32)) for i in range(min(sample_keys, accounts))]
    holders = [k.account for k in keys]
    holders += [rng.randbytes(32) for _ in range(accounts - len(holders))]
    randint, lognorm = rng.randint, rng.lognormvariate
    for account in holders:
        free = int(lognorm(6.0, 2.0) * PLANCK_PER_PHA) + randint(0, PLANCK_PER_PHA)
        reserved = randint(1, 50) * PLANCK_PER_PHA if randint(0, 19) == 0 else 0
        put(account, free, reserved, randint(0, 300))

    # Stake pools (derived sub-accounts), one vault and the wrapped-balance account.
    pool_count = max(3, min(40, accounts // 2000))
    sources = [f"modl:{STAKE_POOL_PALLET.decode()}:{pid}" for pid in range(pool_count)]
    sources += ["vault-1", "wpha"]
    positions: list[Position] = []
    delegators = rng.sample(holders, max(2, accounts // 20))
    # Every sample keypair delegates too, so the demo can claim staked PHA.
    delegators = list(dict.fromkeys(holders[: len(keys)] + delegators))
    for holder in delegators:
        for source in rng.sample(sources, rng.choice((1, 1, 1, 2))):
            positions.append(Position(holder, int(lognorm(7.0, 1.5) * PLANCK_PER_PHA), source))
    backing: dict[str, bytes] = {
        source: module_account(STAKE_POOL_PALLET, int(source.rsplit(":", 1)[1]))
        for source in sources[:pool_count]
    }
    backing["vault-1"] = module_account(VAULT_PALLET, 1)
    backing["wpha"] = module_account(WRAPPED_PALLET)
    held: dict[bytes, int] = {}
    for position in positions:
        held[backing[position.source]] = held.get(backing[position.source], 0) + position.staked
    for account in backing.values():
        put(account, held.get(account, 0))
    put(TREASURY, 25_000_000 * PLANCK_PER_PHA + randint(0, PLANCK_PER_PHA))
    put(BRIDGE, 40_000_000 * PLANCK_PER_PHA + randint(0, PLANCK_PER_PHA))
    exclusions = [
        Exclusion(backing["vault-1"], "backs staked positions", "vault", ("vault-1",)),
        Exclusion(backing["wpha"], "backs staked positions", "wrapped-balance", ("wpha",)),
        Exclusion(TREASURY, "treasury: stays with governance, funded separately on the L2",
                  "treasury"),
        Exclusion(BRIDGE, "bridge reserve: backs PHA already issued on other chains", "bridge"),
    ]  # fmt: skip
    total_issuance = sum(balances.values())
    raw["0x" + TOTAL_ISSUANCE_KEY.hex()] = "0x" + total_issuance.to_bytes(16, "little").hex()
    # Keys of other pallets, as any full state dump has: the snapshot must ignore them.
    raw["0x" + (twox128(b"System") + twox128(b"Number")).hex()] = (
        "0x" + (4_200_000).to_bytes(4, "little").hex()
    )
    raw["0x" + (twox128(b"Timestamp") + twox128(b"Now")).hex()] = (
        "0x" + (1_760_000_000_000).to_bytes(8, "little").hex()
    )
    return SyntheticState(
        raw=raw,
        positions=positions,
        exclusions=exclusions,
        keys=keys,
        total_issuance=total_issuance,
        genesis_hash=rng.randbytes(32),
        block=rng.randbytes(32),
        notes={"pools": pool_count, "delegators": len(delegators)},
    )


def raw_document(state: SyntheticState) -> dict[str, str]:
    """The RAW.json object: storage pairs plus the optional `block`/`genesis_hash` keys."""
    return {
        "block": "0x" + state.block.hex(),
        "genesis_hash": "0x" + state.genesis_hash.hex(),
        **state.raw,
    }


# --- a Phala-shaped state: stake pool v2 storage in phala 1291's layouts -----------------

_PHALA_RESERVED = (b"modl", b"bp/", b"sl/", b"so/", b"spm/", b"wpha/", b"basepool")


def _twox64_concat(data: bytes) -> bytes:
    return xxhash.xxh64_digest(data, seed=0)[::-1] + data


def _blake2_128_concat(data: bytes) -> bytes:
    return blake2_128(data) + data


def _u128(value: int) -> bytes:
    return value.to_bytes(16, "little")


def _compact_len(length: int) -> bytes:
    if length < 1 << 6:
        return bytes([length << 2])
    if length < 1 << 14:
        return ((length << 2) | 1).to_bytes(2, "little")
    return ((length << 2) | 2).to_bytes(4, "little")


def generate_phala_state(
    accounts: int,
    *,
    wpha_holders: int,
    pools: int,
    nfts: int,
    seed: int = 0,
) -> SyntheticState:
    """A state shaped like Phala's since stake pool v2, for the benchmark: every staked PHA
    in `wpha/` behind W-PHA, W-PHA in pool accounts, shares in delegation NFTs, a few
    withdraw queues, vaults invested in stake pools, LegacyRewards owed by the budget.

    Values are encoded by hand in phala 1291's layouts (pass that metadata to the
    snapshot); a million values through a generic encoder would dominate the benchmark.
    """
    from veil.migration.phala_staking import (
        BASEPOOL_ACCOUNT,
        BUDGET_ACCOUNT,
        WPHA_ACCOUNT,
        pool_accounts,
    )

    rng = random.Random(seed)
    raw: dict[str, str] = {}
    native: dict[bytes, int] = {}

    def prefix(pallet: bytes, item: bytes) -> bytes:
        return twox128(pallet) + twox128(item)

    def put(key: bytes, value: bytes) -> None:
        raw["0x" + key.hex()] = "0x" + value.hex()

    holders: list[bytes] = []
    while len(holders) < accounts:
        account = rng.randbytes(32)
        if not account.startswith(_PHALA_RESERVED):
            holders.append(account)
    wpha: dict[bytes, int] = {}
    for account in rng.sample(holders, min(wpha_holders, accounts)):
        wpha[account] = int(rng.lognormvariate(5.0, 2.0) * PLANCK_PER_PHA)
    for account in holders:
        native[account] = int(rng.lognormvariate(6.0, 2.0) * PLANCK_PER_PHA)

    pools_key = prefix(b"PhalaBasePool", b"Pools")
    nfts_key = prefix(b"RmrkCore", b"Nfts")
    props_key = prefix(b"RmrkCore", b"Properties")
    stake_info = _blake2_128_concat(_compact_len(10) + b"stake-info")
    kinds = ["vault" if pid % 3 == 2 else "stake-pool" for pid in range(pools)]
    owners = [rng.choice(holders) for _ in range(pools)]
    derived = [pool_accounts(pid, owners[pid]) for pid in range(pools)]
    stake_pids = [pid for pid in range(pools) if kinds[pid] == "stake-pool"]
    shares: dict[int, list[tuple[int, bytes, int]]] = {pid: [] for pid in range(pools)}
    queues: dict[int, list[tuple[bytes, int]]] = {pid: [] for pid in range(pools)}
    next_nft = dict.fromkeys(range(pools), 0)
    for number in range(nfts):
        pid = rng.randrange(pools)
        owner = rng.choice(holders)
        if kinds[pid] == "stake-pool" and number % 50 == 0 and pools > 2:
            vault = rng.randrange(2, pools, 3)  # a vault invested in this stake pool
            owner = derived[vault][0]
        nft_id = next_nft[pid]
        next_nft[pid] += 1
        amount = int(rng.lognormvariate(7.0, 1.5) * PLANCK_PER_PHA) + 1
        if number % 97 == 0:  # in the withdraw queue: held by the basepool pallet
            queues[pid].append((owner, nft_id))
            owner = BASEPOOL_ACCOUNT
        shares[pid].append((nft_id, owner, amount))
    for pid in range(pools):
        bp, sl, so = derived[pid]
        owner = owners[pid]
        held = sum(s for _, _, s in shares[pid])
        owner_shares = rng.randint(0, 10**15) if kinds[pid] == "vault" else 0
        total_shares = held + owner_shares
        free = rng.randint(0, 10**16) if total_shares else 0
        if free:
            wpha[bp] = free
        native[bp] = PLANCK_PER_PHA // 100
        locked = rng.randint(0, 10**16) if total_shares and kinds[pid] == "stake-pool" else 0
        total_value = free + locked
        queue = queues[pid]
        base = (
            pid.to_bytes(8, "little") + owner + _u128(total_shares) + _u128(total_value)
            + _compact_len(len(queue))
            + b"".join(u + (1_700_000_000).to_bytes(8, "little") + n.to_bytes(4, "little")
                       for u, n in queue)
            + b"\x00" + (10000 + pid).to_bytes(4, "little") + bp
        )  # fmt: skip
        if kinds[pid] == "stake-pool":
            if locked:
                wpha[sl] = locked
            reward = rng.randint(0, 10**13)
            if reward:
                wpha[so] = reward
            value = b"\x00" + base + b"\x00\x00" + b"\x00\x00" + sl + so
        else:
            value = b"\x01" + base + _u128(PLANCK_PER_PHA) + b"\x00" + _u128(owner_shares)
            value += b"\x00"
        put(pools_key + _twox64_concat(pid.to_bytes(8, "little")), value)
        cid = (10000 + pid).to_bytes(4, "little")
        for nft_id, holder, amount in shares[pid]:
            nft = nft_id.to_bytes(4, "little")
            put(nfts_key + _twox64_concat(cid) + _twox64_concat(nft),
                b"\x00" + holder + b"\x00\x00\x00\x00\x01")  # fmt: skip
            put(props_key + _blake2_128_concat(cid) + _blake2_128_concat(b"\x01" + nft)
                + stake_info, b"\x40" + _u128(amount))  # fmt: skip
    del stake_pids

    legacy_key = prefix(b"PhalaStakePoolv2", b"LegacyRewards")
    owed = 0
    for account in rng.sample(holders, min(2000, accounts)):
        amount = rng.randint(1, 10**15)
        pid = rng.randrange(max(pools, 1))
        put(legacy_key + _twox64_concat(account + pid.to_bytes(8, "little")), _u128(amount))
        owed += amount
    supply = sum(wpha.values())
    asset_key = prefix(b"Assets", b"Account")
    asset_id = _blake2_128_concat((10000).to_bytes(4, "little"))
    for account, amount in wpha.items():
        put(asset_key + asset_id + _blake2_128_concat(account), _u128(amount) + b"\x00\x01")
    details = WPHA_ACCOUNT * 4 + _u128(supply) + _u128(0) + _u128(1) + b"\x01"
    details += len(wpha).to_bytes(4, "little") * 2 + bytes(4) + b"\x00"
    put(prefix(b"Assets", b"Asset") + asset_id, details)
    dust = rng.randint(0, 10**9)
    put(prefix(b"PhalaWrappedBalances", b"UnmintableDust"), _u128(dust))
    native[WPHA_ACCOUNT] = supply + dust
    native[BUDGET_ACCOUNT] = owed + 10**18
    native[TREASURY] = 25_000_000 * PLANCK_PER_PHA
    account_prefix = SYSTEM_ACCOUNT_PREFIX
    for account, amount in native.items():
        put(account_prefix + blake2_128(account) + account,
            bytes.fromhex(_account_value(1, amount, 0, 0)[2:]))  # fmt: skip
    total_issuance = sum(native.values())
    put(TOTAL_ISSUANCE_KEY, _u128(total_issuance))
    return SyntheticState(
        raw=raw,
        positions=[],
        exclusions=[],
        keys=[],
        total_issuance=total_issuance,
        genesis_hash=rng.randbytes(32),
        block=rng.randbytes(32),
        notes={"pools": pools, "nfts": nfts, "wpha_holders": len(wpha)},
    )
