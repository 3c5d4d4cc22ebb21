"""The chain-facing protocol: compiled contract artifacts, EIP-712 types and Merkle leaves.

Artifacts are the JSON files that `npm run build` writes to `contracts_abi/artifacts/` and that
ship as package data, so running the service never needs a compiler. This package must not
import web3: the reader agent uses it on devices without web3. Its import stays light (eth_abi
and eth_utils only when artifacts' errors are decoded): the agent's memory budget is 60 MB.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

# The contracts the service deploys first, with constructor(admin, operator).
CONTRACT_NAMES = ("ProductPassport", "CustodyLedger")
# TradeEscrow's constructor also takes the addresses of the passport and the ledger, so the
# service deploys it after them, not with them.
ESCROW_NAME = "TradeEscrow"
# Every contract the service deploys, in deployment order.
DEPLOYED_NAMES = (*CONTRACT_NAMES, ESCROW_NAME)
# Every artifact in the package.
ARTIFACT_NAMES = DEPLOYED_NAMES


class UnknownContract(LookupError):
    """No artifact exists for the requested contract name."""


@dataclass(frozen=True, eq=False)
class Artifact:
    """One compiled contract; treat `abi` as read-only, it is shared between callers."""

    name: str
    abi: list[dict]
    bytecode: bytes
    deployed_bytecode: bytes
    compiler_version: str
    sources_hash: str

    def decode_error(self, data: bytes) -> tuple[str, tuple] | None:
        """Name and arguments of the custom error in revert `data`, or None if not in the ABI."""
        from eth_abi import decode

        entry = _error_table(self)[0].get(bytes(data[:4]))
        if entry is None:
            return None
        name, types = entry
        return name, decode(list(types), bytes(data[4:]))

    def encode_error(self, name: str, *args: object) -> bytes:
        """Revert data of custom error `name` with `args`, as the contract would produce it."""
        from eth_abi import encode

        selector, types = _error_table(self)[1][name]
        return selector + encode(list(types), list(args))


@functools.cache
def _error_table(
    artifact: Artifact,
) -> tuple[dict[bytes, tuple[str, tuple[str, ...]]], dict[str, tuple[bytes, tuple[str, ...]]]]:
    from eth_utils import collapse_if_tuple

    from contracts_abi.eip712 import keccak

    # Error(string) and Panic(uint256) are the compiler's built-in reverts (Solidity docs,
    # "Error handling"); custom errors come from the ABI.
    errors = [("Error", ("string",)), ("Panic", ("uint256",))]
    for item in artifact.abi:
        if item["type"] == "error":
            errors.append((item["name"], tuple(collapse_if_tuple(p) for p in item["inputs"])))
    by_selector = {}
    by_name = {}
    for name, types in errors:
        selector = keccak(f"{name}({','.join(types)})".encode())[:4]
        by_selector[selector] = (name, types)
        by_name[name] = (selector, types)
    return by_selector, by_name


@functools.cache
def load_artifact(name: str) -> Artifact:
    """The committed artifact of contract `name` (one of ARTIFACT_NAMES), read once."""
    if name not in ARTIFACT_NAMES:
        raise UnknownContract(f"unknown contract {name!r}; expected one of {ARTIFACT_NAMES}")
    text = resources.files(__name__).joinpath("artifacts", f"{name}.json").read_text("utf-8")
    return parse_artifact(text)


def parse_artifact(text: str) -> Artifact:
    """The artifact in `text`, the JSON that build.mjs writes."""
    data = json.loads(text)
    return Artifact(
        name=data["contractName"],
        abi=data["abi"],
        bytecode=bytes.fromhex(data["bytecode"].removeprefix("0x")),
        deployed_bytecode=bytes.fromhex(data["deployedBytecode"].removeprefix("0x")),
        compiler_version=data["compiler"]["version"],
        sources_hash=data["sourcesHash"],
    )
