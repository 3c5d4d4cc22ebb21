"""The chain writer's decisions: nonces, fees, and what to do next with each owed write.

Pure: no I/O; rows, chain observations, fees and the current time are arguments.

Life of a write (`chain_write.status`)::

    pending --assign nonce, sign, RECORD--> signed --broadcast--> sent --mined, deep enough-->
    confirmed (receipt status 1) | failed (receipt status 0, reverted: the nonce is consumed)

While signed or sent, `decide` looks at every recorded attempt: whichever one is mined settles
the row; a tx the node no longer knows is re-sent as recorded; one stuck too long is replaced by
a new attempt with the same nonce and fees raised by at least 10%.
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
LIVE = ("signed", "sent")
FINAL = ("confirmed", "failed")


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


@dataclass(frozen=True)
class Receipt:
    """A mined transaction as the node reports it."""

    tx_hash: str
    block_number: int
    succeeded: bool
    gas_used: int = 0


@dataclass(frozen=True)
class Observation:
    """What the chain says about one live row, read in this order: head, nonce, receipts, pool."""

    head: int
    mined_nonce: int
    receipts: Mapping[str, Receipt]
    known: frozenset[str]


@dataclass(frozen=True)
class Policy:
    """How patient the writer is."""

    confirmations: int = 0
    rebroadcast_after: timedelta = timedelta(seconds=15)
    bump_after: timedelta = timedelta(seconds=60)
    bump_percent: Fraction = Fraction(25, 2)


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
class Confirm:
    """The write is mined and deep enough: settle it as confirmed."""

    receipt: Receipt
    confirmations: int


@dataclass(frozen=True)
class Fail:
    """The write is settled but did not take effect; `receipt` is None when no attempt mined."""

    receipt: Receipt | None
    confirmations: int
    reason: str


@dataclass(frozen=True)
class Wait:
    """Nothing to do for now."""

    reason: str


Action = Broadcast | Replace | Confirm | Fail | Wait


def decide(
    status: str,
    nonce: int | None,
    attempts: Sequence[Attempt],
    seen: Observation,
    policy: Policy,
    now: datetime,
    suggested: Fees | None = None,
) -> Action:
    """The next action for one row, given its recorded attempts and what the chain says."""
    if status in FINAL:
        return Wait(f"already {status}")
    if status not in LIVE:
        raise OutboxError(f"decide() takes a signed or sent write, not {status!r}")
    if nonce is None or not attempts:
        raise OutboxError(f"a {status} write must have a nonce and at least one attempt")
    for attempt in attempts:
        receipt = seen.receipts.get(attempt.tx_hash)
        if receipt is None:
            continue
        depth = confirmations(seen.head, receipt.block_number)
        if depth < policy.confirmations:
            return Wait(f"mined in block {receipt.block_number}, {depth} confirmations so far")
        if receipt.succeeded:
            return Confirm(receipt, depth)
        return Fail(receipt, depth, "reverted")
    if seen.mined_nonce > nonce:
        return Fail(
            None,
            0,
            f"nonce {nonce} was consumed by a transaction the outbox did not sign",
        )
    latest = attempts[-1]
    # Timed from the first send, or from signing when no send succeeded (a node refusing a
    # replacement as underpriced must not stall the row: it gets bumped again).
    waited = now - (latest.broadcast_at or latest.created_at)
    if waited >= policy.bump_after:
        return Replace(bump_fees(latest.fees, policy.bump_percent, suggested))
    if latest.broadcast_at is None:
        return Broadcast(latest.tx_hash, resend=False)
    if latest.tx_hash not in seen.known and waited >= policy.rebroadcast_after:
        return Broadcast(latest.tx_hash, resend=True)
    return Wait("in the mempool")


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


def gas_limit(estimate: int, margin_percent: int) -> int:
    """The node's estimate plus a margin, rounded up.

    >>> gas_limit(50_000, 20)
    60000
    """
    return _ceil(Fraction(estimate) * (100 + margin_percent) / 100)


def _ceil(value: Fraction | int) -> int:
    return math.ceil(Fraction(value))


# Calldata: an owed write names a function of a contract and JSON arguments.


def find_function(abi: Sequence[Mapping[str, Any]], name: str, arity: int) -> Mapping[str, Any]:
    """The ABI entry of function `name` taking `arity` arguments."""
    matches = [
        entry
        for entry in abi
        if entry.get("type") == "function"
        and entry.get("name") == name
        and len(entry.get("inputs", ())) == arity
    ]
    if len(matches) != 1:
        found = "no" if not matches else "several"
        raise OutboxError(f"{found} function {name} with {arity} arguments in the ABI")
    return matches[0]


def encode_call(entry: Mapping[str, Any], args: Sequence[Any]) -> bytes:
    """Calldata for `entry` applied to JSON `args` (bytes as 0x-hex, addresses as strings)."""
    inputs = entry.get("inputs", ())
    types = [collapse_if_tuple(dict(item)) for item in inputs]
    signature = f"{entry['name']}({','.join(types)})"
    try:
        values = [_coerce(item, value) for item, value in zip(inputs, args, strict=True)]
        encoded = eth_abi.encode(types, values)
    except (ValueError, TypeError, eth_abi.exceptions.EncodingError) as exc:
        raise OutboxError(f"arguments do not fit {signature}: {exc}") from exc
    return keccak(signature.encode())[:4] + encoded


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
