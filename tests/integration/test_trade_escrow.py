"""TradeEscrow on the in-process EVM (eth-tester), with ProductPassport and CustodyLedger."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from functools import partial
from types import SimpleNamespace

import pytest
from eth_hash.auto import keccak
from eth_tester.exceptions import TransactionFailed
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from web3.exceptions import ContractCustomError
from web3.logs import DISCARD

from contracts_abi import eip712
from contracts_abi.escrow import Outcome, State, Status, Terms
from contracts_abi.passport import passport_id
from tests.integration import contracts_support
from tests.integration.contracts_support import revert_data, rolled_back, transact
from tests.integration.escrow_support import (
    DEPOSIT,
    ESCROW,
    GTIN,
    LEDGER,
    PASSPORT,
    PRICE,
    WINDOWS,
    adversary_artifact,
    anchor_event,
    deploy_escrow,
    deposit,
    funded_trade,
    handoff_event,
    make_terms,
    mint,
    next_serial,
    open_trade,
    pending_time,
    prove_call,
    relay_transfer,
    status,
    travel_past,
)

OPERATOR_ROLE = keccak(b"OPERATOR_ROLE")
ZERO_ADDRESS = "0x" + "00" * 20
assert_reverts = partial(contracts_support.assert_reverts, ESCROW)


@pytest.fixture(scope="module")
def deployed() -> SimpleNamespace:
    return deploy_escrow()


@pytest.fixture
def chain(deployed: SimpleNamespace) -> Iterator[SimpleNamespace]:
    """The module's deployment, rolled back after each test so that tests stay independent."""
    with rolled_back(deployed.w3):
        yield deployed


def credit(chain: SimpleNamespace, payee: str) -> int:
    return chain.escrow.functions.creditOf(payee).call()


def owner_of(chain: SimpleNamespace, token_id: int) -> str:
    return chain.passport.functions.ownerOf(token_id).call()


def balance(chain: SimpleNamespace) -> int:
    return chain.w3.eth.get_balance(chain.escrow.address)


def withdraw_all(chain: SimpleNamespace, payee: str) -> int:
    """`payee` withdraws its credit; what arrived (its balance change plus the gas it paid)."""
    before = chain.w3.eth.get_balance(payee)
    receipt = transact(chain, chain.escrow.functions.withdraw(), payee)
    paid = receipt.gasUsed * receipt.effectiveGasPrice
    return chain.w3.eth.get_balance(payee) - before + paid


def call(chain: SimpleNamespace, name: str, *args: object, sender: str) -> object:
    """Send `escrow.name(*args)` from `sender`; the receipt."""
    return transact(chain, getattr(chain.escrow.functions, name)(*args), sender)


def dispute_and_appoint(chain: SimpleNamespace, trade_id: int) -> str:
    """Dispute as the buyer, both accept the proposed arbiter; the appointed arbiter."""
    call(chain, "dispute", trade_id, sender=chain.buyer)
    proposed = status(chain, trade_id).arbiter
    call(chain, "acceptArbiter", trade_id, proposed, sender=chain.buyer)
    call(chain, "acceptArbiter", trade_id, proposed, sender=chain.seller)
    assert status(chain, trade_id).state == State.ARBITRATION
    return proposed


def logged(chain: SimpleNamespace, name: str, receipt: object) -> object:
    """The arguments of the first event `name` the escrow logged in `receipt`."""
    return getattr(chain.escrow.events, name)().process_receipt(receipt, errors=DISCARD)[0].args


def escrow_errors(data: bytes) -> tuple:
    return ESCROW.decode_error(data)


# --- Deployment and terms --------------------------------------------------------------------


def test_deployment_wiring_and_roles(chain: SimpleNamespace) -> None:
    escrow = chain.escrow
    assert escrow.functions.passport().call() == chain.passport.address
    assert escrow.functions.ledger().call() == chain.ledger.address
    assert escrow.functions.hasRole(OPERATOR_ROLE, chain.operator).call()
    assert escrow.functions.hasRole(b"\x00" * 32, chain.admin).call()
    assert not escrow.functions.hasRole(OPERATOR_ROLE, chain.admin).call()
    assert escrow.functions.arbiterCount().call() == 3
    arbiter, profile, active = escrow.functions.arbiterAt(1).call()
    assert (arbiter, profile, active) == (chain.arbiters[1], "https://arb.example/1", True)
    # The escrow takes ERC-721 transfers and says so (ERC-165).
    assert escrow.functions.supportsInterface(bytes.fromhex("150b7a02")).call()


def test_constructor_rejects_zero_addresses(chain: SimpleNamespace) -> None:
    factory = chain.w3.eth.contract(abi=ESCROW.abi, bytecode=ESCROW.bytecode)
    args = [chain.admin, chain.operator, chain.passport.address, chain.ledger.address]
    for index in range(4):
        broken = list(args)
        broken[index] = ZERO_ADDRESS
        constructor = factory.constructor(*broken)
        assert_reverts(
            lambda c=constructor: c.transact({"from": chain.operator}), "EscrowZeroAddress"
        )


def test_terms_are_readable_before_anyone_deposits(chain: SimpleNamespace) -> None:
    token_id = mint(chain, chain.seller, next_serial(chain))
    terms = make_terms(chain, token_id)
    receipt = transact(chain, chain.escrow.functions.open(terms.as_tuple()), chain.operator)
    opened = logged(chain, "TradeOpened", receipt)
    assert (opened.tradeId, opened.tokenId, opened.opener) == (1, token_id, chain.operator)
    assert Terms.from_tuple(chain.escrow.functions.termsOf(1).call()) == terms
    current = status(chain, 1)
    assert current.state == State.OPEN and current.held == 0
    assert chain.escrow.functions.deadlineOf(1).call() == current.since + WINDOWS["deposit_window"]
    assert chain.escrow.functions.openTradeOf(token_id).call() == 1


@pytest.mark.parametrize("opener", ["seller", "buyer", "operator"])
def test_either_party_or_the_service_opens(chain: SimpleNamespace, opener: str) -> None:
    terms = make_terms(chain, passport_id(GTIN, "not-minted-yet"))
    assert open_trade(chain, terms, getattr(chain, opener)) == 1


def test_open_reverts(chain: SimpleNamespace) -> None:
    token_id = mint(chain, chain.seller, next_serial(chain))
    escrow = chain.escrow

    def opening(sender: str, **changes: object):
        terms = make_terms(chain, token_id, **changes)
        return lambda: escrow.functions.open(terms.as_tuple()).transact({"from": sender})

    assert_reverts(opening(chain.stranger), "EscrowUnauthorized", 0, chain.stranger)
    assert_reverts(opening(chain.seller, buyer=ZERO_ADDRESS), "EscrowZeroAddress")
    assert_reverts(opening(chain.buyer, seller=ZERO_ADDRESS), "EscrowZeroAddress")
    assert_reverts(opening(chain.seller, buyer=chain.seller), "EscrowInvalidTerms")
    assert_reverts(opening(chain.seller, deposit=0), "EscrowInvalidTerms")
    assert_reverts(opening(chain.seller, arbiter_rule=1), "EscrowInvalidTerms")
    for window in WINDOWS:
        assert_reverts(opening(chain.seller, **{window: 0}), "EscrowInvalidTerms")
        assert_reverts(opening(chain.seller, **{window: 365 * 86400 + 1}), "EscrowInvalidTerms")
    opening(chain.seller, price=0)()  # the price is optional
    assert_reverts(opening(chain.buyer), "EscrowPassportBusy", token_id, 1)


def test_unknown_trade_reverts(chain: SimpleNamespace) -> None:
    for name in ("termsOf", "statusOf", "deadlineOf"):
        function = getattr(chain.escrow.functions, name)(7)
        assert_reverts(function.call, "EscrowUnknownTrade", 7)
    for name in ("deposit", "cancel", "markShipped", "confirm", "dispute", "timeout"):
        function = getattr(chain.escrow.functions, name)(7)
        assert_reverts(
            lambda f=function: f.transact({"from": chain.buyer}), "EscrowUnknownTrade", 7
        )


# --- Deposits ----------------------------------------------------------------------------------


def test_deposits_fund_the_trade_and_pull_the_approved_passport(chain: SimpleNamespace) -> None:
    trade_id, terms = funded_trade(chain)
    current = status(chain, trade_id)
    assert current.state == State.FUNDED
    assert current.buyer_deposited and current.seller_deposited and current.passport_held
    assert current.held == 2 * DEPOSIT + PRICE == balance(chain)
    assert owner_of(chain, terms.token_id) == chain.escrow.address
    assert (
        chain.escrow.functions.deadlineOf(trade_id).call() == current.since + WINDOWS["ship_window"]
    )


def test_deposit_reverts(chain: SimpleNamespace) -> None:
    token_id = mint(chain, chain.seller, next_serial(chain))
    trade_id = open_trade(chain, make_terms(chain, token_id))
    escrow = chain.escrow

    def paying(sender: str, value: int):
        return lambda: escrow.functions.deposit(trade_id).transact({"from": sender, "value": value})

    assert_reverts(paying(chain.stranger, DEPOSIT), "EscrowUnauthorized", trade_id, chain.stranger)
    assert_reverts(paying(chain.buyer, DEPOSIT), "EscrowWrongAmount", DEPOSIT + PRICE, DEPOSIT)
    assert_reverts(paying(chain.seller, DEPOSIT + 1), "EscrowWrongAmount", DEPOSIT, DEPOSIT + 1)
    # Without approval or consent, the seller's passport cannot be pulled.
    data = revert_data(paying(chain.seller, DEPOSIT))
    assert PASSPORT.decode_error(data)[0] == "ERC721InsufficientApproval"
    paying(chain.buyer, DEPOSIT + PRICE)()
    assert_reverts(
        paying(chain.buyer, DEPOSIT + PRICE), "EscrowAlreadyDeposited", trade_id, chain.buyer
    )
    assert status(chain, trade_id).state == State.OPEN


def test_deposit_after_funding_reverts(chain: SimpleNamespace) -> None:
    trade_id, _ = funded_trade(chain)
    assert_reverts(
        lambda: chain.escrow.functions.deposit(trade_id).transact(
            {"from": chain.buyer, "value": DEPOSIT + PRICE}
        ),
        "EscrowWrongState",
        trade_id,
        State.FUNDED,
    )


def test_passport_relayed_under_the_sellers_consent(chain: SimpleNamespace) -> None:
    token_id = mint(chain, chain.seller, next_serial(chain))
    trade_id = open_trade(chain, make_terms(chain, token_id), chain.buyer)
    receipt = transact(chain, relay_transfer(chain, chain.seller, chain.escrow.address, token_id))
    escrowed = logged(chain, "PassportEscrowed", receipt)
    assert (escrowed["tradeId"], escrowed["tokenId"], escrowed["from"]) == (
        trade_id,
        token_id,
        chain.seller,
    )
    assert status(chain, trade_id).passport_held
    # The seller's deposit no longer needs an approval.
    assert deposit(chain, trade_id, chain.seller).status == 1
    assert deposit(chain, trade_id, chain.buyer).status == 1
    assert status(chain, trade_id).state == State.FUNDED
    assert owner_of(chain, token_id) == chain.escrow.address


def test_passport_minted_straight_into_escrow(chain: SimpleNamespace) -> None:
    serial = next_serial(chain)
    token_id = passport_id(GTIN, serial)
    trade_id = open_trade(chain, make_terms(chain, token_id), chain.operator)
    mint(chain, chain.escrow.address, serial)
    assert owner_of(chain, token_id) == chain.escrow.address
    assert status(chain, trade_id).passport_held
    deposit(chain, trade_id, chain.seller)
    deposit(chain, trade_id, chain.buyer)
    call(chain, "confirm", trade_id, sender=chain.buyer)
    assert owner_of(chain, token_id) == chain.buyer


def test_minted_passport_goes_to_the_seller_when_the_trade_does_not_happen(
    chain: SimpleNamespace,
) -> None:
    serial = next_serial(chain)
    token_id = passport_id(GTIN, serial)
    trade_id = open_trade(chain, make_terms(chain, token_id))
    mint(chain, chain.escrow.address, serial)
    call(chain, "cancel", trade_id, sender=chain.buyer)
    assert owner_of(chain, token_id) == chain.seller
    assert status(chain, trade_id).outcome == Outcome.CANCELLED


def test_escrow_refuses_passports_it_was_not_given_for(chain: SimpleNamespace) -> None:
    token_id = mint(chain, chain.seller, next_serial(chain))
    other = mint(chain, chain.stranger, next_serial(chain))
    # No open trade on it.
    data = revert_data(
        lambda: relay_transfer(chain, chain.seller, chain.escrow.address, token_id).transact(
            {"from": chain.operator}
        )
    )
    assert escrow_errors(data) == ("EscrowUnexpectedPassport", (token_id, chain.seller.lower()))
    # A trade is open on it, but the passport comes from someone who is not the seller.
    open_trade(chain, make_terms(chain, other))
    data = revert_data(
        lambda: relay_transfer(chain, chain.stranger, chain.escrow.address, other).transact(
            {"from": chain.operator}
        )
    )
    assert escrow_errors(data) == ("EscrowUnexpectedPassport", (other, chain.stranger.lower()))
    # Not from ProductPassport at all.
    assert_reverts(
        lambda: chain.escrow.functions.onERC721Received(
            chain.seller, chain.seller, other, b""
        ).transact({"from": chain.seller}),
        "EscrowUnexpectedPassport",
        other,
        chain.seller,
    )


# --- Completion --------------------------------------------------------------------------------


def test_completed_by_confirmation_after_shipment(chain: SimpleNamespace) -> None:
    trade_id, terms = funded_trade(chain)
    assert_reverts(
        lambda: chain.escrow.functions.markShipped(trade_id).transact({"from": chain.buyer}),
        "EscrowUnauthorized",
        trade_id,
        chain.buyer,
    )
    call(chain, "markShipped", trade_id, sender=chain.seller)
    shipped = status(chain, trade_id)
    assert shipped.state == State.SHIPPED
    assert (
        chain.escrow.functions.deadlineOf(trade_id).call()
        == shipped.since + WINDOWS["confirm_window"]
    )
    assert_reverts(
        lambda: chain.escrow.functions.confirm(trade_id).transact({"from": chain.seller}),
        "EscrowUnauthorized",
        trade_id,
        chain.seller,
    )
    receipt = call(chain, "confirm", trade_id, sender=chain.buyer)
    settled = logged(chain, "TradeSettled", receipt)
    assert (settled.tradeId, settled.outcome) == (trade_id, Outcome.COMPLETED)
    assert owner_of(chain, terms.token_id) == chain.buyer
    assert credit(chain, chain.buyer) == DEPOSIT
    assert credit(chain, chain.seller) == DEPOSIT + PRICE
    assert status(chain, trade_id).held == 0
    assert chain.escrow.functions.openTradeOf(terms.token_id).call() == 0
    assert chain.escrow.functions.deadlineOf(trade_id).call() == 0
    assert withdraw_all(chain, chain.seller) == DEPOSIT + PRICE
    assert withdraw_all(chain, chain.buyer) == DEPOSIT
    assert balance(chain) == 0
    assert_reverts(
        lambda: chain.escrow.functions.withdraw().transact({"from": chain.buyer}),
        "EscrowNothingToWithdraw",
        chain.buyer,
    )


def test_buyer_may_confirm_before_shipment_is_marked(chain: SimpleNamespace) -> None:
    trade_id, terms = funded_trade(chain)
    call(chain, "confirm", trade_id, sender=chain.buyer)
    assert status(chain, trade_id).outcome == Outcome.COMPLETED
    assert owner_of(chain, terms.token_id) == chain.buyer


def test_completed_when_the_confirmation_window_passes(chain: SimpleNamespace) -> None:
    trade_id, terms = funded_trade(chain)
    call(chain, "markShipped", trade_id, sender=chain.seller)
    end = chain.escrow.functions.deadlineOf(trade_id).call()
    chain.tester.time_travel(end)  # the deadline's own second is still within the window
    assert_reverts(
        lambda: chain.escrow.functions.timeout(trade_id).transact({"from": chain.stranger}),
        "EscrowNotExpired",
        trade_id,
        end,
        end,
    )
    travel_past(chain, end)
    call(chain, "timeout", trade_id, sender=chain.stranger)
    assert status(chain, trade_id).outcome == Outcome.COMPLETED
    assert owner_of(chain, terms.token_id) == chain.buyer
    assert credit(chain, chain.seller) == DEPOSIT + PRICE
    assert credit(chain, chain.buyer) == DEPOSIT
    assert_reverts(
        lambda: chain.escrow.functions.timeout(trade_id).transact({"from": chain.stranger}),
        "EscrowWrongState",
        trade_id,
        State.SETTLED,
    )


# --- Shipment proved by an anchored custody event ---------------------------------------------


def test_custody_digest_matches_the_python_twin(chain: SimpleNamespace) -> None:
    from contracts_abi.escrow import custody_event_args

    terms = make_terms(chain, 1)
    event = handoff_event(chain, terms, "SN-1", time_zone_offset=-300)
    on_chain = chain.escrow.functions.custodyEventDigest(custody_event_args(event)).call()
    assert on_chain == eip712.custody_event_digest(event)


def test_anyone_proves_the_handoff_to_the_buyer(chain: SimpleNamespace) -> None:
    serial = "SN-SHIPPED"
    trade_id, terms = funded_trade(chain, serial)
    event = handoff_event(chain, terms, serial)
    anchored = anchor_event(chain, event)
    receipt = transact(chain, prove_call(chain, trade_id, event, anchored), chain.stranger)
    proved = logged(chain, "ShipmentProved", receipt)
    assert (proved.tradeId, proved.eventId, proved.root) == (
        trade_id,
        event.event_id.bytes,
        anchored[1],
    )
    assert status(chain, trade_id).state == State.SHIPPED


def test_shipment_proofs_that_do_not_bind_to_the_trade_revert(chain: SimpleNamespace) -> None:
    serial = "SN-SHIPPED"
    trade_id, terms = funded_trade(chain, serial)
    opened_at = status(chain, trade_id).opened_at

    def rejected(event: eip712.CustodyEvent, anchored: tuple | None = None) -> None:
        anchored = anchored or anchor_event(chain, event)
        prove = prove_call(chain, trade_id, event, anchored)
        assert_reverts(
            lambda: prove.transact({"from": chain.stranger}),
            "EscrowInvalidShipmentProof",
            trade_id,
        )

    rejected(handoff_event(chain, terms, serial, to_party=chain.stranger))
    rejected(handoff_event(chain, terms, "SN-999999"))
    rejected(handoff_event(chain, terms, serial, event_time=opened_at - 1))
    good = handoff_event(chain, terms, serial)
    salt, root, proof = anchor_event(chain, good)
    rejected(good, (bytes(32), root, proof))  # wrong salt
    rejected(handoff_event(chain, terms, serial, biz_step="shipping"), (salt, root, proof))
    # A root never anchored: CustodyLedger's own error comes through.
    data = revert_data(
        lambda: prove_call(chain, trade_id, good, (salt, b"\x01" * 32, proof)).transact(
            {"from": chain.stranger}
        )
    )
    assert LEDGER.decode_error(data) == ("LedgerUnknownRoot", (b"\x01" * 32,))
    assert status(chain, trade_id).state == State.FUNDED
    transact(chain, prove_call(chain, trade_id, good, (salt, root, proof)), chain.stranger)
    # Once shipped, neither a second proof nor a mark is possible.
    assert_reverts(
        lambda: chain.escrow.functions.markShipped(trade_id).transact({"from": chain.seller}),
        "EscrowWrongState",
        trade_id,
        State.SHIPPED,
    )


# --- Timeouts before shipment -----------------------------------------------------------------


def test_a_party_that_never_deposits_lets_the_other_take_its_deposit_back(
    chain: SimpleNamespace,
) -> None:
    token_id = mint(chain, chain.seller, next_serial(chain))
    trade_id = open_trade(chain, make_terms(chain, token_id))
    deposit(chain, trade_id, chain.buyer)
    end = chain.escrow.functions.deadlineOf(trade_id).call()
    data = revert_data(
        lambda: chain.escrow.functions.timeout(trade_id).transact({"from": chain.stranger})
    )
    name, (failed_id, failed_end, _) = escrow_errors(data)
    assert (name, failed_id, failed_end) == ("EscrowNotExpired", trade_id, end)
    travel_past(chain, end)
    call(chain, "timeout", trade_id, sender=chain.stranger)
    assert status(chain, trade_id).outcome == Outcome.CANCELLED
    assert credit(chain, chain.buyer) == DEPOSIT + PRICE
    assert credit(chain, chain.seller) == 0
    assert owner_of(chain, token_id) == chain.seller
    # The passport is free for a new trade.
    assert open_trade(chain, make_terms(chain, token_id)) == trade_id + 1


def test_seller_deposited_buyer_never_did(chain: SimpleNamespace) -> None:
    token_id = mint(chain, chain.seller, next_serial(chain))
    trade_id = open_trade(chain, make_terms(chain, token_id))
    transact(chain, chain.passport.functions.approve(chain.escrow.address, token_id), chain.seller)
    deposit(chain, trade_id, chain.seller)
    assert owner_of(chain, token_id) == chain.escrow.address
    travel_past(chain, chain.escrow.functions.deadlineOf(trade_id).call())
    call(chain, "timeout", trade_id, sender=chain.buyer)
    assert credit(chain, chain.seller) == DEPOSIT
    assert credit(chain, chain.buyer) == 0
    assert owner_of(chain, token_id) == chain.seller


def test_cancel_before_funding(chain: SimpleNamespace) -> None:
    token_id = mint(chain, chain.seller, next_serial(chain))
    trade_id = open_trade(chain, make_terms(chain, token_id), chain.buyer)
    deposit(chain, trade_id, chain.buyer)
    assert_reverts(
        lambda: chain.escrow.functions.cancel(trade_id).transact({"from": chain.stranger}),
        "EscrowUnauthorized",
        trade_id,
        chain.stranger,
    )
    call(chain, "cancel", trade_id, sender=chain.seller)  # a bogus trade is one call away
    assert status(chain, trade_id).outcome == Outcome.CANCELLED
    assert credit(chain, chain.buyer) == DEPOSIT + PRICE
    funded, _ = funded_trade(chain)
    assert_reverts(
        lambda: chain.escrow.functions.cancel(funded).transact({"from": chain.buyer}),
        "EscrowWrongState",
        funded,
        State.FUNDED,
    )


def test_seller_never_ships(chain: SimpleNamespace) -> None:
    trade_id, terms = funded_trade(chain)
    travel_past(chain, chain.escrow.functions.deadlineOf(trade_id).call())
    call(chain, "timeout", trade_id, sender=chain.stranger)
    assert status(chain, trade_id).outcome == Outcome.NOT_SHIPPED
    assert credit(chain, chain.buyer) == DEPOSIT + PRICE
    assert credit(chain, chain.seller) == DEPOSIT
    assert owner_of(chain, terms.token_id) == chain.seller


# --- Disputes ----------------------------------------------------------------------------------


def test_dispute_proposes_by_the_rule_seen_at_opening(chain: SimpleNamespace) -> None:
    trade_id, _ = funded_trade(chain)
    assert_reverts(
        lambda: chain.escrow.functions.dispute(trade_id).transact({"from": chain.stranger}),
        "EscrowUnauthorized",
        trade_id,
        chain.stranger,
    )
    call(chain, "dispute", trade_id, sender=chain.seller)
    start = int.from_bytes(keccak(trade_id.to_bytes(32, "big")), "big") % 3
    current = status(chain, trade_id)
    assert current.state == State.DISPUTED
    assert current.arbiter == chain.arbiters[start]
    assert (
        chain.escrow.functions.deadlineOf(trade_id).call()
        == current.since + WINDOWS["agree_window"]
    )
    # Declining proposes the next in registry order, wrapping around.
    call(chain, "declineArbiter", trade_id, sender=chain.buyer)
    assert status(chain, trade_id).arbiter == chain.arbiters[(start + 1) % 3]
    assert not chain.escrow.functions.isEligible(trade_id, chain.arbiters[start]).call()
    assert_reverts(
        lambda: chain.escrow.functions.acceptArbiter(trade_id, chain.arbiters[start]).transact(
            {"from": chain.seller}
        ),
        "EscrowIneligibleArbiter",
        trade_id,
        chain.arbiters[start],
    )
    call(chain, "declineArbiter", trade_id, sender=chain.seller)
    call(chain, "declineArbiter", trade_id, sender=chain.seller)
    assert status(chain, trade_id).arbiter == ZERO_ADDRESS  # all three declined
    assert_reverts(
        lambda: chain.escrow.functions.declineArbiter(trade_id).transact({"from": chain.buyer}),
        "EscrowNoProposal",
        trade_id,
    )


def test_proposal_skips_ineligible_arbiters(chain: SimpleNamespace) -> None:
    trade_id, _ = funded_trade(chain)
    start = int.from_bytes(keccak(trade_id.to_bytes(32, "big")), "big") % 3
    first, second, third = (chain.arbiters[(start + i) % 3] for i in range(3))
    assert_reverts(
        lambda: chain.escrow.functions.setTie(first, chain.buyer, True).transact(
            {"from": chain.stranger}
        ),
        "AccessControlUnauthorizedAccount",
        chain.stranger,
        OPERATOR_ROLE,
    )
    call(chain, "setTie", first, chain.buyer, True, sender=chain.operator)
    assert chain.escrow.functions.isTied(first, chain.buyer).call()
    call(chain, "retireArbiter", sender=second)
    call(chain, "dispute", trade_id, sender=chain.buyer)
    assert status(chain, trade_id).arbiter == third
    for ineligible in (first, second, chain.buyer, chain.seller, chain.stranger):
        assert_reverts(
            lambda a=ineligible: chain.escrow.functions.acceptArbiter(trade_id, a).transact(
                {"from": chain.buyer}
            ),
            "EscrowIneligibleArbiter",
            trade_id,
            ineligible,
        )


def test_parties_may_agree_on_an_arbiter_of_their_own(chain: SimpleNamespace) -> None:
    trade_id, _ = funded_trade(chain)
    call(chain, "dispute", trade_id, sender=chain.buyer)
    proposed = status(chain, trade_id).arbiter
    own = next(a for a in chain.arbiters if a != proposed)
    # Only the parties choose: not the service, not an arbiter, not a stranger.
    for outsider in (chain.operator, own, chain.stranger):
        for function in (
            chain.escrow.functions.acceptArbiter(trade_id, own),
            chain.escrow.functions.declineArbiter(trade_id),
        ):
            sent = partial(function.transact, {"from": outsider})
            assert_reverts(sent, "EscrowUnauthorized", trade_id, outsider)
    call(chain, "acceptArbiter", trade_id, own, sender=chain.seller)
    call(chain, "acceptArbiter", trade_id, proposed, sender=chain.buyer)
    assert status(chain, trade_id).state == State.DISPUTED  # not the same one yet
    receipt = call(chain, "acceptArbiter", trade_id, own, sender=chain.buyer)
    appointed = logged(chain, "ArbiterAppointed", receipt)
    assert appointed.arbiter == own
    current = status(chain, trade_id)
    assert (current.state, current.arbiter) == (State.ARBITRATION, own)
    assert (
        chain.escrow.functions.deadlineOf(trade_id).call() == current.since + WINDOWS["rule_window"]
    )


def test_ruling_for_the_buyer(chain: SimpleNamespace) -> None:
    trade_id, terms = funded_trade(chain)
    call(chain, "markShipped", trade_id, sender=chain.seller)
    arbiter = dispute_and_appoint(chain, trade_id)
    other = next(a for a in chain.arbiters if a != arbiter)
    for outsider in (other, chain.buyer, chain.seller, chain.operator):
        assert_reverts(
            lambda o=outsider: chain.escrow.functions.rule(trade_id, True).transact({"from": o}),
            "EscrowUnauthorized",
            trade_id,
            outsider,
        )
    call(chain, "rule", trade_id, True, sender=arbiter)
    assert status(chain, trade_id).outcome == Outcome.FOR_BUYER
    assert credit(chain, chain.buyer) == DEPOSIT + PRICE
    assert credit(chain, chain.seller) == 0
    assert credit(chain, arbiter) == DEPOSIT
    assert owner_of(chain, terms.token_id) == chain.seller
    assert_reverts(
        lambda: chain.escrow.functions.rule(trade_id, False).transact({"from": arbiter}),
        "EscrowWrongState",
        trade_id,
        State.SETTLED,
    )
    assert withdraw_all(chain, arbiter) == DEPOSIT


def test_ruling_for_the_seller(chain: SimpleNamespace) -> None:
    trade_id, terms = funded_trade(chain)
    arbiter = dispute_and_appoint(chain, trade_id)  # disputed before shipment
    call(chain, "rule", trade_id, False, sender=arbiter)
    assert status(chain, trade_id).outcome == Outcome.FOR_SELLER
    assert credit(chain, chain.seller) == DEPOSIT + PRICE
    assert credit(chain, chain.buyer) == 0
    assert credit(chain, arbiter) == DEPOSIT
    assert owner_of(chain, terms.token_id) == chain.buyer


def test_no_completion_or_shipment_once_disputed(chain: SimpleNamespace) -> None:
    trade_id, _ = funded_trade(chain)
    call(chain, "dispute", trade_id, sender=chain.seller)
    for name, sender in (("confirm", chain.buyer), ("markShipped", chain.seller)):
        assert_reverts(
            lambda n=name, s=sender: getattr(chain.escrow.functions, n)(trade_id).transact(
                {"from": s}
            ),
            "EscrowWrongState",
            trade_id,
            State.DISPUTED,
        )
    assert_reverts(
        lambda: chain.escrow.functions.dispute(trade_id).transact({"from": chain.buyer}),
        "EscrowWrongState",
        trade_id,
        State.DISPUTED,
    )


def test_no_agreement_on_an_arbiter(chain: SimpleNamespace) -> None:
    trade_id, terms = funded_trade(chain)
    call(chain, "markShipped", trade_id, sender=chain.seller)
    call(chain, "dispute", trade_id, sender=chain.buyer)
    travel_past(chain, chain.escrow.functions.deadlineOf(trade_id).call())
    call(chain, "timeout", trade_id, sender=chain.stranger)
    assert status(chain, trade_id).outcome == Outcome.NO_ARBITER
    assert credit(chain, chain.buyer) == DEPOSIT + PRICE
    assert credit(chain, chain.seller) == DEPOSIT
    assert owner_of(chain, terms.token_id) == chain.seller


def test_arbiter_never_rules(chain: SimpleNamespace) -> None:
    trade_id, terms = funded_trade(chain)
    arbiter = dispute_and_appoint(chain, trade_id)
    travel_past(chain, chain.escrow.functions.deadlineOf(trade_id).call())
    end = chain.escrow.functions.deadlineOf(trade_id).call()
    assert_reverts(
        lambda: chain.escrow.functions.rule(trade_id, True).transact({"from": arbiter}),
        "EscrowExpired",
        trade_id,
        end,
    )
    call(chain, "timeout", trade_id, sender=chain.seller)
    assert status(chain, trade_id).outcome == Outcome.NO_RULING
    assert credit(chain, chain.buyer) == DEPOSIT + PRICE
    assert credit(chain, chain.seller) == DEPOSIT
    assert credit(chain, arbiter) == 0
    assert owner_of(chain, terms.token_id) == chain.seller


def test_no_step_but_timeout_once_a_window_has_passed(chain: SimpleNamespace) -> None:
    escrow = chain.escrow

    def expired(trade_id: int, function: object, sender: str, value: int = 0) -> None:
        end = escrow.functions.deadlineOf(trade_id).call()
        travel_past(chain, end)
        assert_reverts(
            lambda: function.transact({"from": sender, "value": value}),
            "EscrowExpired",
            trade_id,
            end,
        )

    serial = next_serial(chain)
    token_id = passport_id(GTIN, serial)
    trade_id = open_trade(chain, make_terms(chain, token_id))
    expired(trade_id, escrow.functions.deposit(trade_id), chain.buyer, DEPOSIT + PRICE)
    expired(trade_id, escrow.functions.cancel(trade_id), chain.buyer)
    # A passport arriving late is refused, so the mint reverts and nothing is stuck.
    data = revert_data(lambda: mint(chain, chain.escrow.address, serial))
    assert escrow_errors(data) == ("EscrowUnexpectedPassport", (token_id, ZERO_ADDRESS))

    trade_id, _ = funded_trade(chain)
    expired(trade_id, escrow.functions.markShipped(trade_id), chain.seller)
    expired(trade_id, escrow.functions.confirm(trade_id), chain.buyer)
    trade_id, _ = funded_trade(chain)
    call(chain, "markShipped", trade_id, sender=chain.seller)
    expired(trade_id, escrow.functions.dispute(trade_id), chain.buyer)  # too late to dispute
    trade_id, _ = funded_trade(chain)
    call(chain, "dispute", trade_id, sender=chain.seller)
    arbiter = status(chain, trade_id).arbiter
    expired(trade_id, escrow.functions.acceptArbiter(trade_id, arbiter), chain.buyer)
    expired(trade_id, escrow.functions.declineArbiter(trade_id), chain.buyer)


def test_declining_withdraws_an_acceptance_of_the_declined(chain: SimpleNamespace) -> None:
    trade_id, _ = funded_trade(chain)
    call(chain, "dispute", trade_id, sender=chain.seller)
    proposed = status(chain, trade_id).arbiter
    call(chain, "acceptArbiter", trade_id, proposed, sender=chain.seller)
    assert status(chain, trade_id).seller_choice == proposed
    call(chain, "declineArbiter", trade_id, sender=chain.buyer)
    current = status(chain, trade_id)
    assert current.seller_choice == ZERO_ADDRESS
    assert current.arbiter not in (proposed, ZERO_ADDRESS)


# --- Arbiter registry ------------------------------------------------------------------------


def test_registry(chain: SimpleNamespace) -> None:
    arbiter = chain.arbiters[0]
    assert_reverts(
        lambda: chain.escrow.functions.registerArbiter("again").transact({"from": arbiter}),
        "EscrowAlreadyRegistered",
        arbiter,
    )
    receipt = call(chain, "registerArbiter", "ipfs://profile", sender=chain.stranger)
    registered = logged(chain, "ArbiterRegistered", receipt)
    assert (registered.arbiter, registered.profileURI) == (chain.stranger, "ipfs://profile")
    assert chain.escrow.functions.arbiterCount().call() == 4
    call(chain, "retireArbiter", sender=arbiter)
    assert chain.escrow.functions.arbiterAt(0).call()[2] is False
    assert_reverts(
        lambda: chain.escrow.functions.retireArbiter().transact({"from": arbiter}),
        "EscrowNotArbiter",
        arbiter,
    )
    assert_reverts(
        lambda: chain.escrow.functions.setTie(ZERO_ADDRESS, chain.buyer, True).transact(
            {"from": chain.operator}
        ),
        "EscrowZeroAddress",
    )


# --- Details hash --------------------------------------------------------------------------------


def test_operator_records_the_details_hash_until_settlement(chain: SimpleNamespace) -> None:
    trade_id, _ = funded_trade(chain)
    assert chain.escrow.functions.detailsHashOf(trade_id).call() == b"\x00" * 32
    first, second = os.urandom(32), os.urandom(32)
    receipt = call(chain, "recordDetails", trade_id, first, sender=chain.operator)
    recorded = logged(chain, "DetailsRecorded", receipt)
    assert (recorded.tradeId, recorded.detailsHash) == (trade_id, first)
    call(chain, "recordDetails", trade_id, second, sender=chain.operator)
    assert chain.escrow.functions.detailsHashOf(trade_id).call() == second
    # Recorded in every state before settlement: disputed and in arbitration too.
    arbiter = dispute_and_appoint(chain, trade_id)
    call(chain, "recordDetails", trade_id, first, sender=chain.operator)
    call(chain, "rule", trade_id, True, sender=arbiter)
    # The hash outlives the settlement, unchanged.
    assert chain.escrow.functions.detailsHashOf(trade_id).call() == first


def test_record_details_reverts(chain: SimpleNamespace) -> None:
    trade_id, _ = funded_trade(chain)
    digest = os.urandom(32)

    def recording(sender: str, trade: int = trade_id, value: bytes = digest):
        function = chain.escrow.functions.recordDetails(trade, value)
        return lambda: function.transact({"from": sender})

    arbiter = chain.arbiters[0]
    for outsider in (chain.seller, chain.buyer, arbiter, chain.admin, chain.stranger):
        assert_reverts(
            recording(outsider), "AccessControlUnauthorizedAccount", outsider, OPERATOR_ROLE
        )
    assert_reverts(
        recording(chain.operator, trade=trade_id + 1), "EscrowUnknownTrade", trade_id + 1
    )
    assert_reverts(recording(chain.operator, value=b"\x00" * 32), "EscrowZeroDetailsHash", trade_id)
    assert_reverts(
        chain.escrow.functions.detailsHashOf(trade_id + 1).call, "EscrowUnknownTrade", trade_id + 1
    )
    call(chain, "confirm", trade_id, sender=chain.buyer)
    assert_reverts(recording(chain.operator), "EscrowWrongState", trade_id, State.SETTLED)
    assert chain.escrow.functions.detailsHashOf(trade_id).call() == b"\x00" * 32


# --- Hostile parties ----------------------------------------------------------------------------


def deploy_party(chain: SimpleNamespace, name: str) -> object:
    artifact = adversary_artifact(name)
    factory = chain.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    args = [chain.escrow.address] if name == "ReentrantParty" else []
    receipt = transact(chain, factory.constructor(*args), chain.stranger)
    return chain.w3.eth.contract(address=receipt.contractAddress, abi=artifact.abi)


def as_party(chain: SimpleNamespace, party: object, function: object, value: int = 0) -> object:
    """Make contract `party` call `function` (a bound escrow or passport call)."""
    data = function._encode_transaction_data()
    exec_call = party.functions.exec(function.address, data)
    return chain.w3.eth.wait_for_transaction_receipt(
        exec_call.transact({"from": chain.stranger, "value": value})
    )


def test_reentrant_withdrawal_is_refused(chain: SimpleNamespace) -> None:
    attacker = deploy_party(chain, "ReentrantParty")
    token_id = mint(chain, chain.seller, next_serial(chain))
    terms = make_terms(chain, token_id, buyer=attacker.address)
    trade_id = open_trade(chain, terms)
    as_party(chain, attacker, chain.escrow.functions.deposit(trade_id), DEPOSIT + PRICE)
    # A second, honest trade keeps coin in the escrow for the attacker to try to drain.
    other_id, _ = funded_trade(chain)
    call(chain, "cancel", trade_id, sender=chain.seller)
    assert credit(chain, attacker.address) == DEPOSIT + PRICE
    held = balance(chain)
    withdraw = chain.escrow.functions.withdraw()
    transact(chain, attacker.functions.arm(withdraw._encode_transaction_data(), False))
    before = chain.w3.eth.get_balance(attacker.address)
    as_party(chain, attacker, withdraw)
    # The reentry failed on the guard; the attacker got its credit once, nothing more.
    assert attacker.functions.attempts().call() == 1
    assert not attacker.functions.reentered().call()
    assert ESCROW.decode_error(attacker.functions.lastError().call()) == (
        "ReentrancyGuardReentrantCall",
        (),
    )
    assert chain.w3.eth.get_balance(attacker.address) - before == DEPOSIT + PRICE
    assert balance(chain) == held - DEPOSIT - PRICE == status(chain, other_id).held
    assert credit(chain, attacker.address) == 0


def test_reentry_into_settlement_is_refused(chain: SimpleNamespace) -> None:
    attacker = deploy_party(chain, "ReentrantParty")
    trade_id, _ = funded_trade(chain)
    # The attacker, owed coin from a cancelled trade, tries to time out a trade while paid.
    token_id = mint(chain, chain.seller, next_serial(chain))
    own_id = open_trade(chain, make_terms(chain, token_id, buyer=attacker.address))
    as_party(chain, attacker, chain.escrow.functions.deposit(own_id), DEPOSIT + PRICE)
    call(chain, "cancel", own_id, sender=chain.seller)
    travel_past(chain, chain.escrow.functions.deadlineOf(trade_id).call())
    reentry = chain.escrow.functions.timeout(trade_id)._encode_transaction_data()
    transact(chain, attacker.functions.arm(reentry, True))
    data = revert_data(lambda: as_party(chain, attacker, chain.escrow.functions.withdraw()))
    assert ESCROW.decode_error(data) == ("ReentrancyGuardReentrantCall", ())
    assert credit(chain, attacker.address) == DEPOSIT + PRICE  # all undone, credit kept
    assert status(chain, trade_id).state == State.FUNDED


def test_hostile_receiver_blocks_only_itself(chain: SimpleNamespace) -> None:
    hostile = deploy_party(chain, "HostileReceiver")
    token_id = mint(chain, hostile.address, next_serial(chain))
    terms = make_terms(chain, token_id, seller=hostile.address)
    trade_id = open_trade(chain, terms, chain.buyer)
    as_party(chain, hostile, chain.passport.functions.approve(chain.escrow.address, token_id))
    as_party(chain, hostile, chain.escrow.functions.deposit(trade_id), DEPOSIT)
    deposit(chain, trade_id, chain.buyer)
    as_party(chain, hostile, chain.escrow.functions.markShipped(trade_id))
    arbiter = dispute_and_appoint_with(chain, trade_id, hostile)
    # The hostile seller loses; settling never pays it, so it cannot block the ruling.
    call(chain, "rule", trade_id, True, sender=arbiter)
    assert owner_of(chain, token_id) == hostile.address
    assert withdraw_all(chain, chain.buyer) == DEPOSIT + PRICE
    assert withdraw_all(chain, arbiter) == DEPOSIT
    # A hostile winner is credited too; its refusal stops only its own withdrawal.
    token_id = mint(chain, hostile.address, next_serial(chain))
    trade_id = open_trade(chain, make_terms(chain, token_id, seller=hostile.address), chain.buyer)
    as_party(chain, hostile, chain.passport.functions.approve(chain.escrow.address, token_id))
    as_party(chain, hostile, chain.escrow.functions.deposit(trade_id), DEPOSIT)
    deposit(chain, trade_id, chain.buyer)
    call(chain, "confirm", trade_id, sender=chain.buyer)
    assert credit(chain, hostile.address) == DEPOSIT + PRICE
    data = revert_data(lambda: as_party(chain, hostile, chain.escrow.functions.withdraw()))
    assert adversary_artifact("HostileReceiver").decode_error(data) == ("HostileRefused", ())
    assert credit(chain, hostile.address) == DEPOSIT + PRICE
    assert withdraw_all(chain, chain.buyer) == DEPOSIT
    assert balance(chain) == DEPOSIT + PRICE


def dispute_and_appoint_with(chain: SimpleNamespace, trade_id: int, seller: object) -> str:
    """As dispute_and_appoint, with a contract seller."""
    call(chain, "dispute", trade_id, sender=chain.buyer)
    proposed = status(chain, trade_id).arbiter
    call(chain, "acceptArbiter", trade_id, proposed, sender=chain.buyer)
    as_party(chain, seller, chain.escrow.functions.acceptArbiter(trade_id, proposed))
    return proposed


def test_escrow_is_not_a_payee_of_plain_transfers(chain: SimpleNamespace) -> None:
    data = revert_data(
        lambda: chain.w3.eth.send_transaction(
            {"from": chain.stranger, "to": chain.escrow.address, "value": 1}
        )
    )
    assert data == b""


# --- Stateful property test --------------------------------------------------------------------
#
# Random actions by the buyer, the seller, three arbiters (one tied to the seller), a stranger,
# the service and the clock, on one open trade at a time (a run opens several; settled ones
# are still acted on). After every step: coin in equals coin out plus coin held; what the
# escrow holds is exactly the open trade's deposits plus the credits owed; a settled trade
# holds nothing; every minted passport is with its seller, the escrow or its buyer, and with
# the escrow exactly while its trade is open and holds it; each step that settles a trade
# credits exactly what its outcome states, and nobody else is credited; a trade's details hash
# is the last one the service recorded before it settled.
#
# CI runs the "escrow-ci" profile; PROVENANCE_ESCROW_PROFILE=escrow-thorough runs far more.

settings.register_profile(
    "escrow-ci",
    max_examples=5,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.register_profile(
    "escrow-thorough",
    max_examples=200,
    stateful_step_count=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
WHO = ("seller", "buyer", "a0", "a1", "a2", "stranger", "operator")
# The parties act more often than the others, so that random runs reach rulings too.
ACTOR = st.sampled_from(("seller", "buyer") * 5 + WHO)
MOSTLY = st.sampled_from((True, True, True, False))
# Weighted: the steps a trade needs most often come up most often.
ACTIONS = (
    *["deposit"] * 6,
    "passport",
    "cancel",
    *["markShipped"] * 2,
    "prove",
    *["confirm"] * 2,
    *["dispute"] * 2,
    "declineArbiter",
    *["accept"] * 5,
    *["rule"] * 3,
    *["timeout"] * 2,
    *["clock"] * 2,
    *["withdraw"] * 2,
    "details",
)
NATURAL = st.sampled_from((True,) * 7 + (False,))
ARBITER_NAMES = ("a0", "a1", "a2")
WINDOW_CHOICES = (600, 3600)


@functools.cache
def machine_chain() -> SimpleNamespace:
    """One deployment for every example (each runs between a snapshot and its revert)."""
    chain = deploy_escrow()
    chain.names = {
        "seller": chain.seller,
        "buyer": chain.buyer,
        "stranger": chain.stranger,
        "operator": chain.operator,
        **dict(zip(ARBITER_NAMES, chain.arbiters, strict=True)),
    }
    transact(chain, chain.escrow.functions.setTie(chain.arbiters[2], chain.seller, True))
    approve_all = chain.passport.functions.setApprovalForAll(chain.escrow.address, True)
    transact(chain, approve_all, chain.seller)
    return chain


class TradeMachine(RuleBasedStateMachine):
    """Trades driven by random parties and a random clock; invariants checked after each step."""

    price = PRICE

    def __init__(self) -> None:
        super().__init__()
        self.chain = machine_chain()
        self.snapshot = self.chain.tester.take_snapshot()
        self.coin_in = 0
        self.coin_out = 0
        self.withdrawn = dict.fromkeys(WHO, 0)  # by whom, since the last check
        self.opened: dict[int, tuple[int, str, bool]] = {}  # id -> (token, serial, minted)
        self.active: dict[int, Status] = {}  # unsettled trades as last seen
        self.credits = dict.fromkeys(WHO, 0)
        self.details: dict[int, bytes] = {}  # the last details hash recorded, by trade
        assert balance(self.chain) == 0

    def teardown(self) -> None:
        self.chain.tester.revert_to_snapshot(self.snapshot)

    # Helpers

    def address(self, who: str) -> str:
        return self.chain.names[who]

    def attempt(self, function: object, who: str, value: int = 0) -> bool:
        """Send `function` from `who`; whether it succeeded (a reverted one changes nothing)."""
        # A fixed gas limit skips the estimate: a reverting transaction is mined with status 0.
        sent = function.transact({"from": self.address(who), "value": value, "gas": 2_000_000})
        receipt = self.chain.w3.eth.wait_for_transaction_receipt(sent)
        if receipt.status != 1:
            return False
        self.coin_in += value
        return True

    def settlement(self, earlier: Status, settled: Status) -> dict[str, int]:
        """What the outcome of `settled` (which stood at `earlier`) must credit, by name."""
        expected = dict.fromkeys(WHO, 0)
        names = {address: who for who, address in self.chain.names.items()}
        outcome = settled.outcome
        if outcome == Outcome.COMPLETED:
            expected["buyer"] += DEPOSIT
            expected["seller"] += DEPOSIT + self.price
        elif outcome == Outcome.CANCELLED:
            expected["buyer"] += (DEPOSIT + self.price) if earlier.buyer_deposited else 0
            expected["seller"] += DEPOSIT if earlier.seller_deposited else 0
        elif outcome in (Outcome.NOT_SHIPPED, Outcome.NO_ARBITER, Outcome.NO_RULING):
            expected["buyer"] += DEPOSIT + self.price
            expected["seller"] += DEPOSIT
        elif outcome == Outcome.FOR_BUYER:
            expected["buyer"] += DEPOSIT + self.price
            expected[names[settled.arbiter]] += DEPOSIT
        else:
            assert outcome == Outcome.FOR_SELLER
            expected["seller"] += DEPOSIT + self.price
            expected[names[settled.arbiter]] += DEPOSIT
        return expected

    # Rules

    @precondition(lambda self: not self.active)
    @rule(
        opener=ACTOR,
        minted=MOSTLY,
        windows=st.lists(st.sampled_from(WINDOW_CHOICES), min_size=5, max_size=5),
    )
    def open(self, opener: str, minted: bool, windows: list[int]) -> None:
        serial = next_serial(self.chain)
        token_id = (
            mint(self.chain, self.chain.seller, serial) if minted else passport_id(GTIN, serial)
        )
        terms = make_terms(
            self.chain, token_id, **dict(zip(WINDOWS, windows, strict=True)), price=self.price
        )
        opened = self.attempt(self.chain.escrow.functions.open(terms.as_tuple()), opener)
        assert opened == (opener in ("seller", "buyer", "operator"))
        if opened:
            trade_id = self.chain.escrow.functions.tradeCount().call()
            self.opened[trade_id] = (token_id, serial, minted)
            self.active[trade_id] = status(self.chain, trade_id)

    @precondition(lambda self: self.opened)
    @rule(
        pick=st.integers(0, 9),
        action=st.sampled_from(ACTIONS),
        natural=NATURAL,
        who=ACTOR,
        flag=st.booleans(),
        seconds=st.sampled_from((1, 300, 700, 4000)),
    )
    def act(
        self, pick: int, action: str, natural: bool, who: str, flag: bool, seconds: int
    ) -> None:
        """`who` takes a step of a trade; mostly the one whose step it is (`natural`).

        The trade is mostly an open one (`pick`), sometimes any, settled ones included.
        """
        choices = sorted(self.active) if self.active and pick < 9 else sorted(self.opened)
        trade_id = choices[pick % len(choices)]
        if action == "clock":
            self.chain.tester.time_travel(pending_time(self.chain) + seconds)
            return
        if action == "withdraw":
            self.withdraw(who)
            return
        if action == "details":
            self.record_details(trade_id, "operator" if natural else who)
            return
        escrow = self.chain.escrow.functions
        current = status(self.chain, trade_id)
        party = "buyer" if flag else "seller"
        value = 0
        if action == "deposit":
            if natural:
                who = "seller" if not current.seller_deposited else "buyer"
            value = DEPOSIT + (self.price if who == "buyer" else 0) + (0 if natural or flag else 1)
            function = escrow.deposit(trade_id)
        elif action == "passport":
            self.passport_arrives(trade_id, flag)
            return
        elif action == "prove":
            function = self.shipment_proof(trade_id, natural)
            who = "stranger"
        elif action == "accept":
            arbiter = current.arbiter if natural else self.address(who)
            if natural:
                who = "seller" if current.seller_choice != arbiter else "buyer"
            function = escrow.acceptArbiter(trade_id, arbiter)
        elif action == "rule":
            names = {address: name for name, address in self.chain.names.items()}
            if natural and current.arbiter in names:
                who = names[current.arbiter]
            function = escrow.rule(trade_id, flag)
        else:
            natural_actor = {"markShipped": "seller", "confirm": "buyer", "timeout": "stranger"}
            if natural:
                who = natural_actor.get(action, party)
            function = getattr(escrow, action)(trade_id)
        self.attempt(function, who, value)

    def passport_arrives(self, trade_id: int, by_consent: bool) -> None:
        """The service mints the passport into escrow, or relays the seller's consent."""
        token_id, serial, minted = self.opened[trade_id]
        if not minted:
            try:
                mint(self.chain, self.chain.escrow.address, serial)
            except (ContractCustomError, TransactionFailed):
                return  # refused: no trade is waiting for it
            self.opened[trade_id] = (token_id, serial, True)
        elif by_consent and owner_of(self.chain, token_id) == self.chain.seller:
            relayed = relay_transfer(
                self.chain, self.chain.seller, self.chain.escrow.address, token_id
            )
            self.attempt(relayed, "operator")

    def shipment_proof(self, trade_id: int, to_buyer: bool) -> object:
        """proveShipped with an anchored handoff of the item to the buyer (or to a stranger)."""
        _, serial, _ = self.opened[trade_id]
        terms = Terms.from_tuple(self.chain.escrow.functions.termsOf(trade_id).call())
        to_party = terms.buyer if to_buyer else self.chain.stranger
        event = handoff_event(self.chain, terms, serial, to_party=to_party)
        return prove_call(self.chain, trade_id, event, anchor_event(self.chain, event))

    def record_details(self, trade_id: int, who: str) -> None:
        """The service records a details hash: only it, only before the trade settles."""
        digest = os.urandom(32)
        settled = status(self.chain, trade_id).state == State.SETTLED
        recorded = self.attempt(self.chain.escrow.functions.recordDetails(trade_id, digest), who)
        assert recorded == (who == "operator" and not settled)
        if recorded:
            self.details[trade_id] = digest

    def withdraw(self, who: str) -> None:
        owed = credit(self.chain, self.address(who))
        withdrew = self.attempt(self.chain.escrow.functions.withdraw(), who)
        assert withdrew == (owed > 0)
        if withdrew:
            self.coin_out += owed
            self.withdrawn[who] += owed

    # The checks, after every step

    @invariant()
    def details_hash_is_the_last_recorded(self) -> None:
        """Only a successful recordDetails moves a trade's hash; a settled one's never moves."""
        for trade_id in self.opened:
            recorded = self.chain.escrow.functions.detailsHashOf(trade_id).call()
            assert recorded == self.details.get(trade_id, bytes(32))

    @invariant()
    def check(self) -> None:
        """Coin is conserved, settlements pay what they state, passports stay with a party."""
        chain = self.chain
        escrow = chain.escrow.address
        credits = {who: credit(chain, self.address(who)) for who in WHO}
        expected = {who: self.credits[who] - self.withdrawn[who] for who in WHO}
        in_trades = 0
        for trade_id, earlier in list(self.active.items()):
            current = status(chain, trade_id)
            token_id, _, minted = self.opened[trade_id]
            owner = owner_of(chain, token_id) if minted else None
            if current.state == State.SETTLED:
                # Settled: it holds nothing, releases the passport, and paid what it states.
                assert current.held == 0
                assert chain.escrow.functions.openTradeOf(token_id).call() == 0
                event(f"outcome {current.outcome.name}")
                for who, amount in self.settlement(earlier, current).items():
                    expected[who] += amount
                del self.active[trade_id]
            else:
                self.active[trade_id] = current
                buyer_part = DEPOSIT + self.price if current.buyer_deposited else 0
                assert current.held == buyer_part + (DEPOSIT if current.seller_deposited else 0)
                in_trades += current.held
            if minted:
                assert owner in (chain.seller, escrow, chain.buyer)
                in_escrow = current.state != State.SETTLED and current.passport_held
                assert (owner == escrow) == in_escrow
        assert credits == expected
        held = balance(chain)
        assert self.coin_in == self.coin_out + held
        assert held == in_trades + sum(credits.values())
        self.credits = credits
        self.withdrawn = dict.fromkeys(WHO, 0)


TradeMachine.TestCase.settings = settings.get_profile(
    os.environ.get("PROVENANCE_ESCROW_PROFILE", "escrow-ci")
)
TestTradeProperties = TradeMachine.TestCase
