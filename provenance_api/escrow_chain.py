"""The EscrowReader port over web3: TradeEscrow's and ProductPassport's views, call data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from web3 import Web3
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from contracts_abi.escrow import Status
from provenance_api import chain

ESCROW = "TradeEscrow"
PASSPORT = "ProductPassport"


class EscrowChain:
    """TradeEscrow at `address` and ProductPassport at `passport` on `w3`'s chain."""

    def __init__(self, w3: Web3, address: str, passport: str, chain_id: int) -> None:
        self.w3 = w3
        self.escrow = chain.contract(w3, ESCROW, address)
        self.passport_contract = chain.contract(w3, PASSPORT, passport)
        self.address = self.escrow.address
        self.passport = self.passport_contract.address
        self.chain_id = chain_id

    def status(self, trade_id: int) -> Status:
        """statusOf."""
        return Status.from_tuple(self.escrow.functions.statusOf(trade_id).call())

    def deadline(self, trade_id: int) -> int:
        """deadlineOf."""
        return int(self.escrow.functions.deadlineOf(trade_id).call())

    def credit(self, address: str) -> int:
        """creditOf."""
        return int(self.escrow.functions.creditOf(address).call())

    def opened_trade_id(self, tx_hash: str) -> int | None:
        """From the TradeOpened log of the receipt."""
        receipt = self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        for log in self.escrow.events.TradeOpened().process_receipt(receipt, errors=DISCARD):
            if log["address"] == self.address:
                return int(log["args"]["tradeId"])
        return None

    def is_eligible(self, trade_id: int, arbiter: str) -> bool:
        """isEligible."""
        return bool(self.escrow.functions.isEligible(trade_id, arbiter).call())

    def passport_owner(self, token_id: int) -> str | None:
        """ownerOf, or None while not minted (ownerOf reverts)."""
        try:
            return str(self.passport_contract.functions.ownerOf(token_id).call())
        except ContractLogicError:
            return None

    def calldata(self, contract: str, function: str, args: Sequence[Any]) -> str:
        """ABI-encoded call data."""
        target = self.escrow if contract == ESCROW else self.passport_contract
        return str(target.encode_abi(function, args=list(args)))
