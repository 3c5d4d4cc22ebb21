"""The embedded chain: py-evm through eth-tester, in-process, with its state in a SQLite file.

eth-tester keeps a chain in memory; here the same py-evm chain runs over `SqliteKV`, opens
from the stored canonical head when there is one (from genesis otherwise) and commits once per
sealed block. A transaction waiting in the pending block when the process dies is lost, as a
node's mempool would lose it; sealed blocks never are. Storing py-evm's own database, rather
than a journal of raw transactions replayed at start, keeps the start time flat however long
the chain grows, and reopens exactly what was sealed (a replay would have to reproduce block
timestamps and the random prevrandao of every block, or compute a different state).

Block time follows the wall clock. eth-tester seals one block per transaction, and Ethereum
wants each block's timestamp strictly after its parent's, so a burst of a thousand writes
would put the chain's clock a quarter of an hour ahead, and a transfer consent signed with a
deadline one minute ahead would expire before it is relayed. Here a block is stamped with the
wall clock's second and may share that second with its parent (`EmbeddedVM` relaxes that one
rule, as Hardhat's option to mine blocks with the same timestamp does): block time never runs
ahead, never goes back, and every transaction is still sealed in its own block at once.
`automine=False` keeps transactions in the pending block until `seal` (or until the block is
full), as a node between two slots would.

Thread safety: one re-entrant lock around every request; the Flask threads and the chain
writer share one provider. One process at a time: an exclusive `flock` on `chain.lock`.
"""

from __future__ import annotations

import fcntl
import os
import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import rlp
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.db.chain import ChainDB
from eth.exceptions import CanonicalHeadNotFound, Revert, VMError
from eth.exceptions import TransactionNotFound as EVMTransactionNotFound
from eth.vm.forks import PragueVM
from eth.vm.spoof import SpoofTransaction
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_tester import EthereumTester
from eth_tester.backends.pyevm.main import (
    ZERO_ADDRESS,
    PyEVMBackend,
    _execute_and_revert_transaction,
    generate_genesis_state_for_keys,
    get_default_account_keys,
    get_default_genesis_params,
)
from eth_tester.backends.pyevm.serializers import (
    serialize_transaction,
    serialize_transaction_receipt,
)
from eth_tester.exceptions import TransactionFailed, TransactionNotFound
from eth_utils import ValidationError, encode_hex
from eth_utils.toolz import assoc, dissoc
from web3.providers.eth_tester import EthereumTesterProvider
from web3.providers.eth_tester.defaults import API_ENDPOINTS
from web3.types import RPCEndpoint, RPCResponse

from provenance_api.chain.errors import ChainConfigError, ChainStateIncompatible, ChainStateLocked
from provenance_api.chain.statedb import SqliteKV

# eth-tester's chain id, pinned here so that an eth-tester upgrade cannot change the id of a
# chain whose state is on disk (EIP-155 signatures and EIP-712 domains depend on it).
CHAIN_ID = 131277322940537
DEV_ACCOUNT_COUNT = 10
STATE_FORMAT = "1"
STATE_FILE = "chain.sqlite3"
LOCK_FILE = "chain.lock"


class EmbeddedVM(PragueVM):
    """Prague, except that a block may carry the same timestamp as its parent."""

    @classmethod
    def validate_header(cls, header: Any, parent_header: Any) -> None:
        """py-evm's checks, with "not before its parent" in place of "after its parent"."""
        if header.timestamp == parent_header.timestamp:
            # Every other check reads the parent's gas, number and base fee, not its time.
            parent_header = parent_header.copy(timestamp=parent_header.timestamp - 1)
        super().validate_header(header, parent_header)


class EmbeddedChain(MiningChain):
    """eth-tester's post-merge Prague chain (a class local to a function there), our id.

    The fork schedule is pinned too: stored blocks must be replayed by the same VM.
    """

    chain_id = CHAIN_ID
    vm_configuration = ((0, EmbeddedVM),)

    def create_header_from_parent(self, parent_header: Any, **header_params: Any) -> Any:
        """Keep the gas limit constant, as eth-tester does; stamp the wall clock's second."""
        params = assoc(header_params, "gas_limit", parent_header.gas_limit)
        if "timestamp" not in params:
            # Never before the parent: a chain whose state was written while the clock
            # stood later (or by an older version that ran ahead) keeps its time until now
            # catches up.
            params = assoc(params, "timestamp", max(parent_header.timestamp, int(time.time())))
        return super().create_header_from_parent(parent_header, **params)

    def get_transaction_builder(self) -> Any:
        """The builder of the current VM (eth-tester's decoder entry point)."""
        return self.get_vm().get_transaction_builder()


def dev_accounts() -> list[LocalAccount]:
    """The pre-funded development accounts (eth-tester's keys 1..10): public, never for value."""
    return [
        Account.from_key(key.to_bytes())
        for key in get_default_account_keys(quantity=DEV_ACCOUNT_COUNT)
    ]


class _RpcError(Exception):
    """A request failed the way a node reports it: a JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def response(self, response_id: str) -> RPCResponse:
        """The JSON-RPC response carrying this error."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return {"jsonrpc": "2.0", "id": response_id, "error": error}


def _vm_failure(error: VMError) -> _RpcError:
    """A failed call or estimate as geth reports it, revert data included.

    web3 then raises ContractCustomError / ContractLogicError, as with any node.
    """
    if isinstance(error, Revert):
        data = error.args[0] if error.args and isinstance(error.args[0], bytes) else b""
        return _RpcError(3, "execution reverted", encode_hex(data))
    return _RpcError(-32000, f"execution failed: {error!r}")


class PersistentBackend(PyEVMBackend):
    """PyEVMBackend over a SQLite-backed database, committing once per mined block."""

    def __init__(self, kv: SqliteKV) -> None:
        self._kv = kv
        self._db = AtomicDB(kv)
        super().__init__()

    def reset_to_genesis(self, *_args: Any, **_kwargs: Any) -> None:
        """Open the stored chain, or create its genesis (PyEVMBackend.__init__ calls this)."""
        self.account_keys = get_default_account_keys(quantity=DEV_ACCOUNT_COUNT)
        try:
            ChainDB(self._db).get_canonical_head()
        except CanonicalHeadNotFound:
            genesis_state = generate_genesis_state_for_keys(self.account_keys)
            EmbeddedChain.from_genesis(self._db, get_default_genesis_params(), genesis_state)
            self._kv.set_meta("format", STATE_FORMAT)
            self._kv.set_meta("chain_id", str(CHAIN_ID))
            self._kv.commit()
        self.chain = EmbeddedChain(self._db)

    def mine_blocks(self, num_blocks: int = 1, coinbase: bytes = ZERO_ADDRESS) -> tuple:
        """Mine, then commit: the file moves from one whole block to the next."""
        try:
            hashes = super().mine_blocks(num_blocks, coinbase)
            self._kv.commit()
        except BaseException:
            self._kv.rollback()
            self.chain = EmbeddedChain(self._db)
            raise
        return hashes

    def has_pending_transactions(self) -> bool:
        """Whether the pending block holds a transaction (every one uses at least 21000 gas)."""
        return self.chain.header.gas_used > 0

    def refresh_pending_header(self) -> None:
        """Restamp an empty pending block with the current time (eth-tester keeps the old one)."""
        if not self.has_pending_transactions():
            self.chain.header = self.chain.create_header_from_parent(
                self.chain.get_canonical_head()
            )

    def call(self, transaction: dict, block_number: Any = "latest") -> bytes:
        """eth_call; unlike eth-tester's, a revert keeps its data (custom errors need it)."""
        # Nodes skip the nonce check in calls (geth's SkipNonceChecks); py-evm would not.
        defaulted = {"gas": self._max_available_gas(), **dissoc(transaction, "nonce")}
        unsigned = self._get_normalized_and_unsigned_evm_transaction(defaulted, block_number)
        spoofed = SpoofTransaction(unsigned, from_=transaction["from"])
        computation = _execute_and_revert_transaction(self.chain, spoofed, block_number)
        if computation.is_error:
            raise _vm_failure(computation.error)
        return computation.output

    def estimate_gas(self, transaction: dict, block_number: Any = "latest") -> int:
        """eth_estimateGas; a revert is reported with its data, as by eth_call."""
        try:
            # A nonce ahead of "latest" (transactions still pending) is fine for a node.
            return super().estimate_gas(dissoc(transaction, "nonce"), block_number)
        except TransactionFailed as exc:
            if isinstance(exc.__cause__, VMError):
                raise _vm_failure(exc.__cause__) from None
            raise

    def _find_transaction(self, transaction_hash: bytes) -> tuple[Any, Any, int, bool]:
        # eth-tester scans every block from the head down; py-evm keeps a hash index.
        if self.has_pending_transactions():
            pending = self.chain.get_block()
            for index, transaction in enumerate(pending.transactions):
                if transaction.hash == transaction_hash:
                    return pending, transaction, index, True
        try:
            number, index = self.chain.chaindb.get_transaction_index(transaction_hash)
        except EVMTransactionNotFound:
            raise TransactionNotFound(
                f"No transaction found for transaction hash: {encode_hex(transaction_hash)}"
            ) from None
        block = self.chain.get_canonical_block_by_number(number)
        return block, block.transactions[index], index, False

    def get_transaction_by_hash(self, transaction_hash: bytes) -> dict:
        """The transaction, found through py-evm's index."""
        block, transaction, index, is_pending = self._find_transaction(transaction_hash)
        return serialize_transaction(block, transaction, index, is_pending)

    def get_transaction_receipt(self, transaction_hash: bytes) -> dict:
        """The receipt (block number None while pending), found through py-evm's index."""
        block, transaction, index, is_pending = self._find_transaction(transaction_hash)
        receipts = block.get_receipts(self.chain.chaindb)
        return serialize_transaction_receipt(
            block, receipts, transaction, index, is_pending, self.chain.get_vm()
        )


_NONCE = re.compile(r"Expected (\d+), but got (\d+)")
_BLOCK_FULL = "exceeds gas limit"
# py-evm's words -> geth's (core/txpool errors), which anvil uses too.
_GETH_WORDS = (
    ("cannot afford txn gas", "insufficient funds for gas * price + value"),
    ("does not have enough balance", "insufficient funds for gas * price + value"),
    ("lower than block's base fee", "max fee per gas less than block base fee"),
    (_BLOCK_FULL, "exceeds block gas limit"),
)


def _rpc_message(exc: Exception) -> str:
    """Word py-evm's rejection like geth and anvil do, so a writer can handle both alike."""
    text = str(exc)
    match = _NONCE.search(text)
    if "nonce" in text and match:
        expected, got = (int(g) for g in match.groups())
        return f"nonce too {'low' if got < expected else 'high'}: {text}"
    for evm_words, geth_words in _GETH_WORDS:
        if evm_words in text:
            return f"{geth_words}: {text}"
    return text


def _lock_state_dir(state_dir: Path) -> int:
    try:
        fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ChainConfigError(f"cannot use chain state directory {state_dir}: {exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ChainStateLocked(
            f"the embedded chain in {state_dir} is open in another process or connection; "
            "stop it, or set a JSON-RPC chain URL to share a chain between processes"
        ) from None
    return fd


class EmbeddedProvider(EthereumTesterProvider):
    """eth-tester provider over the persistent backend: locked, sealing, node-like errors."""

    def __init__(self, state_dir: Path, automine: bool = True) -> None:
        self.state_dir = state_dir
        self.automine = automine
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ChainConfigError(
                f"cannot create chain state directory {state_dir}: {exc}"
            ) from None
        self._lock_fd: int | None = _lock_state_dir(state_dir)
        self._lock = threading.RLock()
        try:
            self._kv = SqliteKV(state_dir / STATE_FILE)
            self._check_format()
            self.backend = PersistentBackend(self._kv)
        except sqlite3.DatabaseError as exc:
            self._release()
            raise ChainStateIncompatible(
                f"{state_dir / STATE_FILE} is not a readable chain state database: {exc}"
            ) from None
        except BaseException:
            self._release()
            raise
        # Two levels (namespace -> method -> function): copy both, the functions are shared.
        endpoints = {namespace: dict(methods) for namespace, methods in API_ENDPOINTS.items()}
        endpoints["eth"]["chainId"] = lambda _tester, _params: CHAIN_ID
        endpoints["net"]["version"] = lambda _tester, _params: str(CHAIN_ID)
        endpoints["eth"]["sendRawTransaction"] = self._send_raw_transaction
        endpoints["eth"]["sendTransaction"] = self._send_transaction
        super().__init__(EthereumTester(self.backend), endpoints)

    def _check_format(self) -> None:
        fmt, chain_id = self._kv.get_meta("format"), self._kv.get_meta("chain_id")
        if fmt is None and chain_id is None:
            return
        if fmt != STATE_FORMAT or chain_id != str(CHAIN_ID):
            raise ChainStateIncompatible(
                f"{self.state_dir / STATE_FILE} holds chain {chain_id} in format {fmt}; this "
                f"version runs chain {CHAIN_ID} in format {STATE_FORMAT}"
            )

    @property
    def closed(self) -> bool:
        """Whether `close` was called."""
        return self._lock_fd is None

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        """Serve one JSON-RPC request under the lock, errors worded as a node's."""
        with self._lock:
            if self.closed:
                raise ChainConfigError(f"the embedded chain in {self.state_dir} is closed")
            try:
                return super().make_request(method, params)
            except _RpcError as exc:
                error = exc
            except ValidationError as exc:
                # py-evm refused the request (e.g. a call from an account that cannot pay).
                error = _RpcError(-32000, _rpc_message(exc))
            response_id = repr(self._current_request_id)
            self._current_request_id += 1
            return error.response(response_id)

    def seal(self) -> None:
        """Seal the pending block now if it holds transactions, whatever its timestamp."""
        with self._lock:
            if self.backend.has_pending_transactions():
                self.ethereum_tester.mine_block()

    def close(self) -> None:
        """Seal what is pending, close the state file and release the directory."""
        with self._lock:
            if self.closed:
                return
            try:
                self.seal()
            finally:
                self._release()

    def _release(self) -> None:
        kv = getattr(self, "_kv", None)
        if kv is not None:
            kv.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _send_raw_transaction(self, _tester: EthereumTester, params: Any) -> str:
        try:
            raw = bytes.fromhex(str(params[0]).removeprefix("0x"))
        except (ValueError, IndexError):
            raise _RpcError(-32602, "invalid raw transaction: expected one hex string") from None
        self.backend.refresh_pending_header()
        try:
            transaction_hash = self._apply_raw(raw)
        except _RpcError:
            raise
        except ValidationError as exc:
            raise _RpcError(-32000, _rpc_message(exc)) from None
        except (rlp.DecodingError, rlp.DeserializationError, ValueError, TypeError) as exc:
            raise _RpcError(-32602, f"invalid raw transaction: {exc}") from None
        if self.automine:
            self.seal()
        return encode_hex(transaction_hash)

    def _apply_raw(self, raw: bytes) -> bytes:
        try:
            return self.backend.send_raw_transaction(raw)
        except ValidationError as exc:
            if _BLOCK_FULL not in str(exc) or not self.backend.has_pending_transactions():
                raise
        # The pending block is too full for it: seal that block, start the next one.
        self.seal()
        self.backend.refresh_pending_header()
        return self.backend.send_raw_transaction(raw)

    def _send_transaction(self, tester: EthereumTester, params: Any) -> str:
        # eth-tester mines it at once with its own (possibly stale) pending header; restamp.
        self.backend.refresh_pending_header()
        return tester.send_transaction(params[0])
