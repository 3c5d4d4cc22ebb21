"""Who may sign chain writes: the admin grants and revokes the operator role."""

from __future__ import annotations

from eth_account.signers.local import LocalAccount
from eth_utils import is_address
from sqlalchemy.engine import Engine
from web3 import Web3

from contracts_abi import DEPLOYED_NAMES
from provenance_api import chain
from provenance_api.chain import roles
from provenance_api.db import session_scope
from provenance_api.services.deployments import known_addresses
from provenance_api.services.errors import InvalidInput, NotFound


def set_operator(
    engine: Engine, w3: Web3, admin: LocalAccount, account: str, *, grant: bool
) -> dict[str, dict[str, str | None]]:
    """Grant or revoke `account`'s operator role on every deployed contract.

    Returns name -> {"address", "transaction"}; the transaction is None where nothing changed.
    """
    if not is_address(account):
        raise InvalidInput(
            f"not an Ethereum address: {account!r}", {"address": "not an Ethereum address"}
        )
    chain_id = w3.eth.chain_id
    with session_scope(engine) as session:
        known = known_addresses(session, chain_id)
    missing = [name for name in DEPLOYED_NAMES if name not in known]
    if missing:
        raise NotFound(
            f"{', '.join(missing)} not deployed on chain {chain_id}: "
            "run `provenance-api chain deploy` first"
        )
    contracts = {name: chain.contract(w3, name, known[name]) for name in DEPLOYED_NAMES}
    sent = roles.set_operator(w3, admin, contracts, account, grant=grant)
    return {
        name: {"address": contracts[name].address, "transaction": sent[name]}
        for name in DEPLOYED_NAMES
    }
