"""NTAG 21x layouts, commands, the UID-bound signed URL, and the verifier's verdicts."""

from __future__ import annotations

import json
import time
from pathlib import Path

import ndef
import pytest

from contracts_abi.eip712 import address_of_private_key, recover_label_signer
from firmware_tools.chips import ecc
from firmware_tools.chips.ntag21x import (
    GENUINE_NXP_UID,
    NTAG213,
    NTAG215,
    NTAG216,
    check_response,
    image_pages,
    layout_for_version,
    ndef_image,
    read_command,
    read_sig_command,
    sign_ntag21x_url,
    uid_from_pages,
    uid_pages,
    verify_ntag21x,
    write_command,
)
from firmware_tools.errors import FormatError, NdefError, TagCommandError
from firmware_tools.formats.gs1 import parse_digital_link
from firmware_tools.formats.ndef import parse_type2_image
from firmware_tools.formats.qr import check_label, decode_signature, sign_label_url

VECTORS = json.loads(
    (Path(__file__).parent.parent / "vectors" / "ntag21x_originality.json").read_text()
)
REAL_UID = bytes.fromhex(VECTORS["samples"][0]["uid"])
REAL_SIG = bytes.fromhex(VECTORS["samples"][0]["signature"])
SUPPLIER_KEY = bytes(range(1, 33))
SUPPLIER = address_of_private_key(SUPPLIER_KEY)
OTHER_KEY = bytes(range(2, 34))


def _url(uid: bytes = REAL_UID, key: bytes = SUPPLIER_KEY, serial: str = "SN1") -> str:
    return sign_ntag21x_url(key, "id.example.com", "9521234543213", serial, uid)


def test_layouts_match_the_datasheet():
    assert [x.user_memory for x in (NTAG213, NTAG215, NTAG216)] == [144, 504, 888]
    assert [x.last_user_page for x in (NTAG213, NTAG215, NTAG216)] == [0x27, 0x81, 0xE1]
    assert [x.pages for x in (NTAG213, NTAG215, NTAG216)] == [0x2D, 0x87, 0xE7]
    assert NTAG215.version == bytes.fromhex("0004040201001103")
    assert layout_for_version(NTAG213.version) is NTAG213
    with pytest.raises(FormatError, match="not NTAG 213/215/216"):
        layout_for_version(bytes.fromhex("0004040201000B03"))  # Ultralight-sized


def test_command_bytes():
    assert read_command(4) == bytes.fromhex("3004")
    assert write_command(5, b"\x01\x02\x03\x04") == bytes.fromhex("A20501020304")
    assert read_sig_command() == bytes.fromhex("3C00")
    with pytest.raises(FormatError):
        write_command(5, b"\x01")


def test_nak_is_reported_in_words():
    with pytest.raises(TagCommandError, match="invalid argument") as info:
        check_response(read_command(0xF0), b"\x00", 16)
    assert info.value.status == 0
    assert check_response(read_command(0), bytes(16), 16) == bytes(16)


def test_uid_check_bytes_round_trip():
    pages = uid_pages(REAL_UID)
    assert pages[3] == 0x88 ^ 0x04 ^ 0xE1 ^ 0x0C
    assert uid_from_pages(pages + b"\x48\x00\x00") == REAL_UID
    with pytest.raises(FormatError, match="BCC"):
        uid_from_pages(bytes((pages[0] ^ 1,)) + pages[1:])


def test_signed_url_carries_uid_and_chip_bound_signature():
    url = _url()
    assert url.startswith("https://id.example.com/01/09521234543213/21/SN1?uid=04E10CDA993C80&sig=")
    signature = decode_signature(url.split("sig=")[1])
    assert recover_label_signer(signature, "09521234543213", "SN1", uid=REAL_UID) == SUPPLIER


def test_image_for_ntag215_parses_with_ndeflib():
    url = _url()
    image = ndef_image(url, NTAG215)
    assert image[:4] == bytes.fromhex("E1103E00")
    assert next(ndef.message_decoder(parse_type2_image(image))).iri == url
    pages = image_pages(url, NTAG215)
    assert pages[0] == (3, bytes.fromhex("E1103E00"))
    assert b"".join(data for _, data in pages) == image


def test_too_long_url_is_refused_for_ntag213_but_fits_ntag215():
    url = _url(serial="S" * 20) + "&note=" + "x" * 40
    with pytest.raises(NdefError, match=r"NTAG213: .*holds 144"):
        ndef_image(url, NTAG213)
    assert ndef_image(url, NTAG215)


def test_genuine_bound_signed_tag_passes_every_check():
    check = verify_ntag21x(REAL_UID, _url(), REAL_SIG, SUPPLIER)
    assert check.ok and check.genuine_nxp_uid and check.supplier_signed and check.uid_bound
    assert check.codes == ()
    assert GENUINE_NXP_UID in check.findings
    assert not any("genuine product" in finding for finding in check.findings)
    assert (check.gtin, check.serial, check.signer) == ("09521234543213", "SN1", SUPPLIER)


def test_label_copied_onto_another_genuine_chip_is_uid_mismatch():
    other_uid = bytes.fromhex(VECTORS["samples"][1]["uid"])
    other_sig = bytes.fromhex(VECTORS["samples"][1]["signature"])
    check = verify_ntag21x(other_uid, _url(), other_sig, SUPPLIER)
    assert check.genuine_nxp_uid and check.supplier_signed and not check.uid_bound
    assert not check.ok
    assert check.codes == ("uid_mismatch",)


def test_url_uid_rewritten_to_the_new_chip_breaks_the_signature():
    other_uid = bytes.fromhex(VECTORS["samples"][1]["uid"])
    other_sig = bytes.fromhex(VECTORS["samples"][1]["signature"])
    forged = _url().replace(REAL_UID.hex().upper(), other_uid.hex().upper())
    check = verify_ntag21x(other_uid, forged, other_sig, SUPPLIER)
    assert check.uid_bound and not check.supplier_signed and not check.ok
    assert check.codes == ("bad_signature",)


@pytest.mark.parametrize(
    ("old", "new"),
    [("/10/L1/", "/10/L2/"), ("?17=271231&", "?17=291231&"), ("/22/V1/", "/22/V2/")],
)
def test_lot_expiry_or_variant_rewritten_on_a_chip_breaks_the_signature(old: str, new: str):
    url = sign_ntag21x_url(
        SUPPLIER_KEY, "id.example.com", "9521234543213", "SN1", REAL_UID,
        lot="L1", expiry="271231", variant="V1",
    )  # fmt: skip
    assert verify_ntag21x(REAL_UID, url, REAL_SIG, SUPPLIER).ok
    check = verify_ntag21x(REAL_UID, url.replace(old, new), REAL_SIG, SUPPLIER)
    assert check.uid_bound and not check.supplier_signed and not check.ok
    assert check.codes == ("bad_signature",)


def test_a_qr_label_written_onto_a_chip_is_bound_to_no_chip():
    qr_url = sign_label_url(SUPPLIER_KEY, "id.example.com", "9521234543213", "SN1")
    check = verify_ntag21x(REAL_UID, qr_url, REAL_SIG, SUPPLIER)
    assert check.supplier_signed and not check.uid_bound and not check.ok
    assert check.codes == ("missing_uid",)
    # ...and the UID added to its URL breaks the supplier's signature.
    forged = qr_url.replace("?sig=", f"?uid={REAL_UID.hex().upper()}&sig=")
    check = verify_ntag21x(REAL_UID, forged, REAL_SIG, SUPPLIER)
    assert check.uid_bound and not check.supplier_signed and check.codes == ("bad_signature",)


def test_the_chip_check_and_the_label_check_agree_on_the_signature():
    url = _url()
    label = check_label(parse_digital_link(url), SUPPLIER)
    chip = verify_ntag21x(REAL_UID, url, REAL_SIG, SUPPLIER)
    assert label.ok and chip.supplier_signed and label.signer == chip.signer == SUPPLIER
    assert label.uid == REAL_UID


def test_other_supplier_and_bad_originality_are_each_reported():
    check = verify_ntag21x(REAL_UID, _url(key=OTHER_KEY), bytes(32), SUPPLIER)
    assert not check.genuine_nxp_uid and not check.supplier_signed and check.uid_bound
    assert check.codes == ("bad_originality_signature", "bad_signature")
    assert any(address_of_private_key(OTHER_KEY) in f for f in check.findings)


def test_test_key_for_simulated_tags():
    private = int(VECTORS["test_key"]["private_key"], 16)
    uid = bytes.fromhex("04A1B2C3D4E5F6")
    signature = ecc.sign(ecc.SECP128R1, private, uid)
    public = ecc.public_key_of(ecc.SECP128R1, private)
    check = verify_ntag21x(uid, _url(uid), signature, SUPPLIER, nxp_public_key=public)
    assert check.ok
    assert not verify_ntag21x(uid, _url(uid), signature, SUPPLIER).genuine_nxp_uid


def test_unsigned_or_malformed_urls_are_reported_not_raised():
    check = verify_ntag21x(
        REAL_UID, "https://id.example.com/01/09521234543213/21/SN1", REAL_SIG, SUPPLIER
    )
    assert check.codes == ("missing_uid", "missing_signature")
    check = verify_ntag21x(REAL_UID, "not a url", REAL_SIG, SUPPLIER)
    assert check.codes == ("malformed_url",) and not check.ok
    check = verify_ntag21x(REAL_UID, _url().replace("uid=04E1", "uid=ZZE1"), REAL_SIG, SUPPLIER)
    assert check.codes == ("malformed_url",) and not check.uid_bound and not check.ok


def test_verification_rate():
    url = _url()
    verify_ntag21x(REAL_UID, url, REAL_SIG, SUPPLIER)
    count = 200
    start = time.perf_counter()
    for _ in range(count):
        assert verify_ntag21x(REAL_UID, url, REAL_SIG, SUPPLIER).ok
    rate = count / (time.perf_counter() - start)
    print(f"ntag21x_verifications_per_s={rate:.0f}")
    assert rate > 100
