"""The local verdict at the dock door: what each kind of read tells the operator at once."""

from __future__ import annotations

import hashlib

from contracts_abi.eip712 import address_of_private_key
from firmware_tools.chips.ntag21x import sign_ntag21x_url
from firmware_tools.formats.qr import sign_label_url
from reader_agent.reads import Read
from reader_agent.verdict import GOOD, REJECTED, WARNING, local_verdict, unreadable
from tests.fakes.sun_tags import sun_tag, tap

KEY = hashlib.sha256(b"agent verdict supplier").digest()
SUPPLIER = address_of_private_key(KEY)
OTHER = address_of_private_key(hashlib.sha256(b"agent verdict other").digest())
GTIN = "04006381333931"
HOST = "id.example.com"
TRUST = {GTIN: SUPPLIER}
# A real NTAG 21x UID and NXP's originality signature over it (tests/vectors).
NTAG21X_UID = bytes.fromhex("04E10CDA993C80")
NTAG21X_SIG = bytes.fromhex("8B76052EE42F5567BEB53238B3E3F9950707C0DCC956B5C5EFCFDB709B2D82B3")


def read(url: str, **chip: bytes) -> Read:
    return Read(url=url, source="serial:/dev/ttyACM0", read_at=1_700_000_000.0, **chip)


def test_a_signed_label_of_a_known_gtin_is_good() -> None:
    verdict = local_verdict(read(sign_label_url(KEY, HOST, GTIN, "SN-1")), TRUST)
    assert (verdict.level, verdict.gtin, verdict.serial, verdict.record) == (
        GOOD,
        GTIN,
        "SN-1",
        True,
    )


def test_a_label_signed_by_another_key_is_rejected_but_recorded_for_the_api() -> None:
    verdict = local_verdict(read(sign_label_url(KEY, HOST, GTIN, "SN-1")), {GTIN: OTHER})
    assert verdict.level == REJECTED and verdict.record
    assert verdict.reasons


def test_a_gtin_missing_from_the_trust_cache_is_a_warning() -> None:
    verdict = local_verdict(read(sign_label_url(KEY, HOST, GTIN, "SN-1")), {})
    assert verdict.level == WARNING and verdict.record
    assert "not in the trust cache" in verdict.reasons[0]


def test_a_sun_tap_of_a_known_gtin_is_good_and_left_to_the_api() -> None:
    url = tap(sun_tag(bytes(16), bytes.fromhex("04A1B2C3D4E5F6"), gtin=GTIN, serial="S1"))
    verdict = local_verdict(read(url), TRUST)
    assert verdict.level == GOOD and "API" in verdict.reasons[0]


def test_an_ntag21x_url_without_its_chip_is_a_warning() -> None:
    url = sign_ntag21x_url(KEY, HOST, GTIN, "SN-2", NTAG21X_UID)
    assert local_verdict(read(url), TRUST).level == WARNING


def test_an_ntag21x_chip_read_with_its_originality_signature_is_good() -> None:
    url = sign_ntag21x_url(KEY, HOST, GTIN, "SN-2", NTAG21X_UID)
    chip = read(url, uid=NTAG21X_UID, originality_signature=NTAG21X_SIG)
    assert local_verdict(chip, TRUST).level == GOOD


def test_an_ntag21x_chip_with_a_forged_originality_signature_is_rejected() -> None:
    url = sign_ntag21x_url(KEY, HOST, GTIN, "SN-2", NTAG21X_UID)
    forged = read(url, uid=NTAG21X_UID, originality_signature=bytes(32))
    assert local_verdict(forged, TRUST).level == REJECTED


def test_text_that_names_no_item_is_rejected_and_not_recorded() -> None:
    verdict = local_verdict(read("https://example.com/menu"), TRUST)
    assert verdict.level == REJECTED and not verdict.record
    assert unreadable("not UTF-8").record is False
