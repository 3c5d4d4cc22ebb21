"""Which contract lives where on which chain; deploying what is missing on first start."""

from __future__ import annotations

from eth_account.signers.local import LocalAccount
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from web3 import Web3

from provenance_api import chain
from provenance_api.db import session_scope
from provenance_api.models import ContractDeployment


def known_addresses(session: Session, chain_id: int) -> dict[str, str]:
    """Contract name -> address recorded for `chain_id`."""
    rows = session.exec(select(ContractDeployment).where(ContractDeployment.chain_id == chain_id))
    return {row.name: row.address for row in rows}


def store_addresses(session: Session, chain_id: int, addresses: dict[str, str]) -> None:
    """Remember where each contract lives on `chain_id` (a redeployment replaces the address)."""
    rows = session.exec(select(ContractDeployment).where(ContractDeployment.chain_id == chain_id))
    stored = {row.name: row for row in rows}
    for name, address in addresses.items():
        row = stored.get(name)
        if row is None:
            session.add(ContractDeployment(chain_id=chain_id, name=name, address=address))
        elif row.address != address:
            row.address = address
            session.add(row)
    session.flush()


def ensure_deployed(
    engine: Engine, w3: Web3, deployer: LocalAccount, *, admin: str
) -> dict[str, str]:
    """Deploy the contracts this chain lacks and remember where they are; name -> address.

    `deployer` becomes the operator of new contracts, `admin` their admin.
    """
    chain_id = w3.eth.chain_id
    with session_scope(engine) as session:
        known = known_addresses(session, chain_id)
    addresses = chain.deploy_contracts(w3, deployer, known, admin=admin)
    if addresses != known:
        with session_scope(engine) as session:
            store_addresses(session, chain_id, addresses)
    return addresses


def fund_if_low(w3: Web3, address: str, wei: int) -> str | None:
    """On the embedded chain or anvil, top `address` up to `wei`; elsewhere a warning."""
    if w3.eth.get_balance(address) >= wei // 2:
        return None
    try:
        chain.fund_for_development(w3, address, wei)
    except chain.NotADevelopmentChain as exc:
        return f"{address} has a low balance: {exc}"
    return None
