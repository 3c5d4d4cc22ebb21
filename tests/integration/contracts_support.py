"""The contract tests' eth-tester plumbing: deploy an artifact, roll back, match reverts."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from eth_tester.exceptions import TransactionFailed
from web3 import EthereumTesterProvider, Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError

from contracts_abi import Artifact


def deploy(artifact: Artifact) -> tuple[Web3, Contract]:
    """A fresh in-process chain with `artifact` deployed by its second account, the operator.

    The first account is the admin, the second the operator (constructor(admin, operator)).
    """
    w3 = Web3(EthereumTesterProvider())
    admin, operator = w3.eth.accounts[:2]
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = w3.eth.wait_for_transaction_receipt(
        factory.constructor(admin, operator).transact({"from": operator})
    )
    return w3, w3.eth.contract(address=receipt.contractAddress, abi=artifact.abi)


@contextmanager
def rolled_back(w3: Web3) -> Iterator[None]:
    """Undo the block's changes to the chain, so that tests sharing a deployment stay apart."""
    tester = w3.provider.ethereum_tester
    snapshot = tester.take_snapshot()
    try:
        yield
    finally:
        tester.revert_to_snapshot(snapshot)


def transact(chain: SimpleNamespace, call: Any, sender: str | None = None) -> Any:
    """Send `call` from `sender` (default: the operator) and return its receipt; it must succeed."""
    receipt = chain.w3.eth.wait_for_transaction_receipt(
        call.transact({"from": sender or chain.operator})
    )
    assert receipt.status == 1
    return receipt


def revert_data(call: Callable[[], object]) -> bytes:
    """Raw revert data of a call or transaction that must revert."""
    with pytest.raises((ContractCustomError, TransactionFailed)) as info:
        call()
    if isinstance(info.value, ContractCustomError):
        return bytes.fromhex(str(info.value.data).removeprefix("0x"))
    # web3's eth-tester provider formats the raw revert bytes into the message.
    return ast.literal_eval(str(info.value.args[0]).removeprefix("execution reverted: "))


def assert_reverts(
    artifact: Artifact, call: Callable[[], object], error: str, *args: object
) -> None:
    """`call` reverts with `artifact`'s custom error `error(*args)`, byte for byte."""
    data = revert_data(call)
    assert artifact.decode_error(data) is not None, data.hex()
    assert artifact.decode_error(data)[0] == error
    assert data == artifact.encode_error(error, *args)
