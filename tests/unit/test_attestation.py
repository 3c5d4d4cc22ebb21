"""services.verification.attest: the service's signature over the verdict a buyer reads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from eth_account import Account

from contracts_abi import eip712
from provenance_api.schemas import ReasonPublic, Verdict, Verification
from provenance_api.services.verification import attest

KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
LEDGER = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
ANSWER = Verification(
    verdict=Verdict.SUSPICIOUS,
    reasons=[ReasonPublic(code="replayed_counter", message="this tap was seen before")],
    checked_at=datetime(2026, 12, 1, 16, 0, 0, 999_999, tzinfo=UTC),
    tag_kind="ntag424_sun",
    gtin="09506000134352",
    serial="S1",
)


def _signed(answer: Verification) -> eip712.TagVerdict:
    """The TagVerdict a browser rebuilds from what the answer shows."""
    return eip712.TagVerdict(
        gtin=answer.gtin or "",
        serial=answer.serial or "",
        tag_kind=answer.tag_kind or "",
        verdict=answer.verdict.value,
        reasons_hash=eip712.reasons_hash([(r.code, r.message) for r in answer.reasons]),
        checked_at=int(answer.checked_at.timestamp()),
    )


def test_the_attestation_recovers_to_the_services_key() -> None:
    made = attest(ANSWER, KEY, 31337, LEDGER)
    assert made is not None
    assert made.signer == Account.from_key(KEY).address
    assert (made.chain_id, made.ledger) == (31337, eip712.to_checksum_address(LEDGER))
    assert (made.verdict, made.tag_kind, made.checked_at) == (
        Verdict.SUSPICIOUS,
        "ntag424_sun",
        int(datetime(2026, 12, 1, 16, tzinfo=UTC).timestamp()),  # whole seconds, rounded down
    )
    signature = bytes.fromhex(made.signature[2:])
    signer = eip712.recover_tag_verdict_signer(
        signature, _signed(ANSWER), chain_id=31337, ledger=LEDGER
    )
    assert signer == made.signer


@pytest.mark.parametrize(
    "change",
    [
        {"verdict": Verdict.AUTHENTIC},
        {"reasons": []},
        {"serial": "S2"},
        {"tag_kind": "qr_label"},
        {"checked_at": datetime(2026, 12, 1, 16, 0, 1, tzinfo=UTC)},
    ],
)
def test_a_changed_answer_does_not_recover_to_the_signer(change: dict) -> None:
    made = attest(ANSWER, KEY, 31337, LEDGER)
    assert made is not None
    changed = ANSWER.model_copy(update=change)
    signer = eip712.recover_tag_verdict_signer(
        bytes.fromhex(made.signature[2:]), _signed(changed), chain_id=31337, ledger=LEDGER
    )
    assert signer != made.signer


def test_an_answer_naming_no_item_is_not_signed() -> None:
    down = Verification(verdict=Verdict.UNVERIFIABLE, reasons=[], checked_at=ANSWER.checked_at)
    assert attest(down, KEY, 31337, LEDGER) is None
