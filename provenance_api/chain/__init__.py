"""The chain adapter: connect to the embedded chain or a JSON-RPC node, deploy, get contracts.

`connect(None, state_dir)` opens the embedded py-evm chain (state in `state_dir`, kept across
restarts); `connect(url, ...)` talks to any JSON-RPC node (anvil, geth, Besu, an L2). Both give
a `web3.Web3` that takes signed raw EIP-1559 transactions and answers the same calls, so the
code above this module does not know which one it has.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests
from eth_account.signers.local import LocalAccount
from eth_utils import is_address, to_checksum_address
from hexbytes import HexBytes
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.exceptions import TimeExhausted
from web3.middleware import ExtraDataToPOAMiddleware

from contracts_abi import CONTRACT_NAMES, DEPLOYED_NAMES, ESCROW_NAME, load_artifact
from provenance_api.chain.bytecode import is_same_contract
from provenance_api.chain.embedded import CHAIN_ID as EMBEDDED_CHAIN_ID
from provenance_api.chain.embedded import EmbeddedProvider, dev_accounts
from provenance_api.chain.errors import (
    ChainConfigError,
    ChainError,
    ChainStateIncompatible,
    ChainStateLocked,
    ChainUnavailable,
    DeploymentFailed,
    NotADevelopmentChain,
)

__all__ = [
    "EMBEDDED_CHAIN_ID",
    "ChainConfigError",
    "ChainError",
    "ChainStateIncompatible",
    "ChainStateLocked",
    "ChainUnavailable",
    "DeploymentFailed",
    "NotADevelopmentChain",
    "chain_status",
    "close",
    "connect",
    "contract",
    "deploy_contracts",
    "dev_accounts",
    "escrow_bound_to",
    "fee_fields",
    "fund_for_development",
    "is_embedded",
]

# Per request; a node that takes longer is treated as down rather than blocking a worker.
RPC_TIMEOUT_SECONDS = 10
RECEIPT_TIMEOUT_SECONDS = 120
# A PoA (clique, IBFT, QBFT) block carries signatures in extraData, beyond the 32 bytes of
# the yellow paper; web3 refuses such blocks unless this middleware renames the field.
_MAX_EXTRA_DATA_BYTES = 32

_open_embedded: dict[Path, EmbeddedProvider] = {}
_open_lock = threading.Lock()
_faucet_lock = threading.Lock()


def connect(url: str | None, state_dir: Path) -> Web3:
    """url None or "" -> embedded chain whose state lives under state_dir; else a JSON-RPC node.

    In one process, connecting twice to the same state_dir shares one open chain.
    """
    if not url:
        return Web3(_embedded_provider(Path(state_dir)))
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ChainConfigError(
            f"chain URL must look like http://host:port or https://host/path, got {url!r}"
        )
    w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": RPC_TIMEOUT_SECONDS}))
    latest = _raw_request(w3, "eth_getBlockByNumber", ["latest", False])
    extra = HexBytes((latest or {}).get("extraData") or "0x")
    if len(extra) > _MAX_EXTRA_DATA_BYTES:
        w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    return w3


def _embedded_provider(state_dir: Path) -> EmbeddedProvider:
    key = state_dir.resolve()
    with _open_lock:
        provider = _open_embedded.get(key)
        if provider is None or provider.closed:
            if not _open_embedded:
                # At exit, seal what is pending: an orderly stop loses no sent transaction.
                atexit.unregister(_close_all)
                atexit.register(_close_all)
            provider = EmbeddedProvider(key)
            _open_embedded[key] = provider
        return provider


def _close_all() -> None:
    with _open_lock:
        for provider in _open_embedded.values():
            provider.close()
        _open_embedded.clear()


def close(w3: Web3) -> None:
    """Release the chain: the embedded one seals its pending block and closes its file.

    An embedded chain is shared by every `connect` to its state_dir: this closes it for all.
    """
    provider = w3.provider
    if isinstance(provider, EmbeddedProvider):
        with _open_lock:
            provider.close()
            if _open_embedded.get(provider.state_dir) is provider:
                del _open_embedded[provider.state_dir]


def is_embedded(w3: Web3) -> bool:
    """Whether `w3` runs the in-process embedded chain."""
    return isinstance(w3.provider, EmbeddedProvider)


def chain_status(w3: Web3) -> dict:
    """{"chain_id": int, "block": int, "embedded": bool}; ChainUnavailable if the node is down."""
    try:
        return {
            "chain_id": w3.eth.chain_id,
            "block": w3.eth.block_number,
            "embedded": is_embedded(w3),
        }
    except (requests.RequestException, OSError) as exc:
        raise ChainUnavailable(f"the chain node at {_where(w3)} does not answer: {exc}") from None


def fee_fields(w3: Web3) -> dict[str, int]:
    """EIP-1559 fee fields for a transaction sent now: tip plus twice the latest base fee."""
    base_fee = w3.eth.get_block("latest").get("baseFeePerGas", 0)
    tip = w3.eth.max_priority_fee
    return {"maxFeePerGas": 2 * base_fee + tip, "maxPriorityFeePerGas": tip}


def fund_for_development(w3: Web3, address: str, wei: int) -> None:
    """Embedded chain and anvil only: give an address coin from the node's pre-funded accounts."""
    if not is_address(address):
        raise ValueError(f"not an Ethereum address: {address!r}")
    if wei <= 0:
        raise ValueError(f"amount must be positive, got {wei} wei")
    to = to_checksum_address(address)
    if is_embedded(w3):
        faucet = dev_accounts()[0]
        # Two threads funding at once would otherwise pick the same nonce.
        with _faucet_lock:
            transaction = {
                "to": to,
                "value": wei,
                "gas": 21_000,
                "nonce": w3.eth.get_transaction_count(faucet.address, "pending"),
                "chainId": w3.eth.chain_id,
                **fee_fields(w3),
            }
            signed = faucet.sign_transaction(transaction)
            tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    else:
        client = str(_raw_request(w3, "web3_clientVersion", []))
        if not client.lower().startswith("anvil"):
            raise NotADevelopmentChain(
                f"development funding needs the embedded chain or anvil, not {client!r}; "
                "fund the address from a wallet"
            )
        # anvil's pre-funded accounts are unlocked: the node signs for them.
        faucet_address = w3.eth.accounts[0]
        tx_hash = w3.eth.send_transaction({"from": faucet_address, "to": to, "value": wei})
    receipt = _wait(w3, tx_hash)
    if receipt["status"] != 1:
        raise ChainError(f"funding {to} failed in transaction {tx_hash.to_0x_hex()}")


def contract(w3: Web3, name: str, address: str) -> Contract:
    """The contract `name` (one of contracts_abi.DEPLOYED_NAMES) at `address`."""
    if not is_address(address):
        raise ValueError(f"address of {name} is not an Ethereum address: {address!r}")
    return w3.eth.contract(address=to_checksum_address(address), abi=load_artifact(name).abi)


def deploy_contracts(
    w3: Web3, deployer: LocalAccount, known: Mapping[str, str], *, admin: str
) -> dict[str, str]:
    """Deploy each contract in DEPLOYED_NAMES not in `known` (or whose code at the known address
    is missing / differs from the artifact's deployedBytecode, e.g. a fresh anvil); return
    name->address for all of them. Signs locally with `deployer`, waits for receipts.

    Each constructor gets (`admin`, `deployer.address`): the admin grants and revokes the
    operator role, the deployer is the operator. TradeEscrow also gets the passport's and the
    ledger's addresses, so it follows them, and is redeployed when either one is.
    """
    if not is_address(admin):
        raise ValueError(f"admin is not an Ethereum address: {admin!r}")
    addresses: dict[str, str] = {}
    for name, address in known.items():
        if name not in DEPLOYED_NAMES:
            raise ValueError(f"unknown contract {name!r}; expected one of {DEPLOYED_NAMES}")
        if not is_address(address):
            raise ValueError(f"known address of {name} is not an Ethereum address: {address!r}")
        artifact = load_artifact(name)
        if is_same_contract(
            w3.eth.get_code(to_checksum_address(address)), artifact.deployed_bytecode
        ):
            addresses[name] = to_checksum_address(address)

    base = [to_checksum_address(admin), deployer.address]
    missing = [name for name in CONTRACT_NAMES if name not in addresses]
    # Send all, then wait: on a chain with slow blocks both land in the same block.
    addresses.update(_deploy_all(w3, deployer, {name: base for name in missing}))
    used = [addresses[name] for name in CONTRACT_NAMES]
    escrow = addresses.get(ESCROW_NAME)
    if escrow is None or not escrow_bound_to(w3, escrow, *used):
        addresses.update(_deploy_all(w3, deployer, {ESCROW_NAME: [*base, *used]}))
    return {name: addresses[name] for name in DEPLOYED_NAMES}


def escrow_bound_to(w3: Web3, address: str, passport: str, ledger: str) -> bool:
    """Whether the TradeEscrow at `address` was built for `passport` and `ledger`."""
    escrow = contract(w3, ESCROW_NAME, address)
    bound = (escrow.functions.passport().call(), escrow.functions.ledger().call())
    return bound == (to_checksum_address(passport), to_checksum_address(ledger))


def _deploy_all(
    w3: Web3, deployer: LocalAccount, args: Mapping[str, Sequence[Any]]
) -> dict[str, str]:
    """Send one deployment per name in `args` with consecutive nonces, then wait for each."""
    if not args:
        return {}
    nonce = w3.eth.get_transaction_count(deployer.address, "pending")
    fees = fee_fields(w3)
    chain_id = w3.eth.chain_id
    sent = {}
    for offset, (name, values) in enumerate(args.items()):
        artifact = load_artifact(name)
        factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        transaction = factory.constructor(*values).build_transaction(
            {"from": deployer.address, "nonce": nonce + offset, "chainId": chain_id, **fees}
        )
        signed = deployer.sign_transaction(transaction)
        sent[name] = w3.eth.send_raw_transaction(signed.raw_transaction)
    addresses = {}
    for name, tx_hash in sent.items():
        receipt = _wait(w3, tx_hash)
        created = receipt.get("contractAddress")
        if receipt["status"] != 1 or not created:
            raise DeploymentFailed(
                f"deploying {name} failed in transaction {tx_hash.to_0x_hex()} "
                f"(status {receipt['status']})"
            )
        addresses[name] = to_checksum_address(created)
    return addresses


def _wait(w3: Web3, tx_hash: HexBytes) -> Any:
    try:
        return w3.eth.wait_for_transaction_receipt(
            tx_hash, timeout=RECEIPT_TIMEOUT_SECONDS, poll_latency=0.05
        )
    except TimeExhausted:
        raise ChainUnavailable(
            f"no receipt for {tx_hash.to_0x_hex()} after {RECEIPT_TIMEOUT_SECONDS} s"
        ) from None


def _raw_request(w3: Web3, method: str, params: list) -> Any:
    """One request without web3's formatters (they reject PoA blocks), node errors as ours."""
    try:
        response = w3.provider.make_request(method, params)
    except (requests.RequestException, OSError) as exc:
        raise ChainUnavailable(f"the chain node at {_where(w3)} does not answer: {exc}") from None
    except ValueError as exc:  # not JSON: a web server, not a node
        raise ChainUnavailable(f"{_where(w3)} does not answer JSON-RPC ({method}): {exc}") from None
    if "error" in response:
        raise ChainUnavailable(
            f"the chain node at {_where(w3)} refused {method}: {response['error']}"
        )
    return response.get("result")


def _where(w3: Web3) -> str:
    return str(getattr(w3.provider, "endpoint_uri", "embedded chain"))
