"""SUN/SDM verification against AN12196's worked examples, and every tampering caught."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from firmware_tools.chips import ecc
from firmware_tools.chips.ntag424.diversify import diversify_key
from firmware_tools.chips.ntag424.sun import (
    KeyEpoch,
    decrypt_file_data,
    decrypt_picc_data,
    encrypt_file_data,
    sdm_mac,
    sdm_session_keys,
    sun_mac_input,
    verify_sun,
    verify_sun_plain,
    verify_sun_url,
)
from firmware_tools.chips.originality import NXP_424_PUBLIC_KEY, verify_originality_424
from firmware_tools.errors import (
    BadCmac,
    CounterExhausted,
    FileKeyRefused,
    InvalidTag,
    MalformedSun,
    ReplayedCounter,
    UnknownPiccDataTag,
)
from tests.fakes.ntag424 import fake_public_key, fake_signing_key

VECTOR_DIR = Path(__file__).parent.parent / "vectors"
SUN = json.loads((VECTOR_DIR / "an12196_sun.json").read_text())
ORIGINALITY = json.loads((VECTOR_DIR / "ntag424_originality.json").read_text())
h = bytes.fromhex

META = h("5F1C1A1E9E5A8B2C3D4E5F60718293A4")
FILE = h("0F1E2D3C4B5A69788796A5B4C3D2E1F0")
UID = h("04A1B2C3D4E5F6")


def make_sun(
    uid: bytes = UID,
    counter: int = 42,
    meta: bytes = META,
    file_key: bytes = FILE,
    mac_input: bytes = b"",
    tag: int = 0xC7,
) -> tuple[str, str]:
    """A SUN message built from the datasheet with the bare primitives, not the module."""
    ctr = counter.to_bytes(3, "little")
    plain = bytes([tag]) + uid + ctr + b"\x11\x22\x33\x44\x55"
    picc = Cipher(algorithms.AES(meta), modes.CBC(bytes(16))).encryptor().update(plain)
    sv2 = CMAC(algorithms.AES(file_key))
    sv2.update(h("3CC300010080") + uid + ctr)
    mac = CMAC(algorithms.AES(sv2.finalize()))
    mac.update(mac_input)
    return picc.hex().upper(), mac.finalize()[1::2].hex().upper()


def flip(hex_text: str, bit: int) -> str:
    raw = bytearray(bytes.fromhex(hex_text))
    raw[bit // 8] ^= 0x80 >> (bit % 8)
    return raw.hex().upper()


# --- AN12196 worked examples -------------------------------------------------------------


@pytest.mark.parametrize("vector", SUN["sun"], ids=lambda v: v["name"])
def test_an12196_sun_examples_verify(vector: dict) -> None:
    result = verify_sun(
        vector["picc_data"],
        vector["cmac"],
        [h(vector["meta_read_key"])],
        h(vector["file_read_key"]),
        enc_hex=vector["enc"],
    )
    assert result.uid == h(vector["uid"])
    assert result.counter == vector["counter"]
    expected_file = None if vector["file_data"] is None else h(vector["file_data"])
    assert result.file_data == expected_file
    assert result.key_epoch == 0
    assert sun_mac_input(vector["enc"]) == vector["mac_input_ascii"].encode()


@pytest.mark.parametrize("vector", SUN["sun"], ids=lambda v: v["name"])
def test_an12196_sun_intermediate_values(vector: dict) -> None:
    uid, counter = h(vector["uid"]), vector["counter"]
    _, ses_mac = sdm_session_keys(h(vector["file_read_key"]), uid, counter)
    assert ses_mac == h(vector["ses_mac"])
    full = CMAC(algorithms.AES(ses_mac))
    full.update(vector["mac_input_ascii"].encode())
    assert full.finalize() == h(vector["full_cmac"])
    mac_input = vector["mac_input_ascii"].encode()
    assert sdm_mac(h(vector["file_read_key"]), uid, counter, mac_input) == h(vector["cmac"])


@pytest.mark.parametrize("vector", SUN["session_keys"], ids=lambda v: v["_source"][:16])
def test_an12196_session_keys(vector: dict) -> None:
    enc, mac = sdm_session_keys(h(vector["file_read_key"]), h(vector["uid"]), vector["counter"])
    assert enc == h(vector["ses_enc"])
    if "ses_mac" in vector:
        assert mac == h(vector["ses_mac"])


@pytest.mark.parametrize("vector", SUN["picc_data"])
def test_an12196_picc_data_decrypts(vector: dict) -> None:
    assert decrypt_picc_data(h(vector["meta_read_key"]), h(vector["picc_data"])) == (
        h(vector["uid"]),
        vector["counter"],
    )


@pytest.mark.parametrize("vector", SUN["enc_file_data"])
def test_an12196_enc_file_data(vector: dict) -> None:
    args = (h(vector["file_read_key"]), h(vector["uid"]), vector["counter"])
    assert decrypt_file_data(*args, h(vector["enc"])) == h(vector["plain"])
    assert encrypt_file_data(*args, h(vector["plain"])) == h(vector["enc"])


@pytest.mark.parametrize("vector", SUN["plain_mirror"])
def test_plain_mirror_vector(vector: dict) -> None:
    result = verify_sun_plain(
        vector["uid"], vector["counter_ascii"], vector["cmac"], h(vector["file_read_key"])
    )
    assert (result.uid, result.counter) == (h(vector["uid"]), int(vector["counter_ascii"], 16))
    with pytest.raises(BadCmac):
        verify_sun_plain(vector["uid"], vector["counter_ascii"], flip(vector["cmac"], 0), bytes(16))


def test_an12196_urls() -> None:
    plain = SUN["sun"][0]
    url = f"https://choose.url.com/ntag424?picc_data={plain['picc_data']}&cmac={plain['cmac']}"
    assert verify_sun_url(url, [bytes(16)], bytes(16)).counter == 61
    enc = SUN["sun"][1]
    url = (
        f"https://choose.url.com/ntag424?picc_data={enc['picc_data']}"
        f"&enc={enc['enc']}&cmac={enc['cmac']}"
    )
    result = verify_sun_url(url, [bytes(16)], bytes(16))
    assert (result.counter, result.file_data) == (8, b"x" * 16)


# --- Our own messages and tampering --------------------------------------------------------


def test_own_message_verifies_and_file_key_is_a_function_of_uid() -> None:
    picc, mac = make_sun()
    seen = []

    def file_key_for(uid: bytes) -> bytes:
        seen.append(uid)
        return FILE

    result = verify_sun(picc, mac, [META], file_key_for)
    assert (result.uid, result.counter, result.file_data) == (UID, 42, None)
    assert seen == [UID]


def test_key_epochs_are_tried_in_order() -> None:
    old, new = h("00" * 15 + "01"), h("00" * 15 + "02")
    picc, mac = make_sun(meta=new)
    assert verify_sun(picc, mac, [old, new], FILE).key_epoch == 1
    picc, mac = make_sun(meta=old)
    assert verify_sun(picc, mac, [old, new], FILE).key_epoch == 0


@pytest.mark.parametrize("bit", range(128))
def test_any_flipped_bit_in_picc_data_is_caught(bit: int) -> None:
    picc, mac = make_sun()
    with pytest.raises((UnknownPiccDataTag, BadCmac)):
        verify_sun(flip(picc, bit), mac, [META], FILE)


@pytest.mark.parametrize("bit", range(64))
def test_any_flipped_bit_in_cmac_is_caught(bit: int) -> None:
    picc, mac = make_sun()
    with pytest.raises(BadCmac):
        verify_sun(picc, flip(mac, bit), [META], FILE)


def test_changed_uid_reencrypted_is_caught() -> None:
    _, mac = make_sun(uid=UID)
    picc, _ = make_sun(uid=h("04A1B2C3D4E5F7"))
    with pytest.raises(BadCmac):
        verify_sun(picc, mac, [META], FILE)


@pytest.mark.parametrize("counter", [41, 43, 42 + 0x10000])
def test_changed_counter_reencrypted_is_caught(counter: int) -> None:
    _, mac = make_sun(counter=42)
    picc, _ = make_sun(counter=counter)
    with pytest.raises(BadCmac):
        verify_sun(picc, mac, [META], FILE)


def test_replayed_counter() -> None:
    picc, mac = make_sun(counter=42)
    assert verify_sun(picc, mac, [META], FILE, last_counter=41).counter == 42
    with pytest.raises(ReplayedCounter) as caught:
        verify_sun(picc, mac, [META], FILE, last_counter=42)
    assert caught.value.reason == "replayed_counter"
    with pytest.raises(ReplayedCounter):
        verify_sun(picc, mac, [META], FILE, last_counter=100)


def test_wrong_meta_key() -> None:
    picc, mac = make_sun()
    wrong = h("00112233445566778899AABBCCDDEEFF")
    assert decrypt_picc_data(wrong, bytes.fromhex(picc)) is None  # precondition
    with pytest.raises(UnknownPiccDataTag, match="meta-read key"):
        verify_sun(picc, mac, [wrong], FILE)


def test_wrong_file_key() -> None:
    picc, mac = make_sun()
    with pytest.raises(BadCmac, match="file-read key"):
        verify_sun(picc, mac, [META], h("00112233445566778899AABBCCDDEEFF"))


def test_unknown_picc_data_tag_byte() -> None:
    picc, mac = make_sun(tag=0x87)  # UID mirrored without the counter
    with pytest.raises(UnknownPiccDataTag):
        verify_sun(picc, mac, [META], FILE)


def test_counter_exhausted() -> None:
    picc, mac = make_sun(counter=0xFFFFFF)
    with pytest.raises(CounterExhausted):
        verify_sun(picc, mac, [META], FILE)
    picc, mac = make_sun(counter=0xFFFFFE)
    assert verify_sun(picc, mac, [META], FILE).counter == 0xFFFFFE


def test_mac_input_is_bound() -> None:
    picc, mac = make_sun(mac_input=b"ABCDEF&cmac=")
    assert verify_sun(picc, mac, [META], FILE, mac_input=b"ABCDEF&cmac=").counter == 42
    with pytest.raises(BadCmac, match="offsets"):
        verify_sun(picc, mac, [META], FILE)


def test_enc_file_data_round_trip_and_tamper() -> None:
    plain = b"lot 2026-11/B7.."
    enc = encrypt_file_data(FILE, UID, 42, plain).hex().upper()
    picc, mac = make_sun(mac_input=(enc + "&cmac=").encode())
    url = f"https://id.example.com/01/1/21/2?picc_data={picc}&enc={enc}&cmac={mac}"
    assert verify_sun_url(url, [META], FILE).file_data == plain
    with pytest.raises(BadCmac):
        verify_sun_url(url.replace(f"enc={enc}", f"enc={flip(enc, 5)}"), [META], FILE)


@pytest.mark.parametrize(
    ("picc", "mac", "enc", "code"),
    [
        ("00" * 15, "00" * 8, None, "bad_length"),
        ("00" * 17, "00" * 8, None, "bad_length"),
        ("0" * 31, "00" * 8, None, "bad_length"),
        ("zz" * 16, "00" * 8, None, "bad_hex"),
        ("00" * 16, "00" * 7, None, "bad_length"),
        ("00" * 16, "00" * 9, None, "bad_length"),
        ("00" * 16, "0g" * 8, None, "bad_hex"),
        ("00 " * 16, "00" * 8, None, "bad_hex"),
        ("00" * 16, "00" * 8, "", "bad_length"),
        ("00" * 16, "00" * 8, "00" * 15, "bad_length"),
        ("00" * 16, "00" * 8, "00" * 17, "bad_length"),
    ],
)
def test_damaged_parameters_name_their_cause(
    picc: str, mac: str, enc: str | None, code: str
) -> None:
    # Each cause has its own code: a non-hex character is not a length problem.
    with pytest.raises(MalformedSun) as caught:
        verify_sun(picc, mac, [META], FILE, enc_hex=enc)
    assert caught.value.reason == code
    assert ("not a hex digit" in str(caught.value)) == (code == "bad_hex")


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("https://id.example.com/01/1/21/2", "missing_parameter"),
        ("https://id.example.com/01/1/21/2?cmac=0000000000000000", "missing_parameter"),
        (
            "https://id.example.com/01/1/21/2?picc_data=00000000000000000000000000000000",
            "missing_parameter",
        ),
        (
            "https://x/?picc_data=00000000000000000000000000000000&cmac=00&cmac=0000000000000000",
            "duplicate_parameter",
        ),
        (
            "https://x/?cmac=0000000000000000&enc=00000000000000000000000000000000"
            "&picc_data=00000000000000000000000000000000",
            "parameter_order",
        ),
        ("https://x/?picc_data=" + "0" * 32 + "&cmac=" + "0" * 15, "bad_length"),
    ],
)
def test_bad_urls(url: str, code: str) -> None:
    with pytest.raises(MalformedSun) as caught:
        verify_sun_url(url, [META], FILE)
    assert caught.value.reason == code


def test_url_with_fragment_and_other_parameters() -> None:
    picc, mac = make_sun()
    url = f"https://id.example.com/01/1/21/2?lang=en&picc_data={picc}&cmac={mac}#top"
    assert verify_sun_url(url, [META], FILE).uid == UID


def test_every_failure_is_an_invalid_tag() -> None:
    picc, mac = make_sun()
    for args in [("00", mac), (picc, flip(mac, 3))]:
        with pytest.raises(InvalidTag):
            verify_sun(*args, [META], FILE)


def test_cached_keys_do_not_leak_between_keys() -> None:
    for _ in range(3):
        meta, file_key = os.urandom(16), os.urandom(16)
        picc, mac = make_sun(meta=meta, file_key=file_key)
        assert verify_sun(picc, mac, [meta], file_key).uid == UID
        with pytest.raises(InvalidTag):
            verify_sun(picc, mac, [META], FILE)


# --- The MAC input starts at the GS1 path -------------------------------------------------

PATH_URL = "https://id.example.com/01/04006381333931/21/SN1?picc_data={picc}&cmac={mac}"


def path_tap(url_template: str = PATH_URL, counter: int = 42) -> str:
    """A tap whose MAC covers the URL from "/01/" up to and including "cmac="."""
    picc, _ = make_sun(counter=counter)
    start = url_template.index("/01/")
    mac_input = url_template.format(picc=picc, mac="")[start:].encode()
    _, mac = make_sun(counter=counter, mac_input=mac_input)
    return url_template.format(picc=picc, mac=mac)


def test_a_mac_over_the_gs1_path_verifies_and_says_where_it_starts() -> None:
    url = path_tap()
    result = verify_sun_url(url, [META], FILE)
    assert (result.uid, result.counter) == (UID, 42)
    assert result.mac_input_start == url.index("/01/")
    # The old layout (empty MAC input) verifies too, but covers nothing of the URL.
    picc, mac = make_sun()
    legacy = PATH_URL.format(picc=picc, mac=mac)
    assert verify_sun_url(legacy, [META], FILE).mac_input_start is None


@pytest.mark.parametrize(
    ("genuine", "spliced"),
    [
        ("/21/SN1?", "/21/LUXURY-999?"),
        ("/01/04006381333931/", "/01/09506000134352/"),
        ("https://id.example.com/01/", "https://evil.example/01/09506000134352/21/X/01/"),
        ("?picc_data", "?lang=en&picc_data"),
    ],
)
def test_a_tap_moved_under_another_item_does_not_verify(genuine: str, spliced: str) -> None:
    url = path_tap()
    assert verify_sun_url(url, [META], FILE).mac_input_start is not None
    with pytest.raises(InvalidTag):
        verify_sun_url(url.replace(genuine, spliced), [META], FILE)


def test_the_mac_input_is_the_text_as_received() -> None:
    # A percent-encoded serial is MACed as the tag wrote it, not decoded or re-encoded.
    url = path_tap("https://id.example.com/01/04006381333931/21/A%2F1?picc_data={picc}&cmac={mac}")
    assert verify_sun_url(url, [META], FILE).mac_input_start is not None
    with pytest.raises(BadCmac):
        verify_sun_url(url.replace("A%2F1", "A%2f1"), [META], FILE)


# --- Key epochs ------------------------------------------------------------------------------


def test_an_epoch_pairs_its_meta_read_key_with_its_file_key_rule() -> None:
    # Rotating the master key rotates both keys: a tag keyed under the old master still
    # verifies under the old epoch, a tag keyed under the new one under the new epoch.
    old_master, new_master = os.urandom(16), os.urandom(16)
    epochs = [KeyEpoch.from_master(old_master, 3), KeyEpoch.from_master(new_master, 4)]
    for master, number in ((old_master, 3), (new_master, 4)):
        meta = diversify_key(master, bytes(7), 1)
        picc, mac = make_sun(meta=meta, file_key=diversify_key(master, UID, 2))
        assert verify_sun(picc, mac, epochs).key_epoch == number
    # An old tag's meta-read key with the new master's file keys is no epoch at all.
    picc, mac = make_sun(
        meta=diversify_key(old_master, bytes(7), 1), file_key=diversify_key(new_master, UID, 2)
    )
    with pytest.raises(BadCmac):
        verify_sun(picc, mac, epochs)


class Refused(Exception):
    pass


def refuse(uid: bytes) -> bytes:
    raise Refused(f"UID {uid.hex()} was never issued")


@pytest.mark.parametrize("rule", [refuse, lambda uid: None, lambda uid: b"short"])
def test_an_epoch_whose_rule_refuses_the_uid_fails_with_a_cause(rule) -> None:
    picc, mac = make_sun()
    with pytest.raises(FileKeyRefused) as caught:
        verify_sun(picc, mac, [KeyEpoch(META, rule, 7)])
    assert caught.value.reason == "file_key_refused"
    assert "epoch 7" in str(caught.value) and UID.hex().upper() in str(caught.value)


def test_a_refusing_epoch_does_not_stop_the_next_one() -> None:
    picc, mac = make_sun()
    epochs = [KeyEpoch(META, refuse, 0), KeyEpoch(META, lambda uid: FILE, 1)]
    assert verify_sun(picc, mac, epochs).key_epoch == 1
    with pytest.raises(BadCmac, match="epoch 0: the file-key rule refuses"):
        verify_sun(picc, flip(mac, 1), epochs)


# --- Originality signature -----------------------------------------------------------------


@pytest.mark.parametrize("sample", ORIGINALITY["samples"], ids=lambda s: s["uid"])
def test_real_ntag424_signatures_verify_under_nxp_key(sample: dict) -> None:
    uid, signature = h(sample["uid"]), h(sample["signature"])
    assert h(ORIGINALITY["public_key"]) == NXP_424_PUBLIC_KEY
    assert verify_originality_424(uid, signature)
    assert not verify_originality_424(uid, signature, h(ORIGINALITY["other_nxp_key"]))
    other = bytearray(uid)
    other[-1] ^= 1
    assert not verify_originality_424(bytes(other), signature)
    for index in (0, 27, 28, 55):
        tampered = bytearray(signature)
        tampered[index] ^= 0x01
        assert not verify_originality_424(uid, bytes(tampered))


def test_signatures_made_by_openssl_verify() -> None:
    # OpenSSL as an independent second implementation. It only signs digests; a digest of
    # 28 bytes (the order's size) is used as the integer e unchanged, so the UID
    # left-padded with zeros to 28 bytes gives e = UID.
    key = ec.derive_private_key(fake_signing_key(), ec.SECP224R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert public == fake_public_key()
    prehashed = ec.ECDSA(utils.Prehashed(hashes.SHA224()))
    for uid in (UID, h("04000000000000"), h("04FFFFFFFFFFFF")):
        r, s = utils.decode_dss_signature(key.sign(bytes(21) + uid, prehashed))
        signature = r.to_bytes(28, "big") + s.to_bytes(28, "big")
        assert verify_originality_424(uid, signature, public)
        assert not verify_originality_424(uid, signature)  # not NXP's key
        # And the simulated tags' signer, checked the other way round.
        ours = ecc.sign(ecc.SECP224R1, fake_signing_key(), uid)
        der = utils.encode_dss_signature(int.from_bytes(ours[:28]), int.from_bytes(ours[28:]))
        key.public_key().verify(der, bytes(21) + uid, prehashed)


@pytest.mark.parametrize(
    "signature",
    [bytes(56), b"\xff" * 56, bytes(55), bytes(57)],
    ids=["zero", "out_of_range", "short", "long"],
)
def test_malformed_signatures_are_false(signature: bytes) -> None:
    assert not verify_originality_424(UID, signature)


def test_bad_public_key_is_refused() -> None:
    broken = bytearray(NXP_424_PUBLIC_KEY)
    broken[-1] ^= 1  # off the curve
    with pytest.raises(ValueError):
        verify_originality_424(UID, bytes(56 * [1]), bytes(broken))
