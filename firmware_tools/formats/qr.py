"""Signed labels: a GS1 Digital Link URL that carries the supplier's EIP-712 signature.

Pure: no I/O; keys are arguments.

One struct for every label (`contracts_abi.eip712.LABEL_TYPE`): GTIN-14, serial, lot,
expiry, variant and chip UID, absent ones empty. A QR label binds no chip; an NTAG 21x URL
names its chip in the query parameter `uid` (14 upper-case hex digits). The signature is 65
bytes r||s||v in the query parameter `sig` as base64url without padding: exactly 87
characters, one text per signature. The verifier compares raw 20-byte addresses and builds a
checksummed string only to report one.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from functools import lru_cache

from contracts_abi.eip712 import (
    SignatureError,
    address_of_private_key,
    label_digest,
    recover_digest_signer_bytes,
    sign_label,
    to_checksum_address,
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
    "decode_uid",
    "encode_signature",
    "new_serial",
    "recover_signer_bytes",
    "sign_label_url",
    "verify_label_url",
]

SIG_PARAM = "sig"
UID_PARAM = "uid"
SIGNATURE_LENGTH = 65
SIGNATURE_TEXT_LENGTH = 87  # ceil(65 * 8 / 6): base64url without padding
UID_LENGTH = 7  # NTAG 21x datasheet §8.5.1
_BASE64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_SIGNATURE_TEXT_RE = re.compile(f"[A-Za-z0-9_-]{{{SIGNATURE_TEXT_LENGTH}}}")
_UPPER_HEX = frozenset("0123456789ABCDEF")

# Stable reason codes, next to the InvalidTag ones.
MALFORMED_URL = "malformed_url"
MISSING_SIGNATURE = "missing_signature"
BAD_SIGNATURE = BadSignature.reason


@dataclass(frozen=True)
class LabelCheck:
    """The outcome of checking one label: `reasons` in words, `codes` for machines.

    `uid` is the chip UID the URL names (an NTAG 21x URL), None for a QR label.
    """

    ok: bool
    reasons: tuple[str, ...]
    gtin: str | None
    serial: str | None
    signer: str | None
    codes: tuple[str, ...] = ()
    lot: str | None = None
    expiry: str | None = None
    variant: str | None = None
    uid: bytes | None = None


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
    """The 65 bytes of a signature's one base64url text; raises FormatError for any other.

    No padding, no spare bits set in the last character, exactly 87 characters.

    >>> len(decode_signature("A" * 87))
    65
    >>> decode_signature("A" * 86 + "B")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    firmware_tools.errors.FormatError: sig's last character 'B' sets bits past the 65 bytes...
    """
    if not _SIGNATURE_TEXT_RE.fullmatch(text):
        raise FormatError(_signature_text_problem(text))
    signature = base64.urlsafe_b64decode(text + "=")
    # 87 characters carry 522 bits for 520: the 2 spare bits must be zero, else several
    # texts would decode to the same signature.
    if encode_signature(signature) != text:
        raise FormatError(
            f"sig's last character {text[-1]!r} sets bits past the {SIGNATURE_LENGTH} bytes:"
            " it is not the one encoding of a signature"
        )
    return signature


def _signature_text_problem(text: str) -> str:
    """Why `text`, which is not 87 base64url characters, is not a signature's text."""
    if "=" in text:
        return "sig has '=' padding; a signature is written without padding"
    for position, char in enumerate(text, start=1):
        if char not in _BASE64URL:
            return f"sig: character {char!r} at position {position} is not base64url"
    hint = "truncated?" if len(text) < SIGNATURE_TEXT_LENGTH else "too long"
    return (
        f"sig has {len(text)} characters; a {SIGNATURE_LENGTH}-byte signature has"
        f" {SIGNATURE_TEXT_LENGTH} ({hint})"
    )


def decode_uid(text: str) -> bytes:
    """The 7-byte chip UID of a `uid` parameter (14 upper-case hex digits)."""
    if len(text) != 2 * UID_LENGTH or not set(text) <= _UPPER_HEX:
        raise FormatError(
            f"the URL's uid {text[:20]!r} is not {2 * UID_LENGTH} upper-case hex digits"
            f" (a {UID_LENGTH}-byte chip UID)"
        )
    return bytes.fromhex(text)


def sign_label_url(
    private_key: bytes,
    host: str,
    gtin: str,
    serial: str,
    lot: str | None = None,
    expiry: str | None = None,
    variant: str | None = None,
    uid: bytes | None = None,
) -> str:
    """A signed label URL: the Digital Link plus `sig` over everything it states.

    With `uid` (an NTAG 21x chip), the URL also names the chip and the signature binds it.

    >>> key = bytes(range(1, 33))
    >>> url = sign_label_url(key, "id.example.com", "9521234543213", "SN1")
    >>> url.split("?")[0], len(url.split("sig=")[1])
    ('https://id.example.com/01/09521234543213/21/SN1', 87)
    """
    gtin14 = normalize_gtin(gtin)
    params: tuple[tuple[str, str], ...] = ()
    if uid is not None:
        if len(uid) != UID_LENGTH:
            raise FormatError(f"a chip UID is {UID_LENGTH} bytes, got {len(uid)}")
        params = ((UID_PARAM, uid.hex().upper()),)
    # Signing has no effect outside this call, so the one build below validates every field.
    signature = sign_label(
        private_key, gtin14, serial, uid, lot=lot, expiry=expiry, variant=variant
    )
    return build_digital_link(
        host,
        gtin14,
        serial,
        lot=lot,
        expiry=expiry,
        variant=variant,
        params=(*params, (SIG_PARAM, encode_signature(signature))),
    )


@lru_cache(maxsize=1024)
def address_bytes(address: str) -> bytes:
    """The 20 bytes of a 0x-prefixed hex address; raises FormatError if malformed.

    All-lower-case and all-upper-case hex are accepted; mixed case must be the EIP-55
    checksum, which catches a mistyped character.
    """
    if not isinstance(address, str) or len(address) != 42 or address[:2] not in ("0x", "0X"):
        raise FormatError(f"address {address!r} must be 0x followed by 40 hex digits")
    digits = address[2:]
    try:
        raw = bytes.fromhex(digits)
    except ValueError:
        raise FormatError(f"address {address!r} must be 0x followed by 40 hex digits") from None
    if digits != digits.lower() and digits != digits.upper() and checksummed(raw) != "0x" + digits:
        raise FormatError(
            f"address {address!r} has a wrong EIP-55 checksum (mixed case that does not match):"
            " a character was mistyped, or give it all in lower case"
        )
    return raw


@lru_cache(maxsize=1024)
def checksummed(raw: bytes) -> str:
    """EIP-55 form of 20 address bytes; cached, as a verifier sees few suppliers."""
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
    """Check the `sig` of a parsed QR label or NTAG 21x URL against the supplier's address.

    The signature covers GTIN, serial, lot, expiry, variant and the `uid` the URL names;
    whether that UID is the chip in the field is the caller's check (`verify_ntag21x`).
    A malformed `supplier_address` is the caller's error and raises FormatError.
    """
    expected = address_bytes(supplier_address)
    common = {
        "gtin": link.gtin,
        "serial": link.serial,
        "lot": link.lot,
        "expiry": link.expiry,
        "variant": link.variant,
    }
    uid_text = link.param(UID_PARAM)
    uid = None
    if uid_text is not None:
        try:
            uid = decode_uid(uid_text)
        except FormatError as exc:
            return LabelCheck(
                ok=False, reasons=(str(exc),), codes=(MALFORMED_URL,), signer=None, **common
            )
    common["uid"] = uid
    text = link.param(SIG_PARAM)
    if text is None:
        return LabelCheck(
            ok=False,
            reasons=("the URL has no sig parameter: it is not a signed label",),
            codes=(MISSING_SIGNATURE,),
            signer=None,
            **common,
        )
    digest = label_digest(
        link.gtin, link.serial, uid, lot=link.lot, expiry=link.expiry, variant=link.variant
    )
    try:
        raw = recover_signer_bytes(digest, decode_signature(text))
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
                f"signed by {signer}, not by the supplier {checksummed(expected)} (another key,"
                " or the GTIN, serial, lot, expiry, variant, uid or signature was altered)",
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
    >>> url = sign_label_url(key, "id.example.com", "9521234543213", "SN1", lot="L1")
    >>> verify_label_url(url, address_of_private_key(key)).ok
    True
    >>> verify_label_url(url.replace("/10/L1/", "/10/L2/"), address_of_private_key(key)).codes
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
