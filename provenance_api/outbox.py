"""The chain writer's decisions: nonces, fees, and what to do next with each owed write.

Pure: no I/O; rows, chain observations, fees and the current time are arguments.

Life of a write (`chain_write.status`)::

    pending --assign nonce, sign, RECORD--> signed --broadcast--> sent --in a block--> mined
    mined --deep enough--> confirmed (receipt status 1, or the work was already done)
                         | failed (reverted, or its nonce filled: both consume the nonce)
    mined --receipt gone (reorg)--> sent (the recorded tx is re-sent, never re-signed)

While live, `decide` looks at every recorded attempt: whichever one is mined settles the row;
a tx the node no longer knows is re-sent as recorded; one the node accepted but that is stuck
is replaced with fees raised by at least 10%, never above the caps. A tx the node refuses is
re-sent as it is (no bump: nothing was accepted); after `max_refusals` refusals for a cause
that will not change, the nonce is filled with a 0-value transfer to self and the write fails.
Nothing is judged failed on one look: only at the confirmation depth.

A pending write that names a prerequisite (`after_write_id`) is signed only once that write
is confirmed (`gate`); until then it holds back its sender's later writes, since nonces are
assigned in write order. If the prerequisite failed, the write fails unsigned.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

import eth_abi
from eth_hash.auto import keccak
from eth_utils import collapse_if_tuple, to_checksum_address

from contracts_abi import Artifact

MIN_BUMP_PERCENT = Fraction(10)  # geth and anvil reject a replacement below +10%
IN_FLIGHT = ("signed", "sent")  # these hold a slot of the writer's window
LIVE = (*IN_FLIGHT, "mined")
FINAL = ("confirmed", "failed")
CONSTRUCTOR = "constructor"  # the `function` of a write that creates a contract
COIN = ""  # the `contract` of a plain coin payment: no contract is called
PAY = "pay"  # its `function`; args [to], and the write's value is what is paid
FILLER_GAS = 21_000

# Node refusals that sending the same transaction again cannot cure (geth, anvil, Besu
# wording): its gas cannot fit a block, or its data cannot fit its gas or the pool.
PERMANENT_REFUSALS = (
    "intrinsic gas too low",
    "intrinsic gas too high",
    "exceeds block gas limit",
    "gas limit reached",
    "oversized data",
    "max initcode size exceeded",
    "initcode size",
    "gas floor",
)


class OutboxError(ValueError):
    """An owed write cannot be encoded or a row is in an impossible state."""


@dataclass(frozen=True)
class Fees:
    """EIP-1559 fee caps in wei."""

    max_fee_per_gas: int
    max_priority_fee_per_gas: int


@dataclass(frozen=True)
class Attempt:
    """One recorded signed transaction of a write (same nonce for all attempts of a row)."""

    tx_hash: str
    fees: Fees
    created_at: datetime
    broadcast_at: datetime | None = None
    gas: int = 0
    filler: bool = False


@dataclass(frozen=True)
class Receipt:
    """A mined transaction as the node reports it."""

    tx_hash: str
    block_number: int
    succeeded: bool
    gas_used: int = 0
    contract_address: str | None = None


@dataclass(frozen=True)
class Observation:
    """What the chain says about one live row, read in this order: head, nonces, receipts, pool.

    `final_nonce` is the sender's nonce at `head - confirmations` (None: same as `mined_nonce`).
    """

    head: int
    mined_nonce: int
    receipts: Mapping[str, Receipt]
    known: frozenset[str]
    final_nonce: int | None = None


@dataclass(frozen=True)
class Refusal:
    """What the node said when it last refused this write's transaction."""

    cause: str
    count: int  # refusals for a cause that will not change
    at: datetime


@dataclass(frozen=True)
class Policy:
    """How patient, and how generous, the writer is."""

    confirmations: int = 0
    rebroadcast_after: timedelta = timedelta(seconds=15)
    bump_after: timedelta = timedelta(seconds=60)
    bump_percent: Fraction = Fraction(25, 2)
    max_fee_per_gas: int | None = None
    max_fee_per_write: int | None = None
    max_refusals: int = 3


# Actions: what the worker does next with one live row.


@dataclass(frozen=True)
class Broadcast:
    """Send the latest attempt's recorded raw transaction (first send, or a re-send)."""

    tx_hash: str
    resend: bool


@dataclass(frozen=True)
class Replace:
    """Sign a new attempt with the same nonce and these fees; record it, then send it."""

    fees: Fees


@dataclass(frozen=True)
class Fill:
    """Sign a 0-value transfer to self with the write's nonce, so later nonces can be mined."""

    fees: Fees
    reason: str


@dataclass(frozen=True)
class Mined:
    """An attempt is in a block but not yet deep enough: record it; it holds no slot now."""

    receipt: Receipt
    confirmations: int


@dataclass(frozen=True)
class Unmine:
    """The block that held the write is gone (reorg): back to sent, its recorded tx re-sent."""

    reason: str


@dataclass(frozen=True)
class Confirm:
    """The write is mined and deep enough: settle it as confirmed."""

    receipt: Receipt
    confirmations: int


@dataclass(frozen=True)
class Fail:
    """The write is settled but did not take effect; `receipt` is None when no attempt mined.

    `filled` is True when the mined transaction is the filler of a refused write.
    """

    receipt: Receipt | None
    confirmations: int
    reason: str
    filled: bool = False


@dataclass(frozen=True)
class Wait:
    """Nothing to do for now."""

    reason: str


Action = Broadcast | Replace | Fill | Mined | Unmine | Confirm | Fail | Wait


def decide(
    status: str,
    nonce: int | None,
    attempts: Sequence[Attempt],
    seen: Observation,
    policy: Policy,
    now: datetime,
    suggested: Fees | None = None,
    *,
    refusal: Refusal | None = None,
    mined_block: int | None = None,
) -> Action:
    """The next action for one row, given its recorded attempts and what the chain says.

    `mined_block` is the block recorded when the row became mined.
    """
    if status in FINAL:
        return Wait(f"already {status}")
    if status not in LIVE:
        raise OutboxError(f"decide() takes a signed, sent or mined write, not {status!r}")
    if nonce is None or not attempts:
        raise OutboxError(f"a {status} write must have a nonce and at least one attempt")
    for attempt in attempts:
        receipt = seen.receipts.get(attempt.tx_hash)
        if receipt is None:
            continue
        depth = confirmations(seen.head, receipt.block_number)
        if depth < policy.confirmations:
            if status == "mined" and mined_block == receipt.block_number:
                return Wait(f"mined in block {receipt.block_number}, {depth} confirmations so far")
            return Mined(receipt, depth)
        if attempt.filler:
            cause = refusal.cause if refusal is not None else "refused by the node"
            return Fail(receipt, depth, f"nonce filled after refusals: {cause}", filled=True)
        if receipt.succeeded:
            return Confirm(receipt, depth)
        return Fail(receipt, depth, "reverted")
    # The receipts were read after the nonce at depth: no receipt of ours and the nonce used
    # at depth means some other transaction took it, for good.
    final_nonce = seen.mined_nonce if seen.final_nonce is None else seen.final_nonce
    if final_nonce > nonce:
        return Fail(
            None,
            policy.confirmations,
            f"nonce {nonce} was consumed by a transaction the outbox did not sign",
        )
    if status == "mined":
        return Unmine(f"the block that held nonce {nonce} is no longer on the chain")
    latest = attempts[-1]
    has_filler = any(attempt.filler for attempt in attempts)
    if refusal is not None and refusal.count >= policy.max_refusals and not has_filler:
        fees = _filler_fees(attempts, suggested or latest.fees, policy)
        return Fill(fees, refusal.cause)
    refused_lately = refusal is not None and now - refusal.at < policy.rebroadcast_after
    if latest.broadcast_at is None:
        # Never accepted: send the same transaction again, paced; bumping would only raise
        # what is paid once the cause (no funds, say) goes away.
        if refused_lately:
            assert refusal is not None
            return Wait(f"refused: {refusal.cause}")
        return Broadcast(latest.tx_hash, resend=refusal is not None)
    waited = now - latest.broadcast_at
    if waited >= policy.bump_after:
        bumped = bump_fees(latest.fees, policy.bump_percent, suggested)
        capped = cap_fees(bumped, latest.gas, policy)
        if is_replacement(latest.fees, capped):
            return Replace(capped)
    if (
        latest.tx_hash not in seen.known
        and waited >= policy.rebroadcast_after
        and not refused_lately
    ):
        return Broadcast(latest.tx_hash, resend=True)
    if waited >= policy.bump_after:
        return Wait("in the mempool at the fee cap")
    return Wait("in the mempool")


def _filler_fees(attempts: Sequence[Attempt], base: Fees, policy: Policy) -> Fees:
    # If some attempt made it into a pool, the filler must outbid it to replace it there.
    accepted = [a.fees for a in attempts if a.broadcast_at is not None]
    fees = bump_fees(accepted[-1], policy.bump_percent, base) if accepted else base
    return cap_fees(fees, FILLER_GAS, policy)


# Gates: may a pending write be signed now, given the write it waits for?


@dataclass(frozen=True)
class Ready:
    """Sign it: no prerequisite, or the prerequisite (or a retry of it) is confirmed."""


@dataclass(frozen=True)
class Hold:
    """Not yet: the prerequisite is still owed or in flight. The sender's later writes wait."""

    reason: str


@dataclass(frozen=True)
class Doom:
    """Fail it unsigned (no nonce is consumed): its prerequisite failed for good."""

    reason: str


Gate = Ready | Hold | Doom


def gate(write_id: int, prerequisites: Sequence[tuple[int, str]]) -> Gate:
    """Whether write `write_id` may be signed now.

    `prerequisites` is (id, status) of the write it waits for, then of each retry of it in
    turn (a retry of a retry, ...); empty when it waits for nothing. A live retry is waited
    for only if it came before this write: one that came after would sit behind it in its
    sender's queue, for ever.

    >>> gate(9, []), gate(9, [(4, "failed"), (7, "confirmed")])
    (Ready(), Ready())
    >>> gate(9, [(4, "sent")])
    Hold(reason='waits for write 4 (sent)')
    >>> gate(9, [(4, "failed")])
    Doom(reason='prerequisite write 4 failed')
    """
    if not prerequisites or any(status == "confirmed" for _, status in prerequisites):
        return Ready()
    first_id, first_status = prerequisites[0]
    if first_status != "failed":
        return Hold(f"waits for write {first_id} ({first_status})")
    latest_id, latest_status = prerequisites[-1]
    if latest_status == "failed":
        if latest_id == first_id:
            return Doom(f"prerequisite write {first_id} failed")
        return Doom(f"prerequisite write {first_id} failed, and so did its retry {latest_id}")
    if latest_id < write_id:
        return Hold(
            f"waits for write {latest_id} ({latest_status}), "
            f"the retry of failed prerequisite write {first_id}"
        )
    return Doom(
        f"prerequisite write {first_id} failed; its retry {latest_id} came after this write, "
        "so retry this write as well"
    )


def payment_recipient(function: str, args: Sequence[Any]) -> str:
    """The checksummed payee of a plain coin payment (contract COIN, function PAY, args [to]).

    >>> payment_recipient("pay", ["0x" + "ab" * 20])
    '0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB'
    """
    if function != PAY or len(args) != 1:
        raise OutboxError(f"a coin payment is function {PAY!r} with args [to], not {function!r}")
    try:
        return to_checksum_address(args[0])
    except (ValueError, TypeError) as exc:
        raise OutboxError(f"the payee of a coin payment is not an address: {args[0]!r}") from exc


def refusal_is_permanent(message: str) -> bool:
    """Whether a node's refusal names a cause that re-sending cannot cure.

    >>> refusal_is_permanent("intrinsic gas too low: have 30000, want 540000")
    True
    >>> refusal_is_permanent("insufficient funds for gas * price + value")
    False
    """
    text = message.lower()
    return any(marker in text for marker in PERMANENT_REFUSALS)


def confirmations(head: int, block_number: int) -> int:
    """Blocks on top of `block_number` (0 when it is the head).

    >>> confirmations(12, 10)
    2
    """
    return max(0, head - block_number)


def next_nonce(highest_recorded: int | None, chain_pending: int) -> int:
    """The nonce for the next write of a sender.

    The database knows every nonce it recorded (some perhaps not broadcast yet, which the
    worker re-sends first); the chain knows nonces used outside the outbox (deployments).
    Taking the larger never reuses a nonce and leaves no gap the recorded txs do not fill.

    >>> next_nonce(None, 2), next_nonce(4, 2), next_nonce(4, 9)
    (2, 5, 9)
    """
    recorded_next = 0 if highest_recorded is None else highest_recorded + 1
    return max(recorded_next, chain_pending)


def assign_nonces(write_ids: Sequence[int], first: int) -> list[tuple[int, int]]:
    """Contiguous nonces from `first`, in id order: the chain mines them in the order owed.

    >>> assign_nonces([7, 3, 5], 10)
    [(3, 10), (5, 11), (7, 12)]
    """
    return [(write_id, first + offset) for offset, write_id in enumerate(sorted(write_ids))]


def initial_fees(base_fee: int, priority_fee: int) -> Fees:
    """Fees for a first attempt: room for the base fee to double, plus the tip.

    >>> initial_fees(7, 1)
    Fees(max_fee_per_gas=15, max_priority_fee_per_gas=1)
    """
    return Fees(2 * base_fee + priority_fee, priority_fee)


def bump_fees(previous: Fees, percent: Fraction | float, suggested: Fees | None = None) -> Fees:
    """Replacement fees: both caps up by max(percent, 10)% (rounded up), never below `suggested`.

    >>> bump_fees(Fees(100, 10), 12.5)
    Fees(max_fee_per_gas=113, max_priority_fee_per_gas=12)
    >>> bump_fees(Fees(100, 10), 5, Fees(300, 30))
    Fees(max_fee_per_gas=300, max_priority_fee_per_gas=30)
    """
    factor = 1 + max(Fraction(str(percent)), MIN_BUMP_PERCENT) / 100
    tip = max(_ceil(previous.max_priority_fee_per_gas * factor), previous.max_priority_fee_per_gas)
    cap = max(_ceil(previous.max_fee_per_gas * factor), previous.max_fee_per_gas + 1)
    if suggested is not None:
        tip = max(tip, suggested.max_priority_fee_per_gas)
        cap = max(cap, suggested.max_fee_per_gas)
    # A tip of 0 stays 0 under any percentage; give it the one wei that makes it a replacement.
    if tip == previous.max_priority_fee_per_gas:
        tip += 1
    return Fees(max(cap, tip), tip)


def cap_fees(fees: Fees, gas: int, policy: Policy) -> Fees:
    """`fees` held under the policy's caps: per gas, and per write (cap per write / gas).

    >>> cap_fees(Fees(500, 50), 10, Policy(max_fee_per_gas=300, max_fee_per_write=2_000))
    Fees(max_fee_per_gas=200, max_priority_fee_per_gas=50)
    """
    limits = [fees.max_fee_per_gas]
    if policy.max_fee_per_gas is not None:
        limits.append(policy.max_fee_per_gas)
    if policy.max_fee_per_write is not None and gas > 0:
        limits.append(policy.max_fee_per_write // gas)
    cap = min(limits)
    return Fees(cap, min(fees.max_priority_fee_per_gas, cap))


def is_replacement(previous: Fees, new: Fees) -> bool:
    """Whether a node takes `new` in place of `previous`: both caps up by at least 10%.

    >>> is_replacement(Fees(100, 10), Fees(110, 11)), is_replacement(Fees(100, 10), Fees(109, 20))
    (True, False)
    """
    factor = 1 + MIN_BUMP_PERCENT / 100
    return (
        new.max_fee_per_gas >= _ceil(previous.max_fee_per_gas * factor)
        and new.max_priority_fee_per_gas >= _ceil(previous.max_priority_fee_per_gas * factor)
        and new.max_priority_fee_per_gas > previous.max_priority_fee_per_gas
    )


def gas_limit(estimate: int, margin_percent: int, block_gas_limit: int | None = None) -> int:
    """The node's estimate plus a margin, rounded up, never above the block gas limit.

    >>> gas_limit(50_000, 20), gas_limit(50_000, 20, 55_000)
    (60000, 55000)
    """
    wanted = _ceil(Fraction(estimate) * (100 + margin_percent) / 100)
    return wanted if block_gas_limit is None else min(wanted, block_gas_limit)


def already_done(contract: str, function: str, args: Sequence[Any], batch_root: bytes) -> bool:
    """Whether a reverted write's work is on chain anyway: an anchor whose batch id already
    holds this root (a retried anchor reverts "already anchored"; the contract says: done).

    >>> root = "0x" + "ab" * 32
    >>> already_done("CustodyLedger", "anchor", [root, 1, "0x" + "00" * 32], bytes([0xAB]) * 32)
    True
    """
    if (contract, function) != ("CustodyLedger", "anchor") or len(args) != 3:
        return False
    root = args[0]
    if isinstance(root, str):
        root = bytes.fromhex(root.removeprefix("0x"))
    return bytes(root) == bytes(batch_root) and any(batch_root)


def _ceil(value: Fraction | int) -> int:
    return math.ceil(Fraction(value))


# Calldata: an owed write names a function of a contract and JSON arguments.


def find_function(abi: Sequence[Mapping[str, Any]], name: str, arity: int) -> Mapping[str, Any]:
    """The ABI entry of function `name` (or of the constructor) taking `arity` arguments."""
    if name == CONSTRUCTOR:
        matches = [entry for entry in abi if entry.get("type") == CONSTRUCTOR]
        if not matches:  # no constructor in the ABI: one taking no arguments
            matches = [{"type": CONSTRUCTOR, "inputs": []}]
        matches = [entry for entry in matches if len(entry.get("inputs", ())) == arity]
    else:
        matches = [
            entry
            for entry in abi
            if entry.get("type") == "function"
            and entry.get("name") == name
            and len(entry.get("inputs", ())) == arity
        ]
    if len(matches) != 1:
        found = "no" if not matches else "several"
        what = "constructor" if name == CONSTRUCTOR else f"function {name}"
        raise OutboxError(f"{found} {what} with {arity} arguments in the ABI")
    return matches[0]


def encode_call(entry: Mapping[str, Any], args: Sequence[Any]) -> bytes:
    """Calldata for `entry` applied to JSON `args` (bytes as 0x-hex, addresses as strings)."""
    return keccak(_signature(entry).encode())[:4] + _encode_args(entry, args)


def encode_creation(bytecode: bytes, entry: Mapping[str, Any], args: Sequence[Any]) -> bytes:
    """Data of a contract-creation transaction: creation code, then the constructor's args."""
    return bytes(bytecode) + _encode_args(entry, args)


def _signature(entry: Mapping[str, Any]) -> str:
    types = [collapse_if_tuple(dict(item)) for item in entry.get("inputs", ())]
    return f"{entry.get('name', CONSTRUCTOR)}({','.join(types)})"


def _encode_args(entry: Mapping[str, Any], args: Sequence[Any]) -> bytes:
    inputs = entry.get("inputs", ())
    types = [collapse_if_tuple(dict(item)) for item in inputs]
    try:
        values = [_coerce(item, value) for item, value in zip(inputs, args, strict=True)]
        return eth_abi.encode(types, values)
    except (ValueError, TypeError, eth_abi.exceptions.EncodingError) as exc:
        raise OutboxError(f"arguments do not fit {_signature(entry)}: {exc}") from exc


def _coerce(item: Mapping[str, Any], value: Any) -> Any:
    kind = item["type"]
    if kind.endswith("]"):
        inner = dict(item, type=kind[: kind.rindex("[")])
        return [_coerce(inner, element) for element in value]
    if kind == "tuple":
        components = item["components"]
        if isinstance(value, Mapping):
            value = [value[component["name"]] for component in components]
        return tuple(_coerce(c, v) for c, v in zip(components, value, strict=True))
    if kind.startswith("bytes") and isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    if kind == "address" and isinstance(value, str):
        return to_checksum_address(value)
    if kind.startswith(("uint", "int")) and isinstance(value, str):
        return int(value, 0)
    return value


def jsonable(value: Any) -> Any:
    """`value` with bytes turned into 0x-hex, fit for the outbox's JSON column.

    >>> jsonable([b"\\x01\\x02", 3, ["a", b""]])
    ['0x0102', 3, ['a', '0x']]
    """
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, list | tuple):
        return [jsonable(element) for element in value]
    if isinstance(value, Mapping):
        return {key: jsonable(element) for key, element in value.items()}
    return value


def describe_revert(data: bytes, artifact: Artifact) -> str:
    """A readable reason from revert data: Error(string), Panic(uint256) or a custom error.

    >>> from contracts_abi import load_artifact
    >>> describe_revert(bytes.fromhex("4e487b71") + (17).to_bytes(32, "big"),
    ...                 load_artifact("CustodyLedger"))
    'Panic(17)'
    """
    if len(data) < 4:
        return "reverted without a reason"
    try:
        decoded = artifact.decode_error(data)
    except eth_abi.exceptions.DecodingError:
        decoded = None
    if decoded is None:
        return f"reverted with data 0x{data.hex()}"
    name, values = decoded
    if name == "Error":
        return values[0]
    return f"{name}({', '.join(jsonable_repr(value) for value in values)})"


def jsonable_repr(value: Any) -> str:
    """A short text form of a decoded ABI value (bytes as 0x-hex).

    >>> jsonable_repr(b"\\xab")
    '0xab'
    """
    converted = jsonable(value)
    return converted if isinstance(converted, str) else repr(converted)
