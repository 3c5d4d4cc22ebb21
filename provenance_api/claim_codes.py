"""Claim codes as people type them: 80 random bits in Crockford base32, four groups of four.

Pure: no I/O; the random bytes are an argument. A code is shown as `7K3M-Q9XD-2F8H-VN4P`
and read back in any case, with or without dashes and spaces, and with the letters that
Crockford's alphabet leaves out read as the digits they look like (O as 0, I and L as 1), so
that a code read aloud or copied by hand from a receipt still works. 80 bits: a guesser
allowed a few attempts per item and window (services.claims) has no chance worth counting.
"""

from __future__ import annotations

import hashlib

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
RANDOM_BYTES = 10  # 80 bits, 16 symbols
LENGTH = RANDOM_BYTES * 8 // 5
GROUP = 4
_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})
_SEPARATORS = str.maketrans("", "", "- \t")


def new_code(random: bytes) -> str:
    """The code of `random` (RANDOM_BYTES bytes) as shown: groups of four joined by dashes."""
    if len(random) != RANDOM_BYTES:
        raise ValueError(f"a claim code takes {RANDOM_BYTES} random bytes, not {len(random)}")
    number = int.from_bytes(random, "big")
    symbols = "".join(ALPHABET[(number >> (5 * i)) & 31] for i in reversed(range(LENGTH)))
    return "-".join(symbols[i : i + GROUP] for i in range(0, LENGTH, GROUP))


def normalize(typed: str) -> str:
    """The code's 16 symbols from what a person typed; ValueError says what is wrong.

    >>> normalize(" 7k3m-q9xd 2f8h-vn4p ")
    '7K3MQ9XD2F8HVN4P'
    >>> normalize("oilo-0000-0000-0000")
    '0110000000000000'
    """
    symbols = typed.translate(_SEPARATORS).upper().translate(_LOOKALIKES)
    if len(symbols) != LENGTH:
        raise ValueError(f"a claim code has {LENGTH} letters and digits (dashes optional)")
    wrong = sorted({char for char in symbols if char not in ALPHABET})
    if wrong:
        raise ValueError(f"a claim code has no {', '.join(map(repr, wrong))}")
    return symbols


def digest(symbols: str) -> str:
    """What is stored of a normalized code: its SHA-256, hex (the code itself never is)."""
    return hashlib.sha256(symbols.encode("ascii")).hexdigest()
