"""`POST /v1/migration/bindings`: verify a holder's binding, then sign it for the Migrator.

The attester never decides amounts (they are in the Merkle tree anyone can rebuild); it
only vouches that the account's key chose this receiver, with this very signature. So it
checks, in order: the account is a leaf, the leaf is not yet claimed on chain, and the
substrate signature binds this account to this receiver on this deployment. Only then
does it sign `Binding(account, receiver, signatureHash)`, signatureHash committing the
signature it verified (and its scheme), so a claim can publish no other; then it records
and answers (the answer carries signatureHash and the bare signature the claim must
publish).

Records are idempotent. The same binding (account, receiver, holder signature; the
MultiSignature and bare forms of one signature are one binding) is answered from the
record with the very answer first given, before the chain or any signature is looked at,
so a replay costs a tree lookup and an indexed read. A different binding for an account
already bound is recorded as a rebinding (the answer says so), up to
`max_bindings_per_account` distinct bindings; beyond that it is refused (409
`binding_limit`). Rebinding stays possible because a holder may lose a receiver key or
the signature before claiming (sr25519 signatures are randomized, so signing again makes
a new binding); it cannot cost funds, since the Migrator pays a leaf once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount

from veil.attestation import api
from veil.errors import InputError
from veil.merkle import MerkleTree, value_to_json
from veil.migration import attestation
from veil.migration.binding import BindingContext, BindingRefused, checksum_address, verify_binding
from veil.services.attester.requests import Refused, hex_field, require_object, text_field
from veil.services.attester.store import BindingLimit, Store
from veil.substrate import ss58
from veil.substrate.signature import SCHEMES

ClaimedCheck = Callable[[int], bool]
MAX_BINDINGS_PER_ACCOUNT = 4


def _record_keys(signature: bytes) -> list[str]:
    """Every recorded form this posted signature may have (before its scheme is known)."""
    keys = [signature]
    if (len(signature) == 65 and signature[0] in (0, 1)) or (
        len(signature) == 66 and signature[0] == 2
    ):
        keys.append(signature[1:])
    return ["0x" + k.hex() for k in keys]


def parse_account(text: str) -> bytes:
    try:
        return ss58.parse_account(text)
    except InputError as error:
        raise Refused(400, f"account: {error}") from None


@dataclass
class BindingService:
    """Everything needed to attest bindings for one Migrator deployment."""

    tree: MerkleTree
    context: BindingContext
    signer: LocalAccount
    store: Store
    is_claimed: ClaimedCheck = lambda _index: False
    max_bindings_per_account: int = MAX_BINDINGS_PER_ACCOUNT

    def __post_init__(self) -> None:
        self._signer = attestation.BindingSigner(
            self.signer.key, self.context.chain_id, self.context.migrator
        )

    def attest(self, body: Any) -> dict[str, Any]:
        body = require_object(body, api.BINDING_FIELDS)
        account = parse_account(text_field(body, "account", 80))
        try:
            receiver = checksum_address(text_field(body, "receiver", 42), "receiver")
        except InputError as error:
            raise Refused(400, str(error)) from None
        scheme = body.get("scheme")
        if scheme is not None and scheme not in SCHEMES:
            raise Refused(400, f"scheme: expected one of {', '.join(SCHEMES)}")
        signature = hex_field(body, "signature", (64, 65, 66))
        pubkey = hex_field(body, "pubkey", (32, 33)) if "pubkey" in body else None

        try:
            position = self.tree.value_index(account)
        except InputError:
            name = ss58.encode(account)
            raise Refused(404, f"account {name}: not in the migration tree") from None
        index, _, free, staked = self.tree.values[position]
        account_hex = "0x" + account.hex()
        for key in _record_keys(signature):
            seen = self.store.find_binding(account_hex, receiver, key)
            if seen is not None and seen.get("answer"):
                return dict(json.loads(seen["answer"]))
        if self.is_claimed(index):
            raise Refused(409, f"account {ss58.encode(account)}: leaf {index} is already claimed")
        try:
            verified = verify_binding(
                account, receiver, signature, self.context, scheme=scheme, public_key=pubkey
            )
        except BindingRefused as error:
            raise Refused(422, str(error)) from None
        except InputError as error:
            raise Refused(400, str(error)) from None

        sig_hash = attestation.signature_hash(signature, verified.scheme)
        signed, digest = self._signer.sign(account, receiver, sig_hash)
        answer = api.BindingAnswer(
            account="0x" + account.hex(),
            ss58=ss58.encode(account),
            receiver=receiver,
            leaf=value_to_json(self.tree.values[position]),
            index=index,
            free=free,
            staked=staked,
            scheme=verified.scheme,
            signature="0x" + attestation.published_signature(signature, verified.scheme).hex(),
            signature_hash="0x" + sig_hash.hex(),
            digest="0x" + digest.hex(),
            attestation=api.SignedBy(signed.signer, signed.signature),
        ).to_json()
        try:
            stored, _ = self.store.record_binding(
                {
                    "account": answer["account"],
                    "receiver": receiver,
                    "leaf_index": index,
                    "scheme": verified.scheme,
                    "substrate_signature": answer["signature"],
                    "digest": answer["digest"],
                    "attestation": json.dumps(answer["attestation"]),
                },
                self.max_bindings_per_account,
                answer=lambda count: json.dumps({**answer, "rebinding": count > 0}),
            )
        except BindingLimit as limit:
            raise Refused(
                409,
                f"account {answer['ss58']}: already has {limit.count} distinct bindings, the"
                f" most this attester records; post one of them again to get its attestation",
                code="binding_limit",
            ) from None
        if stored.get("answer"):  # ours, or the first of racing posts
            return dict(json.loads(stored["answer"]))
        return {**answer, "rebinding": False}  # recorded by an attester that kept no answers
