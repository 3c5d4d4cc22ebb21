"""The trade sweeper: settle expired trades and notice settled ones (services.trades.sweep).

Without it a trade whose window passed waits for a party to POST /timeout, and a trade
settled on-chain by a party's own transaction keeps its item locked until someone reads it.
`provenance-api run` runs it in a thread next to the anchorer, `provenance-api worker` too,
every TRADE_SWEEP_SECONDS (0: never). Any number may run over one database: the timeout's
idempotency key makes a second sweeper's write the first one's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session
from web3 import Web3

from provenance_api.escrow_chain import ESCROW, PASSPORT, EscrowChain
from provenance_api.services.deployments import known_addresses
from provenance_api.services.trades import Swept, sweep
from provenance_api.unit_of_work import SqlUnitOfWork

log = logging.getLogger(__name__)


class TradeSweeper:
    """Sweeps the trades of this chain's TradeEscrow over `engine`; timeouts are the operator's."""

    def __init__(
        self,
        engine: Engine,
        w3: Callable[[], Web3],
        chain_id: Callable[[], int],
        sender: Callable[[], str],
        config: Mapping[str, Any],
    ) -> None:
        self.engine = engine
        self.w3 = w3
        self.chain_id = chain_id
        self.sender = sender
        self.every_seconds = float(config["TRADE_SWEEP_SECONDS"])
        self.grace_seconds = int(config["TRADE_SWEEP_GRACE_SECONDS"])
        self.limit = int(config["TRADE_SWEEP_BATCH"])
        self.running = False
        self.last_pass: float | None = None  # unix time of the last pass that ended well
        self.last_swept: Swept | None = None
        self.last_error: str | None = None

    def escrow(self) -> EscrowChain | None:
        """TradeEscrow on this chain; None before it is deployed."""
        chain_id = self.chain_id()
        with Session(self.engine) as session:
            addresses = known_addresses(session, chain_id)
        if ESCROW not in addresses or PASSPORT not in addresses:
            return None
        return EscrowChain(self.w3(), addresses[ESCROW], addresses[PASSPORT], chain_id)

    def tick(self, now: int | None = None) -> Swept:
        """One pass over the live trades (nothing before TradeEscrow is deployed)."""
        escrow = self.escrow()
        if escrow is None:
            self.last_pass, self.last_swept = time.time(), Swept()
            return self.last_swept
        uow = SqlUnitOfWork(self.engine, sender=self.sender)
        when = int(time.time()) if now is None else now
        swept = sweep(uow, escrow, when, self.limit, self.grace_seconds)
        for trade_id, reason in swept.errors.items():
            log.warning("trade sweep: trade %d skipped: %s", trade_id, reason)
        self.last_pass, self.last_swept = time.time(), swept
        return swept

    def run(self, stop: threading.Event) -> None:
        """Sweep every `every_seconds` until `stop` is set; an error is logged, and recorded
        for /healthz, and the next pass tries again."""
        self.running = True
        try:
            while not stop.is_set():
                try:
                    swept = self.tick()
                    self.last_error = None
                    if swept.settled or swept.timeouts_owed or swept.timeouts_failed:
                        log.info("trade sweep: %s", swept.as_json())
                except Exception as exc:
                    # Shown in /healthz to anyone: the kind only, since a chain error's
                    # message may name the node's URL with its credentials.
                    self.last_error = f"the last pass failed ({type(exc).__name__}): see the log"
                    log.exception("trade sweep failed; retrying")
                stop.wait(self.every_seconds)
        finally:
            self.running = False
