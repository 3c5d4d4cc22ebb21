"""Per-tag AES-128 keys diversified from a supplier master key (NXP AN10922 §2.2).

Pure: no I/O; keys are arguments.

AN10922 §2.2.1 (AES-128): D = 0x01 || M, padded to 32 bytes with ISO/IEC 9797-1
method 2 when shorter; the diversified key is the last block of CBC-MAC over D with the
CMAC subkey K2 XORed into the last block when D was padded, K1 when it was not. This is
CMAC of D, except that CMAC would pad a short D only to 16 bytes: for |M| < 31, plain
CMAC(master, 0x01 || M) is a different (wrong) key whenever 0x01 || M fits one block, and
when 0x01 || M is exactly 16 bytes (CMAC takes the K1 path there, AN10922 the K2 one).
Here D is padded to 32 bytes first, and CMAC of the 32-byte D then takes the K1 path of
the last block, so the padded path is implemented explicitly below.

Diversification input used by this project (AN10922 lets the system choose M):
M = UID (7 bytes) || key number (1 byte) || system identifier (1..23 bytes, default
b"Provenance"). AN10922's example uses UID || AID (3 bytes) || system identifier; an
NTAG 424 DNA has one application, so the AID slot carries the key number instead, which
gives every key of a tag its own value.

>>> an10922_aes128(bytes.fromhex("00112233445566778899AABBCCDDEEFF"),
...                bytes.fromhex("04782E21801D803042F54E585020416275")).hex().upper()
'A8DD63A3B89D54B37CA802473FDA9175'
"""

from __future__ import annotations

import threading

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = ["an10922_aes128", "cmac_subkeys", "diversify_key"]

_RB = 0x87  # NIST SP 800-38B: the constant of the 128-bit block doubling


def _double(block: bytes) -> bytes:
    value = int.from_bytes(block, "big") << 1
    if value >> 128:
        value = (value & ((1 << 128) - 1)) ^ _RB
    return value.to_bytes(16, "big")


def cmac_subkeys(key: bytes) -> tuple[bytes, bytes]:
    """(K1, K2): the CMAC subkeys of an AES-128 key (NIST SP 800-38B §6.1)."""
    zero = Cipher(algorithms.AES(key), modes.ECB()).encryptor().update(bytes(16))
    k1 = _double(zero)
    return k1, _double(k1)


# Per-thread cache of (ECB encryptor, K1, K2) per master key: a verifier derives one key
# per tap, and building a cipher costs more than the two block encryptions it needs.
# ECB contexts keep no state between update() calls; they are not thread-safe, hence
# one cache per thread.
_local = threading.local()


def _master_context(master: bytes):
    cache = _local.__dict__.setdefault("masters", {})
    entry = cache.get(master)
    if entry is None:
        if len(cache) > 64:
            cache.clear()
        entry = cache[master] = (
            Cipher(algorithms.AES(master), modes.ECB()).encryptor(),
            *cmac_subkeys(master),
        )
    return entry


def an10922_aes128(master: bytes, m: bytes) -> bytes:
    """AN10922 §2.2.1 AES-128 diversification of `master` with input M (1..31 bytes)."""
    if len(master) != 16:
        raise ValueError("the master key must be 16 bytes (AES-128)")
    if not 1 <= len(m) <= 31:
        raise ValueError("the diversification input M must be 1 to 31 bytes")
    ecb, k1, k2 = _master_context(bytes(master))
    d = b"\x01" + m
    if len(d) < 32:
        d = d + b"\x80" + bytes(31 - len(d))
        subkey = k2
    else:
        subkey = k1
    # CBC-MAC over the two blocks of D with the subkey folded into the last one.
    first = int.from_bytes(ecb.update(d[:16]), "big")
    last = int.from_bytes(d[16:], "big") ^ int.from_bytes(subkey, "big") ^ first
    return ecb.update(last.to_bytes(16, "big"))


def diversify_key(
    master: bytes, uid: bytes, key_no: int, system_id: bytes = b"Provenance"
) -> bytes:
    """The key number `key_no` of the tag `uid`, diversified from `master` (AN10922)."""
    if len(uid) != 7:
        raise ValueError("the UID must be 7 bytes")
    if not 0 <= key_no <= 0xFF:
        raise ValueError("the key number is one byte")
    if not 1 <= len(system_id) <= 23:
        raise ValueError("the system identifier must be 1 to 23 bytes")
    return an10922_aes128(master, uid + bytes([key_no]) + system_id)


# The SUN keys of a supplier (NTAG 424 key numbers as in ntag424_personalize).


def sun_meta_read_key(master_key: bytes) -> bytes:
    """The SDM meta-read key (NTAG 424 key 1) that all of a supplier's tags share.

    A verifier must decrypt PICC data before it knows the UID, so this key cannot be per
    tag. It is AN10922-diversified from the master key with an all-zero UID, which no NXP
    chip has (NXP UIDs start with the manufacturer code 04h).
    """
    return diversify_key(master_key, bytes(7), 1)


def sun_file_read_key(master_key: bytes, uid: bytes) -> bytes:
    """The SDM file-read key (NTAG 424 key 2) of the tag `uid`, diversified per tag."""
    return diversify_key(master_key, uid, 2)
