"""A connection to the L2 that sends transactions and turns reverts into one line.

Transactions are signed locally (the node never sees a key) and simulated first with
`eth_estimateGas`, so a call that would revert fails before it costs gas and the error
names the call and the contract's own revert reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self, cast

from veil.errors import ChainError

if TYPE_CHECKING:  # web3 takes ~0.4 s to import: commands that never touch a chain skip it
    from eth_account.signers.local import LocalAccount
    from web3 import Web3
    from web3.contract import Contract
    from web3.contract.contract import ContractFunction
    from web3.types import TxParams, TxReceipt

    from veil.chain.compile import Artifact
    from veil.chain.deployment import Deployment

# anvil estimates at the current block's timestamp; the mined block is later, so a call
# whose cost grows with elapsed time (reward accrual) needs more than it was estimated at.
GAS_HEADROOM = 1.3
GAS_MARGIN = 50_000


def connect(rpc_url: str, expected_chain_id: int | None = None, timeout: float = 30) -> Web3:
    """A Web3 over HTTP that has answered once, on the chain we expect."""
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    try:
        chain_id = w3.eth.chain_id
    except Exception as error:  # requests' many connection errors
        raise ChainError(f"rpc {rpc_url}: no answer ({type(error).__name__})") from error
    if expected_chain_id is not None and chain_id != expected_chain_id:
        raise ChainError(
            f"rpc {rpc_url}: chain id {chain_id}, but the deployment is for {expected_chain_id}"
        )
    return w3


def event_args(contract: Contract, receipt: TxReceipt, name: str) -> Any:
    """Arguments of the first `name` event `contract` emitted in this receipt."""
    from web3.logs import DISCARD

    found = getattr(contract.events, name)().process_receipt(receipt, errors=DISCARD)
    if not found:
        raise ChainError(f"{name}: no such event in tx {receipt['transactionHash'].hex()}")
    return found[0]["args"]


def _revert_reason(error: Exception) -> str:
    message = getattr(error, "message", None) or str(error)
    if isinstance(message, tuple):
        message = message[0]
    return str(message).removeprefix("execution reverted: ").strip() or "reverted"


@dataclass
class Chain:
    """The L2 as veil sees it: a web3 connection plus the deployment it acts on."""

    w3: Web3
    deployment: Deployment | None = None

    @classmethod
    def open(cls, deployment: Deployment, rpc_url: str | None = None) -> Self:
        return cls(connect(rpc_url or deployment.rpc_url, deployment.chain_id), deployment)

    def contract(self, name: str) -> Contract:
        if self.deployment is None:
            raise ChainError(f"contract {name}: no deployment loaded")
        from web3 import Web3

        record = self.deployment.contracts.get(name)
        address = self.deployment.address(name)
        assert record is not None
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=record.abi)

    def at(self, address: str, abi: Sequence[Any]) -> Contract:
        from web3 import Web3

        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)

    def _send_tx(self, signer: LocalAccount, tx: dict[str, Any], label: str) -> TxReceipt:
        from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError

        tx.setdefault("from", signer.address)
        tx.setdefault("chainId", self.w3.eth.chain_id)
        tx.setdefault("nonce", self.w3.eth.get_transaction_count(signer.address, "pending"))
        tx.setdefault("gasPrice", self.w3.eth.gas_price)
        if "gas" not in tx:
            try:
                estimate = self.w3.eth.estimate_gas(cast("TxParams", tx))
                tx["gas"] = int(estimate * GAS_HEADROOM) + GAS_MARGIN
            except (ContractLogicError, ContractCustomError, Web3RPCError) as error:
                raise ChainError(f"{label} reverted: {_revert_reason(error)}") from error
        signed = signer.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
        if receipt["status"] != 1:
            raise ChainError(f"{label} reverted on chain (tx {tx_hash.hex()})")
        return receipt

    def send(
        self, signer: LocalAccount, call: ContractFunction, label: str, value: int = 0
    ) -> TxReceipt:
        """Sign and send a contract call; `label` names it in any error."""
        from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError

        try:
            built = call.build_transaction(
                cast("TxParams", {"from": signer.address, "value": value, "gas": 0, "gasPrice": 0})
            )
        except (ContractLogicError, ContractCustomError, Web3RPCError) as error:
            raise ChainError(f"{label} reverted: {_revert_reason(error)}") from error
        return self._send_tx(
            signer, {"to": built["to"], "data": built["data"], "value": value}, label
        )

    def send_value(self, signer: LocalAccount, to: str, value: int, label: str) -> TxReceipt:
        """Send the chain's own coin (ETH on the L2: what gas is paid in) to an address."""
        return self._send_tx(signer, {"to": to, "value": value}, label)

    def deploy(self, signer: LocalAccount, artifact: Artifact, *args: Any) -> tuple[str, int]:
        """Deploy an artifact; returns (address, block number)."""
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        data = factory.constructor(*args).data_in_transaction
        receipt = self._send_tx(signer, {"data": data, "value": 0}, f"deploy {artifact.name}")
        address = receipt["contractAddress"]
        if address is None:
            raise ChainError(f"deploy {artifact.name}: the receipt names no contract address")
        return str(address), int(receipt["blockNumber"])
