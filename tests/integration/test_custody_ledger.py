"""CustodyLedger on the in-process EVM (eth-tester), deployed from the committed artifact."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from types import SimpleNamespace

import pytest
from eth_hash.auto import keccak
from web3.logs import DISCARD

from contracts_abi import load_artifact
from contracts_abi.merkle import StandardMerkleTree, custody_leaf
from tests.integration import contracts_support
from tests.integration.contracts_support import deploy, rolled_back, transact

ARTIFACT = load_artifact("CustodyLedger")
OPERATOR_ROLE = keccak(b"OPERATOR_ROLE")
ZERO_ADDRESS = "0x" + "00" * 20
assert_reverts = partial(contracts_support.assert_reverts, ARTIFACT)


@pytest.fixture(scope="module")
def deployed() -> SimpleNamespace:
    w3, ledger = deploy(ARTIFACT)
    admin, org, other_org, stranger, device, device2 = w3.eth.accounts[:6]
    return SimpleNamespace(
        w3=w3,
        ledger=ledger,
        admin=admin,
        org=org,
        other_org=other_org,
        stranger=stranger,
        device=device,
        device2=device2,
    )


@pytest.fixture
def chain(deployed: SimpleNamespace) -> Iterator[SimpleNamespace]:
    """The module's deployment, rolled back after each test so that tests stay independent."""
    with rolled_back(deployed.w3):
        yield deployed


def test_admin_holds_both_roles(chain: SimpleNamespace) -> None:
    ledger = chain.ledger
    assert ledger.functions.OPERATOR_ROLE().call() == OPERATOR_ROLE
    assert ledger.functions.hasRole(b"\x00" * 32, chain.admin).call()
    assert ledger.functions.hasRole(OPERATOR_ROLE, chain.admin).call()
    assert not ledger.functions.hasRole(OPERATOR_ROLE, chain.stranger).call()


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
        lambda: call.transact({"from": chain.admin}),
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
    assert_reverts(lambda: call.transact({"from": chain.admin}), "LedgerZeroAddress")


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
        lambda: revoke.transact({"from": chain.admin}), "LedgerDeviceRevoked", chain.device
    )
    register = ledger.functions.registerDevice(chain.org, chain.device)
    assert_reverts(
        lambda: register.transact({"from": chain.admin}),
        "LedgerDeviceAlreadyRegistered",
        chain.device,
        chain.org,
    )


def test_revoke_unknown_device_reverts(chain: SimpleNamespace) -> None:
    call = chain.ledger.functions.revokeDevice(chain.device)
    assert_reverts(
        lambda: call.transact({"from": chain.admin}), "LedgerUnknownDevice", chain.device
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
    assert_reverts(lambda: call.transact({"from": chain.admin}), "LedgerRootAlreadyAnchored", root)


def test_batch_anchors_once(chain: SimpleNamespace) -> None:
    root, batch = keccak(b"root"), keccak(b"batch-1")
    transact(chain, chain.ledger.functions.anchor(root, 3, batch))
    call = chain.ledger.functions.anchor(keccak(b"other root"), 3, batch)
    assert_reverts(
        lambda: call.transact({"from": chain.admin}), "LedgerBatchAlreadyAnchored", batch, root
    )


@pytest.mark.parametrize(("root", "count"), [(b"\x00" * 32, 5), (keccak(b"root"), 0)])
def test_anchor_rejects_empty_batch(chain: SimpleNamespace, root: bytes, count: int) -> None:
    call = chain.ledger.functions.anchor(root, count, keccak(b"batch"))
    assert_reverts(lambda: call.transact({"from": chain.admin}), "LedgerInvalidBatch", root, count)


def test_verify_event_against_anchored_root(chain: SimpleNamespace) -> None:
    digests = [keccak(b"event %d" % i) for i in range(7)]
    tree = StandardMerkleTree.of([[d] for d in digests], ["bytes32"])
    transact(chain, chain.ledger.functions.anchor(tree.root, 7, keccak(b"batch")))
    verify = chain.ledger.functions.verifyEvent
    for i, digest in enumerate(digests):
        assert verify(tree.root, custody_leaf(digest), tree.proof(i)).call()
    # A leaf that is not in the batch, and a proof for the wrong leaf, both fail.
    assert not verify(tree.root, custody_leaf(keccak(b"forged")), tree.proof(0)).call()
    assert not verify(tree.root, custody_leaf(digests[0]), tree.proof(1)).call()


def test_verify_event_unknown_root_reverts(chain: SimpleNamespace) -> None:
    tree = StandardMerkleTree.of([[keccak(b"a")], [keccak(b"b")]], ["bytes32"])
    call = chain.ledger.functions.verifyEvent(tree.root, tree.leaf_hash(0), tree.proof(0))
    assert_reverts(call.call, "LedgerUnknownRoot", tree.root)


def test_custody_leaf_matches_python(chain: SimpleNamespace) -> None:
    digest = keccak(b"custody event")
    assert chain.ledger.functions.custodyLeaf(digest).call() == custody_leaf(digest)


def test_supports_access_control_interface(chain: SimpleNamespace) -> None:
    supports = chain.ledger.functions.supportsInterface
    assert supports(bytes.fromhex("7965db0b")).call()  # IAccessControl
    assert supports(bytes.fromhex("01ffc9a7")).call()  # IERC165
    assert not supports(bytes.fromhex("80ac58cd")).call()
