"""NXP originality signatures: NTAG 21x (secp128r1) and NTAG 424 DNA (secp224r1) over the UID.

Pure: no I/O; keys are arguments.

Both chips carry an ECDSA signature by NXP whose message is the 7-byte UID itself, not a
hash of it. NTAG 424 DNA (secp224r1) is checked by OpenSSL through `cryptography`, the UID
passed as a prehashed digest; secp128r1, which OpenSSL builds leave out, by the arithmetic
in `firmware_tools.chips.ecc`. Sources: NXP AN11350 "NTAG
Originality Signature Validation" (curve secp128r1, the UID itself is the message, no
hash; 32-byte r || s), NTAG213/215/216 datasheet §8.8 and §10.8 (READ_SIG); NT4H2421Gx
Read_Sig (command 0x3C) and AN12196 "Originality signature verification" (secp224r1,
56-byte r || s).

What a valid signature proves: NXP issued this UID. It does not prove that the chip in
hand is the one NXP made (a UID and its signature can be copied onto a clone); scan
history has to catch that.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from firmware_tools.chips import ecc
from firmware_tools.errors import BadOriginality

# AN11350: NXP's NTAG 21x originality public key, uncompressed.
NXP_NTAG21X_PUBLIC_KEY = bytes.fromhex(
    "04494E1A386D3D3CFE3DC10E5DE68A499B1C202DB5B132393E89ED19FE5BE8BC61"
)
SIGNATURE_LENGTH = 32
UID_LENGTH = 7

# NXP's NTAG 424 DNA originality public key (secp224r1, uncompressed), published in
# AN12196, section "Originality signature verification".
NXP_424_PUBLIC_KEY = bytes.fromhex(
    "048A9B380AF2EE1B98DC417FECC263F8449C7625CECE82D9B916C992DA209D68"
    "422B81EC20B65A66B5102A61596AF3379200599316A00A1410"
)
SIGNATURE_LENGTH_424 = 56


def verify_originality(
    uid: bytes, signature: bytes, public_key: bytes = NXP_NTAG21X_PUBLIC_KEY
) -> None:
    """Raise BadOriginality unless `signature` is the key's ECDSA signature over `uid`.

    >>> verify_originality(bytes.fromhex("04E10CDA993C80"), bytes.fromhex(
    ...     "8B76052EE42F5567BEB53238B3E3F9950707C0DCC956B5C5EFCFDB709B2D82B3"))
    >>> verify_originality(bytes.fromhex("04E10CDA993C81"), bytes.fromhex(
    ...     "8B76052EE42F5567BEB53238B3E3F9950707C0DCC956B5C5EFCFDB709B2D82B3"))
    Traceback (most recent call last):
    ...
    firmware_tools.errors.BadOriginality: originality signature does not match UID 04E10CDA993C81
    """
    if len(uid) != UID_LENGTH:
        raise BadOriginality(f"UID must be {UID_LENGTH} bytes, got {len(uid)}")
    if len(signature) != SIGNATURE_LENGTH:
        raise BadOriginality(
            f"originality signature must be {SIGNATURE_LENGTH} bytes, got {len(signature)}"
        )
    # AN11350: the 7-byte UID is the message as is (no hash).
    if ecc.verify(ecc.SECP128R1, public_key, uid, signature):
        return
    if ecc.decode_signature(ecc.SECP128R1, signature) is None:
        raise BadOriginality("originality signature r or s is out of range")
    raise BadOriginality(f"originality signature does not match UID {uid.hex().upper()}")


def is_original(uid: bytes, signature: bytes, public_key: bytes = NXP_NTAG21X_PUBLIC_KEY) -> bool:
    """True if the signature verifies; see `verify_originality`."""
    try:
        verify_originality(uid, signature, public_key)
    except BadOriginality:
        return False
    return True


@lru_cache(maxsize=16)
def _p224_key(public_key: bytes) -> ec.EllipticCurvePublicKey:
    """The secp224r1 key of an uncompressed point; ValueError if it is not one."""
    if len(public_key) != 57 or public_key[0] != 0x04:
        raise ValueError("the NTAG 424 originality key must be an uncompressed secp224r1 point")
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP224R1(), public_key)


# ECDSA over a digest as long as the order (28 bytes for secp224r1) takes the digest as
# the integer e unchanged (SEC 1 §4.1.4 step 3), so the UID left-padded with zeros to 28
# bytes and passed as a "prehashed" SHA-224 value is exactly NXP's raw-UID message.
_PREHASHED_224 = ec.ECDSA(utils.Prehashed(hashes.SHA224()))
_DIGEST_224 = 28


def verify_originality_424(
    uid: bytes, signature: bytes, public_key: bytes = NXP_424_PUBLIC_KEY
) -> bool:
    """True when `signature` (56 bytes r || s) is NXP's ECDSA secp224r1 signature of `uid`.

    A public key that is not an uncompressed secp224r1 point raises ValueError.

    >>> verify_originality_424(bytes(7), bytes(56))
    False
    """
    key = _p224_key(bytes(public_key))
    if len(signature) != SIGNATURE_LENGTH_424 or not 0 < len(uid) <= _DIGEST_224:
        return False
    r = int.from_bytes(signature[:28], "big")
    s = int.from_bytes(signature[28:], "big")
    if not (0 < r < ecc.SECP224R1.n and 0 < s < ecc.SECP224R1.n):
        return False
    # AN12196: the UID is the message as is (no hash).
    digest = bytes(_DIGEST_224 - len(uid)) + bytes(uid)
    try:
        key.verify(utils.encode_dss_signature(r, s), digest, _PREHASHED_224)
    except InvalidSignature:
        return False
    return True
