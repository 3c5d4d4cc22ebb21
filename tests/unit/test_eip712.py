"""contracts_abi.eip712 digests cross-checked against eth-account's general encoder."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from contracts_abi import eip712

KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
OTHER_KEY = bytes.fromhex("8da4ef21b864d2cc526dbdb2a120bd2874c36c9d0a1fb7f8c63d7f7a8b41de8f")
PASSPORT = "0xF2E246BB76DF876Cef8b38ae84130F4F55De395b"
BUYER = "0x2946259E0334f33A064106302415aD3391BeD384"
CONSENT = {
    "chain_id": 131277322940537,
    "passport": PASSPORT,
    "to": BUYER,
    "token_id": 2**256 - 1,
    "nonce": 3,
    "deadline": 1_900_000_000,
}


def _eth_account_digest(typed_data: dict) -> bytes:
    signable = encode_typed_data(full_message=typed_data)
    # EIP-191 version 0x01: digest = keccak(0x19 || 0x01 || domain || struct).
    return eip712.typed_digest(signable.header, signable.body)


UID = bytes.fromhex("04a1b2c3d4e5f6")
FULL = {"lot": "L-7", "expiry": "271231", "variant": "V2"}


@pytest.mark.parametrize(
    ("gtin", "serial", "uid", "fields"),
    [
        ("09506000134352", "ABC123", None, {}),
        ("00000000000000", "é/ü", None, {}),
        ("09506000134352", "ABC123", UID, {}),
        ("09506000134352", "ABC123", None, FULL),
        ("09506000134352", "ABC123", UID, FULL),
        ("09506000134352", "ABC123", None, {"expiry": "271200"}),
    ],
)
def test_label_digest_matches_eth_account(
    gtin: str, serial: str, uid: bytes | None, fields: dict
) -> None:
    typed = eip712.label_typed_data(gtin, serial, uid, **fields)
    assert eip712.label_digest(gtin, serial, uid, **fields) == _eth_account_digest(typed)


def test_one_struct_for_every_label_with_absent_parts_empty() -> None:
    typed = eip712.label_typed_data("09506000134352", "ABC123")
    assert typed["primaryType"] == "Label" and list(typed["types"]) == ["EIP712Domain", "Label"]
    assert typed["message"] == {
        "gtin": "09506000134352",
        "serial": "ABC123",
        "lot": "",
        "expiry": "",
        "variant": "",
        "uid": b"",
    }
    # None and empty are the same absent part; the digest of the full struct is the same.
    empty = {"lot": "", "expiry": "", "variant": ""}
    assert eip712.label_digest("09506000134352", "ABC123", b"", **empty) == eip712.label_digest(
        "09506000134352", "ABC123"
    )


def test_label_signature_recovers_and_matches_eth_account() -> None:
    signature = eip712.sign_label(KEY, "09506000134352", "ABC123", UID, **FULL)
    address = eip712.address_of_private_key(KEY)
    assert eip712.recover_label_signer(signature, "09506000134352", "ABC123", UID, **FULL) == (
        address
    )
    signed = Account.sign_typed_data(
        KEY, full_message=eip712.label_typed_data("09506000134352", "ABC123", UID, **FULL)
    )
    assert signed.signature == signature
    assert address == Account.from_key(KEY).address


@pytest.mark.parametrize(
    ("gtin", "serial", "uid", "fields"),
    [
        ("09506000134353", "ABC123", UID, FULL),
        ("09506000134352", "ABC124", UID, FULL),
        ("09506000134352", "ABC123", b"\x04", FULL),
        ("09506000134352", "ABC123", None, FULL),
        ("09506000134352", "ABC123", UID, {**FULL, "lot": "L-8"}),
        ("09506000134352", "ABC123", UID, {**FULL, "lot": None}),
        ("09506000134352", "ABC123", UID, {**FULL, "expiry": "281231"}),
        ("09506000134352", "ABC123", UID, {**FULL, "expiry": None}),
        ("09506000134352", "ABC123", UID, {**FULL, "variant": "V3"}),
        ("09506000134352", "ABC123", UID, {**FULL, "variant": None}),
        # A field's text moved into its neighbour: each is hashed on its own.
        ("09506000134352", "ABC123", UID, {**FULL, "lot": "", "variant": "L-7"}),
    ],
)
def test_recover_label_signer_rejects_tampered_claim(
    gtin: str, serial: str, uid: bytes | None, fields: dict
) -> None:
    signature = eip712.sign_label(KEY, "09506000134352", "ABC123", UID, **FULL)
    recovered = eip712.recover_label_signer(signature, gtin, serial, uid, **fields)
    assert recovered != eip712.address_of_private_key(KEY)


def test_recover_label_signer_rejects_tampered_signature() -> None:
    signature = bytearray(eip712.sign_label(KEY, "09506000134352", "ABC123"))
    signature[10] ^= 0x01
    try:
        recovered = eip712.recover_label_signer(bytes(signature), "09506000134352", "ABC123")
    except eip712.SignatureError:
        return
    assert recovered != eip712.address_of_private_key(KEY)


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        (b"\x00" * 64, "65 bytes"),
        (b"\x01" * 64 + b"\x1d", "recovery id"),
        (b"\x01" * 64 + b"\x00", "must be 27 or 28, got 0"),
        (b"\x01" * 64 + b"\x01", "must be 27 or 28, got 1"),
        (b"\x01" * 32 + b"\xff" * 32 + b"\x1b", "out of range"),
    ],
)
def test_recover_rejects_malformed_signature(signature: bytes, message: str) -> None:
    with pytest.raises(eip712.SignatureError, match=message):
        eip712.recover_label_signer(signature, "09506000134352", "ABC123")


def test_v_0_or_1_twin_of_a_valid_signature_is_rejected() -> None:
    signature = eip712.sign_label(KEY, "09506000134352", "ABC123")
    twin = signature[:64] + bytes([signature[64] - 27])
    with pytest.raises(eip712.SignatureError, match="27 or 28"):
        eip712.recover_label_signer(twin, "09506000134352", "ABC123")


def test_transfer_consent_digest_matches_eth_account() -> None:
    typed = eip712.transfer_consent_typed_data(**CONSENT)
    assert eip712.transfer_consent_digest(**CONSENT) == _eth_account_digest(typed)


def test_transfer_consent_domain_matches_eth_account() -> None:
    typed = eip712.transfer_consent_typed_data(**CONSENT)
    header = encode_typed_data(full_message=typed).header
    assert eip712.passport_domain_separator(CONSENT["chain_id"], PASSPORT) == header


def test_transfer_consent_accepts_lowercase_addresses() -> None:
    lower = {**CONSENT, "passport": PASSPORT.lower(), "to": BUYER.lower()}
    assert eip712.transfer_consent_digest(**lower) == eip712.transfer_consent_digest(**CONSENT)


def test_transfer_consent_signature_matches_eth_account_and_recovers() -> None:
    signature = eip712.sign_transfer_consent(KEY, **CONSENT)
    signed = Account.sign_typed_data(
        KEY, full_message=eip712.transfer_consent_typed_data(**CONSENT)
    )
    assert signed.signature == signature
    owner = eip712.address_of_private_key(KEY)
    assert eip712.recover_transfer_consent_signer(signature, **CONSENT) == owner


@pytest.mark.parametrize(
    "change",
    [
        {"chain_id": 1},
        {"passport": BUYER},
        {"to": PASSPORT},
        {"token_id": 1},
        {"nonce": 4},
        {"deadline": 1_900_000_001},
    ],
)
def test_transfer_consent_binds_every_field(change: dict) -> None:
    signature = eip712.sign_transfer_consent(KEY, **CONSENT)
    recovered = eip712.recover_transfer_consent_signer(signature, **{**CONSENT, **change})
    assert recovered != eip712.address_of_private_key(KEY)
    assert recovered != eip712.address_of_private_key(OTHER_KEY)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"token_id": -1}, "token_id"),
        ({"nonce": 2**256}, "nonce"),
        ({"deadline": True}, "deadline"),
        ({"to": "0x1234"}, "to is not an Ethereum address"),
        ({"passport": "not an address"}, "passport is not an Ethereum address"),
    ],
)
def test_transfer_consent_rejects_bad_fields(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        eip712.transfer_consent_digest(**{**CONSENT, **change})


# --- custody events -------------------------------------------------------------------------

DEVICE = Account.from_key(KEY).address
EVENT = eip712.CustodyEvent(
    event_id=uuid.UUID("0190d6a4-6b9e-7c3a-8f2e-1b2c3d4e5f60"),
    gtin="09506000134352",
    serial="SN-0001",
    biz_step="shipping",
    disposition="in_transit",
    read_point="urn:epc:id:sgln:9506000.13435.0",
    from_party=PASSPORT,
    to_party=BUYER,
    event_time=1_764_583_200,
    time_zone_offset=60,
    tag_evidence=eip712.tag_evidence_digest("https://id.example.com/01/09506000134352/21/SN-0001"),
    device=DEVICE,
)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"time_zone_offset": -300},  # negative int16: sign-extended
        {"time_zone_offset": -840, "event_time": 0},
        {"time_zone_offset": 840, "event_time": 2**64 - 1},
        {"from_party": eip712.ZERO_ADDRESS, "biz_step": "receiving", "serial": "é/ü"},
        {"tag_evidence": eip712.tag_evidence_digest("u", UID, b"\x01" * 32), "read_point": ""},
    ],
)
def test_custody_event_digest_matches_eth_account(changes: dict) -> None:
    event = dataclasses.replace(EVENT, **changes)
    typed = eip712.custody_event_typed_data(event)
    assert eip712.custody_event_digest(event) == _eth_account_digest(typed)


def test_custody_event_type_string_is_what_eth_account_derives() -> None:
    from eth_account._utils.encode_typed_data.encoding_and_hashing import encode_type

    typed = eip712.custody_event_typed_data(EVENT)
    assert encode_type("CustodyEvent", typed["types"]) == eip712.CUSTODY_EVENT_TYPE


@pytest.mark.parametrize(
    ("url", "uid", "signature"),
    [
        ("https://id.example.com/01/09506000134352/21/SN-1?picc_data=AB&cmac=CD", b"", b""),
        ("https://id.example.com/01/09506000134352/21/SN-1?sig=00", UID, bytes(range(32))),
        ("", b"", b""),
    ],
)
def test_tag_evidence_digest_is_the_eip712_struct_hash(url, uid, signature) -> None:
    typed = eip712.tag_evidence_typed_data(url, uid, signature)
    body = encode_typed_data(full_message=typed).body
    assert eip712.tag_evidence_digest(url, uid, signature) == body


def test_tag_evidence_parts_cannot_trade_bytes() -> None:
    url = "https://id.example.com/01/09506000134352/21/SN-1"
    assert eip712.tag_evidence_digest(url, UID) != eip712.tag_evidence_digest(url, b"", UID)
    assert eip712.tag_evidence_digest(url + "x") != eip712.tag_evidence_digest(url, b"x")
    assert eip712.tag_evidence_digest(url.upper()) != eip712.tag_evidence_digest(url)


def test_custody_event_sign_and_recover_agree_with_eth_account() -> None:
    signature = eip712.sign_custody_event(KEY, EVENT)
    assert eip712.recover_custody_event_signer(signature, EVENT) == DEVICE
    signable = encode_typed_data(full_message=eip712.custody_event_typed_data(EVENT))
    assert Account.recover_message(signable, signature=signature) == DEVICE
    # Any field changed: the signature names someone else.
    moved = dataclasses.replace(EVENT, to_party=PASSPORT)
    assert eip712.recover_custody_event_signer(signature, moved) != DEVICE
    other = eip712.sign_custody_event(OTHER_KEY, EVENT)
    assert eip712.recover_custody_event_signer(other, EVENT) != DEVICE


def test_every_custody_event_field_is_in_the_digest() -> None:
    changes = {
        "event_id": uuid.UUID(int=1),
        "gtin": "00000000000000",
        "serial": "SN-0002",
        "biz_step": "receiving",
        "disposition": "in_progress",
        "read_point": "dock-2",
        "from_party": BUYER,
        "to_party": PASSPORT,
        "event_time": EVENT.event_time + 1,
        "time_zone_offset": 0,
        "tag_evidence": bytes(32),
        "device": BUYER,
    }
    assert set(changes) == {f.name for f in dataclasses.fields(eip712.CustodyEvent)}
    base = eip712.custody_event_digest(EVENT)
    digests = {
        eip712.custody_event_digest(dataclasses.replace(EVENT, **{k: v}))
        for k, v in changes.items()
    }
    assert base not in digests and len(digests) == len(changes)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"time_zone_offset": 841}, "time_zone_offset"),
        ({"time_zone_offset": -(2**15)}, "time_zone_offset"),
        ({"event_time": -1}, "event_time"),
        ({"event_time": 2**64}, "event_time"),
        ({"tag_evidence": b"\x00" * 31}, "tag_evidence"),
        ({"device": "0x1234"}, "device"),
        ({"event_id": "0190d6a4-6b9e-7c3a-8f2e-1b2c3d4e5f60"}, "event_id"),
    ],
)
def test_custody_event_refuses_values_the_type_cannot_hold(changes, field) -> None:
    with pytest.raises(ValueError, match=field):
        eip712.custody_event_digest(dataclasses.replace(EVENT, **changes))


def test_the_event_digest_is_what_the_salted_leaf_commits_to() -> None:
    from contracts_abi.merkle import custody_leaf, custody_tree

    digest, salt = eip712.custody_event_digest(EVENT), bytes(range(32))
    assert custody_tree([[digest, salt]]).root == custody_leaf(digest, salt)
    moved = eip712.custody_event_digest(dataclasses.replace(EVENT, to_party=PASSPORT))
    assert custody_leaf(moved, salt) != custody_leaf(digest, salt)


def test_addresses_are_checksummed_and_parsed_as_eth_utils_does() -> None:
    # eip712 has its own address code (eth_utils costs a reader device ~25 MB to import).
    import os

    import eth_utils

    for _ in range(2000):
        raw = os.urandom(20)
        assert eip712.to_checksum_address(raw) == eth_utils.to_checksum_address(raw)
        for text in (raw.hex(), "0x" + raw.hex(), "0X" + raw.hex().upper()):
            assert eip712.to_canonical_address(text) == raw
    for bad in ("0x12", "hello", "0x" + "01" * 20 + " ", b"\x01" * 19, "0x" + "g" * 40):
        with pytest.raises(ValueError):
            eip712.to_canonical_address(bad)


# --- The service's verdict -------------------------------------------------------------------

LEDGER = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
REASONS = [("sun_fresh", "a fresh tap"), ("ok", "é/ü")]
VERDICT = eip712.TagVerdict(
    gtin="09506000134352",
    serial="SN-0001",
    tag_kind="ntag424",
    verdict="authentic",
    reasons_hash=eip712.reasons_hash(REASONS),
    checked_at=1_900_000_000,
)
SERVICE = Account.from_key(KEY).address


@pytest.mark.parametrize(
    "changes",
    [{}, {"tag_kind": "", "reasons_hash": eip712.reasons_hash([])}, {"checked_at": 2**64 - 1}],
)
def test_tag_verdict_digest_matches_eth_account(changes: dict) -> None:
    verdict = dataclasses.replace(VERDICT, **changes)
    typed = eip712.tag_verdict_typed_data(verdict, chain_id=31337, ledger=LEDGER)
    assert eip712.tag_verdict_digest(verdict, chain_id=31337, ledger=LEDGER) == (
        _eth_account_digest(typed)
    )


@pytest.mark.parametrize("reasons", [[], REASONS[:1], REASONS])
def test_reasons_hash_is_what_eip712_makes_of_a_reason_array(reasons) -> None:
    # A struct whose one field is a Reason[]: its hash is keccak(typehash || reasons_hash).
    typed = {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}],
            "Shown": [{"name": "reasons", "type": "Reason[]"}],
            "Reason": [{"name": "code", "type": "string"}, {"name": "message", "type": "string"}],
        },
        "primaryType": "Shown",
        "domain": {"name": "x"},
        "message": {"reasons": [{"code": c, "message": m} for c, m in reasons]},
    }
    typehash = eip712.keccak(b"Shown(Reason[] reasons)" + eip712.REASON_TYPE.encode())
    body = encode_typed_data(full_message=typed).body
    assert body == eip712.keccak(typehash + eip712.reasons_hash(reasons))


def test_reasons_hash_binds_order_and_parts() -> None:
    assert eip712.reasons_hash(REASONS) != eip712.reasons_hash(REASONS[::-1])
    assert eip712.reasons_hash([("ab", "c")]) != eip712.reasons_hash([("a", "bc")])
    assert eip712.reasons_hash([]) == eip712.keccak(b"")


def test_tag_verdict_signature_recovers_to_the_signer() -> None:
    signature = eip712.sign_tag_verdict(KEY, VERDICT, chain_id=31337, ledger=LEDGER)
    assert eip712.recover_tag_verdict_signer(signature, VERDICT, chain_id=31337, ledger=LEDGER) == (
        SERVICE
    )
    typed = eip712.tag_verdict_typed_data(VERDICT, chain_id=31337, ledger=LEDGER)
    assert Account.recover_message(encode_typed_data(full_message=typed), signature=signature) == (
        SERVICE
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"verdict": "counterfeit"},
        {"gtin": "00000000000000"},
        {"serial": "SN-0002"},
        {"tag_kind": "qr"},
        {"reasons_hash": eip712.reasons_hash(REASONS[:1])},
        {"checked_at": 1_900_000_001},
    ],
)
def test_a_changed_verdict_names_another_signer(changes: dict) -> None:
    signature = eip712.sign_tag_verdict(KEY, VERDICT, chain_id=31337, ledger=LEDGER)
    changed = dataclasses.replace(VERDICT, **changes)
    signer = eip712.recover_tag_verdict_signer(signature, changed, chain_id=31337, ledger=LEDGER)
    assert signer != SERVICE


def test_a_verdict_signature_holds_for_one_chain_and_ledger_only() -> None:
    signature = eip712.sign_tag_verdict(KEY, VERDICT, chain_id=31337, ledger=LEDGER)
    for chain_id, ledger in ((1, LEDGER), (31337, PASSPORT)):
        signer = eip712.recover_tag_verdict_signer(
            signature, VERDICT, chain_id=chain_id, ledger=ledger
        )
        assert signer != SERVICE


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"reasons_hash": b"\x00" * 31}, "reasons_hash"),
        ({"checked_at": -1}, "checked_at"),
        ({"checked_at": 2**64}, "checked_at"),
    ],
)
def test_tag_verdict_refuses_values_the_type_cannot_hold(changes: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        eip712.tag_verdict_digest(
            dataclasses.replace(VERDICT, **changes), chain_id=1, ledger=LEDGER
        )
    with pytest.raises(ValueError, match="ledger"):
        eip712.tag_verdict_digest(VERDICT, chain_id=1, ledger="0x1234")
