"""AN10922 AES-128 key diversification: the published example and the padding rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.cmac import CMAC

from firmware_tools.chips.ntag424.diversify import an10922_aes128, cmac_subkeys, diversify_key

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "an10922.json").read_text())
MASTER = bytes.fromhex("00112233445566778899AABBCCDDEEFF")


def plain_cmac(key: bytes, data: bytes) -> bytes:
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


@pytest.mark.parametrize("vector", VECTORS["aes128"])
def test_an10922_published_example(vector: dict) -> None:
    m = bytes.fromhex(vector["m"])
    assert m == bytes.fromhex(vector["uid"] + vector["aid"] + vector["system_identifier"])
    master = bytes.fromhex(vector["master_key"])
    assert cmac_subkeys(master) == (bytes.fromhex(vector["k1"]), bytes.fromhex(vector["k2"]))
    assert an10922_aes128(master, m) == bytes.fromhex(vector["diversified_key"])


@pytest.mark.parametrize("vector", VECTORS["cmac_subkeys"])
def test_cmac_subkeys_match_nist(vector: dict) -> None:
    k1, k2 = cmac_subkeys(bytes.fromhex(vector["key"]))
    assert (k1.hex().upper(), k2.hex().upper()) == (vector["k1"], vector["k2"])


@pytest.mark.parametrize("vector", VECTORS["aes128"])
def test_padded_block_is_macced_with_k2(vector: dict) -> None:
    # AN10922 §2.2.1 steps: CBC over D with the last block XOR K2 when D was padded.
    # Written here against CMAC of the padded D with the K1 tweak undone, so the test
    # does not share code with the implementation.
    master = bytes.fromhex(vector["master_key"])
    d = bytes.fromhex(vector["d_padded"])
    k1, k2 = bytes.fromhex(vector["k1"]), bytes.fromhex(vector["k2"])
    # CMAC(D) uses K1 on the complete last block; XORing K1 ^ K2 into it beforehand
    # turns that into the K2 path.
    tweak = bytes(a ^ b for a, b in zip(k1, k2, strict=True))
    last = bytes(a ^ b for a, b in zip(d[16:], tweak, strict=True))
    assert plain_cmac(master, d[:16] + last) == bytes.fromhex(vector["diversified_key"])


@pytest.mark.parametrize("m_length", [1, 7, 14, 15])
def test_short_input_differs_from_plain_cmac(m_length: int) -> None:
    # 0x01 || M fits one block: CMAC would pad to 16 bytes, AN10922 pads to 32.
    m = bytes(range(1, m_length + 1))
    assert an10922_aes128(MASTER, m) != plain_cmac(MASTER, b"\x01" + m)


@pytest.mark.parametrize("m_length", [16, 20, 30, 31])
def test_long_input_agrees_with_plain_cmac(m_length: int) -> None:
    # 17 to 32 bytes: both pad to 32 (or not at all) and take the same subkey.
    m = bytes(range(1, m_length + 1))
    assert an10922_aes128(MASTER, m) == plain_cmac(MASTER, b"\x01" + m)


def test_diversify_key_layout() -> None:
    uid = bytes.fromhex("04782E21801D80")
    key = diversify_key(MASTER, uid, 2, b"NXP Abu")
    assert key == an10922_aes128(MASTER, uid + b"\x02" + b"NXP Abu")
    assert diversify_key(MASTER, uid, 2) == an10922_aes128(MASTER, uid + b"\x02Provenance")


def test_keys_differ_per_tag_key_number_and_system() -> None:
    uid = bytes.fromhex("04782E21801D80")
    other_uid = bytes.fromhex("04782E21801D81")
    keys = {
        diversify_key(MASTER, uid, 0),
        diversify_key(MASTER, uid, 2),
        diversify_key(MASTER, other_uid, 2),
        diversify_key(MASTER, uid, 2, b"Other"),
        diversify_key(bytes(16), uid, 2),
    }
    assert len(keys) == 5


@pytest.mark.parametrize(
    ("master", "uid", "key_no", "system_id"),
    [
        (bytes(15), bytes(7), 0, b"x"),
        (bytes(16), bytes(4), 0, b"x"),
        (bytes(16), bytes(7), 256, b"x"),
        (bytes(16), bytes(7), 0, b""),
        (bytes(16), bytes(7), 0, bytes(24)),
    ],
)
def test_bad_arguments_are_refused(
    master: bytes, uid: bytes, key_no: int, system_id: bytes
) -> None:
    with pytest.raises(ValueError):
        diversify_key(master, uid, key_no, system_id)


@pytest.mark.parametrize("m", [b"", bytes(32)])
def test_input_length_bounds(m: bytes) -> None:
    with pytest.raises(ValueError):
        an10922_aes128(MASTER, m)
