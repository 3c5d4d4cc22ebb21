"""Which contract lives where on which chain; deploying what is missing through the outbox."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import is_address, to_checksum_address
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from web3 import Web3

from contracts_abi import CONTRACT_NAMES, DEPLOYED_NAMES, ESCROW_NAME, load_artifact
from provenance_api import chain
from provenance_api.chain.bytecode import is_same_contract
from provenance_api.db import session_scope
from provenance_api.models import ChainWrite, ContractDeployment, WriteStatus
from provenance_api.outbox import CONSTRUCTOR, FINAL, jsonable
from provenance_api.services.chain_writes import owe_write


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


def constructor_args(admin: str, operator: str) -> dict[str, list[Any]]:
    """Each contract's constructor arguments as JSON values: (admin, operator).

    The admin grants and revokes the operator role; the operator signs the chain writes.
    """
    if not is_address(admin):
        raise ValueError(f"admin is not an Ethereum address: {admin!r}")
    return {name: [to_checksum_address(admin), operator] for name in CONTRACT_NAMES}


def ensure_deployed(
    engine: Engine,
    w3: Web3,
    deployer: LocalAccount,
    drive: Callable[[], object] = lambda: None,
    *,
    admin: str,
    args: Mapping[str, Sequence[Any]] | None = None,
    timeout: float = 600.0,
) -> dict[str, str]:
    """Deploy the contracts this chain lacks and remember where they are; name -> address.

    Deployments are writes of the outbox (the deployer's nonce is only ever taken by the
    chain writer): `drive` is called until they settle, e.g. one tick of a writer for
    `deployer`; if another writer holds the key, it does the work and this waits.
    `deployer` becomes the operator of new contracts, `admin` their admin (unless `args`
    gives each contract's constructor arguments). TradeEscrow comes after the passport and
    the ledger, whose addresses it takes: an installation that has only those two gets it on
    its next start, and it is redeployed when either of them is.
    """
    chain_id = w3.eth.chain_id
    with Session(engine) as session:
        known = known_addresses(session, chain_id)
    addresses = {
        name: to_checksum_address(address)
        for name, address in known.items()
        if name in DEPLOYED_NAMES and _has_code(w3, name, address)
    }
    wanted = dict(args) if args is not None else constructor_args(admin, deployer.address)
    deadline = time.monotonic() + timeout
    missing = [name for name in CONTRACT_NAMES if name not in addresses]
    if missing:
        addresses.update(
            _settle(
                engine,
                w3,
                deployer.address,
                {n: wanted[n] for n in missing},
                drive,
                deadline,
                timeout,
            )
        )
        with session_scope(engine) as session:
            store_addresses(session, chain_id, {n: addresses[n] for n in CONTRACT_NAMES})
    used = [addresses[name] for name in CONTRACT_NAMES]
    escrow = addresses.get(ESCROW_NAME)
    if escrow is None or not chain.escrow_bound_to(w3, escrow, *used):
        # The same admin and operator as the others'; the addresses are always the deployed ones.
        roles = wanted.get(ESCROW_NAME, wanted[CONTRACT_NAMES[0]])[:2]
        escrow_args = [*roles, *used]
        addresses.update(
            _settle(
                engine, w3, deployer.address, {ESCROW_NAME: escrow_args}, drive, deadline, timeout
            )
        )
        with session_scope(engine) as session:
            store_addresses(session, chain_id, {ESCROW_NAME: addresses[ESCROW_NAME]})
    return {name: addresses[name] for name in DEPLOYED_NAMES}


def _settle(
    engine: Engine,
    w3: Web3,
    sender: str,
    wanted: Mapping[str, Sequence[Any]],
    drive: Callable[[], object],
    deadline: float,
    timeout: float,
) -> dict[str, str]:
    """Owe each deployment in `wanted` (name -> arguments), drive until settled; name -> address."""
    chain_id = w3.eth.chain_id
    with session_scope(engine) as session:
        owed = {
            name: _deploy_write(session, w3, chain_id, sender, name, values)
            for name, values in wanted.items()
        }
    while True:
        drive()
        with Session(engine) as session:
            rows = {name: session.get(ChainWrite, write_id) for name, write_id in owed.items()}
        settled = {name: row for name, row in rows.items() if row and row.status in FINAL}
        if len(settled) == len(rows):
            break
        if time.monotonic() > deadline:
            raise chain.ChainUnavailable(
                f"deployments still unsettled after the {timeout:.0f} s timeout (chain writes "
                f"{sorted(owed.values())}); they stay owed: run the command again"
            )
        time.sleep(0.05)
    addresses = {}
    for name, row in settled.items():
        if row.status != WriteStatus.CONFIRMED.value or not row.contract_address:
            raise chain.DeploymentFailed(
                f"deploying {name} failed in chain write {row.id}: {row.error or row.status}"
            )
        addresses[name] = to_checksum_address(row.contract_address)
    return addresses


def _has_code(w3: Web3, name: str, address: str) -> bool:
    if not is_address(address):
        return False
    code = w3.eth.get_code(to_checksum_address(address))
    return is_same_contract(bytes(code), load_artifact(name).deployed_bytecode)


def _deploy_write(
    session: Session, w3: Web3, chain_id: int, sender: str, name: str, args: Sequence[Any]
) -> int:
    """The write deploying `name`: one still under way, or a new one (numbered per chain).

    An earlier escrow write for another passport or ledger (since replaced) does not count.
    """
    earlier = list(
        session.exec(
            select(ChainWrite)
            .where(ChainWrite.sender == sender)
            .where(ChainWrite.contract == name)
            .where(ChainWrite.function == CONSTRUCTOR)
            .where(ChainWrite.idempotency_key.startswith(f"deploy-{chain_id}-{name}-"))  # type: ignore[attr-defined]
            .order_by(ChainWrite.id)
        )
    )
    values = _lower(jsonable(list(args)))
    for row in reversed(earlier):
        if name == ESCROW_NAME and _lower(row.args) != values:
            continue
        if row.status not in FINAL:
            assert row.id is not None
            return row.id
        if row.contract_address and _has_code(w3, name, row.contract_address):
            assert row.id is not None
            return row.id  # deployed by an earlier run that did not get to store it
    row = owe_write(
        session,
        sender=sender,
        contract=name,
        function=CONSTRUCTOR,
        args=args,
        idempotency_key=f"deploy-{chain_id}-{name}-{len(earlier)}",
    )
    assert row.id is not None
    return row.id


def _lower(values: Sequence[Any]) -> list[Any]:
    # Addresses compare case-insensitively: a checksummed and a lower-case one are the same.
    return [value.lower() if isinstance(value, str) else value for value in values]


def fund_if_low(w3: Web3, address: str, wei: int) -> str | None:
    """On the embedded chain or anvil, top `address` up to `wei`; elsewhere a warning."""
    if w3.eth.get_balance(address) >= wei // 2:
        return None
    try:
        chain.fund_for_development(w3, address, wei)
    except chain.NotADevelopmentChain as exc:
        return f"{address} has a low balance: {exc}"
    return None
