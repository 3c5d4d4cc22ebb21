"""CustodyLedger on the in-process EVM (eth-tester), deployed from the committed artifact."""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import partial
from types import SimpleNamespace

import pytest
from eth_hash.auto import keccak
from web3.logs import DISCARD

from contracts_abi import load_artifact
from contracts_abi.merkle import StandardMerkleTree, custody_leaf, custody_tree, process_proof
from tests.integration import contracts_support
from tests.integration.contracts_support import deploy, rolled_back, transact

ARTIFACT = load_artifact("CustodyLedger")
OPERATOR_ROLE = keccak(b"OPERATOR_ROLE")
ADMIN_ROLE = b"\x00" * 32
ZERO_ADDRESS = "0x" + "00" * 20
assert_reverts = partial(contracts_support.assert_reverts, ARTIFACT)


@pytest.fixture(scope="module")
def deployed() -> SimpleNamespace:
    w3, ledger = deploy(ARTIFACT)
    admin, operator, org, other_org, stranger, device, device2 = w3.eth.accounts[:7]
    return SimpleNamespace(
        w3=w3,
        ledger=ledger,
        admin=admin,
        operator=operator,
        org=org,
        other_org=other_org,
        stranger=stranger,
        device=device,
        device2=device2,
    )


def node_proof(tree: StandardMerkleTree, node: int) -> list[bytes]:
    """Sibling hashes from tree node `node` (leaf or inner) up to the root."""
    proof = []
    while node > 0:
        proof.append(tree.tree[node + 1 if node % 2 else node - 1])
        node = (node - 1) // 2
    return proof


@pytest.fixture
def chain(deployed: SimpleNamespace) -> Iterator[SimpleNamespace]:
    """The module's deployment, rolled back after each test so that tests stay independent."""
    with rolled_back(deployed.w3):
        yield deployed


def test_admin_and_operator_are_separate(chain: SimpleNamespace) -> None:
    ledger = chain.ledger
    assert ledger.functions.OPERATOR_ROLE().call() == OPERATOR_ROLE
    assert ledger.functions.hasRole(ADMIN_ROLE, chain.admin).call()
    assert not ledger.functions.hasRole(OPERATOR_ROLE, chain.admin).call()
    assert ledger.functions.hasRole(OPERATOR_ROLE, chain.operator).call()
    assert not ledger.functions.hasRole(ADMIN_ROLE, chain.operator).call()
    assert not ledger.functions.hasRole(OPERATOR_ROLE, chain.stranger).call()
    assert ledger.functions.getRoleAdmin(OPERATOR_ROLE).call() == ADMIN_ROLE


def test_admin_cannot_anchor(chain: SimpleNamespace) -> None:
    call = chain.ledger.functions.anchor(keccak(b"root"), 1, keccak(b"batch"))
    assert_reverts(
        lambda: call.transact({"from": chain.admin}),
        "AccessControlUnauthorizedAccount",
        chain.admin,
        OPERATOR_ROLE,
    )


def test_admin_grants_and_revokes_an_operator(chain: SimpleNamespace) -> None:
    ledger = chain.ledger
    grant = ledger.functions.grantRole(OPERATOR_ROLE, chain.stranger)
    receipt = transact(chain, grant, sender=chain.admin)
    (event,) = ledger.events.RoleGranted().process_receipt(receipt, errors=DISCARD)
    assert (event.args.account, event.args.sender) == (chain.stranger, chain.admin)
    transact(chain, ledger.functions.anchor(keccak(b"root"), 1, keccak(b"b")), chain.stranger)
    transact(chain, ledger.functions.revokeRole(OPERATOR_ROLE, chain.stranger), chain.admin)
    call = ledger.functions.anchor(keccak(b"root 2"), 1, keccak(b"b2"))
    assert_reverts(
        lambda: call.transact({"from": chain.stranger}),
        "AccessControlUnauthorizedAccount",
        chain.stranger,
        OPERATOR_ROLE,
    )


def test_operator_cannot_grant_the_operator_role(chain: SimpleNamespace) -> None:
    call = chain.ledger.functions.grantRole(OPERATOR_ROLE, chain.stranger)
    assert_reverts(
        lambda: call.transact({"from": chain.operator}),
        "AccessControlUnauthorizedAccount",
        chain.operator,
        ADMIN_ROLE,
    )
    assert not chain.ledger.functions.hasRole(OPERATOR_ROLE, chain.stranger).call()


@pytest.mark.parametrize("which", ["admin", "operator"])
def test_constructor_rejects_zero_address(chain: SimpleNamespace, which: str) -> None:
    admin, operator = (
        (ZERO_ADDRESS, chain.operator) if which == "admin" else (chain.admin, ZERO_ADDRESS)
    )
    factory = chain.w3.eth.contract(abi=ARTIFACT.abi, bytecode=ARTIFACT.bytecode)
    call = factory.constructor(admin, operator)
    assert_reverts(lambda: call.transact({"from": chain.operator}), "LedgerZeroAddress")


def test_register_device(chain: SimpleNamespace) -> None:
    ledger = chain.ledger
    assert ledger.functions.deviceOrganization(chain.device).call() == ZERO_ADDRESS
    assert not ledger.functions.isDeviceActive(chain.device).call()
    receipt = transact(chain, ledger.functions.registerDevice(chain.org, chain.device))
    (event,) = ledger.events.DeviceRegistered().process_receipt(receipt, errors=DISCARD)
    assert event.args.device == chain.device
    assert event.args.organization == chain.org
    assert ledger.functions.deviceOrganization(chain.device).call() == chain.org
    assert ledger.functions.isDeviceActive(chain.device).call()


def test_register_device_needs_operator(chain: SimpleNamespace) -> None:
    call = chain.ledger.functions.registerDevice(chain.org, chain.device)
    assert_reverts(
        lambda: call.transact({"from": chain.stranger}),
        "AccessControlUnauthorizedAccount",
        chain.stranger,
        OPERATOR_ROLE,
    )


def test_register_device_twice_reverts(chain: SimpleNamespace) -> None:
    transact(chain, chain.ledger.functions.registerDevice(chain.org, chain.device))
    call = chain.ledger.functions.registerDevice(chain.other_org, chain.device)
    assert_reverts(
        lambda: call.transact({"from": chain.operator}),
        "LedgerDeviceAlreadyRegistered",
        chain.device,
        chain.org,
    )


@pytest.mark.parametrize("which", ["organization", "device"])
def test_register_device_rejects_zero_address(chain: SimpleNamespace, which: str) -> None:
    org, device = (
        (ZERO_ADDRESS, chain.device) if which == "organization" else (chain.org, ZERO_ADDRESS)
    )
    call = chain.ledger.functions.registerDevice(org, device)
    assert_reverts(lambda: call.transact({"from": chain.operator}), "LedgerZeroAddress")


def test_revoke_device(chain: SimpleNamespace) -> None:
    ledger = chain.ledger
    transact(chain, ledger.functions.registerDevice(chain.org, chain.device))
    transact(chain, ledger.functions.registerDevice(chain.org, chain.device2))
    receipt = transact(chain, ledger.functions.revokeDevice(chain.device))
    (event,) = ledger.events.DeviceRevoked().process_receipt(receipt, errors=DISCARD)
    assert (event.args.device, event.args.organization) == (chain.device, chain.org)
    assert not ledger.functions.isDeviceActive(chain.device).call()
    # The registry still says whose device it was, to judge events signed before revocation.
    assert ledger.functions.deviceOrganization(chain.device).call() == chain.org
    assert ledger.functions.isDeviceActive(chain.device2).call()


def test_revoked_device_cannot_be_revoked_or_registered_again(chain: SimpleNamespace) -> None:
    ledger = chain.ledger
    transact(chain, ledger.functions.registerDevice(chain.org, chain.device))
    transact(chain, ledger.functions.revokeDevice(chain.device))
    revoke = ledger.functions.revokeDevice(chain.device)
    assert_reverts(
        lambda: revoke.transact({"from": chain.operator}), "LedgerDeviceRevoked", chain.device
    )
    register = ledger.functions.registerDevice(chain.org, chain.device)
    assert_reverts(
        lambda: register.transact({"from": chain.operator}),
        "LedgerDeviceAlreadyRegistered",
        chain.device,
        chain.org,
    )


def test_revoke_unknown_device_reverts(chain: SimpleNamespace) -> None:
    call = chain.ledger.functions.revokeDevice(chain.device)
    assert_reverts(
        lambda: call.transact({"from": chain.operator}), "LedgerUnknownDevice", chain.device
    )


def test_revoke_device_needs_operator(chain: SimpleNamespace) -> None:
    transact(chain, chain.ledger.functions.registerDevice(chain.org, chain.device))
    call = chain.ledger.functions.revokeDevice(chain.device)
    assert_reverts(
        lambda: call.transact({"from": chain.org}),
        "AccessControlUnauthorizedAccount",
        chain.org,
        OPERATOR_ROLE,
    )
    assert chain.ledger.functions.isDeviceActive(chain.device).call()


def test_anchor_records_root_and_batch(chain: SimpleNamespace) -> None:
    ledger = chain.ledger
    root, batch = keccak(b"root"), keccak(b"batch-1")
    assert ledger.functions.anchoredAt(root).call() == 0
    assert ledger.functions.batchRoot(batch).call() == b"\x00" * 32
    receipt = transact(chain, ledger.functions.anchor(root, 1000, batch))
    timestamp = chain.w3.eth.get_block(receipt.blockNumber).timestamp
    (event,) = ledger.events.RootAnchored().process_receipt(receipt, errors=DISCARD)
    assert dict(event.args) == {
        "root": root,
        "batchId": batch,
        "count": 1000,
        "timestamp": timestamp,
    }
    assert ledger.functions.anchoredAt(root).call() == timestamp
    assert ledger.functions.batchRoot(batch).call() == root
    assert receipt.gasUsed < 100_000


def test_anchor_needs_operator(chain: SimpleNamespace) -> None:
    call = chain.ledger.functions.anchor(keccak(b"root"), 1, keccak(b"batch"))
    assert_reverts(
        lambda: call.transact({"from": chain.stranger}),
        "AccessControlUnauthorizedAccount",
        chain.stranger,
        OPERATOR_ROLE,
    )


def test_root_anchors_once(chain: SimpleNamespace) -> None:
    root = keccak(b"root")
    transact(chain, chain.ledger.functions.anchor(root, 3, keccak(b"batch-1")))
    call = chain.ledger.functions.anchor(root, 3, keccak(b"batch-2"))
    assert_reverts(
        lambda: call.transact({"from": chain.operator}), "LedgerRootAlreadyAnchored", root
    )


def test_batch_anchors_once(chain: SimpleNamespace) -> None:
    root, batch = keccak(b"root"), keccak(b"batch-1")
    transact(chain, chain.ledger.functions.anchor(root, 3, batch))
    call = chain.ledger.functions.anchor(keccak(b"other root"), 3, batch)
    assert_reverts(
        lambda: call.transact({"from": chain.operator}), "LedgerBatchAlreadyAnchored", batch, root
    )


@pytest.mark.parametrize(("root", "count"), [(b"\x00" * 32, 5), (keccak(b"root"), 0)])
def test_anchor_rejects_empty_batch(chain: SimpleNamespace, root: bytes, count: int) -> None:
    call = chain.ledger.functions.anchor(root, count, keccak(b"batch"))
    assert_reverts(
        lambda: call.transact({"from": chain.operator}), "LedgerInvalidBatch", root, count
    )


def salted_events(count: int) -> list[list[bytes]]:
    """(event digest, salt) pairs, each salt random as the API draws it."""
    return [[keccak(b"event %d" % i), os.urandom(32)] for i in range(count)]


def anchored_tree(chain: SimpleNamespace, events: list[list[bytes]]) -> StandardMerkleTree:
    tree = custody_tree(events)
    transact(chain, chain.ledger.functions.anchor(tree.root, len(events), os.urandom(32)))
    return tree


def test_verify_event_against_anchored_root(chain: SimpleNamespace) -> None:
    events = salted_events(7)
    tree = anchored_tree(chain, events)
    verify = chain.ledger.functions.verifyEvent
    for i, (digest, salt) in enumerate(events):
        assert verify(tree.root, digest, salt, tree.proof(i)).call()
    # An event that is not in the batch, and a proof for another event, both fail.
    digest, salt = events[0]
    assert not verify(tree.root, keccak(b"forged"), salt, tree.proof(0)).call()
    assert not verify(tree.root, digest, salt, tree.proof(1)).call()


def test_verify_event_refuses_a_wrong_salt(chain: SimpleNamespace) -> None:
    events = salted_events(4)
    tree = anchored_tree(chain, events)
    digest, salt = events[2]
    verify = chain.ledger.functions.verifyEvent
    assert verify(tree.root, digest, salt, tree.proof(2)).call()
    for wrong in (bytes(32), os.urandom(32), events[3][1], bytes([salt[0] ^ 1]) + salt[1:]):
        assert not verify(tree.root, digest, wrong, tree.proof(2)).call()


def test_verify_event_refuses_an_inner_node(chain: SimpleNamespace) -> None:
    """An inner node with the rest of a proof once passed for an event; nothing it splits into
    (its two children as digest and salt, or the node itself as either) passes now."""
    events = salted_events(8)
    tree = anchored_tree(chain, events)
    verify = chain.ledger.functions.verifyEvent
    # 8 leaves fill nodes 7..14; node 3 is the parent of leaves 7 and 8, node 1 of 3 and 4.
    for node in (3, 4, 1, 2):
        proof = node_proof(tree, node)
        assert process_proof(tree.tree[node], proof) == tree.root  # the old forgery's input
        left, right = tree.tree[2 * node + 1], tree.tree[2 * node + 2]
        for digest, salt in ((left, right), (right, left), (tree.tree[node], bytes(32))):
            assert not verify(tree.root, digest, salt, proof).call(), node
        for sibling_node in (2 * node + 1, 2 * node + 2):
            sibling_proof = node_proof(tree, sibling_node)
            assert not verify(tree.root, left, right, sibling_proof).call(), node


def test_verify_event_refuses_the_root_with_an_empty_proof(chain: SimpleNamespace) -> None:
    events = salted_events(5)
    tree = anchored_tree(chain, events)
    verify = chain.ledger.functions.verifyEvent
    assert process_proof(tree.root, []) == tree.root  # the old forgery's input
    assert not verify(tree.root, tree.root, bytes(32), []).call()
    assert not verify(tree.root, tree.tree[1], tree.tree[2], []).call()
    assert not verify(tree.root, tree.tree[2], tree.tree[1], []).call()


def test_a_single_event_batch_verifies_with_an_empty_proof(chain: SimpleNamespace) -> None:
    (event,) = events = salted_events(1)
    tree = anchored_tree(chain, events)
    assert tree.root == custody_leaf(*event)
    assert chain.ledger.functions.verifyEvent(tree.root, *event, []).call()
    assert not chain.ledger.functions.verifyEvent(tree.root, event[0], bytes(32), []).call()


def test_verify_event_unknown_root_reverts(chain: SimpleNamespace) -> None:
    events = salted_events(2)
    tree = custody_tree(events)
    call = chain.ledger.functions.verifyEvent(tree.root, *events[0], tree.proof(0))
    assert_reverts(call.call, "LedgerUnknownRoot", tree.root)


def test_custody_leaf_matches_python(chain: SimpleNamespace) -> None:
    digest, salt = keccak(b"custody event"), os.urandom(32)
    assert chain.ledger.functions.custodyLeaf(digest, salt).call() == custody_leaf(digest, salt)


def test_verify_event_gas(chain: SimpleNamespace) -> None:
    """Checking a proof in a batch of 1,000 events (10 siblings), as a transaction would."""
    events = salted_events(1000)
    tree = anchored_tree(chain, events)
    gas = chain.ledger.functions.verifyEvent(tree.root, *events[0], tree.proof(0)).estimate_gas()
    assert gas < 50_000  # 21,000 of it is the transaction's own


def test_supports_access_control_interface(chain: SimpleNamespace) -> None:
    supports = chain.ledger.functions.supportsInterface
    assert supports(bytes.fromhex("7965db0b")).call()  # IAccessControl
    assert supports(bytes.fromhex("01ffc9a7")).call()  # IERC165
    assert not supports(bytes.fromhex("80ac58cd")).call()
