"""What routes and commands need at run time (engine, chain, keys, writer), built lazily.

`create_app` puts one Runtime in `app.extensions["provenance"]`; routes get it with
`runtime()`. Nothing connects to the database or the chain until first asked.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from flask import current_app
from sqlalchemy.engine import Engine
from sqlmodel import Session
from web3 import Web3

from provenance_api import chain, db
from provenance_api.anchorer import Anchorer
from provenance_api.chain_writer import (
    ChainWriter,
    CustodialWriters,
    WriterSettings,
    settings_from_config,
)
from provenance_api.config import ConfigError
from provenance_api.keys import KeyBox
from provenance_api.services.anchoring import LEDGER
from provenance_api.services.deployments import known_addresses
from provenance_api.trade_sweeper import TradeSweeper
from provenance_api.trade_vault import KeyWrapper

log = logging.getLogger(__name__)

EXTENSION = "provenance"
LOOK_AGAIN_SECONDS = 60.0


class Runtime:
    """The adapters one app uses: one engine, one chain connection, one key box, the writer."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._w3: Web3 | None = None
        self._chain_id: int | None = None
        self._ledger: str | None = None
        self._ledger_looked = -math.inf
        self._keybox: KeyBox | None = None
        self._trade_keys: KeyWrapper | None = None
        self.writer: ChainWriter | None = None
        self._writer_thread: threading.Thread | None = None
        self._writer_stop = threading.Event()
        self.custodial: CustodialWriters | None = None
        self._custodial_thread: threading.Thread | None = None
        self._anchorer_thread: threading.Thread | None = None
        self._anchorer_stop = threading.Event()
        self.sweeper: TradeSweeper | None = None
        self._sweeper_thread: threading.Thread | None = None
        self._sweeper_stop = threading.Event()

    @property
    def engine(self) -> Engine:
        """The database engine (created on first use)."""
        with self._lock:
            if self._engine is None:
                self._engine = db.make_engine(self.config["DATABASE_URL"])
            return self._engine

    @property
    def w3(self) -> Web3:
        """The chain connection: embedded under DATA_DIR/chain unless CHAIN_URL is set."""
        with self._lock:
            if self._w3 is None:
                state_dir = Path(self.config["DATA_DIR"]) / "chain"
                self._w3 = chain.connect(self.config.get("CHAIN_URL") or None, state_dir)
            return self._w3

    @property
    def chain_id(self) -> int:
        """The chain's id, asked once (the embedded chain's is known without starting it)."""
        if self._chain_id is None:
            if self.config.get("CHAIN_URL"):
                self._chain_id = int(self.w3.eth.chain_id)
            else:
                self._chain_id = chain.EMBEDDED_CHAIN_ID
        return self._chain_id

    def ledger_address(self) -> str | None:
        """The CustodyLedger's address on this chain; None before it is deployed.

        Found once per process; until then looked for at most once a minute, so that a
        request never waits on the chain or the database for an address that is not there.
        """
        if self._ledger is None and time.monotonic() - self._ledger_looked > LOOK_AGAIN_SECONDS:
            self._ledger_looked = time.monotonic()
            with Session(self.engine) as session:
                self._ledger = known_addresses(session, self.chain_id).get(LEDGER)
        return self._ledger

    @property
    def keybox(self) -> KeyBox:
        """Seals and opens organization keys with KEY_ENCRYPTION_KEY."""
        if self._keybox is None:
            if not self.config.get("KEY_ENCRYPTION_KEY"):
                raise ConfigError("PROVENANCE_KEY_ENCRYPTION_KEY is not set")
            self._keybox = KeyBox(self.config["KEY_ENCRYPTION_KEY"])
        return self._keybox

    @property
    def trade_keys(self) -> KeyWrapper:
        """Wraps trades' data keys under a key derived from KEY_ENCRYPTION_KEY."""
        if self._trade_keys is None:
            if not self.config.get("KEY_ENCRYPTION_KEY"):
                raise ConfigError("PROVENANCE_KEY_ENCRYPTION_KEY is not set")
            self._trade_keys = KeyWrapper(self.config["KEY_ENCRYPTION_KEY"])
        return self._trade_keys

    @property
    def operator(self) -> LocalAccount:
        """The account that signs chain writes (OPERATOR_KEY)."""
        key = self.config.get("OPERATOR_KEY")
        if not key:
            raise ConfigError("PROVENANCE_OPERATOR_KEY is not set")
        try:
            return Account.from_key(key)
        except (ValueError, TypeError) as exc:
            raise ConfigError("PROVENANCE_OPERATOR_KEY is not a hex secp256k1 key") from exc

    def writer_settings(self) -> WriterSettings:
        """How this runtime's chain writers behave (the configuration, tuned for its chain)."""
        settings = settings_from_config(self.config)
        if chain.is_embedded(self.w3):
            settings = dataclasses.replace(settings, estimate_gas=False)
        return settings

    def new_writer(self) -> ChainWriter:
        """A chain writer for the operator key over this runtime's engine and chain."""
        return ChainWriter(self.engine, self.w3, self.operator, self.writer_settings())

    def new_custodial_writers(self) -> CustodialWriters:
        """The writers of custodial organizations' writes (keys opened with the key box)."""
        return CustodialWriters(
            self.engine,
            self.w3,
            lambda: self.keybox,
            self.operator.address,
            self.writer_settings(),
        )

    def start_writer(self) -> ChainWriter:
        """Run the chain writers in daemon threads of this process: the operator's, and the
        custodial organizations' (`run`)."""
        self.start_custodial_writers()
        if self._writer_thread is not None and self._writer_thread.is_alive():
            assert self.writer is not None
            return self.writer
        self.writer = self.new_writer()
        self._writer_stop.clear()
        self._writer_thread = threading.Thread(
            target=self.writer.run, args=(self._writer_stop,), name="chain-writer", daemon=True
        )
        self._writer_thread.start()
        return self.writer

    def start_custodial_writers(self) -> CustodialWriters:
        """Run the custodial organizations' writers in a daemon thread (`run`, `worker`)."""
        if self._custodial_thread is not None and self._custodial_thread.is_alive():
            assert self.custodial is not None
            return self.custodial
        self.custodial = self.new_custodial_writers()
        self._writer_stop.clear()
        self._custodial_thread = threading.Thread(
            target=self.custodial.run,
            args=(self._writer_stop,),
            name="custodial-writers",
            daemon=True,
        )
        self._custodial_thread.start()
        return self.custodial

    def stop_writer(self, timeout: float = 10.0) -> None:
        """Ask the writer threads to finish their ticks and wait for them."""
        self._writer_stop.set()
        for thread in (self._writer_thread, self._custodial_thread):
            if thread is not None:
                thread.join(timeout)
        self._writer_thread = self._custodial_thread = None

    def new_anchorer(self) -> Anchorer:
        """The anchoring service over this runtime's engine; the operator key signs anchors."""
        return Anchorer(self.engine, lambda: self.operator.address, self.config)

    def start_anchorer(self) -> None:
        """Run the anchoring service in a daemon thread of this process (`run`, `worker`)."""
        if self._anchorer_thread is not None and self._anchorer_thread.is_alive():
            return
        self._anchorer_stop.clear()
        self._anchorer_thread = threading.Thread(
            target=self.new_anchorer().run,
            args=(self._anchorer_stop,),
            name="anchorer",
            daemon=True,
        )
        self._anchorer_thread.start()

    def stop_anchorer(self, timeout: float = 10.0) -> None:
        """Ask the anchoring thread to finish its tick and wait for it."""
        self._anchorer_stop.set()
        if self._anchorer_thread is not None:
            self._anchorer_thread.join(timeout)
            self._anchorer_thread = None

    def new_sweeper(self) -> TradeSweeper:
        """The trade sweeper over this runtime's engine and chain; timeouts are the operator's."""
        return TradeSweeper(
            self.engine,
            lambda: self.w3,
            lambda: self.chain_id,
            lambda: self.operator.address,
            self.config,
        )

    def start_sweeper(self) -> TradeSweeper | None:
        """Run the trade sweeper in a daemon thread of this process (`run`, `worker`); None
        when TRADE_SWEEP_SECONDS is 0."""
        if self._sweeper_thread is not None and self._sweeper_thread.is_alive():
            return self.sweeper
        if not float(self.config["TRADE_SWEEP_SECONDS"]):
            return None
        self.sweeper = self.new_sweeper()
        self._sweeper_stop.clear()
        self._sweeper_thread = threading.Thread(
            target=self.sweeper.run,
            args=(self._sweeper_stop,),
            name="trade-sweeper",
            daemon=True,
        )
        self._sweeper_thread.start()
        return self.sweeper

    def stop_sweeper(self, timeout: float = 10.0) -> None:
        """Ask the sweeping thread to finish its pass and wait for it."""
        self._sweeper_stop.set()
        if self._sweeper_thread is not None:
            self._sweeper_thread.join(timeout)
            self._sweeper_thread = None

    def close(self) -> None:
        """Stop the sweeper, the anchorer and the writer, seal and close the chain, dispose of
        the engine."""
        self.stop_sweeper()
        self.stop_anchorer()
        self.stop_writer()
        with self._lock:
            if self._w3 is not None:
                chain.close(self._w3)
                self._w3 = None
            self._chain_id = None
            self._ledger, self._ledger_looked = None, -math.inf
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None


def runtime() -> Runtime:
    """The Runtime of the current app."""
    return current_app.extensions[EXTENSION]


def ledger() -> tuple[int, str] | None:
    """The chain id and the CustodyLedger address there; None when either is unknown.

    What verdicts are signed for (eip712 `TagVerdict`) and what a buyer's browser reads.
    """
    rt = runtime()
    try:
        chain_id, address = rt.chain_id, rt.ledger_address()
    except Exception:  # an unsigned verdict beats a 500: the browser says it cannot check it
        log.warning("chain id or ledger address unavailable", exc_info=True)
        return None
    return None if address is None else (chain_id, address)


def chain_head() -> int | None:
    """The chain's head block number, or None when the chain cannot be reached."""
    try:
        return int(runtime().w3.eth.block_number)
    except Exception:  # a history without confirmations beats a 500
        log.warning("chain head unavailable", exc_info=True)
        return None
