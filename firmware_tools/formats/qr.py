"""Signed QR labels: a GS1 Digital Link URL that carries the supplier's EIP-712 signature.

Pure: no I/O; keys are arguments.

The signature is `contracts_abi.eip712.sign_label` over (GTIN-14, serial), 65 bytes r||s||v,
in the non-AI query parameter `sig` as base64url without padding (87 characters). The
verifier compares raw 20-byte addresses and builds a checksummed string only to report one.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass
from functools import lru_cache

from contracts_abi.eip712 import (
    SignatureError,
    address_of_private_key,
    label_digest,
    recover_digest_signer_bytes,
    sign_label,
)
from firmware_tools.errors import BadSignature, FormatError, GS1Error
from firmware_tools.formats.gs1 import (
    DigitalLink,
    build_digital_link,
    normalize_gtin,
    parse_digital_link,
)

__all__ = [
    "LabelCheck",
    "address_bytes",
    "address_of_private_key",
    "check_label",
    "checksummed",
    "decode_signature",
    "encode_signature",
    "new_serial",
    "recover_signer_bytes",
    "sign_label_url",
    "verify_label_url",
]

SIG_PARAM = "sig"
SIGNATURE_LENGTH = 65

# Stable reason codes, next to the InvalidTag ones.
MALFORMED_URL = "malformed_url"
MISSING_SIGNATURE = "missing_signature"
BAD_SIGNATURE = BadSignature.reason


@dataclass(frozen=True)
class LabelCheck:
    """The outcome of checking one label: `reasons` in words, `codes` for machines."""

    ok: bool
    reasons: tuple[str, ...]
    gtin: str | None
    serial: str | None
    signer: str | None
    codes: tuple[str, ...] = ()
    lot: str | None = None
    expiry: str | None = None


def new_serial() -> str:
    """A random serial: 16 base32 characters (80 bits), so that nobody can guess a valid one.

    >>> s = new_serial(); len(s), s.isalnum(), s == s.upper()
    (16, True, True)
    """
    # 10 random bytes are exactly 16 base32 characters, no padding; A-Z2-7 is within CSET 82.
    return base64.b32encode(secrets.token_bytes(10)).decode("ascii")


def encode_signature(signature: bytes) -> str:
    """65 bytes as base64url without padding."""
    return base64.urlsafe_b64encode(signature).rstrip(b"=").decode("ascii")


def decode_signature(text: str) -> bytes:
    """The bytes of a base64url signature without padding; raises FormatError if malformed."""
    if len(text) % 4 == 1:
        raise FormatError(
            f"sig has {len(text)} characters, which is not valid base64url"
            " (a 65-byte signature has 87: truncated?)"
        )
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise FormatError(f"sig is not base64url: {exc}") from None


def sign_label_url(
    private_key: bytes,
    host: str,
    gtin: str,
    serial: str,
    lot: str | None = None,
    expiry: str | None = None,
) -> str:
    """A signed label URL: the Digital Link for (GTIN, serial) plus `sig`.

    >>> key = bytes(range(1, 33))
    >>> url = sign_label_url(key, "id.example.com", "9521234543213", "SN1")
    >>> url.split("?")[0], len(url.split("sig=")[1])
    ('https://id.example.com/01/09521234543213/21/SN1', 87)
    """
    gtin14 = normalize_gtin(gtin)
    # Signing has no effect outside this call, so the one build below validates every field.
    signature = sign_label(private_key, gtin14, serial)
    return build_digital_link(
        host,
        gtin14,
        serial,
        lot=lot,
        expiry=expiry,
        params=((SIG_PARAM, encode_signature(signature)),),
    )


@lru_cache(maxsize=1024)
def address_bytes(address: str) -> bytes:
    """The 20 bytes of a 0x-prefixed hex address (any case); raises FormatError if malformed."""
    if not isinstance(address, str) or len(address) != 42 or address[:2] not in ("0x", "0X"):
        raise FormatError(f"address {address!r} must be 0x followed by 40 hex digits")
    try:
        return bytes.fromhex(address[2:])
    except ValueError:
        raise FormatError(f"address {address!r} must be 0x followed by 40 hex digits") from None


@lru_cache(maxsize=1024)
def checksummed(raw: bytes) -> str:
    """EIP-55 form of 20 address bytes; cached, as a verifier sees few suppliers."""
    from eth_utils import to_checksum_address

    return to_checksum_address(raw)


def recover_signer_bytes(digest: bytes, signature: bytes) -> bytes:
    """The 20 address bytes that signed `digest`; raises BadSignature if malformed."""
    if len(signature) != SIGNATURE_LENGTH:
        raise BadSignature(
            f"signature is {len(signature)} bytes, it should be {SIGNATURE_LENGTH}"
            + (" (truncated?)" if len(signature) < SIGNATURE_LENGTH else "")
        )
    try:
        return recover_digest_signer_bytes(digest, signature)
    except SignatureError as exc:
        raise BadSignature(str(exc)) from None


def check_label(link: DigitalLink, supplier_address: str) -> LabelCheck:
    """Check the `sig` of an already parsed link against the supplier's address."""
    expected = address_bytes(supplier_address)
    common = {"gtin": link.gtin, "serial": link.serial, "lot": link.lot, "expiry": link.expiry}
    text = link.param(SIG_PARAM)
    if text is None:
        return LabelCheck(
            ok=False,
            reasons=("the URL has no sig parameter: it is not a signed label",),
            codes=(MISSING_SIGNATURE,),
            signer=None,
            **common,
        )
    try:
        raw = recover_signer_bytes(label_digest(link.gtin, link.serial), decode_signature(text))
    except (BadSignature, FormatError) as exc:
        return LabelCheck(
            ok=False,
            reasons=(f"bad signature: {exc}",),
            codes=(BAD_SIGNATURE,),
            signer=None,
            **common,
        )
    if raw != expected:
        signer = checksummed(raw)
        return LabelCheck(
            ok=False,
            reasons=(
                f"signed by {signer}, not by the supplier {checksummed(expected)}"
                " (another key, or the GTIN, serial or signature was altered)",
            ),
            codes=(BAD_SIGNATURE,),
            signer=signer,
            **common,
        )
    return LabelCheck(ok=True, reasons=(), codes=(), signer=checksummed(raw), **common)


def verify_label_url(url: str, supplier_address: str) -> LabelCheck:
    """Check a scanned label URL against the supplier's address; never raises for a bad label.

    A malformed `supplier_address` is the caller's error and raises FormatError.

    >>> key = bytes(range(1, 33))
    >>> url = sign_label_url(key, "id.example.com", "9521234543213", "SN1")
    >>> verify_label_url(url, address_of_private_key(key)).ok
    True
    >>> verify_label_url(url.replace("SN1", "SN2"), address_of_private_key(key)).codes
    ('bad_signature',)
    """
    address_bytes(supplier_address)
    try:
        link = parse_digital_link(url)
    except GS1Error as exc:
        return LabelCheck(
            ok=False,
            reasons=(f"not a valid label URL: {exc}",),
            codes=(MALFORMED_URL,),
            gtin=None,
            serial=None,
            signer=None,
        )
    return check_label(link, supplier_address)
