"""The chain writer: turns owed `chain_write` rows into mined transactions, exactly once.

The decisions live in provenance_api.outbox; this module does the I/O around them. The order
that makes a crash harmless: assign a nonce, sign, RECORD the raw transaction and commit,
only then broadcast. A writer killed anywhere finds on restart either a pending row (nothing
was signed) or a recorded raw transaction, which it re-sends rather than signing anew.

One writer per signing key: a `writer_lease` row names the holder (a random instance id),
renewed every tick, and every transaction that records a signature re-checks it under a row
lock (a fence), so a writer that lost its lease can no longer assign nonces. A killed holder's
lease is taken over once it expires (WRITER_LEASE_SECONDS).

A node's refusal of one write, or any other error of one row, is recorded on that row
(`error`) and never stops the tick for the others.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import is_checksum_address
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from web3 import Web3
from web3.exceptions import TransactionNotFound

from contracts_abi import load_artifact
from provenance_api import outbox
from provenance_api.db import session_scope
from provenance_api.keys import KeyBox, KeyBoxError
from provenance_api.models import (
    ChainTxAttempt,
    ChainWrite,
    Organization,
    WriterLease,
    WriteStatus,
    utcnow,
)
from provenance_api.services.deployments import known_addresses

log = logging.getLogger(__name__)

# Node replies that mean "this transaction is already in", not a failure to send.
_ALREADY_IN = ("already known", "known transaction", "alreadyknown", "already imported")
_NONCE_USED = ("nonce too low", "nonce is too low", "noncetoolow")


@dataclass(frozen=True)
class WriterSettings:
    """How a writer behaves; built from the app configuration by `settings_from_config`."""

    confirmations: int = 0
    poll_seconds: float = 0.5
    batch: int = 64
    window: int = 256
    fee_bump_percent: float = 12.5
    rebroadcast_seconds: float = 15.0
    bump_seconds: float = 60.0
    lease_seconds: float = 15.0
    gas_margin_percent: int = 20
    fallback_gas: int = 1_000_000
    max_fee_per_gas: int | None = 500 * 10**9
    max_fee_per_write: int | None = 10**17
    max_refusals: int = 3
    # py-evm estimates by binary search (a dozen executions per call); on the embedded dev
    # chain a fixed limit is as good, since only gas used is paid.
    estimate_gas: bool = True

    def policy(self) -> outbox.Policy:
        """The pure decision policy these settings imply."""
        return outbox.Policy(
            confirmations=self.confirmations,
            rebroadcast_after=timedelta(seconds=self.rebroadcast_seconds),
            bump_after=timedelta(seconds=self.bump_seconds),
            bump_percent=Fraction(str(self.fee_bump_percent)),
            max_fee_per_gas=self.max_fee_per_gas,
            max_fee_per_write=self.max_fee_per_write,
            max_refusals=self.max_refusals,
        )


def settings_from_config(config: Mapping[str, Any]) -> WriterSettings:
    """WriterSettings from a provenance_api.config mapping."""
    return WriterSettings(
        confirmations=int(config["CONFIRMATIONS"]),
        poll_seconds=float(config["WRITER_POLL_SECONDS"]),
        batch=int(config["WRITER_BATCH"]),
        window=int(config["WRITER_WINDOW"]),
        fee_bump_percent=float(config["WRITER_FEE_BUMP_PERCENT"]),
        rebroadcast_seconds=float(config["WRITER_REBROADCAST_SECONDS"]),
        bump_seconds=float(config["WRITER_BUMP_SECONDS"]),
        lease_seconds=float(config["WRITER_LEASE_SECONDS"]),
        gas_margin_percent=int(config["WRITER_GAS_MARGIN_PERCENT"]),
        fallback_gas=int(config["WRITER_FALLBACK_GAS"]),
        max_fee_per_gas=_wei_cap(config, "WRITER_MAX_FEE_PER_GAS_WEI"),
        max_fee_per_write=_wei_cap(config, "WRITER_MAX_FEE_PER_WRITE_WEI"),
    )


def _wei_cap(config: Mapping[str, Any], name: str) -> int | None:
    # Checked by config.finish (a whole number of wei); 0 means "no cap".
    return int(config.get(name) or 0) or None


def aware(moment: datetime) -> datetime:
    """`moment` as timezone-aware UTC (SQLite hands timestamps back naive)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def lease_status(engine: Engine, sender: str, now: datetime | None = None) -> dict[str, Any]:
    """{"running", "holder", "last_error"} of the writer leasing `sender`, for /healthz."""
    now = now or utcnow()
    with Session(engine) as session:
        lease = session.get(WriterLease, sender)
    if lease is None:
        return {"running": False, "holder": None, "last_error": None}
    return {
        "running": aware(lease.expires_at) > now,
        "holder": lease.holder,
        "last_error": lease.last_error,
    }


class ChainWriter:
    """Signs and sends the owed writes of one key; `tick()` does one pass, `run()` loops.

    Chain requests take no lock here: the embedded provider serialises them itself.
    """

    def __init__(
        self,
        engine: Engine,
        w3: Web3,
        account: LocalAccount,
        settings: WriterSettings | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.w3 = _lean(w3)
        self.account = account
        self.sender = account.address
        self.settings = settings or WriterSettings()
        self.policy = self.settings.policy()
        # Random: host names and PIDs repeat across containers.
        self.holder = uuid.uuid4().hex
        self.clock = clock
        self.running = False
        self.last_error: str | None = None
        self.tick_errors: list[str] = []
        self.chain_id = w3.eth.chain_id
        self._addresses: dict[str, str] = {}
        self._block: Any = None  # the latest block, read at most once per tick

    # -- the loop -------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Tick until `stop` is set; errors are logged and recorded, never fatal."""
        self.running = True
        try:
            while not stop.is_set():
                if not self.step():
                    stop.wait(self.settings.poll_seconds)
        finally:
            self.running = False
            self.release()

    def step(self) -> bool:
        """One tick whose errors are logged and recorded for /healthz, never raised."""
        try:
            more = self.tick()
            self._record_error(self.tick_errors[-1] if self.tick_errors else None)
            return more
        except Exception as exc:  # the loop must survive node and database outages
            log.exception("chain writer tick failed for %s", self.sender)
            self._record_error(f"{type(exc).__name__}: {exc}")
            return False

    def tick(self) -> bool:
        """One pass: settle or re-send live writes, then sign new ones. True if more is queued."""
        self.tick_errors = []
        self._block = None
        if not self.take_lease():
            return False
        live = self._live_rows()
        self._advance(live)
        # Mined writes waiting for depth hold no slot: the window bounds what is unmined.
        live = self._live_rows()
        unmined = sum(1 for row, _ in live if row.status in outbox.IN_FLIGHT)
        room = min(self.settings.batch, self.settings.window - unmined)
        if room <= 0:
            return False
        signed = self._sign_pending(room)
        for write_id, tx_hash in signed:
            self._guarded(write_id, self._broadcast, write_id, tx_hash)
        return len(signed) == room

    def _guarded(self, write_id: int | None, step: Callable[..., None], *args: Any) -> None:
        # One row's trouble (a node error, a value the database refuses) must not hold up the
        # others: it is recorded on that row, retried next tick, and shows in /healthz.
        try:
            step(*args)
        except LeaseLost:
            raise
        except Exception as exc:
            log.warning("write %s: %s", write_id, exc)
            message = f"{type(exc).__name__}: {exc}"
            self.tick_errors.append(f"write {write_id}: {message}")
            self._note_error(write_id, message)

    def _note_error(self, write_id: int | None, message: str) -> None:
        if write_id is None:
            return
        try:
            with session_scope(self.engine) as session:
                row = session.get(ChainWrite, write_id)
                if row is not None and row.status not in outbox.FINAL:
                    row.error = message[:2000]
                    session.add(row)
        except sa.exc.SQLAlchemyError:
            log.warning("could not record the error of write %s", write_id, exc_info=True)

    # -- lease ----------------------------------------------------------------------------

    def take_lease(self) -> bool:
        """Take or renew this key's lease; False while another live writer holds it."""
        now = self.clock()
        try:
            with session_scope(self.engine) as session:
                return self._hold_lease(session, now)
        except sa.exc.IntegrityError:
            return False  # another writer inserted the lease row first

    def _hold_lease(self, session: Session, now: datetime) -> bool:
        lease = session.get(WriterLease, self.sender, with_for_update=True)
        expires = now + timedelta(seconds=self.settings.lease_seconds)
        if lease is None:
            session.add(
                WriterLease(
                    sender=self.sender, holder=self.holder, expires_at=expires, heartbeat_at=now
                )
            )
            session.flush()
            return True
        if lease.holder != self.holder:
            if aware(lease.expires_at) > now:
                return False
            lease.last_error = None  # the previous holder's error is not ours
        lease.holder, lease.expires_at, lease.heartbeat_at = self.holder, expires, now
        session.add(lease)
        return True

    def release(self) -> None:
        """Give up the lease at once so that a successor need not wait for it to expire."""
        try:
            with session_scope(self.engine) as session:
                lease = session.get(WriterLease, self.sender, with_for_update=True)
                if lease is not None and lease.holder == self.holder:
                    lease.expires_at = self.clock()
                    session.add(lease)
        except sa.exc.SQLAlchemyError:
            log.warning("could not release the writer lease", exc_info=True)

    def _record_error(self, message: str | None) -> None:
        if message == self.last_error:
            return
        self.last_error = message
        try:
            with session_scope(self.engine) as session:
                lease = session.get(WriterLease, self.sender)
                if lease is not None and lease.holder == self.holder:
                    lease.last_error = message
                    session.add(lease)
        except sa.exc.SQLAlchemyError:
            log.warning("could not record the writer error", exc_info=True)

    def _fenced(self, session: Session) -> None:
        lease = session.get(WriterLease, self.sender, with_for_update=True)
        if lease is None or lease.holder != self.holder:
            raise LeaseLost(f"writer {self.holder} no longer holds the lease of {self.sender}")

    # -- live rows ------------------------------------------------------------------------

    def _live_rows(self) -> list[tuple[ChainWrite, list[ChainTxAttempt]]]:
        with Session(self.engine) as session:
            rows = session.exec(
                select(ChainWrite)
                .where(ChainWrite.sender == self.sender)
                .where(sa.column("status").in_(outbox.LIVE))
                .order_by(ChainWrite.nonce)
            ).all()
            ids = [row.id for row in rows]
            attempts: dict[int, list[ChainTxAttempt]] = {i: [] for i in ids if i is not None}
            if ids:
                for attempt in session.exec(
                    select(ChainTxAttempt)
                    .where(sa.column("write_id").in_(ids))
                    .order_by(ChainTxAttempt.id)
                ):
                    attempts[attempt.write_id].append(attempt)
            session.expunge_all()
        return [(row, attempts[row.id]) for row in rows if row.id is not None]

    def _advance(self, live: list[tuple[ChainWrite, list[ChainTxAttempt]]]) -> None:
        if not live:
            return
        head = self.w3.eth.block_number
        mined_nonce = self.w3.eth.get_transaction_count(self.sender, "latest")
        depth_block = max(0, head - self.policy.confirmations)
        final_nonce = (
            mined_nonce
            if self.policy.confirmations == 0
            else self.w3.eth.get_transaction_count(self.sender, depth_block)
        )
        suggested: outbox.Fees | None = None
        for row, attempts in live:
            assert row.nonce is not None
            if (
                row.status == WriteStatus.MINED.value
                and row.block_number is not None
                and outbox.confirmations(head, row.block_number) < self.policy.confirmations
            ):
                continue  # looked at again, receipts read afresh, once deep enough
            now = self.clock()
            receipts = self._receipts(attempts) if row.nonce < mined_nonce else {}
            latest = attempts[-1] if attempts else None
            sent_at = aware(latest.broadcast_at) if latest and latest.broadcast_at else None
            known: frozenset[str] = frozenset()
            if (
                not receipts
                and latest is not None
                and sent_at is not None
                and now - sent_at >= self.policy.rebroadcast_after
            ):
                known = self._known(latest.tx_hash)
            refusal = None
            if row.refused_at is not None:
                refusal = outbox.Refusal(
                    row.error or "refused", row.refusals, aware(row.refused_at)
                )
                # Still refused: keep saying so in /healthz between two sends.
                self.tick_errors.append(f"write {row.id}: {refusal.cause}")
            if suggested is None and (
                (sent_at is not None and now - sent_at >= self.policy.bump_after)
                or (refusal is not None and refusal.count >= self.policy.max_refusals)
            ):
                suggested = self._guarded_fees()
            seen = outbox.Observation(head, mined_nonce, receipts, known, final_nonce)
            view = [_attempt_view(a) for a in attempts]
            try:
                action = outbox.decide(
                    row.status,
                    row.nonce,
                    view,
                    seen,
                    self.policy,
                    now,
                    suggested,
                    refusal=refusal,
                    mined_block=row.block_number,
                )
            except outbox.OutboxError as exc:
                self._note_error(row.id, str(exc))
                continue
            self._guarded(row.id, self._apply, row, attempts, action)

    def _guarded_fees(self) -> outbox.Fees | None:
        try:
            return self._suggested_fees()
        except Exception:  # a bump can wait for a node that answers
            log.warning("could not read the suggested fees", exc_info=True)
            return None

    def _receipts(self, attempts: list[ChainTxAttempt]) -> dict[str, outbox.Receipt]:
        found = {}
        for attempt in attempts:
            try:
                receipt = self.w3.eth.get_transaction_receipt(attempt.tx_hash)
            except TransactionNotFound:
                continue
            if receipt is None or receipt.get("blockNumber") is None:
                continue
            created = receipt.get("contractAddress")
            found[attempt.tx_hash] = outbox.Receipt(
                tx_hash=attempt.tx_hash,
                block_number=int(receipt["blockNumber"]),
                succeeded=int(receipt["status"]) == 1,
                gas_used=int(receipt.get("gasUsed", 0)),
                contract_address=str(created) if created else None,
            )
        return found

    def _known(self, tx_hash: str) -> frozenset[str]:
        try:
            self.w3.eth.get_transaction(tx_hash)
        except TransactionNotFound:
            return frozenset()
        return frozenset({tx_hash})

    def _apply(
        self, row: ChainWrite, attempts: list[ChainTxAttempt], action: outbox.Action
    ) -> None:
        match action:
            case outbox.Wait():
                return
            case outbox.Broadcast(tx_hash=tx_hash):
                assert row.id is not None
                self._broadcast(row.id, tx_hash)
            case outbox.Replace(fees=fees):
                self._replace(row, attempts, fees)
            case outbox.Fill(fees=fees, reason=reason):
                self._fill(row, fees, reason)
            case outbox.Mined(receipt=receipt, confirmations=depth):
                self._mined(row, receipt, depth)
            case outbox.Unmine(reason=reason):
                self._unmine(row, reason)
            case outbox.Confirm(receipt=receipt, confirmations=depth):
                self._settle(row, WriteStatus.CONFIRMED, receipt, depth, None)
            case outbox.Fail(receipt=receipt, confirmations=depth, reason=reason, filled=filled):
                status = WriteStatus.FAILED
                if receipt is not None and not filled:
                    reason = self._revert_reason(row, receipt) or reason
                    if self._already_done(row):
                        status, reason = WriteStatus.CONFIRMED, f"already done on chain: {reason}"
                self._settle(row, status, receipt, depth, reason)

    def _mined(self, row: ChainWrite, receipt: outbox.Receipt, depth: int) -> None:
        with session_scope(self.engine) as session:
            stored = session.get(ChainWrite, row.id, with_for_update=True)
            if stored is None or stored.status not in outbox.LIVE:
                return
            stored.status = WriteStatus.MINED.value
            stored.mined_tx_hash = receipt.tx_hash
            stored.block_number = receipt.block_number
            stored.confirmations = depth
            stored.updated_at = self.clock()
            session.add(stored)

    def _unmine(self, row: ChainWrite, reason: str) -> None:
        log.warning("write %s: %s; back to sent", row.id, reason)
        with session_scope(self.engine) as session:
            stored = session.get(ChainWrite, row.id, with_for_update=True)
            if stored is None or stored.status != WriteStatus.MINED.value:
                return
            stored.status = WriteStatus.SENT.value
            stored.mined_tx_hash = stored.block_number = stored.confirmations = None
            stored.updated_at = self.clock()
            session.add(stored)

    def _settle(
        self,
        row: ChainWrite,
        status: WriteStatus,
        receipt: outbox.Receipt | None,
        depth: int,
        error: str | None,
    ) -> None:
        now = self.clock()
        with session_scope(self.engine) as session:
            stored = session.get(ChainWrite, row.id, with_for_update=True)
            if stored is None or stored.status not in outbox.LIVE:
                return
            stored.status = status.value
            stored.error = error
            stored.confirmations = depth
            stored.updated_at = now
            stored.confirmed_at = now
            if receipt is not None:
                stored.mined_tx_hash = receipt.tx_hash
                stored.block_number = receipt.block_number
                stored.gas_used = receipt.gas_used
                if status == WriteStatus.CONFIRMED and stored.function == outbox.CONSTRUCTOR:
                    stored.contract_address = receipt.contract_address
            session.add(stored)
        log.info("write %s %s (nonce %s)", row.id, status.value, row.nonce)

    def _already_done(self, row: ChainWrite) -> bool:
        if (row.contract, row.function) != ("CustodyLedger", "anchor") or not row.to_address:
            return False
        try:
            abi = load_artifact(row.contract).abi
            ledger = self.w3.eth.contract(address=row.to_address, abi=abi)
            batch_id = bytes.fromhex(str(row.args[2]).removeprefix("0x"))
            batch_root = ledger.functions.batchRoot(batch_id).call()
        except Exception:  # unknown: fail as the receipt says
            log.warning("write %s: could not read batchRoot", row.id, exc_info=True)
            return False
        return outbox.already_done(row.contract, row.function, row.args, bytes(batch_root))

    def _revert_reason(self, row: ChainWrite, receipt: outbox.Receipt) -> str | None:
        if row.contract == outbox.COIN:
            return "the payment reverted (the payee is a contract that refuses coin)"
        artifact = load_artifact(row.contract)  # known: the write was encoded from it
        try:
            tx = self.w3.eth.get_transaction(receipt.tx_hash)
            call = {"from": tx["from"], "data": tx["input"], "gas": tx["gas"]}
            if tx.get("to"):
                call["to"] = tx["to"]
            self.w3.eth.call(call, block_identifier=receipt.block_number - 1)
        except Exception as exc:  # the reason is best effort; the row fails either way
            data = getattr(exc, "data", None)
            if isinstance(data, str) and data.startswith("0x"):
                return outbox.describe_revert(bytes.fromhex(data[2:]), artifact)
            if isinstance(data, bytes | bytearray):
                return outbox.describe_revert(bytes(data), artifact)
            message = getattr(exc, "message", None) or str(exc)
            return f"reverted: {message}" if message else None
        return None

    # -- signing --------------------------------------------------------------------------

    def _latest_block(self) -> Any:
        if self._block is None:
            self._block = self.w3.eth.get_block("latest")
        return self._block

    def _suggested_fees(self) -> outbox.Fees:
        block = self._latest_block()
        try:
            tip = int(self.w3.eth.max_priority_fee)
        except Exception:  # not every node implements eth_maxPriorityFeePerGas
            tip = 10**9
        return outbox.initial_fees(int(block.get("baseFeePerGas", 0) or 0), tip)

    def _block_gas_limit(self) -> int | None:
        limit = self._latest_block().get("gasLimit")
        return int(limit) if limit else None

    def _load_addresses(self) -> None:
        # Read before a signing transaction opens: on SQLite a second session inside it would
        # wait for the first one's write lock.
        with Session(self.engine) as session:
            self._addresses = known_addresses(session, self.chain_id)

    def _address(self, contract: str) -> str:
        try:
            return self._addresses[contract]
        except KeyError:
            raise outbox.OutboxError(
                f"contract {contract} is not deployed on chain {self.chain_id}"
            ) from None

    def _transaction(self, row: ChainWrite) -> tuple[str | None, bytes]:
        """(to, data) of a write: a call, a contract creation, or a plain coin payment."""
        if row.contract == outbox.COIN:
            return outbox.payment_recipient(row.function, row.args), b""
        try:
            artifact = load_artifact(row.contract)
        except LookupError as exc:
            raise outbox.OutboxError(str(exc)) from exc
        entry = outbox.find_function(artifact.abi, row.function, len(row.args))
        if row.function == outbox.CONSTRUCTOR:
            return None, outbox.encode_creation(artifact.bytecode, entry, row.args)
        return self._address(row.contract), outbox.encode_call(entry, row.args)

    def _sign(
        self, to: str | None, data: bytes, nonce: int, fees: outbox.Fees, gas: int, value: int = 0
    ) -> Any:
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": nonce,
            "value": value,
            "data": data,
            "gas": gas,
            "maxFeePerGas": fees.max_fee_per_gas,
            "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
        }
        if to is not None:  # no `to`: a contract creation
            tx["to"] = to
        return Account.sign_transaction(tx, self.account.key)

    def _estimate(self, to: str | None, data: bytes, value: int = 0) -> int:
        limit = self._block_gas_limit()
        # Creation code needs far more than the fallback, and a payment far less (its fallback
        # gas could cost more than the payer holds): always ask the node for those.
        if not self.settings.estimate_gas and to is not None and data:
            return outbox.gas_limit(self.settings.fallback_gas, 0, limit)
        call: dict[str, Any] = {"from": self.sender, "data": data, "value": value}
        if to is not None:
            call["to"] = to
        try:
            estimate = self.w3.eth.estimate_gas(call)
        except Exception:
            # Reverts in estimation are not final (an earlier write still in flight may be what
            # makes this one valid), so send anyway; the receipt decides, in order.
            return outbox.gas_limit(self.settings.fallback_gas, 0, limit)
        return outbox.gas_limit(int(estimate), self.settings.gas_margin_percent, limit)

    def _sign_pending(self, limit: int) -> list[tuple[int, str]]:
        """Claim pending rows in id order, sign and RECORD them; return (id, hash) to send."""
        now = self.clock()
        self._load_addresses()
        with session_scope(self.engine) as session:
            self._fenced(session)
            rows = session.exec(
                select(ChainWrite)
                .where(ChainWrite.sender == self.sender)
                .where(ChainWrite.status == WriteStatus.PENDING.value)
                .order_by(ChainWrite.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            if not rows:
                return []
            highest = session.exec(
                select(sa.func.max(ChainWrite.nonce)).where(ChainWrite.sender == self.sender)
            ).one()
            chain_pending = self.w3.eth.get_transaction_count(self.sender, "pending")
            nonce = outbox.next_nonce(highest, chain_pending)
            fees = self._suggested_fees()
            signed = []
            for row in rows:
                assert row.id is not None
                verdict = outbox.gate(row.id, self._prerequisites(session, row.after_write_id))
                if isinstance(verdict, outbox.Hold):
                    # Nonces follow write order: the sender's later writes wait behind it.
                    if row.error != verdict.reason:
                        row.error = verdict.reason
                        session.add(row)
                    break
                if isinstance(verdict, outbox.Doom):
                    row.status, row.error, row.updated_at = (
                        WriteStatus.FAILED.value,
                        verdict.reason,
                        now,
                    )
                    session.add(row)
                    continue
                row.error = None  # what it waited for, if anything, is over
                try:
                    to, data = self._transaction(row)
                except outbox.OutboxError as exc:
                    # Nothing was signed, no nonce is consumed: failing here keeps order intact.
                    row.status, row.error, row.updated_at = WriteStatus.FAILED.value, str(exc), now
                    session.add(row)
                    continue
                value = int(row.value)
                gas = self._estimate(to, data, value)
                capped = outbox.cap_fees(fees, gas, self.policy)
                tx = self._sign(to, data, nonce, capped, gas, value)
                tx_hash = "0x" + bytes(tx.hash).hex()
                row.nonce, row.to_address, row.status = nonce, to, WriteStatus.SIGNED.value
                row.updated_at = now
                base_fee = int(self._latest_block().get("baseFeePerGas", 0) or 0)
                if capped.max_fee_per_gas < base_fee:
                    # Not minable until the base fee falls: say so where the operator looks.
                    row.error = (
                        f"fees capped at {capped.max_fee_per_gas} wei per gas, below the base "
                        f"fee of {base_fee}: waits for it to fall (WRITER_MAX_FEE_PER_*_WEI)"
                    )
                session.add(row)
                session.add(_attempt_row(row, tx_hash, nonce, gas, capped, tx, now))
                assert row.id is not None
                signed.append((row.id, tx_hash))
                nonce += 1
        return signed

    def _prerequisites(self, session: Session, write_id: int | None) -> list[tuple[int, str]]:
        """(id, status) of the write `write_id`, then of each retry of it in turn."""
        found: list[tuple[int, str]] = []
        while write_id is not None and len(found) < 100:
            row = session.get(ChainWrite, write_id)
            if row is None:
                break
            found.append((write_id, row.status))
            write_id = session.exec(
                select(ChainWrite.id).where(ChainWrite.retry_of == write_id)
            ).first()
        return found

    def _replace(self, row: ChainWrite, attempts: list[ChainTxAttempt], fees: outbox.Fees) -> None:
        assert row.nonce is not None
        if attempts and attempts[-1].filler:
            self._record_and_send(row, self.sender, b"", outbox.FILLER_GAS, fees, filler=True)
            return
        self._load_addresses()
        to, data = self._transaction(row)
        value = int(row.value)
        gas = max([self._estimate(to, data, value)] + [int(a.gas) for a in attempts])
        self._record_and_send(row, to, data, gas, fees, filler=False, value=value)

    def _fill(self, row: ChainWrite, fees: outbox.Fees, reason: str) -> None:
        log.warning("write %s: filling nonce %s after refusals: %s", row.id, row.nonce, reason)
        self._record_and_send(row, self.sender, b"", outbox.FILLER_GAS, fees, filler=True)

    def _record_and_send(
        self,
        row: ChainWrite,
        to: str | None,
        data: bytes,
        gas: int,
        fees: outbox.Fees,
        *,
        filler: bool,
        value: int = 0,
    ) -> None:
        """Sign a new attempt for the row's nonce, RECORD it, then send it (a filler pays 0)."""
        now = self.clock()
        assert row.nonce is not None and row.id is not None
        with session_scope(self.engine) as session:
            self._fenced(session)
            stored = session.get(ChainWrite, row.id, with_for_update=True)
            if stored is None or stored.status not in outbox.IN_FLIGHT:
                return
            tx = self._sign(to, data, row.nonce, fees, gas, value)
            tx_hash = "0x" + bytes(tx.hash).hex()
            attempt = _attempt_row(stored, tx_hash, row.nonce, gas, fees, tx, now)
            attempt.filler = filler
            session.add(attempt)
            stored.status, stored.updated_at = WriteStatus.SIGNED.value, now
            session.add(stored)
        kind = "filler" if filler else "replacement"
        log.info("write %s: %s %s with fees %s", row.id, kind, tx_hash, fees)
        self._broadcast(row.id, tx_hash)

    def _broadcast(self, write_id: int, tx_hash: str) -> None:
        with Session(self.engine) as session:
            attempt = session.exec(
                select(ChainTxAttempt).where(ChainTxAttempt.tx_hash == tx_hash)
            ).one()
            raw = bytes.fromhex(attempt.raw_tx.removeprefix("0x"))
        try:
            self.w3.eth.send_raw_transaction(raw)
        except Exception as exc:
            text = str(exc).lower()
            if not any(marker in text for marker in _ALREADY_IN + _NONCE_USED):
                self._refused(write_id, f"{type(exc).__name__}: {exc}")
                return
            # Already in the pool or already mined: the next tick reads the receipt.
        now = self.clock()
        with session_scope(self.engine) as session:
            attempt = session.exec(
                select(ChainTxAttempt).where(ChainTxAttempt.tx_hash == tx_hash)
            ).one()
            if attempt.broadcast_at is None:
                attempt.broadcast_at = now
                session.add(attempt)
            row = session.get(ChainWrite, write_id)
            if row is not None and row.status in outbox.IN_FLIGHT:
                if row.status == WriteStatus.SIGNED.value:
                    row.status, row.updated_at = WriteStatus.SENT.value, now
                    row.sent_at = row.sent_at or now
                # Accepted now: the refusals are history (unless this fills their nonce).
                if row.refused_at is not None and not attempt.filler:
                    row.error, row.refused_at, row.refusals = None, None, 0
                session.add(row)

    def _refused(self, write_id: int, message: str) -> None:
        """Record the node's refusal on the row; count it if re-sending cannot cure it."""
        log.warning("write %s refused: %s", write_id, message)
        self.tick_errors.append(f"write {write_id}: {message}")
        with session_scope(self.engine) as session:
            row = session.get(ChainWrite, write_id, with_for_update=True)
            if row is None or row.status not in outbox.IN_FLIGHT:
                return
            row.error, row.refused_at = message[:2000], self.clock()
            if outbox.refusal_is_permanent(message):
                row.refusals += 1
            session.add(row)


class CustodialWriters:
    """Signs the writes owed by organizations whose keys the service holds: one ChainWriter
    (and so one lease) per such sender, made when it first has writes owed, then kept.

    Each tick looks at the senders of pending and live writes other than the operator. A
    custodial organization's key is opened with the KeyBox; the pending writes of any other
    sender fail at once, with the reason: nobody here can sign them.
    """

    def __init__(
        self,
        engine: Engine,
        w3: Web3,
        keybox: Callable[[], KeyBox],
        operator: str,
        settings: WriterSettings | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.w3 = w3
        self.keybox = keybox  # called when a key is first needed: config errors show then
        self.operator = operator
        self.settings = settings or WriterSettings()
        self.clock = clock
        self.writers: dict[str, ChainWriter] = {}
        self.running = False
        self.last_error: str | None = None

    def run(self, stop: threading.Event) -> None:
        """Tick until `stop` is set; errors are logged and recorded, never fatal."""
        self.running = True
        try:
            while not stop.is_set():
                try:
                    more = self.tick()
                except Exception as exc:  # the loop must survive node and database outages
                    log.exception("custodial writers' tick failed")
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    more = False
                if not more:
                    stop.wait(self.settings.poll_seconds)
        finally:
            self.running = False
            self.release()

    def tick(self) -> bool:
        """One pass of each custodial sender's writer. True if more is queued."""
        more = False
        for sender in self.senders():
            writer = self.writers.get(sender) or self._writer_for(sender)
            if writer is not None:
                more = writer.step() or more
        return more

    def release(self) -> None:
        """Give up every lease held, so that another process can take over at once."""
        for writer in self.writers.values():
            writer.release()

    def senders(self) -> list[str]:
        """Senders other than the operator with writes pending or live, in address order."""
        owed = (WriteStatus.PENDING.value, *outbox.LIVE)
        with Session(self.engine) as session:
            found = session.exec(
                select(ChainWrite.sender)
                .where(sa.column("status").in_(owed))
                .where(ChainWrite.sender != self.operator)
                .distinct()
            ).all()
        return sorted(found)

    def _writer_for(self, sender: str) -> ChainWriter | None:
        if not is_checksum_address(sender):
            # A writer picks its rows by its key's checksummed address: nobody would.
            self._fail_pending(sender, f"sender {sender!r} is not an EIP-55 checksummed address")
            return None
        with Session(self.engine) as session:
            org = session.exec(select(Organization).where(Organization.address == sender)).first()
        if org is None or org.encrypted_key is None:
            who = "a self-custody organization" if org is not None else "unknown"
            self._fail_pending(
                sender,
                f"sender {sender} is neither the operator nor an organization whose key this "
                f"service holds ({who}): nobody here can sign its writes",
            )
            return None
        try:
            keybox = self.keybox()
        except Exception as exc:  # KEY_ENCRYPTION_KEY unset: the writes wait for the fix
            self.last_error = f"cannot open organization keys: {exc}"
            log.warning("custodial writer for %s: %s", sender, self.last_error)
            return None
        try:
            account = Account.from_key(keybox.open(org.encrypted_key, org.address))
        except (KeyBoxError, ValueError) as exc:
            self._fail_pending(
                sender, f"the key of organization {org.id} ({sender}) cannot be opened: {exc}"
            )
            return None
        if account.address != sender:
            self._fail_pending(
                sender, f"the stored key of organization {org.id} is not the key of {sender}"
            )
            return None
        writer = ChainWriter(self.engine, self.w3, account, self.settings, clock=self.clock)
        self.writers[sender] = writer
        log.info("custodial chain writer for organization %s (%s)", org.id, sender)
        return writer

    def _fail_pending(self, sender: str, reason: str) -> None:
        # Pending rows were never signed: failing them consumes no nonce.
        now = self.clock()
        with session_scope(self.engine) as session:
            rows = session.exec(
                select(ChainWrite)
                .where(ChainWrite.sender == sender)
                .where(ChainWrite.status == WriteStatus.PENDING.value)
                .with_for_update()
            ).all()
            for row in rows:
                row.status, row.error, row.updated_at = WriteStatus.FAILED.value, reason, now
                session.add(row)
        if rows:
            log.warning("failed %d writes of %s: %s", len(rows), sender, reason)


def _lean(w3: Web3) -> Web3:
    """`w3`'s provider and middleware without web3's validation, which asks the node for the
    chain id before every request it checks: a third of the writer's requests."""
    kept = [layer for layer, name in w3.middleware_onion.middleware if name != "validation"]
    return Web3(w3.provider, middleware=kept)


class LeaseLost(RuntimeError):
    """Another writer took over this key; this one must stop signing."""


def _attempt_view(attempt: ChainTxAttempt) -> outbox.Attempt:
    return outbox.Attempt(
        tx_hash=attempt.tx_hash,
        fees=outbox.Fees(int(attempt.max_fee_per_gas), int(attempt.max_priority_fee_per_gas)),
        created_at=aware(attempt.created_at),
        broadcast_at=aware(attempt.broadcast_at) if attempt.broadcast_at else None,
        gas=int(attempt.gas),
        filler=attempt.filler,
    )


def _attempt_row(
    row: ChainWrite,
    tx_hash: str,
    nonce: int,
    gas: int,
    fees: outbox.Fees,
    tx: Any,
    now: datetime,
) -> ChainTxAttempt:
    assert row.id is not None
    return ChainTxAttempt(
        write_id=row.id,
        tx_hash=tx_hash,
        nonce=nonce,
        gas=gas,
        max_fee_per_gas=fees.max_fee_per_gas,
        max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
        raw_tx="0x" + bytes(tx.raw_transaction).hex(),
        created_at=now,
    )
