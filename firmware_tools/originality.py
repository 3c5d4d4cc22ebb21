"""NXP originality signature of NTAG 21x: ECDSA on secp128r1 over the raw 7-byte UID.

Pure: no I/O; keys are arguments.

The curve is not in `cryptography`, so the arithmetic is done here with Python ints
(Jacobian coordinates, fixed-base comb tables cached per key). Sources: NXP AN11350 "NTAG
Originality Signature Validation" (curve secp128r1, the UID itself is the message, no hash;
32-byte r || s), NTAG213/215/216 datasheet §8.8 and §10.8 (READ_SIG), SEC 2 v1 §2.3.1
(curve parameters).

What a valid signature proves: NXP issued this UID. It does not prove that the chip in
hand is the one NXP made (a UID and its signature can be copied onto a clone); scan
history has to catch that.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from firmware_tools.errors import BadOriginality

# SEC 2 v1 §2.3.1, secp128r1.
P = 0xFFFFFFFDFFFFFFFFFFFFFFFFFFFFFFFF
A = 0xFFFFFFFDFFFFFFFFFFFFFFFFFFFFFFFC
B = 0xE87579C11079F43DD824993C2CEE5ED3
GX = 0x161FF7528B899B2D0C28607CA52C5B86
GY = 0xCF5AC8395BAFEB13C02DA292DDED7A83
N = 0xFFFFFFFE0000000075A30D1B9038A115

# AN11350: NXP's NTAG 21x originality public key, uncompressed.
NXP_NTAG21X_PUBLIC_KEY = bytes.fromhex(
    "04494E1A386D3D3CFE3DC10E5DE68A499B1C202DB5B132393E89ED19FE5BE8BC61"
)
SIGNATURE_LENGTH = 32
UID_LENGTH = 7

_Jacobian = tuple[int, int, int]
_INFINITY: _Jacobian = (1, 1, 0)


def _double(pt: _Jacobian) -> _Jacobian:
    x, y, z = pt
    if z == 0 or y == 0:
        return _INFINITY
    yy = y * y % P
    s = 4 * x * yy % P
    zz = z * z % P
    # a = -3 on this curve: 3x^2 + a z^4 = 3 (x - z^2)(x + z^2).
    m = 3 * (x - zz) * (x + zz) % P
    x3 = (m * m - 2 * s) % P
    y3 = (m * (s - x3) - 8 * yy * yy) % P
    z3 = 2 * y * z % P
    return (x3, y3, z3)


def _add(p1: _Jacobian, p2: _Jacobian) -> _Jacobian:
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    if z1 == 0:
        return p2
    if z2 == 0:
        return p1
    z1z1 = z1 * z1 % P
    z2z2 = z2 * z2 % P
    u1 = x1 * z2z2 % P
    u2 = x2 * z1z1 % P
    s1 = y1 * z2 * z2z2 % P
    s2 = y2 * z1 * z1z1 % P
    if u1 == u2:
        return _double(p1) if s1 == s2 else _INFINITY
    h = (u2 - u1) % P
    r = (s2 - s1) % P
    hh = h * h % P
    hhh = h * hh % P
    v = u1 * hh % P
    x3 = (r * r - hhh - 2 * v) % P
    y3 = (r * (v - x3) - s1 * hhh) % P
    z3 = h * z1 * z2 % P
    return (x3, y3, z3)


def _add_affine(p1: _Jacobian, x2: int, y2: int) -> _Jacobian:
    # Mixed addition (second point with z = 1): cheaper than _add, used with the tables.
    x1, y1, z1 = p1
    if z1 == 0:
        return (x2, y2, 1)
    z1z1 = z1 * z1 % P
    h = (x2 * z1z1 - x1) % P
    r = (y2 * z1 * z1z1 - y1) % P
    if h == 0:
        return _double(p1) if r == 0 else _INFINITY
    hh = h * h % P
    hhh = h * hh % P
    v = x1 * hh % P
    x3 = (r * r - hhh - 2 * v) % P
    y3 = (r * (v - x3) - y1 * hhh) % P
    return (x3, y3, z1 * h % P)


def _to_affine(pt: _Jacobian) -> tuple[int, int] | None:
    x, y, z = pt
    if z == 0:
        return None
    zi = pow(z, -1, P)
    zi2 = zi * zi % P
    return (x * zi2 % P, y * zi2 * zi % P)


def _multiply(k: int, pt: _Jacobian) -> _Jacobian:
    result = _INFINITY
    for bit in bin(k)[2:]:
        result = _double(result)
        if bit == "1":
            result = _add(result, pt)
    return result


def is_on_curve(x: int, y: int) -> bool:
    """True if (x, y) is a point of secp128r1."""
    return 0 <= x < P and 0 <= y < P and (y * y - (x * x * x + A * x + B)) % P == 0


_Table = tuple[tuple[tuple[int, int] | None, ...], ...]


_WINDOW = 8  # bits per table row: 16 rows of 255 points, 16 additions per scalar


def _comb_table(x: int, y: int) -> _Table:
    # T[i][v] = v * 256**i * P in affine form, so that k * P is 16 mixed additions and no
    # doublings: about five times faster than double-and-add for a verifier that checks
    # many tags against the same two points (G and NXP's key). Built once per key (~50 ms).
    rows = []
    base: _Jacobian = (x, y, 1)
    for _ in range(128 // _WINDOW):
        row: list[tuple[int, int] | None] = [None]
        acc = _INFINITY
        for _ in range((1 << _WINDOW) - 1):
            acc = _add(acc, base)
            row.append(_to_affine(acc))
        rows.append(tuple(row))
        base = _add(acc, base)  # 256 * base
    return tuple(rows)


def _comb_multiply(k: int, table: _Table, acc: _Jacobian = _INFINITY) -> _Jacobian:
    mask = (1 << _WINDOW) - 1
    for row in table:
        point = row[k & mask]
        if point is not None:
            acc = _add_affine(acc, point[0], point[1])
        k >>= _WINDOW
    return acc


@lru_cache(maxsize=1)
def _generator_table() -> _Table:
    return _comb_table(GX, GY)


@lru_cache(maxsize=16)
def _public_table(public_key: bytes) -> _Table:
    # Parse and validate once per key.
    if len(public_key) != 33 or public_key[0] != 0x04:
        raise ValueError("public key must be 33 bytes: 04 || X (16) || Y (16)")
    x = int.from_bytes(public_key[1:17], "big")
    y = int.from_bytes(public_key[17:], "big")
    if not is_on_curve(x, y):
        raise ValueError("public key is not a point of secp128r1")
    return _comb_table(x, y)


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
    q_table = _public_table(bytes(public_key))
    r = int.from_bytes(signature[:16], "big")
    s = int.from_bytes(signature[16:], "big")
    if not (0 < r < N and 0 < s < N):
        raise BadOriginality("originality signature r or s is out of range")
    # AN11350: the 7-byte UID is the message as is; shorter than n, so e is its integer value.
    e = int.from_bytes(uid, "big")
    w = pow(s, -1, N)
    u1 = e * w % N
    u2 = r * w % N
    acc = _comb_multiply(u2, q_table, _comb_multiply(u1, _generator_table()))
    point = _to_affine(acc)
    if point is None or point[0] % N != r:
        raise BadOriginality(f"originality signature does not match UID {uid.hex().upper()}")


def is_original(uid: bytes, signature: bytes, public_key: bytes = NXP_NTAG21X_PUBLIC_KEY) -> bool:
    """True if the signature verifies; see `verify_originality`."""
    try:
        verify_originality(uid, signature, public_key)
    except BadOriginality:
        return False
    return True


def public_key_of(private_key: int) -> bytes:
    """The uncompressed 33-byte public key of a secp128r1 private key (for test keys)."""
    if not 0 < private_key < N:
        raise ValueError("private key out of range")
    point = _to_affine(_multiply(private_key, (GX, GY, 1)))
    assert point is not None
    return b"\x04" + point[0].to_bytes(16, "big") + point[1].to_bytes(16, "big")


def sign_uid(private_key: int, uid: bytes) -> bytes:
    """A 32-byte r || s signature over `uid`, as NXP's factory does, for simulated tags.

    The nonce is derived from the key and the UID (deterministic, in the spirit of
    RFC 6979) so that test vectors are reproducible.
    """
    if not 0 < private_key < N:
        raise ValueError("private key out of range")
    e = int.from_bytes(uid, "big")
    counter = 0
    while True:
        seed = hmac.new(
            private_key.to_bytes(16, "big"), uid + counter.to_bytes(4, "big"), hashlib.sha256
        ).digest()
        k = int.from_bytes(seed, "big") % (N - 1) + 1
        point = _to_affine(_multiply(k, (GX, GY, 1)))
        assert point is not None
        r = point[0] % N
        s = pow(k, -1, N) * (e + r * private_key) % N
        if r and s:
            return r.to_bytes(16, "big") + s.to_bytes(16, "big")
        counter += 1
