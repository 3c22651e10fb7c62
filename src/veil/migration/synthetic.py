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
