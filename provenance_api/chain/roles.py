"""The contracts' roles: the admin grants and revokes the operator role, signing locally.

The admin (DEFAULT_ADMIN_ROLE) signs nothing but these changes, so its key can stay offline
and be brought in only for them; the operator (OPERATOR_ROLE) is the service's key.
"""

from __future__ import annotations

from collections.abc import Mapping

from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak
from eth_utils import to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError, TimeExhausted, Web3RPCError

from provenance_api.chain import RECEIPT_TIMEOUT_SECONDS, fee_fields
from provenance_api.chain.errors import ChainUnavailable, NotAdmin, RoleChangeFailed

ADMIN_ROLE = bytes(32)
OPERATOR_ROLE = keccak(b"OPERATOR_ROLE")


def is_operator(contract: Contract, account: str) -> bool:
    """Whether `account` holds OPERATOR_ROLE on `contract`."""
    return bool(contract.functions.hasRole(OPERATOR_ROLE, to_checksum_address(account)).call())


def set_operator(
    w3: Web3, admin: LocalAccount, contracts: Mapping[str, Contract], account: str, *, grant: bool
) -> dict[str, str | None]:
    """Grant (or revoke) OPERATOR_ROLE of `account` on each contract, signed by `admin`.

    Returns name -> transaction hash, or None where `account` already was (or was not) an
    operator. Checks that `admin` is the admin of every contract before sending anything.
    """
    account = to_checksum_address(account)
    for name, contract in contracts.items():
        if not contract.functions.hasRole(ADMIN_ROLE, admin.address).call():
            raise NotAdmin(
                f"{admin.address} is not the admin of {name} at {contract.address}; "
                "use the admin's key (the ADMIN_ADDRESS the contracts were deployed with)"
            )
    changes = {
        name: contract
        for name, contract in contracts.items()
        if is_operator(contract, account) != grant
    }
    nonce = w3.eth.get_transaction_count(admin.address, "pending")
    fees = fee_fields(w3)
    chain_id = w3.eth.chain_id
    sent: dict[str, str | None] = dict.fromkeys(contracts)
    for offset, (name, contract) in enumerate(changes.items()):
        function = contract.functions.grantRole if grant else contract.functions.revokeRole
        try:
            transaction = function(OPERATOR_ROLE, account).build_transaction(
                {"from": admin.address, "nonce": nonce + offset, "chainId": chain_id, **fees}
            )
            signed = admin.sign_transaction(transaction)
            sent[name] = w3.eth.send_raw_transaction(signed.raw_transaction).to_0x_hex()
        except (Web3RPCError, ContractLogicError) as exc:
            message = getattr(exc, "message", None) or str(exc)
            raise RoleChangeFailed(
                f"the node refused the admin's transaction to {name}: {message}"
            ) from None
    for name, tx_hash in sent.items():
        if tx_hash is None:
            continue
        try:
            receipt = w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=RECEIPT_TIMEOUT_SECONDS, poll_latency=0.05
            )
        except TimeExhausted:
            raise ChainUnavailable(
                f"no receipt for {tx_hash} after {RECEIPT_TIMEOUT_SECONDS} s"
            ) from None
        if receipt["status"] != 1:
            raise RoleChangeFailed(f"changing the operators of {name} reverted in {tx_hash}")
    return sent
