"""NXP originality signatures of NTAG 21x: known answers from real tags, a test key, bit flips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firmware_tools.chips import ecc
from firmware_tools.chips.ecc import SECP128R1
from firmware_tools.chips.originality import NXP_NTAG21X_PUBLIC_KEY, is_original, verify_originality
from firmware_tools.errors import BadOriginality

VECTORS = json.loads(
    (Path(__file__).parent.parent / "vectors" / "ntag21x_originality.json").read_text()
)
REAL = [(bytes.fromhex(s["uid"]), bytes.fromhex(s["signature"])) for s in VECTORS["samples"]]
TEST_KEY = VECTORS["test_key"]
TEST_PRIVATE = int(TEST_KEY["private_key"], 16)
TEST_PUBLIC = bytes.fromhex(TEST_KEY["public_key"])


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(out)


def test_curve_and_nxp_key_are_consistent():
    assert ecc.is_on_curve(SECP128R1, SECP128R1.gx, SECP128R1.gy)
    assert bytes.fromhex(VECTORS["public_key"]) == NXP_NTAG21X_PUBLIC_KEY
    x = int.from_bytes(NXP_NTAG21X_PUBLIC_KEY[1:17], "big")
    y = int.from_bytes(NXP_NTAG21X_PUBLIC_KEY[17:], "big")
    assert ecc.is_on_curve(SECP128R1, x, y)


@pytest.mark.parametrize(("uid", "signature"), REAL, ids=[u.hex() for u, _ in REAL])
def test_real_ntag21x_signatures_verify_with_nxp_key(uid, signature):
    verify_originality(uid, signature)


@pytest.mark.parametrize(("uid", "signature"), REAL[:1])
@pytest.mark.parametrize("bit", [0, 13, 55])
def test_flipped_uid_bit_fails(uid, signature, bit):
    with pytest.raises(BadOriginality):
        verify_originality(_flip(uid, bit), signature)


@pytest.mark.parametrize(("uid", "signature"), REAL[:1])
@pytest.mark.parametrize("bit", [0, 100, 128, 255])
def test_flipped_signature_bit_fails(uid, signature, bit):
    assert not is_original(uid, _flip(signature, bit))


def test_real_signature_fails_under_another_key():
    uid, signature = REAL[0]
    assert not is_original(uid, signature, TEST_PUBLIC)


def test_test_key_pair_matches_vector_file():
    assert ecc.public_key_of(SECP128R1, TEST_PRIVATE) == TEST_PUBLIC
    for sample in TEST_KEY["samples"]:
        uid = bytes.fromhex(sample["uid"])
        signature = ecc.sign(SECP128R1, TEST_PRIVATE, uid)
        assert signature.hex().upper() == sample["signature"]
        verify_originality(uid, signature, TEST_PUBLIC)
        assert not is_original(uid, signature)  # not NXP's key


def test_signing_new_uids_round_trips_and_binds_to_uid():
    uid = bytes.fromhex("04DEADBEEF0102")
    signature = ecc.sign(SECP128R1, TEST_PRIVATE, uid)
    assert is_original(uid, signature, TEST_PUBLIC)
    assert not is_original(_flip(uid, 50), signature, TEST_PUBLIC)


@pytest.mark.parametrize(
    ("uid", "signature", "words"),
    [
        (bytes(6), bytes(32), "UID must be 7 bytes"),
        (bytes(7), bytes(31), "must be 32 bytes"),
        (bytes(7), bytes(32), "out of range"),
    ],
)
def test_malformed_input_is_refused_in_words(uid, signature, words):
    with pytest.raises(BadOriginality, match=words):
        verify_originality(uid, signature)


def test_public_key_off_the_curve_is_refused():
    bad = NXP_NTAG21X_PUBLIC_KEY[:-1] + bytes((NXP_NTAG21X_PUBLIC_KEY[-1] ^ 1,))
    with pytest.raises(ValueError, match="not a point"):
        verify_originality(*REAL[0], public_key=bad)


# --- NTAG 424 DNA: OpenSSL (through `cryptography`) against the hand-written code ---------

VECTORS_424 = json.loads(
    (Path(__file__).parent.parent / "vectors" / "ntag424_originality.json").read_text()
)
NXP_424 = bytes.fromhex(VECTORS_424["public_key"])


def _424_variants(uid: bytes, signature: bytes) -> list[tuple[bytes, bytes]]:
    """The signature, its high-s twin, and tampered UIDs and signatures."""
    n = ecc.SECP224R1.n
    r, s = int.from_bytes(signature[:28], "big"), int.from_bytes(signature[28:], "big")
    twin = r.to_bytes(28, "big") + (n - s).to_bytes(28, "big")
    out = [(uid, signature), (uid, twin), (uid[:4], signature), (uid + b"\x00", signature)]
    out += [(_flip(uid, bit), signature) for bit in (0, 30, 55)]
    out += [(uid, _flip(signature, bit)) for bit in (0, 223, 224, 447)]
    return out


@pytest.mark.parametrize("sample", VECTORS_424["samples"], ids=lambda s: s["uid"])
def test_ntag424_openssl_and_hand_written_checks_agree(sample: dict) -> None:
    from firmware_tools.chips.originality import verify_originality_424

    uid, signature = bytes.fromhex(sample["uid"]), bytes.fromhex(sample["signature"])
    results = []
    for candidate_uid, candidate_sig in _424_variants(uid, signature):
        fast = verify_originality_424(candidate_uid, candidate_sig, NXP_424)
        assert fast == ecc.verify(ecc.SECP224R1, NXP_424, candidate_uid, candidate_sig)
        results.append(fast)
    assert results[:2] == [True, True] and not any(results[2:])
