"""ProductPassport on the in-process EVM (eth-tester), deployed from the committed artifact."""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import partial
from types import SimpleNamespace

import pytest
from eth_hash.auto import keccak
from web3.logs import DISCARD

from contracts_abi import eip712, load_artifact
from contracts_abi.passport import InvalidItemId, passport_id, tag_commitment
from tests.integration import contracts_support
from tests.integration.contracts_support import deploy, revert_data, rolled_back, transact

ARTIFACT = load_artifact("ProductPassport")
OPERATOR_ROLE = keccak(b"OPERATOR_ROLE")
ADMIN_ROLE = b"\x00" * 32
ZERO_ADDRESS = "0x" + "00" * 20
GTIN = "09506000134352"
OTHER_GTIN = "04006381333931"
TAG = tag_commitment("ntag21x", bytes.fromhex("04a1b2c3d4e5f6"))
assert_reverts = partial(contracts_support.assert_reverts, ARTIFACT)


@pytest.fixture(scope="module")
def deployed() -> SimpleNamespace:
    w3, passport = deploy(ARTIFACT)
    tester = w3.provider.ethereum_tester
    admin, operator, alice, bob, carol, supplier = w3.eth.accounts[:6]
    keys = {
        str(key.public_key.to_checksum_address()): key.to_bytes()
        for key in tester.backend.account_keys
    }
    return SimpleNamespace(
        w3=w3,
        tester=tester,
        passport=passport,
        admin=admin,
        operator=operator,
        alice=alice,
        bob=bob,
        carol=carol,
        supplier=supplier,
        keys=keys,
    )


@pytest.fixture
def chain(deployed: SimpleNamespace) -> Iterator[SimpleNamespace]:
    """The module's deployment, rolled back after each test so that tests stay independent.

    `supplier` is recorded as the supplier of GTIN.
    """
    with rolled_back(deployed.w3):
        transact(deployed, deployed.passport.functions.setSupplier(GTIN, deployed.supplier))
        yield deployed


def mint_consent(
    chain: SimpleNamespace,
    to: str,
    serial: str = "SN-0001",
    *,
    signer: str | None = None,
    deadline: int | None = None,
    tag: bytes = TAG,
) -> tuple[int, bytes]:
    """(deadline, signature) of the supplier's (or `signer`'s) MintConsent for `to`."""
    signer = signer or chain.supplier
    deadline = latest_timestamp(chain) + 3600 if deadline is None else deadline
    signature = eip712.sign_mint_consent(
        chain.keys[signer],
        chain_id=chain.w3.eth.chain_id,
        passport=chain.passport.address,
        to=to,
        token_id=passport_id(GTIN, serial),
        tag_commitment=tag,
        nonce=chain.passport.functions.nonces(signer).call(),
        deadline=deadline,
    )
    return deadline, signature


def mint_call(chain: SimpleNamespace, to: str, serial: str, deadline: int, signature: bytes):
    return chain.passport.functions.mintWithConsent(to, GTIN, serial, TAG, deadline, signature)


def mint(chain: SimpleNamespace, to: str, serial: str = "SN-0001") -> int:
    """Mint the passport of (GTIN, serial) to `to` under the supplier's consent."""
    deadline, signature = mint_consent(chain, to, serial)
    transact(chain, mint_call(chain, to, serial, deadline, signature))
    return passport_id(GTIN, serial)


def latest_timestamp(chain: SimpleNamespace) -> int:
    return chain.w3.eth.get_block("latest").timestamp


def consent(
    chain: SimpleNamespace,
    signer: str,
    to: str,
    token_id: int,
    *,
    nonce: int | None = None,
    deadline: int | None = None,
    chain_id: int | None = None,
    passport: str | None = None,
) -> tuple[int, bytes]:
    """(deadline, signature) of `signer`'s TransferConsent for `token_id` to `to`."""
    owner_nonce = chain.passport.functions.nonces(signer).call()
    deadline = latest_timestamp(chain) + 3600 if deadline is None else deadline
    signature = eip712.sign_transfer_consent(
        chain.keys[signer],
        chain_id=chain.w3.eth.chain_id if chain_id is None else chain_id,
        passport=chain.passport.address if passport is None else passport,
        to=to,
        token_id=token_id,
        nonce=owner_nonce if nonce is None else nonce,
        deadline=deadline,
    )
    return deadline, signature


def relay(chain: SimpleNamespace, owner: str, to: str, token_id: int, deadline: int, sig: bytes):
    return chain.passport.functions.transferWithConsent(owner, to, token_id, deadline, sig)


def test_metadata_roles_and_interfaces(chain: SimpleNamespace) -> None:
    passport = chain.passport
    assert passport.functions.name().call() == "Provenance Product Passport"
    assert passport.functions.symbol().call() == "PASS"
    assert passport.functions.hasRole(ADMIN_ROLE, chain.admin).call()
    assert not passport.functions.hasRole(OPERATOR_ROLE, chain.admin).call()
    assert passport.functions.hasRole(OPERATOR_ROLE, chain.operator).call()
    assert not passport.functions.hasRole(ADMIN_ROLE, chain.operator).call()
    assert not passport.functions.hasRole(OPERATOR_ROLE, chain.alice).call()
    for interface in ("80ac58cd", "5b5e139f", "7965db0b", "01ffc9a7"):
        assert passport.functions.supportsInterface(bytes.fromhex(interface)).call(), interface


def test_admin_grants_and_revokes_an_operator(chain: SimpleNamespace) -> None:
    passport = chain.passport
    deadline, signature = mint_consent(chain, chain.carol, "SN-0002")
    call = mint_call(chain, chain.carol, "SN-0002", deadline, signature)
    assert_reverts(
        lambda: call.transact({"from": chain.admin}),
        "AccessControlUnauthorizedAccount",
        chain.admin,
        OPERATOR_ROLE,
    )
    transact(chain, passport.functions.grantRole(OPERATOR_ROLE, chain.carol), chain.admin)
    transact(chain, call, sender=chain.carol)
    transact(chain, passport.functions.revokeRole(OPERATOR_ROLE, chain.operator), chain.admin)
    call = passport.functions.setSupplier(OTHER_GTIN, chain.alice)
    assert_reverts(
        lambda: call.transact({"from": chain.operator}),
        "AccessControlUnauthorizedAccount",
        chain.operator,
        OPERATOR_ROLE,
    )


def test_operator_cannot_grant_the_operator_role(chain: SimpleNamespace) -> None:
    call = chain.passport.functions.grantRole(OPERATOR_ROLE, chain.alice)
    assert_reverts(
        lambda: call.transact({"from": chain.operator}),
        "AccessControlUnauthorizedAccount",
        chain.operator,
        ADMIN_ROLE,
    )


@pytest.mark.parametrize("which", ["admin", "operator"])
def test_constructor_rejects_zero_address(chain: SimpleNamespace, which: str) -> None:
    admin, operator = (
        (ZERO_ADDRESS, chain.operator) if which == "admin" else (chain.admin, ZERO_ADDRESS)
    )
    factory = chain.w3.eth.contract(abi=ARTIFACT.abi, bytecode=ARTIFACT.bytecode)
    call = factory.constructor(admin, operator)
    assert_reverts(lambda: call.transact({"from": chain.operator}), "PassportZeroAddress")


def test_eip712_domain_matches_python(chain: SimpleNamespace) -> None:
    domain = chain.passport.functions.eip712Domain().call()
    assert domain[1:5] == [
        eip712.PASSPORT_DOMAIN_NAME,
        eip712.PASSPORT_DOMAIN_VERSION,
        chain.w3.eth.chain_id,
        chain.passport.address,
    ]
    fields = {
        "to": chain.bob,
        "token_id": passport_id(GTIN, "X"),
        "nonce": 7,
        "deadline": 1_900_000_000,
    }
    onchain = chain.passport.functions.transferConsentDigest(
        fields["to"], fields["token_id"], fields["nonce"], fields["deadline"]
    ).call()
    python = eip712.transfer_consent_digest(
        chain_id=chain.w3.eth.chain_id, passport=chain.passport.address, **fields
    )
    assert onchain == python


@pytest.mark.parametrize("serial", ["SN-0001", "é", "A" * 20, "!%-./_:;<=>?"])
def test_passport_id_matches_python(chain: SimpleNamespace, serial: str) -> None:
    assert chain.passport.functions.passportId(GTIN, serial).call() == passport_id(GTIN, serial)


@pytest.mark.parametrize(
    ("gtin", "serial"),
    [
        ("9506000134352", "SN"),  # 13 digits
        ("095060001343520", "SN"),  # 15 digits
        ("0950600013435A", "SN"),
        ("0950600013435٣", "SN"),  # a non-ASCII digit
        (GTIN, ""),
        (GTIN, "A" * 21),
        (GTIN, "é" * 11),  # 22 bytes
    ],
)
def test_invalid_item_id_rejected_on_both_sides(
    chain: SimpleNamespace, gtin: str, serial: str
) -> None:
    with pytest.raises(InvalidItemId):
        passport_id(gtin, serial)
    call = chain.passport.functions.passportId(gtin, serial)
    assert_reverts(call.call, "PassportInvalidItemId", gtin, serial)


def test_mint_with_consent_goes_straight_to_the_first_owner(chain: SimpleNamespace) -> None:
    passport = chain.passport
    token_id = passport_id(GTIN, "SN-0001")
    supplier_balance = chain.w3.eth.get_balance(chain.supplier)
    deadline, signature = mint_consent(chain, chain.alice)
    call = mint_call(chain, chain.alice, "SN-0001", deadline, signature)
    assert call.call({"from": chain.operator}) == token_id
    receipt = transact(chain, call)
    (minted,) = passport.events.PassportMinted().process_receipt(receipt, errors=DISCARD)
    assert dict(minted.args) == {
        "tokenId": token_id,
        "to": chain.alice,
        "gtin": GTIN,
        "serial": "SN-0001",
        "tagCommitment": TAG,
    }
    (transfer,) = passport.events.Transfer().process_receipt(receipt, errors=DISCARD)
    assert (transfer.args["from"], transfer.args.to) == (ZERO_ADDRESS, chain.alice)
    assert passport.functions.ownerOf(token_id).call() == chain.alice
    assert passport.functions.balanceOf(chain.alice).call() == 1
    assert passport.functions.balanceOf(chain.supplier).call() == 0
    assert passport.functions.tagCommitmentOf(token_id).call() == TAG
    # The supplier's nonce is spent; the supplier only signed, the operator paid.
    assert passport.functions.nonces(chain.supplier).call() == 1
    assert chain.w3.eth.get_balance(chain.supplier) == supplier_balance


def test_mint_consent_digest_matches_python(chain: SimpleNamespace) -> None:
    fields = {
        "to": chain.bob,
        "token_id": passport_id(GTIN, "X"),
        "nonce": 3,
        "deadline": 1_900_000_000,
    }
    onchain = chain.passport.functions.mintConsentDigest(
        fields["to"], fields["token_id"], TAG, fields["nonce"], fields["deadline"]
    ).call()
    python = eip712.mint_consent_digest(
        chain_id=chain.w3.eth.chain_id,
        passport=chain.passport.address,
        tag_commitment=TAG,
        **fields,
    )
    assert onchain == python


def test_mint_needs_operator(chain: SimpleNamespace) -> None:
    deadline, signature = mint_consent(chain, chain.alice)
    call = mint_call(chain, chain.alice, "SN-0001", deadline, signature)
    assert_reverts(
        lambda: call.transact({"from": chain.alice}),
        "AccessControlUnauthorizedAccount",
        chain.alice,
        OPERATOR_ROLE,
    )


@pytest.mark.parametrize("signer", ["operator", "alice"])
def test_mint_consent_signed_by_other_than_the_supplier_reverts(
    chain: SimpleNamespace, signer: str
) -> None:
    """The operator alone (or the would-be owner) cannot mint: only the supplier consents."""
    address = getattr(chain, signer)
    deadline, signature = mint_consent(chain, chain.alice, signer=address)
    call = mint_call(chain, chain.alice, "SN-0001", deadline, signature)
    assert_reverts(
        lambda: call.transact({"from": chain.operator}),
        "PassportInvalidMintConsent",
        chain.supplier,
        passport_id(GTIN, "SN-0001"),
    )


def test_mint_consent_expired(chain: SimpleNamespace) -> None:
    deadline = latest_timestamp(chain) + 60
    _, signature = mint_consent(chain, chain.alice, deadline=deadline)
    chain.tester.time_travel(deadline + 1)
    call = mint_call(chain, chain.alice, "SN-0001", deadline, signature)
    data = revert_data(lambda: call.transact({"from": chain.operator}))
    name, (signed_deadline, timestamp) = ARTIFACT.decode_error(data)
    assert (name, signed_deadline) == ("PassportExpiredConsent", deadline)
    assert timestamp > deadline
    assert chain.passport.functions.nonces(chain.supplier).call() == 0


def test_mint_consent_replayed_reverts(chain: SimpleNamespace) -> None:
    deadline, signature = mint_consent(chain, chain.alice)
    token_id = passport_id(GTIN, "SN-0001")
    transact(chain, mint_call(chain, chain.alice, "SN-0001", deadline, signature))
    replay = mint_call(chain, chain.alice, "SN-0001", deadline, signature)
    assert_reverts(
        lambda: replay.transact({"from": chain.operator}), "PassportAlreadyMinted", token_id
    )
    # Even once the passport is gone from view, the spent nonce refuses the same consent: a
    # consent for another serial cannot be reused either.
    call = chain.passport.functions.mintWithConsent(
        chain.alice, GTIN, "SN-0002", TAG, deadline, signature
    )
    assert_reverts(
        lambda: call.transact({"from": chain.operator}),
        "PassportInvalidMintConsent",
        chain.supplier,
        passport_id(GTIN, "SN-0002"),
    )


@pytest.mark.parametrize("change", ["recipient", "tag commitment", "serial"])
def test_mint_consent_for_something_else_reverts(chain: SimpleNamespace, change: str) -> None:
    deadline, signature = mint_consent(chain, chain.alice)
    to, serial, tag = chain.alice, "SN-0001", TAG
    if change == "recipient":
        to = chain.bob  # the operator tries to mint to someone the supplier did not name
    elif change == "tag commitment":
        tag = keccak(b"another chip")
    else:
        serial = "SN-0002"
    call = chain.passport.functions.mintWithConsent(to, GTIN, serial, tag, deadline, signature)
    assert_reverts(
        lambda: call.transact({"from": chain.operator}),
        "PassportInvalidMintConsent",
        chain.supplier,
        passport_id(GTIN, serial),
    )
    assert chain.passport.functions.nonces(chain.supplier).call() == 0


def test_mint_to_the_zero_address_reverts(chain: SimpleNamespace) -> None:
    deadline, signature = mint_consent(chain, ZERO_ADDRESS)
    call = mint_call(chain, ZERO_ADDRESS, "SN-0001", deadline, signature)
    assert_reverts(lambda: call.transact({"from": chain.operator}), "PassportZeroAddress")


def test_mint_of_a_product_without_supplier_reverts(chain: SimpleNamespace) -> None:
    deadline, signature = mint_consent(chain, chain.alice)
    call = chain.passport.functions.mintWithConsent(
        chain.alice, OTHER_GTIN, "SN-0001", TAG, deadline, signature
    )
    # eth-tester's transact turns revert data with a string in it into text: use eth_call.
    assert_reverts(
        lambda: call.call({"from": chain.operator}), "PassportUnknownSupplier", OTHER_GTIN
    )


def test_supplier_is_set_once(chain: SimpleNamespace) -> None:
    passport = chain.passport
    assert passport.functions.supplierOf(GTIN).call() == chain.supplier
    assert passport.functions.supplierOf(OTHER_GTIN).call() == ZERO_ADDRESS
    call = passport.functions.setSupplier(GTIN, chain.operator)
    assert_reverts(
        lambda: call.call({"from": chain.operator}),
        "PassportSupplierAlreadySet",
        GTIN,
        chain.supplier,
    )
    receipt = transact(chain, passport.functions.setSupplier(OTHER_GTIN, chain.bob))
    (event,) = passport.events.SupplierSet().process_receipt(receipt, errors=DISCARD)
    assert dict(event.args) == {"gtin": OTHER_GTIN, "supplier": chain.bob}
    for gtin, supplier, error, args in (
        ("0950600013435", chain.bob, "PassportInvalidItemId", ("0950600013435", "")),
        ("04012345678901", ZERO_ADDRESS, "PassportZeroAddress", ()),
    ):
        bad = passport.functions.setSupplier(gtin, supplier)
        assert_reverts(lambda bad=bad: bad.call({"from": chain.operator}), error, *args)
    outsider = passport.functions.setSupplier("04012345678901", chain.alice)
    assert_reverts(
        lambda: outsider.transact({"from": chain.alice}),
        "AccessControlUnauthorizedAccount",
        chain.alice,
        OPERATOR_ROLE,
    )


def test_supplier_cancels_a_mint_consent(chain: SimpleNamespace) -> None:
    deadline, signature = mint_consent(chain, chain.alice)
    transact(chain, chain.passport.functions.cancelConsent(0), sender=chain.supplier)
    call = mint_call(chain, chain.alice, "SN-0001", deadline, signature)
    assert_reverts(
        lambda: call.transact({"from": chain.operator}),
        "PassportInvalidMintConsent",
        chain.supplier,
        passport_id(GTIN, "SN-0001"),
    )


def test_tag_commitment_of_unknown_token_reverts(chain: SimpleNamespace) -> None:
    token_id = passport_id(GTIN, "never minted")
    call = chain.passport.functions.tagCommitmentOf(token_id)
    assert_reverts(call.call, "ERC721NonexistentToken", token_id)


def test_transfer_with_consent(chain: SimpleNamespace) -> None:
    passport = chain.passport
    token_id = mint(chain, chain.alice)
    alice_balance = chain.w3.eth.get_balance(chain.alice)
    deadline, signature = consent(chain, chain.alice, chain.bob, token_id)
    receipt = transact(chain, relay(chain, chain.alice, chain.bob, token_id, deadline, signature))
    (event,) = passport.events.PassportTransferredWithConsent().process_receipt(
        receipt, errors=DISCARD
    )
    assert dict(event.args) == {
        "tokenId": token_id,
        "from": chain.alice,
        "to": chain.bob,
        "nonce": 0,
    }
    (transfer,) = passport.events.Transfer().process_receipt(receipt, errors=DISCARD)
    assert (transfer.args["from"], transfer.args.to) == (chain.alice, chain.bob)
    assert passport.functions.ownerOf(token_id).call() == chain.bob
    assert passport.functions.nonces(chain.alice).call() == 1
    # The owner only signed; the operator paid for the transaction.
    assert chain.w3.eth.get_balance(chain.alice) == alice_balance


def test_consent_cannot_be_replayed(chain: SimpleNamespace) -> None:
    token_id = mint(chain, chain.alice)
    deadline, signature = consent(chain, chain.alice, chain.bob, token_id)
    transact(chain, relay(chain, chain.alice, chain.bob, token_id, deadline, signature))
    # Bob gives the passport back by a plain ERC-721 transfer; the old consent is spent.
    transact(
        chain,
        chain.passport.functions.transferFrom(chain.bob, chain.alice, token_id),
        sender=chain.bob,
    )
    replay = relay(chain, chain.alice, chain.bob, token_id, deadline, signature)
    assert_reverts(
        lambda: replay.transact({"from": chain.operator}),
        "PassportInvalidConsent",
        chain.alice,
        token_id,
    )
    assert chain.passport.functions.ownerOf(token_id).call() == chain.alice


def test_consent_expired(chain: SimpleNamespace) -> None:
    token_id = mint(chain, chain.alice)
    deadline = latest_timestamp(chain) + 60
    _, signature = consent(chain, chain.alice, chain.bob, token_id, deadline=deadline)
    chain.tester.time_travel(deadline + 1)
    call = relay(chain, chain.alice, chain.bob, token_id, deadline, signature)
    data = revert_data(lambda: call.transact({"from": chain.operator}))
    name, (signed_deadline, timestamp) = ARTIFACT.decode_error(data)
    assert (name, signed_deadline) == ("PassportExpiredConsent", deadline)
    assert timestamp > deadline
    assert chain.passport.functions.nonces(chain.alice).call() == 0


def test_consent_valid_until_deadline_inclusive(chain: SimpleNamespace) -> None:
    token_id = mint(chain, chain.alice)
    deadline = latest_timestamp(chain) + 60
    _, signature = consent(chain, chain.alice, chain.bob, token_id, deadline=deadline)
    # time_travel mines a block at deadline - 1; the relayed transaction lands at the deadline.
    chain.tester.time_travel(deadline - 1)
    receipt = transact(chain, relay(chain, chain.alice, chain.bob, token_id, deadline, signature))
    assert chain.w3.eth.get_block(receipt.blockNumber).timestamp <= deadline
    assert chain.passport.functions.ownerOf(token_id).call() == chain.bob


def test_consent_signed_by_non_owner_rejected(chain: SimpleNamespace) -> None:
    token_id = mint(chain, chain.alice)
    # Carol signs with Alice's current nonce, as a forger would.
    deadline, signature = consent(
        chain, chain.carol, chain.carol, token_id, nonce=0, deadline=latest_timestamp(chain) + 600
    )
    call = relay(chain, chain.alice, chain.carol, token_id, deadline, signature)
    assert_reverts(
        lambda: call.transact({"from": chain.operator}),
        "PassportInvalidConsent",
        chain.alice,
        token_id,
    )


@pytest.mark.parametrize("kind", ["garbage", "short", "other destination", "other deployment"])
def test_bad_signature_rejected(chain: SimpleNamespace, kind: str) -> None:
    token_id = mint(chain, chain.alice)
    deadline, signature = consent(chain, chain.alice, chain.bob, token_id)
    if kind == "garbage":
        signature = os.urandom(64) + b"\x1b"
    elif kind == "short":
        signature = signature[:64]
    elif kind == "other destination":
        deadline, signature = consent(chain, chain.alice, chain.carol, token_id)
    else:
        deadline, signature = consent(chain, chain.alice, chain.bob, token_id, chain_id=1)
    call = relay(chain, chain.alice, chain.bob, token_id, deadline, signature)
    assert_reverts(
        lambda: call.transact({"from": chain.operator}),
        "PassportInvalidConsent",
        chain.alice,
        token_id,
    )
    assert chain.passport.functions.ownerOf(token_id).call() == chain.alice


def test_transfer_with_consent_needs_operator(chain: SimpleNamespace) -> None:
    token_id = mint(chain, chain.alice)
    deadline, signature = consent(chain, chain.alice, chain.bob, token_id)
    call = relay(chain, chain.alice, chain.bob, token_id, deadline, signature)
    assert_reverts(
        lambda: call.transact({"from": chain.bob}),
        "AccessControlUnauthorizedAccount",
        chain.bob,
        OPERATOR_ROLE,
    )


def test_transfer_with_consent_from_must_be_owner(chain: SimpleNamespace) -> None:
    token_id = mint(chain, chain.alice)
    deadline, signature = consent(chain, chain.carol, chain.bob, token_id)
    call = relay(chain, chain.carol, chain.bob, token_id, deadline, signature)
    assert_reverts(
        lambda: call.transact({"from": chain.operator}),
        "PassportIncorrectOwner",
        chain.carol,
        token_id,
        chain.alice,
    )


def test_transfer_with_consent_of_unknown_token_reverts(chain: SimpleNamespace) -> None:
    token_id = passport_id(GTIN, "never minted")
    deadline, signature = consent(chain, chain.alice, chain.bob, token_id)
    call = relay(chain, chain.alice, chain.bob, token_id, deadline, signature)
    assert_reverts(
        lambda: call.transact({"from": chain.operator}), "ERC721NonexistentToken", token_id
    )


def test_plain_erc721_transfer_still_works(chain: SimpleNamespace) -> None:
    token_id = mint(chain, chain.alice)
    transact(
        chain,
        chain.passport.functions.safeTransferFrom(chain.alice, chain.bob, token_id),
        sender=chain.alice,
    )
    assert chain.passport.functions.ownerOf(token_id).call() == chain.bob
    # Plain transfers do not touch consent nonces.
    assert chain.passport.functions.nonces(chain.alice).call() == 0
    call = chain.passport.functions.transferFrom(chain.bob, chain.alice, token_id)
    assert_reverts(
        lambda: call.transact({"from": chain.alice}),
        "ERC721InsufficientApproval",
        chain.alice,
        token_id,
    )


def test_owner_cancels_a_consent_before_it_is_relayed(chain: SimpleNamespace) -> None:
    passport = chain.passport
    token_id = mint(chain, chain.alice)
    deadline, signature = consent(chain, chain.alice, chain.bob, token_id)
    receipt = transact(chain, passport.functions.cancelConsent(0), sender=chain.alice)
    (event,) = passport.events.ConsentCancelled().process_receipt(receipt, errors=DISCARD)
    assert dict(event.args) == {"owner": chain.alice, "nonce": 0}
    assert passport.functions.nonces(chain.alice).call() == 1
    call = relay(chain, chain.alice, chain.bob, token_id, deadline, signature)
    assert_reverts(
        lambda: call.transact({"from": chain.operator}),
        "PassportInvalidConsent",
        chain.alice,
        token_id,
    )
    assert passport.functions.ownerOf(token_id).call() == chain.alice
    # A consent signed afterwards, with the next nonce, works.
    deadline, signature = consent(chain, chain.alice, chain.carol, token_id)
    transact(chain, relay(chain, chain.alice, chain.carol, token_id, deadline, signature))
    assert passport.functions.ownerOf(token_id).call() == chain.carol


def test_cancel_consent_needs_the_current_nonce(chain: SimpleNamespace) -> None:
    """A cancellation that arrives after its consent was used does not cancel the next one."""
    passport = chain.passport
    token_id = mint(chain, chain.alice)
    deadline, signature = consent(chain, chain.alice, chain.bob, token_id)
    transact(chain, relay(chain, chain.alice, chain.bob, token_id, deadline, signature))
    late = passport.functions.cancelConsent(0)
    assert_reverts(
        lambda: late.transact({"from": chain.alice}),
        "PassportUnexpectedNonce",
        chain.alice,
        0,
        1,
    )
    ahead = passport.functions.cancelConsent(5)
    assert_reverts(
        lambda: ahead.transact({"from": chain.alice}),
        "PassportUnexpectedNonce",
        chain.alice,
        5,
        1,
    )
    assert passport.functions.nonces(chain.alice).call() == 1


def test_cancel_consent_touches_only_the_callers_nonce(chain: SimpleNamespace) -> None:
    """The operator (or anyone) cannot cancel an owner's consent: it cancels its own nonce."""
    passport = chain.passport
    token_id = mint(chain, chain.alice)
    deadline, signature = consent(chain, chain.alice, chain.bob, token_id)
    transact(chain, passport.functions.cancelConsent(0), sender=chain.carol)
    assert passport.functions.nonces(chain.carol).call() == 1
    assert passport.functions.nonces(chain.alice).call() == 0
    transact(chain, relay(chain, chain.alice, chain.bob, token_id, deadline, signature))
    assert passport.functions.ownerOf(token_id).call() == chain.bob
