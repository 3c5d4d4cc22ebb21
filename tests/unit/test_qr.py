"""Signed QR label URLs: round trips, and every tampering caught with a reason."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from contracts_abi.eip712 import address_of_private_key, label_digest, recover_label_signer
from firmware_tools.errors import BadSignature, FormatError
from firmware_tools.formats.gs1 import parse_digital_link
from firmware_tools.formats.qr import (
    check_label,
    decode_signature,
    encode_signature,
    new_serial,
    recover_signer_bytes,
    sign_label_url,
    verify_label_url,
)

# Deterministic test keys (any 32 bytes below the curve order are valid keys).
SUPPLIER_KEY = hashlib.sha256(b"test supplier").digest()
OTHER_KEY = hashlib.sha256(b"another supplier").digest()
SUPPLIER = address_of_private_key(SUPPLIER_KEY)
HOST = "id.example.com"
GTIN = "4006381333931"


def signed(serial: str = "SN-0001", **kwargs: str) -> str:
    return sign_label_url(SUPPLIER_KEY, HOST, GTIN, serial, **kwargs)


def sig_of(url: str) -> bytes:
    return decode_signature(parse_digital_link(url).param("sig"))


def with_sig(url: str, signature: bytes) -> str:
    return url.split("sig=")[0] + "sig=" + encode_signature(signature)


def test_a_signed_label_verifies_and_reports_its_fields() -> None:
    url = signed("A/B", lot="L1", expiry="271231")
    check = verify_label_url(url, SUPPLIER)
    assert check.ok, check.reasons
    assert (check.gtin, check.serial, check.lot, check.expiry) == (
        "04006381333931",
        "A/B",
        "L1",
        "271231",
    )
    assert check.signer == SUPPLIER
    assert check.reasons == () and check.codes == ()


def test_the_signature_is_eip712_over_everything_the_label_states() -> None:
    url = signed("XYZ", lot="L1", expiry="271231", variant="V2")
    signature = sig_of(url)
    assert len(signature) == 65 and len(url.split("sig=")[1]) == 87
    fields = {"lot": "L1", "expiry": "271231", "variant": "V2"}
    assert recover_label_signer(signature, "04006381333931", "XYZ", **fields) == SUPPLIER
    assert recover_label_signer(signature, "04006381333931", "XYZ") != SUPPLIER


# What an attacker rewrites on a genuine label: each printed part, one at a time.
RELABELLED = [
    ("/10/L1/", "/10/L2/"),  # a recalled lot relabelled as another
    ("/10/L1/", "/"),  # the lot removed
    ("?17=271231&", "?17=291231&"),  # a later expiry
    ("?17=271231&", "?"),  # the expiry removed
    ("/22/V1/", "/22/V9/"),  # another variant
    ("/22/V1/", "/"),  # the variant removed
]


@pytest.mark.parametrize(("old", "new"), RELABELLED)
def test_a_label_whose_printed_parts_were_changed_does_not_verify(old: str, new: str) -> None:
    url = signed("SN-1", lot="L1", expiry="271231", variant="V1")
    assert verify_label_url(url, SUPPLIER).ok
    assert old in url
    check = verify_label_url(url.replace(old, new), SUPPLIER)
    assert not check.ok and check.codes == ("bad_signature",)


@pytest.mark.parametrize(
    ("added", "url_part"),
    [({"lot": "L9"}, "/10/L9/"), ({"expiry": "291231"}, "17=291231"), ({"variant": "V"}, "/22/V/")],
)
def test_a_part_added_to_a_label_that_had_none_does_not_verify(added: dict, url_part: str) -> None:
    genuine = signed("SN-1")
    # The same item as the supplier would have printed it with the extra part, but carrying
    # the genuine label's signature.
    forged = with_sig(sign_label_url(OTHER_KEY, HOST, GTIN, "SN-1", **added), sig_of(genuine))
    assert url_part in forged
    check = verify_label_url(forged, SUPPLIER)
    assert not check.ok and check.codes == ("bad_signature",)


def test_an_ntag21x_url_is_checked_by_the_same_label_check() -> None:
    uid = bytes.fromhex("04A1B2C3D4E5F6")
    url = sign_label_url(SUPPLIER_KEY, HOST, GTIN, "SN-1", lot="L1", uid=uid)
    assert "uid=04A1B2C3D4E5F6&sig=" in url
    check = check_label(parse_digital_link(url), SUPPLIER)
    assert check.ok and check.uid == uid and check.lot == "L1"
    # Another chip's UID written into the URL, or the UID dropped: the signature breaks.
    other = check_label(parse_digital_link(url.replace("04A1B2", "04A1B3")), SUPPLIER)
    assert not other.ok and other.codes == ("bad_signature",)
    dropped = check_label(parse_digital_link(url.replace("uid=04A1B2C3D4E5F6&", "")), SUPPLIER)
    assert not dropped.ok and dropped.codes == ("bad_signature",) and dropped.uid is None


@pytest.mark.parametrize("uid", ["", "04a1b2c3d4e5f6", "04A1B2C3D4E5", "04A1B2C3D4E5F600", "0xA1"])
def test_a_uid_that_is_not_14_upper_case_hex_digits_is_malformed(uid: str) -> None:
    url = signed()
    tampered = url.replace("?sig=", f"?uid={uid}&sig=")
    check = verify_label_url(tampered, SUPPLIER)
    assert not check.ok and check.codes == ("malformed_url",)
    assert "14 upper-case hex digits" in check.reasons[0]


def test_the_supplier_address_may_be_all_lower_or_all_upper_case_or_eip55() -> None:
    assert verify_label_url(signed(), SUPPLIER).ok
    assert verify_label_url(signed(), SUPPLIER.lower()).ok
    assert verify_label_url(signed(), "0x" + SUPPLIER[2:].upper()).ok


def test_a_mixed_case_address_with_a_wrong_checksum_is_refused() -> None:
    # One letter's case flipped: the EIP-55 checksum no longer matches (a mistyped address).
    position = next(i for i, char in enumerate(SUPPLIER) if i > 1 and char.isalpha())
    flipped = SUPPLIER[:position] + SUPPLIER[position].swapcase() + SUPPLIER[position + 1 :]
    assert flipped.lower() == SUPPLIER.lower()
    with pytest.raises(FormatError, match="wrong EIP-55 checksum"):
        verify_label_url(signed(), flipped)


def test_a_label_signed_by_another_supplier_names_the_signer() -> None:
    url = sign_label_url(OTHER_KEY, HOST, GTIN, "SN-0001")
    check = verify_label_url(url, SUPPLIER)
    assert not check.ok
    assert check.codes == ("bad_signature",)
    assert check.signer == address_of_private_key(OTHER_KEY)
    assert SUPPLIER in check.reasons[0] and check.signer in check.reasons[0]


@pytest.mark.parametrize("bit", [0, 7, 8 * 31, 8 * 32 + 3, 8 * 63 + 1, 8 * 64])
def test_one_flipped_bit_in_the_signature_is_caught(bit: int) -> None:
    url = signed()
    signature = bytearray(sig_of(url))
    signature[bit // 8] ^= 1 << (bit % 8)
    check = verify_label_url(with_sig(url, bytes(signature)), SUPPLIER)
    assert not check.ok
    assert check.codes == ("bad_signature",)


def test_a_changed_gtin_is_caught() -> None:
    url = signed()
    other = sign_label_url(SUPPLIER_KEY, HOST, "96385074", "SN-0001")
    # Move the signature of one GTIN onto a label of another GTIN.
    forged = with_sig(other, sig_of(url))
    check = verify_label_url(forged, SUPPLIER)
    assert not check.ok and check.codes == ("bad_signature",)
    assert check.gtin == "00000096385074"


@pytest.mark.parametrize("position", range(13))
def test_a_changed_serial_character_is_caught(position: int) -> None:
    serial = new_serial()
    url = signed(serial)
    swapped = "A" if serial[position] != "A" else "B"
    tampered_serial = serial[:position] + swapped + serial[position + 1 :]
    check = verify_label_url(url.replace(f"/21/{serial}", f"/21/{tampered_serial}"), SUPPLIER)
    assert not check.ok and check.codes == ("bad_signature",)
    assert check.serial == tampered_serial


@pytest.mark.parametrize("keep", [0, 1, 40, 64, 86])
def test_a_truncated_signature_is_caught(keep: int) -> None:
    url = signed()
    truncated = url[: url.index("sig=") + 4 + keep]
    check = verify_label_url(truncated, SUPPLIER)
    assert not check.ok
    assert check.codes in (("bad_signature",), ("malformed_url",))
    assert check.reasons


def test_a_truncated_signature_says_it_is_short() -> None:
    url = signed()
    check = verify_label_url(url[:-4], SUPPLIER)
    assert check.codes == ("bad_signature",)
    assert "sig has 83 characters; a 65-byte signature has 87 (truncated?)" in check.reasons[0]


def test_a_label_without_a_signature_is_not_authentic() -> None:
    check = verify_label_url(f"https://{HOST}/01/04006381333931/21/SN-0001", SUPPLIER)
    assert not check.ok and check.codes == ("missing_signature",)
    assert check.serial == "SN-0001"


def test_a_malformed_url_is_a_failed_check_with_the_gs1_reason() -> None:
    url = signed().replace("04006381333931", "04006381333932")
    check = verify_label_url(url, SUPPLIER)
    assert not check.ok and check.codes == ("malformed_url",)
    assert "check digit" in check.reasons[0]


N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def test_a_high_s_twin_of_a_valid_signature_is_rejected() -> None:
    signature = sig_of(signed())
    s = int.from_bytes(signature[32:64], "big")
    twin = signature[:32] + (N - s).to_bytes(32, "big") + bytes([55 - signature[64]])  # v 27 <-> 28
    with pytest.raises(BadSignature, match="s value"):
        recover_signer_bytes(label_digest("04006381333931", "SN-0001"), twin)
    check = verify_label_url(with_sig(signed(), twin), SUPPLIER)
    assert not check.ok and check.codes == ("bad_signature",)


def test_v_of_0_or_1_is_rejected() -> None:
    signature = sig_of(signed())
    assert signature[64] in (27, 28)
    twin = signature[:64] + bytes([signature[64] - 27])
    with pytest.raises(BadSignature, match=r"must be 27 or 28, got [01]"):
        recover_signer_bytes(label_digest("04006381333931", "SN-0001"), twin)
    check = verify_label_url(with_sig(signed(), twin), SUPPLIER)
    assert not check.ok and check.codes == ("bad_signature",)


def _spare_bits_set(text: str) -> str:
    # The last of 87 characters carries 4 data bits and 2 spare ones: set a spare bit.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return text[:-1] + alphabet[alphabet.index(text[-1]) | 1]


@pytest.mark.parametrize(
    ("rewrite", "message"),
    [
        (lambda text: text + "=", "'=' padding"),
        (lambda text: text + "%3D", "'=' padding"),
        (_spare_bits_set, "sets bits past the 65 bytes"),
        (lambda text: text[:-1], "sig has 86 characters"),
        (lambda text: text + "A", "sig has 88 characters"),
        (lambda text: text[:40] + text[41:], "sig has 86 characters"),
    ],
    ids=["padding", "escaped-padding", "spare-bits", "86-chars", "88-chars", "dropped"],
)
def test_another_text_of_the_same_signature_is_rejected(rewrite, message: str) -> None:
    url = signed()
    text = url.split("sig=")[1]
    other = rewrite(text)
    assert other != text
    check = verify_label_url(url.split("sig=")[0] + "sig=" + other, SUPPLIER)
    assert not check.ok and check.codes in (("bad_signature",), ("malformed_url",))
    if check.codes == ("bad_signature",):
        assert message in check.reasons[0]
    with pytest.raises(FormatError, match=re.escape(message)):
        decode_signature(other.replace("%3D", "="))


def test_a_malformed_supplier_address_is_the_callers_error() -> None:
    for bad in ("", "0x1234", SUPPLIER[2:], "0x" + "g" * 40):
        with pytest.raises(FormatError, match="address"):
            verify_label_url(signed(), bad)


def test_base64url_signatures_round_trip_without_padding() -> None:
    for data in (bytes(65), bytes(range(65)), b"\xff" * 65):
        text = encode_signature(data)
        assert "=" not in text and "+" not in text and "/" not in text
        assert decode_signature(text) == data
    with pytest.raises(FormatError, match="85 characters"):
        decode_signature("A" * 85)
    with pytest.raises(FormatError, match="'\\*' at position 2"):
        decode_signature("A*" * 10)


def test_new_serials_are_random_80_bit_base32() -> None:
    serials = {new_serial() for _ in range(200)}
    assert len(serials) == 200
    for serial in serials:
        assert len(serial) == 16
        assert len(base64.b32decode(serial)) == 10
    # Every serial is a valid AI 21 value, so it builds into a label.
    assert verify_label_url(signed(serials.pop()), SUPPLIER).ok
