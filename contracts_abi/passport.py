"""Passport token ids: the Python twin of ProductPassport.passportId.

Pure: no I/O. The id of item (GTIN, serial) is `uint256(keccak256(abi.encode(gtin, serial)))`
with `gtin` the 14-digit GTIN as ASCII digits and `serial` the GS1 serial (AI 21) of 1 to 20
bytes, both ABI-encoded as `string`.

>>> hex(passport_id("09506000134352", "ABC123"))[:10]
'0xdcf6743f'
"""

from __future__ import annotations

from eth_abi import encode
from eth_hash.auto import keccak

_DIGITS = frozenset("0123456789")


class InvalidItemId(ValueError):
    """The GTIN or serial cannot name a passport (the contract reverts PassportInvalidItemId)."""


def check_item_id(gtin: str, serial: str) -> None:
    """Raise InvalidItemId unless the contract's passportId accepts (gtin, serial)."""
    # GS1 General Specifications §3.2: AI 01 is n14, AI 21 is up to 20 characters.
    if len(gtin) != 14 or not set(gtin) <= _DIGITS:
        raise InvalidItemId(f"gtin must be 14 ASCII digits, got {gtin!r}")
    size = len(serial.encode("utf-8"))
    if not 1 <= size <= 20:
        raise InvalidItemId(f"serial must be 1 to 20 bytes, got {size} bytes: {serial!r}")


def tag_commitment(tag: str, uid: bytes | None = None) -> bytes:
    """What a passport records about the item's tag: `keccak256(abi.encode(tag, uid))`.

    `tag` is the tag kind ("qr", "ntag21x", "ntag424") and `uid` the chip UID (empty for a QR
    label), so a passport names the chip its item was bound to at registration.
    """
    return keccak(encode(["string", "bytes"], [tag, bytes(uid or b"")]))


def passport_id(gtin: str, serial: str) -> int:
    """ERC-721 token id of the passport of item (gtin, serial)."""
    check_item_id(gtin, serial)
    return int.from_bytes(keccak(encode(["string", "string"], [gtin, serial])), "big")
