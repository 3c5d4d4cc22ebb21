"""The chain adapter, one suite run on both backends: the embedded py-evm chain and anvil."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3
from web3.exceptions import ContractCustomError, TransactionNotFound, Web3RPCError

from contracts_abi import DEPLOYED_NAMES, eip712, load_artifact
from contracts_abi.merkle import StandardMerkleTree, custody_tree
from contracts_abi.passport import passport_id
from provenance_api import chain
from provenance_api.chain.bytecode import is_same_contract
from provenance_api.chain.embedded import EmbeddedProvider
from tests.conftest import free_port

ANVIL_CHAIN_ID = 31337
UNKNOWN_ROOT = keccak(text="LedgerUnknownRoot(bytes32)")[:4]
INVALID_BATCH = keccak(text="LedgerInvalidBatch(bytes32,uint32)")[:4]
ONE_ETHER = 10**18
ADMIN = Account.create().address


@dataclass
class Node:
    """A connected chain and an account with coin on it."""

    w3: Web3
    account: LocalAccount
    kind: str


@pytest.fixture(params=["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def node(request: pytest.FixtureRequest, tmp_path) -> Node:
    if request.param == "embedded":
        w3 = chain.connect(None, tmp_path / "chain")
    else:
        w3 = chain.connect(request.getfixturevalue("anvil_url"), tmp_path / "unused")
    account = Account.create()
    chain.fund_for_development(w3, account.address, 100 * ONE_ETHER)
    yield Node(w3, account, request.param)
    chain.close(w3)


def send(node: Node, transaction: dict) -> bytes:
    """Sign `transaction` locally with EIP-1559 fees and send it raw; return its hash."""
    w3 = node.w3
    full = {
        "chainId": w3.eth.chain_id,
        "nonce": w3.eth.get_transaction_count(node.account.address, "pending"),
        **chain.fee_fields(w3),
        **transaction,
    }
    if "gas" not in full:
        full["gas"] = w3.eth.estimate_gas(
            {"from": node.account.address, "to": full["to"], "data": full.get("data", b"")}
        )
    return w3.eth.send_raw_transaction(node.account.sign_transaction(full).raw_transaction)


def two_event_batch(seed: bytes) -> tuple[list[list[bytes]], StandardMerkleTree]:
    """Two (event digest, salt) pairs and their tree."""
    events = [[seed.rjust(32, b"\x01"), os.urandom(32)], [seed.rjust(32, b"\x02"), os.urandom(32)]]
    return events, custody_tree(events)


def test_chain_id_and_block_number(node: Node) -> None:
    status = chain.chain_status(node.w3)
    expected = chain.EMBEDDED_CHAIN_ID if node.kind == "embedded" else ANVIL_CHAIN_ID
    assert status["chain_id"] == expected == node.w3.eth.chain_id
    assert status["embedded"] is (node.kind == "embedded")
    before = status["block"]
    receipt = node.w3.eth.wait_for_transaction_receipt(
        send(node, {"to": Account.create().address, "value": 1, "gas": 21_000})
    )
    assert receipt["blockNumber"] == before + 1
    assert chain.chain_status(node.w3)["block"] == before + 1


def test_deploy_contracts_puts_the_artifacts_code_on_chain(node: Node) -> None:
    addresses = chain.deploy_contracts(node.w3, node.account, {}, admin=ADMIN)
    assert list(addresses) == list(DEPLOYED_NAMES)
    assert len(set(addresses.values())) == len(DEPLOYED_NAMES)
    for name, address in addresses.items():
        code = node.w3.eth.get_code(address)
        assert is_same_contract(code, load_artifact(name).deployed_bytecode), name
    # ProductPassport has immutables (EIP712), so only the metadata-aware check can match it.
    passport = addresses["ProductPassport"]
    assert node.w3.eth.get_code(passport) != load_artifact("ProductPassport").deployed_bytecode
    for name, address in addresses.items():
        contract = chain.contract(node.w3, name, address)
        operator = contract.functions.OPERATOR_ROLE().call()
        assert contract.functions.hasRole(operator, node.account.address).call(), name
        assert not contract.functions.hasRole(operator, ADMIN).call(), name
        assert contract.functions.hasRole(bytes(32), ADMIN).call(), name
        assert not contract.functions.hasRole(bytes(32), node.account.address).call(), name


def test_anchor_by_raw_transaction_then_verify_a_proof(node: Node) -> None:
    ledger_address = chain.deploy_contracts(node.w3, node.account, {}, admin=ADMIN)["CustodyLedger"]
    ledger = chain.contract(node.w3, "CustodyLedger", ledger_address)
    events, tree = two_event_batch(b"anchor")
    batch_id = os.urandom(32)

    data = ledger.functions.anchor(tree.root, 2, batch_id)._encode_transaction_data()
    tx_hash = send(node, {"to": ledger_address, "data": data})
    receipt = node.w3.eth.wait_for_transaction_receipt(tx_hash)

    assert receipt["status"] == 1
    (event,) = ledger.events.RootAnchored().process_receipt(receipt)
    assert event["args"]["root"] == tree.root
    assert event["args"]["batchId"] == batch_id
    assert event["args"]["count"] == 2
    block = node.w3.eth.get_block(receipt["blockNumber"])
    assert event["args"]["timestamp"] == block["timestamp"]
    for index, (digest, salt) in enumerate(events):
        assert ledger.functions.verifyEvent(tree.root, digest, salt, tree.proof(index)).call()
    digest, salt = events[0]
    assert not ledger.functions.verifyEvent(tree.root, digest, os.urandom(32), tree.proof(0)).call()
    unknown = os.urandom(32)
    with pytest.raises(ContractCustomError) as raised:
        ledger.functions.verifyEvent(unknown, digest, salt, tree.proof(0)).call()
    assert raised.value.data == "0x" + (UNKNOWN_ROOT + unknown).hex()


def test_transaction_by_hash_and_receipt(node: Node) -> None:
    nonce = node.w3.eth.get_transaction_count(node.account.address, "pending")
    to = Account.create().address
    tx_hash = send(node, {"to": to, "value": 5, "gas": 21_000})
    receipt = node.w3.eth.wait_for_transaction_receipt(tx_hash)
    transaction = node.w3.eth.get_transaction(tx_hash)
    assert transaction["hash"] == tx_hash
    assert transaction["from"] == node.account.address
    assert transaction["to"] == to
    assert transaction["nonce"] == nonce
    assert transaction["type"] == 2
    assert transaction["blockNumber"] == receipt["blockNumber"]
    assert receipt["transactionHash"] == tx_hash
    assert receipt["gasUsed"] == 21_000
    assert node.w3.eth.get_balance(to) == 5


def test_reverted_transaction_is_mined_with_status_0(node: Node) -> None:
    ledger_address = chain.deploy_contracts(node.w3, node.account, {}, admin=ADMIN)["CustodyLedger"]
    ledger = chain.contract(node.w3, "CustodyLedger", ledger_address)
    zero_root = ledger.functions.anchor(b"\0" * 32, 1, os.urandom(32))._encode_transaction_data()
    with pytest.raises(ContractCustomError) as raised:
        node.w3.eth.estimate_gas(
            {"from": node.account.address, "to": ledger_address, "data": zero_root}
        )
    assert raised.value.data.startswith("0x" + INVALID_BATCH.hex())
    # An explicit gas limit skips estimation, which would refuse the reverting call.
    tx_hash = send(node, {"to": ledger_address, "data": zero_root, "gas": 100_000})
    assert node.w3.eth.wait_for_transaction_receipt(tx_hash)["status"] == 0


def test_pending_nonce_counts_sent_transactions(node: Node) -> None:
    address = node.account.address
    start = node.w3.eth.get_transaction_count(address, "pending")
    hashes = [send(node, {"to": address, "value": 0, "gas": 21_000}) for _ in range(3)]
    assert node.w3.eth.get_transaction_count(address, "pending") == start + 3
    for tx_hash in hashes:
        assert node.w3.eth.wait_for_transaction_receipt(tx_hash)["status"] == 1
    assert node.w3.eth.get_transaction_count(address, "latest") == start + 3


def test_estimate_gas_ignores_a_nonce_still_pending(node: Node) -> None:
    address = node.account.address
    ahead = node.w3.eth.get_transaction_count(address, "pending") + 5
    estimate = node.w3.eth.estimate_gas({"from": address, "to": address, "nonce": ahead})
    assert 21_000 <= estimate < 50_000


def test_stale_nonce_is_refused_like_a_node_does(node: Node) -> None:
    address = node.account.address
    used = node.w3.eth.get_transaction_count(address, "pending")
    node.w3.eth.wait_for_transaction_receipt(
        send(node, {"to": address, "value": 0, "gas": 21_000, "nonce": used})
    )
    with pytest.raises(Web3RPCError, match="nonce too low"):
        send(node, {"to": address, "value": 1, "gas": 21_000, "nonce": used})


def test_transaction_it_cannot_pay_for_is_refused_like_a_node_does(node: Node) -> None:
    poor = Node(node.w3, Account.create(), node.kind)
    with pytest.raises(Web3RPCError, match=r"(?i)insufficient funds"):
        send(poor, {"to": node.account.address, "value": 1, "gas": 21_000})


def test_unknown_transaction_hash_is_not_found(node: Node) -> None:
    unknown = os.urandom(32)
    with pytest.raises(TransactionNotFound):
        node.w3.eth.get_transaction_receipt(unknown)
    with pytest.raises(TransactionNotFound):
        node.w3.eth.get_transaction(unknown)


def test_deploy_contracts_is_idempotent(node: Node) -> None:
    first = chain.deploy_contracts(node.w3, node.account, {}, admin=ADMIN)
    block = node.w3.eth.block_number
    nonce = node.w3.eth.get_transaction_count(node.account.address, "pending")

    lowercase = {name: address.lower() for name, address in first.items()}
    assert chain.deploy_contracts(node.w3, node.account, lowercase, admin=ADMIN) == first
    assert node.w3.eth.block_number == block
    assert node.w3.eth.get_transaction_count(node.account.address, "pending") == nonce


def test_deploy_contracts_redeploys_where_the_code_is_missing_or_wrong(node: Node) -> None:
    first = chain.deploy_contracts(node.w3, node.account, {}, admin=ADMIN)
    empty = Account.create().address  # a fresh anvil or a reset chain: no code there
    # The ledger's address holds a contract, but not a ProductPassport.
    known = {"ProductPassport": first["CustodyLedger"], "CustodyLedger": empty}

    second = chain.deploy_contracts(node.w3, node.account, known, admin=ADMIN)

    assert set(second) == set(DEPLOYED_NAMES)
    assert second["ProductPassport"] not in (first["ProductPassport"], first["CustodyLedger"])
    assert second["CustodyLedger"] not in (first["CustodyLedger"], empty)
    for name, address in second.items():
        assert is_same_contract(
            node.w3.eth.get_code(address), load_artifact(name).deployed_bytecode
        )
    # The escrow takes the passport's and the ledger's addresses: new ones, a new escrow.
    assert second["TradeEscrow"] != first["TradeEscrow"]
    assert chain.escrow_bound_to(
        node.w3, second["TradeEscrow"], second["ProductPassport"], second["CustodyLedger"]
    )


def test_deploy_contracts_adds_the_escrow_to_the_two_it_uses(node: Node) -> None:
    first = chain.deploy_contracts(node.w3, node.account, {}, admin=ADMIN)
    known = {name: first[name] for name in ("ProductPassport", "CustodyLedger")}

    second = chain.deploy_contracts(node.w3, node.account, known, admin=ADMIN)

    assert {name: second[name] for name in known} == known  # not redeployed
    assert second["TradeEscrow"] != first["TradeEscrow"]
    assert chain.escrow_bound_to(node.w3, second["TradeEscrow"], *known.values())


def test_deploy_contracts_names_bad_input(node: Node) -> None:
    with pytest.raises(ValueError, match="not an Ethereum address"):
        chain.deploy_contracts(node.w3, node.account, {"CustodyLedger": "0x1234"}, admin=ADMIN)
    with pytest.raises(ValueError, match="unknown contract 'Nope'"):
        chain.deploy_contracts(
            node.w3, node.account, {"Nope": Account.create().address}, admin=ADMIN
        )
    with pytest.raises(ValueError, match="admin is not an Ethereum address"):
        chain.deploy_contracts(node.w3, node.account, {}, admin="0x1234")


def test_shared_between_threads(node: Node) -> None:
    """The Flask threads read while the chain writer sends, through one Web3 object."""
    senders = [Account.create() for _ in range(3)]
    for sender in senders:
        chain.fund_for_development(node.w3, sender.address, ONE_ETHER)
    errors: list[BaseException] = []
    receipts: list[dict] = []
    stop = threading.Event()

    def write(sender: LocalAccount) -> None:
        try:
            for _ in range(4):
                own = Node(node.w3, sender, node.kind)
                tx_hash = send(own, {"to": sender.address, "value": 0, "gas": 21_000})
                receipts.append(node.w3.eth.wait_for_transaction_receipt(tx_hash))
        except BaseException as exc:
            errors.append(exc)

    def read() -> None:
        try:
            while not stop.is_set():
                chain.chain_status(node.w3)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(s,)) for s in senders]
    reader = threading.Thread(target=read)
    reader.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    stop.set()
    reader.join(timeout=10)

    assert errors == []
    assert len(receipts) == 12
    assert all(receipt["status"] == 1 for receipt in receipts)
    for sender in senders:
        assert node.w3.eth.get_transaction_count(sender.address) == 4


def test_connect_names_a_bad_url(tmp_path) -> None:
    with pytest.raises(chain.ChainConfigError, match="chain URL must look like"):
        chain.connect("localhost:8545", tmp_path)


def test_connect_to_a_node_that_is_down(tmp_path) -> None:
    with pytest.raises(chain.ChainUnavailable, match="does not answer"):
        chain.connect(f"http://127.0.0.1:{free_port()}", tmp_path)


def test_embedded_chain_is_one_process_at_a_time(tmp_path) -> None:
    w3 = chain.connect(None, tmp_path)
    try:
        assert chain.connect(None, tmp_path).provider is w3.provider  # shared in one process
        with pytest.raises(chain.ChainStateLocked, match="open in another process"):
            EmbeddedProvider(tmp_path)
    finally:
        chain.close(w3)
    reopened = chain.connect(None, tmp_path)
    assert reopened.provider is not w3.provider
    chain.close(reopened)


def test_embedded_block_time_tracks_the_clock_after_many_quick_blocks(tmp_path) -> None:
    """A burst of blocks once ran the chain's clock a second ahead per block, so a consent
    signed with a deadline one minute ahead had expired on-chain before it was relayed."""
    w3 = chain.connect(None, tmp_path)
    try:
        node = Node(w3, chain.dev_accounts()[1], "embedded")
        addresses = chain.deploy_contracts(w3, node.account, {}, admin=ADMIN)
        passport = chain.contract(w3, "ProductPassport", addresses["ProductPassport"])
        owner, buyer = Account.create(), Account.create()
        token_id = passport_id("09506000134352", "SN-1")
        supplier = passport.functions.setSupplier("09506000134352", owner.address)
        mint = passport.functions.mintWithConsent(
            owner.address,
            "09506000134352",
            "SN-1",
            bytes(32),
            2**32,
            eip712.sign_mint_consent(
                owner.key,
                chain_id=w3.eth.chain_id,
                passport=passport.address,
                to=owner.address,
                token_id=token_id,
                tag_commitment=bytes(32),
                nonce=0,
                deadline=2**32,
            ),
        )
        for call in (supplier, mint):
            receipt = w3.eth.wait_for_transaction_receipt(
                send(node, {"to": passport.address, "data": call._encode_transaction_data()})
            )
            assert receipt.status == 1
        first = w3.eth.block_number + 1
        hashes = [send(node, {"to": node.account.address, "gas": 21_000}) for _ in range(100)]
        w3.eth.wait_for_transaction_receipt(hashes[-1])
        assert w3.eth.block_number - first + 1 == 100  # still one block per transaction
        times = [w3.eth.get_block(n)["timestamp"] for n in range(first, first + 100)]
        assert times == sorted(times)  # never back in time
        assert abs(times[-1] - time.time()) <= 2

        deadline = int(time.time()) + 60
        signature = eip712.sign_transfer_consent(
            owner.key,
            chain_id=w3.eth.chain_id,
            passport=passport.address,
            to=buyer.address,
            token_id=token_id,
            nonce=1,  # the owner, as the supplier, spent nonce 0 consenting to the mint
            deadline=deadline,
        )
        relay = passport.functions.transferWithConsent(
            owner.address, buyer.address, token_id, deadline, signature
        )
        receipt = w3.eth.wait_for_transaction_receipt(
            send(node, {"to": passport.address, "data": relay._encode_transaction_data()})
        )
        assert receipt["status"] == 1
        assert passport.functions.ownerOf(token_id).call() == buyer.address
    finally:
        chain.close(w3)


def test_embedded_chain_reopens_blocks_that_share_a_second(tmp_path) -> None:
    w3 = chain.connect(None, tmp_path)
    node = Node(w3, chain.dev_accounts()[2], "embedded")
    hashes = [send(node, {"to": node.account.address, "gas": 21_000}) for _ in range(20)]
    numbers = [w3.eth.wait_for_transaction_receipt(h)["blockNumber"] for h in hashes]
    assert len(set(numbers)) == 20
    times = {w3.eth.get_block(n)["timestamp"] for n in numbers}
    assert len(times) < len(numbers)  # twenty blocks cannot take twenty seconds
    chain.close(w3)
    reopened = chain.connect(None, tmp_path)
    try:
        node = Node(reopened, node.account, "embedded")
        receipt = reopened.eth.wait_for_transaction_receipt(
            send(node, {"to": node.account.address, "gas": 21_000})
        )
        assert receipt["blockNumber"] == numbers[-1] + 1
        assert reopened.eth.get_block("latest")["timestamp"] >= max(times)
    finally:
        chain.close(reopened)


def test_embedded_chain_seals_a_full_pending_block_to_make_room(tmp_path) -> None:
    provider = EmbeddedProvider(tmp_path, automine=False)
    w3 = Web3(provider)
    try:
        node = Node(w3, chain.dev_accounts()[3], "embedded")
        first = send(node, {"to": node.account.address, "gas": 21_000})
        with pytest.raises(TransactionNotFound):
            w3.eth.get_transaction_receipt(first)  # waits in the pending block
        block_gas = w3.eth.get_block("latest")["gasLimit"]
        second = send(node, {"to": node.account.address, "gas": block_gas})
        assert w3.eth.get_transaction_receipt(first)["status"] == 1
        with pytest.raises(TransactionNotFound):
            w3.eth.get_transaction_receipt(second)
    finally:
        provider.close()
