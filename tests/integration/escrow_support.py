"""A TradeEscrow deployment on eth-tester with its passport and ledger, and trade steps."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from web3 import EthereumTesterProvider, Web3
from web3.contract import Contract

from contracts_abi import Artifact, eip712, load_artifact, parse_artifact
from contracts_abi.escrow import Status, Terms, custody_event_args
from contracts_abi.merkle import custody_tree
from contracts_abi.passport import passport_id, tag_commitment
from tests.integration.contracts_support import transact

ESCROW = load_artifact("TradeEscrow")
PASSPORT = load_artifact("ProductPassport")
LEDGER = load_artifact("CustodyLedger")
TEST_ARTIFACTS = Path(__file__).resolve().parents[1] / "contracts" / "artifacts"
GTIN = "09506000134352"
TAG = tag_commitment("ntag424", bytes.fromhex("04a1b2c3d4e5f6"))
DEPOSIT = 10**18
PRICE = 3 * 10**18
WINDOWS = {
    "deposit_window": 3600,
    "ship_window": 2 * 86400,
    "confirm_window": 7 * 86400,
    "agree_window": 3 * 86400,
    "rule_window": 14 * 86400,
}


def adversary_artifact(name: str) -> Artifact:
    """A test-only contract's committed artifact (tests/contracts/artifacts)."""
    return parse_artifact((TEST_ARTIFACTS / f"{name}.json").read_text("utf-8"))


def _deploy(w3: Web3, artifact: Artifact, sender: str, *args: Any) -> Contract:
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = w3.eth.wait_for_transaction_receipt(
        factory.constructor(*args).transact({"from": sender})
    )
    assert receipt.status == 1
    return w3.eth.contract(address=receipt.contractAddress, abi=artifact.abi)


def deploy_escrow() -> SimpleNamespace:
    """A fresh chain: passport, ledger and escrow; three registered arbiters; GTIN's supplier.

    Accounts: admin, operator, seller, buyer, arbiters (3), stranger, supplier, device.
    """
    w3 = Web3(EthereumTesterProvider())
    tester = w3.provider.ethereum_tester
    admin, operator, seller, buyer, a1, a2, a3, stranger, supplier, device = w3.eth.accounts[:10]
    keys = {
        str(key.public_key.to_checksum_address()): key.to_bytes()
        for key in tester.backend.account_keys
    }
    passport = _deploy(w3, PASSPORT, operator, admin, operator)
    ledger = _deploy(w3, LEDGER, operator, admin, operator)
    escrow = _deploy(w3, ESCROW, operator, admin, operator, passport.address, ledger.address)
    chain = SimpleNamespace(
        w3=w3,
        tester=tester,
        passport=passport,
        ledger=ledger,
        escrow=escrow,
        admin=admin,
        operator=operator,
        seller=seller,
        buyer=buyer,
        arbiters=[a1, a2, a3],
        stranger=stranger,
        supplier=supplier,
        device=device,
        keys=keys,
        serials=iter(range(1_000_000)),
    )
    transact(chain, passport.functions.setSupplier(GTIN, supplier))
    transact(chain, ledger.functions.registerDevice(supplier, device))
    for index, arbiter in enumerate(chain.arbiters):
        transact(chain, escrow.functions.registerArbiter(f"https://arb.example/{index}"), arbiter)
    return chain


def now(chain: SimpleNamespace) -> int:
    """The latest block's timestamp; the next transaction lands a second or more later."""
    return chain.w3.eth.get_block("latest").timestamp


def next_serial(chain: SimpleNamespace) -> str:
    return f"SN-{next(chain.serials):06d}"


def mint(chain: SimpleNamespace, to: str, serial: str) -> int:
    """Mint (GTIN, serial) to `to` under the supplier's consent; the passport id."""
    token_id = passport_id(GTIN, serial)
    deadline = now(chain) + 3600
    signature = eip712.sign_mint_consent(
        chain.keys[chain.supplier],
        chain_id=chain.w3.eth.chain_id,
        passport=chain.passport.address,
        to=to,
        token_id=token_id,
        tag_commitment=TAG,
        nonce=chain.passport.functions.nonces(chain.supplier).call(),
        deadline=deadline,
    )
    call = chain.passport.functions.mintWithConsent(to, GTIN, serial, TAG, deadline, signature)
    transact(chain, call)
    return token_id


def relay_transfer(chain: SimpleNamespace, owner: str, to: str, token_id: int) -> Any:
    """The operator relays `owner`'s TransferConsent of `token_id` to `to`; the call."""
    deadline = now(chain) + 3600
    signature = eip712.sign_transfer_consent(
        chain.keys[owner],
        chain_id=chain.w3.eth.chain_id,
        passport=chain.passport.address,
        to=to,
        token_id=token_id,
        nonce=chain.passport.functions.nonces(owner).call(),
        deadline=deadline,
    )
    return chain.passport.functions.transferWithConsent(owner, to, token_id, deadline, signature)


def make_terms(chain: SimpleNamespace, token_id: int, **changes: Any) -> Terms:
    fields = {
        "token_id": token_id,
        "seller": chain.seller,
        "buyer": chain.buyer,
        "deposit": DEPOSIT,
        "price": PRICE,
        **WINDOWS,
    }
    fields.update(changes)
    return Terms(**fields)


def open_trade(chain: SimpleNamespace, terms: Terms, opener: str | None = None) -> int:
    """Open a trade on `terms` (by its seller unless `opener`); its id."""
    transact(chain, chain.escrow.functions.open(terms.as_tuple()), opener or terms.seller)
    return chain.escrow.functions.tradeCount().call()


def deposit(chain: SimpleNamespace, trade_id: int, party: str) -> Any:
    """`party` deposits exactly what the terms ask; the receipt."""
    terms = Terms.from_tuple(chain.escrow.functions.termsOf(trade_id).call())
    value = terms.deposit + (terms.price if party == terms.buyer else 0)
    call = chain.escrow.functions.deposit(trade_id)
    return chain.w3.eth.wait_for_transaction_receipt(call.transact({"from": party, "value": value}))


def funded_trade(
    chain: SimpleNamespace, serial: str | None = None, **changes: Any
) -> tuple[int, Terms]:
    """A new passport of the seller's, in a trade both parties funded; (trade id, terms)."""
    token_id = mint(chain, chain.seller, serial or next_serial(chain))
    terms = make_terms(chain, token_id, **changes)
    trade_id = open_trade(chain, terms)
    approve = chain.passport.functions.approve(chain.escrow.address, token_id)
    transact(chain, approve, terms.seller)
    assert deposit(chain, trade_id, terms.seller).status == 1
    assert deposit(chain, trade_id, terms.buyer).status == 1
    return trade_id, terms


def status(chain: SimpleNamespace, trade_id: int) -> Status:
    return Status.from_tuple(chain.escrow.functions.statusOf(trade_id).call())


def travel_past(chain: SimpleNamespace, deadline: int) -> None:
    """Move the clock so that the next transaction (and its gas estimate) lands past `deadline`."""
    if pending_time(chain) <= deadline:
        chain.tester.time_travel(deadline + 1)


def pending_time(chain: SimpleNamespace) -> int:
    """The timestamp the next block gets: eth-tester never goes below it."""
    return chain.tester.get_block_by_number("pending")["timestamp"]


def handoff_event(
    chain: SimpleNamespace, terms: Terms, serial: str, **changes: Any
) -> eip712.CustodyEvent:
    """The custody event of `serial` handed from the seller to the buyer, just now."""
    fields = {
        "event_id": uuid.uuid4(),
        "gtin": GTIN,
        "serial": serial,
        "biz_step": "receiving",
        "disposition": "in_progress",
        "read_point": "urn:epc:id:sgln:9506000.13435.0",
        "from_party": terms.seller,
        "to_party": terms.buyer,
        "event_time": now(chain),
        "time_zone_offset": 60,
        "tag_evidence": os.urandom(32),
        "device": chain.device,
    }
    fields.update(changes)
    return eip712.CustodyEvent(**fields)


def anchor_event(chain: SimpleNamespace, event: eip712.CustodyEvent) -> tuple[bytes, bytes, list]:
    """Anchor a batch holding `event` and another; (salt, root, proof) of `event`."""
    salt = os.urandom(32)
    leaves = [[eip712.custody_event_digest(event), salt], [os.urandom(32), os.urandom(32)]]
    tree = custody_tree(leaves)
    transact(chain, chain.ledger.functions.anchor(tree.root, 2, os.urandom(32)))
    return salt, tree.root, tree.proof(0)


def prove_call(
    chain: SimpleNamespace, trade_id: int, event: eip712.CustodyEvent, anchored: tuple
) -> Any:
    salt, root, proof = anchored
    return chain.escrow.functions.proveShipped(
        trade_id, custody_event_args(event), salt, root, proof
    )
