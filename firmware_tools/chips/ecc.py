"""ECDSA over raw messages on short-Weierstrass prime curves, with Python ints.

Pure: no I/O; keys are arguments.

NXP's originality signatures sign the chip's UID itself, not a hash of it, and NTAG 21x
uses secp128r1, which `cryptography` does not offer; so the arithmetic is written out
here once for both chip families. Points are in Jacobian coordinates (X, Y, Z) standing
for (X/Z², Y/Z³), Z == 0 being the point at infinity; scalar multiples for verification
come from fixed-base comb tables cached per point (the generator and each public key).
Sources: SEC 1 v2 §2.2.1 (point arithmetic), §2.3.3-2.3.4 (uncompressed point encoding),
§4.1.3-4.1.4 (ECDSA signing and verification); SEC 2 (curve parameters).

>>> key = public_key_of(SECP128R1, 7)
>>> verify(SECP128R1, key, b"UID", sign(SECP128R1, 7, b"UID"))
True
>>> verify(SECP128R1, key, b"UIE", sign(SECP128R1, 7, b"UID"))
False
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "SECP128R1",
    "SECP224R1",
    "Curve",
    "decode_public_key",
    "decode_signature",
    "is_on_curve",
    "message_integer",
    "public_key_of",
    "sign",
    "verify",
]


@dataclass(frozen=True, slots=True)
class Curve:
    """Domain parameters of y² = x³ + ax + b over GF(p), base point G of prime order n."""

    name: str
    p: int
    a: int
    b: int
    gx: int
    gy: int
    n: int

    @property
    def field_bytes(self) -> int:
        """Bytes of one coordinate in an encoded point."""
        return (self.p.bit_length() + 7) // 8

    @property
    def order_bytes(self) -> int:
        """Bytes of r and of s in a signature."""
        return (self.n.bit_length() + 7) // 8


# SEC 2 v1 §2.3.1 (the 128-bit curves were dropped from SEC 2 v2).
SECP128R1 = Curve(
    name="secp128r1",
    p=0xFFFFFFFDFFFFFFFFFFFFFFFFFFFFFFFF,
    a=0xFFFFFFFDFFFFFFFFFFFFFFFFFFFFFFFC,
    b=0xE87579C11079F43DD824993C2CEE5ED3,
    gx=0x161FF7528B899B2D0C28607CA52C5B86,
    gy=0xCF5AC8395BAFEB13C02DA292DDED7A83,
    n=0xFFFFFFFE0000000075A30D1B9038A115,
)

# SEC 2 v1 §2.6.2, the same as SEC 2 v2 §2.3.2 (NIST P-224).
SECP224R1 = Curve(
    name="secp224r1",
    p=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF000000000000000000000001,
    a=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFE,
    b=0xB4050A850C04B3ABF54132565044B0B7D7BFD8BA270B39432355FFB4,
    gx=0xB70E0CBD6BB4BF7F321390B94A03C1D356C21122343280D6115C1D21,
    gy=0xBD376388B5F723FB4C22DFE6CD4375A05A07476444D5819985007E34,
    n=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFF16A2E0B8F03E13DD29455C5C2A3D,
)

_Jacobian = tuple[int, int, int]
_INFINITY: _Jacobian = (1, 1, 0)


def _double(pt: _Jacobian, p: int, a: int) -> _Jacobian:
    x, y, z = pt
    if z == 0 or y == 0:
        return _INFINITY
    yy = y * y % p
    s = 4 * x * yy % p
    zz = z * z % p
    # m = 3x² + a z⁴, which is 3 (x - z²)(x + z²) when a = -3, as on both NXP curves.
    m = 3 * (x - zz) * (x + zz) % p if a == p - 3 else (3 * x * x + a * zz * zz) % p
    x3 = (m * m - 2 * s) % p
    y3 = (m * (s - x3) - 8 * yy * yy) % p
    z3 = 2 * y * z % p
    return (x3, y3, z3)


def _add_affine(p1: _Jacobian, x2: int, y2: int, p: int, a: int) -> _Jacobian:
    # Mixed addition (second point with z = 1): all the comb tables need.
    x1, y1, z1 = p1
    if z1 == 0:
        return (x2, y2, 1)
    z1z1 = z1 * z1 % p
    h = (x2 * z1z1 - x1) % p
    r = (y2 * z1 * z1z1 - y1) % p
    if h == 0:
        return _double(p1, p, a) if r == 0 else _INFINITY
    hh = h * h % p
    hhh = h * hh % p
    v = x1 * hh % p
    x3 = (r * r - hhh - 2 * v) % p
    y3 = (r * (v - x3) - y1 * hhh) % p
    return (x3, y3, z1 * h % p)


def _to_affine(pt: _Jacobian, p: int) -> tuple[int, int] | None:
    x, y, z = pt
    if z == 0:
        return None
    zi = pow(z, -1, p)
    zi2 = zi * zi % p
    return (x * zi2 % p, y * zi2 * zi % p)


def is_on_curve(curve: Curve, x: int, y: int) -> bool:
    """True if (x, y) is a point of `curve` (not the point at infinity)."""
    p = curve.p
    return 0 <= x < p and 0 <= y < p and (y * y - (x * x * x + curve.a * x + curve.b)) % p == 0


_Table = tuple[tuple[tuple[int, int] | None, ...], ...]

_WINDOW = 8  # bits per table row: a row of 255 points per byte of the scalar


def _affine_row(points: list[_Jacobian], p: int) -> list[tuple[int, int] | None]:
    # Montgomery's trick: one inversion for the whole row instead of one per point, as
    # an inversion costs about as much as forty multiplications here.
    zs = [z or 1 for _, _, z in points]
    prefix = [1]
    for z in zs:
        prefix.append(prefix[-1] * z % p)
    inverse = pow(prefix[-1], -1, p)
    row: list[tuple[int, int] | None] = [None] * len(points)
    for i in range(len(points) - 1, -1, -1):
        zi = inverse * prefix[i] % p  # 1 / zs[i]
        inverse = inverse * zs[i] % p
        x, y, z = points[i]
        if z:
            zi2 = zi * zi % p
            row[i] = (x * zi2 % p, y * zi2 * zi % p)
    return row


def _comb_table(curve: Curve, x: int, y: int) -> _Table:
    # T[i][v] = v * 256**i * P in affine form, so that k * P is one mixed addition per
    # byte of k and no doublings: about five times faster than double-and-add for a
    # verifier that checks many tags against the same two points (G and NXP's key).
    # Built once per point (~30 ms on secp128r1, ~80 ms on secp224r1).
    p, a = curve.p, curve.a
    rows = []
    bx, by = x, y
    for _ in range(-(-curve.n.bit_length() // _WINDOW)):
        multiples = []
        acc = _INFINITY
        for _ in range((1 << _WINDOW) - 1):
            acc = _add_affine(acc, bx, by, p, a)
            multiples.append(acc)
        rows.append((None, *_affine_row(multiples, p)))
        next_base = _to_affine(_add_affine(acc, bx, by, p, a), p)  # 256 * base
        assert next_base is not None  # n is prime and larger than 256
        bx, by = next_base
    return tuple(rows)


def _comb_multiply(k: int, table: _Table, p: int, a: int, acc: _Jacobian = _INFINITY) -> _Jacobian:
    # k must be below the curve order, which the table's rows cover.
    mask = (1 << _WINDOW) - 1
    for row in table:
        point = row[k & mask]
        if point is not None:
            acc = _add_affine(acc, point[0], point[1], p, a)
        k >>= _WINDOW
    return acc


@lru_cache(maxsize=4)
def _generator_table(curve: Curve) -> _Table:
    return _comb_table(curve, curve.gx, curve.gy)


@lru_cache(maxsize=16)
def _public_table(curve: Curve, public_key: bytes) -> _Table:
    # Parse and validate once per key.
    return _comb_table(curve, *decode_public_key(curve, public_key))


def decode_public_key(curve: Curve, public_key: bytes) -> tuple[int, int]:
    """(x, y) of an uncompressed point 04 || X || Y (SEC 1 §2.3.4); ValueError if not one."""
    size = curve.field_bytes
    if len(public_key) != 1 + 2 * size or public_key[0] != 0x04:
        raise ValueError(f"public key must be {1 + 2 * size} bytes: 04 || X ({size}) || Y ({size})")
    x = int.from_bytes(public_key[1 : 1 + size], "big")
    y = int.from_bytes(public_key[1 + size :], "big")
    if not is_on_curve(curve, x, y):
        raise ValueError(f"public key is not a point of {curve.name}")
    return x, y


def decode_signature(curve: Curve, signature: bytes) -> tuple[int, int] | None:
    """(r, s) of a fixed-length r || s signature, None unless both are in 1..n-1."""
    size = curve.order_bytes
    if len(signature) != 2 * size:
        return None
    r = int.from_bytes(signature[:size], "big")
    s = int.from_bytes(signature[size:], "big")
    if not (0 < r < curve.n and 0 < s < curve.n):
        return None
    return r, s


def message_integer(curve: Curve, message: bytes) -> int:
    """The integer e of SEC 1 §4.1.3 step 5: the leftmost bitlen(n) bits of the message.

    The message takes the place of the hash. A 7-byte UID is shorter than the order of
    either NXP curve, so there e is simply the UID read as a big-endian integer.
    """
    e = int.from_bytes(message, "big")
    excess = 8 * len(message) - curve.n.bit_length()
    return e >> excess if excess > 0 else e


def verify(curve: Curve, public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True if `signature` (r || s) is the key's ECDSA signature of the raw `message`.

    SEC 1 §4.1.4 with `message` in place of the hash. A public key that is not an
    uncompressed point of the curve raises ValueError; it is checked first.
    """
    q_table = _public_table(curve, bytes(public_key))
    values = decode_signature(curve, signature)
    if values is None:
        return False
    r, s = values
    n, p, a = curve.n, curve.p, curve.a
    e = message_integer(curve, message)
    w = pow(s, -1, n)
    acc = _comb_multiply(e * w % n, _generator_table(curve), p, a)
    point = _to_affine(_comb_multiply(r * w % n, q_table, p, a, acc), p)
    return point is not None and point[0] % n == r


def public_key_of(curve: Curve, private_key: int) -> bytes:
    """The uncompressed public key 04 || X || Y of `private_key` (for test keys)."""
    if not 0 < private_key < curve.n:
        raise ValueError("private key out of range")
    table = _generator_table(curve)
    point = _to_affine(_comb_multiply(private_key, table, curve.p, curve.a), curve.p)
    assert point is not None
    size = curve.field_bytes
    return b"\x04" + point[0].to_bytes(size, "big") + point[1].to_bytes(size, "big")


def sign(curve: Curve, private_key: int, message: bytes) -> bytes:
    """An r || s ECDSA signature of the raw `message`, as NXP's factory signs UIDs.

    For test keys and simulated tags only: the nonce is derived from the key and the
    message (deterministic, in the spirit of RFC 6979, not its exact construction) so
    that test vectors are reproducible, and nothing here is constant-time.
    """
    n = curve.n
    if not 0 < private_key < n:
        raise ValueError("private key out of range")
    size = curve.order_bytes
    e = message_integer(curve, message)
    table = _generator_table(curve)
    counter = 0
    while True:
        seed = hmac.new(
            private_key.to_bytes(size, "big"), message + counter.to_bytes(4, "big"), hashlib.sha256
        ).digest()
        k = int.from_bytes(seed, "big") % (n - 1) + 1
        point = _to_affine(_comb_multiply(k, table, curve.p, curve.a), curve.p)
        assert point is not None
        r = point[0] % n
        s = pow(k, -1, n) * (e + r * private_key) % n
        if r and s:
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        counter += 1
