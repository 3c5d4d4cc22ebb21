"""Gas of the passport, custody-ledger and trade-escrow operations on the in-process EVM.

Run: python bench/gas.py. The passport is minted lazily: `gas_lazy_first_transfer` (one
mintWithConsent straight to the first buyer) against `gas_eager_mint_then_transfer` (mint to the
supplier, then a consented transfer). Target: gas_per_custody_event_at_1000 < 100, with salted
leaves (each event's leaf is the StandardMerkleTree leaf of its EIP-712 digest and a random salt).

Trades: `trade_<path>_gas` is the gas of every transaction of one TradeEscrow path, from `open`
to the last payee's `withdraw` (the seller's approval or the mint into escrow included), each
path from the same state after one warm-up trade; `trade_<step>_gas` lines give single steps.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

from web3 import EthereumTesterProvider, Web3

# Run from a checkout without installing: the repository root holds contracts_abi.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from contracts_abi import eip712, load_artifact
from contracts_abi.escrow import Terms, custody_event_args
from contracts_abi.merkle import custody_tree
from contracts_abi.passport import passport_id, tag_commitment

BATCH = 1000
GTIN = "09506000134352"


def deploy(w3: Web3, name: str, admin: str, operator: str, *more: str):
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = w3.eth.wait_for_transaction_receipt(
        factory.constructor(admin, operator, *more).transact({"from": operator})
    )
    return w3.eth.contract(address=receipt.contractAddress, abi=artifact.abi), receipt.gasUsed


def gas_of(w3: Web3, call, sender: str) -> int:
    receipt = w3.eth.wait_for_transaction_receipt(call.transact({"from": sender}))
    assert receipt.status == 1
    return receipt.gasUsed


def main() -> None:
    w3 = Web3(EthereumTesterProvider())
    tester = w3.provider.ethereum_tester
    admin, operator, alice, bob, carol = w3.eth.accounts[:5]
    keys = {
        key.public_key.to_checksum_address(): key.to_bytes() for key in tester.backend.account_keys
    }
    passport, deploy_passport = deploy(w3, "ProductPassport", admin, operator)
    ledger, deploy_ledger = deploy(w3, "CustodyLedger", admin, operator)

    gas_set_supplier = gas_of(w3, passport.functions.setSupplier(GTIN, carol), operator)
    tag = tag_commitment("ntag424", os.urandom(7))

    def mint_to(to: str, serial: str) -> int:
        """Gas of minting (GTIN, serial) to `to` under the supplier's (carol's) consent."""
        deadline = w3.eth.get_block("latest").timestamp + 3600
        signature = eip712.sign_mint_consent(
            keys[carol],
            chain_id=w3.eth.chain_id,
            passport=passport.address,
            to=to,
            token_id=passport_id(GTIN, serial),
            tag_commitment=tag,
            nonce=passport.functions.nonces(carol).call(),
            deadline=deadline,
        )
        call = passport.functions.mintWithConsent(to, GTIN, serial, tag, deadline, signature)
        return gas_of(w3, call, operator)

    def transfer(owner: str, to: str, serial: str) -> int:
        """Gas of relaying `owner`'s consent to move (GTIN, serial) to `to`."""
        token_id = passport_id(GTIN, serial)
        deadline = w3.eth.get_block("latest").timestamp + 3600
        signature = eip712.sign_transfer_consent(
            keys[owner],
            chain_id=w3.eth.chain_id,
            passport=passport.address,
            to=to,
            token_id=token_id,
            nonce=passport.functions.nonces(owner).call(),
            deadline=deadline,
        )
        call = passport.functions.transferWithConsent(owner, to, token_id, deadline, signature)
        return gas_of(w3, call, operator)

    # Measured where the owners already hold a passport and have spent a nonce, so that no
    # balance or nonce slot is created from zero (the first of each costs ~17k more): what a
    # supplier selling many items sees.
    mint_to(carol, "SN-00000000")
    mint_to(carol, "SN-00000001")
    mint_to(alice, "SN-00000002")
    transfer(carol, alice, "SN-00000001")
    # Eager: mint to the supplier, then relay its consent to the buyer (two transactions).
    gas_mint = mint_to(carol, "SN-00000003")
    gas_transfer_with_consent = transfer(carol, alice, "SN-00000003")
    # Lazy: the first transfer mints straight to the buyer (one transaction).
    gas_lazy_first_transfer = mint_to(alice, "SN-00000004")
    gas_cancel_consent = gas_of(w3, passport.functions.cancelConsent(0), bob)

    plain = passport.functions.transferFrom(alice, bob, passport_id(GTIN, "SN-00000002"))
    gas_plain = gas_of(w3, plain, alice)

    events = [[os.urandom(32), os.urandom(32)] for _ in range(BATCH)]  # (digest, salt)
    started = time.perf_counter()
    tree = custody_tree(events)
    proofs = [tree.proof(i) for i in range(BATCH)]
    tree_ms = (time.perf_counter() - started) * 1000
    assert len(proofs) == BATCH
    gas_anchor = gas_of(w3, ledger.functions.anchor(tree.root, BATCH, os.urandom(32)), operator)

    # verifyEvent is a view: free through eth_call, this much when a contract or transaction
    # calls it (21,000 of which is any transaction's base cost).
    verify = ledger.functions.verifyEvent(tree.root, *events[0], proofs[0])
    assert verify.call()
    gas_verify_event = verify.estimate_gas()

    print(f"gas_deploy_product_passport: {deploy_passport}")
    print(f"gas_deploy_custody_ledger: {deploy_ledger}")
    print(f"gas_set_supplier_once_per_product: {gas_set_supplier}")
    print(f"gas_mint_with_consent_to_supplier: {gas_mint}")
    print(f"gas_transfer_with_consent: {gas_transfer_with_consent}")
    print(f"gas_eager_mint_then_transfer: {gas_mint + gas_transfer_with_consent}")
    print(f"gas_lazy_first_transfer: {gas_lazy_first_transfer}")
    print(f"gas_erc721_plain_transfer: {gas_plain}")
    print(f"gas_cancel_consent: {gas_cancel_consent}")
    print(f"gas_anchor_batch_{BATCH}: {gas_anchor}")
    print(f"gas_per_custody_event_at_{BATCH}: {gas_anchor // BATCH}")
    print(f"gas_verify_event_at_{BATCH}: {gas_verify_event}")
    print(f"gas_verify_event_at_{BATCH}_over_base: {gas_verify_event - 21_000}")
    print(f"merkle_tree_and_proofs_{BATCH}_ms: {tree_ms:.1f}")

    escrow, deploy_escrow = deploy(
        w3, "TradeEscrow", admin, operator, passport.address, ledger.address
    )
    print(f"trade_deploy_gas: {deploy_escrow}")
    for name, gas in trade_gas(w3, passport, ledger, escrow, mint_to, keys).items():
        print(f"trade_{name}_gas: {gas}")


def trade_gas(w3: Web3, passport, ledger, escrow, mint_to, keys) -> dict[str, int]:
    """Gas of each TradeEscrow path and of its single steps."""
    tester = w3.provider.ethereum_tester
    admin, operator, seller, buyer, supplier, device, *arbiters = w3.eth.accounts[:9]
    del admin, supplier
    deposit, price = 10**18, 3 * 10**18
    serials = iter(range(1_000_000))
    steps: dict[str, int] = {}
    for index, arbiter in enumerate(arbiters):
        gas_of(w3, escrow.functions.registerArbiter(f"https://arb.example/{index}"), arbiter)

    def terms(token_id: int) -> tuple:
        windows = (3600, 2 * 86400, 7 * 86400, 3 * 86400, 14 * 86400)
        return Terms(token_id, seller, buyer, deposit, price, *windows).as_tuple()

    def step(name: str, call, sender: str, value: int = 0) -> int:
        receipt = w3.eth.wait_for_transaction_receipt(
            call.transact({"from": sender, "value": value})
        )
        assert receipt.status == 1, name
        steps.setdefault(name, receipt.gasUsed)
        return receipt.gasUsed

    def opened(into_escrow: bool = False) -> tuple[int, int, int]:
        """(gas, trade id, token id) of a trade opened and funded by both parties."""
        serial = f"TR-{next(serials):06d}"
        token_id = passport_id(GTIN, serial)
        gas = 0
        if not into_escrow:
            mint_to(seller, serial)  # the seller's passport from before: not the trade's cost
        gas += step("open", escrow.functions.open(terms(token_id)), seller)
        trade_id = escrow.functions.tradeCount().call()
        if into_escrow:
            gas += mint_to(escrow.address, serial)
            steps.setdefault("mint_into_escrow", gas - steps["open"])
        else:
            approve = passport.functions.approve(escrow.address, token_id)
            gas += step("approve_passport", approve, seller)
        deposit_call = escrow.functions.deposit(trade_id)
        gas += step("deposit_seller", deposit_call, seller, deposit)
        gas += step("deposit_buyer", deposit_call, buyer, deposit + price)
        return gas, trade_id, token_id

    def withdrawn(*payees: str) -> int:
        return sum(step("withdraw", escrow.functions.withdraw(), payee) for payee in payees)

    def later(trade_id: int) -> None:
        tester.time_travel(escrow.functions.deadlineOf(trade_id).call() + 1)

    def appointed(trade_id: int) -> tuple[int, str]:
        gas = step("dispute", escrow.functions.dispute(trade_id), buyer)
        arbiter = escrow.functions.statusOf(trade_id).call()[7]
        accept = escrow.functions.acceptArbiter(trade_id, arbiter)
        # The second acceptance of the same arbiter appoints it.
        gas += step("accept_arbiter", accept, buyer) + step("appoint_arbiter", accept, seller)
        return gas, arbiter

    def completed() -> int:
        gas, trade_id, _ = opened()
        gas += step("mark_shipped", escrow.functions.markShipped(trade_id), seller)
        gas += step("confirm", escrow.functions.confirm(trade_id), buyer)
        return gas + withdrawn(seller, buyer)

    def completed_by_timeout() -> int:
        gas, trade_id, _ = opened()
        gas += step("mark_shipped", escrow.functions.markShipped(trade_id), seller)
        later(trade_id)
        gas += step("timeout", escrow.functions.timeout(trade_id), device)
        return gas + withdrawn(seller, buyer)

    def proved_shipped() -> int:
        gas, trade_id, token_id = opened()
        serial = f"TR-{next(serials) - 1:06d}"
        assert passport_id(GTIN, serial) == token_id
        event = eip712.CustodyEvent(
            event_id=uuid.uuid4(),
            gtin=GTIN,
            serial=serial,
            biz_step="receiving",
            disposition="in_progress",
            read_point="urn:epc:id:sgln:9506000.13435.0",
            from_party=seller,
            to_party=buyer,
            event_time=w3.eth.get_block("latest").timestamp,
            time_zone_offset=60,
            tag_evidence=os.urandom(32),
            device=device,
        )
        salt = os.urandom(32)
        leaves = [[eip712.custody_event_digest(event), salt]]
        leaves += [[os.urandom(32), os.urandom(32)] for _ in range(BATCH - 1)]
        tree = custody_tree(leaves)
        gas_of(w3, ledger.functions.anchor(tree.root, BATCH, os.urandom(32)), operator)
        prove = escrow.functions.proveShipped(
            trade_id, custody_event_args(event), salt, tree.root, tree.proof(0)
        )
        gas += step(f"prove_shipped_at_{BATCH}", prove, device)
        gas += step("confirm", escrow.functions.confirm(trade_id), buyer)
        return gas + withdrawn(seller, buyer)

    def minted_into_escrow() -> int:
        gas, trade_id, _ = opened(into_escrow=True)
        gas += step("confirm", escrow.functions.confirm(trade_id), buyer)
        return gas + withdrawn(seller, buyer)

    def ruled(for_buyer: bool) -> int:
        gas, trade_id, _ = opened()
        gas += step("mark_shipped", escrow.functions.markShipped(trade_id), seller)
        more, arbiter = appointed(trade_id)
        gas += more + step("rule", escrow.functions.rule(trade_id, for_buyer), arbiter)
        return gas + withdrawn(buyer if for_buyer else seller, arbiter)

    def cancelled() -> int:
        serial = f"TR-{next(serials):06d}"
        mint_to(seller, serial)
        gas = step("open", escrow.functions.open(terms(passport_id(GTIN, serial))), seller)
        trade_id = escrow.functions.tradeCount().call()
        gas += step("deposit_buyer", escrow.functions.deposit(trade_id), buyer, deposit + price)
        gas += step("cancel", escrow.functions.cancel(trade_id), seller)
        return gas + withdrawn(buyer)

    def never_deposited() -> int:
        serial = f"TR-{next(serials):06d}"
        mint_to(seller, serial)
        gas = step("open", escrow.functions.open(terms(passport_id(GTIN, serial))), buyer)
        trade_id = escrow.functions.tradeCount().call()
        gas += step("deposit_buyer", escrow.functions.deposit(trade_id), buyer, deposit + price)
        later(trade_id)
        gas += step("timeout", escrow.functions.timeout(trade_id), buyer)
        return gas + withdrawn(buyer)

    def timed_out(disputed: bool, appoint: bool) -> int:
        gas, trade_id, _ = opened()
        if appoint:
            gas += appointed(trade_id)[0]
        elif disputed:
            gas += step("dispute", escrow.functions.dispute(trade_id), buyer)
        later(trade_id)
        gas += step("timeout", escrow.functions.timeout(trade_id), buyer)
        return gas + withdrawn(seller, buyer)

    completed()  # warm-up: counters and the parties' passport balances exist from here on
    paths = {
        "completed": completed,
        "completed_by_timeout": completed_by_timeout,
        "shipment_proved": proved_shipped,
        "minted_into_escrow": minted_into_escrow,
        "ruled_for_buyer": lambda: ruled(True),
        "ruled_for_seller": lambda: ruled(False),
        "cancelled": cancelled,
        "never_deposited": never_deposited,
        "never_shipped": lambda: timed_out(False, False),
        "no_arbiter_agreed": lambda: timed_out(True, False),
        "arbiter_never_ruled": lambda: timed_out(True, True),
    }
    steps.clear()
    totals = {}
    for name, path in paths.items():
        snapshot = tester.take_snapshot()
        totals[name] = path()
        tester.revert_to_snapshot(snapshot)
    # The service records the details hash of a trade's encrypted records (the first record:
    # a zero slot set, the dearer case; later ones replace it).
    snapshot = tester.take_snapshot()
    _, trade_id, _ = opened()
    step("record_details", escrow.functions.recordDetails(trade_id, b"\x01" * 32), operator)
    tester.revert_to_snapshot(snapshot)
    return {**totals, **steps}


if __name__ == "__main__":
    main()
