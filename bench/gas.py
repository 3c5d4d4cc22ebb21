"""Gas of the passport and custody-ledger operations on the in-process EVM (eth-tester).

Run: python bench/gas.py. The passport is minted lazily: `gas_lazy_first_transfer` (one
mintWithConsent straight to the first buyer) against `gas_eager_mint_then_transfer` (mint to the
supplier, then a consented transfer). Target: gas_per_custody_event_at_1000 < 100, with salted
leaves (each event's leaf is the StandardMerkleTree leaf of its EIP-712 digest and a random salt).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from web3 import EthereumTesterProvider, Web3

# Run from a checkout without installing: the repository root holds contracts_abi.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from contracts_abi import eip712, load_artifact
from contracts_abi.merkle import custody_tree
from contracts_abi.passport import passport_id, tag_commitment

BATCH = 1000
GTIN = "09506000134352"


def deploy(w3: Web3, name: str, admin: str, operator: str):
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = w3.eth.wait_for_transaction_receipt(
        factory.constructor(admin, operator).transact({"from": operator})
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


if __name__ == "__main__":
    main()
